"""Generate the teaching notebooks in this folder (stored WITHOUT outputs).

The notebooks are assembled from the cell sources below so that they stay reviewable as plain
Python and diff cleanly. Edit this file, then run::

    python notebooks/build_notebooks.py          # rewrite notebooks/*.ipynb
    python notebooks/build_notebooks.py --check  # exit 1 if a stored notebook is out of date

``tests/test_notebooks.py`` checks that the stored notebooks equal what this script produces,
that they carry no outputs, and executes each one.

Cell conventions: markdown cells start with ``# %% md``; exercise solutions are code cells whose
metadata hides the source (``{"jupyter": {"source_hidden": true}}``, collapsed in JupyterLab and
VS Code) and are introduced by a ``<details>`` hint in the markdown cell before them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
KERNEL = {"display_name": "Python 3 (ssabnet)", "language": "python", "name": "python3"}

# Shared first code cell: figures inline, no downloads, the demo folder.
SETUP = """\
import os
from pathlib import Path

import matplotlib
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
"""


def _cells(text: str) -> list:
    """Split ``text`` on ``# %%`` markers into notebook cells."""
    cells = []
    for chunk in text.split("# %%")[1:]:
        header, _, body = chunk.partition("\n")
        header = header.strip()
        body = body.strip("\n")
        if header == "md":
            cells.append(nbformat.v4.new_markdown_cell(body))
        elif header == "solution":
            cell = nbformat.v4.new_code_cell(body)
            cell.metadata["jupyter"] = {"source_hidden": True}
            cell.metadata["tags"] = ["solution"]
            cells.append(cell)
        elif header == "":
            cells.append(nbformat.v4.new_code_cell(body))
        else:
            raise ValueError(f"unknown cell marker '# %% {header}'")
    return cells


def build(text: str) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = KERNEL
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.cells = _cells(text)
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:02d}"  # stable ids: regenerating gives identical files
    return notebook


# ----------------------------------------------------------------------------------------------
NB01 = (
    """
# %% md
# 01 · Scale-aware box losses: IoU, NWD and SABL on toy boxes

**Learning goals.** After this notebook you can

1. explain why IoU-based losses (IoU, GIoU, CIoU, EIoU) give a *vanishing or misleading gradient*
   for tiny boxes that do not overlap their target;
2. compute the Normalized Wasserstein Distance (NWD) and say what its constant `C` controls;
3. read the SABL modulation curve `mu(s)` and say where SABL hands over from NWD to CIoU;
4. run a small box-regression experiment and compare how fast each loss pulls a box onto a
   6-px target.

No training and no data are needed; everything runs in seconds on a laptop CPU. All numbers come
from the public API: `ssabnet.box_loss`, `ssabnet.loss_curves` and
`ssabnet.losses.modulation_curve`.
# %%
"""
    + SETUP
    + """
# %% md
## 1. One pair of boxes, every loss

Boxes are `xyxy` in pixels. A 6 x 6 px target and a prediction of the same size shifted 4 px to
the right (they still overlap) and 10 px to the right (they do not).
# %%
from ssabnet.losses import BOX_LOSSES

KINDS = ["iou", "giou", "ciou", "eiou", "nwd", "sabl"]
gt = torch.tensor([[0.0, 0.0, 6.0, 6.0]])
rows = []
for shift in (0.0, 4.0, 10.0):
    pred = gt + torch.tensor([shift, 0.0, shift, 0.0])
    rows.append({"shift_px": shift} | {k: float(ssabnet.box_loss(k, pred, gt)) for k in KINDS})
pd.DataFrame(rows).set_index("shift_px")
# %% md
IoU saturates at 1 as soon as the boxes stop overlapping: a shift of 10 px and one of 100 px
look the same to it. NWD keeps growing with the distance. Every box loss available by name:
# %%
sorted(BOX_LOSSES)
# %% md
## 2. Loss and gradient over the offset, for several object sizes

`loss_curves` moves a square prediction of the ground truth's size along `x` and returns the loss
and its gradient with respect to the prediction's centre `cx` (autograd). We compare a very tiny
(6 px), a small (24 px) and a medium (64 px) object.
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
# %% md
What to look at:

* **IoU** (blue): outside the grey band the gradient is exactly 0. A 6-px object is left behind
  by a 6-px localisation error: the network gets no signal which way to move the box.
* **GIoU / CIoU / EIoU** do give a gradient outside the band (enclosing box, centre distance),
  but the centre-distance terms are *normalised by the enclosing box*, so for a tiny object the
  gradient is large near the target and decays like `1/offset` far away.
* **NWD** treats each box as a 2-D Gaussian; for two boxes of the same size the Wasserstein
  distance is just the centre distance, so the loss `1 - exp(-d / C)` is **the same curve for
  every object size**. That is what makes it scale-fair for tiny objects, and also why it is a
  poor choice alone for big objects: a 10-px error on a 200-px bus is penalised like one on a
  6-px pedestrian.

Let us check the NWD size-independence and the role of `C` directly.
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
# %% md
`C` is a *length*: the loss reaches `1 - 1/e = 0.63` at a Wasserstein distance of `C` pixels.
Small `C` saturates quickly (like IoU, little gradient far away); large `C` is nearly linear and
weak close to the target. SSABNet uses `C = 12 px`, close to the mean VisDrone object size.

## 3. SABL: hand-over from NWD to CIoU by object size

The Scale-Aware Balancing Loss blends an NWD term and a CIoU-like term with a small-object weight
`mu(s) = exp(-(s / kappa)^beta)` of the ground-truth size `s = sqrt(w h)`. With the defaults
(`kappa = 32 px`, `beta = 6`) tiny objects are trained with NWD and medium/large ones with CIoU.
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
sabl = ssabnet.loss_curves(["nwd", "ciou", "sabl"], gt_size=[6.0, 64.0], offsets=offsets, C=12.0)
fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for ax, size in zip(axes, (6.0, 64.0)):
    part = sabl[sabl.gt_size == size]
    for kind, style in (("nwd", ":"), ("ciou", "--"), ("sabl", "-")):
        rows_k = part[part.kind == kind]
        ax.plot(rows_k.offset, rows_k.loss, style, label=kind)
    ax.set_title(f"{size:.0f} px object: SABL follows {'NWD' if size < 32 else 'CIoU'}")
    ax.set_xlabel("horizontal offset (px)")
axes[0].set_ylabel("loss (unitless)")
axes[0].legend()
fig.tight_layout()
# %% md
## 4. A tiny regression experiment

We optimise the four numbers `(cx, cy, w, h)` of one box towards a **6 x 6 px** target with
Adam, using each loss alone, starting 9 px right and 7 px below with the wrong size (10 px).
The start box does not overlap the target, which is the everyday situation for a tiny object
early in training. We record the centre error (px) after every step.
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
# %% md
Plain IoU never moves: its gradient is zero until the boxes overlap. The Wasserstein-based
losses converge steadily; the IoU variants get there through their penalty terms, with a speed
that depends on the enclosing box.

## Exercises

**E1.** For a 6-px object and a same-size prediction shifted along `x`, from which offset on is
the IoU gradient exactly zero? Check it with `loss_curves`.

<details><summary>Hint</summary>The boxes stop overlapping when the shift equals the side.
The solution cell below is collapsed: click it to expand.</details>
# %%solution
# Solution E1: the boxes touch at |offset| = 6 px; from there on the IoU gradient is 0
# (offset 0 is the minimum, where every gradient is 0 by symmetry, so we skip it).
table = ssabnet.loss_curves("iou", gt_size=6.0, offsets=np.arange(0, 10.5, 0.5))
first_zero = table.loc[(table.offset > 0) & (table.grad_cx.abs() < 1e-12), "offset"].min()
print(f"IoU gradient vanishes from offset {first_zero} px on")
assert first_zero == 6.0
# %% md
**E2.** Repeat the regression experiment with NWD for `C = 2`, `12` and `48` px. Which one
converges fastest in 150 steps, and why does a very small `C` hurt?

<details><summary>Hint</summary>Look at the gradient of `1 - exp(-d / C)` far from the target:
it is `exp(-d / C) / C`.</details>
# %%solution
# Solution E2: with C = 2 px the loss is already saturated at the start distance
# (exp(-d/C) is tiny), so the gradient nearly vanishes, like IoU's.
errors = {C: regress("nwd", C=C).centre_error.iloc[-1] for C in (2.0, 12.0, 48.0)}
print({f"C={C:.0f}": round(err, 3) for C, err in errors.items()})
# %% md
**E3.** At which object size does SABL weight NWD and CIoU equally (`mu(s) = 0.5`)? Derive it
from `mu(s) = exp(-(s/kappa)^beta)` and check numerically.

<details><summary>Hint</summary>Solve `(s/kappa)^beta = ln 2`.</details>
# %%solution
# Solution E3: s = kappa * (ln 2)^(1/beta) = 32 * 0.693^(1/6) ~ 30.2 px.
analytic = 32.0 * np.log(2.0) ** (1 / 6)
grid = modulation_curve(np.linspace(20, 40, 2001))
numeric = grid.loc[(grid.mu - 0.5).abs().idxmin(), "size"]
print(f"analytic {analytic:.2f} px, numeric {numeric:.2f} px")
assert abs(analytic - numeric) < 0.02
# %% md
## Summary

* IoU-family losses are **relative**: for tiny objects a few pixels of error already mean no
  overlap, and plain IoU then has **zero gradient**; GIoU/CIoU/EIoU recover a gradient through
  penalty terms normalised by the enclosing box.
* NWD compares boxes as Gaussians; under translation it depends only on the **absolute**
  distance in units of `C` (same curve for every object size) and keeps a useful gradient far
  from the target.
* SABL uses `mu(s)` to train tiny objects with NWD and large ones with CIoU, handing over around
  30 px; `loss_curves` and `modulation_curve` reproduce every figure here from the library.

Next: `02_ssa_feature_maps.ipynb` (what the SSA neck does to feature maps).
"""
)

# ----------------------------------------------------------------------------------------------
NB02 = (
    """
# %% md
# 02 · Inside the SSA neck: upsampling, alignment and fusion on a drone image

**Learning goals.** After this notebook you can

1. compare nearest, bilinear and content-aware (CARAFE/FADE) upsampling of the same deep
   feature map and recognise nearest-neighbour aliasing (2 x 2 staircase blocks);
2. read the alignment offsets and the fusion gate that the SSA neck predicts;
3. explain with measurements why a stride-4 P2 map responds to tiny objects that a stride-8 P3
   map cannot resolve.

Tools: `ssabnet.build_model`, `ssabnet.load_checkpoint`, `ssabnet.model.taps.capture_features`
(named intermediate maps such as `p3.semantic`, `p3.upsampled`, `p2.gate`) and the small
`ssabnet.visualize` / `ssabnet.model.probe` helpers. Runs in well under a minute on a CPU.
# %%
"""
    + SETUP
    + """
# %% md
## 0. A drone image

We use a real VisDrone image from the `visdrone-sample` catalog card when the sample is present
beside the repository (`../shared/data/visdrone_sample`); otherwise a synthetic aerial scene is
generated (no download either way).
# %%
import tempfile

from PIL import Image

from ssabnet import visualize
from ssabnet.data.synthetic import generate_dataset
from ssabnet.model import probe

try:
    dataset = ssabnet.load_dataset("visdrone-sample")
    source = "real VisDrone image (visdrone-sample)"
except (FileNotFoundError, ValueError) as error:
    print(f"visdrone-sample not available ({error}); FALLING BACK to a synthetic scene.")
    folder = generate_dataset(Path(tempfile.mkdtemp()) / "scene", 2, seed=3, size=(640, 480))
    dataset = ssabnet.load_dataset(folder)
    source = "synthetic scene (ssabnet.data.synthetic)"
from ssabnet.ops.boxes import box_size

# the image with the most tiny (< 16 px) evaluated objects
record = max(dataset.records, key=lambda r: int((box_size(r.boxes)[r.evaluated] < 16).sum()))
image = np.asarray(Image.open(record.image_path).convert("RGB"))
print(source, "|", record.image_id, image.shape, "|", int(record.evaluated.sum()), "objects")
x, (scale_x, scale_y) = probe.image_to_input(image, long_side=640)
gt_boxes_input = record.boxes[record.evaluated] * np.array([scale_x, scale_y, scale_x, scale_y])
print("model input", tuple(x.shape))
fig, ax = plt.subplots(figsize=(10, 6))
ax.imshow(visualize.draw_boxes(image, record.boxes[record.evaluated], color=(255, 0, 0)))
ax.set_title(f"{source}: ground truth (red)")
ax.set_xlabel("x (px)")
ax.set_ylabel("y (px)")
# %% md
## 1. The model

If the demo has been run (`ssabnet demo`, or `$SSABNET_DEMO_DIR` points at its output) we load
its trained `ssabnet-n` checkpoint. Otherwise we build an **untrained** `ssabnet-n`: the
upsampling comparison still works (the operators are the same), but learned quantities such as
the alignment offsets are then at their initial values (the offset predictor is zero-initialised,
so untrained offsets are exactly 0).
# %%
checkpoint = DEMO_DIR / "ssabnet-n" / "weights" / "best.pt"
if checkpoint.is_file():
    model = ssabnet.load_checkpoint(checkpoint).model
    trained = True
    print("loaded trained demo checkpoint", checkpoint)
else:
    model = ssabnet.build_model("ssabnet-n", num_classes=10).eval()
    trained = False
    print(f"NOTE: no demo checkpoint at {checkpoint}; using an UNTRAINED ssabnet-n.")
print("upsampler:", model.config.upsampler, "| align:", model.config.align,
      "| fusion:", model.config.fusion, "| strides:", model.strides)
# %% md
## 2. Nearest vs bilinear vs content-aware upsampling of the same deep map

`probe.compare_upsamplers` runs the model once with taps on, takes the deep map entering the
P3 top-down step (`p3.semantic`, stride 16) and upsamples it to stride 8 three ways: nearest,
bilinear, and the model's own operator (`fade` in `ssabnet-n`: CARAFE-style reassembly kernels
predicted from the deep *and* the shallow map). We also build `ssabnet-n-carafe` (plain CARAFE:
kernels from the deep map only; untrained here, its kernels are close to a smooth blur).
# %%
carafe_model = ssabnet.build_model("ssabnet-n-carafe", num_classes=10).eval()
comparisons = {
    f"ssabnet-n ({'trained' if trained else 'untrained'})": probe.compare_upsamplers(model, x),
    "ssabnet-n-carafe (untrained)": probe.compare_upsamplers(carafe_model, x),
}
rows = []
fig, axes = plt.subplots(2, 3, figsize=(15, 7))
for row, (model_name, maps) in enumerate(comparisons.items()):
    operator = [k for k in maps if k not in ("semantic", "shallow", "kernels")][-1]
    for col, name in enumerate(("nearest", "bilinear", operator)):
        energy = visualize.feature_heatmap(maps[name], reduce="abs_mean")
        rows.append({"model": model_name, "upsampler": name,
                     "high_freq_ratio": probe.high_frequency_ratio(energy)})
        height, width = energy.shape
        ax = axes[row, col]
        ax.imshow(energy[height // 4 : height // 2, width // 4 : width // 2], cmap="magma")
        ax.set_title(f"{model_name}\\n{name}", fontsize=9)
        ax.set_xlabel("x (stride-8 cells, zoomed crop)")
        ax.set_ylabel("y (cells)")
fig.suptitle("P3 upsampled deep features: mean |activation| over channels (zoom)")
fig.tight_layout()
pd.DataFrame(rows)
# %% md
Nearest upsampling copies every coarse value into a 2 x 2 block: the staircase edges add
high-frequency power that carries no information (aliasing) -- its `high_freq_ratio` is the
largest. Bilinear removes the staircase but blurs real edges as much as fake ones.
Content-aware reassembly chooses a *different* kernel for every output pixel. The kernel weight
on the centre tap shows how much each output pixel simply copies its source (1 = nearest-like):
# %%
for model_name, maps in comparisons.items():
    kernels = maps["kernels"][0]  # [k*k, H, W], softmax-normalised per pixel
    centre = kernels[kernels.shape[0] // 2].numpy()
    print(f"{model_name}: {kernels.shape[0]} taps, centre weight mean {centre.mean():.3f}, "
          f"min {centre.min():.3f}, max {centre.max():.3f}")
fig, ax = plt.subplots(figsize=(7, 4))
im = ax.imshow(comparisons[next(iter(comparisons))]["kernels"][0, 4].numpy(), cmap="viridis")
fig.colorbar(im, ax=ax, label="centre-tap weight (0..1)")
ax.set_title("Reassembly kernels: weight of the centre tap per output pixel (P3)")
ax.set_xlabel("x (stride-8 cells)")
ax.set_ylabel("y (cells)")
# %% md
## 3. Alignment offsets and the fusion gate

After upsampling, the SSA neck **aligns** the semantic map to the detail map with a learned
offset field (FaPN-style flow alignment, `pL.offsets`, pixels per channel group) and **fuses**
the two with a learned spatial gate (`pL.gate` = weight of the shallow detail map, in (0, 1)).
# %%
from ssabnet.model.taps import capture_features

outputs, taps = capture_features(model, x)
print(sorted(name for name in taps if name.startswith("p2.")))
offsets_p2 = visualize.offset_magnitude(taps["p2.offsets"])
gate_p2 = taps["p2.gate"][0, 0].numpy()
print(f"P2 offsets: mean {offsets_p2.mean():.3f} px, max {offsets_p2.max():.3f} px "
      f"({'trained' if trained else 'untrained: zero-initialised'})")
print(f"P2 gate: mean {gate_p2.mean():.3f}, 5-95% range "
      f"{np.percentile(gate_p2, 5):.3f}..{np.percentile(gate_p2, 95):.3f}")
extent = (0, image.shape[1], image.shape[0], 0)  # draw maps in original image pixels
fig, axes = plt.subplots(1, 2, figsize=(15, 5))
axes[0].imshow(image, extent=extent)
im0 = axes[0].imshow(offsets_p2, cmap="inferno", alpha=0.6, extent=extent)
fig.colorbar(im0, ax=axes[0], label="offset length (P3-cell px)")
axes[0].set_title("P2 alignment offsets |(dx, dy)| over the image")
axes[1].imshow(image, extent=extent)
im1 = axes[1].imshow(gate_p2, cmap="coolwarm", alpha=0.6, vmin=0, vmax=1, extent=extent)
fig.colorbar(im1, ax=axes[1], label="gate: weight of shallow detail (0..1)")
axes[1].set_title("P2 fusion gate")
for ax in axes:
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
fig.tight_layout()
# %% md
## 4. P2 vs P3 responses on tiny objects

The head predicts from `P2` (stride 4) in SSABNet and from `P3` (stride 8) at best in the
baseline. An object smaller than the stride may contain **no cell centre at all** on the coarser
map. We measure, per level, how many tiny (< 16 px in the model input) objects contain at least
one cell centre and the mean feature energy inside objects relative to the whole map.
# %%
tiny = gt_boxes_input[box_size(gt_boxes_input) < 16]
rows = []
for level, stride in (("p2", 4), ("p3", 8)):
    energy = visualize.feature_heatmap(taps[f"{level}.out"], reduce="abs_mean")
    covered = [not np.isnan(probe.mean_inside_boxes(energy, box[None], stride))
               for box in tiny]
    rows.append({
        "level": level, "stride_px": stride, "tiny_objects": len(tiny),
        "tiny_with_a_cell_centre": int(np.sum(covered)),
        "energy_inside_tiny / mean": probe.mean_inside_boxes(energy, tiny, stride)
        / max(float(energy.mean()), 1e-12),
    })
pd.DataFrame(rows)
# %%
fig, axes = plt.subplots(1, 2, figsize=(15, 5))
for ax, level in zip(axes, ("p2", "p3")):
    heat = visualize.feature_heatmap(taps[f"{level}.out"], reduce="abs_mean")
    ax.imshow(heat, cmap="magma", extent=extent)
    ax.set_title(f"{level.upper()} neck output: mean |activation| "
                 f"(stride {4 if level == 'p2' else 8})")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
fig.tight_layout()
# %% md
## Exercises

**E1.** Use `compare_upsamplers(model, x, level="p2")` and compare the high-frequency ratios at
P2 with those at P3. Is the ordering nearest > bilinear the same?

<details><summary>Hint</summary>Reuse `visualize.feature_heatmap` and
`probe.high_frequency_ratio`; the solution cell below is collapsed.</details>
# %%solution
# Solution E1
maps_p2 = probe.compare_upsamplers(model, x, level="p2")
ratios = {
    name: probe.high_frequency_ratio(visualize.feature_heatmap(maps_p2[name], reduce="abs_mean"))
    for name in ("nearest", "bilinear")
}
print(ratios)
assert ratios["nearest"] > ratios["bilinear"]
# %% md
**E2.** Build `ssabnet-n-nogate` and list its P2 taps. Which tap disappears, and what replaces
the gate?

<details><summary>Hint</summary>`fusion="concat"`: the two maps are concatenated and projected
by a 1x1 convolution, so there is no explicit weight map to look at.</details>
# %%solution
# Solution E2
_, taps_nogate = capture_features(ssabnet.build_model("ssabnet-n-nogate", num_classes=10), x)
print(sorted(set(taps) - set(taps_nogate)))
# %% md
## Summary

* Nearest upsampling aliases (2 x 2 blocks, most high-frequency power); bilinear is smooth but
  content-blind; CARAFE/FADE reassemble each output pixel with its own predicted kernel.
* Flow alignment shifts the upsampled semantics onto the detail map (zero offsets before
  training); the gate decides, per pixel, how much shallow detail enters the fused map.
* Tiny objects can fall between the cell centres of a stride-8 map; the stride-4 P2 map
  resolves them, which is why SSABNet predicts from P2.

Next: `03_error_analysis_by_scale.ipynb`.
"""
)

# ----------------------------------------------------------------------------------------------
NB03 = (
    """
# %% md
# 03 · Error analysis by object size: baseline vs SSABNet

**Learning goals.** After this notebook you can

1. evaluate two checkpoints on the same images with `ssabnet.predict` and `ssabnet.Evaluator`
   and read the per-scale metrics (`AP_vt`, `AP_t`, `APs`, `APm`, `APl`);
2. decide whether a difference between two detectors is real with a paired bootstrap over
   images (`bootstrap_ap_difference`);
3. look at the missed objects (false negatives) by size in a gallery;
4. (optional) send the same predictions to FiftyOne for interactive browsing.

**Data.** If the demo has been run (`$SSABNET_DEMO_DIR`, default `runs/demo`, holding
`baseline-n/` and `ssabnet-n/`), we use its checkpoints. Otherwise the notebook trains two tiny
models itself on synthetic scenes (about 2 minutes on 2 CPU cores). Tiny budgets give tiny APs:
the *method* is the lesson, not the numbers.
# %%
"""
    + SETUP
    + """
# %%
from ssabnet.config import Config, merge
from ssabnet.data.synthetic import generate_dataset

RUN_NAMES = ("baseline-n", "ssabnet-n")
MAX_IMAGES = 24  # evaluate on at most this many validation images (CPU time)
USE_FIFTYONE = os.environ.get("SSABNET_NB_FIFTYONE", "0") == "1"  # section 5; off in CI

demo_ready = all((DEMO_DIR / n / "weights" / "best.pt").is_file() for n in RUN_NAMES)
if demo_ready:
    run_dirs = {name: DEMO_DIR / name for name in RUN_NAMES}
    print("using demo runs from", DEMO_DIR)
else:
    print(f"NOTE: no demo runs in {DEMO_DIR}; training two tiny runs here (~2 min on 2 cores).")
    work = Path("nb03_work")
    data_root = work / "data"
    if not (data_root / "val").is_dir():
        generate_dataset(data_root / "train", 32, seed=0, size=(256, 192))
        generate_dataset(data_root / "val", 12, seed=1, size=(256, 192))
    run_dirs = {}
    for name in RUN_NAMES:
        run_dir = work / name
        if not (run_dir / "weights" / "best.pt").is_file():
            recipe = {"box": "ciou", "balance": False, "assigner_metric": "iou"} \\
                if name.startswith("baseline") else {}  # the baseline trains with CIoU
            cfg = merge(Config(), {
                "data": {"train": str(data_root / "train"), "val": str(data_root / "val")},
                "model": {"name": name},
                "loss": recipe,
                "train": {"epochs": 6, "batch": 8, "imgsz": 256, "workers": 0,
                          "out": str(run_dir), "warmup_epochs": 1.0, "mosaic": 0.0,
                          "close_mosaic": 0, "ema": False, "val_interval": 6, "seed": 0},
            })
            ssabnet.fit(cfg, progress=False)
        run_dirs[name] = run_dir
run_dirs
# %% md
## 1. Predict and evaluate both checkpoints on the same images

`load_checkpoint` restores the model, its training config and class names. We read the
validation split named in the run's config through the catalog/loader, predict in original
image pixels and feed the predictions to one `Evaluator` per model.
# %%
checkpoints = {n: ssabnet.load_checkpoint(d / "weights" / "best.pt") for n, d in run_dirs.items()}
first = checkpoints[RUN_NAMES[0]]
val_data = ssabnet.load_dataset(first.config["data"]["val"])
records = sorted(val_data.records, key=lambda r: r.image_id)[:MAX_IMAGES]
imgsz = int(first.config["train"]["imgsz"])
print(f"{val_data.info.name}: evaluating {len(records)} of {len(val_data.records)} images "
      f"at imgsz {imgsz}")

metrics, matches, predictions = {}, {}, {}
for name, loaded in checkpoints.items():
    predictions[name] = ssabnet.predict(
        loaded, [r.image_path for r in records], image_ids=[r.image_id for r in records],
        imgsz=imgsz, conf=0.001,
    )
    evaluator = ssabnet.Evaluator(val_data.info, records)
    evaluator.process(predictions[name])
    metrics[name] = evaluator.evaluate()
    matches[name] = evaluator.matches()
SCALE_KEYS = ["AP", "AP50", "AP_vt", "AP_t", "APs", "APm", "APl", "AR100"]
table = pd.DataFrame({n: {k: m[k] for k in SCALE_KEYS} for n, m in metrics.items()}).T
table
# %%
buckets = ["AP_vt", "AP_t", "APs", "APm", "APl"]
fig, ax = plt.subplots(figsize=(9, 4))
width = 0.38
for i, name in enumerate(RUN_NAMES):
    values = [np.nan if metrics[name][k] is None else metrics[name][k] for k in buckets]
    ax.bar(np.arange(len(buckets)) + (i - 0.5) * width, values, width, label=name)
bucket_names = ["very tiny\\n<8 px", "tiny\\n8-16", "small\\n16-32", "medium\\n32-96"]
bucket_names.append("large\\n>=96")
ax.set_xticks(np.arange(len(buckets)), bucket_names)
ax.set_xlabel("object size bucket (sqrt(w*h), original px)")
ax.set_ylabel("AP@[.5:.95]")
ax.set_title("Per-scale AP on the validation images (missing bar = no objects of that size)")
ax.legend()
# %% md
## 2. Who finds which objects: recall by size at IoU 0.5

`evaluator.matches()` returns two tables: one row per detection (`dets`) and one per ground-truth
object (`gts`, with `size`, `size_bucket` and `status` = `tp` / `fn` / `ignore` ...).
# %%
gts = {name: m.gts[m.gts.status.isin(["tp", "fn"])] for name, m in matches.items()}
recall = pd.DataFrame({
    name: g.groupby("size_bucket", observed=True).matched.mean() for name, g in gts.items()
})
recall["n_objects"] = gts[RUN_NAMES[0]].groupby("size_bucket", observed=True).size()
recall
# %% md
## 3. Is the difference real? Paired bootstrap over images

AP differences on a few images are noisy. `bootstrap_ap_difference` resamples *images* (with
replacement, the same draw for both models) and recomputes AP50 per size bucket, giving a 95%
interval for `AP50(ssabnet) - AP50(baseline)`. An interval that contains 0 means: no evidence of
a difference on these data.
# %%
from ssabnet.evaluation import bootstrap_ap_difference

boot = bootstrap_ap_difference(matches["baseline-n"], matches["ssabnet-n"], n_boot=500, seed=0)
boot
# %%
shown = boot.dropna(subset=["delta"])
fig, ax = plt.subplots(figsize=(8, 4))
ax.errorbar(shown.index.astype(str), shown.delta,
            yerr=[shown.delta - shown.ci_low, shown.ci_high - shown.delta], fmt="o", capsize=4)
ax.axhline(0, color="grey", ls="--")
ax.set_xlabel("size bucket")
ax.set_ylabel("AP50(ssabnet-n) - AP50(baseline-n)")
ax.set_title("Paired bootstrap (500 resamples of images): difference with 95% CI")
# %% md
## 4. False-negative gallery

The objects `ssabnet-n` missed, smallest first, cropped with context (3x the object, at least
32 px) and enlarged. The red box is the ground truth; the title says whether the baseline found
it.
# %%
from PIL import Image

from ssabnet import visualize

paths = {r.image_id: r.image_path for r in records}
base_found = matches["baseline-n"].gts.set_index(["image_id", "gt_index"]).matched
missed = gts["ssabnet-n"][gts["ssabnet-n"].status == "fn"].sort_values("size").head(12)
print(f"{int((gts['ssabnet-n'].status == 'fn').sum())} missed of {len(gts['ssabnet-n'])} objects")
if len(missed):
    cols = 6
    fig, axes = plt.subplots(-(-len(missed) // cols), cols, figsize=(15, 5.5), squeeze=False)
    images = {}
    for ax, row in zip(axes.ravel(), missed.itertuples()):
        if row.image_id not in images:
            images[row.image_id] = np.asarray(Image.open(paths[row.image_id]).convert("RGB"))
        crop, box = visualize.crop_with_context(images[row.image_id],
                                                [row.x1, row.y1, row.x2, row.y2])
        ax.imshow(visualize.draw_boxes(crop, box[None], color=(255, 0, 0)))
        found = "found" if base_found.get((row.image_id, row.gt_index), False) else "missed"
        ax.set_title(f"{row.class_name}, {row.size:.1f} px\\nbaseline: {found}", fontsize=8)
        ax.set_xlabel("x (crop px)")
        ax.set_ylabel("y (crop px)")
    for ax in axes.ravel()[len(missed):]:
        ax.axis("off")
    fig.suptitle("ssabnet-n false negatives (IoU 0.5), smallest first")
    fig.tight_layout()
# %% md
## 5. Optional: browse the same results in FiftyOne

Set `SSABNET_NB_FIFTYONE=1` (and install the `fiftyone` extra) to index the validation images
with both models' predictions; then open the App with `ssabnet fiftyone launch`. Off by default
(and in CI): it needs a local database and a browser.
# %%
if USE_FIFTYONE:
    from ssabnet.evaluation import write_coco_results
    from ssabnet.integrations.fiftyone import index_dataset

    files = {
        name.replace("-", "_"): write_coco_results(
            Path("nb03_work") / f"{name}.json", predictions[name], val_data.info, records
        )
        for name in RUN_NAMES
    }
    fo_dataset = index_dataset(val_data, files, name="ssabnet-nb03", max_samples=len(records))
    print(fo_dataset)
else:
    print("FiftyOne section skipped (set SSABNET_NB_FIFTYONE=1 to run it).")
# %% md
## Exercises

**E1.** Repeat the bootstrap with `by="class"`. Which classes have enough objects for a narrow
interval?

<details><summary>Hint</summary>Look at the `n_gt` column next to the interval width
`ci_high - ci_low`. The solution cell below is collapsed.</details>
# %%solution
# Solution E1
by_class = bootstrap_ap_difference(matches["baseline-n"], matches["ssabnet-n"], n_boot=300,
                                   by="class")
by_class.assign(width=by_class.ci_high - by_class.ci_low).sort_values("n_gt", ascending=False)
# %% md
**E2.** Using the `dets` table, what fraction of each model's false positives are tiny
(`size_bucket` in very_tiny/tiny)? What does that tell you about the confidence threshold you
would pick for deployment?

<details><summary>Hint</summary>Filter `status == "fp"` and use
`value_counts(normalize=True)`.</details>
# %%solution
# Solution E2
pd.DataFrame({
    name: m.dets[m.dets.status == "fp"].size_bucket.value_counts(normalize=True)
    for name, m in matches.items()
})
# %% md
## Summary

* One `Evaluator` gives COCO metrics with AI-TOD tiny buckets and per-object matching tables;
  per-scale AP and recall show *where* a detector wins or loses.
* Differences on few images need a paired bootstrap over images before they mean anything.
* A false-negative gallery sorted by size turns numbers into concrete failure modes (blur,
  occlusion, objects below the stride).

Next: `04_train_on_your_data.ipynb`.
"""
)

# ----------------------------------------------------------------------------------------------
NB04 = (
    """
# %% md
# 04 · Train on your own data: from a VisDrone-format folder to metrics

**Learning goals.** After this notebook you can

1. lay out a dataset in the VisDrone format and load it with `ssabnet.load_dataset`;
2. configure a training run with a `Config` and dotted overrides, train it with `ssabnet.fit`
   and read the run folder;
3. predict with `ssabnet.predict` and score with `ssabnet.Evaluator`;
4. point the data catalog at a full VisDrone or UAVDT download.

We generate a tiny VisDrone-format folder with `ssabnet data synth` so the notebook runs
anywhere in about a minute; replace the folder by yours to train on real data.
# %%
"""
    + SETUP
    + """
# %% md
## 1. A VisDrone-format folder

VisDrone DET layout: `images/<name>.jpg` and `annotations/<name>.txt`, one object per line:
`left,top,width,height,score,category,truncation,occlusion` (pixels; category 1..10, 0 =
ignored region, 11 = others; score 0 = ignored object). The CLI generates such a folder:
# %%
import subprocess
import sys

work = Path("nb04_work")
for split, num, seed in (("train", 24, 0), ("val", 8, 1)):
    if not (work / split / "images").is_dir():
        subprocess.run(
            [sys.executable, "-m", "ssabnet", "data", "synth", "--out", str(work / split),
             "--num", str(num), "--seed", str(seed), "--size", "256", "192"],
            check=True,
        )
print(sorted(p.name for p in (work / "train").iterdir()))
first_annotation = sorted((work / "train" / "annotations").glob("*.txt"))[0]
print(first_annotation.name)
print("\\n".join(first_annotation.read_text().splitlines()[:5]))
# %%
from PIL import Image

from ssabnet import visualize

train = ssabnet.load_dataset(work / "train")
val = ssabnet.load_dataset(work / "val")
print(train.info.name, train.info.format, len(train.records), "images,",
      sum(int(r.evaluated.sum()) for r in train.records), "evaluated objects")
print("classes:", train.info.classes)
record = train.records[0]
image = np.asarray(Image.open(record.image_path).convert("RGB"))
fig, ax = plt.subplots(figsize=(7, 5))
ax.imshow(visualize.draw_boxes(image, record.boxes[record.evaluated], color=(255, 0, 0)))
ax.set_title(f"{record.image_id}: ground truth (red)")
ax.set_xlabel("x (px)")
ax.set_ylabel("y (px)")
# %% md
## 2. Configure and train

A `Config` is a tree of frozen dataclasses whose defaults are the SSABNet recipe. An experiment
lists only what changes, as a YAML file and/or dotted overrides (the same strings the CLI takes:
`ssabnet train model.name=baseline-n train.epochs=6 ...`). Unknown keys and wrong types are
errors. The budget here is tiny (5 epochs of 24 images at 256 px), so expect a small AP.
# %%
run_dir = work / "run"
cfg = ssabnet.load_config(None, [
    f"data.train={work / 'train'}", f"data.val={work / 'val'}",
    "model.name=baseline-n",
    "loss.box=ciou", "loss.balance=false", "loss.assigner_metric=iou",  # the baseline recipe
    "train.epochs=5", "train.batch=8", "train.imgsz=256", "train.workers=0",
    "train.mosaic=0.0", "train.close_mosaic=0", "train.warmup_epochs=1.0", "train.ema=false",
    "train.val_interval=5", f"train.out={run_dir}",
])
print(cfg.model.name, cfg.loss.box, cfg.train.epochs, cfg.train.imgsz)
if not (run_dir / "weights" / "best.pt").is_file():
    ssabnet.fit(cfg, progress=False)
print(sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()))
# %%
results = pd.read_csv(run_dir / "results.csv")
fig, ax = plt.subplots(figsize=(7, 4))
for term in ("loss", "cls", "box", "dfl"):
    if term in results:
        ax.plot(results.index + 1, results[term], marker="o", label=term)
ax.set_xlabel("epoch")
ax.set_ylabel("training loss (mean per batch)")
ax.set_title("Training curve of the tiny run (results.csv)")
ax.legend()
results.filter(regex="^(epoch|loss|AP50?|APs)$")
# %% md
## 3. Predict and evaluate

`load_checkpoint` restores model, config and class names; `predict` accepts a file, a folder, a
glob or a list of paths and returns boxes in original image pixels; `Evaluator` scores them.
# %%
loaded = ssabnet.load_checkpoint(run_dir / "weights" / "best.pt")
predictions = ssabnet.predict(
    loaded, [r.image_path for r in val.records], image_ids=[r.image_id for r in val.records],
    imgsz=256, conf=0.001,
)
evaluator = ssabnet.Evaluator(val.info, val.records)
evaluator.process(predictions)
val_metrics = evaluator.evaluate()
pd.Series({k: val_metrics[k] for k in ("AP", "AP50", "AP75", "AP_vt", "AP_t", "APs", "AR100")})
# %%
record = val.records[0]
det = predictions[record.image_id]
keep = det["scores"] >= 0.25
image = np.asarray(Image.open(record.image_path).convert("RGB"))
shown = visualize.draw_boxes(image, record.boxes[record.evaluated], color=(255, 0, 0))
shown = visualize.draw_boxes(shown, det["boxes"][keep], color=(0, 255, 255))
fig, ax = plt.subplots(figsize=(7, 5))
ax.imshow(shown)
ax.set_title(f"{record.image_id}: ground truth (red), detections with score >= 0.25 (cyan)")
ax.set_xlabel("x (px)")
ax.set_ylabel("y (px)")
# %% md
## 4. Pointing the catalog at a full VisDrone or UAVDT download

Datasets are named by **catalog cards**, small YAML files in `data_catalog/` (shipped:
`visdrone-det-{train,val,test-dev}`, `uavdt-{train,test}`, ...). A card's `root` may use
`${SSABNET_DATA:-data}`; relative roots are resolved against the project folder. So after
extracting `VisDrone2019-DET-train.zip` to `/datasets/VisDrone2019-DET-train`:

```bash
export SSABNET_DATA=/datasets
ssabnet data stats visdrone-det-train          # checks the folder early, with a clear message
ssabnet train data.train=visdrone-det-train data.val=visdrone-det-val model.name=ssabnet-s
```

Your own data gets its own card; cards are also searched in the folders of
`$SSABNET_CATALOG`. Here we write one for the folder above and load it by name:
# %%
import yaml

catalog = work / "my_catalog"
catalog.mkdir(exist_ok=True)
card = {
    "name": "my-drones-train",
    "description": "my own VisDrone-format folder",
    "format": "visdrone",
    "root": str((work / "train").resolve()),
    "classes": list(train.info.classes),
    "license": "mine",
}
(catalog / "my-drones-train.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
os.environ["SSABNET_CATALOG"] = str(catalog.resolve())
by_name = ssabnet.load_dataset("my-drones-train")
print(by_name.info.name, len(by_name.records), "images from", by_name.root)
assert len(by_name.records) == len(train.records)
# %% md
## Exercises

**E1.** Train the same budget with `model.name=ssabnet-n` and the default (SABL) loss recipe in
a new run folder, and compare `AP_t` and `AP50` with the baseline run.

<details><summary>Hint</summary>Drop the three `loss.*` overrides and change `train.out`.
The solution cell is collapsed; it takes about a minute.</details>
# %%solution
# Solution E1 (about a minute on 2 CPU cores)
ssabnet_cfg = ssabnet.config.merge(cfg, {
    "model": {"name": "ssabnet-n"},
    "loss": {"box": "sabl", "balance": True, "assigner_metric": "sabl"},
    "train": {"out": str(work / "run-ssabnet")},
})
if not (work / "run-ssabnet" / "weights" / "best.pt").is_file():
    ssabnet.fit(ssabnet_cfg, progress=False)
pd.DataFrame({
    "baseline-n": pd.read_csv(run_dir / "results.csv").iloc[-1],
    "ssabnet-n": pd.read_csv(work / "run-ssabnet" / "results.csv").iloc[-1],
}).loc[["AP50", "AP_t"]]
# %% md
**E2.** A typo in an override is an error, not a silent default. Try `train.epoch=3`.

<details><summary>Hint</summary>`ssabnet.config.ConfigError` names the unknown key.</details>
# %%solution
# Solution E2
try:
    ssabnet.load_config(None, ["train.epoch=3"])
except ValueError as error:
    print(type(error).__name__, ":", error)
# %% md
## Summary

* A VisDrone-format folder (or a COCO / UAVDT one) loads with `ssabnet.load_dataset(folder)`;
  a catalog card gives it a name and a documented location.
* `Config` + dotted overrides describe a run; `ssabnet.fit` writes a self-contained run folder
  (`config.yaml`, `results.csv`, `weights/`, `val/`).
* `load_checkpoint` -> `predict` -> `Evaluator` is the same path the CLI, the app and the
  notebooks use.
"""
)

NOTEBOOKS = {
    "01_scale_aware_losses.ipynb": NB01,
    "02_ssa_feature_maps.ipynb": NB02,
    "03_error_analysis_by_scale.ipynb": NB03,
    "04_train_on_your_data.ipynb": NB04,
}


def render(name: str) -> str:
    """The exact file content of notebook ``name``."""
    return nbformat.writes(build(NOTEBOOKS[name])) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        path = HERE / name
        text = render(name)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print("wrote", path)
    if stale:
        print("out of date (run python notebooks/build_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
