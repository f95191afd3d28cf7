"""Benchmark the data layer: synthetic generation speed, its fit to VisDrone-val, load speed.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python benchmarks/bench_synthetic.py --num 200 --size 640 480
    python benchmarks/bench_synthetic.py --fit     # re-derive CLASS_STATS from VisDrone-val GT

Prints a markdown table for ``docs/benchmarks.md`` (section "Data").
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ssabnet.data import load_dataset
from ssabnet.data.stats import dataset_stats
from ssabnet.data.synthetic import generate_dataset
from ssabnet.data.visdrone import read_visdrone_annotation

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def fit_class_stats(val_gt: Path) -> None:
    """Print per-class frequency, log-size and log-aspect statistics of VisDrone-val GT."""
    rows = []
    for path in sorted((val_gt / "annotations").glob("*.txt")):
        rec = read_visdrone_annotation(path, path.with_suffix(".jpg"), None, None)
        keep = rec.evaluated
        wh = rec.boxes[keep, 2:] - rec.boxes[keep, :2]
        rows.append(np.column_stack([rec.labels[keep], wh]))
    data = np.concatenate(rows)
    labels, w, h = data[:, 0].astype(int), data[:, 1], data[:, 2]
    log_size, log_aspect = np.log(np.sqrt(w * h)), np.log(w / h)
    print(f"{len(data)} boxes in {len(rows)} files ({len(data) / len(rows):.1f} per image)")
    for c in range(10):
        m = labels == c
        print(
            f"ClassStats({m.mean():.4f}, ({log_size[m].mean():.3f}, {log_size[m].std():.3f}), "
            f"({log_aspect[m].mean():.3f}, {log_aspect[m].std():.3f})),"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--fit", action="store_true", help="print CLASS_STATS fitted to val GT")
    args = parser.parse_args()
    val_gt = SHARED / "visdrone_val_gt"
    if args.fit:
        fit_class_stats(val_gt)
        return

    with tempfile.TemporaryDirectory() as tmp:
        start, cpu_start = time.perf_counter(), time.process_time()
        root = generate_dataset(
            Path(tmp) / "syn", args.num, args.seed, tuple(args.size), args.workers
        )
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start  # this process only (workers=1: all the work)
        synthetic = dataset_stats(load_dataset(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # annotation-only folder warning
        start = time.perf_counter()
        real = dataset_stats(load_dataset(val_gt))
        val_seconds = time.perf_counter() - start
    start = time.perf_counter()
    load_dataset(SHARED / "visdrone_sample")
    sample_seconds = time.perf_counter() - start

    w, h = args.size
    rate = args.num / seconds
    print(f"generate: {args.num} images {w}x{h}, {args.workers} worker(s): ", end="")
    print(f"{seconds:.2f} s = {rate:.1f} img/s (wall, shared machine)")
    if args.workers == 1:
        print(f"CPU time of the generating process: {1000 * cpu / args.num:.1f} ms/image")
    print(f"load visdrone_val_gt (548 files): {val_seconds:.2f} s")
    print(f"load visdrone_sample (133 images, header-only size read): {sample_seconds:.2f} s\n")
    print("| sqrt(w*h) bucket | VisDrone-val | syndrone | gap |")
    print("|---|---|---|---|")
    for name, label in synthetic["size_bucket_labels"].items():
        a, b = real["size_bucket_shares"][name], synthetic["size_bucket_shares"][name]
        print(f"| {label} px | {100 * a:.1f}% | {100 * b:.1f}% | {100 * (b - a):+.1f} |")
    for key in ("mean", "median"):
        a, b = real["objects_per_image"][key], synthetic["objects_per_image"][key]
        print(f"| objects/image ({key}) | {a:.1f} | {b:.1f} | |")
    for field, value in (("occlusion", "1"), ("occlusion", "2"), ("truncation", "1")):
        a = real[field].get(value, 0) / real["evaluated"]
        b = synthetic[field].get(value, 0) / synthetic["evaluated"]
        print(f"| {field} = {value} | {100 * a:.1f}% | {100 * b:.1f}% | |")
    a = real["ignore_regions"] / real["images"]
    b = synthetic["ignore_regions"] / synthetic["images"]
    print(f"| ignored regions / image | {a:.2f} | {b:.2f} | |")
    print("\nclass shares (VisDrone-val / syndrone):")
    for name, n in synthetic["boxes_per_class"].items():
        a = real["boxes_per_class"][name] / real["evaluated"]
        print(f"  {name:<16} {100 * a:5.1f}% / {100 * n / synthetic['evaluated']:5.1f}%")


if __name__ == "__main__":
    main()
