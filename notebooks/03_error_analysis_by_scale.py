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
# 3. split each detector's errors into TIDE's six types *per object size* and read what fixing
#    each type would gain (`error_taxonomy`), with counts at the F1-optimal confidence threshold;
# 4. look at the objects one model misses and the other finds, in a gallery
#    (`missed_by_a_found_by_b`);
# 5. (optional) send the same predictions to FiftyOne for interactive browsing.
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
USE_FIFTYONE = os.environ.get("SSABNET_NB_FIFTYONE", "0") == "1"  # section 6; off in CI

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
# `ssabnet.analysis.error_counts` counts TP / FN / FP per size bucket from them (here with every
# score; pass `threshold=` for a deployed detector).

# %%
from ssabnet.analysis import error_counts

recall = pd.DataFrame({name: error_counts(m, "size_bucket").recall for name, m in matches.items()})
recall["n_objects"] = error_counts(matches[RUN_NAMES[0]], "size_bucket")[["tp", "fn"]].sum(axis=1)
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
# ## 4. Why are objects missed? TIDE error types per object size
#
# TIDE (Bolya et al., ECCV 2020) gives every false positive one type -- `cls` (right place,
# wrong class), `loc` (right class, IoU 0.1-0.5), `both`, `dupe` (a second detection of a found
# object), `bkg` (nothing there) -- and calls an object nobody came near a `miss`. Its ΔAP is the
# AP50 gained by fixing one type alone (an *oracle*: it uses all scores). `error_taxonomy` does
# this per size bucket, charging each error to the object it is about: for tiny objects, is the
# problem boxes that are slightly off (`loc`) or objects nobody saw (`miss`)? The same table is
# `ssabnet errors --run DIR` on the command line and the app's *Error analysis* page.

# %%
from ssabnet.analysis import ERROR_TYPES, error_counts_at, error_taxonomy, f1_optimal_threshold

reports = {name: error_taxonomy(m) for name, m in matches.items()}
thresholds = {name: f1_optimal_threshold(m) for name, m in matches.items()}
for name, choice in thresholds.items():
    print(
        f"{name}: AP50 {100 * reports[name].ap['all']:.1f} %; F1-optimal confidence "
        f"{choice.score:.3f} (F1 {100 * choice.f1:.1f} %)"
    )
delta = pd.concat(
    {
        name: 100 * pd.DataFrame(r.delta_ap, dtype=float).T[list(ERROR_TYPES)]
        for name, r in reports.items()
    },
    names=["run", "bucket"],
)
delta.round(2)  # ΔAP50 in AP points (%)

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
for ax, name in zip(axes, RUN_NAMES, strict=True):
    frame = delta.loc[name].drop(index="all")
    frame.plot.bar(ax=ax, width=0.8, legend=name == RUN_NAMES[0])
    ax.set_title(f"{name}: ΔAP50 from fixing each error type")
    ax.set_xlabel("object size bucket")
    ax.set_ylabel("ΔAP50 (AP points, %)")
fig.tight_layout()

# %% [markdown]
# Counts need a confidence threshold (below 0.01 almost everything is a false positive). At each
# model's F1-optimal threshold, the errors per size bucket (`fn` = objects not found; `miss` =
# those with no detection near them at all):

# %%
from ssabnet.analysis import label_errors

counts = pd.concat(
    {
        name: error_counts_at(label_errors(m), thresholds[name].score)[
            ["tp", "fp", "fn", *ERROR_TYPES]
        ]
        for name, m in matches.items()
    },
    names=["run", "bucket"],
)
counts

# %% [markdown]
# ## 5. Missed by one model, found by the other
#
# `missed_by_a_found_by_b` lists the objects model A does not find at its threshold that model B
# finds at its own, smallest first, with B's detection and A's nearest detection (of any class
# and score). Crops with context: green the object, red B's detection, orange A's nearest box.

# %%
from PIL import Image

from ssabnet import visualize
from ssabnet.analysis import missed_by_a_found_by_b

paths = {r.image_id: r.image_path for r in records}


def show_cases(a: str, b: str, limit: int = 6) -> None:
    rows = missed_by_a_found_by_b(
        matches[a], matches[b], thresholds[a].score, thresholds[b].score, limit=limit
    )
    print(f"missed by {a}, found by {b}: {len(rows)} shown (smallest first)")
    if rows.empty:
        return
    fig, axes = plt.subplots(1, limit, figsize=(15, 3), squeeze=False)
    for ax, row in zip(axes.ravel(), rows.itertuples(), strict=False):
        image = np.asarray(Image.open(paths[row.image_id]).convert("RGB"))
        crop, box = visualize.crop_with_context(image, [row.x1, row.y1, row.x2, row.y2])
        dx, dy = row.x1 - box[0], row.y1 - box[1]
        for prefix, color in (("a_", (255, 170, 0)), ("b_", (255, 0, 0))):
            other = [getattr(row, f"{prefix}{c}") for c in ("x1", "y1", "x2", "y2")]
            if not np.isnan(other).any():
                moved = np.array(other) - [dx, dy, dx, dy]
                crop = visualize.draw_boxes(crop, moved[None], color=color)
        ax.imshow(visualize.draw_boxes(crop, box[None], color=(0, 220, 0)))
        ax.set_title(f"{row.class_name}, {row.size:.1f} px\n{b}: {row.b_score:.2f}", fontsize=8)
        ax.set_xlabel("x (crop px)")
        ax.set_ylabel("y (crop px)")
    for ax in axes.ravel()[len(rows) :]:
        ax.axis("off")
    fig.suptitle(f"missed by {a}, found by {b} (IoU 0.5)")
    fig.tight_layout()


show_cases("ssabnet-n", "baseline-n")
show_cases("baseline-n", "ssabnet-n")

# %% [markdown]
# ## 6. Optional: browse the same results in FiftyOne
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
# **E2.** Among each model's false positives *above its F1-optimal threshold*, which TIDE type
# dominates for tiny objects? What would you change first: the box loss or the classifier?
#
# <details><summary>Hint</summary>`label_errors(m).dets` has `error_type` and `error_bucket`;
# keep `score >= thresholds[name].score` and cross-tabulate.</details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution E2
kept_types = {}
for name, m in matches.items():
    fp = label_errors(m).dets
    fp = fp[(fp.score >= thresholds[name].score) & (fp.status == "fp")]
    kept_types[name] = pd.crosstab(fp.error_bucket, fp.error_type)
pd.concat(kept_types, names=["run", "bucket"])

# %% [markdown]
# ## Summary
#
# * One `Evaluator` gives COCO metrics with AI-TOD tiny buckets and per-object matching tables;
#   per-scale AP and recall show *where* a detector wins or loses.
# * Differences on few images need a paired bootstrap over images before they mean anything.
# * TIDE's error types per size bucket say *why* AP is lost: mislocalised tiny boxes (`loc`)
#   are a box-loss problem, unseen tiny objects (`miss`) a feature/resolution problem. ΔAP uses
#   all scores; counts need a confidence threshold (F1-optimal by default).
# * A "missed by A, found by B" gallery sorted by size turns numbers into concrete failure modes
#   (blur, occlusion, objects below the stride).
#
# Next: `04_train_on_your_data.py`.
