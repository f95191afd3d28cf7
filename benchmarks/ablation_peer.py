"""Peer runs of an ablation: ultralytics YOLOv8 trained from scratch, scored by ssabnet's evaluator.

Run in the benchmark environment (ultralytics is never a dependency of ssabnet) after
``ssabnet ablate`` has written ``plan.json``::

    bash benchmarks/setup_peer_env.sh
    .benchenv/bin/python benchmarks/ablation_peer.py --plan runs/ablation/plan.json \\
        --models yolov8n,yolov8n-p2 [--seeds 0,1,2] [--device cpu]

For every model x seed the peer is built from its yaml (random init, no weights are downloaded),
trained on ``plan["train"]`` with the plan's recipe (``plan["config"]["train"]`` mapped onto
ultralytics' arguments, same epochs or time budget), and its final weights (ultralytics'
``last.pt``, the EMA) predict ``plan["val"]``. Those predictions are scored by
:func:`ssabnet.evaluation.evaluate_predictions`, so peers and our variants share one metric
implementation. Each run goes to ``<plan folder>/<model>/seed<k>/`` in the layout of
``ssabnet.ablation`` and so appears in ``ssabnet ablate --report-only``::

    ultralytics/            ultralytics' run folder (args.yaml, results.csv, weights/last.pt)
    predictions.json        COCO results of the final weights on plan["val"]
    val/last/metrics.json   + matches_dets.parquet, matches_gts.parquet
    peer.json               ultralytics arguments, versions, timings, recipe differences
    ablation_run.json       written last: its presence marks a finished run (skipped on re-run)

Nothing is downloaded: ``YOLO_OFFLINE=1`` is set before ultralytics is imported, and its
plot-font and AMP-check downloads are patched out around training (:func:`no_downloads`).

The YOLO-format copy of the data (images symlinked, labels from ``record.evaluated`` objects
only) is written once to ``<plan folder>/_peer_data/`` and reused while its manifest matches.

Post-processing (``--postprocess``): ``shared`` (default) letterboxes the val images and runs NMS
with ssabnet's own code (``DetectionSamples``, ``select_detections``), so only the network and
its training differ from our variants; ``ultralytics`` uses the peer's own predictor (its
rectangular letterbox and single-label NMS) as a cross-check.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

# Before ultralytics is imported: it sets its ONLINE flag (analytics, update checks) at import.
os.environ.setdefault("YOLO_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from ssabnet.config import Config, TrainConfig, merge  # noqa: E402
from ssabnet.data import DetectionDataset, load_dataset  # noqa: E402
from ssabnet.data.record import ImageRecord  # noqa: E402
from ssabnet.evaluation import evaluate_predictions, write_coco_results  # noqa: E402
from ssabnet.ops.boxes import boxes_cxcywh_to_xyxy, boxes_xyxy_to_cxcywh  # noqa: E402

RUN_FILE = "ablation_run.json"  # = ssabnet.ablation.RUN_FILE
PLAN_FILE = "plan.json"
PEER_DATA = "_peer_data"
MANIFEST_VERSION = 1
OPTIMIZERS = {"sgd": "SGD", "adamw": "AdamW"}  # ssabnet name -> ultralytics name
# What ultralytics fixes and ssabnet configures (ultralytics 8.4: ModelEMA, optimizer_step,
# RandomPerspective.box_candidates, TaskAlignedAssigner in v8DetectionLoss).
PEER_EMA = {"decay": 0.9999, "tau": 2000.0}
PEER_GRAD_CLIP = 10.0
PEER_MIN_BOX_PX = 2.0
PEER_ASSIGNER = {"assigner_topk": 10, "assigner_alpha": 0.5, "assigner_beta": 6.0}
PEER_LOSS = (
    "ultralytics v8DetectionLoss: CIoU + DFL + BCE, task-aligned assigner (CIoU clamped at 0 as "
    "the overlap for ranking, soft targets and conflicts; topk 10, alpha 0.5, beta 6; for "
    "candidate selection each ground-truth side shorter than the model's second stride is set to "
    "that stride about the box centre), terms divided by the target-score sum, weighted by the "
    "plan's box/cls/dfl gains, summed and multiplied by the batch size before backward"
)


# ----------------------------------------------------------------------------- plan
def load_plan(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SystemExit(f"plan not found: {path} (write it with `ssabnet ablate ... --out DIR`)")
    plan = json.loads(path.read_text())
    missing = [k for k in ("train", "val", "seeds", "config") if k not in plan]
    if missing:
        raise SystemExit(f"{path}: not an ablation plan (missing {', '.join(missing)})")
    return plan


def plan_epochs(plan: dict[str, Any]) -> int:
    """The epochs every variant trains (``peer_epochs``; the largest when variants differ)."""
    if "peer_epochs" in plan:
        return int(plan["peer_epochs"])
    epochs = plan["epochs"]
    return int(max(epochs.values()) if isinstance(epochs, dict) else epochs)


def plan_hours(plan: dict[str, Any]) -> float | None:
    """Wall-clock budget per run (hours) when the plan gives each variant the same time."""
    budget = plan.get("budget", {})
    if budget.get("mode") == "minutes" and budget.get("equal") == "time":
        return float(budget["minutes"]) / 60
    return None


def ultralytics_device(device: str) -> str:
    """ssabnet's ``cpu`` / ``cuda`` / ``cuda:i`` -> ultralytics' ``cpu`` / ``0`` / ``i``."""
    if device == "cpu":
        return "cpu"
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise SystemExit(f"device {device!r} requested but CUDA is not available; use cpu")
        return device.partition(":")[2] or "0"
    raise SystemExit(f"unknown device {device!r} (expected cpu, cuda or cuda:<index>)")


# ----------------------------------------------------------------------------- data
def yolo_labels(record: ImageRecord) -> tuple[str, int]:
    """YOLO label text of a record (``class cx cy w h``, normalised) and the objects dropped.

    Only ``record.evaluated`` objects become labels: ignored objects, class ``-1`` and ignore
    regions are left out (trained as background, as ultralytics' own VisDrone conversion does).
    Boxes are clipped to the image (readers allow 1 px outside; ultralytics rejects > 1).
    """
    keep = record.evaluated
    size = np.array([record.width, record.height] * 2, np.float64)
    boxes = np.clip(record.boxes[keep].astype(np.float64), 0, size)
    labels = record.labels[keep]
    cxcywh = boxes_xyxy_to_cxcywh(boxes)
    valid = (cxcywh[:, 2:] > 0).all(1)
    labels = labels[valid]
    norm = cxcywh[valid] / size
    lines = [
        f"{label} " + " ".join(f"{v:.6f}" for v in row)
        for label, row in zip(labels, norm, strict=True)
    ]
    return "".join(line + "\n" for line in lines), int(record.num_objects - len(lines))


def export_split(records: list[ImageRecord]) -> tuple[list[tuple[str, str, str]], dict]:
    """``[(file name, image target, label text)]`` and counts of one split."""
    entries, objects, dropped = [], 0, 0
    for index, record in enumerate(records):
        # index prefix: unique even where image ids repeat after sanitising (UAVDT "seq/img")
        safe_id = re.sub(r"[^\w.-]", "_", record.image_id)
        name = f"{index:06d}_{safe_id}{record.image_path.suffix}"
        text, n_dropped = yolo_labels(record)
        entries.append((name, str(record.image_path.resolve()), text))
        objects += text.count("\n")
        dropped += n_dropped
    counts = {
        "images": len(records),
        "labels": objects,
        "dropped_objects": dropped,
        "ignore_regions": int(sum(len(r.ignore_regions) for r in records)),
    }
    return entries, counts


def prepare_yolo_data(
    root: Path, train: DetectionDataset, val: DetectionDataset, specs: dict[str, str]
) -> Path:
    """Write (or reuse) the YOLO-format dataset under ``root``; returns its ``data.yaml``."""
    splits = {"train": export_split(train.records), "val": export_split(val.records)}
    digest = hashlib.sha256(json.dumps({k: v[0] for k, v in splits.items()}).encode()).hexdigest()
    manifest = {
        "version": MANIFEST_VERSION,
        **specs,
        "classes": list(train.info.classes),
        "splits": {k: v[1] for k, v in splits.items()},
        "sha256": digest,
    }
    manifest_path, data_yaml = root / "manifest.json", root / "data.yaml"
    reusable = manifest_path.is_file() and data_yaml.is_file()
    if reusable and json.loads(manifest_path.read_text()) == manifest:
        print(f"peer data: reusing {root}")
        return data_yaml
    manifest_path.unlink(missing_ok=True)  # a half-written folder never looks complete
    for sub in ("images", "labels"):
        shutil.rmtree(root / sub, ignore_errors=True)  # stale files and ultralytics' *.cache
    for split, (entries, _) in splits.items():
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for name, target, text in entries:
            (root / "images" / split / name).symlink_to(target)
            (root / "labels" / split / name).with_suffix(".txt").write_text(text)
    names = dict(enumerate(train.info.classes))
    data = {
        "path": str(root.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": names,
    }
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"peer data: wrote {root} ({manifest['splits']})")
    return data_yaml


# ----------------------------------------------------------------------------- recipe
def ultralytics_train_args(
    cfg: Config, data_yaml: Path, run_dir: Path, seed: int, device: str, budget: dict[str, Any]
) -> dict[str, Any]:
    """Our recipe as ``YOLO.train`` arguments (what cannot be expressed: :func:`differences`)."""
    tc = cfg.train
    if tc.optimizer not in OPTIMIZERS:
        raise SystemExit(f"train.optimizer {tc.optimizer!r} has no ultralytics equivalent")
    if tc.schedule not in ("cosine", "linear"):
        raise SystemExit(f"train.schedule {tc.schedule!r} has no ultralytics equivalent")
    cuda = device != "cpu"
    hsv_h, hsv_s, hsv_v = tc.hsv
    args = {
        "data": str(data_yaml),
        "imgsz": tc.imgsz,
        "batch": tc.batch,
        "device": device,
        "workers": tc.workers,
        "seed": seed,
        "deterministic": tc.deterministic,
        "optimizer": OPTIMIZERS[tc.optimizer],
        "lr0": tc.lr,
        "momentum": tc.momentum,
        "weight_decay": tc.weight_decay,
        # nominal batch = batch: one optimizer step per batch and weight decay not rescaled
        "nbs": tc.batch,
        "warmup_epochs": tc.warmup_epochs,
        "cos_lr": tc.schedule == "cosine",
        "lrf": tc.final_lr_ratio,
        # ours warms every group up from ~0 at constant momentum
        "warmup_bias_lr": 0.0,
        "warmup_momentum": tc.momentum,
        "mosaic": tc.mosaic,
        "close_mosaic": tc.close_mosaic,
        "fliplr": tc.hflip,
        "flipud": tc.vflip,
        "scale": tc.scale,
        "translate": tc.translate,
        "hsv_h": hsv_h,
        "hsv_s": hsv_s,
        "hsv_v": hsv_v,
        # augmentations ours does not have, pinned off whatever ultralytics' defaults become
        "degrees": 0.0,
        "shear": 0.0,
        "perspective": 0.0,
        "mixup": 0.0,
        "cutmix": 0.0,
        "copy_paste": 0.0,
        "bgr": 0.0,
        "multi_scale": 0.0,
        "rect": False,
        "box": cfg.loss.box_weight,
        "cls": cfg.loss.cls_weight,
        "dfl": cfg.loss.dfl_weight,
        "amp": bool(tc.amp and cuda),
        "pretrained": False,
        "val": False,
        "plots": False,
        "save": True,
        "save_period": -1,
        "cache": False,
        "fraction": 1.0,
        "project": str(run_dir.resolve()),
        "name": "ultralytics",
        "exist_ok": True,
    }
    if budget.get("hours") is not None:
        args["time"] = budget["hours"]  # epochs below are the first guess; re-planned after one
    args["epochs"] = budget["epochs"]
    return args


def differences(
    cfg: Config,
    args: dict[str, Any],
    train: DetectionDataset,
    postprocess: str,
    strides: list[int],
) -> list[str]:
    """Where the peer's training or evaluation is not our recipe (recorded in peer.json).

    ``strides``: the peer's detection strides in pixels (e.g. ``[8, 16, 32]``).
    """
    tc, loss = cfg.train, cfg.loss
    epochs = args["epochs"]
    floor_px = strides[1] if len(strides) > 1 else strides[0]  # ultralytics' TAL stride_val
    diffs = []
    if not loss.assigner_widen_tiny:
        diffs.append(
            "assigner candidates: ultralytics 8.4 sets each ground-truth side shorter than "
            f"{floor_px} px (its second stride) to {floor_px} px about the box centre when "
            "choosing candidate anchors, so tiny objects get some; ssabnet takes anchors inside "
            "the box (loss.assigner_widen_tiny=false; "
            f"loss.assigner_center_radius={loss.assigner_center_radius:g} strides)"
        )
    if loss.assigner_metric != "ciou":
        diffs.append(
            "assigner overlap: ultralytics ranks candidates, scales soft targets and settles "
            "conflicts by CIoU clamped at 0; ssabnet by "
            f"loss.assigner_metric={loss.assigner_metric}"
        )
    if not tc.loss_times_batch:
        diffs.append(
            "loss scale: ultralytics backpropagates loss x batch size, so its grad-norm clip at "
            f"{PEER_GRAD_CLIP:g} bounds a batch-times-larger gradient; ssabnet backpropagates the "
            "unscaled loss (train.loss_times_batch=false)"
        )
    if tc.lr_step != "epoch":
        diffs.append(
            "lr schedule: ultralytics sets the lr once per epoch (cosine/linear over all epochs; "
            "the last epoch runs at lr * f(epochs - 1), above lr * final_lr_ratio) and its "
            "warm-up ramps from 0 to the scheduled lr; ssabnet steps per optimizer step and "
            "decays after warm-up (train.lr_step=step)"
        )
    diffs += [
        "seeding: ultralytics seeds its RNGs with seed + 1 and draws its own sample order and "
        "augmentations; the same seed does not reproduce ssabnet's draws",
        "augmentation code: ultralytics' mosaic/RandomPerspective/LetterBox, same probabilities "
        "and ranges; after the affine it drops boxes with a side of at most "
        f"{PEER_MIN_BOX_PX:g} px, keeping at most 10% of their area or with aspect > 100 "
        f"(ssabnet: sides under train.min_box_size={tc.min_box_size:g} px, or under "
        f"train.min_visible={tc.min_visible:g} of the area left visible)",
        "ignored objects and ignore regions: ultralytics trains them as background; ssabnet "
        "leaves negative anchors inside them out of the loss",
        "train_seconds: the peer's training loop only; ssabnet's (sum of results.csv epoch "
        "times) includes its one validation pass after the last epoch",
    ]
    if args.get("time") is not None:
        diffs.append(
            f"budget: ultralytics' time={args['time']:.4g} h re-plans the epochs after the first "
            "one from its measured epoch time (warm-up and lr schedule follow); ssabnet's "
            "variants got their epochs from a timed probe before training"
        )
    elif tc.warmup_epochs > max(epochs - 1, 0):
        # ultralytics 8.4.190 warms up for round(min(warmup_epochs, epochs - 1) x batches per
        # epoch) iterations (no 100-iteration floor; older releases had one)
        diffs.append(
            f"warm-up: ultralytics caps it at epochs - 1 = {max(epochs - 1, 0)} epochs "
            f"(train.warmup_epochs={tc.warmup_epochs:g})"
        )
    if len(train.records) > tc.batch and len(train.records) % tc.batch:
        diffs.append("last incomplete batch: ultralytics trains on it, ssabnet drops it")
    if not tc.ema or (tc.ema_decay, tc.ema_tau) != (PEER_EMA["decay"], PEER_EMA["tau"]):
        diffs.append(
            f"EMA: ultralytics always uses decay {PEER_EMA['decay']} and tau {PEER_EMA['tau']:g} "
            f"(train.ema={tc.ema}, ema_decay={tc.ema_decay}, ema_tau={tc.ema_tau:g})"
        )
    if tc.grad_clip != PEER_GRAD_CLIP:
        diffs.append(
            f"grad clip: ultralytics fixes max-norm {PEER_GRAD_CLIP:g} "
            f"(train.grad_clip={tc.grad_clip:g})"
        )
    assigner = {k: getattr(loss, k) for k in PEER_ASSIGNER}
    if assigner != PEER_ASSIGNER or loss.assigner_center_radius:
        diffs.append(
            f"assigner: ultralytics fixes {PEER_ASSIGNER} (plan loss: {assigner}, "
            f"center_radius {loss.assigner_center_radius:g})"
        )
    if args["device"] == "cpu" and tc.workers > 0:
        diffs.append(
            f"workers: ultralytics loads data in the main process on CPU "
            f"(train.workers={tc.workers})"
        )
    if tc.save_every_steps:
        diffs.append("train.save_every_steps: ultralytics saves per epoch only")
    if postprocess == "ultralytics":
        diffs.append(
            "prediction: ultralytics' predictor (letterbox padded to a stride multiple, not "
            "square; one class per box in NMS); ssabnet keeps every (anchor, class) pair"
        )
    return diffs


@contextlib.contextmanager
def no_downloads(amp: bool):
    """Keep ultralytics offline beyond ``YOLO_OFFLINE`` (which only stops events/update checks).

    Its dataset check looks for the plot font and downloads it when missing (``plots=False``
    never draws), and its AMP check downloads yolo26n.pt to compare fp32 and fp16 outputs.
    ssabnet trains with fp16 autocast on CUDA without such a check, so AMP stays on as asked.
    """
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch("ultralytics.data.utils.check_font", return_value=None))
        if amp:
            stack.enter_context(
                mock.patch("ultralytics.engine.trainer.check_amp", return_value=True)
            )
        yield


def peer_trainer_class():
    """ultralytics' ``DetectionTrainer`` without its validation passes.

    With ``val=False`` it still validates after the last epoch and validates ``best.pt`` at the
    end; the run is scored by ssabnet's evaluator instead, so those passes are skipped (and do
    not count in the training time). No fitness means no early stopping either.
    """
    from ultralytics.models.yolo.detect import DetectionTrainer

    class PeerTrainer(DetectionTrainer):
        def validate(self):
            return self.metrics, None

        def final_eval(self):
            pass

    return PeerTrainer


# ----------------------------------------------------------------------------- predict
@torch.no_grad()
def predict_shared(
    network: torch.nn.Module, records: list[ImageRecord], tc: TrainConfig, device: torch.device
) -> dict[str, dict[str, np.ndarray]]:
    """The peer network inside ssabnet's evaluation path: our letterbox, NMS and box mapping.

    ultralytics' Detect head returns ``Tensor[B, 4 + C, A]`` in eval mode: ``cx, cy, w, h`` in
    input pixels, then class probabilities (sigmoid applied).
    """
    from torch.utils.data import DataLoader

    from ssabnet.data.loader import DetectionSamples, collate_detection
    from ssabnet.postprocess import boxes_input_to_original, select_detections

    loader = DataLoader(
        DetectionSamples(records, tc.imgsz, None),
        batch_size=tc.batch,
        num_workers=tc.workers,
        collate_fn=collate_detection,
    )
    predictions = {}
    for images, _targets, metas in loader:
        output = network(images.to(device).float().div_(255))
        raw = output[0] if isinstance(output, tuple | list) else output  # [B, 4 + C, A]
        boxes = boxes_cxcywh_to_xyxy(raw[:, :4].transpose(1, 2))
        scores = raw[:, 4:].transpose(1, 2)
        detections = select_detections(boxes, scores, tc.conf_threshold, tc.nms_iou, tc.max_det)
        for meta, det in zip(metas, detections, strict=True):
            predictions[meta.image_id] = {
                "boxes": boxes_input_to_original(det["boxes"], meta.letterbox).cpu().numpy(),
                "scores": det["scores"].cpu().numpy(),
                "labels": det["labels"].cpu().numpy(),
            }
    return predictions


def predict_ultralytics(
    peer, records: list[ImageRecord], tc: TrainConfig, device: str
) -> dict[str, dict[str, np.ndarray]]:
    """The peer's own predictor (``YOLO.predict``); boxes already in original pixels."""
    predictions = {}
    for start in range(0, len(records), 256):  # a bounded source list per predictor call
        chunk = records[start : start + 256]
        results = peer.predict(
            source=[str(r.image_path) for r in chunk],
            imgsz=tc.imgsz,
            conf=tc.conf_threshold,
            iou=tc.nms_iou,
            max_det=tc.max_det,
            batch=tc.batch,
            device=device,
            stream=True,
            verbose=False,
            save=False,
        )
        for record, result in zip(chunk, results, strict=True):
            if Path(result.path).resolve() != record.image_path.resolve():
                raise RuntimeError(f"predictor order changed: {result.path} for {record.image_id}")
            boxes = result.boxes
            predictions[record.image_id] = {
                "boxes": boxes.xyxy.cpu().numpy().astype(np.float64),
                "scores": boxes.conf.cpu().numpy().astype(np.float64),
                "labels": boxes.cls.cpu().numpy().astype(np.int64),
            }
    return predictions


# ----------------------------------------------------------------------------- one run
def run_peer(
    model_name: str,
    seed: int,
    cfg: Config,
    plan: dict[str, Any],
    out: Path,
    data_yaml: Path,
    train: DetectionDataset,
    val: DetectionDataset,
    device: str,
    postprocess: str,
) -> str:
    """Train, predict and evaluate one peer run; returns ``"done"`` or ``"skipped"``."""
    import ultralytics
    from ultralytics import YOLO

    run_dir = out / model_name / f"seed{seed}"
    if (run_dir / RUN_FILE).is_file() and (run_dir / "val" / "last" / "metrics.json").is_file():
        return "skipped"
    shutil.rmtree(run_dir / "ultralytics", ignore_errors=True)  # an unfinished run restarts
    run_dir.mkdir(parents=True, exist_ok=True)
    tc = cfg.train
    ul_device = ultralytics_device(device)
    budget = {"epochs": plan_epochs(plan), "hours": plan_hours(plan)}
    args = ultralytics_train_args(cfg, data_yaml, run_dir, seed, ul_device, budget)

    threads = torch.get_num_threads()
    loop: dict[str, float] = {}

    def on_train_start(trainer) -> None:
        torch.set_num_threads(threads)  # ultralytics' select_device lowers it to cores - 1 on CPU
        loop["start"] = time.perf_counter()

    def on_train_end(trainer) -> None:
        if trainer.device.type == "cuda":
            torch.cuda.synchronize(trainer.device)
        loop["seconds"] = time.perf_counter() - loop["start"]
        loop["epochs"] = trainer.epoch + 1

    peer = YOLO(f"{model_name}.yaml", task="detect")
    peer.add_callback("on_train_start", on_train_start)
    peer.add_callback("on_train_end", on_train_end)
    call_start = time.perf_counter()
    with no_downloads(amp=args["amp"]):
        peer.train(trainer=peer_trainer_class(), **args)
    train_call_seconds = time.perf_counter() - call_start
    torch.set_num_threads(threads)
    weights = run_dir / "ultralytics" / "weights"
    # Without validation ultralytics saves best.pt = last.pt each epoch; drop it so no run
    # folder suggests a checkpoint was selected on the val split.
    (weights / "best.pt").unlink(missing_ok=True)

    last = weights / "last.pt"
    final = YOLO(str(last), task="detect")
    network = final.model.float().eval()
    strides = [int(s) for s in network.stride.tolist()]
    params = sum(p.numel() for p in network.parameters())  # before the predictor fuses Conv+BN
    torch_device = torch.device("cpu" if ul_device == "cpu" else f"cuda:{ul_device}")
    start = time.perf_counter()
    if postprocess == "shared":
        predictions = predict_shared(network.to(torch_device), val.records, tc, torch_device)
    else:
        predictions = predict_ultralytics(final, val.records, tc, ul_device)
    predict_seconds = time.perf_counter() - start
    write_coco_results(run_dir / "predictions.json", predictions, val.info, val.records)
    start = time.perf_counter()
    metrics = evaluate_predictions(
        val, predictions, max_dets=tc.max_det, out_dir=run_dir / "val" / "last"
    )
    evaluate_seconds = time.perf_counter() - start

    software = f"ultralytics {ultralytics.__version__}, torch {torch.__version__}"
    peer_record = {
        "model": f"{model_name}.yaml",
        "ultralytics": ultralytics.__version__,
        "torch": torch.__version__,
        "train_args": args,
        "budget": budget,
        "epochs_run": loop["epochs"],
        "postprocess": postprocess,
        "loss": PEER_LOSS,
        "torch_threads": threads,
        "strides": strides,
        "seconds": {
            "train_loop": round(loop["seconds"], 2),
            "train_call": round(train_call_seconds, 2),
            "predict": round(predict_seconds, 2),
            "evaluate": round(evaluate_seconds, 2),
        },
        "data": str(data_yaml),
        "differences": differences(cfg, args, train, postprocess, strides),
    }
    (run_dir / "peer.json").write_text(json.dumps(peer_record, indent=2) + "\n")
    record = {
        "variant": model_name,
        "seed": seed,
        "kind": "peer",
        "model": f"{model_name}.yaml",
        "box_loss": "ciou",
        "epochs": loop["epochs"],
        "imgsz": tc.imgsz,
        "train_seconds": round(loop["seconds"], 2),
        "params_m": round(params / 1e6, 3),
        "device": str(torch_device) if torch_device.type == "cuda" else "cpu",
        "world_size": 1,
        "software": software,
    }
    (run_dir / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"{model_name} seed {seed}: AP {metrics['AP']:.4f} AP50 {metrics['AP50']:.4f} "
        f"({loop['epochs']} epochs, {loop['seconds']:.0f} s training)"
    )
    return "done"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, required=True, help="plan.json of `ssabnet ablate`")
    parser.add_argument(
        "--models",
        default="yolov8n,yolov8n-p2",
        help="ultralytics model yamls without .yaml, comma separated",
    )
    parser.add_argument("--seeds", default=None, help="comma list; default: the plan's seeds")
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:i; default: the plan's")
    parser.add_argument(
        "--postprocess",
        choices=("shared", "ultralytics"),
        default="shared",
        help="letterbox + NMS of ssabnet (default) or ultralytics' own predictor",
    )
    args = parser.parse_args()

    plan = load_plan(args.plan)
    try:
        import ultralytics  # noqa: F401
    except ImportError as exc:
        raise SystemExit(
            f"ultralytics is not importable by {sys.executable} ({exc}); run "
            "`bash benchmarks/setup_peer_env.sh` and use .benchenv/bin/python"
        ) from None
    out = args.plan.parent
    models = [m.strip().removesuffix(".yaml") for m in args.models.split(",") if m.strip()]
    for name in models:  # fail before any training on a model ultralytics cannot build
        try:
            ultralytics.YOLO(f"{name}.yaml", task="detect")
        except (FileNotFoundError, KeyError, ValueError) as exc:
            raise SystemExit(f"--models: ultralytics cannot build {name}.yaml ({exc})") from None
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(plan["seeds"])
    cfg = merge(Config(), plan["config"])
    device = args.device or cfg.train.device

    specs = {"train": plan["train"], "val": plan["val"]}
    try:
        train, val = load_dataset(specs["train"]), load_dataset(specs["val"])
    except FileNotFoundError as exc:
        raise SystemExit(f"dataset missing: {exc}") from None
    if tuple(train.info.classes) != tuple(val.info.classes):
        raise SystemExit(f"train classes {train.info.classes} differ from val {val.info.classes}")
    data_yaml = prepare_yolo_data(out / PEER_DATA, train, val, specs)

    total, index = len(models) * len(seeds), 0
    for seed in seeds:
        for model_name in models:
            index += 1
            start = time.perf_counter()
            print(f"[{index}/{total}] {model_name} seed {seed}", flush=True)
            status = run_peer(
                model_name, seed, cfg, plan, out, data_yaml, train, val, device, args.postprocess
            )
            print(
                f"[{index}/{total}] {model_name} seed {seed}: {status} in "
                f"{time.perf_counter() - start:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
