"""Evaluation speed at VisDrone-val scale: plain pycocotools vs the SSABNet Evaluator.

Ground truth: the real VisDrone2019-DET-val annotations (548 files, ../shared/data/visdrone_val_gt,
no images; each image's size is the smallest standard VisDrone frame holding all its boxes).
Detections: generated, seeded -- each evaluated object detected with probability 0.85 with a
scale-relative jitter and 10% wrong class, plus false positives, capped at 500 per image.

Timed (best of ``--repeat`` for the fast runs; ``--clock wall`` or ``cpu`` = process CPU time):

* ``plain pycocotools``: ``COCO`` index + ``COCOeval.evaluate()`` + ``accumulate()`` at the default
  settings (4 area ranges) with ``maxDets = [1, 10, 100, 500]``, on the same GT/detection dicts.
* ``Evaluator(protocol="coco", backend=...)`` for ``faster`` and ``pycocotools``: the full
  ``evaluate()`` (ignore regions, per-image cap, 7 area ranges, summary).
* ``Evaluator(protocol="visdrone-official")``, and ``Evaluator.matches()``.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval_speed.py [--images 548] [--repeat 3] \
        [--clock wall|cpu] [--skip-slow] [--skip-plain]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from ssabnet.data import load_dataset
from ssabnet.evaluation import METRIC_KEYS, Evaluator
from ssabnet.evaluation.coco_protocol import _gc_paused, build_coco_dicts, run_cocoeval

VAL_GT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "visdrone_val_gt"
FRAME_SIZES = ((960, 540), (1360, 765), (1400, 788), (1400, 1050), (1920, 1080), (2000, 1500))


def load_val_records(limit: int | None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "annotation-only folder: sizes unknown"
        dataset = load_dataset(VAL_GT, format="visdrone")
    records = []
    for r in dataset.records[:limit]:
        boxes = np.concatenate([r.boxes, r.ignore_regions])
        need_w, need_h = boxes[:, 2].max(initial=1), boxes[:, 3].max(initial=1)
        w, h = next(
            ((w, h) for w, h in FRAME_SIZES if w >= need_w and h >= need_h),
            (int(np.ceil(need_w)), int(np.ceil(need_h))),
        )
        records.append(dataclasses.replace(r, width=w, height=h))
    return dataset.info, records


def generate_detections(records, seed: int = 0, max_per_image: int = 500):
    rng = np.random.default_rng(seed)
    predictions = {}
    for r in records:
        keep = r.labels >= 0
        gt, labels = r.boxes[keep].astype(np.float64), r.labels[keep]
        hit = rng.random(len(gt)) < 0.85
        gt, labels = gt[hit], labels[hit]
        wh = gt[:, 2:] - gt[:, :2]
        boxes = gt + rng.normal(0.0, 0.1, gt.shape) * np.concatenate([wh, wh], 1)
        labels = np.where(rng.random(len(labels)) < 0.1, rng.integers(0, 10, len(labels)), labels)
        num_fp = max(0, max_per_image - len(boxes))
        xy = rng.uniform(0, 1, (num_fp, 2)) * [r.width, r.height]
        size = np.exp(rng.uniform(np.log(3), np.log(150), (num_fp, 2)))
        boxes = np.concatenate([boxes, np.concatenate([xy, xy + size], 1)])
        labels = np.concatenate([labels, rng.integers(0, 10, num_fp)])
        scores = np.concatenate([rng.uniform(0.2, 1.0, len(gt)), rng.uniform(0.0, 0.6, num_fp)])
        order = np.argsort(-scores, kind="stable")[:max_per_image]
        predictions[r.image_id] = {
            "boxes": boxes[order],
            "scores": scores[order],
            "labels": labels[order].astype(np.int64),
        }
    return predictions


def plain_cocoeval(gt: dict, dt: dict, backend: str) -> tuple[float, dict]:
    """Plain COCOeval at default settings (4 area ranges), maxDets extended to 500; AP/AR read
    from the arrays at 500 (``summarize()`` would report AP at 100)."""
    start = clock()
    with contextlib.redirect_stdout(io.StringIO()):
        if backend == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval

            coco_gt, coco_dt = COCO(), COCO()
            coco_gt.dataset, coco_dt.dataset = gt, dt
            coco_gt.createIndex()
            coco_dt.createIndex()
            evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        else:
            from faster_coco_eval import COCO, COCOeval_faster

            coco_gt, coco_dt = COCO(gt), COCO(dt)
            evaluator = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=print)
        evaluator.params.maxDets = [1, 10, 100, 500]
        evaluator.evaluate()
        evaluator.accumulate()
    seconds = clock() - start
    prec, rec = evaluator.eval["precision"], evaluator.eval["recall"]

    def mean(x):
        return float(x[x > -1].mean())

    numbers = {
        "AP": mean(prec[..., 0, 3]),
        "AP50": mean(prec[0, :, :, 0, 3]),
        "AP75": mean(prec[5, :, :, 0, 3]),
    }
    for j, md in enumerate([1, 10, 100, 500]):
        numbers[f"AR{md}"] = mean(rec[:, :, 0, j])
    return seconds, numbers


def clock() -> float:
    """Wall clock by default; ``--clock cpu`` uses this process's CPU time, which is what the
    single-threaded evaluators would take on an idle machine (the 2-core CI VM is shared)."""
    return CLOCK()


CLOCK = time.perf_counter


def timed(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = clock()
        result = fn()
        best = min(best, clock() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="first N val images (all: 548)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-plain", action="store_true", help="skip the slow baseline")
    parser.add_argument(
        "--skip-slow", action="store_true", help="skip Evaluator(backend='pycocotools')"
    )
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    info, records = load_val_records(args.images)
    predictions = generate_detections(records)
    num_dets = sum(len(p["scores"]) for p in predictions.values())
    num_gt = sum(int(r.evaluated.sum()) for r in records)
    print(
        f"{args.clock} clock; {len(records)} images, {num_gt} evaluated GT, {num_dets} dets "
        f"({platform.processor() or platform.machine()}, numpy {np.__version__})"
    )

    def run(protocol, backend):
        evaluator = Evaluator(info, records, protocol=protocol, backend=backend)
        evaluator.process(predictions)
        return evaluator, evaluator.evaluate()

    results = {}
    runs = [
        ("Evaluator coco / faster", "coco", "faster"),
        ("Evaluator coco / pycocotools", "coco", "pycocotools"),
        ("Evaluator visdrone-official", "visdrone-official", "faster"),
    ]
    if args.skip_slow:
        runs.pop(1)
    for name, protocol, backend in runs:
        repeat = args.repeat if backend == "faster" else 1
        seconds, (evaluator, metrics) = timed(lambda p=protocol, b=backend: run(p, b), repeat)
        results[name] = (seconds, metrics)
        print(
            f"{name:<32} {seconds:8.2f} s   AP {metrics['AP']:.4f} AP50 {metrics['AP50']:.4f} "
            f"AR500 {metrics['AR500']:.4f}"
        )
    seconds, tables = timed(evaluator.matches, 1)
    print(f"{'Evaluator.matches() tables':<32} {seconds:8.2f} s   {len(tables.dets)} det rows")

    fast = results["Evaluator coco / faster"][1]
    ref = results.get("Evaluator coco / pycocotools", (None, fast))[1]
    diffs = [abs(fast[k] - ref[k]) for k in METRIC_KEYS]
    diffs += [
        abs(fast["per_class"][c][k] - ref["per_class"][c][k])
        for c in fast["per_class"]
        for k in fast["per_class"][c]
        if fast["per_class"][c][k] is not None
    ]
    print(f"max |faster - pycocotools| over all metrics and per-class values: {max(diffs):.2e}")

    # where the time of the fast path goes
    evaluator = Evaluator(info, records)
    evaluator.process(predictions)
    start = clock()
    views = evaluator._coco_views()
    t_views = clock() - start
    for gc_state in ("on", "paused"):
        context = _gc_paused() if gc_state == "paused" else contextlib.nullcontext()
        with context:
            start = clock()
            gt, dt = build_coco_dicts(info, evaluator.records, evaluator._all_predictions(), views)
            t_dicts = clock() - start
            t_run, _ = timed(lambda g=gt, d=dt: run_cocoeval(g, d, "faster", 500), args.repeat)
        print(
            f"  breakdown (GC {gc_state}): ignore regions + cap {t_views:.2f} s, COCO dicts "
            f"{t_dicts:.2f} s, faster-coco-eval 7 ranges {t_run:.2f} s"
        )

    backends = ["faster"] if args.skip_plain else ["faster", "pycocotools"]
    plain = {}
    for backend in backends:
        seconds, numbers = plain_cocoeval(gt, dt, backend)
        plain[backend] = seconds
        delta = max(abs(numbers[k] - fast[k]) for k in numbers)
        print(
            f"{'plain ' + backend + ' (4 ranges)':<32} {seconds:8.2f} s   AP {numbers['AP']:.4f} "
            f"AP50 {numbers['AP50']:.4f} AR500 {numbers['AR500']:.4f}  "
            f"max |plain - Evaluator| {delta:.1e}"
        )
    if "pycocotools" in plain:
        ours = results["Evaluator coco / faster"][0]
        print(
            f"speed-up vs plain pycocotools: Evaluator faster {plain['pycocotools'] / ours:.1f}x, "
            f"plain faster-coco-eval {plain['pycocotools'] / plain['faster']:.1f}x"
        )


if __name__ == "__main__":
    main()
