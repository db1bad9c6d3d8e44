"""Data throughput: push-world collection (1 vs 2 workers) and clip loading (store vs token cache).

    python benchmarks/bench_data.py [--episodes 40] [--steps 30] [--clips 3000] [--out DIR]

Both collection runs use the same episodes (same seed), one after the other in this
process, so their ratio is a side-by-side comparison on this machine at this moment.
Clip loading reads random clips (protocol push64: 12 frames) through the datasets
the training engine uses, in random order, from a store and from a token cache built
over the same episodes (random 8×8 codes: loading does not depend on their values).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from maskvit.data import ClipDataset, TokenCacheWriter, TokenClipDataset
from maskvit.sim.collection import collect_push_dataset


def cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_collection(root: Path, episodes: int, steps: int, workers: int) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, store) of one collection run."""
    out = root / f"push_w{workers}"
    start, start_cpu = time.perf_counter(), cpu_seconds()
    store = collect_push_dataset(out, episodes, steps=steps, workers=workers, progress=False)
    return time.perf_counter() - start, cpu_seconds() - start_cpu, store


def time_clips(dataset, count: int, seed: int = 0) -> float:
    order = np.random.default_rng(seed).integers(0, len(dataset), size=count)
    start = time.perf_counter()
    for i in order:
        dataset[int(i)]
    return count / (time.perf_counter() - start)


def save_frame_grid(store, path: Path, episodes: int = 6, every: int = 3) -> None:
    """Rows = episodes, columns = every `every`-th frame, at the stored 64×64 resolution."""
    from PIL import Image

    rows = []
    for eid in store.episode_ids()[:episodes]:
        frames = store.load(eid)["frames"][::every]
        padded = [np.pad(f, ((1, 1), (1, 1), (0, 0)), constant_values=255) for f in frames]
        rows.append(np.concatenate(padded, axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--clips", type=int, default=3000)
    parser.add_argument("--clip-len", type=int, default=12)
    parser.add_argument("--out", type=Path, default=None, help="keep the stores here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--picture", type=Path, default=None,
                        help="also save a grid of collected frames here (e.g. docs/push_episodes.png)")
    args = parser.parse_args()

    root = args.out or Path(tempfile.mkdtemp(prefix="bench_data_"))
    results: dict[str, float] = {}
    for workers in (1, 2):
        shutil.rmtree(root / f"push_w{workers}", ignore_errors=True)
        seconds, cpu, store = time_collection(root, args.episodes, args.steps, workers)
        results[f"collect_traj_per_s_{workers}w"] = args.episodes / seconds
        results[f"collect_cpu_s_per_traj_{workers}w"] = cpu / args.episodes
        print(f"collect {args.episodes} × {args.steps} frames, {workers} worker(s): {seconds:.1f} s = "
              f"{args.episodes / seconds:.2f} trajectories/s (2000 would take {2000 * seconds / args.episodes / 60:.1f} min); "
              f"{cpu / args.episodes * 1000:.0f} CPU-ms per trajectory")
    results["collect_speedup_2w_over_1w"] = results["collect_traj_per_s_2w"] / results["collect_traj_per_s_1w"]
    print(f"2 workers / 1 worker: {results['collect_speedup_2w_over_1w']:.2f}×; on 2 idle cores 2000 trajectories "
          f"need about {2000 * results['collect_cpu_s_per_traj_2w'] / 2 / 60:.1f} min of CPU each "
          f"(load average now {os.getloadavg()[0]:.1f})")

    if args.picture:
        save_frame_grid(store, args.picture)
        print(f"wrote {args.picture}")

    split = "train"
    clips = ClipDataset(store, args.clip_len, split=split)
    results["store_clips_per_s"] = time_clips(clips, args.clips)

    cache_dir = root / "tokens"
    shutil.rmtree(cache_dir, ignore_errors=True)
    rng = np.random.default_rng(0)
    with TokenCacheWriter(cache_dir, token_shape=(8, 8), action_dim=2, codebook_size=512) as writer:
        for eid in store.episode_ids():
            length = store.length(eid)
            writer.add(eid, rng.integers(0, 512, (length, 8, 8)), store.load(eid)["actions"], store.split_of(eid))
    from maskvit.data import TokenCache

    tokens = TokenClipDataset(TokenCache.open(cache_dir), args.clip_len, split=split)
    results["token_clips_per_s"] = time_clips(tokens, args.clips)
    print(f"clip loading ({args.clip_len} frames, random order, {len(clips)} clips): "
          f"store {results['store_clips_per_s']:.0f} clips/s, token cache {results['token_clips_per_s']:.0f} clips/s "
          f"({results['token_clips_per_s'] / results['store_clips_per_s']:.1f}×)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.out is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
