"""Our TIDE taxonomy next to tidecv 1.0.1 (the authors' package): same numbers, and time.

tidecv lives in the benchmark environment only (``bash benchmarks/setup_peer_env.sh``), never in
``.venv``. Two uses:

* ``--case SEED IMAGES``: generate the fixed synthetic case of ``tests/test_analysis_tidecv.py``
  (ground truth and detections from ``numpy.random.default_rng(SEED)``) and print tidecv's AP50
  and ΔAP per error type as JSON in 0-1 units (tidecv prints 0-100). The test runs this through
  ``.benchenv/bin/python`` when it exists, and otherwise compares with the numbers stored in
  the test (printed by this command).
* ``--benchmark``: the real VisDrone2019-DET-val ground truth (548 images,
  ``../shared/data/visdrone_val_gt``) with 500 generated detections per image; times
  ``ssabnet``'s taxonomy (native: ``Evaluator.matches()`` + ``error_taxonomy``; and TIDE-compat)
  and tidecv on the same input, and prints both ΔAP tables.

Usage::

    OMP_NUM_THREADS=1 .benchenv/bin/python benchmarks/tide_compare.py --case 7 40
    OMP_NUM_THREADS=1 .benchenv/bin/python benchmarks/tide_compare.py --benchmark [--images 548]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ssabnet.analysis import ERROR_TYPES, error_taxonomy, tide_compat_tables  # noqa: E402
from ssabnet.data.record import DatasetInfo, ImageRecord  # noqa: E402
from ssabnet.evaluation import Evaluator  # noqa: E402
from ssabnet.ops.boxes import boxes_xyxy_to_xywh  # noqa: E402

TIDE_NAMES = {
    "cls": "Cls",
    "loc": "Loc",
    "both": "Both",
    "dupe": "Dupe",
    "bkg": "Bkg",
    "miss": "Miss",
}
CASE_CLASSES = ("car", "van", "pedestrian", "bus")
#: ``--clock cpu`` (default): this process's CPU time, what the single-threaded code takes on an
#: idle core (the 2-core VM is shared by several jobs); ``--clock wall``: elapsed time.
_CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
_clock = _CLOCKS["cpu"]


def synthetic_case(seed: int, images: int) -> tuple[DatasetInfo, list[ImageRecord]]:
    """Random ground truth: 0-30 objects per image of 4 classes, 3-120 px, in 800x600 frames
    (some images empty, which tidecv skips: their detections are dropped on both sides)."""
    rng = np.random.default_rng(seed)
    info = DatasetInfo("tide-case", "coco", CASE_CLASSES, (1, 2, 3, 4))
    records = []
    for i in range(images):
        n = int(rng.integers(0, 31))
        wh = np.exp(rng.uniform(np.log(3), np.log(120), (n, 2)))
        xy = rng.uniform(0, 1, (n, 2)) * (np.array([800, 600]) - wh)
        boxes = np.concatenate([xy, xy + wh], 1)
        records.append(
            ImageRecord(
                f"case{i:04d}",
                Path(f"/nonexistent/case{i:04d}.jpg"),
                800,
                600,
                boxes=boxes.astype(np.float64),
                labels=rng.integers(0, 4, n).astype(np.int64),
                ignore=np.zeros(n, bool),
                truncation=np.zeros(n, np.int64),
                occlusion=np.zeros(n, np.int64),
            )
        )
    return info, records


def generate_detections(
    records, num_classes: int, seed: int, max_per_image: int = 500, fill: bool = False
):
    """Detections with every TIDE error type: per object a detection with probability 0.8
    (jitter 3%, 25% or 60% of its size: TPs and localisation errors; 12% a wrong class), 15%
    duplicates, and background boxes up to a random number ``<= max_per_image`` (exactly
    ``max_per_image`` with ``fill``); continuous scores (no ties)."""
    rng = np.random.default_rng(seed)
    predictions = {}
    for r in records:
        keep = r.evaluated
        gt, labels = np.asarray(r.boxes, np.float64)[keep], r.labels[keep]
        hit = rng.random(len(gt)) < 0.8
        dup = rng.random(len(gt)) < 0.15
        src = np.concatenate([np.flatnonzero(hit), np.flatnonzero(hit & dup)])
        base, lab = gt[src], labels[src]
        wh = base[:, 2:] - base[:, :2]
        scale = rng.choice([0.03, 0.25, 0.6], len(src), p=[0.6, 0.3, 0.1])[:, None]
        boxes = base + rng.normal(0.0, 1.0, base.shape) * scale * np.concatenate([wh, wh], 1)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1.0)
        wrong = rng.random(len(lab)) < 0.12
        lab = np.where(wrong, (lab + rng.integers(1, num_classes, len(lab))) % num_classes, lab)
        room = max(0, max_per_image - len(boxes))
        num_bg = room if fill else int(rng.integers(0, max(1, room) + 1))
        size = np.exp(rng.uniform(np.log(3), np.log(150), (num_bg, 2)))
        xy = rng.uniform(0, 1, (num_bg, 2)) * [r.width, r.height]
        boxes = np.concatenate([boxes, np.concatenate([xy, xy + size], 1)])
        lab = np.concatenate([lab, rng.integers(0, num_classes, num_bg)])
        scores = np.concatenate([rng.uniform(0.3, 1.0, len(src)), rng.uniform(0.0, 0.7, num_bg)])
        order = np.argsort(-scores, kind="stable")[:max_per_image]
        predictions[r.image_id] = {
            "boxes": boxes[order],
            "scores": scores[order],
            "labels": lab[order].astype(np.int64),
        }
    return predictions


def tidecv_errors(info, records, predictions, max_dets: int = 100) -> tuple[dict, float]:
    """tidecv's AP50 and main-error ΔAP (0-1 units) and the seconds it took (build + run).

    ``max_dets``: tidecv's default is 100 (``Data(max_dets=...)`` of the ground truth)."""
    from tidecv import TIDE, Data

    start = _clock()
    gt, dt = Data("gt", max_dets=max_dets), Data("ssabnet")
    for image_int, r in enumerate(sorted(records, key=lambda r: r.image_id)):
        keep = r.evaluated
        for box, label in zip(
            boxes_xyxy_to_xywh(np.asarray(r.boxes, np.float64)[keep]), r.labels[keep], strict=True
        ):
            gt.add_ground_truth(image_int, int(label), box=[float(v) for v in box])
        pred = predictions.get(r.image_id)
        if pred is None:
            continue
        for box, label, score in zip(
            boxes_xyxy_to_xywh(np.asarray(pred["boxes"], np.float64)),
            pred["labels"],
            pred["scores"],
            strict=True,
        ):
            dt.add_detection(image_int, int(label), float(score), box=[float(v) for v in box])
    tide = TIDE()
    with contextlib.redirect_stdout(io.StringIO()):
        tide.evaluate(gt, dt, mode=TIDE.BOX)
        main = tide.get_main_errors()["ssabnet"]
    seconds = _clock() - start
    out = {"AP": tide.runs["ssabnet"].ap / 100.0}
    out.update({ours: main[theirs] / 100.0 for ours, theirs in TIDE_NAMES.items()})
    return out, seconds


def ours_compat(info, records, predictions) -> tuple[dict, float]:
    start = _clock()
    report = error_taxonomy(tide_compat_tables(info, records, predictions), compat=True)
    seconds = _clock() - start
    return {"AP": report.ap["all"], **report.delta_ap["all"]}, seconds


def ours_native(info, records, predictions) -> tuple[dict, float, float]:
    start = _clock()
    evaluator = Evaluator(info, records, max_dets=500)
    evaluator.process(predictions)
    tables = evaluator.matches()
    matched = _clock()
    report = error_taxonomy(tables)
    done = _clock()
    return {"AP": report.ap["all"], **report.delta_ap["all"]}, matched - start, done - matched


def _row(name: str, values: dict) -> str:
    cells = " ".join(f"{100 * values[k]:7.3f}" for k in ("AP", *ERROR_TYPES))
    return f"{name:<22} {cells}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs=2, type=int, metavar=("SEED", "IMAGES"))
    parser.add_argument("--benchmark", action="store_true")
    parser.add_argument("--images", type=int, default=None, help="(--benchmark) first N images")
    parser.add_argument("--clock", choices=sorted(_CLOCKS), default="cpu")
    args = parser.parse_args()
    global _clock
    _clock = _CLOCKS[args.clock]
    if args.case:
        seed, images = args.case
        info, records = synthetic_case(seed, images)
        predictions = generate_detections(records, info.num_classes, seed + 1, 150)
        print(json.dumps(tidecv_errors(info, records, predictions)[0], indent=1))
        return
    if not args.benchmark:
        parser.error("give --case SEED IMAGES or --benchmark")
    from eval_speed import load_val_records

    info, records = load_val_records(args.images)
    predictions = generate_detections(records, info.num_classes, seed=0, fill=True)
    n_dets = sum(len(p["scores"]) for p in predictions.values())
    print(
        f"{len(records)} images, {n_dets} detections; {platform.platform()}, "
        f"{platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    native, t_match, t_tax = ours_native(info, records, predictions)
    compat, t_compat = ours_compat(info, records, predictions)
    print(f"{'':<22} {'AP50':>7} " + " ".join(f"{t:>7}" for t in ERROR_TYPES))
    print(_row("ssabnet (native)", native))
    print(_row("ssabnet --tide-compat", compat))
    try:
        theirs, t_tide = tidecv_errors(info, records, predictions)
    except ImportError:
        theirs, t_tide = None, float("nan")
        print(
            "tidecv not installed (run benchmarks/setup_peer_env.sh and use .benchenv/bin/python)"
        )
    if theirs:
        print(_row("tidecv 1.0.1", theirs))
        diff = max(abs(theirs[k] - compat[k]) for k in theirs)
        print(f"max |tidecv - ssabnet --tide-compat| = {diff:.2e} (AP units)")
        theirs_500, t_tide_500 = tidecv_errors(info, records, predictions, max_dets=500)
        print(_row("tidecv, maxDets 500", theirs_500))
        print(
            f"{args.clock} seconds: tidecv with maxDets 500 (same detections as native) "
            f"{t_tide_500:.2f}"
        )
    print(
        f"{args.clock} seconds: ssabnet matching {t_match:.2f} + taxonomy {t_tax:.2f} "
        f"(native, maxDets 500); ssabnet --tide-compat {t_compat:.2f} (matching + taxonomy); "
        f"tidecv {t_tide:.2f}"
    )


if __name__ == "__main__":
    main()
