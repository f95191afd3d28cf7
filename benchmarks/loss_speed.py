"""Speed of the box losses and the task-aligned assigner on CPU, against ultralytics.

Box losses: forward + backward on ``N`` random matched pairs (float32). Assigner: ``B`` images,
``A`` anchors (8400 = P3-P5 at 640 px, 34000 = P2-P5), ``M`` ground truths of VisDrone-like
sizes per image, uniform random scores, anchor-centred predicted boxes. The peer rows
(ultralytics ``bbox_iou`` and ``TaskAlignedAssigner``, same tensors, same topk/alpha/beta) run
only when ultralytics is importable, i.e. in the separate benchmark venv::

    bash benchmarks/setup_peer_env.sh
    OMP_NUM_THREADS=1 .benchenv/bin/python benchmarks/loss_speed.py --threads 1

ssabnet never imports ultralytics; this script is not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch

from ssabnet.assign import TaskAlignedAssigner
from ssabnet.losses import box_loss

try:  # peer, benchmark venv only
    from ultralytics.utils.metrics import bbox_iou as peer_bbox_iou
    from ultralytics.utils.tal import TaskAlignedAssigner as PeerAssigner
except ImportError:  # pragma: no cover - depends on the environment
    peer_bbox_iou = PeerAssigner = None


def timed(*functions, repeats: int) -> list[float]:
    """Median wall time (ms) of each function over ``repeats`` rounds, after one warm-up.

    The functions run interleaved within each round, so that load from other processes on a
    shared machine hits ours and the peer alike and the ratios stay meaningful.
    """
    for function in functions:
        function()
    samples: list[list[float]] = [[] for _ in functions]
    for _ in range(repeats):
        for function, bucket in zip(functions, samples, strict=True):
            start = time.perf_counter()
            function()
            bucket.append((time.perf_counter() - start) * 1000)
    return [statistics.median(bucket) for bucket in samples]


def random_pairs(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    xy = torch.rand(n, 2, generator=generator) * 600
    wh = torch.exp(torch.randn(n, 2, generator=generator) * 0.7 + 2.7)  # ~15 px median
    gt = torch.cat([xy, xy + wh], -1)
    pred = gt + torch.randn(n, 4, generator=generator) * 3
    return pred, gt


def bench_box_losses(n: int, repeats: int) -> None:
    g = torch.Generator().manual_seed(0)
    pred, gt = random_pairs(n, g)
    peer_flags = {"iou": {}, "giou": {"GIoU": True}, "diou": {"DIoU": True}, "ciou": {"CIoU": True}}
    print(f"\n### Box losses, forward + backward, N = {n:,} pairs (float32), ms\n")
    print("| kind | ssabnet | ultralytics bbox_iou | ultralytics / ssabnet |")
    print("|---|---|---|---|")
    for kind in ("iou", "giou", "diou", "ciou", "eiou", "nwd", "sabl"):

        def ours(kind=kind):
            p = pred.clone().requires_grad_(True)
            box_loss(kind, p, gt).sum().backward()

        peer_ms = float("nan")
        if peer_bbox_iou is not None and kind in peer_flags:

            def peer(kind=kind):
                p = pred.clone().requires_grad_(True)
                (1 - peer_bbox_iou(p, gt, xywh=False, **peer_flags[kind])).sum().backward()

            ours_ms, peer_ms = timed(ours, peer, repeats=repeats)
        else:
            (ours_ms,) = timed(ours, repeats=repeats)
        ratio = f"{peer_ms / ours_ms:.2f}" if peer_ms == peer_ms else "-"
        peer_text = f"{peer_ms:.1f}" if peer_ms == peer_ms else "-"
        print(f"| {kind} | {ours_ms:.1f} | {peer_text} | {ratio} |")


def anchor_grid(strides: tuple[int, ...], size: int = 640):
    points, stride_list = [], []
    for stride in strides:
        n = size // stride
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        points.append((torch.stack([xs.flatten(), ys.flatten()], -1).float() + 0.5) * stride)
        stride_list.append(torch.full((n * n,), float(stride)))
    return torch.cat(points), torch.cat(stride_list)


def bench_assigner(batch: int, num_gt: int, repeats: int, num_classes: int = 10) -> None:
    print(f"\n### Task-aligned assigner, B = {batch}, M = {num_gt}, C = {num_classes}, ms\n")
    print(
        "| anchors | ssabnet iou | ssabnet nwd | ssabnet sabl | ultralytics | ultra / ours(iou) |"
    )
    print("|---|---|---|---|---|---|")
    for strides in ((8, 16, 32), (4, 8, 16, 32)):
        g = torch.Generator().manual_seed(1)
        points, anchor_strides = anchor_grid(strides)
        num_anchors = points.shape[0]
        scores = torch.rand(batch, num_anchors, num_classes, generator=g)
        half = torch.exp(torch.randn(batch, num_anchors, 2, generator=g) * 0.5 + 2.5) / 2
        pred = torch.cat([points - half, points + half], -1)
        gt_boxes = torch.stack([random_pairs(num_gt, g)[1] for _ in range(batch)])
        gt_labels = torch.randint(0, num_classes, (batch, num_gt), generator=g)
        gt_mask = torch.ones(batch, num_gt, dtype=torch.bool)
        inputs = (scores, pred, points, anchor_strides, gt_labels, gt_boxes, gt_mask)
        metrics = ("iou", "nwd", "sabl")
        functions = [
            partial(TaskAlignedAssigner(num_classes=num_classes, metric=metric), *inputs)
            for metric in metrics
        ]
        if PeerAssigner is not None:
            peer = PeerAssigner(topk=10, num_classes=num_classes, alpha=0.5, beta=6.0)
            peer_inputs = (scores, pred, points, gt_labels[..., None], gt_boxes)
            functions.append(partial(peer, *peer_inputs, gt_mask[..., None].float()))
        times = timed(*functions, repeats=repeats)
        ours = dict(zip(metrics, times, strict=False))
        peer_ms = times[3] if len(times) > 3 else float("nan")
        peer_text = f"{peer_ms:.0f}" if peer_ms == peer_ms else "-"
        ratio = f"{peer_ms / ours['iou']:.2f}" if peer_ms == peer_ms else "-"
        print(
            f"| {num_anchors} | {ours['iou']:.0f} | {ours['nwd']:.0f} | {ours['sabl']:.0f} | "
            f"{peer_text} | {ratio} |"
        )


def bench_sabl_vs_ciou(n: int, repeats: int) -> None:
    """Both SABL readings against our CIoU, interleaved in every round (issue 21: <= 1.2x)."""
    g = torch.Generator().manual_seed(0)
    pred, gt = random_pairs(n, g)
    cases = {
        "ciou": ("ciou", {}),
        "sabl relative": ("sabl", {}),
        "sabl paper": ("sabl", {"variant": "paper"}),
    }

    def make(kind, params):
        def run():
            p = pred.clone().requires_grad_(True)
            box_loss(kind, p, gt, **params).sum().backward()

        return run

    times = timed(*(make(*case) for case in cases.values()), repeats=repeats)
    print(f"\n### SABL vs CIoU, forward + backward, N = {n:,} pairs (float32), ms\n")
    print("| kind | ms | / ciou |")
    print("|---|---|---|")
    for name, ms in zip(cases, times, strict=True):
        print(f"| {name} | {ms:.1f} | {ms / times[0]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--num-gt", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--sabl-vs-ciou", action="store_true", help="only the interleaved SABL/CIoU comparison"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), peer available: {bool(PeerAssigner)}"
    )
    if args.sabl_vs_ciou:
        bench_sabl_vs_ciou(args.pairs, args.repeats)
        return
    bench_box_losses(args.pairs, args.repeats)
    bench_assigner(args.batch, args.num_gt, args.repeats)


if __name__ == "__main__":
    main()
