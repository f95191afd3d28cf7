"""Augmentation keeps tiny boxes valid and ignore regions aligned (hand-computed cases)."""

from __future__ import annotations

import numpy as np
import pytest

from ssabnet.data.loader import DetectionSamples, record_targets
from ssabnet.data.record import ImageRecord
from ssabnet.data.transforms import (
    PAD_VALUE,
    Targets,
    filter_boxes,
    horizontal_flip,
    letterbox,
    mosaic,
    random_affine,
    transform_boxes_affine,
    vertical_flip,
)


def _targets(boxes, labels=None, regions=()):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.arange(len(boxes), dtype=np.int64) if labels is None else np.asarray(labels)
    return Targets(boxes, labels, np.asarray(regions, np.float32).reshape(-1, 4))


def _marked_image(width, height, boxes, value=255):
    """Black image with each box filled with ``value`` (to check pixels follow boxes)."""
    image = np.zeros((height, width, 3), np.uint8)
    for x1, y1, x2, y2 in np.asarray(boxes, int):
        image[y1:y2, x1:x2] = value
    return image


def test_letterbox_hand_case():
    image = np.zeros((100, 200, 3), np.uint8)  # W=200, H=100
    t = _targets([[10, 20, 30, 40]], regions=[[0, 0, 200, 10]])
    out, moved, params = letterbox(image, t, 64)
    # scale 64/200 = 0.32; new size 64x32; pad_y = (64-32)//2 = 16
    assert out.shape == (64, 64, 3)
    assert params.scale == pytest.approx(0.32) and params.pad_x == 0 and params.pad_y == 16
    np.testing.assert_allclose(moved.boxes, [[3.2, 22.4, 9.6, 28.8]], atol=1e-5)
    np.testing.assert_allclose(moved.ignore_regions, [[0, 16, 64, 19.2]], atol=1e-5)
    assert (out[:16] == PAD_VALUE).all() and (out[48:] == PAD_VALUE).all()


def test_letterbox_round_trip_to_original():
    import torch

    from ssabnet.postprocess import boxes_input_to_original

    image = np.zeros((150, 400, 3), np.uint8)
    boxes = [[5, 6, 11, 13], [300, 100, 399, 149]]
    _, moved, params = letterbox(image, _targets(boxes), 256)
    back = boxes_input_to_original(torch.from_numpy(moved.boxes), params)
    np.testing.assert_allclose(back.numpy(), boxes, atol=1e-4)


def test_transform_boxes_affine_scale_translate():
    matrix = np.array([[2.0, 0, 5], [0, 2.0, -3]])
    out = transform_boxes_affine(np.array([[1, 2, 3, 4]], np.float32), matrix)
    np.testing.assert_allclose(out, [[7, 1, 11, 5]])


def test_filter_boxes_drops_tiny_and_mostly_outside_and_counts():
    boxes = np.array(
        [
            [10, 10, 14, 14],  # 4x4 inside: kept (tiny but valid)
            [10, 10, 11.5, 20],  # 1.5 px wide: dropped
            [-8, 0, 2, 10],  # 20% visible: dropped
            [-2, 0, 8, 10],  # 80% visible: kept, clipped to x1=0
        ],
        np.float32,
    )
    t = Targets(boxes, np.arange(4), np.array([[-5, -5, 5, 5], [-9, -9, -1, -1]], np.float32), 1)
    out = filter_boxes(t, boxes, 50, 50, min_size=2, min_visible=0.3)
    np.testing.assert_allclose(out.boxes, [[10, 10, 14, 14], [0, 0, 8, 10]])
    assert out.labels.tolist() == [0, 3]
    assert out.num_dropped == 1 + 2
    np.testing.assert_allclose(out.ignore_regions, [[0, 0, 5, 5]])  # the outside one is gone


def test_flips_are_involutions_and_move_pixels_with_boxes():
    boxes = [[2, 3, 6, 9]]
    image = _marked_image(20, 10, boxes)
    t = _targets(boxes, regions=[[0, 0, 4, 2]])
    flipped, ft = horizontal_flip(image, t)
    np.testing.assert_allclose(ft.boxes, [[14, 3, 18, 9]])
    np.testing.assert_allclose(ft.ignore_regions, [[16, 0, 20, 2]])
    assert (flipped[3:9, 14:18] == 255).all() and flipped.sum() == image.sum()
    back, bt = horizontal_flip(flipped, ft)
    assert np.array_equal(back, image) and np.allclose(bt.boxes, t.boxes)
    vflipped, vt = vertical_flip(image, t)
    np.testing.assert_allclose(vt.boxes, [[2, 1, 6, 7]])
    assert (vflipped[1:7, 2:6] == 255).all()


def test_random_affine_keeps_tiny_box_aligned_with_its_pixels():
    rng = np.random.default_rng(3)
    boxes = [[100, 100, 106, 106], [20, 30, 24, 34]]  # 6 px and 4 px objects
    image = _marked_image(256, 256, boxes)
    t = _targets(boxes, regions=[[150, 150, 200, 200]])
    for _ in range(20):
        out, ot = random_affine(image, t, rng, 256, scale=0.5, translate=0.1)
        w = ot.boxes[:, 2] - ot.boxes[:, 0]
        h = ot.boxes[:, 3] - ot.boxes[:, 1]
        assert (w >= 2).all() and (h >= 2).all()
        assert (ot.boxes >= 0).all() and (ot.boxes <= 256).all()
        assert len(ot.boxes) + ot.num_dropped == 2
        for box in ot.boxes:  # the box interior (shrunk by 1 px for interpolation) is white
            x1, y1, x2, y2 = (
                np.ceil(box[:2] + 1).astype(int).tolist()
                + np.floor(box[2:] - 1).astype(int).tolist()
            )
            if x2 > x1 and y2 > y1:
                assert out[y1:y2, x1:x2].min() > 200


def test_mosaic_boxes_inside_their_tiles_and_pixels_follow():
    rng = np.random.default_rng(0)
    images, targets = [], []
    for i in range(4):
        boxes = [[10 + i, 12, 22 + i, 20], [50, 40, 58, 48]]
        images.append(_marked_image(64, 64, boxes))
        targets.append(_targets(boxes, labels=[i, i], regions=[[0, 0, 8, 8]]))
    canvas, out = mosaic(images, targets, rng, 64, min_size=2.0, min_visible=0.1)
    assert canvas.shape == (128, 128, 3)
    assert len(out.boxes) + out.num_dropped == 8
    assert set(out.labels.tolist()) <= {0, 1, 2, 3}
    for box in out.boxes:
        x1, y1, x2, y2 = box.astype(int)
        assert canvas[y1:y2, x1:x2].min() == 255
    with pytest.raises(ValueError, match="4 images"):
        mosaic(images[:3], targets[:3], rng, 64, min_size=2.0, min_visible=0.1)


def test_record_targets_turns_ignored_objects_into_ignore_regions(tmp_path):
    record = ImageRecord(
        image_id="a",
        image_path=tmp_path / "a.jpg",
        width=100,
        height=100,
        boxes=np.array([[1, 1, 5, 5], [10, 10, 20, 20], [30, 30, 40, 40]], np.float32),
        labels=np.array([0, -1, 2]),
        ignore=np.array([False, True, False]),
        truncation=np.full(3, -1),
        occlusion=np.full(3, -1),
        ignore_regions=np.array([[50, 50, 60, 60]], np.float32),
    )
    t = record_targets(record)
    assert t.labels.tolist() == [0, 2]
    np.testing.assert_allclose(t.ignore_regions, [[50, 50, 60, 60], [10, 10, 20, 20]])


def test_training_samples_are_a_pure_function_of_seed_epoch_index(tmp_path):
    import cv2

    records = []
    for i in range(3):
        boxes = np.array([[10, 10, 16, 16], [40, 20, 60, 44]], np.float32)
        image = _marked_image(96, 80, boxes)
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), image)
        records.append(
            ImageRecord(
                f"{i}",
                path,
                96,
                80,
                boxes,
                np.array([0, 1]),
                np.zeros(2, bool),
                np.full(2, -1),
                np.full(2, -1),
            )
        )
    from ssabnet.config import TrainConfig
    from ssabnet.data.transforms import AugmentConfig

    augment = AugmentConfig(
        mosaic=0.5,
        hflip=TrainConfig.hflip,
        vflip=0.5,
        scale=TrainConfig.scale,
        translate=TrainConfig.translate,
        hsv=TrainConfig.hsv,
        min_box_size=TrainConfig.min_box_size,
        min_visible=TrainConfig.min_visible,
    )
    ds = DetectionSamples(records, 64, augment, seed=7)
    ds.set_epoch(2)
    a = ds[1]
    b = ds[1]
    assert (a[0] == b[0]).all() and (a[1]["boxes"] == b[1]["boxes"]).all()
    ds.set_epoch(3)
    c = ds[1]
    assert not (a[0] == c[0]).all()
    assert a[0].shape == (3, 64, 64)
    boxes = a[1]["boxes"]
    assert ((boxes[:, 2:] - boxes[:, :2]) >= 2).all()
    with pytest.raises(ValueError, match="multiple of 32"):
        DetectionSamples(records, 100)
