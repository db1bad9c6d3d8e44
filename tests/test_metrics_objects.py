"""Object-fidelity metrics: colour segmentation, mask IoU and centroid error."""

import numpy as np
import pytest

from maskvit.metrics.objects import (
    ColourObject,
    centroid_error,
    colour_masks,
    mask_iou,
    object_fidelity,
    push_box_objects,
)

TABLE = (168, 143, 112)  # the push world's wooden table
RED, GREEN = (230, 26, 26), (26, 191, 38)


def scene(boxes: dict[tuple[int, int, int], tuple[int, int, int, int]], size: int = 32) -> np.ndarray:
    """A uint8 frame of table colour with axis-aligned rectangles (r0, c0, r1, c1) of colour."""
    frame = np.empty((size, size, 3), np.uint8)
    frame[:] = TABLE
    for colour, (r0, c0, r1, c1) in boxes.items():
        frame[r0:r1, c0:c1] = colour
    return frame


def test_push_box_hues_come_from_the_simulator_colours():
    red, green = push_box_objects(2)
    assert red.name == "red box" and abs(red.hue) < 1e-6
    assert green.name == "green box" and 120 < green.hue < 130


def test_colour_masks_find_exactly_the_drawn_boxes():
    frame = scene({RED: (2, 3, 8, 9), GREEN: (20, 20, 25, 30)})
    masks = colour_masks(frame, push_box_objects(2))
    expected_red = np.zeros((32, 32), bool)
    expected_red[2:8, 3:9] = True
    expected_green = np.zeros((32, 32), bool)
    expected_green[20:25, 20:30] = True
    assert np.array_equal(masks[0], expected_red)
    assert np.array_equal(masks[1], expected_green)


def test_shaded_and_grey_pixels_are_not_objects():
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[0] = (120, 120, 120)  # grey arm
    frame[1] = (40, 7, 7)  # very dark red: below the value threshold
    frame[2] = (200, 150, 140)  # pale red: below the saturation threshold
    frame[3] = (150, 15, 15)  # shaded face of a red box: found
    red = colour_masks(frame, [ColourObject("red", 0.0)])[0]
    assert not red[:3].any() and red[3].all()


def test_hue_wraps_around_the_colour_wheel():
    frame = np.array([[[230, 26, 60], [230, 60, 26]]], np.uint8)  # hues ≈ 350° and ≈ 10°
    assert colour_masks(frame, [ColourObject("red", 0.0, hue_tolerance=15)])[0].all()


def test_iou_and_centroid_error_of_known_masks():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[0:4, 0:4] = True  # 16 px, centre (1.5, 1.5)
    b[2:6, 0:4] = True  # 16 px, centre (3.5, 1.5); overlap 8
    assert mask_iou(a, b) == pytest.approx(8 / 24)
    assert centroid_error(a, b) == pytest.approx(2.0)
    assert np.isnan(mask_iou(np.zeros_like(a), np.zeros_like(b)))
    assert np.isnan(centroid_error(a, np.zeros_like(b)))


def test_object_fidelity_scores_a_shifted_prediction_and_a_missing_object():
    true = np.stack([scene({RED: (4, 4, 12, 12), GREEN: (20, 20, 28, 28)})] * 3)
    shifted = np.stack([scene({RED: (4, 6, 12, 14), GREEN: (20, 20, 28, 28)})] * 3)
    no_green = np.stack([scene({RED: (4, 4, 12, 12)})] * 3)
    perfect = object_fidelity(true[None], true[None])
    assert perfect["iou"]["mean"] == pytest.approx(1.0)
    assert perfect["centroid_error_px"]["mean"] == pytest.approx(0.0)
    assert perfect["missing"] == 0.0
    moved = object_fidelity(true[None], shifted[None])
    assert moved["objects"]["red box"]["iou"] == pytest.approx(48 / 80)  # 8×6 of 8×10
    assert moved["objects"]["red box"]["centroid_error_px"] == pytest.approx(2.0)
    assert moved["objects"]["green box"]["iou"] == pytest.approx(1.0)
    assert moved["iou"]["per_frame"] == pytest.approx([(0.6 + 1.0) / 2] * 3)
    lost = object_fidelity(true[None], no_green[None])
    assert lost["objects"]["green box"]["iou"] == 0.0
    assert lost["objects"]["green box"]["centroid_error_px"] is None
    assert lost["missing"] == pytest.approx(0.5)


def test_mean_and_standard_error_are_over_videos():
    true = np.stack([np.stack([scene({RED: (4, 4, 12, 12)})] * 2)] * 2)  # (2, 2, 32, 32, 3)
    pred = true.copy()
    pred[1] = np.stack([scene({RED: (4, 8, 12, 16)})] * 2)  # video 1: IoU 32/96
    result = object_fidelity(true, pred, push_box_objects(1))
    assert result["iou"]["mean"] == pytest.approx((1 + 1 / 3) / 2)
    assert result["iou"]["se"] == pytest.approx(np.std([1, 1 / 3], ddof=1) / np.sqrt(2))


def test_colour_segmentation_matches_the_renderers_masks_on_push_world_frames():
    from maskvit.sim.collection import collect_episode
    from maskvit.sim.push_env import PushEnv

    env = PushEnv()
    try:
        ious = []
        for index in range(3):
            collect_episode(env, 0, index, 4)
            truth = env.world.render_box_masks()
            found = colour_masks(env.world.render(), push_box_objects(len(truth)))
            ious.extend(mask_iou(truth, found))
    finally:
        env.close()
    assert min(ious) > 0.9, ious


def test_only_push_world_stores_have_objects_to_score():
    from types import SimpleNamespace

    from maskvit.metrics.objects import world_objects

    push = SimpleNamespace(source="push", manifest={"extra": {"config": {"num_boxes": 3}}})
    assert [o.name for o in world_objects(push)] == ["red box", "green box", "blue box"]
    assert world_objects(SimpleNamespace(source="bair", manifest={})) is None
