"""``loss_curves`` / ``modulation_curve``: table layout, autograd vs hand-derived gradients,
IoU's vanishing gradient vs NWD's, SABL's hand-over."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ssabnet
from ssabnet.losses import loss_curves, modulation_curve


def test_table_layout_and_order():
    offsets = torch.linspace(-40, 40, 401)
    table = ssabnet.loss_curves(kinds=["iou", "nwd", "sabl"], gt_size=8, offsets=offsets)
    assert list(table.columns) == [
        "kind",
        "gt_size",
        "offset",
        "loss",
        "grad_cx",
        "grad_cy",
        "grad_w",
        "grad_h",
        "grad_norm",
    ]
    components = table[["grad_cx", "grad_cy", "grad_w", "grad_h"]].to_numpy()
    assert np.allclose(table["grad_norm"], np.linalg.norm(components, axis=1))
    assert len(table) == 3 * 401
    assert table["kind"].tolist()[::401] == ["iou", "nwd", "sabl"]
    assert np.allclose(table["offset"].to_numpy()[:401], offsets.double().numpy())
    assert np.isfinite(table.drop(columns="kind").to_numpy(dtype=float)).all()
    several = loss_curves("ciou", gt_size=[4, 16], offsets=[0.0, 1.0])
    assert several["gt_size"].tolist() == [4.0, 4.0, 16.0, 16.0]


def test_iou_gradient_vanishes_without_overlap_but_nwd_does_not():
    c = 12.0
    table = loss_curves(["iou", "nwd"], gt_size=8, offsets=[4.0, 10.0, 30.0], C=c)
    iou = table[table.kind == "iou"].set_index("offset")
    nwd = table[table.kind == "nwd"].set_index("offset")
    # Overlapping (offset 4): IoU = 32 / 96, d(1 - IoU)/dcx = 8 * 96 / 96^2 + 32 * 8 / 96^2.
    assert iou.loc[4.0, "loss"] == pytest.approx(1 - 1 / 3)
    assert iou.loc[4.0, "grad_cx"] == pytest.approx(8 / 96 + 32 * 8 / 96**2)
    for offset in (10.0, 30.0):
        assert iou.loc[offset, "loss"] == pytest.approx(1.0)
        assert iou.loc[offset, ["grad_cx", "grad_cy", "grad_w", "grad_h"]].abs().max() == 0
        # 1 - exp(-d / C): gradient exp(-d / C) / C along x, none across.
        assert nwd.loc[offset, "grad_cx"] == pytest.approx(math.exp(-offset / c) / c)
        assert nwd.loc[offset, "grad_cy"] == 0.0


def test_direction_and_size_modes():
    y = loss_curves("nwd", gt_size=10, offsets=[6.0], direction="y", C=12.0)
    assert y.grad_cx.item() == 0.0 and y.grad_cy.item() == pytest.approx(math.exp(-0.5) / 12)
    xy = loss_curves("nwd", gt_size=10, offsets=[6.0], direction="xy", C=12.0)
    w = 6 * math.sqrt(2)
    assert xy.loss.item() == pytest.approx(1 - math.exp(-w / 12))
    size = loss_curves("nwd", gt_size=10, offsets=[4.0], direction="size", C=12.0)
    # W2 = sqrt(2 * (4 / 2)^2), dW/dw = (dw / 4) / W2.
    w2 = math.sqrt(8)
    assert size.grad_w.item() == pytest.approx(math.exp(-w2 / 12) / 12 * 1 / w2)
    with pytest.raises(ValueError, match="unknown direction 'z'"):
        loss_curves("iou", gt_size=8, offsets=[0.0], direction="z")
    with pytest.raises(TypeError, match=r"\['kappa'\] are accepted by none"):
        loss_curves(["iou", "nwd"], gt_size=8, offsets=[0.0], kappa=32.0)


def test_sabl_hands_over_from_nwd_to_ciou():
    offsets = torch.linspace(-30, 30, 61)
    big = loss_curves(["sabl", "ciou"], gt_size=100, offsets=offsets)
    np.testing.assert_allclose(
        big[big.kind == "sabl"].drop(columns="kind").to_numpy(float),
        big[big.kind == "ciou"].drop(columns="kind").to_numpy(float),
        atol=1e-6,
    )
    tiny = loss_curves(["sabl", "nwd"], gt_size=4, offsets=[20.0], C=12.0, variant="paper")
    grads = tiny.set_index("kind").grad_cx
    # No overlap: the paper variant's centre gradient is mu(4) * NWD's (the (1 - mu) R_E part
    # is ~4e-6 x).
    mu = math.exp(-((4 / 32) ** 6))
    assert grads["sabl"] == pytest.approx(mu * grads["nwd"], rel=1e-4)
    # The relative variant: d/dx sqrt(1 + (x / 0.75 s)^2) = (1 / 0.75 s) r / sqrt(1 + r^2).
    relative = loss_curves("sabl", gt_size=4, offsets=[20.0]).grad_cx.item()
    r = 20 / (0.75 * 4)
    assert relative == pytest.approx(mu * r / math.sqrt(1 + r**2) / 3, rel=1e-4)


def test_modulation_curve():
    table = modulation_curve(np.arange(0, 129), kappa=32, beta=6)
    assert list(table.columns) == ["size", "mu", "modulation"]
    assert table.mu.iloc[0] == 1.0 and table.mu.is_monotonic_decreasing
    assert table.set_index("size").mu[32.0] == pytest.approx(math.exp(-1))
    logistic = modulation_curve([32.0], modulation="logistic")
    assert logistic.mu.item() == pytest.approx(0.5)
