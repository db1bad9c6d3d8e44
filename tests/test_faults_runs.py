"""Faults around runs: crafted or damaged checkpoints, bad config values, two writers,
full disks, file modes, and the exact tokenizer checkpoint behind a token cache."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_support import ToyDataset, ToyTask, toy_config

from maskvit import run_dir as ckpt
from maskvit.cli import main
from maskvit.config import Config, load_preset, save_config
from maskvit.data import EpisodeStore, EpisodeStoreWriter, TokenCache, TokenCacheWriter
from maskvit.errors import UserError
from maskvit.train import Trainer, latest_checkpoint, load_checkpoint, load_run, read_metrics

# ------------------------------------------------------------------------------ helpers


def _toy(out: Path, resume: bool = False, max_steps: int | None = None, **cfg) -> Trainer:
    settings = dict(steps=6, checkpoint_every=2, keep_checkpoints=5)
    settings.update(cfg)
    config = toy_config(**settings)
    return Trainer(ToyTask(noise=0.1, dropout=0.2), config, ToyDataset(n=40),
                   config=Config(train=config), out=out, resume=resume, max_steps=max_steps,
                   progress=False, tensorboard=False)


def _step_dir(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step_{step:08d}"


def _one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"maskvit {command}: error: "), err
    return err


def _files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class _Payload:
    """Unpickling this runs a shell command that creates `marker` (a classic exploit)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _write_payload(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"optimizers": _Payload(marker)}))


# ------------------------------------------------------- 1. no pickle is ever loaded


def test_resume_ignores_a_crafted_pickle_beside_the_state(tmp_path):
    out, marker = tmp_path / "run", tmp_path / "pwned"
    _toy(out, max_steps=2).fit()
    _write_payload(_step_dir(out, 2) / ckpt.LEGACY_STATE, marker)
    trainer = _toy(out, resume=True)
    assert trainer.step == 2 and trainer.fit().step == 6
    assert not marker.exists()


def test_a_run_with_only_a_pickled_state_is_refused_in_one_line(tmp_path, capsys):
    out, marker = tmp_path / "run", tmp_path / "pwned"
    _toy(out, max_steps=2).fit()
    folder = _step_dir(out, 2)
    (folder / ckpt.STATE_JSON).unlink()
    (folder / ckpt.STATE_TENSORS).unlink()
    _write_payload(folder / ckpt.LEGACY_STATE, marker)  # what an old (or crafted) run holds
    with pytest.raises(UserError) as err:
        _toy(out, resume=True)
    message = str(err.value)
    assert "\n" not in message and "older maskvit" in message and "another --out" in message
    assert not marker.exists()
    _, weights, _ = load_run(out)  # weights-only loading keeps working for old runs
    assert "0.weight" in weights
    assert folder.is_dir()  # an old checkpoint is refused, not set aside


def test_state_json_cannot_build_objects(tmp_path):
    out = tmp_path / "run"
    _toy(out, max_steps=2).fit()
    doc_file = _step_dir(out, 2) / ckpt.STATE_JSON
    doc = json.loads(doc_file.read_text())
    doc["state"]["task"] = {"__ndarray__": [1], "dtype": "O"}  # object arrays are refused
    doc_file.write_text(json.dumps(doc))
    with pytest.raises(ckpt.CheckpointError, match="state.json is damaged"):
        load_checkpoint(_step_dir(out, 2))


def test_state_round_trips_every_kind_of_value(tmp_path):
    state = {"opt": {"state": {0: {"step": torch.tensor(3.0), "m": torch.randn(2, 3)}},
                     "param_groups": [{"betas": (0.9, 0.95), "params": [0], "foreach": None}]},
             "rng": [{"python": (3, tuple(range(5)), None),
                      "numpy": ("MT19937", np.arange(4, dtype=np.uint32), 2, 0, 0.5),
                      "torch": torch.arange(5, dtype=torch.uint8)}],
             "weird": {"__tensor__": 1}, "nan": float("nan")}
    ckpt._save_state(state, tmp_path)
    back = ckpt._load_state(tmp_path)
    assert back["opt"]["param_groups"][0]["betas"] == (0.9, 0.95)
    assert torch.equal(back["opt"]["state"][0]["m"], state["opt"]["state"][0]["m"])
    assert back["rng"][0]["python"] == state["rng"][0]["python"]
    numpy_state = back["rng"][0]["numpy"]
    assert numpy_state[1].dtype == np.uint32 and numpy_state[1].tolist() == [0, 1, 2, 3]
    assert back["rng"][0]["torch"].dtype == torch.uint8
    assert back["weird"] == {"__tensor__": 1} and np.isnan(back["nan"])


# ------------------------------------------------------------ 3. damaged checkpoints


def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, capsys):
    straight = tmp_path / "straight"
    _toy(straight).fit()
    out = tmp_path / "run"
    _toy(out, max_steps=4).fit()
    model_file = _step_dir(out, 4) / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:50])  # truncated by a crash or full disk
    capsys.readouterr()
    trainer = _toy(out, resume=True)
    assert trainer.step == 2
    assert trainer.fit().step == 6
    err = capsys.readouterr().err
    assert "warning: skipped damaged checkpoint" in err and "model.safetensors" in err
    assert [p.name for p in (out / "checkpoints").glob("damaged-step_00000004-*")]
    assert latest_checkpoint(out).name == "step_00000006"
    for name, value in load_run(straight)[1].items():  # same result as never interrupted
        torch.testing.assert_close(load_run(out)[1][name], value, rtol=1e-6, atol=1e-7)


def test_garbage_trainer_state_falls_back_too(tmp_path):
    out = tmp_path / "run"
    _toy(out, max_steps=4).fit()
    (_step_dir(out, 4) / ckpt.STATE_JSON).write_text("{not json")
    assert _toy(out, resume=True).step == 2
    (_step_dir(out, 2) / ckpt.STATE_TENSORS).write_bytes(b"\0" * 7)
    # Only damaged checkpoints left: one line, nothing trained.
    with pytest.raises(UserError) as err:
        _toy(out, resume=True)
    assert "no intact checkpoint" in str(err.value) and "\n" not in str(err.value)
    assert "state.safetensors is damaged" in str(err.value)
    with pytest.raises(UserError, match="no intact checkpoint"):  # never a silent restart
        _toy(out, resume=True)


def test_load_run_names_the_damaged_file(tmp_path):
    out = tmp_path / "run"
    _toy(out, max_steps=2).fit()
    model_file = _step_dir(out, 2) / "model.safetensors"
    model_file.write_bytes(b"garbage" * 20)
    with pytest.raises(UserError) as err:
        load_run(out)
    assert str(model_file) in str(err.value) and "\n" not in str(err.value)
    (out / ckpt.CONFIG_FILE).write_text("train: [unclosed\n")
    with pytest.raises(UserError, match="config.yaml is damaged"):
        load_run(out)


def test_predict_with_a_damaged_model_file_is_one_line(pipeline, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(pipeline["model"], model)
    weights = latest_checkpoint(model) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    code = main(["predict", "--model", str(model), "--input", str(pipeline["data"]),
                 "--out", str(tmp_path / "pred.gif"), "--device", "cpu"])
    assert code == 2
    assert "model.safetensors is damaged" in _one_line(capsys, "predict")


# ------------------------------------------------------------ 2. config range checks

BAD_VALUES = [
    ("train.batch_size=-2", "train.batch_size"), ("train.batch_size=0", "train.batch_size"),
    ("train.steps=0", "train.steps"), ("train.steps=-5", "train.steps"),
    ("train.steps=.inf", "train.steps"), ("train.lr=-1", "train.lr"),
    ("train.lr=.nan", "train.lr"), ("train.lr=0", "train.lr"),
    ("transformer.dim=33", "transformer.dim"), ("transformer.heads=0", "transformer.heads"),
    ("transformer.depth=0", "transformer.depth"), ("transformer.dropout=1.5", "dropout"),
    ("transformer.spatiotemporal_window=[0,3,3]", "spatiotemporal_window"),
    ("transformer.spatial_window=[1,-8,8]", "spatial_window"),
    ("transformer.context_frames=12", "transformer.context_frames"),
    ("transformer.codebook_size=70000", "transformer.codebook_size"),
    # eval's frame counts follow the transformer's; planning's horizon does not fit
    ("transformer.num_frames=6", "plan.horizon"),
    ("tokenizer.resolution=60", "tokenizer.downsample"),
    ("tokenizer.downsample=3", "tokenizer.downsample"),
    ("tokenizer.usage_decay=1", "tokenizer.usage_decay"),
    ("tokenizer_train.batch_size=-1", "tokenizer_train.batch_size"),
    ("tokenizer_train.lr=.inf", "tokenizer_train.lr"),
    ("train.grad_accum=3", "train.grad_accum"), ("train.warmup_steps=-1", "warmup_steps"),
    ("train.min_lr_ratio=2", "train.min_lr_ratio"), ("train.betas=[0.9,1.5]", "train.betas"),
    ("train.weight_decay=-0.1", "train.weight_decay"), ("train.grad_clip=-1", "grad_clip"),
    ("train.mask_ratio=1.5", "train.mask_ratio"), ("train.mask_ratio=half", "mask_ratio"),
    ("train.ema_decay=1", "train.ema_decay"), ("train.seed=-1", "train.seed"),
    ("train.changed_token_weight=0.5", "train.changed_token_weight"),
    ("tokenizer_train.changed_token_weight=5", "set train.changed_token_weight"),
    ("train.keep_checkpoints=-1", "keep_checkpoints"), ("train.val_batches=0", "val_batches"),
    ("train.num_workers=-1", "num_workers"), ("train.checkpoint_every=-1", "checkpoint_every"),
    ("eval.predicted_frames=0", "eval.predicted_frames"),
    ("eval.predicted_frames=20", "eval.predicted_frames"),
    ("eval.decoding_steps=0", "eval.decoding.steps"), ("eval.top_p=0", "eval.decoding.top_p"),
    ("eval.temperature=-1", "eval.decoding.temperature"),
    ("plan.decoding.steps=0", "plan.decoding.steps"), ("eval.trials=0", "eval.trials"),
    ("plan.horizon=11", "plan.horizon"), ("plan.samples=1", "plan.samples"),
    ("plan.elite_fraction=0", "plan.elite_fraction"), ("plan.replan_every=20", "replan_every"),
    ("plan.init_std=[0.1]", "plan.init_std"), ("plan.schedule=zigzag", "plan.decoding.schedule"),
    ("data.resolution=0", "data.resolution"),
]


@pytest.mark.parametrize("override, key", BAD_VALUES)
def test_bad_values_are_one_line_errors_naming_the_key(override, key, capsys):
    assert main(["info", "--preset", "push64", "--set", override]) == 2
    assert key in _one_line(capsys, "info")


@pytest.mark.parametrize("override", ["train.batch_size=-2", "train.batch_size=0",
                                      "train.steps=0", "train.lr=.nan", "transformer.dim=33"])
def test_train_refuses_bad_values_before_any_work(override, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path), "--out", str(out), "--no-progress",
                 "--set", override]) == 2
    assert override.split("=")[0] in _one_line(capsys, "train")
    assert not out.exists()


# --------------------------------------------------- a tiny pipeline (module fixture)

TOKENIZER = ["tokenizer.resolution=16", "tokenizer.downsample=4", "tokenizer.channels=8",
             "tokenizer.num_res_blocks=1", "tokenizer.codebook_size=32", "tokenizer.code_dim=8"]
TRANSFORMER = [  # the token grid (4×4) and codebook size (32) derive from TOKENIZER
    *TOKENIZER, "transformer.num_frames=4", "transformer.context_frames=2",
    "transformer.spatial_window=[1,4,4]",
    "transformer.spatiotemporal_window=[0,2,2]", "transformer.depth=1", "transformer.dim=16",
    "transformer.mlp_dim=32", "transformer.heads=2", "eval.predicted_frames=2",
    "plan.horizon=2", "plan.replan_every=2", "train.batch_size=4", "train.steps=3",
    "train.warmup_steps=1", "train.checkpoint_every=1", "train.val_every=0",
    "train.precision=fp32", "train.log_every=1",
]


def _sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def _write_store(path: Path) -> None:
    rng = np.random.default_rng(0)
    with EpisodeStoreWriter(path, source="synthetic", action_dim=2, resolution=16) as w:
        for e, split in enumerate(["train", "train", "train", "val"]):
            w.add(f"ep{e}", rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8),
                  rng.normal(size=(8, 2)).astype(np.float32), split=split)


def _tokenizer_weights(config: Config, seed: int) -> dict[str, torch.Tensor]:
    from maskvit.tokenizer import VQGAN

    torch.manual_seed(seed)
    return VQGAN(config.tokenizer).state_dict()


def _save_tokenizer_checkpoint(run: Path, step: int, seed: int) -> None:
    config = ckpt.read_run_config(run)
    ckpt.save_checkpoint(run, step, {"vqgan": _tokenizer_weights(config, seed)}, {}, {},
                         keep=0)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict[str, Path]:
    """store -> tokenizer run (steps 1, 2; no training) -> tokenize -> a transformer run
    stopped at step 2 of 3 (so tests can resume it)."""
    root = tmp_path_factory.mktemp("pipeline")
    _write_store(root / "data")
    tok = root / "tokenizer"
    tok.mkdir()
    save_config(load_preset("push64", TOKENIZER), tok / ckpt.CONFIG_FILE)
    _save_tokenizer_checkpoint(tok, 1, seed=1)
    _save_tokenizer_checkpoint(tok, 2, seed=2)
    assert main(["tokenize", "--tokenizer", str(tok), "--data", str(root / "data"),
                 "--out", str(root / "tokens"), "--no-progress", "--device", "cpu"]) == 0
    assert main(["train", "--preset", "push64", "--data", str(root / "tokens"), "--out",
                 str(root / "model"), "--no-progress", "--device", "cpu", "--max-steps", "2",
                 *_sets(TRANSFORMER)]) == 0
    return {"root": root, "data": root / "data", "tokenizer": tok,
            "tokens": root / "tokens", "model": root / "model"}


# -------------------------------------------------- 4. the exact tokenizer checkpoint


def test_tokenize_and_train_record_the_exact_tokenizer_step(pipeline):
    extra = TokenCache.open(pipeline["tokens"]).manifest["extra"]
    assert extra["tokenizer_step"] == 2  # the latest when tokenize ran, not null
    sources = json.loads((pipeline["model"] / "sources.json").read_text())
    assert sources["tokenizer_step"] == 2
    assert sources["tokenizer"] == str(pipeline["tokenizer"].resolve())
    assert sources["tokenizer_fingerprint"] == extra["tokenizer_fingerprint"]


def _copy_runs(pipeline, tmp_path) -> tuple[Path, Path]:
    """Copies of the tokenizer and model runs, sources.json pointing at the copy."""
    tok, model = tmp_path / "tokenizer", tmp_path / "model"
    shutil.copytree(pipeline["tokenizer"], tok)
    shutil.copytree(pipeline["model"], model)
    sources = json.loads((model / "sources.json").read_text())
    sources["tokenizer"] = str(tok.resolve())
    (model / "sources.json").write_text(json.dumps(sources))
    return tok, model


def test_predictor_loads_the_recorded_step_not_the_latest(pipeline, tmp_path):
    from maskvit.inference.predictor import Predictor
    from maskvit.tokenizer.vqgan import load_vqgan

    tok, model = _copy_runs(pipeline, tmp_path)
    _save_tokenizer_checkpoint(tok, 3, seed=3)  # the tokenizer run trained on
    predictor = Predictor.from_run(model)
    assert predictor.tokenizer.fingerprint() == load_vqgan(tok, step=2).fingerprint()
    assert predictor.tokenizer.fingerprint() != load_vqgan(tok).fingerprint()


def test_predictor_refuses_a_gone_or_changed_tokenizer_checkpoint(pipeline, tmp_path, capsys):
    from maskvit.inference.predictor import Predictor

    tok, model = _copy_runs(pipeline, tmp_path)
    shutil.rmtree(_step_dir(tok, 2))
    shutil.copytree(_step_dir(tok, 1), _step_dir(tok, 2))  # same step, other weights
    with pytest.raises(UserError) as err:
        Predictor.from_run(model)
    assert "differs from the one that made the tokens" in str(err.value)
    assert "\n" not in str(err.value)
    shutil.rmtree(_step_dir(tok, 2))
    with pytest.raises(UserError) as err:
        Predictor.from_run(model)
    assert "step 2" in str(err.value) and "gone" in str(err.value)
    assert "\n" not in str(err.value)


def test_resume_refuses_tokens_of_another_tokenizer(pipeline, tmp_path, capsys):
    _, model = _copy_runs(pipeline, tmp_path)
    tokens = tmp_path / "tokens"
    assert main(["tokenize", "--tokenizer", str(pipeline["tokenizer"]), "--step", "1",
                 "--data", str(pipeline["data"]), "--out", str(tokens), "--no-progress",
                 "--device", "cpu"]) == 0
    assert TokenCache.open(tokens).manifest["extra"]["tokenizer_step"] == 1
    capsys.readouterr()
    before = _files(model)
    assert main(["train", "--data", str(tokens), "--out", str(model), "--resume",
                 "--no-progress", "--device", "cpu"]) == 2
    assert "tokens of" in _one_line(capsys, "train")
    assert _files(model) == before


# ------------------------------------------------------------------------- 5. locks

HOLDER = textwrap.dedent("""
    import sys
    from maskvit.locking import output_lock
    sys.argv = ["maskvit", {command!r}]
    with output_lock({out!r}, {what!r}):
        print("locked", flush=True)
        sys.stdin.read()
""")


class _Holder:
    """Another process holding the lock on `out` until the `with` block ends."""

    def __init__(self, out: Path, command: str, what: str) -> None:
        script = HOLDER.format(out=str(out), command=command, what=what)
        self.proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def __enter__(self) -> subprocess.Popen:
        assert self.proc.stdout.readline().strip() == "locked"
        return self.proc

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def test_second_train_into_a_locked_run_names_the_holder_and_changes_nothing(
        pipeline, tmp_path, capsys):
    _, model = _copy_runs(pipeline, tmp_path)
    before = _files(model)
    with _Holder(model, "train", "training run") as holder:
        code = main(["train", "--data", str(pipeline["tokens"]), "--out", str(model),
                     "--resume", "--no-progress", "--device", "cpu"])
        assert code == 2
        err = _one_line(capsys, "train")
        assert f"pid {holder.pid}" in err and "`maskvit train`" in err
    assert _files(model) == before  # config.yaml, metrics.jsonl, checkpoints untouched


def test_train_tokenizer_and_tokenize_take_their_locks(pipeline, tmp_path, capsys):
    out = tmp_path / "tok"
    with _Holder(out, "train-tokenizer", "training run") as holder:
        assert main(["train-tokenizer", "--preset", "push64", "--data", str(pipeline["data"]),
                     "--out", str(out), "--no-progress", "--device", "cpu",
                     *_sets(TOKENIZER)]) == 2
        assert f"pid {holder.pid}" in _one_line(capsys, "train-tokenizer")
    assert not out.exists()  # a refused run leaves no --out behind
    tokens = tmp_path / "tokens"
    with _Holder(tokens, "tokenize", "token cache") as holder:
        assert main(["tokenize", "--tokenizer", str(pipeline["tokenizer"]), "--data",
                     str(pipeline["data"]), "--out", str(tokens), "--no-progress",
                     "--device", "cpu"]) == 2
        assert f"pid {holder.pid}" in _one_line(capsys, "tokenize")
    assert not tokens.exists()


# ---------------------------------------------------------------------- 6. permissions


def test_outputs_are_0644_files_in_0755_folders(tmp_path):
    out = tmp_path / "run"
    _toy(out, max_steps=2).fit()
    assert stat.S_IMODE((out / ckpt.CONFIG_FILE).stat().st_mode) == 0o644
    assert stat.S_IMODE((out / "checkpoints" / "latest").stat().st_mode) == 0o644
    folder = _step_dir(out, 2)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    files = list(folder.iterdir())
    assert {f.name for f in files} == {"model.safetensors", ckpt.STATE_TENSORS, ckpt.STATE_JSON}
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o644}


# -------------------------------------------------------------------- 7. a full disk


def _fill_disk_on_call(monkeypatch, call: int) -> None:
    real, calls = ckpt._save_state, []

    def full(state, folder):
        calls.append(folder)
        if len(calls) == call:
            (folder / ckpt.STATE_JSON).write_text("{")  # part of a file, then no space
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))
        real(state, folder)

    monkeypatch.setattr(ckpt, "_save_state", full)


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _fill_disk_on_call(monkeypatch, 2)
    with pytest.raises(OSError) as err:
        _toy(out).fit()
    assert err.value.errno == errno.ENOSPC
    assert latest_checkpoint(out).name == "step_00000002"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest",
                                                                        "step_00000002"]
    assert load_checkpoint(_step_dir(out, 2)).state["step"] == 2  # intact and loadable
    monkeypatch.undo()
    trainer = _toy(out, resume=True)  # and the run goes on once there is space again
    assert trainer.step == 2 and trainer.fit().step == 6


def test_train_cli_on_a_full_disk_is_one_line(pipeline, tmp_path, monkeypatch, capsys):
    _, model = _copy_runs(pipeline, tmp_path)
    _fill_disk_on_call(monkeypatch, 1)
    capsys.readouterr()
    assert main(["train", "--data", str(pipeline["tokens"]), "--out", str(model), "--resume",
                 "--no-progress", "--device", "cpu"]) == 1
    err = _one_line(capsys, "train")
    assert "No space left on device" in err and "free some space" in err
    assert latest_checkpoint(model).name == "step_00000002"
    assert load_run(model)[1]
    assert [r["step"] for r in read_metrics(model)][:2] == [1, 2]


def test_tokenize_on_a_full_disk_is_one_line_and_resumes(pipeline, tmp_path, monkeypatch,
                                                          capsys):
    from maskvit.tokenizer.vqgan import VQGAN

    tokens = tmp_path / "tokens"
    real_add, real_encode = TokenCacheWriter.add, VQGAN.encode
    added, encoded = {}, []  # episode id -> codes written; frames encoded, per call

    def add(self, episode_id, codes, *args, **kwargs):
        if len(added) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        added[episode_id] = np.array(codes)
        real_add(self, episode_id, codes, *args, **kwargs)

    def encode(self, frames):
        encoded.append(len(frames))
        return real_encode(self, frames)

    monkeypatch.setattr(VQGAN, "encode", encode)
    monkeypatch.setattr(TokenCacheWriter, "add", add)
    argv = ["tokenize", "--tokenizer", str(pipeline["tokenizer"]), "--data",
            str(pipeline["data"]), "--out", str(tokens), "--no-progress", "--device", "cpu",
            "--batch-size", "8"]
    assert main(argv) == 1
    assert "free some space" in _one_line(capsys, "tokenize")
    monkeypatch.setattr(TokenCacheWriter, "add", real_add)
    encoded.clear()
    assert main(argv) == 0
    store, cache = EpisodeStore.open(pipeline["data"]), TokenCache.open(tokens)
    missing = [e for e in store.episode_ids() if e not in added]
    assert len(added) == 2 and len(missing) == 2
    # The episodes written before the failure are kept: the rerun encodes only the others.
    assert sum(encoded) == sum(store.length(e) for e in missing)
    assert len(cache) == 4
    assert cache.manifest["extra"]["tokenizer_step"] == 2
    for episode_id, codes in added.items():  # as written before the failure
        assert np.array_equal(cache.codes(episode_id), codes), episode_id
