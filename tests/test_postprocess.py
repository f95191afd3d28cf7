"""Thresholding, class-aware NMS, weighted box fusion and decoding of raw outputs."""

from __future__ import annotations

import pytest
import torch

from ssabnet.postprocess import (
    merge_detections,
    postprocess,
    select_detections,
    weighted_box_fusion,
)


def test_select_detections_class_aware_nms_hand_case():
    boxes = torch.tensor(
        [[[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]]], dtype=torch.float32
    )
    scores = torch.zeros(1, 4, 2)
    scores[0, 0, 0] = 0.9  # class 0
    scores[0, 1, 0] = 0.8  # overlaps anchor 0 (IoU 9/11 = 0.82) same class: suppressed
    scores[0, 2, 1] = 0.7  # same box, other class: kept
    scores[0, 3, 0] = 0.0005  # under conf threshold
    (out,) = select_detections(boxes, scores, conf_threshold=0.001, iou_threshold=0.6)
    assert out["labels"].tolist() == [0, 1]
    assert out["scores"].tolist() == pytest.approx([0.9, 0.7])
    assert out["boxes"].tolist() == [[0, 0, 10, 10], [0, 0, 10, 10]]
    # With a higher IoU threshold the second box survives.
    (loose,) = select_detections(boxes, scores, 0.001, iou_threshold=0.9)
    assert loose["scores"].tolist() == pytest.approx([0.9, 0.8, 0.7])


def test_select_detections_multi_label_max_det_and_empty():
    boxes = torch.tensor([[[0, 0, 4, 4]] * 3 + [[100, 100, 120, 130]]], dtype=torch.float32)
    scores = torch.full((1, 4, 3), 0.5)
    scores[0, :, 2] = torch.tensor([0.1, 0.2, 0.3, 0.95])
    (out,) = select_detections(boxes, scores, 0.001, 0.5, max_det=2)
    assert len(out["boxes"]) == 2 and out["scores"][0] == pytest.approx(0.95)
    (none,) = select_detections(boxes, torch.zeros(1, 4, 3), 0.001, 0.5)
    assert none["boxes"].shape == (0, 4) and none["labels"].dtype == torch.int64


def test_postprocess_decodes_dfl_and_is_batched_equals_per_image():
    reg_max = 16
    anchor_points = torch.tensor([[8.0, 8.0], [40.0, 24.0]])
    anchor_strides = torch.tensor([8.0, 16.0])
    box_logits = torch.full((2, 2, 4, reg_max), -30.0)
    box_logits[:, 0, :, 1] = 30.0  # distances 1 stride = 8 px on every side
    box_logits[:, 1, :, 2] = 30.0  # 2 strides = 32 px
    cls_logits = torch.full((2, 2, 3), -10.0)
    cls_logits[0, 0, 1] = 3.0
    cls_logits[1, 1, 2] = 2.0
    outputs = {
        "cls_logits": cls_logits,
        "box_logits": box_logits,
        "anchor_points": anchor_points,
        "anchor_strides": anchor_strides,
    }
    both = postprocess(outputs, conf_threshold=0.01)
    assert both[0]["boxes"].tolist() == [[0, 0, 16, 16]]
    assert both[0]["labels"].tolist() == [1]
    assert both[1]["boxes"].tolist() == [[8, -8, 72, 56]]
    for i in range(2):
        single = postprocess(
            {**outputs, "cls_logits": cls_logits[i : i + 1], "box_logits": box_logits[i : i + 1]},
            conf_threshold=0.01,
        )[0]
        assert torch.equal(single["boxes"], both[i]["boxes"])


def test_weighted_box_fusion_hand_case():
    boxes = torch.tensor(
        [[0, 0, 10, 10], [2, 0, 12, 10], [0, 0, 10, 10], [30, 30, 40, 40]], dtype=torch.float32
    )
    scores = torch.tensor([0.9, 0.3, 0.8, 0.5])
    labels = torch.tensor([0, 0, 1, 0])
    out = weighted_box_fusion(boxes, scores, labels, iou_threshold=0.55)
    # cluster {0.9 @ x0, 0.3 @ x2}: x1 = (0.9*0 + 0.3*2)/1.2 = 0.5, score (0.9+0.3)/2 = 0.6
    assert out["labels"].tolist() == [1, 0, 0]
    assert out["scores"].tolist() == pytest.approx([0.8, 0.6, 0.5])
    assert out["boxes"][1].tolist() == pytest.approx([0.5, 0, 10.5, 10])
    empty = weighted_box_fusion(
        torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64)
    )
    assert empty["boxes"].shape == (0, 4)


def test_merge_detections_methods():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8])
    labels = torch.tensor([0, 0])
    assert len(merge_detections(boxes, scores, labels, "nms", 0.5)["boxes"]) == 1
    assert len(merge_detections(boxes, scores, labels, "wbf", 0.5)["boxes"]) == 1
    with pytest.raises(ValueError, match="unknown merge method"):
        merge_detections(boxes, scores, labels, "soft")
