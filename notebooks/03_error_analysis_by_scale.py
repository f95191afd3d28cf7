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
# # 03 · Error analysis by object size: baseline vs SSABNet
#
# **Learning goals.** After this notebook you can
#
# 1. evaluate two checkpoints on the same images with `ssabnet.predict` and `ssabnet.Evaluator`
#    and read the per-scale metrics (`AP_vt`, `AP_t`, `APs`, `APm`, `APl`);
# 2. decide whether a difference between two detectors is real with a paired bootstrap over
#    images (`bootstrap_ap_difference`);
# 3. look at the missed objects (false negatives) by size in a gallery;
# 4. (optional) send the same predictions to FiftyOne for interactive browsing.
#
# **Data.** If the demo has been run (`$SSABNET_DEMO_DIR`, default `runs/demo`, holding
# `baseline-n/` and `ssabnet-n/`), we use its checkpoints. Otherwise the notebook trains two tiny
# models itself on synthetic scenes (about 2 minutes on 2 CPU cores). Tiny budgets give tiny APs:
# the *method* is the lesson, not the numbers.

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
            recipe = (
                {"box": "ciou", "balance": False, "assigner_metric": "iou"}
                if name.startswith("baseline")
                else {}
            )  # the baseline trains with CIoU
            cfg = merge(
                Config(),
                {
                    "data": {"train": str(data_root / "train"), "val": str(data_root / "val")},
                    "model": {"name": name},
                    "loss": recipe,
                    "train": {
                        "epochs": 6,
                        "batch": 8,
                        "imgsz": 256,
                        "workers": 0,
                        "out": str(run_dir),
                        "warmup_epochs": 1.0,
                        "mosaic": 0.0,
                        "close_mosaic": 0,
                        "ema": False,
                        "val_interval": 6,
                        "seed": 0,
                    },
                },
            )
            ssabnet.fit(cfg, progress=False)
        run_dirs[name] = run_dir
run_dirs

# %% [markdown]
# ## 1. Predict and evaluate both checkpoints on the same images
#
# `load_checkpoint` restores the model, its training config and class names. We read the
# validation split named in the run's config through the catalog/loader, predict in original
# image pixels and feed the predictions to one `Evaluator` per model.

# %%
checkpoints = {n: ssabnet.load_checkpoint(d / "weights" / "best.pt") for n, d in run_dirs.items()}
first = checkpoints[RUN_NAMES[0]]
val_data = ssabnet.load_dataset(first.config["data"]["val"])
records = sorted(val_data.records, key=lambda r: r.image_id)[:MAX_IMAGES]
imgsz = int(first.config["train"]["imgsz"])
print(
    f"{val_data.info.name}: evaluating {len(records)} of {len(val_data.records)} images "
    f"at imgsz {imgsz}"
)

metrics, matches, predictions = {}, {}, {}
for name, loaded in checkpoints.items():
    predictions[name] = ssabnet.predict(
        loaded,
        [r.image_path for r in records],
        image_ids=[r.image_id for r in records],
        imgsz=imgsz,
        conf=0.001,
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
bucket_names = ["very tiny\n<8 px", "tiny\n8-16", "small\n16-32", "medium\n32-96"]
bucket_names.append("large\n>=96")
ax.set_xticks(np.arange(len(buckets)), bucket_names)
ax.set_xlabel("object size bucket (sqrt(w*h), original px)")
ax.set_ylabel("AP@[.5:.95]")
ax.set_title("Per-scale AP on the validation images (missing bar = no objects of that size)")
ax.legend()

# %% [markdown]
# ## 2. Who finds which objects: recall by size at IoU 0.5
#
# `evaluator.matches()` returns two tables: one row per detection (`dets`) and one per ground-truth
# object (`gts`, with `size`, `size_bucket` and `status` = `tp` / `fn` / `ignore` ...).

# %%
gts = {name: m.gts[m.gts.status.isin(["tp", "fn"])] for name, m in matches.items()}
recall = pd.DataFrame(
    {name: g.groupby("size_bucket", observed=True).matched.mean() for name, g in gts.items()}
)
recall["n_objects"] = gts[RUN_NAMES[0]].groupby("size_bucket", observed=True).size()
recall

# %% [markdown]
# ## 3. Is the difference real? Paired bootstrap over images
#
# AP differences on a few images are noisy. `bootstrap_ap_difference` resamples *images* (with
# replacement, the same draw for both models) and recomputes AP50 per size bucket, giving a 95%
# interval for `AP50(ssabnet) - AP50(baseline)`. An interval that contains 0 means: no evidence of
# a difference on these data.

# %%
from ssabnet.evaluation import bootstrap_ap_difference

boot = bootstrap_ap_difference(matches["baseline-n"], matches["ssabnet-n"], n_boot=500, seed=0)
boot

# %%
shown = boot.dropna(subset=["delta"])
fig, ax = plt.subplots(figsize=(8, 4))
ax.errorbar(
    shown.index.astype(str),
    shown.delta,
    yerr=[shown.delta - shown.ci_low, shown.ci_high - shown.delta],
    fmt="o",
    capsize=4,
)
ax.axhline(0, color="grey", ls="--")
ax.set_xlabel("size bucket")
ax.set_ylabel("AP50(ssabnet-n) - AP50(baseline-n)")
ax.set_title("Paired bootstrap (500 resamples of images): difference with 95% CI")

# %% [markdown]
# ## 4. False-negative gallery
#
# The objects `ssabnet-n` missed, smallest first, cropped with context (3x the object, at least
# 32 px) and enlarged. The red box is the ground truth; the title says whether the baseline found
# it.

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
    for ax, row in zip(axes.ravel(), missed.itertuples(), strict=False):
        if row.image_id not in images:
            images[row.image_id] = np.asarray(Image.open(paths[row.image_id]).convert("RGB"))
        crop, box = visualize.crop_with_context(
            images[row.image_id], [row.x1, row.y1, row.x2, row.y2]
        )
        ax.imshow(visualize.draw_boxes(crop, box[None], color=(255, 0, 0)))
        found = "found" if base_found.get((row.image_id, row.gt_index), False) else "missed"
        ax.set_title(f"{row.class_name}, {row.size:.1f} px\nbaseline: {found}", fontsize=8)
        ax.set_xlabel("x (crop px)")
        ax.set_ylabel("y (crop px)")
    for ax in axes.ravel()[len(missed) :]:
        ax.axis("off")
    fig.suptitle("ssabnet-n false negatives (IoU 0.5), smallest first")
    fig.tight_layout()

# %% [markdown]
# ## 5. Optional: browse the same results in FiftyOne
#
# Set `SSABNET_NB_FIFTYONE=1` (and install the `fiftyone` extra) to index the validation images
# with both models' predictions; then open the App with `ssabnet fiftyone launch`. Off by default
# (and in CI): it needs a local database and a browser.

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

# %% [markdown]
# ## Exercises
#
# **E1.** Repeat the bootstrap with `by="class"`. Which classes have enough objects for a narrow
# interval?
#
# <details><summary>Hint</summary>Look at the `n_gt` column next to the interval width
# `ci_high - ci_low`. The solution cell below is collapsed.</details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution E1
by_class = bootstrap_ap_difference(
    matches["baseline-n"], matches["ssabnet-n"], n_boot=300, by="class"
)
by_class.assign(width=by_class.ci_high - by_class.ci_low).sort_values("n_gt", ascending=False)

# %% [markdown]
# **E2.** Using the `dets` table, what fraction of each model's false positives are tiny
# (`size_bucket` in very_tiny/tiny)? What does that tell you about the confidence threshold you
# would pick for deployment?
#
# <details><summary>Hint</summary>Filter `status == "fp"` and use
# `value_counts(normalize=True)`.</details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution E2
pd.DataFrame(
    {
        name: m.dets[m.dets.status == "fp"].size_bucket.value_counts(normalize=True)
        for name, m in matches.items()
    }
)

# %% [markdown]
# ## Summary
#
# * One `Evaluator` gives COCO metrics with AI-TOD tiny buckets and per-object matching tables;
#   per-scale AP and recall show *where* a detector wins or loses.
# * Differences on few images need a paired bootstrap over images before they mean anything.
# * A false-negative gallery sorted by size turns numbers into concrete failure modes (blur,
#   occlusion, objects below the stride).
#
# Next: `04_train_on_your_data.py`.
