"""Box formats and pairwise overlaps (ssabnet.ops.boxes): round trips, numpy == torch,
agreement with torchvision.ops, hand-computed crowd/ignore overlaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.ops as tv

from ssabnet.ops.boxes import (
    box_intersection,
    boxes_cxcywh_to_xyxy,
    boxes_xywh_to_xyxy,
    boxes_xyxy_to_cxcywh,
    boxes_xyxy_to_xywh,
    intersection_over_area,
    pairwise_overlap,
)

CONVERSIONS = [
    (boxes_xywh_to_xyxy, "xywh", "xyxy"),
    (boxes_xyxy_to_xywh, "xyxy", "xywh"),
    (boxes_xyxy_to_cxcywh, "xyxy", "cxcywh"),
    (boxes_cxcywh_to_xyxy, "cxcywh", "xyxy"),
]


def random_xyxy(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(0.5, 40, (n, 2))], axis=1)


@pytest.mark.parametrize(("convert", "in_fmt", "out_fmt"), CONVERSIONS)
def test_conversions_agree_with_torchvision_and_numpy(convert, in_fmt, out_fmt):
    boxes = random_xyxy(50, 0).reshape(5, 10, 4)  # leading batch dimensions are kept
    tensor = torch.from_numpy(boxes)
    expected = tv.box_convert(tensor.reshape(-1, 4), in_fmt, out_fmt).reshape(5, 10, 4)
    torch.testing.assert_close(convert(tensor), expected, rtol=0, atol=0)
    np.testing.assert_array_equal(convert(boxes), expected.numpy())


def test_conversion_round_trips():
    boxes = random_xyxy(20, 1)
    np.testing.assert_allclose(boxes_xywh_to_xyxy(boxes_xyxy_to_xywh(boxes)), boxes)
    np.testing.assert_allclose(boxes_cxcywh_to_xyxy(boxes_xyxy_to_cxcywh(boxes)), boxes)
    assert boxes_xywh_to_xyxy(np.array([[1.0, 2.0, 3.0, 4.0]])).tolist() == [[1, 2, 4, 6]]


def test_pairwise_overlap_without_crowd_is_torchvision_box_iou():
    dets, gts = random_xyxy(30, 2), random_xyxy(12, 3)
    overlap = pairwise_overlap(dets, gts, np.zeros(12, dtype=bool))
    expected = tv.box_iou(torch.from_numpy(dets), torch.from_numpy(gts)).numpy()
    np.testing.assert_allclose(overlap, expected, rtol=1e-12, atol=0)
    assert overlap.dtype == np.float64


def test_pairwise_overlap_hand_cases():
    dets = np.array([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 20.0, 30.0]])  # second: zero area
    gts = np.array([[5.0, 0.0, 15.0, 10.0], [0.0, 0.0, 40.0, 40.0]])
    overlap = pairwise_overlap(dets, gts, np.array([False, True]))
    # det 0 vs gt 0: 50 / 150; vs the crowd gt: all of det 0 lies inside it (100 / 100).
    np.testing.assert_allclose(overlap[0], [1 / 3, 1.0])
    # a zero-area detection: empty union with the crowd box -> 0, never NaN.
    assert overlap[1].tolist() == [0.0, 0.0]
    # explicit areas replace the corner areas (the VisDrone toolkit's w * h)
    custom = pairwise_overlap(
        dets[:1],
        gts[:1],
        np.array([False]),
        det_areas=np.array([200.0]),
        gt_areas=np.array([100.0]),
    )
    assert custom[0, 0] == pytest.approx(50 / 250)


def test_intersection_numpy_equals_torch():
    a, b = random_xyxy(15, 4), random_xyxy(9, 5)
    inter = box_intersection(a, b)
    torch.testing.assert_close(
        box_intersection(torch.from_numpy(a), torch.from_numpy(b)), torch.from_numpy(inter)
    )
    assert box_intersection(a[:0], b).shape == (0, 9)


def test_intersection_over_area_hand_case():
    boxes = np.array([[0.0, 0.0, 10.0, 10.0], [3.0, 3.0, 3.0, 8.0]])  # second: zero area
    regions = np.array([[5.0, 0.0, 100.0, 100.0]])
    np.testing.assert_allclose(intersection_over_area(boxes, regions), [[0.5], [0.0]])
    as_tensor = intersection_over_area(torch.from_numpy(boxes), torch.from_numpy(regions))
    torch.testing.assert_close(as_tensor, torch.tensor([[0.5], [0.0]], dtype=torch.float64))
