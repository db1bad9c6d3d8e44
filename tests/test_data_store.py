"""Episode store, clip dataset and token cache behaviour."""

import json

import numpy as np
import pytest
import torch

from maskvit.data import (
    ClipDataset,
    EpisodeStore,
    EpisodeStoreWriter,
    TokenCache,
    TokenCacheWriter,
    TokenClipDataset,
    split_for,
)
from maskvit.errors import UserError


def _episode(rng, length=10, size=8, action_dim=2):
    frames = rng.integers(0, 256, size=(length, size, size, 3), dtype=np.uint8)
    actions = rng.normal(size=(length, action_dim)).astype(np.float32)
    return frames, actions


def _write_store(path, episodes, **kwargs):
    writer = EpisodeStoreWriter(path, source="test", action_dim=2, **kwargs)
    for eid, (frames, actions) in episodes.items():
        writer.add(eid, frames, actions)
    return writer.close()


def test_store_round_trips_episodes_and_manifest(tmp_path):
    rng = np.random.default_rng(0)
    episodes = {f"ep{i}": _episode(rng, length=8 + i) for i in range(5)}
    store = _write_store(tmp_path / "s", episodes)
    reopened = EpisodeStore.open(tmp_path / "s")
    assert reopened.manifest["num_episodes"] == 5
    assert reopened.resolution == (8, 8) and reopened.action_dim == 2
    assert reopened.episode_ids() == list(episodes)
    for eid, (frames, actions) in episodes.items():
        loaded = reopened.load(eid)
        np.testing.assert_array_equal(loaded["frames"], frames)
        np.testing.assert_array_equal(loaded["actions"], actions)
    assert sorted(sum((store.episode_ids(s) for s in ("train", "val", "test")), [])) == sorted(episodes)


def test_stores_of_one_layout_finished_in_one_second_have_different_fingerprints(tmp_path, monkeypatch):
    """Same ids, lengths and splits, finished at the same second (the clock is pinned), other
    frames: the fingerprint that guards token caches and resumed runs must still differ. CI
    once wrote two such stores within one second and a resume mixed them."""
    import maskvit.data.store as store_module

    monkeypatch.setattr(store_module.time, "strftime", lambda *args: "2026-01-01T00:00:00Z")
    stores = [_write_store(tmp_path / f"s{seed}", {f"ep{i}": _episode(np.random.default_rng(seed + 10 * i))
                                                   for i in range(3)}) for seed in (0, 1)]
    layouts = [[{k: e[k] for k in ("id", "length", "split")} for e in s.manifest["episodes"]] for s in stores]
    assert layouts[0] == layouts[1]
    assert stores[0].fingerprint() != stores[1].fingerprint()
    again = _write_store(tmp_path / "again", {f"ep{i}": _episode(np.random.default_rng(10 * i)) for i in range(3)})
    assert again.fingerprint() == stores[0].fingerprint()  # same content, same fingerprint


def test_split_depends_only_on_episode_id():
    ids = [f"traj{i}" for i in range(2000)]
    splits = [split_for(e) for e in ids]
    assert splits == [split_for(e) for e in ids]
    fractions = {s: splits.count(s) / len(ids) for s in ("train", "val", "test")}
    assert 0.85 < fractions["train"] < 0.95 and 0.02 < fractions["val"] < 0.08


def test_clip_dataset_yields_aligned_frames_and_actions(tmp_path):
    rng = np.random.default_rng(1)
    episodes = {"a": _episode(rng, 12), "b": _episode(rng, 5)}
    writer = EpisodeStoreWriter(tmp_path / "s", source="test", action_dim=2)
    for eid, (frames, actions) in episodes.items():
        writer.add(eid, frames, actions, split="train")
    store = writer.close()
    data = ClipDataset(store, clip_len=6, split="train")
    assert len(data) == 12 - 6 + 1  # episode "b" is too short for a clip
    item = data[3]
    assert item["frames"].dtype == torch.uint8 and item["frames"].shape == (6, 8, 8, 3)
    assert item["actions"].dtype == torch.float32 and item["actions"].shape == (6, 2)
    np.testing.assert_array_equal(item["frames"].numpy(), episodes["a"][0][3:9])
    np.testing.assert_array_equal(item["actions"].numpy(), episodes["a"][1][3:9])
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    assert batch["frames"].shape == (4, 6, 8, 8, 3)


def test_interrupted_store_is_not_complete_and_resumes(tmp_path):
    rng = np.random.default_rng(2)
    episodes = {f"ep{i}": _episode(rng) for i in range(3)}
    writer = EpisodeStoreWriter(tmp_path / "s", source="test", action_dim=2)
    writer.add("ep0", *episodes["ep0"])
    (tmp_path / "s" / "episodes" / "ep1.partial").mkdir()  # a write cut short
    with pytest.raises(UserError, match="not a complete episode store"):
        EpisodeStore.open(tmp_path / "s")
    resumed = EpisodeStoreWriter(tmp_path / "s", source="test", action_dim=2)
    assert "ep0" in resumed and "ep1" not in resumed
    assert not (tmp_path / "s" / "episodes" / "ep1.partial").exists()
    for eid in ("ep1", "ep2"):
        resumed.add(eid, *episodes[eid])
    store = resumed.close()
    assert store.episode_ids() == ["ep0", "ep1", "ep2"]


def test_writer_refuses_mismatched_resume_and_foreign_folder(tmp_path):
    EpisodeStoreWriter(tmp_path / "s", source="test", action_dim=2)
    with pytest.raises(UserError, match="action_dim"):
        EpisodeStoreWriter(tmp_path / "s", source="test", action_dim=4)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not an episode store"):
        EpisodeStoreWriter(tmp_path / "other", source="test", action_dim=2)


def test_writer_rejects_wrong_shapes(tmp_path):
    writer = EpisodeStoreWriter(tmp_path / "s", source="test", action_dim=2)
    frames, actions = _episode(np.random.default_rng(0))
    with pytest.raises(ValueError, match="actions"):
        writer.add("x", frames, actions[:-1])
    with pytest.raises(ValueError, match="uint8"):
        writer.add("x", frames.astype(np.float32), actions)
    with pytest.raises(ValueError, match="invalid episode id"):
        writer.add("../evil", frames, actions)


def _write_cache(path, episodes, splits):
    writer = TokenCacheWriter(path, token_shape=(4, 4), action_dim=2, codebook_size=1024)
    for eid, (codes, actions) in episodes.items():
        writer.add(eid, codes, actions, splits[eid])
    return writer


def test_token_cache_serves_the_codes_written(tmp_path):
    rng = np.random.default_rng(3)
    episodes = {f"e{i}": (rng.integers(0, 1024, (7 + i, 4, 4)), rng.normal(size=(7 + i, 2))) for i in range(3)}
    splits = {"e0": "train", "e1": "val", "e2": "train"}
    cache = _write_cache(tmp_path / "c", episodes, splits).close()
    cache = TokenCache.open(tmp_path / "c")
    assert cache.episode_ids("train") == ["e0", "e2"] and cache.token_shape == (4, 4)
    np.testing.assert_array_equal(cache.codes("e1"), episodes["e1"][0])
    data = TokenClipDataset(cache, clip_len=5, split="train")
    assert len(data) == (7 - 5 + 1) + (9 - 5 + 1)
    item = data[4]  # second clip of episode e2
    assert item["tokens"].dtype == torch.int64 and item["tokens"].shape == (5, 4, 4)
    np.testing.assert_array_equal(item["tokens"].numpy(), episodes["e2"][0][1:6])
    np.testing.assert_allclose(item["actions"].numpy(), episodes["e2"][1][1:6].astype(np.float32))


def test_token_cache_resumes_after_interruption(tmp_path):
    rng = np.random.default_rng(4)
    episodes = {f"e{i}": (rng.integers(0, 1024, (6, 4, 4)), rng.normal(size=(6, 2))) for i in range(3)}
    writer = _write_cache(tmp_path / "c", {"e0": episodes["e0"]}, {"e0": "train"})
    writer._codes.write(b"\x01\x02\x03")  # bytes of an episode that never finished
    writer._codes.flush()
    with open(tmp_path / "c" / "index.jsonl", "a") as f:
        f.write('{"id": "e1", "spl')  # a cut index line
    with pytest.raises(UserError, match="not a complete token cache"):
        TokenCache.open(tmp_path / "c")
    resumed = TokenCacheWriter(tmp_path / "c", token_shape=(4, 4), action_dim=2, codebook_size=1024)
    assert "e0" in resumed and "e1" not in resumed
    for eid in ("e1", "e2"):
        resumed.add(eid, *episodes[eid], "train")
    cache = resumed.close()
    for eid, (codes, actions) in episodes.items():
        np.testing.assert_array_equal(cache.codes(eid), codes)
        np.testing.assert_allclose(cache.actions(eid), actions.astype(np.float32))
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert [e["offset"] for e in manifest["episodes"]] == [0, 6, 12]


def test_token_cache_rejects_codes_out_of_range(tmp_path):
    writer = TokenCacheWriter(tmp_path / "c", token_shape=(2, 2), action_dim=0, codebook_size=16)
    with pytest.raises(ValueError, match="outside"):
        writer.add("e", np.full((3, 2, 2), 16), np.zeros((3, 0)), "train")


def test_action_free_stores_serve_empty_action_columns(tmp_path):
    writer = EpisodeStoreWriter(tmp_path / "s", source="videos", action_dim=0)
    writer.add("v", np.zeros((5, 4, 4, 3), np.uint8), np.zeros((5, 0), np.float32), split="train")
    item = ClipDataset(writer.close(), clip_len=3)[2]
    assert item["frames"].shape == (3, 4, 4, 3) and item["actions"].shape == (3, 0)
