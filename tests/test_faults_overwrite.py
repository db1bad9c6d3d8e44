"""Issue 27, "data overwritten": outputs never land in (or delete) what a command did not make.

1. predict's GIF and .npy never go into a store, cache, run or bundle, nor over a file
   unless --overwrite; 2. a run starts only in a new or empty folder (or continues a run of
   its kind), and --overwrite deletes only what the format wrote; 7. export's staging and
   swap leave the old or the new bundle at every step, and a killed export's leftovers
   are cleaned by the next one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fault_pipeline import files, make_pipeline, one_line_error, sets, tokenize, train
from PIL import Image

import maskvit.commands.predict as predict_command
from maskvit.cli import main
from maskvit.data import EpisodeStore
from maskvit.inference.spec import ModelSpec
from maskvit.locking import output_lock

HOLD_LOCK = ("import sys\nfrom maskvit.locking import output_lock\n"
             "with output_lock(sys.argv[1], 'bundle'):\n    print('held', flush=True)\n"
             "    sys.stdin.read()\n")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict[str, Path]:
    return make_pipeline(tmp_path_factory.mktemp("pipeline"))


# ------------------------------------------------------------------ 1. predict's outputs


class _FakePredictor:
    """Stands in for a trained model (16×16 frames, 2 context + 2 predicted, 2-D actions)."""

    resolution = 16

    def __init__(self):
        self.config = SimpleNamespace(
            eval=SimpleNamespace(context_frames=2, predicted_frames=2),
            transformer=SimpleNamespace(num_frames=4, action_dim=2, goal_conditioned=False))
        self.spec = ModelSpec(name="fake", preset="fake", resolution=16, clip_frames=4,
                              context_frames=2, predicted_frames=2, tokens=(2, 2), codebook_size=4,
                              action_dim=2, goal_conditioned=False, action_low=(-1.0, -1.0),
                              action_high=(1.0, 1.0), eval=None, plan=None)
        self.calls = 0

    def predict(self, context, actions=None, num_frames=2, goal_frame=None, seed=0):
        self.calls += 1
        return np.full((1, num_frames, 16, 16, 3), 7, np.uint8)


@pytest.fixture
def fake_model(monkeypatch) -> _FakePredictor:
    model = _FakePredictor()
    monkeypatch.setattr(predict_command, "predictor_from_args", lambda args: model)
    return model


def _predict(data: Path, out: Path, *extra: str) -> int:
    return main(["predict", "--input", str(data), "--out", str(out), *extra])


@pytest.mark.parametrize("target, kind", [
    ("data/episodes/ep0/frames.gif", "episode store"),  # the .npy would be the episode's frames
    ("tokens/codes.gif", "token cache"),
    ("model/checkpoints/step_00000003/model.gif", "training run"),
])
def test_predict_never_writes_into_a_store_cache_or_run(pipeline, fake_model, tmp_path, capsys,
                                                        target, kind):
    root = tmp_path / "copy"
    for name in ("data", "tokens", "model"):
        shutil.copytree(pipeline[name], root / name)
    before = files(root)
    assert _predict(pipeline["data"], root / target) == 2
    one_line_error(capsys, "predict", kind, "inside")
    assert files(root) == before
    assert fake_model.calls == 0  # refused before any work
    EpisodeStore.open(root / "data").load("ep0")  # the store still reads back whole


def test_predict_writes_beside_files_that_merely_share_maskvit_names(pipeline, fake_model,
                                                                     tmp_path):
    project = tmp_path / "project"  # another tool's config.yaml, checkpoints/, header.json
    (project / "checkpoints").mkdir(parents=True)
    (project / "config.yaml").write_text("lr: 1\n")
    (project / "header.json").write_text("{}")
    assert _predict(pipeline["data"], project / "p.gif") == 0
    assert (project / "p.npy").is_file()


def test_predict_replaces_an_existing_file_only_with_overwrite(pipeline, fake_model, tmp_path,
                                                               capsys):
    unrelated = np.arange(6.0)
    np.save(tmp_path / "act.npy", unrelated)
    assert _predict(pipeline["data"], tmp_path / "act.gif") == 2
    one_line_error(capsys, "predict", "act.npy", "--overwrite")
    np.testing.assert_array_equal(np.load(tmp_path / "act.npy"), unrelated)
    assert not (tmp_path / "act.gif").exists() and fake_model.calls == 0
    assert _predict(pipeline["data"], tmp_path / "act.gif", "--overwrite") == 0
    assert np.load(tmp_path / "act.npy").shape == (1, 2, 16, 16, 3)


# ------------------------------------------------------------------ 2. a run's --out


@pytest.mark.parametrize("name, words", [("tokens", ["token cache"]), ("data", ["episode store"]),
                                         ("notes", ["not empty", "holds no run"])])
def test_train_starts_only_in_a_new_or_empty_folder(pipeline, tmp_path, capsys, name, words):
    out = tmp_path / name
    if name == "notes":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    else:
        shutil.copytree(pipeline[name], out)
    before = files(out)
    assert train(pipeline["tokens"], out) == 2
    one_line_error(capsys, "train", *words)
    assert main(["train-tokenizer", "--data", str(pipeline["data"]), "--out", str(out),
                 "--no-progress", "--device", "cpu", *sets(["tokenizer_train.steps=1"])]) == 2
    one_line_error(capsys, "train-tokenizer", *words)
    assert files(out) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert train(pipeline["tokens"], empty, "--max-steps", "1") == 0  # an empty folder is fine


def test_resume_continues_only_a_run_of_its_own_kind(pipeline, tmp_path, capsys):
    tokenizer, model = tmp_path / "tokenizer", tmp_path / "model"
    shutil.copytree(pipeline["tokenizer"], tokenizer)
    shutil.copytree(pipeline["model"], model)
    before = files(tmp_path)
    assert main(["train", "--data", str(pipeline["tokens"]), "--out", str(tokenizer), "--resume",
                 "--no-progress", "--device", "cpu"]) == 2
    one_line_error(capsys, "train", "not a transformer run", "vqgan")
    assert main(["train-tokenizer", "--data", str(pipeline["data"]), "--out", str(model),
                 "--resume", "--no-progress", "--device", "cpu"]) == 2
    one_line_error(capsys, "train-tokenizer", "not a tokenizer run", "model")
    assert files(tmp_path) == before


def _run_inside(folder: Path, pipeline) -> None:
    """What `train --out FOLDER` did to a store or cache before it was refused."""
    shutil.copytree(pipeline["model"] / "checkpoints", folder / "checkpoints")
    shutil.copy(pipeline["model"] / "config.yaml", folder / "config.yaml")


def test_overwrite_deletes_only_what_the_cache_or_store_wrote(pipeline, tmp_path, capsys):
    tokens = tmp_path / "tokens"
    shutil.copytree(pipeline["tokens"], tokens)
    _run_inside(tokens, pipeline)
    before = files(tokens)
    assert tokenize(pipeline["tokenizer"], pipeline["data"], tokens, "--overwrite") == 2
    one_line_error(capsys, "tokenize", "checkpoints", "config.yaml")
    assert files(tokens) == before  # the run's checkpoints are still there

    store = tmp_path / "store"
    shutil.copytree(pipeline["data"], store)
    _run_inside(store, pipeline)
    (tmp_path / "src" / "clip").mkdir(parents=True)
    for index in range(2):
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "src" / "clip" / f"{index}.png")
    before = files(store)
    assert main(["convert", "videos", str(tmp_path / "src"), "--out", str(store), "--overwrite",
                 "--no-progress"]) == 2
    one_line_error(capsys, "convert", "checkpoints")
    assert files(store) == before

    plain = tmp_path / "plain"  # a cache holding only its own files is rewritten
    shutil.copytree(pipeline["tokens"], plain)
    assert tokenize(pipeline["tokenizer"], pipeline["data"], plain, "--overwrite") == 0
    assert json.loads((plain / "manifest.json").read_text())["num_episodes"] == 6


# ------------------------------------------------------- 7. export's staging and swap

# Runs export in a child process that dies (as with kill -9: no cleanup runs) at one point.
CRASHING_EXPORT = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import maskvit.pretrained as pretrained

    model, out, where, step = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if where == "staging":  # while the tokenizer's weights are being copied
        real_copy = pretrained._slim_copy
        def copy(run, target, step=None):
            if target.name == "tokenizer":
                os._exit(137)
            real_copy(run, target, step)
        pretrained._slim_copy = copy
    else:  # between "old bundle aside" and "new bundle in"
        real_rename = os.rename
        def rename(src, dst):
            if Path(dst) == out:
                os._exit(137)
            real_rename(src, dst)
        os.rename = rename
    pretrained.export_bundle(model, out, step=step)
""")


def _crash_export(model: Path, out: Path, where: str, step: int) -> None:
    proc = subprocess.run([sys.executable, "-c", CRASHING_EXPORT, str(model), str(out), where,
                           str(step)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 137, proc.stderr


def _export(model: Path, out: Path, step: int) -> int:
    return main(["export", "--model", str(model), "--out", str(out), "--step", str(step)])


def _bundle_step(bundle: Path) -> str:
    return (bundle / "transformer" / "checkpoints" / "latest").read_text().strip()


def _leftovers(bundle: Path) -> list[str]:
    """Siblings an export of `bundle` made, other than its lock file."""
    return sorted(p.name for p in bundle.parent.iterdir()
                  if p.name.startswith(f".{bundle.name}.") and not p.name.endswith(".maskvit-lock"))


def test_export_killed_between_its_renames_gets_its_old_bundle_back(pipeline, tmp_path):
    from maskvit.pretrained import recover_bundle

    bundle = tmp_path / "bundle"
    assert _export(pipeline["model"], bundle, 3) == 0
    _crash_export(pipeline["model"], bundle, "renames", 2)
    assert not bundle.exists()  # the old bundle is aside, the new one complete beside it
    assert [name.split("-")[2] for name in _leftovers(bundle)] == ["new", "old"]
    with output_lock(bundle, "bundle"):
        recover_bundle(bundle)
    assert _bundle_step(bundle) == "step_00000003" and _leftovers(bundle) == []
    _crash_export(pipeline["model"], bundle, "renames", 2)
    assert _export(pipeline["model"], bundle, 1) == 0  # the next export recovers, then replaces
    assert _bundle_step(bundle) == "step_00000001" and _leftovers(bundle) == []


def test_export_killed_while_staging_leaves_the_bundle_and_the_next_one_cleans_up(pipeline,
                                                                                  tmp_path):
    bundle = tmp_path / "bundle"
    assert _export(pipeline["model"], bundle, 3) == 0
    before = files(bundle)
    _crash_export(pipeline["model"], bundle, "staging", 2)
    assert files(bundle) == before
    [staging] = _leftovers(bundle)
    assert (tmp_path / staging / "transformer").is_dir()  # half a bundle, 38 MB at full size
    mine = tmp_path / ".bundle.maskvit-export-new-mine"  # the right name, but no marker
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    other = tmp_path / ".bundle.v2.maskvit-export-new-abc"  # staging of another bundle's export
    shutil.copytree(tmp_path / staging, other)
    assert _export(pipeline["model"], bundle, 2) == 0
    assert _bundle_step(bundle) == "step_00000002"
    assert _leftovers(bundle) == [mine.name, other.name]
    assert (mine / "notes.txt").read_text() == "mine"


def test_a_live_exports_staging_is_never_cleaned(pipeline, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    assert _export(pipeline["model"], bundle, 3) == 0
    _crash_export(pipeline["model"], bundle, "staging", 2)
    [staging] = _leftovers(bundle)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(bundle)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # as a live export holds it
        assert _export(pipeline["model"], bundle, 2) == 2
        one_line_error(capsys, "export", "being written")
        assert _leftovers(bundle) == [staging]
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
