"""Carry a RoboDesk episode store between sittings in the repository, as xz-packed chunks.

    python benchmarks/robodesk_packs.py pack STORE [--packs DIR] [--per-pack 100]
    python benchmarks/robodesk_packs.py unpack [--packs DIR] --out STORE

Collection is slow on 2 CPU cores (about 10 s per episode and worker) and a sitting ends
whatever runs, so the episodes collected so far are committed as packs of whole episodes
(`robodesk_NNNNNN-MMMMMM.tar.xz`, about 65 kB an episode) beside an index of their
SHA-256 sums. `unpack` rebuilds the store folder (episodes and writer.json, no manifest),
and rerunning the same `maskvit collect --env robodesk ...` resumes from it: episode i is a
pure function of (seed, i), so the resumed store is the store one uninterrupted run writes.
Packing skips packs already written; a pack whose sum differs is refused on unpack.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tarfile
from pathlib import Path

DEFAULT_PACKS = Path(__file__).parent / "data" / "robodesk"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack(store: Path, packs: Path, per_pack: int) -> None:
    episodes = sorted(p.name for p in (store / "episodes").iterdir()
                      if p.is_dir() and not p.name.endswith(".partial") and (p / "meta.json").is_file())
    indices = sorted(int(name.rsplit("_", 1)[1]) for name in episodes)
    packs.mkdir(parents=True, exist_ok=True)
    index_file = packs / "index.json"
    index = json.loads(index_file.read_text()) if index_file.is_file() else {"packs": {}}
    index["writer"] = json.loads((store / "writer.json").read_text())
    have = set(indices)
    for start in range(0, (max(indices) + 1) if indices else 0, per_pack):
        wanted = list(range(start, start + per_pack))
        name = f"robodesk_{start:06d}-{start + per_pack - 1:06d}.tar.xz"
        if name in index["packs"] or not all(i in have for i in wanted):
            continue  # packed already, or not complete yet: only whole packs are written
        temporary = packs / f".{name}.tmp"
        with tarfile.open(temporary, "w:xz") as tar:
            for i in wanted:
                tar.add(store / "episodes" / f"robodesk_{i:06d}", arcname=f"episodes/robodesk_{i:06d}")
        os.replace(temporary, packs / name)
        index["packs"][name] = {"episodes": [start, start + per_pack - 1], "sha256": _sha256(packs / name)}
        print(f"packed {name} ({(packs / name).stat().st_size / 1e6:.1f} MB)")
    temporary = packs / ".index.json.tmp"
    temporary.write_text(json.dumps(index, indent=1, sort_keys=True))
    os.replace(temporary, index_file)


def unpack(packs: Path, out: Path) -> None:
    index = json.loads((packs / "index.json").read_text())
    if out.exists() and any(out.iterdir()) and not (out / "writer.json").is_file():
        sys.exit(f"{out} exists and is not an episode store; choose another --out")
    (out / "episodes").mkdir(parents=True, exist_ok=True)
    for name, entry in sorted(index["packs"].items()):
        if _sha256(packs / name) != entry["sha256"]:
            sys.exit(f"{packs / name}: damaged (its SHA-256 differs from index.json); "
                     "check it out again from git")
        with tarfile.open(packs / name, "r:xz") as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("episodes/robodesk_")
                       and ".." not in m.name and (m.isfile() or m.isdir())]
            tar.extractall(out, members=members, filter="data")
        print(f"unpacked {name}")
    if not (out / "writer.json").is_file():
        (out / "writer.json").write_text(json.dumps(index["writer"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("store", type=Path)
    p.add_argument("--packs", type=Path, default=DEFAULT_PACKS)
    p.add_argument("--per-pack", type=int, default=100)
    u = sub.add_parser("unpack")
    u.add_argument("--packs", type=Path, default=DEFAULT_PACKS)
    u.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.store, args.packs, args.per_pack)
    else:
        unpack(args.packs, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
