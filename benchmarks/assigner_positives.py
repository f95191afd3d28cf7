"""How many ground-truth boxes get no positive anchor, per assigner overlap metric.

Model-free prior (no trained network involved), documented in docs/losses.md:

* images are letterboxed to 640 px as the engine does (``scale = 640 / max(W, H)``, centred
  padding), boxes are the evaluated ones (VisDrone score 1, classes 1-10);
* predicted class scores are uniform random in (0, 1);
* each anchor predicts a box centred on itself (DFL boxes always contain their anchor) with the
  width and height of the ground truth whose centre is nearest, times ``exp(N(0, 0.2^2))``
  (a detector that roughly knows the object size but not yet where it is);
* the assigner is ``ssabnet.assign.TaskAlignedAssigner`` (top-k 10, alpha 0.5, beta 6) at
  strides P3-P5 (8, 16, 32) and P2-P5 (4, 8, 16, 32), with and without the centre-radius
  fallback; ``--widen-tiny`` applies ultralytics' tiny-side widening to the candidates.

Usage::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/assigner_positives.py [--synthetic-images 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ssabnet.assign import TaskAlignedAssigner, positives_per_gt
from ssabnet.data import load_dataset
from ssabnet.data.synthetic import generate_dataset
from ssabnet.ops.boxes import box_size
from ssabnet.scales import SIZE_BUCKETS, size_bucket_index

IMGSZ = 640
NUM_CLASSES = 10
SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "visdrone_sample"


def letterboxed_boxes(records) -> list[tuple[np.ndarray, np.ndarray]]:
    """Evaluated boxes and labels of each record in 640-px input coordinates."""
    out = []
    for record in records:
        keep = (record.labels >= 0) & ~record.ignore
        scale = IMGSZ / max(record.width, record.height)
        pad_x = (IMGSZ - round(record.width * scale)) // 2
        pad_y = (IMGSZ - round(record.height * scale)) // 2
        boxes = record.boxes[keep] * scale + np.array([pad_x, pad_y, pad_x, pad_y], np.float32)
        out.append((boxes.astype(np.float32), record.labels[keep]))
    return out


def anchor_grid(strides: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    points, stride_list = [], []
    for stride in strides:
        n = IMGSZ // stride
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        points.append((torch.stack([xs.flatten(), ys.flatten()], -1).float() + 0.5) * stride)
        stride_list.append(torch.full((n * n,), float(stride)))
    return torch.cat(points), torch.cat(stride_list)


def prior_predictions(points, gt_boxes, generator):
    """Anchor-centred boxes with the nearest GT's size x log-normal noise, ``[A, 4]``."""
    centres = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    sizes = gt_boxes[:, 2:] - gt_boxes[:, :2]
    nearest = torch.cdist(points, centres).argmin(1)
    wh = sizes[nearest] * torch.exp(0.2 * torch.randn(points.shape[0], 2, generator=generator))
    return torch.cat([points - wh / 2, points + wh / 2], -1)


def count_zero_positives(images, strides, metric, radius, seed=0, widen_tiny=False):
    """(#GT, #GT with 0 positives, per-bucket zero counts, per-bucket totals, seconds)."""
    points, anchor_strides = anchor_grid(strides)
    assigner = TaskAlignedAssigner(
        num_classes=NUM_CLASSES,
        metric=metric,
        center_radius=radius,
        C=12.0,
        widen_tiny=widen_tiny,
    )
    generator = torch.Generator().manual_seed(seed)
    zero_sizes, all_sizes = [], []
    seconds = 0.0
    for boxes, labels in images:
        if len(boxes) == 0:
            continue
        gt_boxes = torch.from_numpy(boxes)
        scores = torch.rand(1, points.shape[0], NUM_CLASSES, generator=generator)
        pred = prior_predictions(points, gt_boxes, generator)[None]
        start = time.perf_counter()
        assignment = assigner(
            scores,
            pred,
            points,
            anchor_strides,
            torch.from_numpy(labels)[None],
            gt_boxes[None],
            torch.ones(1, len(boxes), dtype=torch.bool),
        )
        seconds += time.perf_counter() - start
        counts = positives_per_gt(assignment, len(boxes))[0].numpy()
        sizes = box_size(boxes)
        all_sizes.append(sizes)
        zero_sizes.append(sizes[counts == 0])
    all_sizes = np.concatenate(all_sizes)
    zero_sizes = np.concatenate(zero_sizes)
    nb = len(SIZE_BUCKETS)
    zero_bucket = np.bincount(size_bucket_index(zero_sizes), minlength=nb)
    all_bucket = np.bincount(size_bucket_index(all_sizes), minlength=nb)
    return len(all_sizes), len(zero_sizes), zero_bucket, all_bucket, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-images", type=int, default=64)
    parser.add_argument("--radii", type=float, nargs="+", default=[0.0, 1.0, 2.5])
    parser.add_argument("--metrics", nargs="+", default=["iou", "nwd", "sabl"])
    parser.add_argument("--widen-tiny", action="store_true", help="ultralytics' candidate rule")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    datasets = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = generate_dataset(Path(tmp) / "syn", args.synthetic_images, seed=0, size=(1360, 765))
        datasets[f"synthetic ({args.synthetic_images} img, 1360x765)"] = letterboxed_boxes(
            load_dataset(root).records
        )
    if SAMPLE.is_dir():
        datasets["VisDrone sample (133 img)"] = letterboxed_boxes(load_dataset(SAMPLE).records)

    names = [b.name for b in SIZE_BUCKETS]
    print(
        "| data | strides | radius | metric | GT | zero-positive GT | "
        + " | ".join(f"{n} zero/total" for n in names[:3])
        + " | assign s |"
    )
    print("|---" * (8 + 2) + "|")
    for data_name, images in datasets.items():
        for strides in ((8, 16, 32), (4, 8, 16, 32)):
            level = "P3-P5" if strides[0] == 8 else "P2-P5"
            for radius in args.radii:
                for metric in args.metrics:
                    total, zero, zero_b, all_b, secs = count_zero_positives(
                        images, strides, metric, radius, widen_tiny=args.widen_tiny
                    )
                    buckets = " | ".join(f"{zero_b[i]}/{all_b[i]}" for i in range(3))
                    rule = f"{radius:g}" + (" + widen" if args.widen_tiny else "")
                    print(
                        f"| {data_name} | {level} | {rule} | {metric} | {total} | "
                        f"{zero} ({100 * zero / total:.1f}%) | {buckets} | {secs:.2f} |"
                    )


if __name__ == "__main__":
    main()
