"""Read one task's `maskvit plan --env robodesk` report for the benchmarks that replay its episodes.

The replaying benchmarks (`robodesk_episode_trace.py`, `robodesk_phantom_probe.py`,
`robodesk_reader_on_episodes.py`, `robodesk_replay_through_model.py`) need the per-task report,
`OUT/TASK/results.json`, whose rows keep their executed actions. The run-level `OUT/results.json`
beside it holds only summaries, and a user easily gives that one instead: this says so in one
line (and names the per-task files to give) rather than failing with a KeyError.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def refuse_output_over_reports(output: str | None, reports: list[str]) -> None:
    """Exit in one line if `--json` names one of the `--report` files: a report is an input."""
    if output and any(Path(output).resolve() == Path(report).resolve() for report in reports):
        sys.exit("--json names one of the --report files; choose another path (reports are inputs)")


def load_task_report(path: str, policy: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the report, `policy`'s rows with their actions); exits with one line on a report that
    is missing, not JSON, run-level, without `policy`, or whose rows keep no actions."""
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        sys.exit(f"--report {path}: no such file (give a `maskvit plan --env robodesk` OUT/TASK/results.json)")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        sys.exit(f"--report {path}: not a readable results.json ({error})")
    if not isinstance(report, dict) or "policies" not in report:
        sys.exit(f"--report {path}: not a `maskvit plan` report (no policies in it)")
    if "task" not in report:
        tasks = report.get("tasks") or []
        folder = Path(path).parent
        named = ", ".join(str(folder / task / "results.json") for task in tasks) or "OUT/TASK/results.json"
        sys.exit(f"--report {path}: this is the run's summary over tasks; give a task's own report: {named}")
    policies = report["policies"]
    if policy not in policies:
        sys.exit(f"--report {path}: no {policy!r} policy in it (it has: {', '.join(policies) or 'none'})")
    rows = policies[policy].get("per_episode", [])
    if any("actions" not in row for row in rows):
        sys.exit(f"--report {path}: its {policy} rows keep no executed actions (written by an older maskvit plan)")
    return report, rows
