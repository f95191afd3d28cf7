"""Same seed, same machine, same thread count -> the same training, bit for bit.

Two tiny trainings from scratch with one seed must give identical ``results.csv`` (every loss
and metric column; only the wall-clock ``time`` column may differ) and identical weights. The
data loader draws sample ``i``'s augmentation in epoch ``e`` from ``rng([seed, e, i])``, so the
number of loader worker processes must not matter either. What holds across machines is in
``docs/benchmarks.md`` ("Determinism").
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from ssabnet.config import Config, merge
from ssabnet.engine.checkpoint import read_checkpoint
from ssabnet.engine.train import fit


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from ssabnet.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("det_data")
    generate_dataset(root / "train", 6, seed=5, size=(160, 128))
    generate_dataset(root / "val", 2, seed=6, size=(160, 128))
    return root


def _train(data: Path, out: Path, workers: int) -> Path:
    cfg = merge(
        Config(),
        {
            "data": {"train": str(data / "train"), "val": str(data / "val")},
            "model": {"name": "baseline-n"},
            "train": {
                "epochs": 2,
                "batch": 2,
                "imgsz": 64,
                "workers": workers,
                "out": str(out),
                "seed": 7,
                "warmup_epochs": 0.5,
                "close_mosaic": 1,
                "ema_tau": 5.0,
            },
        },
    )
    return fit(cfg, progress=False)


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "results.csv").open() as handle:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(handle)]


def test_two_trainings_with_one_seed_are_identical(tiny_data, tmp_path):
    threads = torch.get_num_threads()
    first = _train(tiny_data, tmp_path / "a", workers=0)
    second = _train(tiny_data, tmp_path / "b", workers=0)
    third = _train(tiny_data, tmp_path / "c", workers=2)  # loader worker processes
    assert torch.get_num_threads() == threads
    rows = _rows(first)
    assert len(rows) == 2 and all(row["loss"] for row in rows)
    assert _rows(second) == rows
    assert _rows(third) == rows
    want = read_checkpoint(first / "weights" / "last.pt")
    for run in (second, third):
        got = read_checkpoint(run / "weights" / "last.pt")
        for key, value in want["model"].items():
            assert torch.equal(got["model"][key], value), key
        assert (run / "val" / "last" / "metrics.json").read_text() == (
            first / "val" / "last" / "metrics.json"
        ).read_text()
