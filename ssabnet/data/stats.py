"""Dataset statistics for ``ssabnet data stats``: counts per class, per size bucket and more.

Size buckets are :data:`ssabnet.scales.SIZE_BUCKETS` on ``sqrt(w * h)`` of each box in original
pixels. "Evaluated" objects are those with ``record.evaluated`` (trainable class, not ignored).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ssabnet.data.record import DetectionDataset
from ssabnet.ops.boxes import box_size
from ssabnet.scales import SIZE_BUCKETS, size_bucket_index

#: Human-readable bucket labels, in :data:`SIZE_BUCKETS` order.
BUCKET_LABELS: tuple[str, ...] = ("<8", "8-16", "16-32", "32-96", ">96")


def dataset_stats(dataset: DetectionDataset) -> dict:
    """Statistics of a dataset as a JSON-ready dict.

    Keys: ``name``, ``format``, ``root``, ``images``, ``objects`` (all records' objects),
    ``evaluated`` (objects that count), ``ignored_objects`` (``ignore`` or no class),
    ``ignore_regions``, ``boxes_per_class`` (evaluated, by class name), ``ignored_per_class``,
    ``size_buckets`` (evaluated boxes per bucket name), ``size_bucket_labels`` (name ->
    ``"<8"``...), ``size_bucket_shares``, ``objects_per_image`` (mean/median/max of evaluated),
    ``image_sizes`` (``"WxH"`` -> images), ``truncation``/``occlusion`` (value -> evaluated
    boxes), ``num_skipped``.
    """
    classes = dataset.info.classes
    per_class = np.zeros(len(classes), np.int64)
    ignored_per_class = Counter()
    buckets = np.zeros(len(SIZE_BUCKETS), np.int64)
    truncation, occlusion, image_sizes = Counter(), Counter(), Counter()
    per_image, n_objects, n_regions = [], 0, 0
    for record in dataset.records:
        evaluated = record.evaluated
        labels = record.labels[evaluated]
        per_class += np.bincount(labels, minlength=len(classes))[: len(classes)]
        for label in record.labels[~evaluated]:
            ignored_per_class[classes[label] if label >= 0 else "(no class)"] += 1
        if evaluated.any():
            sizes = box_size(record.boxes[evaluated].astype(np.float64))
            buckets += np.bincount(size_bucket_index(sizes), minlength=len(SIZE_BUCKETS))
        truncation.update(int(v) for v in record.truncation[evaluated])
        occlusion.update(int(v) for v in record.occlusion[evaluated])
        image_sizes[f"{record.width}x{record.height}"] += 1
        per_image.append(int(evaluated.sum()))
        n_objects += record.num_objects
        n_regions += len(record.ignore_regions)
    total = int(buckets.sum())
    counts = np.array(per_image or [0])
    return {
        "name": dataset.info.name,
        "format": dataset.info.format,
        "root": str(dataset.root),
        "images": len(dataset.records),
        "objects": n_objects,
        "evaluated": total,
        "ignored_objects": n_objects - total,
        "ignore_regions": n_regions,
        "boxes_per_class": {name: int(n) for name, n in zip(classes, per_class, strict=True)},
        "ignored_per_class": dict(sorted(ignored_per_class.items())),
        "size_buckets": {b.name: int(n) for b, n in zip(SIZE_BUCKETS, buckets, strict=True)},
        "size_bucket_labels": {
            b.name: label for b, label in zip(SIZE_BUCKETS, BUCKET_LABELS, strict=True)
        },
        "size_bucket_shares": {
            b.name: (float(n) / total if total else 0.0)
            for b, n in zip(SIZE_BUCKETS, buckets, strict=True)
        },
        "objects_per_image": {
            "mean": float(counts.mean()),
            "median": float(np.median(counts)),
            "max": int(counts.max()),
        },
        "image_sizes": dict(image_sizes.most_common()),
        "truncation": {str(k): v for k, v in sorted(truncation.items())},
        "occlusion": {str(k): v for k, v in sorted(occlusion.items())},
        "num_skipped": dataset.num_skipped,
    }


def format_stats(stats: dict) -> str:
    """A plain-text report of :func:`dataset_stats` for the terminal."""
    lines = [
        f"dataset   {stats['name']} ({stats['format']}) at {stats['root']}",
        f"images    {stats['images']}",
        f"objects   {stats['objects']} ({stats['evaluated']} evaluated, "
        f"{stats['ignored_objects']} ignored), ignore regions {stats['ignore_regions']}",
        "objects/image (evaluated): mean {mean:.1f}, median {median:g}, max {max}".format(
            **stats["objects_per_image"]
        ),
        "",
        "class               boxes",
    ]
    lines += [f"  {name:<17} {n:>7}" for name, n in stats["boxes_per_class"].items()]
    if stats["ignored_per_class"]:
        ignored = ", ".join(f"{k} {v}" for k, v in stats["ignored_per_class"].items())
        lines.append(f"  ignored objects: {ignored}")
    lines += ["", "size (sqrt(w*h) px)  boxes   share"]
    for name, n in stats["size_buckets"].items():
        label = stats["size_bucket_labels"][name]
        share = stats["size_bucket_shares"][name]
        lines.append(f"  {label:<6} {name:<11} {n:>7}  {100 * share:5.1f}%")
    sizes = ", ".join(f"{k} ({v})" for k, v in list(stats["image_sizes"].items())[:6])
    lines += ["", f"image sizes: {sizes}"]
    if stats["num_skipped"]:
        lines.append(f"skipped invalid items: {stats['num_skipped']}")
    return "\n".join(lines)
