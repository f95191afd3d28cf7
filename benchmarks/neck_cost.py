"""CPU time of the neck's forward and backward per SSA variant (which SSA part costs what).

The backbone runs once under ``no_grad``; each pass is the neck alone with
``loss = sum of mean squared outputs``, timed with ``time.process_time`` (CPU seconds of this
process, so a loaded machine does not inflate it), mean of ``--steps`` after one warm-up::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/neck_cost.py --imgsz 640 --batch 2
"""

from __future__ import annotations

import argparse
import time

import torch

from ssabnet.model.build import build_model

DEFAULT_MODELS = [
    "baseline-n-p2",
    "ssabnet-n",
    "ssabnet-n-nearest",
    "ssabnet-n-noalign",
    "ssabnet-n-nogate",
    "ssabnet-n-noblur",
    "ssabnet-n-noreduce",
]


def neck_cpu_ms(name: str, images: torch.Tensor, steps: int) -> tuple[float, float]:
    """Mean CPU ms of the neck's (forward, backward) for preset ``name``."""
    torch.manual_seed(0)
    model = build_model(name, num_classes=10).train()
    with torch.no_grad():
        features = [f.detach() for f in model.backbone(images)]
    forward, backward = [], []
    for step in range(steps + 1):
        start = time.process_time()
        outputs = model.neck(features)
        loss = sum(o.float().square().mean() for o in outputs)
        middle = time.process_time()
        loss.backward()
        end = time.process_time()
        model.zero_grad(set_to_none=True)
        if step:  # the first pass is a warm-up
            forward.append(middle - start)
            backward.append(end - middle)
    return 1000 * sum(forward) / steps, 1000 * sum(backward) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = torch.rand(args.batch, 3, args.imgsz, args.imgsz)
    print(f"imgsz {args.imgsz}, batch {args.batch}, {args.threads} thread(s), CPU ms per pass")
    print("| neck of | forward ms | backward ms |\n|---|---|---|")
    for name in args.models:
        forward, backward = neck_cpu_ms(name, images, args.steps)
        print(f"| {name} | {forward:.0f} | {backward:.0f} |", flush=True)


if __name__ == "__main__":
    main()
