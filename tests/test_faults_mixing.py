"""Issue 27, "data mixed": a resumed or rerun job refuses other data or other settings.

3. tokenize records the store it encodes (path and manifest sha256) and refuses another;
4. convert refuses to resume a store with any setting that shapes its episodes changed;
5. NaN / infinite values stop where they enter (store writer, tokenize, predict, training);
6. a damaged writer.json, or a config.yaml that disagrees with its weights, is one line.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from fault_pipeline import (
    TOKENIZER,
    files,
    make_pipeline,
    one_line_error,
    tokenize,
    train,
    write_store,
)
from PIL import Image
from test_train_support import ToyDataset, ToyTask, toy_config

from maskvit.cli import main
from maskvit.config import load_config, load_preset, save_config
from maskvit.data import EpisodeStore, EpisodeStoreWriter, TokenCache, TokenCacheWriter
from maskvit.errors import UserError
from maskvit.run_dir import checkpoint_dirs, latest_checkpoint, load_checkpoint
from maskvit.train import Trainer


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict[str, Path]:
    return make_pipeline(tmp_path_factory.mktemp("pipeline"))


# ------------------------------------------------------------- 3. tokenize's source store


TINY_TOKENIZER_RUN = ["tokenizer.perceptual_weight=0", "tokenizer.disc_start=null",
                      "tokenizer_train.batch_size=4", "tokenizer_train.steps=3",
                      "tokenizer_train.warmup_steps=1", "tokenizer_train.checkpoint_every=1",
                      "tokenizer_train.val_every=0", "tokenizer_train.log_every=1",
                      "tokenizer_train.precision=fp32"]


def _train_tokenizer(data: Path, out: Path, *extra: str) -> int:
    return main(["train-tokenizer", "--preset", "push64", "--data", str(data), "--out", str(out),
                 "--device", "cpu", "--no-progress",
                 *[a for o in (*TOKENIZER, *TINY_TOKENIZER_RUN) for a in ("--set", o)], *extra])


def test_train_tokenizer_resumed_with_another_store_is_refused(pipeline, tmp_path, capsys):
    """The run records its store (path and manifest sha256): its frames, event frames and
    salience reference come from it, so a resume on another store would mix two."""
    run, other = tmp_path / "tokenizer", write_store(tmp_path / "other", seed=5)
    assert _train_tokenizer(pipeline["data"], run, "--max-steps", "1") == 0
    capsys.readouterr()
    before = files(run)
    assert _train_tokenizer(other, run, "--resume", "--max-steps", "2") == 2
    one_line_error(capsys, "train-tokenizer", str(pipeline["data"].resolve()), "another store")
    assert files(run) == before
    assert _train_tokenizer(pipeline["data"], run, "--resume", "--max-steps", "2") == 0  # its own store


def test_tokenize_rerun_with_another_store_is_refused_naming_both(pipeline, tmp_path, capsys):
    tokens = tmp_path / "tokens"
    shutil.copytree(pipeline["tokens"], tokens)
    other = write_store(tmp_path / "other", seed=5)
    before = files(tokens)
    assert tokenize(pipeline["tokenizer"], other, tokens) == 2
    one_line_error(capsys, "tokenize", str(pipeline["data"].resolve()), str(other.resolve()))
    assert files(tokens) == before  # the old codes and a manifest naming their store


def test_tokenize_resumed_with_another_store_is_refused(pipeline, tmp_path, monkeypatch, capsys):
    tokens, other = tmp_path / "tokens", write_store(tmp_path / "other", seed=5)
    real_add, added = TokenCacheWriter.add, []

    def add_then_stop(self, episode_id, *args, **kwargs):
        if len(added) == 2:
            raise KeyboardInterrupt  # the job is stopped after two episodes
        added.append(episode_id)
        real_add(self, episode_id, *args, **kwargs)

    monkeypatch.setattr(TokenCacheWriter, "add", add_then_stop)
    assert tokenize(pipeline["tokenizer"], pipeline["data"], tokens, "--batch-size", "8") == 130
    monkeypatch.undo()
    capsys.readouterr()
    before = files(tokens)
    assert tokenize(pipeline["tokenizer"], other, tokens) == 2
    one_line_error(capsys, "tokenize", str(pipeline["data"].resolve()), str(other.resolve()))
    assert files(tokens) == before
    assert tokenize(pipeline["tokenizer"], pipeline["data"], tokens) == 0  # its own store resumes
    whole, resumed = TokenCache.open(pipeline["tokens"]), TokenCache.open(tokens)
    assert len(resumed) == 6
    for episode_id in whole.episode_ids():
        np.testing.assert_array_equal(resumed.codes(episode_id), whole.codes(episode_id))


def test_tokenize_refuses_its_store_changed_since_or_moved(pipeline, tmp_path, capsys):
    tokens, data = tmp_path / "tokens", tmp_path / "data"
    shutil.copytree(pipeline["data"], data)
    assert tokenize(pipeline["tokenizer"], data, tokens) == 0
    assert tokenize(pipeline["tokenizer"], data, tokens) == 0  # the same store: nothing to do
    capsys.readouterr()
    with EpisodeStoreWriter(data, source="synthetic", action_dim=2) as writer:
        writer.add("ep9", np.zeros((8, 16, 16, 3), np.uint8), np.zeros((8, 2), np.float32))
    before = files(tokens)
    assert tokenize(pipeline["tokenizer"], data, tokens) == 2
    one_line_error(capsys, "tokenize", "changed", "--overwrite")
    copy = tmp_path / "copy"  # a store of the same manifest elsewhere may hold other frames
    shutil.copytree(pipeline["data"], copy)
    assert tokenize(pipeline["tokenizer"], copy, tokens) == 2
    one_line_error(capsys, "tokenize", str(data.resolve()), str(copy.resolve()))
    assert files(tokens) == before


# --------------------------------------------------------------- 4. convert's settings


def _video_folders(src: Path) -> Path:
    rng = np.random.default_rng(3)
    for video in range(3):
        (src / f"vid{video}").mkdir(parents=True)
        for index in range(8):
            frame = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
            Image.fromarray(frame).save(src / f"vid{video}" / f"{index:03d}.png")
    return src


def _convert(src: Path, out: Path, *extra: str) -> int:
    return main(["convert", "videos", str(src), "--out", str(out), "--size", "8", "--no-progress",
                 *extra])


@pytest.mark.parametrize("changed, words", [
    (["--crop", "none"], ["crop", "'center'", "'none'"]),
    (["--clip-len", "2"], ["clip_len", "4", "2"]),
    (["--fps", "5"], ["fps", "None", "5.0"]),
    (["--frame-stride", "2"], ["frame_stride"]),
    (["--size", "4"], ["[8, 8]", "[4, 4]"]),
])
def test_convert_resumed_with_other_settings_is_refused_naming_the_setting(tmp_path, capsys,
                                                                           changed, words):
    src, out = _video_folders(tmp_path / "src"), tmp_path / "store"
    settings = ["--clip-len", "4"]
    assert _convert(src, out, *settings) == 0
    (out / "manifest.json").unlink()  # as a job killed before its last episode leaves it
    shutil.rmtree(out / "episodes" / "vid2-00001")
    capsys.readouterr()
    before = files(out)
    assert _convert(src, out, *settings, *changed) == 2
    one_line_error(capsys, "convert", *words)
    assert files(out) == before
    assert _convert(src, out, *settings) == 0  # the same settings resume it
    store = EpisodeStore.open(out)
    assert len(store) == 6 and {store.length(e) for e in store.episode_ids()} == {4}
    assert store.manifest["extra"]["clip_len"] == 4 and store.manifest["extra"]["crop"] == "center"


# ------------------------------------------------------------- 5. finite values only


def test_the_store_writer_refuses_nan_actions_and_leaves_a_complete_store_complete(tmp_path):
    store = write_store(tmp_path / "store")
    before = {name: data for name, data in files(store).items() if name != "writer.json"}
    bad = np.zeros((8, 2), np.float32)
    bad[5, 1] = np.nan
    writer = EpisodeStoreWriter(store, source="synthetic", action_dim=2)
    with pytest.raises(UserError) as err:
        writer.add("nan", np.zeros((8, 16, 16, 3), np.uint8), bad)
    assert "actions" in str(err.value) and "row 5" in str(err.value)
    with pytest.raises(UserError, match="states"):
        writer.add("inf", np.zeros((8, 16, 16, 3), np.uint8), np.zeros((8, 2)),
                   states=np.full((8, 3), np.inf))
    after = {name: data for name, data in files(store).items() if name != "writer.json"}
    assert after == before  # no episode, and the manifest (complete store) stayed


def _robonet_with_actions(path: Path, actions: np.ndarray) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        env = f.create_group("env")
        env.attrs["n_cams"], env.attrs["cam_encoding"] = 1, "jpg"
        cam = env.create_group("cam0_video")
        for t in range(len(actions) + 1):
            buffer = path.with_suffix(f".{t}.jpg")
            Image.fromarray(np.full((8, 8, 3), 40 * t, np.uint8)).save(buffer)
            cam.create_dataset(f"frame{t}", data=np.frombuffer(buffer.read_bytes(), np.uint8))
            buffer.unlink()
        env.create_dataset("state", data=np.zeros((len(actions) + 1, 3)))
        f.create_group("policy").create_dataset("actions", data=actions)


def test_convert_stops_at_nan_actions_in_one_line(tmp_path, capsys):
    actions = np.ones((3, 4))
    actions[1, 2] = np.nan
    _robonet_with_actions(tmp_path / "src" / "t.hdf5", actions)
    assert main(["convert", "robonet", str(tmp_path / "src"), "--out", str(tmp_path / "out"),
                 "--size", "8", "--no-progress"]) == 2
    one_line_error(capsys, "convert", "t-cam0", "actions", "NaN or infinity", "row 1")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_tokenize_refuses_a_store_holding_nan_actions(pipeline, tmp_path, capsys):
    data, tokens = tmp_path / "data", tmp_path / "tokens"
    shutil.copytree(pipeline["data"], data)
    actions = np.load(data / "episodes" / "ep1" / "actions.npy")
    actions[3] = np.inf  # a store written before the writer checked its values
    np.save(data / "episodes" / "ep1" / "actions.npy", actions)
    assert tokenize(pipeline["tokenizer"], data, tokens) == 2
    one_line_error(capsys, "tokenize", "ep1", "NaN or infinity", "row 3")
    assert not (tokens / "manifest.json").exists()


def test_training_on_nan_actions_stops_in_one_line_and_saves_nothing(pipeline, tmp_path, capsys):
    tokens = tmp_path / "tokens"
    source = TokenCache.open(pipeline["tokens"])
    writer = TokenCacheWriter(tokens, token_shape=source.token_shape, action_dim=2,
                              codebook_size=source.codebook_size, extra=source.manifest["extra"])
    for episode_id in source.episode_ids():
        actions = np.array(source.actions(episode_id))
        actions[2, 0] = np.nan
        writer.add(episode_id, source.codes(episode_id), actions, source.split_of(episode_id))
    writer.close()
    out = tmp_path / "run"
    assert train(tokens, out) == 2
    one_line_error(capsys, "train", "NaN or infinite", "step 1", "none yet")
    assert not list(out.glob("checkpoints/step_*"))


class _NanAfter(ToyTask):
    """The toy task whose loss turns NaN from step `bad_step` on (as a diverging run's does)."""

    def __init__(self, bad_step: int) -> None:
        super().__init__(noise=0.0)
        self.bad_step = bad_step

    def loss(self, phase, batch, ctx):
        loss, logs = super().loss(phase, batch, ctx)
        return (loss * float("nan") if ctx.step >= self.bad_step else loss), logs


@pytest.mark.parametrize("log_every", [1, 4])
def test_a_loss_turning_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, log_every):
    from maskvit.train.trainer import NonFiniteLossError

    out = tmp_path / "run"
    config = toy_config(steps=8, checkpoint_every=2, keep_checkpoints=5, log_every=log_every)
    trainer = Trainer(_NanAfter(bad_step=4), config, ToyDataset(n=40), out=out, progress=False,
                      tensorboard=False)  # steps 1-4 finite, step 5 (index 4) NaN
    with pytest.raises(NonFiniteLossError) as err:
        trainer.fit()
    assert "\n" not in str(err.value) and "step_00000004" in str(err.value)
    assert [p.name for p in checkpoint_dirs(out)] == ["step_00000002", "step_00000004"]
    assert latest_checkpoint(out).name == "step_00000004"
    weights = load_checkpoint(latest_checkpoint(out)).weights["model"]
    assert all(torch.isfinite(w).all() for w in weights.values())


# ------------------------------------------------ 6. damaged settings are one line


@pytest.mark.parametrize("content, words", [
    ("[]", ["not a JSON object"]),
    ('{"extra": 5}', ["extra 5"]),
    ('{"split_fractions": "abc"}', ["split_fractions"]),
    ('{"resolution": [8, "x"]}', ["resolution"]),
    ("{not json", ["not valid JSON"]),
])
def test_a_damaged_writer_json_is_one_line_for_convert_and_collect(tmp_path, capsys, content,
                                                                   words):
    src = _video_folders(tmp_path / "src")
    store = tmp_path / "store"
    assert _convert(src, store) == 0
    (store / "writer.json").write_text(content)
    (store / "manifest.json").unlink()  # an interrupted job to resume
    capsys.readouterr()
    before = files(store)
    assert _convert(src, store) == 2
    one_line_error(capsys, "convert", "writer.json", *words)
    assert files(store) == before
    collected = tmp_path / "collected"
    assert main(["collect", "--env", "push", "--episodes", "1", "--steps", "2", "--workers", "1",
                 "--out", str(collected), "--no-progress"]) == 0
    (collected / "writer.json").write_text(content)
    capsys.readouterr()
    assert main(["collect", "--env", "push", "--episodes", "2", "--steps", "2", "--workers", "1",
                 "--out", str(collected), "--no-progress"]) == 2
    one_line_error(capsys, "collect", "writer.json", *words)


def _edited(run: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    config = load_config(copy / "config.yaml")
    save_config(edit(config), copy / "config.yaml")
    return copy


@pytest.mark.parametrize("edit, words", [
    (lambda c: replace(c, transformer=replace(c.transformer, depth=2)), ["transformer.depth", "2", "1"]),
    (lambda c: replace(c, transformer=replace(c.transformer, dim=32, mlp_dim=64)),
     ["transformer.dim is 32", "16"]),
    (lambda c: replace(c, tokenizer=replace(c.tokenizer, codebook_size=64),
                       transformer=replace(c.transformer, codebook_size=64)),
     ["transformer.codebook_size is 64", "32"]),
    (lambda c: load_preset("bair64"), ["preset bair64", "transformer.depth is 6"]),
])
def test_a_config_that_disagrees_with_its_weights_is_one_line(pipeline, tmp_path, capsys, edit,
                                                              words):
    model = _edited(pipeline["model"], tmp_path, edit)
    assert main(["predict", "--model", str(model), "--input", str(pipeline["data"]),
                 "--out", str(tmp_path / "p.gif")]) == 2
    one_line_error(capsys, "predict", str(model), "config.yaml", "does not match", *words)
    bundle = tmp_path / "bundle"
    assert main(["export", "--model", str(pipeline["model"]), "--out", str(bundle)]) == 0
    config = load_config(bundle / "transformer" / "config.yaml")
    save_config(edit(config), bundle / "transformer" / "config.yaml")
    capsys.readouterr()
    assert main(["evaluate", "--model", str(bundle), "--data", str(pipeline["data"]),
                 "--out", str(tmp_path / "report"), "--metrics", "psnr"]) == 2
    one_line_error(capsys, "evaluate", "transformer", "does not match", *words)


def test_a_tokenizer_config_that_disagrees_with_its_weights_is_one_line(pipeline, tmp_path,
                                                                        capsys):
    tokenizer = _edited(pipeline["tokenizer"], tmp_path,
                        lambda c: replace(c, tokenizer=replace(c.tokenizer, channels=16)))
    assert main(["reconstruct", "--tokenizer", str(tokenizer), "--data", str(pipeline["data"]),
                 "--out", str(tmp_path / "rec")]) == 2
    one_line_error(capsys, "reconstruct", "tokenizer.channels is 16", "8")
