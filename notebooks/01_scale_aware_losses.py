# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ssabnet)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Scale-aware box losses: IoU, NWD and SABL on toy boxes
#
# **Learning goals.** After this notebook you can
#
# 1. explain why IoU-based losses (IoU, GIoU, CIoU, EIoU) give a *vanishing or misleading gradient*
#    for tiny boxes that do not overlap their target;
# 2. compute the Normalized Wasserstein Distance (NWD) and say what its constant `C` controls;
# 3. read the SABL modulation curve `mu(s)` and say where SABL hands over from NWD to CIoU;
# 4. run a small box-regression experiment and compare how fast each loss pulls a box onto a
#    6-px target.
#
# No training and no data are needed; everything runs in seconds on a laptop CPU. All numbers come
# from the public API: `ssabnet.box_loss`, `ssabnet.loss_curves` and
# `ssabnet.losses.modulation_curve`.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

import ssabnet

torch.manual_seed(0)
torch.set_num_threads(min(2, os.cpu_count() or 1))
plt.rcParams.update({"figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3})
pd.set_option("display.precision", 4)
DEMO_DIR = Path(os.environ.get("SSABNET_DEMO_DIR", "runs/demo"))
print("ssabnet", ssabnet.__version__, "| torch", torch.__version__, "| demo dir:", DEMO_DIR)

# %% [markdown]
# ## 1. One pair of boxes, every loss
#
# Boxes are `xyxy` in pixels. A 6 x 6 px target and a prediction of the same size shifted 4 px to
# the right (they still overlap) and 10 px to the right (they do not).

# %%
from ssabnet.losses import BOX_LOSSES

KINDS = ["iou", "giou", "ciou", "eiou", "nwd", "sabl"]
gt = torch.tensor([[0.0, 0.0, 6.0, 6.0]])
rows = []
for shift in (0.0, 4.0, 10.0):
    pred = gt + torch.tensor([shift, 0.0, shift, 0.0])
    rows.append({"shift_px": shift} | {k: float(ssabnet.box_loss(k, pred, gt)) for k in KINDS})
pd.DataFrame(rows).set_index("shift_px")

# %% [markdown]
# IoU saturates at 1 as soon as the boxes stop overlapping: a shift of 10 px and one of 100 px
# look the same to it. NWD keeps growing with the distance. Every box loss available by name:

# %%
sorted(BOX_LOSSES)

# %% [markdown]
# ## 2. Loss and gradient over the offset, for several object sizes
#
# `loss_curves` moves a square prediction of the ground truth's size along `x` and returns the loss
# and its gradient with respect to the prediction's centre `cx` (autograd). We compare a very tiny
# (6 px), a small (24 px) and a medium (64 px) object.

# %%
SIZES = [6.0, 24.0, 64.0]
offsets = torch.linspace(-48, 48, 193)
curves = ssabnet.loss_curves(KINDS, gt_size=SIZES, offsets=offsets, direction="x", C=12.0)
print(curves.shape)
curves.head()

# %%
fig, axes = plt.subplots(2, len(SIZES), figsize=(14, 7), sharex=True)
for col, size in enumerate(SIZES):
    part = curves[curves.gt_size == size]
    for kind in KINDS:
        rows_k = part[part.kind == kind]
        axes[0, col].plot(rows_k.offset, rows_k.loss, label=kind)
        axes[1, col].plot(rows_k.offset, rows_k.grad_cx, label=kind)
    for ax in axes[:, col]:
        ax.axvspan(-size, size, color="grey", alpha=0.1)
    axes[0, col].set_title(f"{size:.0f} px object: loss (grey = boxes overlap)")
    axes[1, col].set_title(f"{size:.0f} px object: d loss / d cx")
    axes[0, col].set_ylabel("loss (unitless)")
    axes[1, col].set_ylabel("gradient (1/px)")
    axes[1, col].set_xlabel("horizontal offset of the prediction (px)")
axes[0, 0].legend(ncol=2, fontsize=8)
fig.suptitle("Box losses vs offset (NWD and SABL with C = 12 px)")
fig.tight_layout()

# %% [markdown]
# What to look at:
#
# * **IoU** (blue): outside the grey band the gradient is exactly 0. A 6-px object is left behind
#   by a 6-px localisation error: the network gets no signal which way to move the box.
# * **GIoU / CIoU / EIoU** do give a gradient outside the band (enclosing box, centre distance),
#   but the centre-distance terms are *normalised by the enclosing box*, so for a tiny object the
#   gradient is large near the target and decays like `1/offset` far away.
# * **NWD** treats each box as a 2-D Gaussian; for two boxes of the same size the Wasserstein
#   distance is just the centre distance, so the loss `1 - exp(-d / C)` is **the same curve for
#   every object size**. That is what makes it scale-fair for tiny objects, and also why it is a
#   poor choice alone for big objects: a 10-px error on a 200-px bus is penalised like one on a
#   6-px pedestrian.
#
# Let us check the NWD size-independence and the role of `C` directly.

# %%
nwd_sizes = ssabnet.loss_curves("nwd", gt_size=[6.0, 64.0], offsets=offsets, C=12.0)
same = np.allclose(
    nwd_sizes[nwd_sizes.gt_size == 6.0].loss.values,
    nwd_sizes[nwd_sizes.gt_size == 64.0].loss.values,
)
print("NWD loss identical for 6 px and 64 px objects under pure translation:", same)

fig, ax = plt.subplots(figsize=(7, 4))
for C in (4.0, 12.0, 32.0):
    part = ssabnet.loss_curves("nwd", gt_size=6.0, offsets=offsets, C=C)
    ax.plot(part.offset, part.loss, label=f"C = {C:.0f} px")
ax.set_xlabel("horizontal offset (px)")
ax.set_ylabel("NWD loss = 1 - exp(-W2 / C)")
ax.set_title("NWD: the constant C sets the distance scale (6 px object)")
ax.legend()

# %% [markdown]
# `C` is a *length*: the loss reaches `1 - 1/e = 0.63` at a Wasserstein distance of `C` pixels.
# Small `C` saturates quickly (like IoU, little gradient far away); large `C` is nearly linear and
# weak close to the target. SSABNet uses `C = 12 px`, close to the mean VisDrone object size.
#
# ## 3. SABL: hand-over from NWD to CIoU by object size
#
# The Scale-Aware Balancing Loss blends an NWD term and a CIoU-like term with a small-object weight
# `mu(s) = exp(-(s / kappa)^beta)` of the ground-truth size `s = sqrt(w h)`. With the defaults
# (`kappa = 32 px`, `beta = 6`) tiny objects are trained with NWD and medium/large ones with CIoU.
#
# The paper gives no code, and we compare two readings of its Wasserstein term: `sabl-paper`,
# the literal `1 - exp(-W/C)` with a fixed `C = 12 px`, whose gradient fades beyond about `2C`,
# and `sabl` (`variant="relative"`), a Wasserstein distance measured in object sizes whose pull
# on the centre stays at least CIoU's up to 4 object sizes away (docs/losses.md). Neither has
# beaten CIoU in training yet, so CIoU is the default box loss (docs/results.md).

# %%
from ssabnet.losses import modulation_curve
from ssabnet.scales import SIZE_BUCKETS

sizes = np.linspace(1, 96, 191)
fig, ax = plt.subplots(figsize=(8, 4))
for modulation in ("exp", "logistic"):
    table = modulation_curve(sizes, modulation=modulation)
    ax.plot(table["size"], table.mu, label=f"{modulation} (kappa=32, beta=6)")
for bucket in SIZE_BUCKETS[1:]:
    ax.axvline(bucket.lo, color="grey", ls=":")
    ax.text(bucket.lo + 1, 0.05, bucket.name, rotation=90, fontsize=8, color="grey")
ax.set_xlabel("object size sqrt(w*h) (px)")
ax.set_ylabel("mu(s): weight of the NWD term")
ax.set_title("SABL modulation: 1 = pure NWD, 0 = pure CIoU")
ax.legend()

# %%
sizes_6_64 = [6.0, 64.0]
literal = ssabnet.loss_curves("sabl", sizes_6_64, offsets, C=12.0, variant="paper")
sabl = pd.concat(
    [
        ssabnet.loss_curves(["nwd", "ciou", "sabl"], sizes_6_64, offsets, C=12.0),
        literal.assign(kind="sabl-paper"),
    ],
    ignore_index=True,
)
fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for ax, size in zip(axes, (6.0, 64.0), strict=True):
    part = sabl[sabl.gt_size == size]
    for kind, style in (("nwd", ":"), ("ciou", "--"), ("sabl", "-"), ("sabl-paper", "-.")):
        rows_k = part[part.kind == kind]
        ax.plot(rows_k.offset, rows_k.loss, style, label=kind)
    ax.set_title(f"{size:.0f} px object: SABL follows {'NWD' if size < 32 else 'CIoU'}")
    ax.set_xlabel("horizontal offset (px)")
axes[0].set_ylabel("loss (unitless)")
axes[0].legend()
fig.tight_layout()

# %% [markdown]
# ## 4. A tiny regression experiment
#
# We optimise the four numbers `(cx, cy, w, h)` of one box towards a **6 x 6 px** target with
# Adam, using each loss alone, starting 9 px right and 7 px below with the wrong size (10 px).
# The start box does not overlap the target, which is the everyday situation for a tiny object
# early in training. We record the centre error (px) after every step.

# %%
from ssabnet.ops.boxes import boxes_cxcywh_to_xyxy

target = torch.tensor([[0.0, 0.0, 6.0, 6.0]], dtype=torch.float64)
start = torch.tensor([[12.0, 10.0, 10.0, 10.0]], dtype=torch.float64)  # cx, cy, w, h
STEPS = 150


def regress(kind: str, steps: int = STEPS, lr: float = 0.3, **params) -> pd.DataFrame:
    box = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([box], lr=lr)
    history = []
    for step in range(steps + 1):
        loss = ssabnet.box_loss(kind, boxes_cxcywh_to_xyxy(box), target, **params).sum()
        with torch.no_grad():
            centre_error = float(torch.dist(box[0, :2], torch.tensor([3.0, 3.0])))
            iou = 1 - float(ssabnet.box_loss("iou", boxes_cxcywh_to_xyxy(box), target))
        history.append({"kind": kind, "step": step, "centre_error": centre_error, "iou": iou})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return pd.DataFrame(history)


runs = pd.concat(
    [regress(k) for k in ("iou", "giou", "ciou", "eiou")]
    + [regress("nwd", C=12.0), regress("sabl", C=12.0)],
    ignore_index=True,
)
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
for kind, part in runs.groupby("kind", sort=False):
    axes[0].plot(part.step, part.centre_error, label=kind)
    axes[1].plot(part.step, part.iou, label=kind)
axes[0].set_ylabel("centre error (px)")
axes[1].set_ylabel("IoU with the 6 px target")
for ax in axes:
    ax.set_xlabel("Adam step")
axes[0].set_title("Regressing a box onto a 6 px target: centre error")
axes[1].set_title("... and IoU")
axes[0].legend()
fig.tight_layout()
final = runs[runs.step == STEPS].set_index("kind")[["centre_error", "iou"]]
final

# %%
assert final.loc["iou", "centre_error"] > 5, "plain IoU should not move a non-overlapping box"
assert final.loc["nwd", "centre_error"] < 1.0, "NWD should bring the tiny box onto its target"

# %% [markdown]
# Plain IoU never moves: its gradient is zero until the boxes overlap. The Wasserstein-based
# losses converge steadily; the IoU variants get there through their penalty terms, with a speed
# that depends on the enclosing box.
#
# ## Exercises
#
# **E1.** For a 6-px object and a same-size prediction shifted along `x`, from which offset on is
# the IoU gradient exactly zero? Check it with `loss_curves`.
#
# <details><summary>Hint</summary>The boxes stop overlapping when the shift equals the side.
# The solution cell below is collapsed: click it to expand.</details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution E1: the boxes touch at |offset| = 6 px; from there on the IoU gradient is 0
# (offset 0 is the minimum, where every gradient is 0 by symmetry, so we skip it).
table = ssabnet.loss_curves("iou", gt_size=6.0, offsets=np.arange(0, 10.5, 0.5))
first_zero = table.loc[(table.offset > 0) & (table.grad_cx.abs() < 1e-12), "offset"].min()
print(f"IoU gradient vanishes from offset {first_zero} px on")
assert first_zero == 6.0

# %% [markdown]
# **E2.** Repeat the regression experiment with NWD for `C = 2`, `12` and `48` px. Which one
# converges fastest in 150 steps, and why does a very small `C` hurt?
#
# <details><summary>Hint</summary>Look at the gradient of `1 - exp(-d / C)` far from the target:
# it is `exp(-d / C) / C`.</details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution E2: with C = 2 px the loss is already saturated at the start distance
# (exp(-d/C) is tiny), so the gradient nearly vanishes, like IoU's.
errors = {C: regress("nwd", C=C).centre_error.iloc[-1] for C in (2.0, 12.0, 48.0)}
print({f"C={C:.0f}": round(err, 3) for C, err in errors.items()})

# %% [markdown]
# **E3.** At which object size does SABL weight NWD and CIoU equally (`mu(s) = 0.5`)? Derive it
# from `mu(s) = exp(-(s/kappa)^beta)` and check numerically.
#
# <details><summary>Hint</summary>Solve `(s/kappa)^beta = ln 2`.</details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution E3: s = kappa * (ln 2)^(1/beta) = 32 * 0.693^(1/6) ~ 30.2 px.
analytic = 32.0 * np.log(2.0) ** (1 / 6)
grid = modulation_curve(np.linspace(20, 40, 2001))
numeric = grid.loc[(grid.mu - 0.5).abs().idxmin(), "size"]
print(f"analytic {analytic:.2f} px, numeric {numeric:.2f} px")
assert abs(analytic - numeric) < 0.02

# %% [markdown]
# ## Summary
#
# * IoU-family losses are **relative**: for tiny objects a few pixels of error already mean no
#   overlap, and plain IoU then has **zero gradient**; GIoU/CIoU/EIoU recover a gradient through
#   penalty terms normalised by the enclosing box.
# * NWD compares boxes as Gaussians; under translation it depends only on the **absolute**
#   distance in units of `C` (same curve for every object size) and keeps a useful gradient far
#   from the target.
# * SABL uses `mu(s)` to train tiny objects with NWD and large ones with CIoU, handing over around
#   30 px; `loss_curves` and `modulation_curve` reproduce every figure here from the library.
#
# Next: `02_ssa_feature_maps.py` (what the SSA neck does to feature maps).
