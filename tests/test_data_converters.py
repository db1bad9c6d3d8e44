"""Converters read small files written here in the exact source formats."""

import io
import json

import av
import h5py
import numpy as np
import pytest
import tfrecord
from PIL import Image

from maskvit.cli import main
from maskvit.data import EpisodeStore

RNG = np.random.default_rng(0)


def _convert(*args):
    return main(["convert", *map(str, args), "--no-progress"])


def _assert_one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert str(word) in err, err


def _mp4_bytes(frames, fps=10):
    """Lossless (libx264rgb, crf 0) mp4 so decoded frames equal the originals."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264rgb", rate=fps, options={"crf": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "rgb24"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


# ---------------------------------------------------------------- BAIR


def _bair_trajectory(steps=30):
    return (RNG.integers(0, 256, (steps, 64, 64, 3), dtype=np.uint8),
            RNG.normal(size=(steps, 4)).astype(np.float32), RNG.normal(size=(steps, 3)).astype(np.float32))


def _write_bair(path, trajectories):
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = tfrecord.TFRecordWriter(str(path))
    for frames, actions, states in trajectories:
        record = {}
        for t in range(len(frames)):
            record[f"{t}/image_aux1/encoded"] = (frames[t].tobytes(), "byte")
            record[f"{t}/image_main/encoded"] = (frames[t].tobytes(), "byte")
            record[f"{t}/action"] = (actions[t].tolist(), "float")
            record[f"{t}/endeffector_pos"] = (states[t].tolist(), "float")
        writer.write(record)
    writer.close()


def test_bair_tfrecords_round_trip(tmp_path):
    train, test = [_bair_trajectory(), _bair_trajectory()], [_bair_trajectory()]
    src = tmp_path / "softmotion30_44k"
    _write_bair(src / "train" / "traj_0_to_1.tfrecords", train)
    _write_bair(src / "test" / "traj_0_to_0.tfrecords", test)
    assert _convert("bair", tmp_path, "--out", tmp_path / "out", "--val-fraction", "0") == 0
    store = EpisodeStore.open(tmp_path / "out")
    assert store.action_dim == 4 and store.resolution == (64, 64)
    assert len(store.episode_ids("train")) == 2 and len(store.episode_ids("test")) == 1
    for eid, (frames, actions, states) in zip(store.episode_ids("train") + store.episode_ids("test"),
                                              train + test, strict=True):
        episode = store.load(eid)
        np.testing.assert_array_equal(episode["frames"], frames)
        np.testing.assert_array_equal(episode["actions"], actions)
        np.testing.assert_array_equal(episode["states"], states)


def test_bair_corrupt_file_fails_cleanly(tmp_path, capsys):
    good = tmp_path / "src" / "train" / "traj_0_to_0.tfrecords"
    _write_bair(good, [_bair_trajectory(3)])
    bad = tmp_path / "src" / "train" / "traj_1_to_1.tfrecords"
    _write_bair(bad, [_bair_trajectory(3)])
    bad.write_bytes(bad.read_bytes()[:200])  # truncated
    assert _convert("bair", tmp_path / "src", "--out", tmp_path / "out") == 2
    _assert_one_line_error(capsys, "traj_1_to_1.tfrecords")
    assert not (tmp_path / "out" / "manifest.json").exists()  # never looks complete


def test_bair_wrong_format_and_empty_folder(tmp_path, capsys):
    path = tmp_path / "src" / "test" / "x.tfrecords"
    path.parent.mkdir(parents=True)
    writer = tfrecord.TFRecordWriter(str(path))
    writer.write({"0/image_main/encoded": (b"\0" * 12288, "byte")})
    writer.close()
    assert _convert("bair", tmp_path / "src", "--out", tmp_path / "out") == 2
    _assert_one_line_error(capsys, "x.tfrecords", "image_aux1")
    assert not (tmp_path / "out").exists()  # nothing converted: no output left behind
    (tmp_path / "empty").mkdir()
    assert _convert("bair", tmp_path / "empty", "--out", tmp_path / "out2") == 2
    _assert_one_line_error(capsys, "no BAIR tfrecords")
    assert not (tmp_path / "out2").exists()


# ---------------------------------------------------------------- RoboNet


def _write_robonet(path, frames, actions, states, encoding, image_format="RGB"):
    with h5py.File(path, "w") as f:
        env = f.create_group("env")
        env.attrs["n_cams"] = 1
        env.attrs["cam_encoding"] = encoding
        cam = env.create_group("cam0_video")
        if encoding == "mp4":
            data = cam.create_dataset("frames", data=np.frombuffer(_mp4_bytes(frames), np.uint8))
            data.attrs["T"] = len(frames)
            data.attrs["shape"] = frames.shape[1:]
            data.attrs["image_format"] = image_format
        else:
            for t, frame in enumerate(frames):
                buffer = io.BytesIO()
                Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
                data = cam.create_dataset(f"frame{t}", data=np.frombuffer(buffer.getvalue(), np.uint8))
                data.attrs["shape"] = frame.shape
                data.attrs["image_format"] = image_format
        env.create_dataset("state", data=states)
        f.create_group("policy").create_dataset("actions", data=actions)
        f.create_dataset("file_version", data="0.1.0")
        f.create_group("misc")
        f.create_group("metadata")


def test_robonet_mp4_round_trip_with_aligned_actions(tmp_path):
    frames = RNG.integers(0, 256, (6, 48, 64, 3), dtype=np.uint8)
    actions, states = RNG.normal(size=(5, 4)), RNG.normal(size=(6, 5))
    (tmp_path / "src").mkdir()
    _write_robonet(tmp_path / "src" / "traj.hdf5", frames, actions, states, "mp4")
    assert _convert("robonet", tmp_path / "src", "--out", tmp_path / "out", "--size", "0") == 2  # bad size
    assert main(["convert", "robonet", str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--no-progress",
                 "--crop", "none"] + ["--size", "48"]) == 0
    store = EpisodeStore.open(tmp_path / "out")
    episode = store.load(store.episode_ids()[0])
    assert episode["frames"].shape == (6, 48, 48, 3)
    np.testing.assert_allclose(episode["actions"][:5], actions.astype(np.float32))
    np.testing.assert_array_equal(episode["actions"][5], 0)  # no action after the last frame
    np.testing.assert_allclose(episode["states"], states.astype(np.float32))


def test_robonet_mp4_frames_are_exact_without_resize(tmp_path):
    frames = RNG.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    (tmp_path / "src").mkdir()
    _write_robonet(tmp_path / "src" / "a.hdf5", frames, RNG.normal(size=(3, 5)), RNG.normal(size=(4, 5)), "mp4")
    _write_robonet(tmp_path / "src" / "b.hdf5", frames, RNG.normal(size=(3, 5)), RNG.normal(size=(4, 5)), "mp4",
                   image_format="BGR")
    assert _convert("robonet", tmp_path / "src", "--out", tmp_path / "out", "--size", "32") == 0
    store = EpisodeStore.open(tmp_path / "out")
    np.testing.assert_array_equal(store.load("a-cam0")["frames"], frames)
    np.testing.assert_array_equal(store.load("b-cam0")["frames"], frames[..., ::-1])  # BGR → RGB
    assert store.action_dim == 5


def test_robonet_jpeg_frames_match_their_decoded_images(tmp_path):
    frames = RNG.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    (tmp_path / "src").mkdir()
    _write_robonet(tmp_path / "src" / "j.hdf5", frames, RNG.normal(size=(2, 4)), RNG.normal(size=(3, 5)), "jpg",
                   image_format="BGR")
    assert _convert("robonet", tmp_path / "src", "--out", tmp_path / "out", "--size", "32") == 0
    store = EpisodeStore.open(tmp_path / "out")
    with h5py.File(tmp_path / "src" / "j.hdf5") as f:
        decoded = [np.asarray(Image.open(io.BytesIO(f[f"env/cam0_video/frame{t}"][()].tobytes()))) for t in range(3)]
    np.testing.assert_array_equal(store.load("j-cam0")["frames"], np.stack(decoded))


def test_robonet_missing_camera_and_corrupt_file(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    _write_robonet(tmp_path / "src" / "a.hdf5", RNG.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8),
                   RNG.normal(size=(2, 4)), RNG.normal(size=(3, 5)), "mp4")
    assert _convert("robonet", tmp_path / "src", "--out", tmp_path / "out", "--camera", "2") == 2
    _assert_one_line_error(capsys, "a.hdf5", "camera 2")
    (tmp_path / "src" / "b.hdf5").write_bytes(b"not hdf5 at all")
    assert _convert("robonet", tmp_path / "src", "--out", tmp_path / "out2") == 2
    _assert_one_line_error(capsys, "b.hdf5")
    assert not (tmp_path / "out2" / "manifest.json").exists()


# ---------------------------------------------------------------- KITTI


def _write_drive(root, drive, frames, camera="image_02"):
    folder = root / drive[:10] / drive / camera / "data"
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:010d}.png")
    return folder


def test_kitti_drives_round_trip_and_hold_out_test_drives(tmp_path):
    train = RNG.integers(0, 256, (5, 20, 30, 3), dtype=np.uint8)
    test = RNG.integers(0, 256, (4, 20, 30, 3), dtype=np.uint8)
    _write_drive(tmp_path / "src", "2011_09_26_drive_0001_sync", train)
    _write_drive(tmp_path / "src", "2011_09_26_drive_0104_sync", test)
    assert _convert("kitti", tmp_path / "src", "--out", tmp_path / "out", "--size", "20") == 0
    store = EpisodeStore.open(tmp_path / "out")
    assert store.episode_ids("test") == ["2011_09_26_drive_0104_sync-image_02"]
    assert store.action_dim == 0
    np.testing.assert_array_equal(store.load("2011_09_26_drive_0001_sync-image_02")["frames"], train[:, :, 5:25])
    np.testing.assert_array_equal(store.load("2011_09_26_drive_0104_sync-image_02")["frames"], test[:, :, 5:25])
    assert _convert("kitti", tmp_path / "src", "--out", tmp_path / "small", "--size", "8") == 0
    assert EpisodeStore.open(tmp_path / "small").resolution == (8, 8)


def test_kitti_corrupt_png_and_empty_folder(tmp_path, capsys):
    folder = _write_drive(tmp_path / "src", "2011_09_26_drive_0002_sync", RNG.integers(0, 256, (2, 8, 8, 3),
                                                                                         dtype=np.uint8))
    (folder / "0000000001.png").write_bytes(b"\x89PNG broken")
    assert _convert("kitti", tmp_path / "src", "--out", tmp_path / "out") == 2
    _assert_one_line_error(capsys, "0000000001.png")
    assert not (tmp_path / "out" / "manifest.json").exists()
    (tmp_path / "empty").mkdir()
    assert _convert("kitti", tmp_path / "empty", "--out", tmp_path / "out2") == 2
    _assert_one_line_error(capsys, "no KITTI drives")


# ---------------------------------------------------------------- videos


def test_video_files_and_frame_folders_round_trip(tmp_path):
    video = RNG.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    (tmp_path / "src" / "clips").mkdir(parents=True)
    (tmp_path / "src" / "clips" / "a.mp4").write_bytes(_mp4_bytes(video, fps=10))
    folder = tmp_path / "src" / "frames_b"
    folder.mkdir()
    pictures = RNG.integers(0, 256, (5, 16, 24, 3), dtype=np.uint8)
    for t, frame in enumerate(pictures):
        Image.fromarray(frame).save(folder / f"{t:03d}.png")
    assert _convert("videos", tmp_path / "src", "--out", tmp_path / "out", "--size", "16", "--clip-len", "4") == 0
    store = EpisodeStore.open(tmp_path / "out")
    assert store.episode_ids() == ["clips_a-00000", "clips_a-00001", "frames_b-00000"]
    np.testing.assert_array_equal(store.load("clips_a-00001")["frames"], video[4:8])
    np.testing.assert_array_equal(store.load("frames_b-00000")["frames"], pictures[:4, :, 4:20])  # centre crop
    assert store.load("clips_a-00000")["actions"].shape == (4, 0)


def test_video_frame_rate_resampling(tmp_path):
    video = RNG.integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.mp4").write_bytes(_mp4_bytes(video, fps=10))
    assert _convert("videos", tmp_path / "src", "--out", tmp_path / "out", "--size", "16", "--fps", "5") == 0
    store = EpisodeStore.open(tmp_path / "out")
    np.testing.assert_array_equal(store.load("a-00000")["frames"], video[::2])


def test_videos_corrupt_file_and_empty_folder(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage")
    assert _convert("videos", tmp_path / "src", "--out", tmp_path / "out") == 2
    _assert_one_line_error(capsys, "broken.mp4")
    assert not (tmp_path / "out" / "manifest.json").exists()
    (tmp_path / "empty").mkdir()
    assert _convert("videos", tmp_path / "empty", "--out", tmp_path / "out2") == 2
    _assert_one_line_error(capsys, "no videos")
    assert not (tmp_path / "out2").exists()


def test_interrupted_conversion_resumes_to_a_complete_store(tmp_path):
    for drive in ("2011_09_26_drive_0011_sync", "2011_09_26_drive_0012_sync"):
        _write_drive(tmp_path / "src", drive, RNG.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8))
    bad = tmp_path / "src" / "2011_09_26" / "2011_09_26_drive_0012_sync" / "image_02" / "data" / "0000000002.png"
    good_bytes = bad.read_bytes()
    bad.write_bytes(b"broken")
    assert _convert("kitti", tmp_path / "src", "--out", tmp_path / "out", "--size", "8") == 2
    bad.write_bytes(good_bytes)  # the user fixes the file and reruns
    assert _convert("kitti", tmp_path / "src", "--out", tmp_path / "out", "--size", "8") == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["num_episodes"] == 2


@pytest.mark.parametrize("kind", ["bair", "robonet", "kitti", "videos"])
def test_missing_source_folder_is_a_one_line_error(tmp_path, capsys, kind):
    assert _convert(kind, tmp_path / "nowhere", "--out", tmp_path / "out") == 2
    _assert_one_line_error(capsys, "nowhere")
