"""CPU prediction throughput on full-resolution VisDrone frames, with and without slicing.

``ssabnet.predict`` end to end (JPEG decode, letterbox, forward, decode, class-aware NMS, tile
merging) on the first ``--num`` images of ``../shared/data/visdrone_sample`` (1400x1050 and
2000x1500 frames). The network has random weights: speed does not depend on them, but NMS
load does, so ``--conf`` is set to keep a realistic few hundred candidates::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/predict_speed.py --model ssabnet-n --num 4
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from ssabnet.data.record import DatasetInfo
from ssabnet.engine.predict import LoadedCheckpoint, predict
from ssabnet.model.build import build_model

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "visdrone_sample"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ssabnet-n")
    parser.add_argument("--num", type=int, default=4)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--slice", type=int, default=640)
    parser.add_argument("--overlap", type=float, default=0.2)
    parser.add_argument("--conf", type=float, default=0.001)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    files = sorted((DATA / "images").glob("*.jpg"))[: args.num]
    if not files:
        raise SystemExit(f"no images under {DATA}/images")
    model = build_model(args.model, num_classes=10).eval().to(args.device)
    info = DatasetInfo("bench", "visdrone", tuple(f"c{i}" for i in range(10)), tuple(range(1, 11)))
    loaded = LoadedCheckpoint(model, info, {}, 0, {}, Path("-"))
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}, threads {args.threads}, {args.model}, {len(files)} images, "
        f"imgsz {args.imgsz}, device {args.device}"
    )
    predict(loaded, files[:1], imgsz=args.imgsz, conf=args.conf, device=args.device)  # warm-up
    print("| mode | images/s | s/image | detections/image |")
    print("|---|---|---|---|")
    for label, slice_size in (("full frame", None), (f"sliced {args.slice}+full", args.slice)):
        start = time.perf_counter()
        preds = predict(
            loaded,
            files,
            imgsz=args.imgsz,
            conf=args.conf,
            device=args.device,
            slice_size=slice_size,
            overlap=args.overlap,
            batch=8,
        )
        elapsed = time.perf_counter() - start
        dets = sum(len(p["scores"]) for p in preds.values()) / len(files)
        print(
            f"| {label} | {len(files) / elapsed:.3f} | {elapsed / len(files):.2f} | {dets:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
