"""CPU training-step throughput and peak memory at 640: SSABNet presets vs ultralytics' peers.

One training step = forward + loss + backward + SGD step on the SAME batch for every model
(``--batch`` synthetic drone scenes letterboxed to ``--imgsz``, with their boxes). Each model
runs in its own fresh process so its peak resident memory (``ru_maxrss``) is its own. Peers
(``yolov8n``, ``yolov8n-p2``, built from ultralytics' yaml with ``nc`` = ours, trained with their
own ``v8DetectionLoss``) need the benchmark environment; ultralytics is never used by ssabnet::

    bash benchmarks/setup_peer_env.sh
    .benchenv/bin/python benchmarks/train_speed.py --models baseline-n baseline-n-p2 ssabnet-n \\
        --peers yolov8n.yaml yolov8n-p2.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def make_batch(path: Path, batch: int, imgsz: int) -> None:
    """Synthetic scenes -> ``{"images": uint8 [B,3,S,S], "targets": [...]}`` saved to ``path``."""
    from ssabnet.data.loader import DetectionSamples, collate_detection
    from ssabnet.data.synthetic import generate_dataset
    from ssabnet.data.visdrone import read_visdrone

    root = generate_dataset(path.parent / "data", batch, seed=0, size=(640, 480))
    samples = DetectionSamples(read_visdrone(root).records, imgsz)
    images, targets, _ = collate_detection([samples[i] for i in range(batch)])
    torch.save({"images": images, "targets": targets}, path)


def ours_step(name: str, data: dict, num_classes: int):
    from ssabnet.losses.config import LossConfig
    from ssabnet.losses.criterion import build_criterion
    from ssabnet.model.build import build_model

    model = build_model(name, num_classes=num_classes).train()
    criterion = build_criterion(LossConfig(), num_classes, model.reg_max)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.937, nesterov=True)
    images = data["images"].float() / 255

    def step() -> float:
        loss = criterion(model(images), data["targets"])["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss)

    return step


def peer_step(yaml_name: str, data: dict, num_classes: int):
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(yaml_name, nc=num_classes, verbose=False).train()
    model.args = get_cfg()  # default hyper-parameters (box/cls/dfl gains) for v8DetectionLoss
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.937, nesterov=True)
    images = data["images"].float() / 255
    size = images.shape[-1]
    idx, cls, boxes = [], [], []
    for i, target in enumerate(data["targets"]):
        xyxy = target["boxes"] / size  # normalised, then centre-size as ultralytics expects
        boxes.append(torch.cat([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], 1))
        cls.append(target["labels"].float()[:, None])
        idx.append(torch.full((len(xyxy),), float(i)))
    batch = {
        "img": images,
        "batch_idx": torch.cat(idx),
        "cls": torch.cat(cls),
        "bboxes": torch.cat(boxes),
    }

    def step() -> float:
        loss, _ = model.loss(batch)
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        return float(loss.sum())

    return step


def run_one(kind: str, name: str, data_path: Path, steps: int, warmup: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = torch.load(data_path, weights_only=True)
    batch = len(data["targets"])
    step = (ours_step if kind == "ours" else peer_step)(name, data, 10)
    for _ in range(warmup):
        step()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "model": name if kind == "ours" else f"ultralytics:{name}",
        "batch": batch,
        "images_per_s": batch * steps / wall,
        "s_per_step": wall / steps,
        "cpu_s_per_step": cpu / steps,
        "peak_rss_mib": peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["baseline-n", "baseline-n-p2", "ssabnet-n"])
    parser.add_argument("--peers", nargs="*", default=["yolov8n.yaml", "yolov8n-p2.yaml"])
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", nargs=3, metavar=("KIND", "NAME", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, name, data = args.one
        result = run_one(kind, name, Path(data), args.steps, args.warmup, args.threads)
        print(json.dumps(result))
        return
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}, threads {args.threads}, batch {args.batch}, imgsz {args.imgsz}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "batch.pt"
        make_batch(data_path, args.batch, args.imgsz)
        jobs = [("ours", m) for m in args.models] + [("peer", p) for p in args.peers]
        print("| model | images/s | s/step | CPU s/step | peak RSS (MiB) |")
        print("|---|---|---|---|---|")
        for kind, name in jobs:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                kind,
                name,
                str(data_path),
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--threads",
                str(args.threads),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"| {name} | failed: {proc.stderr.strip().splitlines()[-1]} | | | |")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"| {r['model']} | {r['images_per_s']:.2f} | {r['s_per_step']:.2f} | "
                f"{r['cpu_s_per_step']:.2f} | {r['peak_rss_mib']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
