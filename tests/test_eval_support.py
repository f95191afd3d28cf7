"""Shared helpers of the evaluation tests: real VisDrone GT as records, noisy predictions.

The VisDrone sample is read with ``ssabnet.data.load_dataset``, the reader the product uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssabnet.data import load_dataset
from ssabnet.data.record import ImageRecord
from ssabnet.data.visdrone import visdrone_info

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VISDRONE_SAMPLE = DATA / "visdrone_sample"
VISDRONE_INFO = visdrone_info()


def visdrone_sample_records(limit: int | None = None) -> list[ImageRecord]:
    """The real VisDrone sample as records (sorted by image id), read by the data package."""
    records = sorted(load_dataset(VISDRONE_SAMPLE).records, key=lambda r: r.image_id)
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
