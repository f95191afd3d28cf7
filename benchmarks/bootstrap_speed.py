"""Paired bootstrap cost at VisDrone-val scale: AP50 vs AP@[.5:.95] (ten re-matchings).

Input: the real VisDrone2019-DET-val ground truth (548 images) with the 500 generated detections
per image of ``benchmarks/tide_compare.py --benchmark`` (274,000), matched once by the
Evaluator; the detector is compared with itself (the cost does not depend on the difference).
Times are process CPU seconds (the 2-core VM is shared).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bootstrap_speed.py [--n-boot 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_speed import load_val_records  # noqa: E402
from tide_compare import generate_detections  # noqa: E402

from ssabnet.evaluation import Evaluator, bootstrap_ap_difference  # noqa: E402
from ssabnet.evaluation.matching import rematch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args()
    info, records = load_val_records(None)
    evaluator = Evaluator(info, records)
    evaluator.process(generate_detections(records, info.num_classes, seed=0, fill=True))
    tables = evaluator.matches()
    start = time.process_time()
    rematch(tables, 0.75)
    print(f"rematch at one IoU threshold: {time.process_time() - start:.2f} CPU s")
    for metric in ("AP50", "AP"):
        start = time.process_time()
        bootstrap_ap_difference(tables, tables, n_boot=args.n_boot, metric=metric)
        print(
            f"bootstrap {metric}, {args.n_boot} resamples: {time.process_time() - start:.2f} CPU s"
        )


if __name__ == "__main__":
    main()
