"""Random-action collection into an episode store, and the `maskvit collect` command."""

import numpy as np
import pytest

from maskvit.cli import main
from maskvit.data import ClipDataset, EpisodeStore
from maskvit.sim.collection import collect_push_dataset


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return collect_push_dataset(tmp_path_factory.mktemp("push") / "store", 4, steps=8, workers=1, progress=False)


def test_collection_writes_a_valid_store(store):
    reopened = EpisodeStore.open(store.path)
    assert len(reopened) == 4 and reopened.source == "push"
    assert reopened.resolution == (64, 64) and reopened.action_dim == 2
    episode = reopened.load(reopened.episode_ids()[0])
    assert episode["frames"].shape == (8, 64, 64, 3) and episode["frames"].dtype == np.uint8
    assert episode["actions"].shape == (8, 2) and episode["states"].shape == (8, 9)
    assert np.all(np.abs(episode["actions"]) <= 0.05 + 1e-6)


def test_action_t_leads_from_frame_t_to_frame_t_plus_1(store):
    moves, actions = [], []
    for eid in store.episode_ids():
        episode = store.load(eid)
        moves.append(np.diff(episode["states"][:, :2], axis=0))  # pusher displacement t → t+1
        actions.append(episode["actions"])
    aligned = np.concatenate([a[:-1] for a in actions]).ravel()
    shifted = np.concatenate([a[1:] for a in actions]).ravel()
    moved = np.concatenate(moves).ravel()
    assert np.corrcoef(aligned, moved)[0, 1] > 0.9
    assert np.corrcoef(shifted, moved)[0, 1] < 0.6


def test_clips_from_collected_store_have_protocol_shapes(store):
    data = ClipDataset(store, clip_len=6, split=store.split_of(store.episode_ids()[0]))
    assert len(data) >= 8 - 6 + 1
    item = data[0]
    assert item["frames"].shape == (6, 64, 64, 3) and item["actions"].shape == (6, 2)


def test_parallel_workers_write_the_same_episodes(store, tmp_path):
    parallel = collect_push_dataset(tmp_path / "p", 4, steps=8, workers=2, progress=False)
    assert sorted(parallel.episode_ids()) == sorted(store.episode_ids())  # written as workers finish
    for eid in store.episode_ids():
        np.testing.assert_array_equal(parallel.load(eid)["frames"], store.load(eid)["frames"])
        np.testing.assert_array_equal(parallel.load(eid)["actions"], store.load(eid)["actions"])


def test_collect_command_writes_and_resumes(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["collect", "--env", "push", "--episodes", "2", "--steps", "3", "--out", str(out), "--workers", "1",
            "--no-progress"]
    assert main(args) == 0
    assert "wrote 2 episodes" in capsys.readouterr().out
    args[4] = "3"  # one more episode: the first two are kept
    assert main(args) == 0
    assert len(EpisodeStore.open(out)) == 3


def test_collect_command_rejects_bad_input_in_one_line(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["collect", "--episodes", "1", "--out", str(out), "--set", "num_boxes=many"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "num_boxes" in err
    assert not out.exists()
    assert main(["collect", "--episodes", "0", "--out", str(out)]) == 2
    assert not (out / "manifest.json").exists()
