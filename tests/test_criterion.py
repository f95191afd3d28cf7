"""Criterion: contract keys, empty targets, learning signal, ignore regions, config variants."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ssabnet.losses import LossConfig, box_loss, build_criterion
from ssabnet.losses.classification import bce_loss
from ssabnet.ops.anchors import decode_boxes
from ssabnet.ops.overlaps import box_iou_pairs

NUM_CLASSES, REG_MAX, IMAGE = 3, 16, 128


def anchor_grid(strides=(8, 16, 32), size=IMAGE):
    points, stride_list = [], []
    for stride in strides:
        n = size // stride
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        points.append((torch.stack([xs.flatten(), ys.flatten()], -1).float() + 0.5) * stride)
        stride_list.append(torch.full((n * n,), float(stride)))
    return torch.cat(points), torch.cat(stride_list)


def make_outputs(batch=2, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    points, strides = anchor_grid()
    num_anchors = points.shape[0]
    return {
        "cls_logits": (torch.randn(batch, num_anchors, NUM_CLASSES, generator=g) - 4).to(dtype),
        "box_logits": torch.randn(batch, num_anchors, 4, REG_MAX, generator=g).to(dtype),
        "anchor_points": points,
        "anchor_strides": strides,
    }


def targets_two_images():
    return [
        {
            "boxes": torch.tensor([[20.0, 20.0, 60.0, 50.0], [90.0, 90.0, 96.0, 95.0]]),
            "labels": torch.tensor([1, 2]),
        },
        {"boxes": torch.tensor([[30.0, 70.0, 50.0, 110.0]]), "labels": torch.tensor([0])},
    ]


def empty_targets(batch=2):
    return [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * batch


def test_contract_keys_and_weights():
    criterion = build_criterion(LossConfig(), NUM_CLASSES, REG_MAX)
    terms = criterion(make_outputs(), targets_two_images())
    assert set(terms) == {"loss", "cls", "box", "dfl"}
    assert all(t.ndim == 0 and t.dtype == torch.float32 for t in terms.values())
    weighted = 0.5 * terms["cls"] + 7.5 * terms["box"] + 1.5 * terms["dfl"]
    torch.testing.assert_close(terms["loss"], weighted)
    assert terms["box"] > 0 and terms["dfl"] > 0


def test_empty_targets_give_finite_loss_and_gradients():
    outputs = make_outputs()
    for tensor in (outputs["cls_logits"], outputs["box_logits"]):
        tensor.requires_grad_(True)
    terms = build_criterion(LossConfig(), NUM_CLASSES, REG_MAX)(outputs, empty_targets())
    assert terms["box"].item() == 0.0 and terms["dfl"].item() == 0.0
    assert torch.isfinite(terms["loss"]) and terms["cls"] > 0
    terms["loss"].backward()
    assert torch.isfinite(outputs["cls_logits"].grad).all()
    # Only negatives: the classification loss is BCE(logit, 0) summed, divided by 1.
    expected = bce_loss(logits := outputs["cls_logits"].detach(), torch.zeros_like(logits)).sum()
    torch.testing.assert_close(terms["cls"], expected)


def peaked_box_logits(outputs, targets, shift: float):
    """Box logits whose DFL expectation is each anchor's distance to the GT + ``shift``.

    The probability mass sits on the two bins around the distance, so the expectation is exact.
    """
    points, strides = outputs["anchor_points"], outputs["anchor_strides"]
    logits = torch.zeros_like(outputs["box_logits"])
    for i, target in enumerate(targets):
        box = target["boxes"][0]
        ltrb = torch.cat([points - box[:2], box[2:] - points], -1) / strides[:, None] + shift
        ltrb = ltrb.clamp(0.0, REG_MAX - 1.01)
        left = ltrb.floor().long()
        frac = ltrb - left
        probs = torch.zeros(*ltrb.shape, REG_MAX)
        probs.scatter_(-1, left[..., None], (1 - frac)[..., None])
        probs.scatter_add_(-1, left[..., None] + 1, frac[..., None])
        logits[i] = probs.clamp(min=1e-12).log()
    return logits


def test_loss_decreases_when_predictions_move_to_gt():
    targets = [
        {"boxes": torch.tensor([[20.0, 20.0, 60.0, 52.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[66.0, 70.0, 74.0, 77.0]]), "labels": torch.tensor([2])},
    ]
    for box in ("ciou", "nwd", "sabl"):
        criterion = build_criterion(LossConfig(box=box), NUM_CLASSES, REG_MAX)
        box_terms = []
        for shift in (3.0, 1.5, 0.5, 0.0):
            outputs = make_outputs()
            outputs["box_logits"] = peaked_box_logits(outputs, targets, shift)
            box_terms.append(criterion(outputs, targets)["box"].item())
        assert box_terms == sorted(box_terms, reverse=True), (box, box_terms)
        assert box_terms[-1] < 0.05 * box_terms[0]


def test_training_steps_reduce_the_loss():
    outputs = make_outputs(seed=1)
    params = [
        outputs["cls_logits"].requires_grad_(True),
        outputs["box_logits"].requires_grad_(True),
    ]
    optimizer = torch.optim.Adam(params, lr=0.1)
    criterion = build_criterion(LossConfig(), NUM_CLASSES, REG_MAX)
    targets = targets_two_images()
    first, _, _ = criterion.assign(outputs, targets)
    fg = first.fg_mask

    def mean_iou_of_first_positives() -> float:
        boxes = decode_boxes(
            outputs["box_logits"].detach(), outputs["anchor_points"], outputs["anchor_strides"]
        )
        return box_iou_pairs(boxes[fg], first.target_boxes[fg]).mean().item()

    iou_before = mean_iou_of_first_positives()
    history = []
    for _ in range(15):
        terms = criterion(outputs, targets)
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        history.append(terms["loss"].item())
    assert history[-1] < 0.5 * history[0]
    assert mean_iou_of_first_positives() > iou_before + 0.1


def test_ignore_regions_change_nothing_but_the_ignored_negatives():
    outputs = make_outputs()
    outputs["cls_logits"].requires_grad_(True)
    criterion = build_criterion(LossConfig(), NUM_CLASSES, REG_MAX)
    targets = targets_two_images()
    region = torch.tensor([[100.0, 0.0, 128.0, 40.0]])  # far from every GT
    ignored_targets = [dict(targets[0], ignore_regions=region), targets[1]]
    plain = criterion(outputs, targets)
    ignored = criterion(outputs, ignored_targets)
    # The assignment (and so box, DFL and the normaliser) is unchanged...
    torch.testing.assert_close(ignored["box"], plain["box"])
    torch.testing.assert_close(ignored["dfl"], plain["dfl"])
    # ...and cls loses exactly the BCE(logit, 0) of the anchors whose centre is in the region.
    points = outputs["anchor_points"]
    inside = (
        (points[:, 0] >= 100) & (points[:, 0] <= 128) & (points[:, 1] >= 0) & (points[:, 1] <= 40)
    )
    assert inside.sum() > 0
    assignment, _, _ = criterion.assign(outputs, targets)
    normaliser = assignment.target_scores.sum().clamp(min=1)
    inside_logits = outputs["cls_logits"][0, inside].detach()
    removed = bce_loss(inside_logits, torch.zeros_like(inside_logits)).sum()
    torch.testing.assert_close(ignored["cls"], plain["cls"] - removed / normaliser)
    # No gradient reaches the ignored anchors' class logits.
    (grad,) = torch.autograd.grad(ignored["loss"], outputs["cls_logits"])
    assert grad[0, inside].abs().sum() == 0 and grad[1, inside].abs().sum() > 0


def test_gt_inside_ignore_region_gets_no_positive():
    criterion = build_criterion(LossConfig(), NUM_CLASSES, REG_MAX)
    targets = [
        {
            "boxes": torch.tensor([[20.0, 20.0, 60.0, 50.0]]),
            "labels": torch.tensor([1]),
            "ignore_regions": torch.tensor([[0.0, 0.0, 128.0, 128.0]]),
        }
    ]
    assignment, _, _ = criterion.assign(make_outputs(batch=1), targets)
    assert assignment.num_fg == 0


@pytest.mark.parametrize(
    "changes",
    [{"box": kind} for kind in ("iou", "giou", "diou", "ciou", "eiou", "nwd", "sabl")]
    + [
        {"cls": "varifocal"},
        {"normalize": "num_fg"},
        {"balance": False},
        {"assigner_metric": "nwd"},
        {"assigner_metric": "sabl", "assigner_center_radius": 1.0},
        {"sabl_blend": "loss", "sabl_base": "eiou", "sabl_modulation": "logistic"},
    ],
)
def test_config_variants_are_finite(changes):
    cfg = dataclasses.replace(LossConfig(), **changes)
    outputs = make_outputs()
    outputs["box_logits"].requires_grad_(True)
    terms = build_criterion(cfg, NUM_CLASSES, REG_MAX)(outputs, targets_two_images())
    assert all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    assert torch.isfinite(outputs["box_logits"].grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_outputs(dtype):
    full = build_criterion(LossConfig(), NUM_CLASSES, REG_MAX)(make_outputs(), targets_two_images())
    half = build_criterion(LossConfig(), NUM_CLASSES, REG_MAX)(
        make_outputs(dtype=dtype), targets_two_images()
    )
    assert half["loss"].dtype == torch.float32
    torch.testing.assert_close(half["loss"], full["loss"], rtol=0.05, atol=0)


def test_bad_targets_and_config():
    criterion = build_criterion(LossConfig(), NUM_CLASSES, REG_MAX)
    bad_label = [{"boxes": torch.tensor([[0.0, 0.0, 5.0, 5.0]]), "labels": torch.tensor([3])}]
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2"):
        criterion(make_outputs(batch=1), bad_label)
    with pytest.raises(ValueError, match="2 targets for a batch of 1 images"):
        criterion(make_outputs(batch=1), empty_targets(2))
    with pytest.raises(ValueError, match="needs 'boxes' and 'labels'"):
        criterion(make_outputs(batch=1), [{"boxes": torch.zeros(0, 4)}])
    with pytest.raises(ValueError, match="cls_logits has 3 classes, expected 4"):
        build_criterion(LossConfig(), 4, REG_MAX)(make_outputs(batch=1), empty_targets(1))
    with pytest.raises(ValueError, match=r"loss\.box: unknown value 'l1'"):
        LossConfig(box="l1")
    with pytest.raises(ValueError, match=r"loss\.nwd_C must be > 0"):
        LossConfig(nwd_C=0.0)


def test_uses_the_model_decoder():
    outputs = make_outputs(batch=1)
    criterion = build_criterion(LossConfig(), NUM_CLASSES, REG_MAX)
    _, pred_boxes, _ = criterion.assign(outputs, empty_targets(1))
    expected = decode_boxes(
        outputs["box_logits"], outputs["anchor_points"], outputs["anchor_strides"]
    )
    torch.testing.assert_close(pred_boxes, expected)


def test_with_a_real_model():
    from ssabnet import build_model

    torch.manual_seed(0)
    model = build_model("ssabnet-n", num_classes=NUM_CLASSES)
    outputs = model(torch.rand(2, 3, IMAGE, IMAGE))
    criterion = build_criterion(LossConfig(), model.num_classes, model.reg_max)
    terms = criterion(outputs, targets_two_images())
    terms["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert terms["box"] > 0


def test_num_fg_normalisation_is_the_mean_over_positives():
    cfg = LossConfig(normalize="num_fg", balance=False, box="ciou")
    criterion = build_criterion(cfg, NUM_CLASSES, REG_MAX)
    outputs, targets = make_outputs(), targets_two_images()
    terms = criterion(outputs, targets)
    assignment, pred_boxes, _ = criterion.assign(outputs, targets)
    fg = assignment.fg_mask
    expected = box_loss("ciou", pred_boxes[fg], assignment.target_boxes[fg]).mean()
    torch.testing.assert_close(terms["box"], expected)
    expected_cls = bce_loss(outputs["cls_logits"], assignment.target_scores).sum() / fg.sum()
    torch.testing.assert_close(terms["cls"], expected_cls)
