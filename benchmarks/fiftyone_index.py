"""Benchmark: index N synthetic images x P predictions each into FiftyOne (images/s).

Usage::

    FIFTYONE_DATABASE_URI=mongodb://127.0.0.1:27017 python benchmarks/fiftyone_index.py \\
        --num-images 548 --preds-per-image 500 [--fields 2] [--fiftyone-eval]

Without ``FIFTYONE_DATABASE_URI`` FiftyOne starts its own ``mongod``. The images are generated
once with :func:`ssabnet.data.synthetic.generate_dataset` (320x256, cached in ``--work``); the
predictions are every evaluated ground-truth box jittered by N(0, 1.5 px) with a random score,
topped up to ``--preds-per-image`` with random boxes (scores below the true ones), written as a
COCO results file (one per field, seeds 0..N-1). Timed:
:func:`ssabnet.integrations.fiftyone.index_dataset` end to end (validation, our evaluator,
``add_samples``, the registered evaluation runs, saved views) on a new dataset, then again on the
existing dataset (re-index of the same fields); with ``--fiftyone-eval``, FiftyOne's own
``evaluate_detections`` (COCO, IoU 0.5, ``max_preds=500``) on the same fields.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def make_predictions(dataset, preds_per_image: int, seed: int = 0) -> dict:
    """Contract-4 predictions: jittered GT plus random boxes, ``preds_per_image`` per image."""
    rng = np.random.default_rng(seed)
    predictions = {}
    for record in dataset.records:
        gt = record.boxes[record.evaluated].astype(np.float64)[:preds_per_image]
        labels = record.labels[record.evaluated][:preds_per_image]
        jittered = gt + rng.normal(0.0, 1.5, gt.shape)
        n_random = preds_per_image - len(gt)
        xy = rng.uniform(0, [record.width - 8, record.height - 8], (n_random, 2))
        wh = rng.uniform(4, 40, (n_random, 2))
        random_boxes = np.concatenate([xy, xy + wh], axis=1)
        boxes = np.concatenate([jittered, random_boxes])
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, record.width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, record.height)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 0.5)
        predictions[record.image_id] = {
            "boxes": boxes,
            "scores": np.concatenate(
                [rng.uniform(0.3, 1.0, len(gt)), rng.uniform(0.001, 0.5, n_random)]
            ),
            "labels": np.concatenate([labels, rng.integers(0, dataset.info.num_classes, n_random)]),
        }
    return predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=548)
    parser.add_argument("--preds-per-image", type=int, default=500)
    parser.add_argument("--fields", type=int, default=1, help="prediction fields (seeds 0..N-1)")
    parser.add_argument("--work", type=Path, default=Path("runs/bench_fiftyone"))
    parser.add_argument(
        "--fiftyone-eval",
        action="store_true",
        help="then time FiftyOne's own evaluate_detections on the same fields",
    )
    args = parser.parse_args()

    from ssabnet.data import load_dataset
    from ssabnet.data.synthetic import generate_dataset
    from ssabnet.evaluation import write_coco_results
    from ssabnet.integrations.fiftyone import (
        GT_FIELD,
        MAX_DET,
        delete_dataset,
        eval_key,
        index_dataset,
        list_datasets,
    )

    data_dir = args.work / f"syn_{args.num_images}"
    if not (data_dir / "annotations").is_dir():
        t0 = time.perf_counter()
        generate_dataset(data_dir, args.num_images, seed=0, size=(320, 256))
        print(f"generated {args.num_images} images in {time.perf_counter() - t0:.1f} s")
    dataset = load_dataset(data_dir)
    preds = {}
    for seed in range(args.fields):
        path = args.work / f"run_{seed}" / "predictions.json"
        write_coco_results(
            path,
            make_predictions(dataset, args.preds_per_image, seed),
            dataset.info,
            dataset.records,
        )
        preds[f"run_{seed}"] = path
    num_preds = sum(len(json.loads(p.read_text())) for p in preds.values())
    num_gt = sum(r.num_objects for r in dataset.records)
    name = "ssabnet-bench-fiftyone"
    if name in list_datasets():
        delete_dataset(name)
    timings = {}
    for label in ("new dataset", "re-index (replaces the fields)"):
        t0, c0 = time.perf_counter(), time.process_time()
        fo_dataset = index_dataset(dataset, preds, name)
        timings[label] = (time.perf_counter() - t0, time.process_time() - c0)
    maps = {f: fo_dataset.load_evaluation_results(eval_key(f)).mAP() for f in preds}
    if args.fiftyone_eval:
        t0, c0 = time.perf_counter(), time.process_time()
        for f in preds:
            results = fo_dataset.evaluate_detections(
                f,
                gt_field=GT_FIELD,
                eval_key=f"fiftyone_{f}",
                method="coco",
                iou=0.5,
                classwise=True,
                compute_mAP=True,
                max_preds=MAX_DET,
                progress=False,
            )
            maps[f"fiftyone_{f}"] = results.mAP()
        timings["FiftyOne evaluate_detections (all fields)"] = (
            time.perf_counter() - t0,
            time.process_time() - c0,
        )
    delete_dataset(name)
    print(
        f"{len(dataset.records)} images, {num_gt} GT objects, {len(preds)} field(s), "
        f"{num_preds} predictions"
    )
    for label, (seconds, cpu) in timings.items():
        print(
            f"  {label}: {seconds:.1f} s wall, {cpu:.1f} s CPU of this process "
            f"({len(dataset.records) / seconds:.1f} images/s)"
        )
    print(f"  load average at the end: {os.getloadavg()}")
    print("  mAP:", {k: round(float(v), 4) for k, v in maps.items()})


if __name__ == "__main__":
    main()
