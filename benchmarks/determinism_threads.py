"""Same seed, torch intra-op threads 1 vs 2 (and 1 again): are the results.csv rows identical?

Trains baseline-n three times from scratch in one process (6 synthetic scenes at 160x128,
imgsz 64, batch 2, 2 epochs, seed 7) with ``torch.set_num_threads(1)``, ``(2)``, ``(1)`` and
compares every ``results.csv`` column but the wall-clock ``time``. Figures: docs/benchmarks.md
("Determinism"). Run: ``PYTHONPATH=. python benchmarks/determinism_threads.py``.
"""

import csv
import tempfile
from pathlib import Path

import torch

from ssabnet.config import Config, merge
from ssabnet.data.synthetic import generate_dataset
from ssabnet.engine.train import fit


def main() -> None:
    root = Path(tempfile.mkdtemp())
    generate_dataset(root / "train", 6, seed=5, size=(160, 128))
    generate_dataset(root / "val", 2, seed=6, size=(160, 128))

    def run(threads: int, name: str) -> list[dict[str, str]]:
        torch.set_num_threads(threads)
        cfg = merge(
            Config(),
            {
                "data": {"train": str(root / "train"), "val": str(root / "val")},
                "model": {"name": "baseline-n"},
                "train": {
                    "epochs": 2,
                    "batch": 2,
                    "imgsz": 64,
                    "workers": 0,
                    "out": str(root / name),
                    "seed": 7,
                    "warmup_epochs": 0.5,
                    "close_mosaic": 1,
                    "ema_tau": 5.0,
                },
            },
        )
        out = fit(cfg, progress=False)
        with (out / "results.csv").open() as handle:
            return [{k: v for k, v in r.items() if k != "time"} for r in csv.DictReader(handle)]

    one, two, one_again = run(1, "t1"), run(2, "t2"), run(1, "t1b")
    print("threads 1 vs 1 identical:", one == one_again)
    print("threads 1 vs 2 identical:", one == two)
    for x, y in zip(one, two, strict=True):
        print("epoch", x["epoch"], "differs in", {k: (x[k], y[k]) for k in x if x[k] != y[k]})
    print("torch", torch.__version__, "CPU capability", torch.backends.cpu.get_cpu_capability())


if __name__ == "__main__":
    main()
