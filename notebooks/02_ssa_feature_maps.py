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
# # 02 · Inside the SSA neck: upsampling, alignment and fusion on a drone image
#
# **Learning goals.** After this notebook you can
#
# 1. compare nearest, bilinear and content-aware (CARAFE/FADE) upsampling of the same deep
#    feature map and recognise nearest-neighbour aliasing (2 x 2 staircase blocks);
# 2. read the alignment offsets and the fusion gate that the SSA neck predicts;
# 3. explain with measurements why a stride-4 P2 map responds to tiny objects that a stride-8 P3
#    map cannot resolve.
#
# Tools: `ssabnet.build_model`, `ssabnet.load_checkpoint`, `ssabnet.analysis.capture_features`
# (named intermediate maps such as `p3.semantic`, `p3.upsampled`, `p2.gate`) and the small
# `ssabnet.analysis` helpers. Runs in well under a minute on a CPU.

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
# ## 0. A drone image
#
# We use a real VisDrone image from the `visdrone-sample` catalog card when the sample is present
# beside the repository (`../shared/data/visdrone_sample`); otherwise a synthetic aerial scene is
# generated (no download either way).

# %%
import tempfile

from ssabnet import analysis

try:
    dataset = ssabnet.load_dataset("visdrone-sample")
    source = "real VisDrone image (visdrone-sample)"
except (FileNotFoundError, ValueError) as error:
    print(f"visdrone-sample not available ({error}); FALLING BACK to a synthetic scene.")
    scene = Path(tempfile.mkdtemp()) / "scene"
    folder = ssabnet.generate_dataset(scene, 2, seed=3, size=(640, 480))
    dataset = ssabnet.load_dataset(folder)
    source = "synthetic scene (ssabnet.data.synthetic)"


# the image with the most tiny (< 16 px) evaluated objects
def n_tiny(r):
    return int((analysis.box_size(r.boxes)[r.evaluated] < 16).sum())


record = max(dataset.records, key=n_tiny)
image = analysis.read_image_rgb(record.image_path)
print(source, "|", record.image_id, image.shape, "|", int(record.evaluated.sum()), "objects")
x, (scale_x, scale_y) = analysis.image_to_input(image, long_side=640)
gt_boxes_input = record.boxes[record.evaluated] * np.array([scale_x, scale_y, scale_x, scale_y])
print("model input", tuple(x.shape))
fig, ax = plt.subplots(figsize=(10, 6))
ax.imshow(analysis.draw_boxes(image, record.boxes[record.evaluated], color=(255, 0, 0)))
ax.set_title(f"{source}: ground truth (red)")
ax.set_xlabel("x (px)")
ax.set_ylabel("y (px)")

# %% [markdown]
# ## 1. The model
#
# If the demo has been run (`ssabnet demo`, or `$SSABNET_DEMO_DIR` points at its output) we load
# its trained `ssabnet-n` checkpoint. Otherwise we build an **untrained** `ssabnet-n`: the
# upsampling comparison still works (the operators are the same), but learned quantities such as
# the alignment offsets are then at their initial values (the offset predictor is zero-initialised,
# so untrained offsets are exactly 0).

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
print(
    "upsampler:",
    model.config.upsampler,
    "| align:",
    model.config.align,
    "| fusion:",
    model.config.fusion,
    "| strides:",
    model.strides,
)

# %% [markdown]
# ## 2. Nearest vs bilinear vs content-aware upsampling of the same deep map
#
# `analysis.compare_upsamplers` runs the model once with taps on, takes the deep map entering the
# P3 top-down step (`p3.semantic`, stride 16) and upsamples it to stride 8 three ways: nearest,
# bilinear, and the model's own operator (`fade` in `ssabnet-n`: CARAFE-style reassembly kernels
# predicted from the deep *and* the shallow map). We also build `ssabnet-n-carafe` (plain CARAFE:
# kernels from the deep map only; untrained here, its kernels are close to a smooth blur).

# %%
carafe_model = ssabnet.build_model("ssabnet-n-carafe", num_classes=10).eval()
comparisons = {
    f"ssabnet-n ({'trained' if trained else 'untrained'})": analysis.compare_upsamplers(model, x),
    "ssabnet-n-carafe (untrained)": analysis.compare_upsamplers(carafe_model, x),
}
rows = []
fig, axes = plt.subplots(2, 3, figsize=(15, 7))
for row, (model_name, maps) in enumerate(comparisons.items()):
    operator = [k for k in maps if k not in ("semantic", "shallow", "kernels")][-1]
    for col, name in enumerate(("nearest", "bilinear", operator)):
        energy = analysis.feature_heatmap(maps[name], reduce="abs_mean")
        rows.append(
            {
                "model": model_name,
                "upsampler": name,
                "high_freq_ratio": analysis.high_frequency_ratio(energy),
            }
        )
        height, width = energy.shape
        ax = axes[row, col]
        ax.imshow(energy[height // 4 : height // 2, width // 4 : width // 2], cmap="magma")
        ax.set_title(f"{model_name}\n{name}", fontsize=9)
        ax.set_xlabel("x (stride-8 cells, zoomed crop)")
        ax.set_ylabel("y (cells)")
fig.suptitle("P3 upsampled deep features: mean |activation| over channels (zoom)")
fig.tight_layout()
pd.DataFrame(rows)

# %% [markdown]
# Nearest upsampling copies every coarse value into a 2 x 2 block: the staircase edges add
# high-frequency power that carries no information (aliasing) -- its `high_freq_ratio` is the
# largest. Bilinear removes the staircase but blurs real edges as much as fake ones.
# Content-aware reassembly chooses a *different* kernel for every output pixel. The kernel weight
# on the centre tap shows how much each output pixel simply copies its source (1 = nearest-like):

# %%
for model_name, maps in comparisons.items():
    kernels = maps["kernels"][0]  # [k*k, H, W], softmax-normalised per pixel
    centre = kernels[kernels.shape[0] // 2].numpy()
    print(
        f"{model_name}: {kernels.shape[0]} taps, centre weight mean {centre.mean():.3f}, "
        f"min {centre.min():.3f}, max {centre.max():.3f}"
    )
fig, ax = plt.subplots(figsize=(7, 4))
im = ax.imshow(comparisons[next(iter(comparisons))]["kernels"][0, 4].numpy(), cmap="viridis")
fig.colorbar(im, ax=ax, label="centre-tap weight (0..1)")
ax.set_title("Reassembly kernels: weight of the centre tap per output pixel (P3)")
ax.set_xlabel("x (stride-8 cells)")
ax.set_ylabel("y (cells)")

# %% [markdown]
# ## 3. Alignment offsets and the fusion gate
#
# After upsampling, the SSA neck **aligns** the semantic map to the detail map with a learned
# offset field (FaPN-style flow alignment, `pL.offsets`, pixels per channel group) and **fuses**
# the two with a learned spatial gate (`pL.gate` = weight of the shallow detail map, in (0, 1)).

# %%

outputs, taps = analysis.capture_features(model, x)
print(sorted(name for name in taps if name.startswith("p2.")))
offsets_p2 = analysis.offset_magnitude(taps["p2.offsets"])
gate_p2 = taps["p2.gate"][0, 0].numpy()
print(
    f"P2 offsets: mean {offsets_p2.mean():.3f} px, max {offsets_p2.max():.3f} px "
    f"({'trained' if trained else 'untrained: zero-initialised'})"
)
print(
    f"P2 gate: mean {gate_p2.mean():.3f}, 5-95% range "
    f"{np.percentile(gate_p2, 5):.3f}..{np.percentile(gate_p2, 95):.3f}"
)
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

# %% [markdown]
# ## 4. P2 vs P3 responses on tiny objects
#
# The head predicts from `P2` (stride 4) in SSABNet and from `P3` (stride 8) at best in the
# baseline. An object smaller than the stride may contain **no cell centre at all** on the coarser
# map. We measure, per level, how many tiny (< 16 px in the model input) objects contain at least
# one cell centre and the mean feature energy inside objects relative to the whole map.

# %%
tiny = gt_boxes_input[analysis.box_size(gt_boxes_input) < 16]
rows = []
for level, stride in (("p2", 4), ("p3", 8)):
    energy = analysis.feature_heatmap(taps[f"{level}.out"], reduce="abs_mean")
    covered = [not np.isnan(analysis.mean_inside_boxes(energy, box[None], stride)) for box in tiny]
    rows.append(
        {
            "level": level,
            "stride_px": stride,
            "tiny_objects": len(tiny),
            "tiny_with_a_cell_centre": int(np.sum(covered)),
            "energy_inside_tiny / mean": analysis.mean_inside_boxes(energy, tiny, stride)
            / max(float(energy.mean()), 1e-12),
        }
    )
pd.DataFrame(rows)

# %%
fig, axes = plt.subplots(1, 2, figsize=(15, 5))
for ax, level in zip(axes, ("p2", "p3"), strict=True):
    heat = analysis.feature_heatmap(taps[f"{level}.out"], reduce="abs_mean")
    ax.imshow(heat, cmap="magma", extent=extent)
    ax.set_title(
        f"{level.upper()} neck output: mean |activation| (stride {4 if level == 'p2' else 8})"
    )
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
fig.tight_layout()

# %% [markdown]
# ## Exercises
#
# **E1.** Use `compare_upsamplers(model, x, level="p2")` and compare the high-frequency ratios at
# P2 with those at P3. Is the ordering nearest > bilinear the same?
#
# <details><summary>Hint</summary>Reuse `analysis.feature_heatmap` and
# `analysis.high_frequency_ratio`; the solution cell below is collapsed.</details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution E1
maps_p2 = analysis.compare_upsamplers(model, x, level="p2")
ratios = {
    name: analysis.high_frequency_ratio(analysis.feature_heatmap(maps_p2[name], reduce="abs_mean"))
    for name in ("nearest", "bilinear")
}
print(ratios)
assert ratios["nearest"] > ratios["bilinear"]

# %% [markdown]
# **E2.** Build `ssabnet-n-nogate` and list its P2 taps. Which tap disappears, and what replaces
# the gate?
#
# <details><summary>Hint</summary>`fusion="concat"`: the two maps are concatenated and projected
# by a 1x1 convolution, so there is no explicit weight map to look at.</details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution E2
nogate = ssabnet.build_model("ssabnet-n-nogate", num_classes=10)
_, taps_nogate = analysis.capture_features(nogate, x)
print(sorted(set(taps) - set(taps_nogate)))

# %% [markdown]
# ## Summary
#
# * Nearest upsampling aliases (2 x 2 blocks, most high-frequency power); bilinear is smooth but
#   content-blind; CARAFE/FADE reassemble each output pixel with its own predicted kernel.
# * Flow alignment shifts the upsampled semantics onto the detail map (zero offsets before
#   training); the gate decides, per pixel, how much shallow detail enters the fused map.
# * Tiny objects can fall between the cell centres of a stride-8 map; the stride-4 P2 map
#   resolves them, which is why SSABNet predicts from P2.
#
# Next: `03_error_analysis_by_scale.py`.
