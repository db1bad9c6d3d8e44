"""Does the tokenizer keep a step's move of the slide or the drawer? Read from true frames and
from their reconstructions, against the simulator's joint.

If a tokenizer erased a few centimetres of drawer motion, no transformer trained on its codes
could draw it, and more closing data would be wasted. Over the episodes of a store in which
the joint moves, each step's change of the joint (simulator state) is set beside the change
the object reader (`maskvit.metrics.desk_objects`) reads on the true frames and on the
tokenizer's reconstructions, split into closing steps, opening steps and still ones.

    python benchmarks/robodesk_joint_reconstruction.py --store STORE --tokenizer TOKENIZER \
        [--joint drawer] [--episodes 40] [--json OUT]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from maskvit.atomic import atomic_write_json
from maskvit.data.store import EpisodeStore
from maskvit.metrics.desk_objects import read_drawer, read_slide
from maskvit.sim.desk_world import STATE_COLUMNS
from maskvit.tokenizer.vqgan import load_vqgan

READERS = {"drawer": read_drawer, "slide": read_slide}
MOVE = 0.01  # a step's change (m) that counts as a move
STILL = 0.002


def step_changes(store: Path, tokenizer, joint: str, episodes: int) -> dict[str, np.ndarray]:
    """Per step of the first `episodes` episodes in which the joint moves by more than MOVE:
    the simulator's change, the change read on true frames, and on reconstructions."""
    column, reader = STATE_COLUMNS.index(joint), READERS[joint]
    episode_store = EpisodeStore.open(store)
    true, read, rebuilt = [], [], []
    for episode_id in episode_store.episode_ids()[:episodes]:
        episode = episode_store.load(episode_id)
        state = episode["states"][:, column]
        if np.abs(np.diff(state)).max() < MOVE:
            continue
        frames = episode["frames"]
        recon = tokenizer.reconstruct(torch.from_numpy(frames)).numpy()
        true.append(np.diff(state))
        read.append(np.diff(reader(frames)))
        rebuilt.append(np.diff(reader(recon)))
    if not true:
        raise SystemExit(f"no episode among the first {episodes} of {store} moves the {joint}")
    return {"true": np.concatenate(true), "read": np.concatenate(read), "rebuilt": np.concatenate(rebuilt)}


def summary(changes: dict[str, np.ndarray], opening_sign: float) -> dict[str, dict]:
    """Mean change per kind of step (closing, opening, still; opening counted +) and the correlations."""
    true = changes["true"] * opening_sign
    kinds = {"closing": true < -MOVE, "opening": true > MOVE, "still": np.abs(true) < STILL}
    out = {kind: {"steps": int(mask.sum()),
                  **{name: float(values[mask].mean() * opening_sign) if mask.any() else None
                     for name, values in changes.items()}}
           for kind, mask in kinds.items()}
    out["correlation"] = {"read": float(np.corrcoef(changes["true"], changes["read"])[0, 1]),
                          "rebuilt": float(np.corrcoef(changes["true"], changes["rebuilt"])[0, 1])}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--joint", choices=sorted(READERS), default="drawer")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    changes = step_changes(args.store, load_vqgan(args.tokenizer), args.joint, args.episodes)
    result = summary(changes, opening_sign=-1.0 if args.joint == "drawer" else 1.0)  # the drawer opens to −
    print(f"{args.joint}: per step, mean change (m, opening counted +): simulator / read on true frames / "
          "read on reconstructions")
    for kind in ("closing", "opening", "still"):
        row = result[kind]
        print(f"  {kind:8s} {row['steps']:5d} steps  {row['true']:+.4f} / {row['read']:+.4f} / {row['rebuilt']:+.4f}")
    print(f"  correlation with the simulator: true frames {result['correlation']['read']:.3f}, "
          f"reconstructions {result['correlation']['rebuilt']:.3f}")
    if args.json:
        atomic_write_json(args.json, {"store": str(args.store), "tokenizer": args.tokenizer,
                                      "joint": args.joint, "episodes": args.episodes, **result})


if __name__ == "__main__":
    main()
