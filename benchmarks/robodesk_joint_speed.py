"""How fast do the slide and the drawer move in a RoboDesk episode store?

    python benchmarks/robodesk_joint_speed.py STORE [STORE ...] [--json OUT.json]

A model draws only the motions its data shows. VP2's episodes last 15 steps, so a planner must
open the slide (~0.5 of its joint) in ~10: faster than the scripted bar push (~0.03 a step).
Per store this counts the steps (frame t → t+1, from the simulator state saved beside each
frame) in which each joint moved by more than a few thresholds, either way, and the fastest.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from maskvit.atomic import atomic_write_json

JOINTS = {"slide": (5, (0.03, 0.05, 0.1)), "drawer": (6, (0.02, 0.04, 0.08))}  # state column, thresholds


def joint_speeds(store: Path) -> dict:
    """Per joint: steps, counts of opening / closing steps beyond each threshold, extremes."""
    moves = {name: [] for name in JOINTS}
    episodes = sorted((store / "episodes").iterdir())
    for episode in episodes:
        states = np.load(episode / "states.npy")
        for name, (column, _) in JOINTS.items():
            moves[name].append(np.diff(states[:, column]))
    out = {"episodes": len(episodes)}
    for name, (_, thresholds) in JOINTS.items():
        move = np.concatenate(moves[name])
        opening = move if name == "slide" else -move  # the drawer opens towards negative joint values
        out[name] = {"steps": int(len(move)), "fastest_opening": float(opening.max()),
                     "fastest_closing": float(-opening.min()),
                     **{f"opening_over_{t}": int((opening > t).sum()) for t in thresholds},
                     **{f"closing_over_{t}": int((opening < -t).sum()) for t in thresholds}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    result = {str(store): joint_speeds(store) for store in args.stores}
    print(json.dumps(result, indent=1))
    if args.json:
        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
