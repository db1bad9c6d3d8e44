"""`maskvit train-classifier`: per-task success classifiers for RoboDesk planning.

    maskvit train-classifier --data STORE --out DIR

Trains one small conv net with a success logit per RoboDesk task on the store's training
frames, labelled by the task predicates read from the states saved beside them, and scores
it on the val split (recall, precision, balanced accuracy per task: DIR/classifier.json).
Plan with it: `maskvit plan --env robodesk --set plan.cost=pixel_l2_classifier
--classifier DIR` (VP2's RoboDesk cost: the squared pixel error minus 20 × the summed logit,
in our units). A few minutes on a CPU; DIR must be new or empty (nothing is overwritten).

    maskvit train-classifier --kind reach --data STORE [--data STORE ...] --out DIR

trains a reach reader instead: the same net reading, per task, the end effector's distance in
metres to the button, the slide's handle or the drawer's bar (labels from the saved states),
scored on the val split by mean absolute error and correlation. `--reach-targets approach`
measures instead the length of the fingertips' way to where the scripted controller begins the
task (the slide's pushing side, around the bar; the gap behind the drawer's bar, from above:
reaching the handle itself can push the slide shut; labels from the saved simulator states;
on the slide and drawer tuning instances it opened nothing either, benchmarks/RESULTS.md);
`--reach-targets panel` ends the slide's way where the fast panel push bears on it
(`collect --panel-slide`); `--reach-targets inside` ends the drawer's way inside it, behind
its front wall, where the simulator oracle pulls it open.
Plan with it:
`--set plan.cost=pixel_l2_reach --classifier DIR` (the pixel cost, the task's progress read
from frames, and the reach: `maskvit.plan.reach_reader`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from maskvit.commands import command_parser
from maskvit.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = command_parser(subparsers, "train-classifier", "train RoboDesk task-success classifiers (a planning cost)",
                       __doc__)
    p.add_argument("--data", required=True, action="append", metavar="STORE",
                   help="RoboDesk episode store (maskvit collect --env robodesk); repeat to pool "
                        "several stores' frames (each store's own train and val splits)")
    p.add_argument("--out", required=True, help="new or empty folder for the classifier")
    p.add_argument("--kind", choices=("success", "reach"), default="success",
                   help="success logits (VP2's cost, default) or reach distances (plan.cost=pixel_l2_reach)")
    p.add_argument("--reach-targets", choices=("object", "approach", "panel", "inside", "inside_clear"),
                   default="object",
                   help="--kind reach: distances to what the task moves (default), to where it is "
                        "begun (approach: the slide bar's pushing side, the drawer's hook gap) or the "
                        "same with the slide pushed on its panel (panel: the fast push) or the drawer "
                        "pulled from inside, behind its front wall (inside: the oracle's pull; "
                        "inside_clear: the same, a hand on the desk top going out over the gap first)")
    p.add_argument("--reach-loss", choices=("squared", "near"), default="squared",
                   help="--kind reach: the squared error in metres (default) or the same weighed by "
                        "1 / (distance + 5 cm)²: finer near the target, where a planner stops")
    p.add_argument("--tasks", nargs="+", default=None,
                   help="tasks (default: all seven RoboDesk tasks; for --kind reach the buttons, "
                        "open_slide and open_drawer)")
    p.add_argument("--steps", type=int, default=3000, help="training steps (default 3000)")
    p.add_argument("--batch", type=int, default=128, help="frames per step (default 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and batches (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from maskvit.data import EpisodeStore
    from maskvit.locking import output_lock
    from maskvit.plan.reach_reader import REACH_TASKS
    from maskvit.sim.desk_world import TASKS, check_task

    tasks = tuple(check_task(t) for t in (args.tasks or (REACH_TASKS if args.kind == "reach" else TASKS)))
    if args.kind == "reach" and set(tasks) - set(REACH_TASKS):
        raise UserError(f"a reach reader reads {', '.join(REACH_TASKS)}; "
                        f"not {', '.join(sorted(set(tasks) - set(REACH_TASKS)))}")
    if args.kind != "reach" and (args.reach_targets != "object" or args.reach_loss != "squared"):
        raise UserError("--reach-targets and --reach-loss are read by --kind reach only")
    if args.steps < 1 or args.batch < 1 or not args.lr > 0:
        raise UserError("--steps, --batch and --lr must be positive")
    out = Path(args.out)
    _check_new_folder(out)  # before the data is read: a wrong --out fails at once
    if len({Path(d).resolve() for d in args.data}) < len(args.data):
        raise UserError("a --data store is named twice; name each store once")
    stores = [EpisodeStore.open(d) for d in args.data]
    read, train, score = _KINDS[args.kind]()
    targets = {"targets": args.reach_targets} if args.kind == "reach" else {}
    train_frames, train_labels = _pooled(read, stores, "train", tasks, targets)
    val_frames, val_labels = _pooled(read, stores, "val", tasks, targets)
    with output_lock(out, "classifier folder"):
        _check_new_folder(out)  # again, now that no other job can be writing it
        loss = {"loss": args.reach_loss} if args.kind == "reach" else {}
        net = train(train_frames, train_labels, tasks, steps=args.steps, batch=args.batch,
                    lr=args.lr, seed=args.seed, progress=not args.no_progress, **targets, **loss)
        scores = score(net, val_frames, val_labels)
        _save_whole(net, out, {
            **_store_record(args.data, stores),
            "steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": args.seed,
            **({"reach_loss": args.reach_loss} if args.kind == "reach" else {}),
            "train_frames": len(train_frames), "val_scores": scores})
    print(f"wrote {out}; val split ({len(val_frames)} frames):")
    for task, s in scores.items():
        print(f"  {task:24s} " + _format_scores(s))
    return 0


def _pooled(read, stores: list, split: str, tasks: tuple[str, ...], targets: dict):
    """Every store's `split` frames and labels, one after the other."""
    import numpy as np

    parts = [read(store, split, tasks, **targets) for store in stores]
    return np.concatenate([f for f, _ in parts]), np.concatenate([lab for _, lab in parts])


def _store_record(paths: list[str], stores: list) -> dict:
    """Where the frames came from: one store as before ("store", "store_fingerprint"); several
    as lists ("stores", "store_fingerprints"), so a reader tells what it was trained on."""
    resolved = [str(Path(p).resolve()) for p in paths]
    fingerprints = [s.fingerprint() for s in stores]
    if len(stores) == 1:
        return {"store": resolved[0], "store_fingerprint": fingerprints[0]}
    return {"stores": resolved, "store_fingerprints": fingerprints}


def _success_kind():
    from maskvit.plan.classifier_training import (
        classifier_scores,
        labelled_frames,
        train_classifier,
    )

    return labelled_frames, train_classifier, classifier_scores


def _reach_kind():
    from maskvit.plan.classifier_training import reach_frames, reach_scores, train_reach_reader

    return reach_frames, train_reach_reader, reach_scores


_KINDS = {"success": _success_kind, "reach": _reach_kind}


def _format_scores(s: dict) -> str:
    from maskvit.plan.classifier_training import format_score

    if "positives" in s:
        return (f"positives {s['positives']:5d}  recall {format_score(s['recall'])}  "
                f"precision {format_score(s['precision'])}  "
                f"balanced accuracy {format_score(s['balanced_accuracy'])}")
    return (f"mean distance {s['mean_distance']:.3f} m  mean absolute error "
            f"{s['mean_absolute_error']:.3f} m (within 10 cm: {format_score(s['near_mean_absolute_error'])} m, "
            f"{s['near_frames']} frames)  correlation {format_score(s['correlation'])}")


def _check_new_folder(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} is not a new or empty folder; choose another --out")


def _save_whole(net, out: Path, info: dict) -> None:
    """Write the classifier into a hidden sibling folder, then rename it to `out`: an
    interrupted save leaves no half classifier at `out`, only the sibling this job made
    (removed on the way out)."""
    import shutil
    import tempfile

    from maskvit.plan.success_classifier import save_classifier

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        save_classifier(net, staging, info)
        if out.exists():
            out.rmdir()  # empty (checked under the lock)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
