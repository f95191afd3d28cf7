"""Where the box/DFL weight of a batch goes, per object size, under each balancing rule.

Model-free prior as in ``benchmarks/assigner_positives.py`` (uniform random class scores; each
anchor predicts a box centred on itself with the nearest ground truth's size x
``exp(N(0, 0.2^2))``), on the synthetic training scenes of the CPU ablation
(``syndrone-ablation-train``, 320x256, letterboxed to 320 px as in training, so input pixels =
original pixels), P2-P5 anchors (strides 4-32, the P2 networks), batches of 8 images, the
task-aligned assigner (top-k 10). For each size bucket it prints:

* positives per object and the soft-target sum per object (what ``normalize: score_sum``
  weighs an object by) under the IoU and the SABL assigner metric;
* each balancing rule's mean box weight per object, relative to no balancing (1.0 = unchanged).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/balance_weights.py [--images 160]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ssabnet.assign import TaskAlignedAssigner
from ssabnet.data import load_dataset
from ssabnet.losses.balance import scale_balance_weights
from ssabnet.ops.boxes import box_size
from ssabnet.scales import SIZE_BUCKETS, size_bucket_index

IMGSZ = 320
STRIDES = (4, 8, 16, 32)
NUM_CLASSES = 10
RULES = {
    "anchors, gamma 0.5 (first reading)": {"gamma": 0.5, "objects": False},
    "objects, gamma 1 (every object equal)": {"gamma": 1.0, "objects": True},
    "objects, gamma 0.5": {"gamma": 0.5, "objects": True},
}


def anchor_grid() -> tuple[torch.Tensor, torch.Tensor]:
    points, strides = [], []
    for stride in STRIDES:
        n = IMGSZ // stride
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        points.append((torch.stack([xs.flatten(), ys.flatten()], -1).float() + 0.5) * stride)
        strides.append(torch.full((n * n,), float(stride)))
    return torch.cat(points), torch.cat(strides)


def letterboxed(record) -> tuple[np.ndarray, np.ndarray]:
    keep = (record.labels >= 0) & ~record.ignore
    scale = IMGSZ / max(record.width, record.height)
    pad_x = (IMGSZ - round(record.width * scale)) // 2
    pad_y = (IMGSZ - round(record.height * scale)) // 2
    boxes = record.boxes[keep] * scale + np.array([pad_x, pad_y, pad_x, pad_y], np.float32)
    return boxes.astype(np.float32), record.labels[keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    records = load_dataset("syndrone-ablation-train").records[: args.images]
    images = [letterboxed(r) for r in records]
    points, strides = anchor_grid()
    generator = torch.Generator().manual_seed(0)
    nb = len(SIZE_BUCKETS)
    for metric in ("iou", "sabl"):
        assigner = TaskAlignedAssigner(num_classes=NUM_CLASSES, metric=metric, C=12.0)
        objects = np.zeros(nb)
        positives = np.zeros(nb)
        base = np.zeros(nb)
        rule_sums = {name: np.zeros(nb) for name in RULES}
        for start in range(0, len(images), args.batch):
            chunk = [im for im in images[start : start + args.batch] if len(im[0])]
            if not chunk:
                continue
            m = max(len(b) for b, _ in chunk)
            gt = torch.zeros(len(chunk), m, 4)
            labels = torch.zeros(len(chunk), m, dtype=torch.int64)
            mask = torch.zeros(len(chunk), m, dtype=torch.bool)
            preds = []
            for i, (b, lab) in enumerate(chunk):
                gt[i, : len(b)] = torch.from_numpy(b)
                labels[i, : len(b)] = torch.from_numpy(lab)
                mask[i, : len(b)] = True
                boxes = torch.from_numpy(b)
                centres = (boxes[:, :2] + boxes[:, 2:]) / 2
                nearest = torch.cdist(points, centres).argmin(1)
                wh = (boxes[:, 2:] - boxes[:, :2])[nearest] * torch.exp(
                    0.2 * torch.randn(points.shape[0], 2, generator=generator)
                )
                preds.append(torch.cat([points - wh / 2, points + wh / 2], -1))
            scores = torch.rand(len(chunk), points.shape[0], NUM_CLASSES, generator=generator)
            a = assigner(scores, torch.stack(preds), points, strides, labels, gt, mask)
            fg = a.fg_mask
            weights = a.target_scores.sum(-1)[fg]
            matched = a.matched_gt_idx[fg]
            image_idx = fg.nonzero(as_tuple=True)[0]
            ids = image_idx * m + matched
            sizes = box_size(a.target_boxes[fg])
            gt_sizes = box_size(gt[mask].numpy())
            objects += np.bincount(size_bucket_index(gt_sizes), minlength=nb)
            pos_bucket = size_bucket_index(sizes.numpy())
            positives += np.bincount(pos_bucket, minlength=nb)
            base += np.bincount(pos_bucket, weights=weights.numpy(), minlength=nb)
            for name, rule in RULES.items():
                out = scale_balance_weights(
                    weights, sizes, rule["gamma"], ids if rule["objects"] else None
                )
                rule_sums[name] += np.bincount(pos_bucket, weights=out.numpy(), minlength=nb)
        names = [b.name for b in SIZE_BUCKETS]
        print(
            f"\n### assigner metric {metric}: {int(objects.sum())} objects, "
            f"{int(positives.sum())} positives\n"
        )
        print("| per object | " + " | ".join(names) + " |")
        print("|---|" + "---|" * nb)
        print("| objects | " + " | ".join(f"{int(o)}" for o in objects) + " |")
        print(
            "| positives | "
            + " | ".join(f"{p / max(o, 1):.2f}" for p, o in zip(positives, objects, strict=True))
            + " |"
        )
        print(
            "| target-score sum (no balancing) | "
            + " | ".join(f"{w / max(o, 1):.3f}" for w, o in zip(base, objects, strict=True))
            + " |"
        )
        for name, sums in rule_sums.items():
            print(
                f"| weight x, {name} | "
                + " | ".join(
                    f"{s / w:.2f}" if w > 0 else "-" for s, w in zip(sums, base, strict=True)
                )
                + " |"
            )


if __name__ == "__main__":
    main()
