"""Peak memory of content-aware reassembly: in-place offset loop vs the naive unfold version.

    .venv/bin/python benchmarks/reassembly_memory.py            # peak memory table
    .venv/bin/python benchmarks/reassembly_memory.py --timing   # CPU time, 1 thread, min of 5

Each measurement runs in a fresh subprocess: inputs are allocated, the resident-set size is
read, one reassembly runs (no_grad forward, or forward + backward), and the peak RSS increase
(``ru_maxrss``, Linux) is reported next to the size of one output map and the time of the call.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

CASES = [  # (name, channels, low-res height, low-res width, k_up)
    ("P3 of the issue: 80x80x256 out, k=5", 256, 40, 40, 5),
    ("P2 of ssabnet-s: 160x160x128 out, k=3", 128, 80, 80, 3),
    ("P2 of ssabnet-s: 160x160x128 out, k=5", 128, 80, 80, 5),
]


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def child(method: str, channels: int, height: int, width: int, k: int, backward: bool) -> None:
    import torch

    from ssabnet.model.ssa import reassemble, reassemble_unfold

    torch.set_num_threads(2)
    fn = {"loop": reassemble, "unfold": reassemble_unfold}[method]
    # warm up the allocator and kernels on a tiny case so one-off costs are not counted
    fn(torch.rand(1, 2, 4, 4), torch.rand(1, k * k, 8, 8), k, 2)
    features = torch.rand(1, channels, height, width, requires_grad=backward)
    logits = torch.rand(1, k * k, 2 * height, 2 * width, requires_grad=backward)
    base = current_rss_mb()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if backward:
        out = fn(features, logits.softmax(dim=1), k, 2)
        out.sum().backward()
    else:
        with torch.no_grad():
            out = fn(features, logits.softmax(dim=1), k, 2)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"extra_mb": max(peak, peak_before) - base, "seconds": seconds}))


def main() -> None:
    print("| case | pass | output map MB | loop: peak extra MB | unfold: peak extra MB |", end="")
    print(" loop ms | unfold ms |")
    print("|---|---|---|---|---|---|---|")
    for name, channels, height, width, k in CASES:
        out_mb = channels * 4 * height * width * 4 / 2**20
        for backward in (False, True):
            results = {}
            for method in ("loop", "unfold"):
                cmd = [sys.executable, __file__, "--child", method, str(channels), str(height)]
                cmd += [str(width), str(k), str(int(backward))]
                results[method] = json.loads(subprocess.check_output(cmd, text=True))
            print(
                f"| {name} | {'fwd+bwd' if backward else 'fwd'} | {out_mb:.0f} | "
                f"{results['loop']['extra_mb']:.0f} | {results['unfold']['extra_mb']:.0f} | "
                f"{results['loop']['seconds'] * 1e3:.0f} | "
                f"{results['unfold']['seconds'] * 1e3:.0f} |"
            )


def timing() -> None:
    import torch

    from ssabnet.model.ssa import reassemble, reassemble_unfold

    torch.set_num_threads(1)
    for name, channels, height, width, k in CASES:
        features = torch.rand(1, channels, height, width, requires_grad=True)
        logits = torch.rand(1, k * k, 2 * height, 2 * width, requires_grad=True)
        for method, fn in (("loop", reassemble), ("unfold", reassemble_unfold)):
            forward, total = [], []
            for _ in range(5):
                start = time.thread_time()
                out = fn(features, logits.softmax(dim=1), k, 2)
                middle = time.thread_time()
                out.sum().backward()
                forward.append(middle - start)
                total.append(time.thread_time() - start)
            print(
                f"{name} | {method}: forward {min(forward) * 1e3:.1f} ms, "
                f"forward+backward {min(total) * 1e3:.1f} ms"
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--timing":
        timing()
    elif len(sys.argv) > 1 and sys.argv[1] == "--child":
        method, *numbers = sys.argv[2:]
        c, h, w, k, bwd = (int(v) for v in numbers)
        child(method, c, h, w, k, bool(bwd))
    else:
        main()
