"""CPU forward latency at 640x640, batch 1: SSABNet presets vs ultralytics' yolov8s-p2 (peer).

Run in the benchmark environment (ultralytics is never a dependency of ssabnet)::

    bash benchmarks/setup_peer_env.sh
    .benchenv/bin/python benchmarks/model_speed.py --models baseline-s ssabnet-s ssabnet-n

Median wall time of ``--runs`` forwards after ``--warmup`` forwards, ``torch.no_grad()``, eval
mode, ``torch.set_num_threads(--threads)``. Models are timed interleaved (round-robin) so load
from other processes hits all of them alike; the process CPU time per forward is printed too (a
steadier measure of work on a shared machine). The peer is built from its yaml (random weights;
``nc`` = ours) and returns decoded boxes (DFL + sigmoid included); ours returns raw head outputs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import yaml

from ssabnet.model import ModelConfig, build_model, model_info
from ssabnet.model.info import count_flops


def build_ours(spec: str, num_classes: int) -> torch.nn.Module:
    """``"ssabnet-s"`` or a preset with field overrides, ``"baseline-s:use_p2=true,align=flow"``."""
    name, _, overrides = spec.partition(":")
    changes = {}
    for item in filter(None, overrides.split(",")):
        key, _, value = item.partition("=")
        changes[key] = yaml.safe_load(value)
    return build_model(ModelConfig(name=name, **changes), num_classes=num_classes)


def build_peer(yaml_name: str, num_classes: int) -> torch.nn.Module | None:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    try:
        from ultralytics.nn.tasks import DetectionModel
    except ImportError:
        return None
    return DetectionModel(yaml_name, nc=num_classes, verbose=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["baseline-s", "ssabnet-s"])
    parser.add_argument("--peer", default="yolov8s-p2.yaml", help="ultralytics yaml; '' to skip")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--num-classes", type=int, default=10)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models: dict[str, torch.nn.Module] = {}
    gflops: dict[str, float] = {}
    params: dict[str, int] = {}
    for name in args.models:
        model = build_ours(name, args.num_classes).eval()
        info = model_info(model, args.imgsz)
        models[name], gflops[name], params[name] = model, info["gflops"], info["params"]
    if args.peer:
        peer = build_peer(args.peer, args.num_classes)
        if peer is None:
            print(f"peer {args.peer}: ultralytics not importable (run in .benchenv); skipped")
        else:
            peer_name = f"ultralytics:{args.peer}"
            models[peer_name] = peer.eval()
            params[peer_name] = sum(p.numel() for p in peer.parameters())
            gflops[peer_name] = round(count_flops(peer, (args.imgsz, args.imgsz)) / 1e9, 3)

    images = torch.rand(1, 3, args.imgsz, args.imgsz)
    times: dict[str, list[float]] = {name: [] for name in models}
    cpu_times: dict[str, list[float]] = {name: [] for name in models}
    with torch.no_grad():
        for _ in range(args.warmup):
            for model in models.values():
                model(images)
        for _ in range(args.runs):
            for name, model in models.items():
                start, cpu_start = time.perf_counter(), time.process_time()
                model(images)
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu_start)

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, threads={args.threads}, {args.imgsz}x{args.imgsz}, batch 1, "
        f"median of {args.runs} after {args.warmup} warm-up"
    )
    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    cpu_medians = {name: statistics.median(t) * 1e3 for name, t in cpu_times.items()}
    print(
        f"{'model':32s} {'params(M)':>10s} {'GFLOPs':>8s} {'median ms':>10s} {'min ms':>8s} "
        f"{'CPU ms':>8s}"
    )
    for name in models:
        print(
            f"{name:32s} {params[name] / 1e6:10.2f} {gflops[name]:8.1f} {medians[name]:10.1f} "
            f"{min(times[name]) * 1e3:8.1f} {cpu_medians[name]:8.1f}"
        )
    peer_names = [n for n in models if n.startswith("ultralytics:")]
    for name in args.models:
        for peer_name in peer_names:
            print(
                f"ratio {name} / {peer_name}: wall {medians[name] / medians[peer_name]:.3f}, "
                f"CPU time {cpu_medians[name] / cpu_medians[peer_name]:.3f}"
            )


if __name__ == "__main__":
    main()
