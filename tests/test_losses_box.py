"""Box losses: hand-computed values, torchvision agreement, symmetry, scale behaviour, gradients,
degenerate boxes (hypothesis), the SABL modulation and hand-over, and the ``box_loss`` API."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.ops as tv
from hypothesis import given, settings
from hypothesis import strategies as st

from ssabnet.losses import BOX_LOSSES, box_loss, nwd_constant_from_sizes, sabl_loss
from ssabnet.losses.balance import scale_balance_weights
from ssabnet.ops.overlaps import (
    box_iou_pairs,
    complete_box_iou_pairs,
    distance_box_iou_pairs,
    efficient_box_iou_pairs,
    generalized_box_iou_pairs,
    normalized_wasserstein_distance,
    pair_geometry,
    scale_modulation,
    wasserstein_distance,
)

KINDS = tuple(BOX_LOSSES)
GT = torch.tensor([[0.0, 0.0, 10.0, 10.0]], dtype=torch.float64)
SHIFTED = torch.tensor([[5.0, 0.0, 15.0, 10.0]], dtype=torch.float64)
WIDE = torch.tensor([[0.0, 0.0, 20.0, 10.0]], dtype=torch.float64)


def random_boxes(n: int, generator: torch.Generator, lo=2.0, hi=60.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 100
    wh = lo + torch.rand(n, 2, generator=generator, dtype=torch.float64) * (hi - lo)
    return torch.cat([xy, xy + wh], dim=-1)


# ----------------------------------------------------------------------------- hand-computed
def test_hand_computed_shifted_squares():
    # Two 10x10 boxes offset by 5 px: inter 50, union 150, enclosing 15x10, rho^2 = 25.
    assert box_iou_pairs(SHIFTED, GT).item() == pytest.approx(1 / 3, abs=1e-9)
    assert generalized_box_iou_pairs(SHIFTED, GT).item() == pytest.approx(1 / 3, abs=1e-9)
    diou = 1 / 3 - 25 / 325
    assert distance_box_iou_pairs(SHIFTED, GT).item() == pytest.approx(diou, abs=1e-9)
    assert complete_box_iou_pairs(SHIFTED, GT).item() == pytest.approx(diou, abs=1e-9)  # v = 0
    assert efficient_box_iou_pairs(SHIFTED, GT).item() == pytest.approx(diou, abs=1e-9)
    assert wasserstein_distance(SHIFTED, GT).item() == pytest.approx(5.0, abs=1e-9)
    nwd = normalized_wasserstein_distance(SHIFTED, GT, C=12.0).item()
    assert nwd == pytest.approx(math.exp(-5 / 12), abs=1e-9)
    assert box_loss("nwd", SHIFTED, GT, C=12.0).item() == pytest.approx(1 - math.exp(-5 / 12))


def test_hand_computed_different_widths():
    # pred 20x10 vs gt 10x10 sharing the left edge: IoU 1/2, rho^2 25, enclosing 20x10.
    iou, rho2_c2 = 0.5, 25 / 500
    v = 4 / math.pi**2 * (math.atan(1.0) - math.atan(2.0)) ** 2
    alpha = v / (1 - iou + v)
    assert complete_box_iou_pairs(WIDE, GT).item() == pytest.approx(iou - rho2_c2 - alpha * v)
    # EIoU: (w - w_gt)^2 / C_w^2 = 100 / 400.
    assert efficient_box_iou_pairs(WIDE, GT).item() == pytest.approx(iou - rho2_c2 - 0.25)
    # W2^2 = 5^2 + (10^2 + 0) / 4 = 50.
    assert wasserstein_distance(WIDE, GT).item() == pytest.approx(math.sqrt(50))


def test_hand_computed_disjoint_giou():
    far = torch.tensor([[20.0, 0.0, 30.0, 10.0]], dtype=torch.float64)
    assert box_iou_pairs(far, GT).item() == 0.0
    assert generalized_box_iou_pairs(far, GT).item() == pytest.approx(-1 / 3)  # (300-200)/300


def test_hand_computed_sabl_default():
    s, kappa, beta, c_rel = 10.0, 32.0, 6.0, 0.75
    mu = math.exp(-((s / kappa) ** beta))
    r_w = math.sqrt(1 + (5 / (c_rel * s)) ** 2) - 1  # W2 = 5 px
    expected = 1 - 1 / 3 + mu * r_w + (1 - mu) * 25 / 325  # v = 0
    assert sabl_loss(SHIFTED, GT).item() == pytest.approx(expected, abs=1e-9)
    # blend="loss": mu (1 - IoU + R_W) + (1 - mu) L_CIoU.
    whole = mu * (1 - 1 / 3 + r_w) + (1 - mu) * (1 - (1 / 3 - 25 / 325))
    assert sabl_loss(SHIFTED, GT, blend="loss").item() == pytest.approx(whole, abs=1e-9)


def test_hand_computed_sabl_paper_variant():
    s, kappa, beta, c = 10.0, 32.0, 6.0, 12.0
    mu = math.exp(-((s / kappa) ** beta))
    expected = 1 - 1 / 3 + mu * (1 - math.exp(-5 / c)) + (1 - mu) * 25 / 325  # v = 0
    assert sabl_loss(SHIFTED, GT, variant="paper").item() == pytest.approx(expected, abs=1e-9)
    # blend="loss": mu (1 - NWD) + (1 - mu) L_CIoU.
    whole = mu * (1 - math.exp(-5 / c)) + (1 - mu) * (1 - (1 / 3 - 25 / 325))
    got = sabl_loss(SHIFTED, GT, blend="loss", variant="paper").item()
    assert got == pytest.approx(whole, abs=1e-9)


# ----------------------------------------------------------------------------- torchvision
def test_matches_torchvision_pairwise_diagonal_and_losses():
    g = torch.Generator().manual_seed(0)
    pred, gt = random_boxes(300, g), random_boxes(300, g)
    pairs = {
        box_iou_pairs: tv.box_iou,
        generalized_box_iou_pairs: tv.generalized_box_iou,
        distance_box_iou_pairs: tv.distance_box_iou,
        complete_box_iou_pairs: tv.complete_box_iou,
    }
    for ours, theirs in pairs.items():
        torch.testing.assert_close(ours(pred, gt), theirs(pred, gt).diagonal(), atol=1e-6, rtol=0)
    elementwise = {
        "giou": tv.generalized_box_iou_loss,
        "diou": tv.distance_box_iou_loss,
        "ciou": tv.complete_box_iou_loss,
    }
    for kind, theirs in elementwise.items():
        torch.testing.assert_close(box_loss(kind, pred, gt), theirs(pred, gt), atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("kind", ["iou", "giou", "diou", "ciou", "eiou", "nwd"])
def test_symmetric_kinds(kind):
    g = torch.Generator().manual_seed(1)
    a, b = random_boxes(100, g), random_boxes(100, g)
    torch.testing.assert_close(box_loss(kind, a, b), box_loss(kind, b, a))


def test_sabl_is_not_symmetric_because_scale_comes_from_gt():
    small = torch.tensor([[0.0, 0.0, 8.0, 8.0]], dtype=torch.float64)
    big = torch.tensor([[0.0, 0.0, 80.0, 80.0]], dtype=torch.float64)
    assert sabl_loss(small, big).item() != pytest.approx(sabl_loss(big, small).item())


@pytest.mark.parametrize("kind", KINDS)
def test_identical_boxes_have_zero_loss(kind):
    g = torch.Generator().manual_seed(2)
    boxes = random_boxes(50, g)
    assert box_loss(kind, boxes, boxes).abs().max().item() < 1e-6


def test_nwd_scale_behaviour():
    # Equal-size boxes shifted by a fixed offset d: W2 = d whatever the size, so NWD does not
    # depend on the size (IoU does: it grows with the size).
    d, c = 4.0, 12.0
    values, ious = [], []
    for size in (4.0, 8.0, 32.0, 128.0):
        gt = torch.tensor([[0.0, 0.0, size, size]])
        pred = gt + torch.tensor([d, 0.0, d, 0.0])
        values.append(normalized_wasserstein_distance(pred, gt, C=c).item())
        ious.append(box_iou_pairs(pred, gt).item())
    assert values == pytest.approx([math.exp(-d / c)] * 4, abs=1e-6)
    assert ious == sorted(ious) and ious[0] == 0.0
    # Scaling both boxes by k is the same as dividing C by k.
    g = torch.Generator().manual_seed(3)
    a, b = random_boxes(20, g), random_boxes(20, g)
    torch.testing.assert_close(
        normalized_wasserstein_distance(3 * a, 3 * b, C=12.0),
        normalized_wasserstein_distance(a, b, C=4.0),
    )


def test_sabl_equals_ciou_for_large_boxes():
    g = torch.Generator().manual_seed(4)
    gt = random_boxes(500, g, lo=64.0, hi=400.0)  # s >= 2 kappa: mu <= exp(-64)
    pred = gt + torch.randn(500, 4, generator=g, dtype=torch.float64) * 20
    torch.testing.assert_close(sabl_loss(pred, gt), box_loss("ciou", pred, gt), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        sabl_loss(pred, gt, variant="paper"), box_loss("ciou", pred, gt), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        sabl_loss(pred, gt, blend="loss", base="eiou"),
        box_loss("eiou", pred, gt),
        atol=1e-6,
        rtol=0,
    )


def test_sabl_tiny_boxes_keep_a_gradient_without_overlap():
    gt = torch.tensor([[0.0, 0.0, 6.0, 6.0]])
    pred = torch.tensor([[30.0, 0.0, 36.0, 6.0]], requires_grad=True)
    for kind, expect_zero in (("iou", True), ("nwd", False), ("sabl", False)):
        (grad,) = torch.autograd.grad(box_loss(kind, pred, gt).sum(), pred)
        assert (grad.abs().sum().item() == 0.0) == expect_zero, kind


def test_modulation_monotone_continuous_and_anchored():
    sizes = torch.linspace(0, 200, 20001, dtype=torch.float64)
    for modulation, at_kappa in (("exp", math.exp(-1)), ("logistic", 0.5)):
        mu = scale_modulation(sizes, modulation=modulation)
        assert mu[0].item() == 1.0 and (mu >= 0).all() and (mu <= 1).all()
        assert (mu.diff() <= 0).all()
        # Lipschitz on the grid: no jump larger than max|mu'| * step (max|mu'| < 0.2 /px here).
        assert mu.diff().abs().max().item() < 0.2 * 0.01
        assert scale_modulation(torch.tensor([32.0]), modulation=modulation).item() == (
            pytest.approx(at_kappa)
        )
    with pytest.raises(ValueError, match="unknown SABL modulation"):
        scale_modulation(sizes, modulation="step")


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_float64(kind):
    g = torch.Generator().manual_seed(5)
    gt = random_boxes(6, g, lo=4.0, hi=50.0)
    pred = (gt + torch.randn(6, 4, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    params = {"detach_alpha": False} if kind in ("ciou", "sabl") else {}
    assert torch.autograd.gradcheck(lambda p: box_loss(kind, p, gt, **params), (pred,))


def test_gradcheck_sabl_variants():
    g = torch.Generator().manual_seed(6)
    gt = random_boxes(6, g, lo=10.0, hi=60.0)  # sizes around kappa: both terms matter
    pred = (gt + torch.randn(6, 4, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    for params in (
        {"variant": "paper"},
        {"variant": "paper", "blend": "loss"},
        {"c_rel": 0.3},
        {"modulation": "logistic"},
        {"blend": "loss"},
        {"blend": "loss", "base": "eiou"},
    ):
        assert torch.autograd.gradcheck(
            lambda p, params=params: sabl_loss(p, gt, detach_alpha=False, **params), (pred,)
        )


box_coord = st.floats(min_value=-1e5, max_value=1e5, allow_nan=False, width=32)
box_strategy = st.tuples(box_coord, box_coord, box_coord, box_coord)


@settings(max_examples=50, deadline=None)
@given(
    pred=st.lists(box_strategy, min_size=1, max_size=4),
    gt=st.lists(box_strategy, min_size=1, max_size=4),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]),
)
def test_degenerate_boxes_stay_finite(pred, gt, dtype):
    n = min(len(pred), len(gt))
    pred_t = torch.tensor(pred[:n], dtype=torch.float32)
    gt_t = torch.tensor(gt[:n], dtype=torch.float32)
    # Add the adversarial cases explicitly: identical, zero-size, negative-width, far apart.
    extra_pred = torch.tensor(
        [[1.0, 1.0, 1.0, 1.0], [5.0, 5.0, 2.0, 2.0], [0.0, 0.0, 4.0, 4.0], [1e5, 1e5, 1e5, 1e5]]
    )
    extra_gt = torch.tensor(
        [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 3.0, 3.0], [0.0, 0.0, 4.0, 4.0], [-1e5, -1e5, -1e5, 0]]
    )
    pred_t = torch.cat([pred_t, extra_pred]).to(dtype)
    gt_t = torch.cat([gt_t, extra_gt]).to(dtype)
    finite_in = torch.isfinite(pred_t).all(-1) & torch.isfinite(gt_t).all(-1)  # fp16 overflow
    pred_t, gt_t = pred_t[finite_in], gt_t[finite_in]
    for kind, params in [(k, {}) for k in KINDS] + [("sabl", {"variant": "paper"})]:
        leaf = pred_t.clone().requires_grad_(True)
        loss = box_loss(kind, leaf, gt_t, **params)
        assert loss.dtype == torch.float32
        assert torch.isfinite(loss).all(), (kind, params, loss)
        (grad,) = torch.autograd.grad(loss.sum(), leaf)
        assert torch.isfinite(grad).all(), (kind, params, grad)


def test_half_precision_is_computed_in_float32():
    # Half inputs are upcast before any arithmetic: the result equals the float32 computation on
    # the same (rounded) coordinates, not a half-precision approximation of it.
    g = torch.Generator().manual_seed(7)
    gt = random_boxes(100, g).float()
    pred = gt + torch.randn(100, 4, generator=g) * 4
    for kind in KINDS:
        for dtype in (torch.float16, torch.bfloat16):
            half = box_loss(kind, pred.to(dtype), gt.to(dtype))
            full = box_loss(kind, pred.to(dtype).float(), gt.to(dtype).float())
            assert half.dtype == torch.float32
            torch.testing.assert_close(half, full, atol=1e-7, rtol=0)


# ----------------------------------------------------------------------------- API
def test_box_loss_api_errors_and_reductions():
    with pytest.raises(ValueError, match="unknown box loss 'focal'"):
        box_loss("focal", SHIFTED, GT)
    with pytest.raises(TypeError, match=r"box loss 'iou' got unexpected parameter\(s\) \['C'\]"):
        box_loss("iou", SHIFTED, GT, C=12.0)
    with pytest.raises(TypeError, match="kapa"):
        box_loss("sabl", SHIFTED, GT, kapa=32.0)
    with pytest.raises(ValueError, match="unknown reduction 'avg'"):
        box_loss("iou", SHIFTED, GT, reduction="avg")
    with pytest.raises(ValueError, match=r"Tensor\[\.\.\., 4\]"):
        box_loss("iou", SHIFTED[:, :3], GT)
    with pytest.raises(ValueError, match="unknown SABL blend"):
        box_loss("sabl", SHIFTED, GT, blend="mix")
    both = torch.cat([SHIFTED, GT])
    gts = torch.cat([GT, GT])
    assert box_loss("iou", both, gts, reduction="sum").item() == pytest.approx(2 / 3)
    assert box_loss("iou", both, gts, reduction="mean").item() == pytest.approx(1 / 3)
    empty = box_loss("sabl", torch.zeros(0, 4), torch.zeros(0, 4), reduction="mean")
    assert empty.item() == 0.0


def test_nwd_constant_from_sizes():
    assert nwd_constant_from_sizes([8.0, 16.0, 12.0]) == pytest.approx(12.0)
    assert nwd_constant_from_sizes(torch.tensor([10.0, 20.0, 0.0]), scale=0.5) == 7.5
    with pytest.raises(ValueError, match="no positive, finite object size"):
        nwd_constant_from_sizes([0.0, float("nan")])


# ----------------------------------------------------------------------------- balancing
def test_scale_balance_weights_hand_case():
    weights = torch.ones(4)
    sizes = torch.tensor([4.0, 4.0, 4.0, 100.0])  # three very_tiny, one large
    unchanged = scale_balance_weights(weights, sizes, gamma=1.0)
    torch.testing.assert_close(unchanged, weights)
    equal = scale_balance_weights(weights, sizes, gamma=0.0)  # each bucket total 2
    torch.testing.assert_close(equal, torch.tensor([2 / 3, 2 / 3, 2 / 3, 2.0]))
    half = scale_balance_weights(weights, sizes, gamma=0.5)
    tiny_total = 4 * math.sqrt(3) / (math.sqrt(3) + 1)
    torch.testing.assert_close(half, torch.tensor([tiny_total / 3] * 3 + [4 - tiny_total]))
    # Within a bucket the relative weights are kept; the total is always preserved.
    weights = torch.tensor([0.2, 0.6, 0.9, 0.1, 0.3])
    sizes = torch.tensor([5.0, 5.0, 20.0, 50.0, 50.0])
    out = scale_balance_weights(weights, sizes, gamma=0.0)
    assert out.sum().item() == pytest.approx(weights.sum().item())
    assert (out[1] / out[0]).item() == pytest.approx(3.0)
    assert scale_balance_weights(torch.zeros(0), torch.zeros(0)).numel() == 0


def test_scale_balance_weights_by_objects_hand_case():
    # One very_tiny object with 1 positive (w 0.5), one medium object with 3 (w 1, 1, 2) and
    # one more medium object with 1 positive (w 4). Total weight W = 8.5.
    weights = torch.tensor([0.5, 1.0, 1.0, 2.0, 4.0])
    sizes = torch.tensor([5.0, 50.0, 50.0, 50.0, 40.0])
    ids = torch.tensor([7, 3, 3, 3, 9])
    # gamma = 1: every object gets W / 3, a positive keeps its share of its object.
    per_object = 8.5 / 3
    expected = torch.tensor(
        [per_object, per_object / 4, per_object / 4, per_object / 2, per_object]
    )
    torch.testing.assert_close(scale_balance_weights(weights, sizes, 1.0, ids), expected)
    # gamma = 0: the very_tiny and the medium bucket get W / 2 each, split between objects.
    expected = torch.tensor([4.25, 4.25 / 2 / 4, 4.25 / 2 / 4, 4.25 / 2 / 2, 4.25 / 2])
    torch.testing.assert_close(scale_balance_weights(weights, sizes, 0.0, ids), expected)
    # The anchor rule counts positives instead: the medium bucket has 4, very_tiny 1.
    anchors = scale_balance_weights(weights, sizes, 1.0)
    torch.testing.assert_close(
        anchors,
        weights
        * torch.tensor([1.0, 1, 1, 1, 1])
        * (
            torch.tensor(
                [
                    8.5 * 1 / 5 / 0.5,
                    8.5 * 4 / 5 / 8,
                    8.5 * 4 / 5 / 8,
                    8.5 * 4 / 5 / 8,
                    8.5 * 4 / 5 / 8,
                ]
            )
        ),
    )
    # An object whose positives all weigh 0 stays at 0 and takes no share.
    out = scale_balance_weights(
        torch.tensor([0.0, 1.0]), torch.tensor([5.0, 50.0]), 1.0, torch.tensor([0, 1])
    )
    torch.testing.assert_close(out, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="object_ids"):
        scale_balance_weights(weights, sizes, 1.0, ids[:2])


def test_lean_iou_equals_shared_geometry_iou():
    g = torch.Generator().manual_seed(8)
    a = torch.randn(500, 4, generator=g, dtype=torch.float64) * 20  # many reversed boxes
    b = torch.randn(500, 4, generator=g, dtype=torch.float64) * 20
    torch.testing.assert_close(box_iou_pairs(a, b), pair_geometry(a, b).iou)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_reversed_box_gradients_stay_finite(dtype):
    # Found by the property test: a point prediction against a reversed (negative-height) GT.
    # The enclosing box must contain both centres, or rho^2 / c^2 explodes.
    pred = torch.zeros(1, 4, dtype=dtype, requires_grad=True)
    gt = torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=dtype)
    for kind, params in [(k, {}) for k in KINDS] + [("sabl", {"variant": "paper"})]:
        (grad,) = torch.autograd.grad(box_loss(kind, pred, gt, **params).sum(), pred)
        assert torch.isfinite(grad).all(), (kind, grad)
