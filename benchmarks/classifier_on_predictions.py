"""Does the success classifier (or reach reader) read the model's frames as it reads true ones?

    python benchmarks/classifier_on_predictions.py --model BUNDLE --classifier DIR --data STORE [--split val]

The classifier cost (`plan.cost=pixel_l2_classifier`) scores *predicted* frames, while the
classifier was trained on true ones. For every clip of the split (the model's context frames + its planning
horizon, e.g. 2 + 10, starts 0, 10 and 18 of each 30-frame episode) this predicts the future from the
true actions and scores the classifier, per task, on the true future frames, on the
tokenizer's reconstructions of them (what the best model could draw) and on the model's
predictions, each against the labels read from the true states. Prints recall / precision,
or for a reach reader (`maskvit train-classifier --kind reach`) mean absolute error (metres) /
correlation against the true distances.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from maskvit.atomic import atomic_write_json
from maskvit.data import EpisodeStore
from maskvit.inference.predictor import load_predictor
from maskvit.plan.classifier_training import classifier_scores, format_score, reach_scores
from maskvit.plan.predictor_fn import predictor_fn
from maskvit.plan.reach_reader import reach_labels
from maskvit.plan.success_classifier import load_classifier
from maskvit.sim.desk_world import solved_in_states

STARTS = (0, 10, 18)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--classifier", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the scores here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    predictor = load_predictor(args.model)
    predict = predictor_fn(predictor, predictor.config.plan.decoding, seed=0)
    net = load_classifier(args.classifier)
    reach = net.kind == "reach"
    score = reach_scores if reach else classifier_scores
    store = EpisodeStore.open(args.data)
    context, horizon = predictor.config.transformer.context_frames, predictor.config.plan.horizon
    true, labels, contexts, past, future = [], [], [], [], []
    for episode_id in store.episode_ids(args.split):
        episode = store.load(episode_id)
        for start in STARTS:
            clip = slice(start, start + context + horizon)
            frames, states = episode["frames"][clip], episode["states"][clip]
            if len(frames) < context + horizon:
                continue
            contexts.append(frames[:context])
            past.append(episode["actions"][start:start + context - 1])
            future.append(episode["actions"][start + context - 1:start + context - 1 + horizon])
            true.append(frames[context:])
            labels.append(states[context:])
    true_frames = np.concatenate(true)
    future_states = np.concatenate(labels)  # one RoboDesk scene places every reach target
    all_labels = (reach_labels(future_states, net.tasks) if reach else
                  np.stack([solved_in_states(future_states, t) for t in net.tasks], axis=1))
    predicted = np.concatenate([predict(np.stack(contexts[i:i + 16]), np.stack(past[i:i + 16]),
                                        np.stack(future[i:i + 16])).reshape(-1, *true_frames.shape[1:])
                                for i in range(0, len(contexts), 16)])
    reconstructed = np.concatenate([predictor.decode(predictor.encode(true_frames[i:i + 64]))
                                    for i in range(0, len(true_frames), 64)])
    report = {name: score(net, frames, all_labels)
              for name, frames in (("true", true_frames), ("reconstructed", reconstructed),
                                   ("predicted", predicted))}
    print(f"{len(contexts)} clips, {len(true_frames)} future frames of {args.split}")
    first, pair = ("mean m", "MAE/corr") if reach else ("positives", "R/P")
    print(f"{'task':24s} {first:>9s}  " + "  ".join(f"{n + ' ' + pair:>19s}" for n in report))
    for task in net.tasks:
        cells = []
        for name in report:
            s = report[name][task]
            pair = ((s["mean_absolute_error"], s["correlation"]) if reach else (s["recall"], s["precision"]))
            cells.append(f"{format_score(pair[0])} / {format_score(pair[1])}".rjust(19))
        head = report["true"][task]
        print(f"{task:24s} " + (f"{head['mean_distance']:9.3f}" if reach else f"{head['positives']:9d}")
              + "  " + "  ".join(cells))
    if args.json:
        atomic_write_json(args.json, {"clips": len(contexts), "split": args.split, "scores": report})


if __name__ == "__main__":
    main()
