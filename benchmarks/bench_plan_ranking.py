"""How well does the model rank CEM's action sequences? A cheap proxy for planning success.

A closed-loop planning run on 30 tasks takes ~50 minutes on 2 CPU cores and its success
count has a ±17-point confidence interval, so it cannot compare many planning settings.
What the planner needs from the model is narrower: among M sampled action sequences,
the ones the model scores best should be the ones whose *true* futures score best. This
benchmark measures exactly that, against the pixel-cost oracle (the same cost on the
simulator's true futures, which plans at 23/30):

- states: for each task, the start state and the states reached by running the truly best
  sampled sequence's first `replan_every` actions (greedy in truth), `--replans` of them;
- at each state, M sequences from CEM's first-iteration distribution (Table 5's β noise);
- true frames from a scratch copy of the world; predicted frames from the model under each
  variant (same sequences, same seeds);
- per state: Spearman's ρ between model cost and true cost, the true cost's regret of
  the model's pick (normalised by the true costs' median − minimum: 0 is the oracle's
  pick, 1 a typical sample), and the overlap of the model's and the truth's elites.

    python benchmarks/bench_plan_ranking.py --model maskvit/pretrained/push64 \
        --tasks 10 --variant plan: --variant steps8:steps=8,schedule=cosine \
        --json out.json

A variant is `name:key=value,...` with keys steps, schedule, temperature, top_p, unmask
(the decoding), cost (a name in maskvit.plan.planner), pool (average-pool both frames and
goal by this factor before the cost) and repeats (predictions averaged per sequence).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from maskvit.bench.ranking import average_pool, ranking_metrics
from maskvit.config import DecodingConfig, check_decoding
from maskvit.errors import UserError
from maskvit.plan.cem import num_elites, sample_actions, step_weights
from maskvit.plan.planner import get_cost
from maskvit.plan.predictor_fn import clip_actions

DECODING_KEYS = {"steps": int, "schedule": str, "temperature": float, "top_p": float,
                 "unmask": str}


@dataclasses.dataclass
class Variant:
    """One way of scoring sequences with the model."""

    name: str
    decoding: DecodingConfig
    cost: str = "pixel_l2"
    pool: int = 1
    repeats: int = 1


def parse_variant(text: str, base: DecodingConfig) -> Variant:
    """`name:key=value,...` → Variant (decoding fields replace `base`'s)."""
    name, _, rest = text.partition(":")
    fields: dict = {}
    extra: dict = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            if key in DECODING_KEYS:
                fields[key] = None if value == "none" else DECODING_KEYS[key](value)
            elif key == "cost":
                get_cost(value)  # a one-line error names the known costs
                extra[key] = value
            elif key in ("pool", "repeats"):
                extra[key] = int(value)
            else:
                raise SystemExit(f"unknown variant key {key!r} in {text!r}")
        except (ValueError, UserError) as error:
            raise SystemExit(f"bad variant {text!r}: {error}") from None
    decoding = dataclasses.replace(base, **fields)
    try:
        check_decoding(decoding, f"variant {name!r}")
    except UserError as error:
        raise SystemExit(str(error)) from None
    return Variant(name or "plan", decoding, **extra)


def score(frames: np.ndarray, goal: np.ndarray, weights: np.ndarray, cost: str,
          pool: int) -> np.ndarray:
    """The planning cost of frames (M, H, h, w, 3), optionally on average-pooled pixels
    (scaled by pool² so the numbers stay comparable with the full-resolution cost)."""
    if pool == 1:
        return get_cost(cost)(frames, goal, weights)
    return get_cost(cost)(average_pool(frames, pool), average_pool(goal, pool), weights) * pool * pool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="maskvit/pretrained/push64",
                        help="a bundle or a transformer run directory")
    parser.add_argument("--tokenizer", default=None, help="tokenizer run (default: the model's)")
    parser.add_argument("--tasks", type=int, default=10, help="tasks 0..N-1")
    parser.add_argument("--first-task", type=int, default=0)
    parser.add_argument("--replans", type=int, default=3, help="states per task")
    parser.add_argument("--samples", type=int, default=64, help="M")
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--variant", action="append", default=[],
                        help="name:key=value,... (default: the bundle's plan decoding)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from maskvit.plan.baselines import simulate_frames
    from maskvit.plan.predictor_fn import load_predictor
    from maskvit.plan.worlds import make_world
    from maskvit.sim import PushWorld

    predictor = load_predictor(args.model, args.tokenizer, precision=args.precision)
    cfg = predictor.config.plan
    variants = [parse_variant(v, cfg.decoding) for v in (args.variant or ["plan:"])]
    weights = step_weights(args.horizon, cfg.last_step_weight)
    world = make_world("push")
    scratch = PushWorld(world.config)
    low, high = world.action_low, world.action_high
    elites = num_elites(args.samples, cfg.elite_fraction)
    mean = np.tile(np.asarray(cfg.init_mean, float), (args.horizon, 1))
    std = np.tile(np.asarray(cfg.init_std, float), (args.horizon, 1))
    rows: dict[str, list[dict]] = {v.name: [] for v in variants}
    seconds = {v.name: 0.0 for v in variants}
    for task in range(args.first_task, args.first_task + args.tasks):
        rng = np.random.default_rng(1000 + task)
        frames = [world.reset(task)]
        goal = world.goal_image()
        first = np.zeros(len(low))
        frames.append(world.step(first))
        past = [first]
        for replan in range(args.replans):
            state = world.get_state()
            actions = sample_actions(mean, std, args.samples, cfg.noise_correlation, rng, low, high)
            truth = simulate_frames(scratch, state, actions)
            context = np.stack(frames[-2:])
            context_actions = np.asarray(past[-1:], dtype=float)
            batch_context = np.broadcast_to(context[None], (args.samples, *context.shape))
            batch_past = np.broadcast_to(context_actions[None], (args.samples, 1, len(low)))
            # Every variant is ranked against the oracle's cost: plain pixel_l2 on the true
            # frames, which plans at 23/30.
            reference = score(truth, goal, weights, cfg.cost, 1)
            for v in variants:
                start = time.perf_counter()
                model_cost = np.zeros(args.samples)
                for r in range(v.repeats):
                    predicted = predictor.predict(
                        np.ascontiguousarray(batch_context),
                        clip_actions(batch_past, actions),
                        num_frames=args.horizon, decoding=v.decoding,
                        seed=task * 100 + replan * 10 + r)
                    model_cost += score(np.asarray(predicted), goal, weights, v.cost, v.pool)
                seconds[v.name] += time.perf_counter() - start
                row = ranking_metrics(model_cost, reference, elites)
                row.update(task=task, replan=replan)
                rows[v.name].append(row)
            # Move on greedily in truth: run the truly best sequence's first replan_every actions.
            best = actions[np.argmin(reference)]
            for action in best[: cfg.replan_every]:
                frames.append(world.step(action))
                past.append(action)
        print(f"task {task} done", file=sys.stderr, flush=True)

    summary = {}
    for v in variants:
        r = rows[v.name]
        metric = {k: np.array([x[k] for x in r]) for k in ("rho", "regret", "elite_overlap")}
        summary[v.name] = {
            "variant": {"decoding": dataclasses.asdict(v.decoding), "cost": v.cost,
                        "pool": v.pool, "repeats": v.repeats},
            "states": len(r),
            **{f"{k}_mean": float(m.mean()) for k, m in metric.items()},
            **{f"{k}_se": float(m.std(ddof=1) / np.sqrt(len(m))) for k, m in metric.items()},
            "model_seconds": seconds[v.name],
            "rows": r,
        }
    print("| variant | Spearman ρ | regret of pick (0 = oracle) | elite overlap | model s |")
    print("|---|---|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {s['rho_mean']:.3f} ± {s['rho_se']:.3f} | {s['regret_mean']:.3f} ± "
              f"{s['regret_se']:.3f} | {s['elite_overlap_mean']:.2f} ± {s['elite_overlap_se']:.2f} "
              f"| {s['model_seconds']:.0f} |")
    # Paired against the first variant (same states, same sequences): far tighter than
    # the per-variant standard errors above, which include the spread between states.
    first = variants[0].name
    for v in variants[1:]:
        for k in ("rho", "regret", "elite_overlap"):
            d = np.array([x[k] for x in rows[v.name]]) - np.array([x[k] for x in rows[first]])
            se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
            summary[v.name][f"{k}_minus_{first}"] = [float(d.mean()), float(se)]
            print(f"{v.name} − {first}: {k} {d.mean():+.3f} ± {se:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                   "summary": summary}, indent=1))
        tmp.replace(args.json)
    world.close()
    scratch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
