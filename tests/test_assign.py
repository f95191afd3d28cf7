"""Task-aligned assigner: hand-written cases, metrics, ignore regions, batched == per-image."""

from __future__ import annotations

import pytest
import torch

from ssabnet.assign import Assignment, TaskAlignedAssigner, anchors_in_regions, positives_per_gt

# Four anchors in a row (stride 10) and their own predicted boxes.
ANCHORS = torch.tensor([[5.0, 5.0], [15.0, 5.0], [25.0, 5.0], [35.0, 5.0]])
STRIDES = torch.full((4,), 10.0)
PRED_BOXES = torch.tensor(
    [[[0.0, 0.0, 20.0, 10.0], [10.0, 0.0, 20.0, 10.0], [20.0, 0.0, 30.0, 10.0], [20, 0, 40, 10]]]
)
GT_BOXES = torch.tensor([[[0.0, 0.0, 20.0, 10.0], [20.0, 0.0, 40.0, 10.0]]])
GT_LABELS = torch.tensor([[2, 0]])
GT_MASK = torch.tensor([[True, True]])
SCORES = torch.full((1, 4, 3), 0.5)


def assign(assigner, pred_boxes=PRED_BOXES, gt_boxes=GT_BOXES, mask=GT_MASK, ignore=None):
    return assigner(SCORES, pred_boxes, ANCHORS, STRIDES, GT_LABELS, gt_boxes, mask, ignore)


def test_hand_case_topk1():
    # GT0 holds anchors 0, 1 (IoU 1 and 1/2), GT1 anchors 2, 3 (IoU 1/2 and 1): top-1 each.
    out = assign(TaskAlignedAssigner(num_classes=3, topk=1, metric="iou"))
    assert out.fg_mask.tolist() == [[True, False, False, True]]
    assert out.matched_gt_idx[0, [0, 3]].tolist() == [0, 1]
    torch.testing.assert_close(out.target_boxes[0, 0], GT_BOXES[0, 0])
    torch.testing.assert_close(out.target_boxes[0, 3], GT_BOXES[0, 1])
    expected = torch.zeros(1, 4, 3)
    expected[0, 0, 2] = 1.0  # best anchor: t / max t * max IoU = 1
    expected[0, 3, 0] = 1.0
    torch.testing.assert_close(out.target_scores, expected)
    assert out.num_fg == 2
    assert positives_per_gt(out, 2).tolist() == [[1, 1]]


def test_hand_case_topk2_soft_scores():
    # Same scores, so t ratio = (u / u_max)^beta = (1/2)^6 for the second anchor of each GT.
    out = assign(TaskAlignedAssigner(num_classes=3, topk=2, metric="iou"))
    assert out.fg_mask.tolist() == [[True, True, True, True]]
    assert out.matched_gt_idx.tolist() == [[0, 0, 1, 1]]
    expected = torch.zeros(1, 4, 3)
    expected[0, 0, 2], expected[0, 1, 2] = 1.0, 0.5**6
    expected[0, 2, 0], expected[0, 3, 0] = 0.5**6, 1.0
    torch.testing.assert_close(out.target_scores, expected)


def test_conflict_keeps_the_larger_overlap():
    # Both GTs contain anchor 1; its predicted box [10, 0, 20, 10] overlaps GT1 more.
    gt_boxes = torch.tensor([[[0.0, 0.0, 20.0, 10.0], [8.0, 0.0, 21.0, 10.0]]])
    out = assign(TaskAlignedAssigner(num_classes=3, topk=4, metric="iou"), gt_boxes=gt_boxes)
    assert out.fg_mask[0, 1] and out.matched_gt_idx[0, 1].item() == 1
    assert out.matched_gt_idx[0, 0].item() == 0


def test_empty_and_padded_targets():
    assigner = TaskAlignedAssigner(num_classes=3, metric="iou")
    for gt_boxes, mask in (
        (torch.zeros(1, 0, 4), torch.zeros(1, 0, dtype=torch.bool)),
        (GT_BOXES, torch.tensor([[False, False]])),
    ):
        out = assigner(
            SCORES, PRED_BOXES, ANCHORS, STRIDES, GT_LABELS[:, : gt_boxes.shape[1]], gt_boxes, mask
        )
        assert isinstance(out, Assignment)
        assert not out.fg_mask.any() and out.target_scores.abs().sum() == 0
        assert out.target_scores.shape == (1, 4, 3) and out.target_boxes.shape == (1, 4, 4)
    # A padded second GT is never assigned.
    out = assign(assigner, mask=torch.tensor([[True, False]]))
    assert out.fg_mask.tolist() == [[True, True, False, False]]


def test_ignore_regions_block_positives():
    ignore = anchors_in_regions(
        ANCHORS, torch.tensor([[[0.0, 0.0, 10.0, 10.0]]]), torch.tensor([[True]])
    )
    assert ignore.tolist() == [[True, False, False, False]]
    out = assign(TaskAlignedAssigner(num_classes=3, topk=2, metric="iou"), ignore=ignore)
    assert out.fg_mask.tolist() == [[False, True, True, True]]
    # The remaining anchor of GT0 is now its best: soft score = its IoU (1/2).
    assert out.target_scores[0, 1, 2].item() == pytest.approx(0.5)


def test_tiny_gt_iou_vs_nwd_vs_sabl():
    # A 4x4 px object inside anchor 1's cell; anchor 1 predicts a box beside it (no overlap).
    gt_boxes = torch.tensor([[[12.0, 3.0, 16.0, 7.0]]])
    pred = PRED_BOXES.clone()
    pred[0, 1] = torch.tensor([17.0, 3.0, 21.0, 7.0])
    labels = GT_LABELS[:, :1]
    for metric, expected in (("iou", 0), ("nwd", 1), ("sabl", 1)):
        out = TaskAlignedAssigner(num_classes=3, metric=metric)(
            SCORES, pred, ANCHORS, STRIDES, labels, gt_boxes, GT_MASK[:, :1]
        )
        assert positives_per_gt(out, 1).item() == expected, metric


def test_far_prediction_does_not_underflow():
    # NWD of a prediction 300 px away with C=12 is exp(-25); its 6th power underflows float32.
    gt_boxes = torch.tensor([[[12.0, 3.0, 16.0, 7.0]]])
    pred = PRED_BOXES.clone()
    pred[0, 1] = torch.tensor([312.0, 3.0, 316.0, 7.0])
    out = TaskAlignedAssigner(num_classes=3, metric="nwd")(
        SCORES, pred, ANCHORS, STRIDES, GT_LABELS[:, :1], gt_boxes, GT_MASK[:, :1]
    )
    assert out.fg_mask[0, 1] and out.target_scores[0, 1, 2].item() > 0


def test_center_radius_fallback():
    # A 2x2 px object between anchor centres has no anchor inside; a radius of 1 stride helps.
    gt_boxes = torch.tensor([[[9.0, 4.0, 11.0, 6.0]]])
    args = (SCORES, PRED_BOXES, ANCHORS, STRIDES, GT_LABELS[:, :1], gt_boxes, GT_MASK[:, :1])
    assert TaskAlignedAssigner(num_classes=3, metric="nwd")(*args).num_fg == 0
    out = TaskAlignedAssigner(num_classes=3, metric="nwd", center_radius=1.0)(*args)
    assert out.fg_mask.tolist() == [[True, True, False, False]]


def test_batched_equals_per_image():
    g = torch.Generator().manual_seed(0)
    ys, xs = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    anchors = (torch.stack([xs.flatten(), ys.flatten()], -1).float() + 0.5) * 8  # 64 px image
    strides = torch.full((64,), 8.0)
    batch, num_classes, counts = 3, 4, [5, 0, 2]
    scores = torch.rand(batch, 64, num_classes, generator=g)
    pred = torch.cat([anchors - 6, anchors + 6], -1)[None].repeat(batch, 1, 1)
    pred = pred + torch.randn(batch, 64, 4, generator=g)
    gt_boxes = torch.zeros(batch, max(counts), 4)
    gt_labels = torch.zeros(batch, max(counts), dtype=torch.int64)
    gt_mask = torch.zeros(batch, max(counts), dtype=torch.bool)
    for i, n in enumerate(counts):
        xy = torch.rand(n, 2, generator=g) * 48
        gt_boxes[i, :n] = torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=g) * 12], -1)
        gt_labels[i, :n] = torch.randint(0, num_classes, (n,), generator=g)
        gt_mask[i, :n] = True
    for metric in ("iou", "nwd", "sabl"):
        assigner = TaskAlignedAssigner(num_classes=num_classes, topk=3, metric=metric)
        batched = assigner(scores, pred, anchors, strides, gt_labels, gt_boxes, gt_mask)
        assert batched.num_fg > 0
        for i, n in enumerate(counts):
            single = assigner(
                scores[i : i + 1],
                pred[i : i + 1],
                anchors,
                strides,
                gt_labels[i : i + 1, :n],
                gt_boxes[i : i + 1, :n],
                gt_mask[i : i + 1, :n],
            )
            assert torch.equal(single.fg_mask[0], batched.fg_mask[i])
            fg = single.fg_mask[0]
            assert torch.equal(single.matched_gt_idx[0][fg], batched.matched_gt_idx[i][fg])
            torch.testing.assert_close(single.target_boxes[0], batched.target_boxes[i])
            torch.testing.assert_close(single.target_scores[0], batched.target_scores[i])


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown assigner metric 'giou'"):
        TaskAlignedAssigner(num_classes=3, metric="giou")
    with pytest.raises(ValueError, match="pred_scores has 3 classes, expected 5"):
        assign(TaskAlignedAssigner(num_classes=5, metric="iou"))


def test_widen_tiny_sides_hand_case():
    from ssabnet.assign import widen_tiny_sides

    strides = torch.tensor([4.0] * 6 + [8.0] * 3 + [16.0])  # second-finest stride: 8 px
    boxes = torch.tensor([[10.0, 10.0, 12.0, 30.0], [0.0, 0.0, 20.0, 20.0], [5.0, 5.0, 5.0, 5.0]])
    expected = torch.tensor([[7.0, 10.0, 15.0, 30.0], [0.0, 0.0, 20.0, 20.0], [1, 1, 9, 9]])
    torch.testing.assert_close(widen_tiny_sides(boxes, strides), expected)
    # one level: its own stride
    torch.testing.assert_close(
        widen_tiny_sides(boxes[:1], torch.full((3,), 10.0)), torch.tensor([[6.0, 10, 16, 30]])
    )


def test_widen_tiny_gives_candidates_and_keeps_the_true_target_box():
    # A 2x2 px object whose box holds no anchor centre (anchors at x = 5, 15, 25, 35; stride 10):
    # widened to 10x10 about its centre (17, 5) it holds anchor 1 at (15, 5).
    gt_boxes = torch.tensor([[[16.0, 4.0, 18.0, 6.0]]])
    args = (SCORES, PRED_BOXES, ANCHORS, STRIDES, GT_LABELS[:, :1], gt_boxes, GT_MASK[:, :1])
    assert TaskAlignedAssigner(num_classes=3, metric="iou", widen_tiny=False)(*args).num_fg == 0
    out = TaskAlignedAssigner(num_classes=3, widen_tiny=True, metric="iou")(*args)
    assert out.fg_mask.tolist() == [[False, True, False, False]]
    torch.testing.assert_close(out.target_boxes[0, 1], gt_boxes[0, 0])  # not the widened box
    # IoU of anchor 1's box [10, 0, 20, 10] with the 2x2 object: 4 / 100
    torch.testing.assert_close(out.target_scores[0, 1, 2], torch.tensor(0.04))


def test_ciou_metric_ranks_clamps_and_sets_soft_targets():
    from ssabnet.ops.overlaps import complete_box_iou_pairs

    gt_boxes = GT_BOXES[:, :1]  # [0, 0, 20, 10], candidates: anchors 0 and 1
    pred = PRED_BOXES.clone()
    pred[0, 0] = torch.tensor([0.0, 0.0, 2.0, 10.0])  # IoU 0.1, but far centre: CIoU < 0
    args = (SCORES, pred, ANCHORS, STRIDES, GT_LABELS[:, :1], gt_boxes, GT_MASK[:, :1])
    by_iou = TaskAlignedAssigner(num_classes=3, topk=2, metric="iou")(*args)
    assert by_iou.fg_mask.tolist() == [[True, True, False, False]]
    by_ciou = TaskAlignedAssigner(num_classes=3, topk=2, metric="ciou")(*args)
    assert by_ciou.fg_mask.tolist() == [[False, True, False, False]]
    ciou = complete_box_iou_pairs(pred[0, 1:2], gt_boxes[0])[0]
    assert 0.4 < ciou.item() < 0.45  # IoU 0.5 - centre term 0.05 - aspect term
    torch.testing.assert_close(by_ciou.target_scores[0, 1, 2], ciou)
