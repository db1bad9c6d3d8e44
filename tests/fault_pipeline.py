"""A tiny store -> tokenizer run -> token cache -> transformer run, for the fault tests.

The tokenizer run is never trained (seeded weights saved as its checkpoint) and the
transformer trains 3 steps: a few seconds on one CPU thread, real files of every kind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from maskvit import run_dir
from maskvit.cli import main
from maskvit.config import load_preset, save_config
from maskvit.data import EpisodeStoreWriter

TOKENIZER = ["tokenizer.resolution=16", "tokenizer.downsample=4", "tokenizer.channels=8",
             "tokenizer.num_res_blocks=1", "tokenizer.codebook_size=32", "tokenizer.code_dim=8"]
TRANSFORMER = [  # the token grid (4×4) and codebook size (32) derive from TOKENIZER
    *TOKENIZER, "transformer.num_frames=4", "transformer.context_frames=2",
    "transformer.spatial_window=[1,4,4]", "transformer.spatiotemporal_window=[0,2,2]",
    "transformer.depth=1", "transformer.dim=16", "transformer.mlp_dim=32", "transformer.heads=2",
    "eval.predicted_frames=2", "eval.trials=2", "eval.num_videos=4", "plan.horizon=2",
    "plan.replan_every=2", "train.batch_size=4", "train.steps=3", "train.warmup_steps=1",
    "train.checkpoint_every=1", "train.val_every=0", "train.precision=fp32", "train.log_every=1",
]
SPLITS = ("train", "train", "train", "val", "test", "test")


def sets(overrides: list[str]) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def write_store(path: Path, seed: int = 0, splits: tuple[str, ...] = SPLITS, length: int = 8,
                actions: np.ndarray | None = None) -> Path:
    """A store of 16×16 random episodes with 2-D actions (`actions` replaces every episode's)."""
    rng = np.random.default_rng(seed)
    with EpisodeStoreWriter(path, source="synthetic", action_dim=2, resolution=16) as writer:
        for index, split in enumerate(splits):
            episode_actions = rng.normal(size=(length, 2)).astype(np.float32)
            writer.add(f"ep{index}", rng.integers(0, 256, (length, 16, 16, 3), dtype=np.uint8),
                       episode_actions if actions is None else actions, split=split)
    return path


def write_tokenizer_run(path: Path, seed: int = 1) -> Path:
    """A tokenizer run holding one checkpoint (step 1) of seeded, untrained weights."""
    from maskvit.tokenizer import VQGAN

    path.mkdir(parents=True)
    config = load_preset("push64", TOKENIZER)
    save_config(config, path / run_dir.CONFIG_FILE)
    torch.manual_seed(seed)
    run_dir.save_checkpoint(path, 1, {"vqgan": VQGAN(config.tokenizer).state_dict()}, {}, {},
                            keep=0)
    return path


def tokenize(tokenizer: Path, data: Path, out: Path, *extra: str) -> int:
    return main(["tokenize", "--tokenizer", str(tokenizer), "--data", str(data), "--out",
                 str(out), "--no-progress", "--device", "cpu", *extra])


def train(tokens: Path, out: Path, *extra: str) -> int:
    return main(["train", "--preset", "push64", "--data", str(tokens), "--out", str(out),
                 "--no-progress", "--device", "cpu", *sets(TRANSFORMER), *extra])


def make_pipeline(root: Path) -> dict[str, Path]:
    """root/{data, tokenizer, tokens, model}: every kind of folder maskvit writes."""
    paths = {"data": write_store(root / "data"), "tokenizer": write_tokenizer_run(root / "tokenizer"),
             "tokens": root / "tokens", "model": root / "model"}
    assert tokenize(paths["tokenizer"], paths["data"], paths["tokens"]) == 0
    assert train(paths["tokens"], paths["model"]) == 0
    return {"root": root, **paths}


def files(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> bytes), to show nothing changed."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line_error(capsys, command: str, *words: str) -> str:
    """The single stderr line of a refused command, checked to name every one of `words`
    (notes a command printed before it failed, "note: ...", are not part of the error)."""
    lines = capsys.readouterr().err.strip().splitlines()
    err = "\n".join(line for line in lines if not line.startswith("note: "))
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"maskvit {command}: error: "), err
    for word in words:
        assert str(word) in err, err
    return err
