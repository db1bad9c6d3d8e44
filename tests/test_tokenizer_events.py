"""Event-frame oversampling for the tokenizer (`tokenizer.event_frame_repeat`): RoboDesk
frames with a lit button light appear k times per epoch; other frames once; other stores
refuse the setting in one line."""

import numpy as np
import pytest
import torch

from maskvit.data.store import EpisodeStore, EpisodeStoreWriter
from maskvit.errors import UserError
from maskvit.metrics.desk_objects import LIGHTS, read_lights
from maskvit.tokenizer.vqgan_task import FrameDataset

RED_CORE = (slice(4, 7), slice(6, 9))  # where the red light's disc is read


def _store(tmp_path, source: str, lit_at: dict[int, list[int]]) -> EpisodeStore:
    """Episodes of 5 grey 64×64 frames; frame t of episode e has the red light lit when
    t is in lit_at[e]."""
    writer = EpisodeStoreWriter(tmp_path / source, source=source, action_dim=2, resolution=(64, 64))
    for e in range(3):
        frames = np.full((5, 64, 64, 3), 90, np.uint8)
        for t in lit_at.get(e, []):
            frames[t][RED_CORE] = (230, 40, 40)
        writer.add(f"ep{e}", frames, np.zeros((5, 2), np.float32), split="train")
    return writer.close()


def test_lit_frames_appear_k_times_and_the_rest_once(tmp_path):
    store = _store(tmp_path, "robodesk", {0: [1], 2: [0, 4]})
    data = FrameDataset(store, "train", event_repeat=3)
    assert data.events == 3 and len(data) == 15 + 3 * 2
    lit = [bool(read_lights(data[i]["frames"].numpy())[LIGHTS.index("red")]) for i in range(len(data))]
    assert sum(lit) == 9  # 3 lit frames, each 3 times
    assert len(FrameDataset(store, "train")) == 15  # the default sees each frame once


def test_a_store_without_events_refuses_the_setting_in_one_line(tmp_path):
    store = _store(tmp_path, "push", {})
    with pytest.raises(UserError, match="event_frame_repeat is for RoboDesk"):
        FrameDataset(store, "train", event_repeat=2)


def test_the_median_frame_is_the_typical_frame_not_the_rare_event(tmp_path):
    from maskvit.tokenizer.vqgan import uint8_to_float
    from maskvit.tokenizer.vqgan_task import median_frame

    store = _store(tmp_path, "robodesk", {0: [1], 2: [0, 4]})
    median = median_frame(FrameDataset(store, "train", event_repeat=3))
    grey = uint8_to_float(torch.full((64, 64, 3), 90, dtype=torch.uint8))
    torch.testing.assert_close(median, grey)
