"""Faults of the data side (issue 12): inputs never overwritten, no silently dropped sources,
export never deletes what it did not write, locked and deterministic stores, validated
manifests, one-line errors for damaged files and bad flags, shareable permissions."""

import contextlib
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import tfrecord
from PIL import Image

import maskvit.commands.predict as predict_command
import maskvit.pretrained as pretrained
from maskvit.cli import main
from maskvit.data import EpisodeStore, EpisodeStoreWriter, TokenCache, TokenCacheWriter
from maskvit.errors import UserError
from maskvit.inference.spec import ModelSpec

RNG = np.random.default_rng(12)


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert str(word) in err, err
    return err


def _store(path, ids=("a", "b"), length=4, size=8, action_dim=2):
    writer = EpisodeStoreWriter(path, source="test", action_dim=action_dim)
    for eid in ids:
        writer.add(eid, RNG.integers(0, 256, (length, size, size, 3), dtype=np.uint8),
                   RNG.normal(size=(length, action_dim)).astype(np.float32), split="test")
    return writer.close()


def _cache(path, ids=("a", "b"), length=4):
    writer = TokenCacheWriter(path, token_shape=(2, 2), action_dim=2, codebook_size=16)
    for eid in ids:
        writer.add(eid, RNG.integers(0, 16, (length, 2, 2)), RNG.normal(size=(length, 2)), "train")
    return writer.close()


def _edit_manifest(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


HOLD = ("import sys\nfrom maskvit.locking import output_lock\n"
        "with output_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n")


@contextlib.contextmanager
def _locked_by_another_process(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


# ---------------------------------------------------------------- A: predict never writes over inputs


class _FakePredictor:
    """Stands in for a trained model: 5-frame clips, 2 context + 3 predicted, 2-D actions."""

    resolution = 8

    def __init__(self, action_dim=2):
        self.config = SimpleNamespace(eval=SimpleNamespace(context_frames=2, predicted_frames=3),
                                      transformer=SimpleNamespace(num_frames=5, action_dim=action_dim))
        self.spec = ModelSpec(name="fake", preset="fake", resolution=8, clip_frames=5,
                              context_frames=2, predicted_frames=3, tokens=(2, 2), codebook_size=4,
                              action_dim=action_dim, goal_conditioned=False,
                              action_low=(-1.0,) * action_dim, action_high=(1.0,) * action_dim,
                              eval=None, plan=None)
        self.calls = []

    def predict(self, context, actions=None, num_frames=3, goal_frame=None, seed=0):
        self.calls.append(actions)
        return np.full((1, num_frames, 8, 8, 3), 7, np.uint8)


@pytest.fixture
def fake_model(monkeypatch):
    model = _FakePredictor()
    monkeypatch.setattr(predict_command, "predictor_from_args", lambda args: model)
    return model


def _predict(*args):
    return main(["predict", *map(str, args)])


def test_predict_refuses_outputs_over_its_inputs(tmp_path, fake_model, capsys):
    clip = tmp_path / "clip.npy"
    frames = RNG.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    np.save(clip, frames)
    actions = tmp_path / "acts.npy"
    np.save(actions, np.zeros((6, 2), np.float32))
    assert _predict("--input", clip, "--out", tmp_path / "clip.gif", "--actions", actions) == 2
    _one_line_error(capsys, "clip.npy", "--input")
    assert _predict("--input", clip, "--out", tmp_path / "acts.gif", "--actions", actions) == 2
    _one_line_error(capsys, "--actions")
    assert _predict("--input", clip, "--out", tmp_path / "p.npy", "--actions", actions) == 2
    _one_line_error(capsys, "GIF")
    store = tmp_path / "store"
    _store(store)
    assert _predict("--input", store, "--out", store / "manifest.json") == 2
    _one_line_error(capsys, "inside")
    np.testing.assert_array_equal(np.load(clip), frames)
    assert json.loads((store / "manifest.json").read_text())["format"] == "maskvit-episodes"
    assert not fake_model.calls  # refused before any work


def test_predict_writes_gif_and_npy_atomically(tmp_path, fake_model):
    clip = tmp_path / "in" / "clip.npy"
    clip.parent.mkdir()
    np.save(clip, RNG.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8))
    np.save(tmp_path / "a.npy", np.ones((6, 2)))
    assert _predict("--input", clip, "--actions", tmp_path / "a.npy", "--futures", 2,
                    "--out", tmp_path / "out" / "pred.gif") == 0
    assert np.load(tmp_path / "out" / "pred.npy").shape == (2, 3, 8, 8, 3)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pred.gif", "pred.npy"]  # no temp files
    assert oct(stat.S_IMODE((tmp_path / "out" / "pred.npy").stat().st_mode)) == oct(0o644)


def test_predict_samples_is_the_old_spelling_of_futures(tmp_path, fake_model, capsys):
    """`--samples` (a plan's samples are CEM's M) was renamed `--futures`; scripts keep working."""
    np.save(tmp_path / "clip.npy", np.zeros((6, 8, 8, 3), np.uint8))
    np.save(tmp_path / "a.npy", np.zeros((6, 2), np.float32))
    assert _predict("--input", tmp_path / "clip.npy", "--actions", tmp_path / "a.npy",
                    "--samples", 3, "--out", tmp_path / "p.gif") == 0
    assert np.load(tmp_path / "p.npy").shape[0] == 3
    notice = [line for line in capsys.readouterr().err.splitlines() if "deprecated" in line]
    assert notice == ["maskvit predict: --samples is deprecated; use --futures"]


# ---------------------------------------------------------------- B: every source is one episode


def _image_folder(folder, frames):
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:03d}.png")


def _convert(*args):
    return main(["convert", *map(str, args), "--no-progress"])


def _short_hash(relative):
    return hashlib.sha1(relative.encode()).hexdigest()[:8]


def test_videos_with_colliding_names_each_become_an_episode(tmp_path):
    names = ["my clip", "my_clip", "猫", "видео", "plain"]
    pictures = {n: RNG.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8) for n in names}
    for name, frames in pictures.items():
        _image_folder(tmp_path / "src" / name, frames)
    assert _convert("videos", tmp_path / "src", "--out", tmp_path / "out", "--size", 8) == 0
    store = EpisodeStore.open(tmp_path / "out")
    expected = {"my clip": f"my_clip-{_short_hash('my clip')}", "my_clip": "my_clip", "plain": "plain",
                "猫": f"episode-{_short_hash('猫')}", "видео": f"episode-{_short_hash('видео')}"}
    assert len(store) == 5 and sorted(store.episode_ids()) == sorted(f"{i}-00000" for i in expected.values())
    for name, eid in expected.items():  # each id holds its own source's frames
        np.testing.assert_array_equal(store.load(f"{eid}-00000")["frames"], pictures[name])


def test_videos_differing_only_in_extension_or_slash_fail_naming_both(tmp_path, capsys):
    (tmp_path / "src" / "clips").mkdir(parents=True)
    for name in ("clip.mp4", "clip.avi"):
        (tmp_path / "src" / name).write_bytes(b"not decoded: the names collide first")
    assert _convert("videos", tmp_path / "src", "--out", tmp_path / "out") == 2
    _one_line_error(capsys, "clip.mp4", "clip.avi", "'clip'")
    assert not (tmp_path / "out").exists()
    (tmp_path / "src" / "clip.avi").unlink()
    (tmp_path / "src" / "clips" / "a.mp4").write_bytes(b"x")
    (tmp_path / "src" / "clips_a.mp4").write_bytes(b"x")
    assert _convert("videos", tmp_path / "src", "--out", tmp_path / "out") == 2
    _one_line_error(capsys, "clips_a.mp4", "a.mp4", "'clips_a'")


def _robonet(path, frames_count=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        env = f.create_group("env")
        env.attrs["n_cams"], env.attrs["cam_encoding"] = 1, "jpg"
        cam = env.create_group("cam0_video")
        for t in range(frames_count):
            buffer = Path(str(path) + f".{t}.jpg")
            Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buffer)
            cam.create_dataset(f"frame{t}", data=np.frombuffer(buffer.read_bytes(), np.uint8))
            buffer.unlink()
        env.create_dataset("state", data=RNG.normal(size=(frames_count, 3)))
        f.create_group("policy").create_dataset("actions", data=RNG.normal(size=(frames_count - 1, 4)))


def test_robonet_files_with_one_stem_in_two_folders_stay_apart(tmp_path):
    _robonet(tmp_path / "src" / "a" / "traj.hdf5")
    _robonet(tmp_path / "src" / "b" / "traj.hdf5")
    _robonet(tmp_path / "src" / "flat.hdf5")
    assert _convert("robonet", tmp_path / "src", "--out", tmp_path / "out", "--size", 8) == 0
    assert EpisodeStore.open(tmp_path / "out").episode_ids() == ["a_traj-cam0", "b_traj-cam0", "flat-cam0"]


def test_robonet_one_dimensional_actions_are_a_one_line_error(tmp_path, capsys):
    _robonet(tmp_path / "src" / "t.hdf5")
    with h5py.File(tmp_path / "src" / "t.hdf5", "a") as f:
        del f["policy/actions"]
        f["policy"].create_dataset("actions", data=np.zeros(2))
    assert _convert("robonet", tmp_path / "src", "--out", tmp_path / "out") == 2
    _one_line_error(capsys, "t.hdf5", "policy/actions")
    assert _convert("robonet", tmp_path / "src", "--out", tmp_path / "out", "--action-dim", 4) == 2
    _one_line_error(capsys, "t.hdf5", "policy/actions")


def test_kitti_drive_copied_under_two_folders_fails_naming_both(tmp_path, capsys):
    for parent in ("2011_09_26", "backup"):
        _image_folder(tmp_path / "src" / parent / "2011_09_26_drive_0001_sync" / "image_02" / "data",
                      RNG.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8))
    assert _convert("kitti", tmp_path / "src", "--out", tmp_path / "out", "--size", 8) == 2
    _one_line_error(capsys, "2011_09_26/2011_09_26_drive_0001_sync", "backup/2011_09_26_drive_0001_sync")


def _bair(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = tfrecord.TFRecordWriter(str(path))
    record = {}
    for t in range(2):
        record[f"{t}/image_aux1/encoded"] = (RNG.integers(0, 256, 64 * 64 * 3, dtype=np.uint8).tobytes(), "byte")
        record[f"{t}/action"] = ([0.0] * 4, "float")
        record[f"{t}/endeffector_pos"] = ([0.0] * 3, "float")
    writer.write(record)
    writer.close()


def test_bair_files_whose_names_clean_alike_stay_apart(tmp_path):
    _bair(tmp_path / "src" / "train" / "traj 1.tfrecords")
    _bair(tmp_path / "src" / "train" / "traj_1.tfrecords")
    assert _convert("bair", tmp_path / "src", "--out", tmp_path / "out", "--val-fraction", 0) == 0
    assert sorted(EpisodeStore.open(tmp_path / "out").episode_ids()) == [
        "train-traj_1-0000", f"train-traj_1-{_short_hash('traj 1.tfrecords')}-0000"]


def test_resuming_a_store_named_by_an_older_version_is_refused_when_names_changed(tmp_path, capsys):
    _robonet(tmp_path / "src" / "a" / "traj.hdf5")
    old = EpisodeStoreWriter(tmp_path / "out", source="robonet", action_dim=4, resolution=8)
    old.add("traj-cam0", np.zeros((3, 8, 8, 3), np.uint8), np.zeros((3, 4), np.float32))  # the old name
    assert _convert("robonet", tmp_path / "src", "--out", tmp_path / "out", "--size", 8) == 2
    _one_line_error(capsys, "'traj-cam0' is now 'a_traj-cam0'", "--overwrite")
    assert _convert("robonet", tmp_path / "src", "--out", tmp_path / "out", "--size", 8, "--overwrite") == 0
    assert EpisodeStore.open(tmp_path / "out").episode_ids() == ["a_traj-cam0"]


def test_convert_overwrite_never_deletes_a_folder_that_is_not_a_store(tmp_path, capsys):
    _image_folder(tmp_path / "src" / "v", RNG.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert _convert("videos", tmp_path / "src", "--out", tmp_path / "mine", "--overwrite") == 2
    _one_line_error(capsys, "not an episode store")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert _convert("videos", tmp_path / "src", "--out", tmp_path, "--overwrite") == 2
    _one_line_error(capsys, "holds the source")
    assert (tmp_path / "src" / "v" / "000.png").is_file()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a token cache"):
        TokenCacheWriter(tmp_path / "cache", token_shape=(2, 2), action_dim=0, codebook_size=4, overwrite=True)
    assert (tmp_path / "cache" / "notes.txt").is_file()


# ---------------------------------------------------------------- C: export deletes only bundles


def _fake_slim_copy(run, out, step=None):
    (out / "checkpoints" / "step_00000001").mkdir(parents=True)
    (out / "config.yaml").write_text(f"run: {run.name}\n")
    (out / "checkpoints" / "latest").write_text("step_00000001\n")
    weights = out / "checkpoints" / "step_00000001" / "model.safetensors"
    weights.write_bytes(b"w")
    os.chmod(weights, 0o600)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "_slim_copy", _fake_slim_copy)
    for name in ("model", "tok"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text("x: 1\n")
    return tmp_path / "model", tmp_path / "tok"


def _export(model, tok, out):
    return main(["export", "--model", str(model), "--tokenizer", str(tok), "--out", str(out)])


def test_export_refuses_to_replace_what_it_did_not_write(tmp_path, runs, capsys):
    model, tok = runs
    store = tmp_path / "store"
    _store(store)
    assert _export(model, tok, store) == 2
    _one_line_error(capsys, "not a bundle", "delete it yourself", "another --out")
    assert EpisodeStore.open(store).episode_ids() == ["a", "b"]
    for out in (model, model / "bundle", tmp_path, tok):
        assert _export(model, tok, out) == 2
        _one_line_error(capsys, "overlaps")
    assert (model / "config.yaml").is_file() and (tok / "config.yaml").is_file()
    (tmp_path / "file").write_text("mine")
    assert _export(model, tok, tmp_path / "file") == 2
    _one_line_error(capsys, "not a bundle")


def test_export_marks_its_bundles_replaces_only_them_with_shareable_modes(tmp_path, runs):
    model, tok = runs
    out = tmp_path / "bundle"
    old_umask = os.umask(0o077)
    try:
        assert _export(model, tok, out) == 0
        assert json.loads((out / "bundle.json").read_text())["format"] == "maskvit-bundle"
        assert _export(model, tok, out) == 0  # its own bundle: replaced
    finally:
        os.umask(old_umask)
    for path in [out, *out.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle.") and "lock" not in p.name]
    (out / "bundle.json").unlink()  # a bundle from before the marker (like the shipped one)
    assert _export(model, tok, out) == 0
    (out / "transformer" / "notes.txt").write_text("mine")
    (out / "bundle.json").unlink()
    assert _export(model, tok, out) == 2


def test_export_holds_the_lock_on_its_output(tmp_path, runs, capsys):
    model, tok = runs
    with _locked_by_another_process(tmp_path / "bundle"):
        assert _export(model, tok, tmp_path / "bundle") == 2
    _one_line_error(capsys, "being written by", "pid")
    assert not (tmp_path / "bundle").exists()


# ---------------------------------------------------------------- D: one writer, deterministic order


def test_second_collect_or_convert_into_a_store_is_refused(tmp_path, capsys):
    with _locked_by_another_process(tmp_path / "store"):
        assert main(["collect", "--episodes", "1", "--steps", "2", "--out", str(tmp_path / "store"),
                     "--no-progress"]) == 2
        _one_line_error(capsys, "being written by", "pid")
        _image_folder(tmp_path / "src" / "v", RNG.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8))
        assert _convert("videos", tmp_path / "src", "--out", tmp_path / "store") == 2
        _one_line_error(capsys, "being written by")
    assert not (tmp_path / "store").exists()


def _store_of_fixed_episodes(path, ids, length=4, size=8):
    """Each id's episode has the same content whatever the order it is written in."""
    writer = EpisodeStoreWriter(path, source="test", action_dim=2)
    for eid in ids:
        rng = np.random.default_rng(int(eid.split("_")[1]))
        writer.add(eid, rng.integers(0, 256, (length, size, size, 3), dtype=np.uint8),
                   rng.normal(size=(length, 2)).astype(np.float32), split="test")
    return writer.close()


def test_manifest_order_does_not_depend_on_write_order(tmp_path):
    """The same episodes written in two orders: one manifest (order, and content digests)."""
    ids = ["push_000010", "push_000002", "push_1000000", "push_000000", "push_999999"]
    first = _store_of_fixed_episodes(tmp_path / "one", ids)
    second = _store_of_fixed_episodes(tmp_path / "two", list(reversed(ids)))
    expected = ["push_000000", "push_000002", "push_000010", "push_999999", "push_1000000"]
    assert first.episode_ids() == second.episode_ids() == expected
    assert EpisodeStore.open(tmp_path / "one").manifest["episodes"] == \
        EpisodeStore.open(tmp_path / "two").manifest["episodes"]


# ---------------------------------------------------------------- E: ids read from manifests


@pytest.mark.parametrize("bad", ["../../x", "/etc", "a/b", "", 3, "x.partial"])
def test_episode_ids_in_a_manifest_are_validated(tmp_path, bad):
    _store(tmp_path / "s")
    _edit_manifest(tmp_path / "s", lambda m: m["episodes"][0].update(id=bad))
    with pytest.raises(UserError, match="invalid episode id"):
        EpisodeStore.open(tmp_path / "s")
    _cache(tmp_path / "c")
    _edit_manifest(tmp_path / "c", lambda m: m["episodes"][0].update(id=bad))
    with pytest.raises(UserError, match="invalid episode id"):
        TokenCache.open(tmp_path / "c")


def test_duplicate_episode_ids_in_a_manifest_are_refused(tmp_path):
    _store(tmp_path / "s")
    _edit_manifest(tmp_path / "s", lambda m: m["episodes"][1].update(id="a"))
    with pytest.raises(UserError, match="listed twice"):
        EpisodeStore.open(tmp_path / "s")
    _cache(tmp_path / "c")
    _edit_manifest(tmp_path / "c", lambda m: m["episodes"][1].update(id="a"))
    with pytest.raises(UserError, match="listed twice"):
        TokenCache.open(tmp_path / "c")


def test_predict_on_a_store_with_a_path_as_id_writes_nothing(tmp_path, fake_model, capsys):
    _store(tmp_path / "s")
    _edit_manifest(tmp_path / "s", lambda m: m["episodes"][0].update(id="../../escape"))
    assert _predict("--input", tmp_path / "s", "--out", tmp_path / "o" / "p.gif") == 2
    _one_line_error(capsys, "invalid episode id")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- F: damaged files, bad flags


def test_damaged_token_cache_manifest_is_one_line(tmp_path):
    _cache(tmp_path / "c")
    (tmp_path / "c" / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        TokenCache.open(tmp_path / "c")
    (tmp_path / "c" / "manifest.json").write_text(json.dumps({"format": "maskvit-tokens"}))
    with pytest.raises(UserError, match="no 'token_shape'"):
        TokenCache.open(tmp_path / "c")
    _cache(tmp_path / "d")
    _edit_manifest(tmp_path / "d", lambda m: m["episodes"][1].update(length=99))
    with pytest.raises(UserError, match="damaged manifest"):
        TokenCache.open(tmp_path / "d")
    (tmp_path / "d" / "header.json").write_text("[")
    with pytest.raises(UserError, match="not valid JSON"):
        TokenCacheWriter(tmp_path / "d", token_shape=(2, 2), action_dim=2, codebook_size=16)


def test_damaged_store_settings_and_metadata_are_one_line(tmp_path):
    _store(tmp_path / "s")
    (tmp_path / "s" / "episodes" / "a" / "meta.json").write_text("{")
    with pytest.raises(UserError, match=r"meta.json: corrupt .* delete the folder"):
        EpisodeStoreWriter(tmp_path / "s", source="test", action_dim=2)
    (tmp_path / "s" / "writer.json").write_text("nope")
    with pytest.raises(UserError, match=r"writer.json: corrupt"):
        EpisodeStoreWriter(tmp_path / "s", source="test", action_dim=2)


def test_arrays_that_disagree_with_the_manifest_are_one_line(tmp_path):
    _store(tmp_path / "s", length=4)
    _edit_manifest(tmp_path / "s", lambda m: m["episodes"][0].update(length=6))
    store = EpisodeStore.open(tmp_path / "s")
    with pytest.raises(UserError, match="manifest says"):
        store.load("a")
    with pytest.raises(UserError, match="manifest says"):
        store.load_clip("a", 2, 4)
    np.save(tmp_path / "s" / "episodes" / "b" / "actions.npy", np.zeros((4, 3), np.float32))  # wrong width
    with pytest.raises(UserError, match="manifest says"):
        EpisodeStore.open(tmp_path / "s").load("b")


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "object"])
def test_corrupt_npy_in_a_store_is_one_line(tmp_path, damage):
    _store(tmp_path / "s")
    file = tmp_path / "s" / "episodes" / "a" / "frames.npy"
    if damage == "truncated":
        file.write_bytes(file.read_bytes()[:150])
    elif damage == "empty":
        file.write_bytes(b"")
    elif damage == "garbage":
        file.write_bytes(b"\x80\x04 not an array at all")
    else:
        np.save(file, np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True)
    store = EpisodeStore.open(tmp_path / "s")
    with pytest.raises(UserError, match="frames.npy"):
        store.load("a")
    with pytest.raises(UserError, match="frames.npy"):
        store.load_clip("a", 0, 2)


@pytest.mark.parametrize("content", ["garbage", "object", "npz", "float"])
def test_predict_rejects_unreadable_npy_input(tmp_path, fake_model, capsys, content):
    clip = tmp_path / "clip.npy"
    if content == "garbage":
        clip.write_bytes(b"GIF89a not numpy")
    elif content == "object":
        np.save(clip, np.array([None, 1], dtype=object), allow_pickle=True)
    elif content == "npz":
        with open(clip, "wb") as f:
            np.savez(f, a=np.zeros(3))
    else:
        np.save(clip, np.zeros((4, 8, 8, 3), np.float32))
    assert _predict("--input", clip, "--out", tmp_path / "p.gif") == 2
    _one_line_error(capsys, "clip.npy")
    assert not (tmp_path / "p.gif").exists()


@pytest.mark.parametrize(("flags", "words"), [
    (["--futures", "0"], ["--futures must be at least 1"]),
    (["--frames", "-3"], ["--frames must be between 1 and 3"]),
    (["--context", "-1"], ["--context must be between 1 and 4"]),
    (["--context", "0"], ["--context must be between 1 and 4"]),
    (["--context", "4", "--frames", "2"], ["--frames must be between 1 and 1"]),
])
def test_predict_counts_out_of_range_say_the_range(tmp_path, fake_model, capsys, flags, words):
    np.save(tmp_path / "clip.npy", np.zeros((6, 8, 8, 3), np.uint8))
    np.save(tmp_path / "a.npy", np.zeros((6, 2), np.float32))
    assert _predict("--input", tmp_path / "clip.npy", "--actions", tmp_path / "a.npy",
                    "--out", tmp_path / "p.gif", *flags) == 2
    _one_line_error(capsys, *words)


@pytest.mark.parametrize(("actions", "words"), [
    (np.array([[0.0, 1.0]] * 4 + [[np.nan, 0.0]]), ["NaN or infinity", "row 4"]),
    (np.array([[0.0, np.inf]] * 5), ["NaN or infinity"]),
    (np.zeros((5, 3)), ["(5, 2)", "(5, 3)"]),
    (np.zeros((4, 2)), ["(5, 2)", "(4, 2)"]),
    (np.zeros(10), ["(5, 2)"]),
    (np.array(["a"] * 10).reshape(5, 2), ["real numbers"]),
])
def test_predict_rejects_bad_actions(tmp_path, fake_model, capsys, actions, words):
    np.save(tmp_path / "clip.npy", np.zeros((6, 8, 8, 3), np.uint8))
    np.save(tmp_path / "a.npy", actions)
    assert _predict("--input", tmp_path / "clip.npy", "--actions", tmp_path / "a.npy",
                    "--out", tmp_path / "p.gif") == 2
    _one_line_error(capsys, "a.npy", *words)
    assert not fake_model.calls


# ---------------------------------------------------------------- G: shareable permissions


def test_stores_and_caches_are_shareable_whatever_the_umask(tmp_path):
    old_umask = os.umask(0o077)
    try:
        _store(tmp_path / "new" / "s")
        _cache(tmp_path / "new" / "c")
    finally:
        os.umask(old_umask)
    for root in (tmp_path / "new" / "s", tmp_path / "new" / "c"):
        for path in [root, *root.rglob("*")]:
            assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o755  # a parent it made


def test_export_leaves_out_the_tokenizers_discriminator(tmp_path):
    """Inference never loads the PatchGAN critic (11 MB of the push64 tokenizer)."""
    import torch
    from safetensors.torch import save_file

    run = tmp_path / "tok"
    step = run / "checkpoints" / "step_00000003"
    step.mkdir(parents=True)
    (run / "config.yaml").write_text("x: 1\n")
    (run / "checkpoints" / "latest").write_text("step_00000003\n")
    save_file({"w": torch.ones(2)}, str(step / "vqgan.safetensors"))
    save_file({"w": torch.zeros(3)}, str(step / "discriminator.safetensors"))
    out = tmp_path / "slim"
    pretrained._slim_copy(run, out)
    kept = sorted(p.name for p in (out / "checkpoints" / "step_00000003").iterdir())
    assert kept == ["vqgan.safetensors"]


def test_export_step_picks_that_checkpoint_or_names_the_ones_there(tmp_path, capsys):
    """`export --step N` packs checkpoint N (to score a run's checkpoints), not the latest."""
    import torch
    from safetensors.torch import load_file, save_file

    for name, steps in (("model", (1000, 2000)), ("tok", (5,))):
        for step in steps:
            folder = tmp_path / name / "checkpoints" / f"step_{step:08d}"
            folder.mkdir(parents=True)
            save_file({"w": torch.full((2,), float(step))}, str(folder / "model.safetensors"))
        (tmp_path / name / "config.yaml").write_text("x: 1\n")
        (tmp_path / name / "checkpoints" / "latest").write_text(f"step_{steps[-1]:08d}\n")
    args = ["export", "--model", str(tmp_path / "model"), "--tokenizer", str(tmp_path / "tok")]
    assert main([*args, "--step", "1000", "--out", str(tmp_path / "b1000")]) == 0
    assert main([*args, "--out", str(tmp_path / "blatest")]) == 0
    for bundle, step in (("b1000", 1000), ("blatest", 2000)):
        ckpt = tmp_path / bundle / "transformer" / "checkpoints"
        assert (ckpt / "latest").read_text().strip() == f"step_{step:08d}"
        assert load_file(str(ckpt / f"step_{step:08d}" / "model.safetensors"))["w"][0] == step
    assert main([*args, "--step", "1500", "--out", str(tmp_path / "b1500")]) == 2
    _one_line_error(capsys, "no checkpoint at step 1500", "1000, 2000")
    assert not (tmp_path / "b1500").exists()
