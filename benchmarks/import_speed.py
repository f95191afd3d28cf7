"""Importing another detector's results as a run, at VisDrone-val scale.

Ground truth: the real VisDrone2019-DET-val annotations (548 files, ../shared/data/visdrone_val_gt,
no images). Detections: the seeded synthetic generator of ``eval_speed.py`` (500 per image,
274,000 in all), written as a COCO results file with SSABNet ids (42 MB).

Timed, best of ``--repeat`` (wall clock):

* ``read``: :func:`ssabnet.evaluation.load_predictions` (JSON parse, validation, id and class
  decisions, grouping per image);
* ``score``: ``Evaluator.process`` + ``evaluate`` (COCO protocol, maxDets 500) on what was read;
* ``import``: :func:`ssabnet.run_import.import_predictions` end to end (read, score, write the
  run folder: predictions.json, metrics.json, matching tables, run card);
* ``val (before)``: what ``ssabnet val --predictions P --out metrics.json`` did before this
  change (``read_coco_results`` + score + ``save_evaluation``), for reference.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/import_speed.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_speed import generate_detections, load_val_records  # noqa: E402

from ssabnet.data.record import DetectionDataset  # noqa: E402
from ssabnet.evaluation import (  # noqa: E402
    Evaluator,
    load_predictions,
    read_coco_results,
    save_evaluation,
    write_coco_results,
)
from ssabnet.run_import import import_predictions  # noqa: E402


def best_of(repeat: int, action) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    info, records = load_val_records(None)
    dataset = DetectionDataset(info, records, Path("."))
    work = Path(tempfile.mkdtemp(prefix="import_speed."))
    try:
        results = write_coco_results(
            work / "results.json", generate_detections(records), info, records
        )
        loaded = load_predictions(results, dataset)
        print(
            f"{len(records)} images, {loaded.num_detections} detections, "
            f"{results.stat().st_size / 1e6:.1f} MB; " + "; ".join(loaded.decisions)
        )

        def score():
            evaluator = Evaluator(info, records)
            evaluator.process(loaded.predictions)
            return evaluator.evaluate()

        def import_run():
            import_predictions(
                results, dataset, work / "run", dataset_spec="visdrone-val-gt", overwrite=True
            )

        def val_before():
            predictions = read_coco_results(results, info, records)
            evaluator = Evaluator(info, records)
            evaluator.process(predictions)
            save_evaluation(evaluator, evaluator.evaluate(), work / "before" / "metrics.json")

        timings = {
            "read": best_of(args.repeat, lambda: load_predictions(results, dataset)),
            "score": best_of(args.repeat, score),
            "import": best_of(args.repeat, import_run),
            "val (before)": best_of(args.repeat, val_before),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    for name, seconds in timings.items():
        print(f"{name:>13}: {seconds:6.2f} s (best of {args.repeat})")


if __name__ == "__main__":
    main()
