"""Shared helpers of the evaluation tests: real VisDrone GT as records, noisy predictions.

The VisDrone sample is read with ``ssabnet.data.load_dataset`` when the data package can read it;
until then a minimal reader of the official 8-field annotation lines is used here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssabnet.data.record import DatasetInfo, ImageRecord

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VISDRONE_SAMPLE = DATA / "visdrone_sample"
VISDRONE_CLASSES = (
    "pedestrian",
    "people",
    "bicycle",
    "car",
    "van",
    "truck",
    "tricycle",
    "awning-tricycle",
    "bus",
    "motor",
)
VISDRONE_INFO = DatasetInfo("visdrone", "visdrone", VISDRONE_CLASSES, tuple(range(1, 11)))


def parse_visdrone_annotation(path: Path, width: int, height: int) -> ImageRecord:
    """Minimal reader of one official VisDrone-DET annotation file (8 integer fields)."""
    rows = [
        [int(v) for v in line.split(",")[:8]]
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    arr = np.array(rows, dtype=np.int64).reshape(-1, 8)
    is_region = arr[:, 5] == 0
    objects, regions = arr[~is_region], arr[is_region]

    def xyxy(a):
        return np.stack([a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]], 1).astype(
            np.float32
        )

    category = objects[:, 5]
    labels = np.where((category >= 1) & (category <= 10), category - 1, -1)
    return ImageRecord(
        image_id=path.stem,
        image_path=path.parent.parent / "images" / f"{path.stem}.jpg",
        width=width,
        height=height,
        boxes=xyxy(objects),
        labels=labels.astype(np.int64),
        ignore=(objects[:, 4] == 0) | (labels < 0),
        truncation=objects[:, 6],
        occlusion=objects[:, 7],
        ignore_regions=xyxy(regions),
        native={"score": objects[:, 4], "category": category},
    )


def _sample_sizes() -> dict[str, tuple[int, int]]:
    import csv

    with open(VISDRONE_SAMPLE / "MANIFEST.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {Path(r["image"]).stem: (int(r["width"]), int(r["height"])) for r in rows}


def visdrone_sample_records(limit: int | None = None) -> list[ImageRecord]:
    """The real VisDrone sample as records (sorted by image id)."""
    try:
        from ssabnet.data import load_dataset

        records = sorted(load_dataset(VISDRONE_SAMPLE).records, key=lambda r: r.image_id)
    except (ImportError, AttributeError, NotImplementedError):
        sizes = _sample_sizes()
        files = sorted((VISDRONE_SAMPLE / "annotations").glob("*.txt"))
        records = [parse_visdrone_annotation(p, *sizes[p.stem]) for p in files]
    return records[:limit] if limit else records


def noisy_predictions(
    records: list[ImageRecord], seed: int, max_per_image: int = 500, fp_fraction: float = 0.5
) -> dict[str, dict[str, np.ndarray]]:
    """GT jittered (scale-relative), some misses, false positives; seeded and deterministic."""
    rng = np.random.default_rng(seed)
    predictions = {}
    for r in records:
        keep = r.labels >= 0
        gt = r.boxes[keep].astype(np.float64)
        labels = r.labels[keep]
        hit = rng.random(len(gt)) < 0.8
        gt, labels = gt[hit], labels[hit]
        wh = gt[:, 2:] - gt[:, :2]
        jitter = rng.normal(0.0, 0.12, gt.shape) * np.concatenate([wh, wh], 1)
        boxes = gt + jitter
        wrong = rng.random(len(labels)) < 0.1
        labels = np.where(wrong, rng.integers(0, 10, len(labels)), labels)
        num_fp = int(len(gt) * fp_fraction) + 5
        xy = rng.uniform(0, 1, (num_fp, 2)) * [r.width, r.height]
        size = np.exp(rng.uniform(np.log(4), np.log(120), (num_fp, 2)))
        fp_boxes = np.concatenate([xy, xy + size], 1)
        boxes = np.concatenate([boxes, fp_boxes])
        labels = np.concatenate([labels, rng.integers(0, 10, num_fp)])
        scores = np.concatenate([rng.uniform(0.3, 1.0, len(gt)), rng.uniform(0.0, 0.7, num_fp)])
        order = np.argsort(-scores, kind="stable")[:max_per_image]
        predictions[r.image_id] = {
            "boxes": boxes[order],
            "scores": scores[order],
            "labels": labels[order].astype(np.int64),
        }
    return predictions
