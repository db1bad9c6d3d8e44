"""Carry a long reference run from one sitting to the next through git.

A sitting's machine keeps nothing but what is committed, and the reference RoboDesk run
(`benchmarks/reference_robodesk64.sh`) takes longer than one sitting. `save` copies the
little that resuming needs into a folder of the repository:

  tokenizer/    the finished tokenizer: config and its latest weights (no discriminator,
                no optimizer state: it is not trained further)
  tokens/       the token cache (what the transformer trains on)
  transformer/  the transformer run with its latest checkpoint, optimizer state included,
                so `maskvit train --resume` goes on exactly where it stopped
  eval_store/   the store's val and test episodes (what evaluate scores), a store of its own
  paths.json    where each part lived, so `restore` puts them back where the run's own
                records (sources.json, the cache's manifest) expect them

  python benchmarks/reference_snapshot.py save --store S --tokenizer T --tokens C \\
      --transformer R --out reference/robodesk64
  python benchmarks/reference_snapshot.py restore reference/robodesk64

Both build each part beside its place and rename it in (a crash leaves `NAME.partial`,
which the next run refuses rather than deletes); `restore` refuses to write over anything.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from maskvit.data import EpisodeStore, EpisodeStoreWriter
from maskvit.errors import UserError
from maskvit.locking import output_lock

PARTS = ("tokenizer", "tokens", "transformer")


def _latest(run: Path) -> str:
    latest = run / "checkpoints" / "latest"
    if not latest.is_file():
        raise UserError(f"{run} has no checkpoint (no checkpoints/latest)")
    return latest.read_text().strip()


def _copy_run(run: Path, dest: Path, keep_files: tuple[str, ...] | None) -> None:
    """The run's top-level files and its latest checkpoint (only `keep_files` of it if given)."""
    step = _latest(run)
    (dest / "checkpoints" / step).mkdir(parents=True)
    for item in run.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    shutil.copy2(run / "checkpoints" / "latest", dest / "checkpoints" / "latest")
    for item in (run / "checkpoints" / step).iterdir():
        if keep_files is None or item.name in keep_files:
            shutil.copy2(item, dest / "checkpoints" / step / item.name)


def _eval_store(store: Path, dest: Path) -> int:
    """A store of `store`'s val and test episodes, every array and fact kept."""
    source = EpisodeStore.open(store)
    manifest = source.manifest
    writer = EpisodeStoreWriter(dest, source=source.source, action_dim=manifest["action_dim"],
                                resolution=tuple(manifest["resolution"]),
                                state_dim=manifest.get("state_dim"),
                                split_fractions=tuple(manifest["split_fractions"]),
                                extra=manifest.get("extra") or {})
    kept = [e for e in manifest["episodes"] if e["split"] in ("val", "test")]
    for entry in kept:
        episode = source.load(entry["id"])
        folder = store / "episodes" / entry["id"]
        arrays = {f.stem: source.load_array(entry["id"], f.stem) for f in folder.glob("*.npy")
                  if f.stem not in ("frames", "actions", "states")}
        writer.add(entry["id"], episode["frames"], episode["actions"], episode.get("states"),
                   split=entry["split"], arrays=arrays or None, info=source.info(entry["id"]) or None)
    writer.close()
    return len(kept)


def _staging(target: Path) -> Path:
    """Where a part is built before it is renamed into place; a left-over one is refused
    (never deleted: this job cannot tell it made it)."""
    staging = target.with_name(target.name + ".partial")
    if staging.exists():
        raise UserError(f"{staging} exists (a save or restore that did not finish?): remove it and run again")
    return staging


def save(args: argparse.Namespace) -> None:
    out = Path(args.out)
    if out.exists():
        raise UserError(f"{out} exists; choose another --out or remove it first")
    paths = {"tokenizer": args.tokenizer, "tokens": args.tokens, "transformer": args.transformer}
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out, "snapshot"):
        staging = _staging(out)
        staging.mkdir()
        _copy_run(Path(args.tokenizer), staging / "tokenizer", keep_files=("vqgan.safetensors",))
        shutil.copytree(args.tokens, staging / "tokens")
        _copy_run(Path(args.transformer), staging / "transformer", keep_files=None)
        episodes = _eval_store(Path(args.store), staging / "eval_store")
        (staging / "paths.json").write_text(json.dumps(
            {name: str(Path(p).resolve()) for name, p in paths.items()}
            | {"store": str(Path(args.store).resolve())}, indent=2) + "\n")
        staging.rename(out)
    print(f"saved to {out}: tokenizer step {_latest(out / 'tokenizer')}, transformer step "
          f"{_latest(out / 'transformer')}, {episodes} val/test episodes")


def _recorded_paths(snapshot: Path) -> dict[str, Path]:
    """Where each part lived, from SNAPSHOT/paths.json, or a one-line error."""
    try:
        paths = json.loads((snapshot / "paths.json").read_text())
        return {name: Path(paths[name]) for name in PARTS}
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{snapshot} is not a snapshot (no readable paths.json naming "
                        f"{', '.join(PARTS)}); write one with `save`") from None


def restore(args: argparse.Namespace) -> None:
    snapshot = Path(args.snapshot)
    targets = _recorded_paths(snapshot)
    for name, target in targets.items():
        if target.exists():
            raise UserError(f"{target} exists; restore refuses to write over it ({name})")
    for name, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(target, name):
            staging = _staging(target)
            shutil.copytree(snapshot / name, staging)
            staging.rename(target)
        print(f"{name}: {target}")
    print(f"evaluate on the val/test store in place: {snapshot / 'eval_store'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("save")
    for name in ("store", "tokenizer", "tokens", "transformer", "out"):
        p.add_argument(f"--{name}", required=True)
    p = sub.add_parser("restore")
    p.add_argument("snapshot")
    args = parser.parse_args(argv)
    try:
        (save if args.command == "save" else restore)(args)
    except UserError as error:
        print(f"reference_snapshot: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a folder we may not write
        print(f"reference_snapshot: {error.strerror or error} ({error.filename}); "
              "free space or fix the path and run again", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
