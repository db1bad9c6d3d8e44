"""The RoboDesk planning table from the chunked runs of `benchmarks/robodesk_plan_table.sh`.

    python -m maskvit.bench.plan_table OUT [--json FILE]

Sums every OUT/POLICY/TASK_FIRST/results.json into successes per task and policy, with 95 %
Wilson intervals and seconds per episode, and prints a Markdown table. Chunks of one policy
must share their settings (plan config, oracle cost, seed, split; the model is held to one per
OUT/POLICY by the shell script's settings.txt): a chunk played with other settings is an
error, not a row mixed into the others (a setting newer than a chunk counts at its default).
Instances counted twice (overlapping chunks) too.
Where an `oracle` policy is there, a second table gives each policy's success rate as a
multiple of the oracle's on the same instances, the chunks both played (issue 29's targets are
stated that way); a row still being played is compared on its finished chunks, and says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from maskvit.atomic import atomic_write_json
from maskvit.config import PlanConfig
from maskvit.plan.plan_report import wilson_interval
from maskvit.sim.desk_world import TASKS


def _chunks(out: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for path in sorted(out.glob("*/*/results.json")):
        found.setdefault(path.parent.parent.name, []).append(
            {"path": path, "data": _read(path)})
    return found


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: cannot read {path} ({err}); rerun that chunk") from None


def _settings(data: dict) -> str:
    """What a chunk was played with, comparable across versions: a plan setting that a chunk's
    recorded config lacks (it was played before the setting existed) had its default."""
    settings = {key: data.get(key) for key in ("config", "oracle_cost", "seed", "split")}
    if isinstance(settings["config"], dict):
        settings["config"] = {**_PLAN_DEFAULTS, **settings["config"]}
    return json.dumps(settings, sort_keys=True)


# Plan settings with a plain default (the decoding section, a nested default, is always recorded).
_PLAN_DEFAULTS = {field.name: field.default for field in dataclasses.fields(PlanConfig)
                  if field.default is not dataclasses.MISSING}


def merge(out: Path) -> dict[str, dict[str, dict]]:
    """{policy: {task: {episodes, successes, ci95, seconds_per_episode, cpu_seconds_per_episode}}}."""
    table: dict[str, dict[str, dict]] = {}
    for policy, chunks in _chunks(out).items():
        settings = {_settings(chunk["data"]) for chunk in chunks}
        if len(settings) > 1:
            raise SystemExit(f"error: the {policy} chunks in {out} were played with different settings; "
                             "move the odd ones out before merging")
        seen: set[tuple[str, int]] = set()
        rows: dict[str, dict] = {}
        for chunk in chunks:
            data = chunk["data"]
            for task, by_policy in data["per_task"].items():
                for seed in data["task_seeds"]:
                    if (task, seed) in seen:
                        raise SystemExit(f"error: {task} instance {seed} is in two chunks ({chunk['path']})")
                    seen.add((task, seed))
                summary = by_policy[policy]
                row = rows.setdefault(task, {"episodes": 0, "successes": 0, "seconds": 0.0, "cpu_seconds": 0.0,
                                             "chunks": {}})
                row["episodes"] += summary["episodes"]
                row["successes"] += summary["successes"]
                # Which instances gave which count: ratios compare policies on the chunks both played.
                row["chunks"][",".join(map(str, data["task_seeds"]))] = [summary["successes"], summary["episodes"]]
                row["seconds"] += summary.get("seconds_per_episode", float("nan")) * summary["episodes"]
                row["cpu_seconds"] += summary.get("cpu_seconds_per_episode", float("nan")) * summary["episodes"]
        for row in rows.values():
            row["ci95"] = list(wilson_interval(row["successes"], row["episodes"]))
            row["seconds_per_episode"] = row.pop("seconds") / row["episodes"]
            row["cpu_seconds_per_episode"] = row.pop("cpu_seconds") / row["episodes"]
        table[policy] = dict(sorted(rows.items(), key=lambda item: TASKS.index(item[0])))  # VP2's order
    return table


def markdown(table: dict[str, dict[str, dict]]) -> str:
    lines = ["| policy | task | solved | 95 % CI (Wilson) | s / episode | CPU-s / episode |",
             "|---|---|---|---|---|---|"]
    for policy, rows in table.items():
        total = [0, 0]
        for task, row in rows.items():
            low, high = row["ci95"]
            lines.append(f"| {policy} | {task} | {row['successes']}/{row['episodes']} | "
                         f"[{100 * low:.1f} %, {100 * high:.1f} %] | {row['seconds_per_episode']:.0f} | "
                         f"{row['cpu_seconds_per_episode']:.0f} |")
            total[0] += row["successes"]
            total[1] += row["episodes"]
        low, high = wilson_interval(*total)
        lines.append(f"| {policy} | all | {total[0]}/{total[1]} | [{100 * low:.1f} %, {100 * high:.1f} %] | | |")
    return "\n".join(lines)


BUTTON_TASKS = ("push_red", "push_green", "push_blue")
# Buckets of an instance's distance: the steps its scripted controller took to reach the goal.
GOAL_STEP_BUCKETS = ((1, 7), (8, 14), (15, 30))


def by_goal_steps(out: Path) -> dict[str, dict[str, dict[str, list[int]]]]:
    """{policy: {task: {"1-7": [solved, episodes], ...}}}: success by how far the goal is,
    read from the chunks' per-task reports (OUT/POLICY/CHUNK/TASK/results.json) and the
    instances' `goal_step` (the scripted controller's steps to the goal; a 15-step episode
    plans 14)."""
    from maskvit.sim.desk_instances import load_instances

    table: dict[str, dict[str, dict[str, list[int]]]] = {}
    goal_steps: dict[tuple[str, str], list[int]] = {}  # one read of the instance file per task
    for path in sorted(out.glob("*/*/*/results.json")):
        data = _read(path)
        task, split = data.get("task"), data.get("split")
        if task is None:
            continue
        if (task, split) not in goal_steps:
            goal_steps[task, split] = [i.goal_step for i in load_instances(task=task, split=split)]
        steps = goal_steps[task, split]
        for policy, summary in data["policies"].items():
            cells = table.setdefault(policy, {}).setdefault(task, {f"{lo}-{hi}": [0, 0] for lo, hi in GOAL_STEP_BUCKETS})
            for row in summary["per_episode"]:
                goal_step = steps[row["task_seed"]]
                bucket = next(f"{lo}-{hi}" for lo, hi in GOAL_STEP_BUCKETS if goal_step <= hi)
                cells[bucket][0] += int(row["success"])
                cells[bucket][1] += 1
    return table


def goal_steps_markdown(table: dict[str, dict[str, dict[str, list[int]]]]) -> str:
    buckets = [f"{lo}-{hi}" for lo, hi in GOAL_STEP_BUCKETS]
    lines = ["| policy | task | " + " | ".join(f"goal {b} steps away" for b in buckets) + " |",
             "|---|---" + "|---" * len(buckets) + "|"]
    for policy, tasks in table.items():
        for task, cells in tasks.items():
            lines.append(f"| {policy} | {task} | " + " | ".join(f"{cells[b][0]}/{cells[b][1]}" for b in buckets) + " |")
    return "\n".join(lines)


def shared_counts(rows: dict[str, dict], oracle: dict[str, dict]) -> dict[str, tuple[int, int, int]]:
    """{task: (policy's successes, oracle's successes, instances)} over the chunks (sets of
    instances) that both played; tasks sharing none are left out."""
    shared: dict[str, tuple[int, int, int]] = {}
    for task, row in rows.items():
        if task not in oracle:
            continue
        keys = row.get("chunks", {}).keys() & oracle[task].get("chunks", {}).keys()
        if keys:
            shared[task] = (sum(row["chunks"][k][0] for k in keys), sum(oracle[task]["chunks"][k][0] for k in keys),
                            sum(row["chunks"][k][1] for k in keys))
    return shared


def oracle_ratios(table: dict[str, dict[str, dict]]) -> dict[str, dict[str, float]]:
    """{policy: {task | "buttons" | "average": rate ÷ the oracle's rate}} on the instances both
    played (the chunks of the same instances; a policy sharing none has no entry). "buttons"
    pools the three button tasks' episodes; "average" is the mean of the per-task ratios. A
    task the oracle never solved there has no ratio (NaN), as has a policy compared with itself."""
    oracle = table.get("oracle")
    if not oracle:
        return {}
    ratios: dict[str, dict[str, float]] = {}
    for policy, rows in table.items():
        if policy == "oracle":
            continue
        shared = shared_counts(rows, oracle)
        if not shared:
            continue
        per_task = {task: _ratio(mine, theirs) for task, (mine, theirs, _) in shared.items()}
        buttons = [task for task in shared if task in BUTTON_TASKS]
        if buttons:
            per_task["buttons"] = _ratio(sum(shared[t][0] for t in buttons), sum(shared[t][1] for t in buttons))
        finite = [per_task[task] for task in shared if per_task[task] == per_task[task]]
        per_task["average"] = sum(finite) / len(finite) if finite else float("nan")
        ratios[policy] = per_task
    return ratios


def partial_comparisons(table: dict[str, dict[str, dict]]) -> list[str]:
    """"policy task: N of M instances" where a ratio rests on fewer instances than either row has."""
    oracle = table.get("oracle") or {}
    notes = []
    for policy, rows in table.items():
        if policy == "oracle":
            continue
        for task, (_, _, instances) in shared_counts(rows, oracle).items():
            most = max(rows[task]["episodes"], oracle[task]["episodes"])
            if instances < most:
                notes.append(f"{policy} {task}: on the {instances} instances both played (of {most})")
    return notes


def _ratio(successes: int, oracle_successes: int) -> float:
    return successes / oracle_successes if oracle_successes else float("nan")


def ratio_markdown(ratios: dict[str, dict[str, float]]) -> str:
    columns = list(dict.fromkeys(column for row in ratios.values() for column in row))
    lines = ["| policy | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for policy, row in ratios.items():
        cells = (f"{row[column]:.2f}×" if column in row else "—" for column in columns)
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--json", type=Path, help="also write the merged table here")
    parser.add_argument("--by-goal-steps", action="store_true",
                        help="also success by how many scripted steps away each instance's goal is")
    args = parser.parse_args(argv)
    if not args.out.is_dir():
        print(f"error: {args.out} is not a folder of planning runs", file=sys.stderr)
        return 2
    table = merge(args.out)
    print(markdown(table))
    ratios = oracle_ratios(table)
    if ratios:
        print("\nSuccess rate as a multiple of the oracle's (same instances):\n")
        print(ratio_markdown(ratios))
        for note in partial_comparisons(table):
            print(f"- {note}")
    if args.by_goal_steps:
        print("\nSolved by how far the goal is (its scripted controller's steps):\n")
        print(goal_steps_markdown(by_goal_steps(args.out)))
    if args.json:
        atomic_write_json(args.json, {"policies": table, "oracle_ratios": ratios})
    return 0


if __name__ == "__main__":
    sys.exit(main())
