"""Inference on image files: checkpoint loading, batched and sliced prediction, result files.

``predict(weights, source)`` returns contract-4 prediction dicts (``image_id`` -> ``{"boxes"
[N, 4] xyxy ORIGINAL pixels, "scores" [N], "labels" [N]}``). With ``slice_size`` set, each frame
is also cut into overlapping ``slice_size`` tiles that are run at the network's resolution, so
a 6 px object in a 2000 px frame is seen at full resolution; tile and full-image detections are
merged by class-aware NMS or weighted box fusion (:mod:`ssabnet.postprocess`).
"""

from __future__ import annotations

import glob
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ssabnet.config import config_from_dict
from ssabnet.data.images import IMAGE_SUFFIXES, read_image_rgb, read_image_size
from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.data.transforms import Targets, letterbox
from ssabnet.engine.checkpoint import CheckpointError, read_checkpoint
from ssabnet.errors import InputFileError, MissingInputError, UsageError
from ssabnet.model.build import build_model
from ssabnet.postprocess import boxes_input_to_original, merge_detections, postprocess
from ssabnet.protocol import MAX_DET

Predictions = dict[str, dict[str, np.ndarray]]


@dataclass
class LoadedCheckpoint:
    """A model ready for inference and what it was trained on.

    Attributes:
        model: the network in eval mode (EMA weights when the checkpoint has them).
        info: ``DatasetInfo`` of the training data (class names and native ids).
        config: the resolved training config as a plain dict.
        epoch: last completed epoch (0-based).
        metrics: the last validation metrics stored with it.
        path: the file it came from.
    """

    model: nn.Module
    info: DatasetInfo
    config: dict[str, Any]
    epoch: int
    metrics: dict[str, float]
    path: Path


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", use_ema: bool = True
) -> LoadedCheckpoint:
    """Rebuild the model of a checkpoint (safe ``weights_only`` load, digest verified).

    Raises:
        FileNotFoundError: no such file.
        ssabnet.engine.checkpoint.CheckpointError: truncated, modified or foreign file.
    """
    state = read_checkpoint(path)
    # The digest only proves the file is what its writer saved: a file re-saved with a fresh
    # digest can still hold weights of another model or a broken config. Any such mismatch is
    # reported as a CheckpointError naming the file, never a traceback from load_state_dict.
    try:
        cfg = config_from_dict(state["config"])
        class_names = tuple(str(name) for name in state["class_names"])
        model = build_model(cfg.model, num_classes=len(class_names))
        weights = state["ema"]["module"] if use_ema and state.get("ema") else state["model"]
        model.load_state_dict(weights)
        info_dict = state.get("dataset_info") or {}
        info = DatasetInfo(
            name=str(info_dict.get("name", "unknown")),
            format=str(info_dict.get("format", "unknown")),
            classes=class_names,
            native_ids=tuple(
                int(i) for i in info_dict.get("native_ids", range(1, len(class_names) + 1))
            ),
        )
        epoch = int(state["epoch"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__  # one line
        raise CheckpointError(
            path, f"its content does not rebuild an SSABNet model: {detail[:300]}"
        ) from None
    if len(info.native_ids) != len(class_names):
        raise CheckpointError(path, "dataset_info.native_ids and class_names differ in length")
    model.to(device).eval()
    return LoadedCheckpoint(
        model,
        info,
        state["config"],
        epoch,
        dict(state.get("metrics", {})),
        Path(path),
    )


def check_inference_params(
    *,
    imgsz: int | None = 640,
    conf: float = 0.001,
    iou: float = 0.6,
    max_det: int = 500,
    slice_size: int | None = None,
    overlap: float = 0.2,
    merge: str = "nms",
    batch: int = 8,
) -> None:
    """Raise :class:`~ssabnet.errors.UsageError` naming the first out-of-range value.

    Called before any checkpoint or image is read, so a bad flag costs nothing (``--conf nan``
    would otherwise keep no detection at all, ``--slice -5`` crash inside OpenCV).
    """
    checks = [
        (
            "--imgsz",
            imgsz,
            imgsz is None or (imgsz >= 32 and imgsz % 32 == 0),
            "a positive multiple of 32",
        ),  # (None: the checkpoint's training size)
        ("--conf", conf, math.isfinite(conf) and 0.0 <= conf <= 1.0, "in [0, 1]"),
        ("--iou", iou, math.isfinite(iou) and 0.0 < iou <= 1.0, "in (0, 1]"),
        ("--max-det", max_det, max_det >= 1, ">= 1"),
        ("--slice", slice_size, slice_size is None or slice_size >= 32, ">= 32 pixels"),
        ("--overlap", overlap, math.isfinite(overlap) and 0.0 <= overlap < 1.0, "in [0, 1)"),
        ("--merge", merge, merge in ("nms", "wbf"), "'nms' or 'wbf'"),
        ("--batch", batch, batch >= 1, ">= 1"),
    ]
    for flag, value, ok, rule in checks:
        if not ok:
            raise UsageError(f"{flag} must be {rule}, got {value!r}")


def list_sources(source: str | Path) -> list[Path]:
    """An image file, a folder (its images, sorted) or a glob pattern -> image paths."""
    text = str(source)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    elif path.is_file():
        files = [path]
    else:
        files = sorted(
            Path(p)
            for p in glob.glob(text, recursive=True)
            if Path(p).suffix.lower() in IMAGE_SUFFIXES
        )
    if not files:
        raise MissingInputError(
            f"no images found at {source} (expected an image, a folder or a glob)"
        )
    return files


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with ``overlap``.

    The last tile is aligned to the far edge, so every pixel is covered and no tile is padded
    (unless ``length < tile``, when one tile starting at 0 covers everything).
    """
    if not 0 <= overlap < 1:
        raise UsageError(f"overlap must be in [0, 1), got {overlap}")
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    count = math.ceil((length - tile) / step) + 1
    return sorted({min(i * step, length - tile) for i in range(count)})


def slice_windows(
    width: int, height: int, tile: int, overlap: float
) -> list[tuple[int, int, int, int]]:
    """``(x0, y0, x1, y1)`` pixel windows of the tiles of a ``width x height`` image."""
    return [
        (x, y, min(x + tile, width), min(y + tile, height))
        for y in tile_origins(height, tile, overlap)
        for x in tile_origins(width, tile, overlap)
    ]


@torch.no_grad()
def _run_views(
    model: nn.Module,
    views: list[np.ndarray],
    imgsz: int,
    device: torch.device,
    batch: int,
    conf: float,
    iou: float,
    max_det: int,
) -> list[dict[str, torch.Tensor]]:
    """Letterbox each view to ``imgsz``, run in batches; detections in view pixels (CPU)."""
    results = []
    for start in range(0, len(views), batch):
        chunk = views[start : start + batch]
        letterboxed = [letterbox(v, Targets.empty(), imgsz) for v in chunk]
        images = torch.stack(
            [torch.from_numpy(x[0].transpose(2, 0, 1).copy()) for x in letterboxed]
        )
        outputs = model(images.to(device).float().div_(255))
        for det, (_, _, params) in zip(
            postprocess(outputs, conf, iou, max_det), letterboxed, strict=True
        ):
            results.append(
                {
                    "boxes": boxes_input_to_original(det["boxes"], params).cpu(),
                    "scores": det["scores"].cpu(),
                    "labels": det["labels"].cpu(),
                }
            )
    return results


def predict_image(
    model: nn.Module,
    image: np.ndarray,
    *,
    imgsz: int = 640,
    device: str | torch.device = "cpu",
    conf: float = 0.001,
    iou: float = 0.6,
    max_det: int = MAX_DET,
    slice_size: int | None = None,
    overlap: float = 0.2,
    merge: str = "nms",
    batch: int = 8,
) -> dict[str, np.ndarray]:
    """Detections of one RGB ``uint8[H, W, 3]`` image in its own pixels.

    With ``slice_size``, tiles of that size (``overlap`` fraction shared by neighbours) plus the
    full image are run, each letterboxed to ``imgsz``; their detections are mapped to the frame
    and merged with ``merge`` (``"nms"`` or ``"wbf"``) at IoU ``iou``.
    """
    device = torch.device(device)
    height, width = image.shape[:2]
    if not slice_size:
        det = _run_views(model, [image], imgsz, device, batch, conf, iou, max_det)[0]
        return {k: v.numpy() for k, v in det.items()}
    windows = slice_windows(width, height, slice_size, overlap)
    views = [image[y0:y1, x0:x1] for x0, y0, x1, y1 in windows]
    dets = _run_views(model, views + [image], imgsz, device, batch, conf, iou, max_det)
    offsets = [torch.tensor([x0, y0, x0, y0], dtype=torch.float32) for x0, y0, _, _ in windows]
    offsets.append(torch.zeros(4))
    boxes = torch.cat([d["boxes"] + off for d, off in zip(dets, offsets, strict=True)])
    scores = torch.cat([d["scores"] for d in dets])
    labels = torch.cat([d["labels"] for d in dets])
    merged = merge_detections(boxes, scores, labels, merge, iou, max_det)
    return {k: v.numpy() for k, v in merged.items()}


def predict(
    weights: str | Path | LoadedCheckpoint,
    source: str | Path | Sequence[str | Path],
    *,
    imgsz: int = 640,
    device: str = "cpu",
    conf: float = 0.001,
    iou: float = 0.6,
    max_det: int = MAX_DET,
    slice_size: int | None = None,
    overlap: float = 0.2,
    merge: str = "nms",
    batch: int = 8,
    image_ids: Iterable[str] | None = None,
) -> Predictions:
    """Run a checkpoint on image files.

    Args:
        weights: checkpoint path or a :class:`LoadedCheckpoint`.
        source: image file, folder, glob pattern, or a list of image paths.
        image_ids: ids for the result keys (default: file stems).
        Other arguments: see :func:`predict_image`.

    Returns:
        ``{image_id: {"boxes": float32[N, 4] xyxy original px, "scores": [N], "labels": [N]}}``.
    """
    check_inference_params(
        imgsz=imgsz,
        conf=conf,
        iou=iou,
        max_det=max_det,
        slice_size=slice_size,
        overlap=overlap,
        merge=merge,
        batch=batch,
    )
    loaded = weights if isinstance(weights, LoadedCheckpoint) else load_checkpoint(weights, device)
    is_one = isinstance(source, str | Path)
    files = list_sources(source) if is_one else [Path(p) for p in source]
    ids = list(image_ids) if image_ids is not None else [p.stem for p in files]
    if len(set(ids)) != len(ids):
        raise InputFileError("two source images share a file name; pass distinct image_ids")
    loaded.model.to(device).eval()
    if not slice_size:  # batch whole images together
        results: Predictions = {}
        for start in range(0, len(files), batch):
            chunk = [read_image_rgb(p) for p in files[start : start + batch]]
            dets = _run_views(
                loaded.model, chunk, imgsz, torch.device(device), batch, conf, iou, max_det
            )
            for image_id, det in zip(ids[start : start + batch], dets, strict=True):
                results[image_id] = {k: v.numpy() for k, v in det.items()}
        return results
    return {
        image_id: predict_image(
            loaded.model,
            read_image_rgb(path),
            imgsz=imgsz,
            device=device,
            conf=conf,
            iou=iou,
            max_det=max_det,
            slice_size=slice_size,
            overlap=overlap,
            merge=merge,
            batch=batch,
        )
        for image_id, path in zip(ids, files, strict=True)
    }


def source_records(files: Sequence[Path], image_ids: Sequence[str]) -> list[ImageRecord]:
    """Minimal records (id, path, size) for writing COCO results of unannotated images."""
    records = []
    for image_id, path in zip(image_ids, files, strict=True):
        width, height = read_image_size(path)
        records.append(ImageRecord(image_id=image_id, image_path=path, width=width, height=height))
    return records
