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
# # 04 · Train on your own data: from a VisDrone-format folder to metrics
#
# **Learning goals.** After this notebook you can
#
# 1. lay out a dataset in the VisDrone format and load it with `ssabnet.load_dataset`;
# 2. configure a training run with a `Config` and dotted overrides, train it with `ssabnet.fit`
#    and read the run folder;
# 3. predict with `ssabnet.predict` and score with `ssabnet.Evaluator`;
# 4. point the data catalog at a full VisDrone or UAVDT download.
#
# We generate a tiny VisDrone-format folder with `ssabnet data synth` so the notebook runs
# anywhere in about a minute; replace the folder by yours to train on real data.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
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
# ## 1. A VisDrone-format folder
#
# VisDrone DET layout: `images/<name>.jpg` and `annotations/<name>.txt`, one object per line:
# `left,top,width,height,score,category,truncation,occlusion` (pixels; category 1..10, 0 =
# ignored region, 11 = others; score 0 = ignored object). The CLI generates such a folder:

# %%
import subprocess
import sys

work = Path("nb04_work")
for split, num, seed in (("train", 24, 0), ("val", 8, 1)):
    if not (work / split / "images").is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ssabnet",
                "data",
                "synth",
                "--out",
                str(work / split),
                "--num",
                str(num),
                "--seed",
                str(seed),
                "--size",
                "256",
                "192",
            ],
            check=True,
        )
print(sorted(p.name for p in (work / "train").iterdir()))
first_annotation = sorted((work / "train" / "annotations").glob("*.txt"))[0]
print(first_annotation.name)
print("\n".join(first_annotation.read_text().splitlines()[:5]))

# %%

from ssabnet import analysis

train = ssabnet.load_dataset(work / "train")
val = ssabnet.load_dataset(work / "val")
print(
    train.info.name,
    train.info.format,
    len(train.records),
    "images,",
    sum(int(r.evaluated.sum()) for r in train.records),
    "evaluated objects",
)
print("classes:", train.info.classes)
record = train.records[0]
image = analysis.read_image_rgb(record.image_path)
fig, ax = plt.subplots(figsize=(7, 5))
ax.imshow(analysis.draw_boxes(image, record.boxes[record.evaluated], color=(255, 0, 0)))
ax.set_title(f"{record.image_id}: ground truth (red)")
ax.set_xlabel("x (px)")
ax.set_ylabel("y (px)")

# %% [markdown]
# ## 2. Configure and train
#
# A `Config` is a tree of frozen dataclasses whose defaults are the SSABNet recipe. An experiment
# lists only what changes, as a YAML file and/or dotted overrides (the same strings the CLI takes:
# `ssabnet train model.name=baseline-n train.epochs=6 ...`). Unknown keys and wrong types are
# errors. The budget here is tiny (5 epochs of 24 images at 256 px), so expect a small AP.

# %%
run_dir = work / "run"
cfg = ssabnet.load_config(
    None,
    [
        f"data.train={work / 'train'}",
        f"data.val={work / 'val'}",
        "model.name=baseline-n",  # the loss is the default recipe (CIoU, docs/results.md)
        "train.epochs=5",
        "train.batch=8",
        "train.imgsz=256",
        "train.workers=0",
        "train.mosaic=0.0",
        "train.close_mosaic=0",
        "train.warmup_epochs=1.0",
        "train.ema=false",
        "train.val_interval=5",
        f"train.out={run_dir}",
    ],
)
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

# %% [markdown]
# ## 3. Predict and evaluate
#
# `load_checkpoint` restores model, config and class names; `predict` accepts a file, a folder, a
# glob or a list of paths and returns boxes in original image pixels; `Evaluator` scores them.

# %%
loaded = ssabnet.load_checkpoint(run_dir / "weights" / "best.pt")
predictions = ssabnet.predict(
    loaded,
    [r.image_path for r in val.records],
    image_ids=[r.image_id for r in val.records],
    imgsz=256,
    conf=0.001,
)
evaluator = ssabnet.Evaluator(val.info, val.records)
evaluator.process(predictions)
val_metrics = evaluator.evaluate()
pd.Series({k: val_metrics[k] for k in ("AP", "AP50", "AP75", "AP_vt", "AP_t", "APs", "AR100")})

# %%
record = val.records[0]
det = predictions[record.image_id]
keep = det["scores"] >= 0.25
image = analysis.read_image_rgb(record.image_path)
shown = analysis.draw_boxes(image, record.boxes[record.evaluated], color=(255, 0, 0))
shown = analysis.draw_boxes(shown, det["boxes"][keep], color=(0, 255, 255))
fig, ax = plt.subplots(figsize=(7, 5))
ax.imshow(shown)
ax.set_title(f"{record.image_id}: ground truth (red), detections with score >= 0.25 (cyan)")
ax.set_xlabel("x (px)")
ax.set_ylabel("y (px)")

# %% [markdown]
# ## 4. Another detector's predictions as a run
#
# Everything SSABNet computes from a run (per-scale AP, matching tables, bootstrap comparison,
# the app, FiftyOne) also works for **any** detector's predictions: a COCO results file, an
# Ultralytics `predictions.json` or a folder of official VisDrone-DET result txts. The reader
# says what it decided (format, how image and class ids were read); `import_predictions`
# writes an *imported* run folder (`run.json` card, `predictions.json`, `val/best/`), what
# `ssabnet val --predictions P --data D --run DIR` does. Here the predictions above, written in
# the official VisDrone-DET txt format, stand in for another detector's output.

# %%
from ssabnet.data.visdrone import write_visdrone_results

txt_dir = work / "other-detector-txt"
write_visdrone_results(predictions, txt_dir, val.info.native_ids, [r.image_id for r in val.records])
imported = ssabnet.import_predictions(
    txt_dir,
    val,
    work / "runs" / "other-detector",
    dataset_spec=str(work / "val"),
    name="other-detector",
    overwrite=True,
)
print("\n".join(imported.loaded.decisions))
other = ssabnet.load_run(work / "runs" / "other-detector")
trained = ssabnet.load_run(run_dir)
print(other.kind, other.card["format"], "| weights:", other.weights)
pd.DataFrame(
    {
        "imported txt": {k: other.metrics[k] for k in ("AP", "AP50", "AP_t")},
        "in memory": {k: val_metrics[k] for k in ("AP", "AP50", "AP_t")},
    }
)

# %% [markdown]
# The txt format rounds boxes to 0.01 px and scores to 1e-4, so the two columns agree to that
# grain. The imported run compares with the trained one like any two runs (paired bootstrap over
# images of the AP50 difference; `trained` holds the run's own validation, `other` the import):

# %%
ssabnet.evaluation.bootstrap_ap_difference(
    trained.matches, other.matches, n_boot=200, seed=0, by="bucket"
)[["n_gt", "ap_a", "ap_b", "delta", "ci_low", "ci_high"]]

# %% [markdown]
# ## 5. Pointing the catalog at a full VisDrone or UAVDT download
#
# Datasets are named by **catalog cards**, small YAML files in `data_catalog/` (shipped:
# `visdrone-det-{train,val,test-dev}`, `uavdt-{train,test}`, ...). A card's `root` may use
# `${SSABNET_DATA:-data}`; relative roots are resolved against the project folder. So after
# extracting `VisDrone2019-DET-train.zip` to `/datasets/VisDrone2019-DET-train`:
#
# ```bash
# export SSABNET_DATA=/datasets
# ssabnet data stats visdrone-det-train          # checks the folder early, with a clear message
# ssabnet train data.train=visdrone-det-train data.val=visdrone-det-val model.name=ssabnet-s
# ```
#
# Your own data gets its own card; cards are also searched in the folders of
# `$SSABNET_CATALOG`. Here we write one for the folder above and load it by name:

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

# %% [markdown]
# ## Exercises
#
# **E1.** Train the same budget with `model.name=ssabnet-n` (the SSA neck, same default recipe)
# in a new run folder, and compare `AP_t` and `AP50` with the baseline run. (For the SABL box
# loss add `loss.box=sabl`; docs/results.md says what it does and does not do here.)
#
# <details><summary>Hint</summary>Change `model.name` and `train.out`.
# The solution cell is collapsed; it takes about a minute.</details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution E1 (about a minute on 2 CPU cores)
ssabnet_cfg = ssabnet.config.merge(
    cfg,
    {
        "model": {"name": "ssabnet-n"},
        "train": {"out": str(work / "run-ssabnet")},
    },
)
if not (work / "run-ssabnet" / "weights" / "best.pt").is_file():
    ssabnet.fit(ssabnet_cfg, progress=False)
pd.DataFrame(
    {
        "baseline-n": pd.read_csv(run_dir / "results.csv").iloc[-1],
        "ssabnet-n": pd.read_csv(work / "run-ssabnet" / "results.csv").iloc[-1],
    }
).loc[["AP50", "AP_t"]]

# %% [markdown]
# **E2.** A typo in an override is an error, not a silent default. Try `train.epoch=3`.
#
# <details><summary>Hint</summary>`ssabnet.config.ConfigError` names the unknown key.</details>

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution E2
try:
    ssabnet.load_config(None, ["train.epoch=3"])
except ValueError as error:
    print(type(error).__name__, ":", error)

# %% [markdown]
# ## Summary
#
# * A VisDrone-format folder (or a COCO / UAVDT one) loads with `ssabnet.load_dataset(folder)`;
#   a catalog card gives it a name and a documented location.
# * `Config` + dotted overrides describe a run; `ssabnet.fit` writes a self-contained run folder
#   (`config.yaml`, `results.csv`, `weights/`, `val/`).
# * `load_checkpoint` -> `predict` -> `Evaluator` is the same path the CLI, the app and the
#   notebooks use.
# * Another detector's predictions become an imported run (`ssabnet.import_predictions`, or
#   `ssabnet val --predictions P --run DIR`) that loads and compares like a trained one.
