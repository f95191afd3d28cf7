"""Exact resume after ``kill -9`` mid-epoch, atomic checkpoints under a kill, NaN detection."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ssabnet.engine.checkpoint import read_checkpoint

REPO = Path(__file__).resolve().parents[1]

# The driver trains with fit(); with KILL_AT=N it sends itself SIGKILL right after the N-th
# checkpoint write (a real kill -9: no cleanup, no flush), with KILL_IN_WRITE=1 in the middle
# of that write (temp file written, not yet renamed).
DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    import ssabnet.engine.checkpoint as ckpt
    import ssabnet.engine.train as train
    from ssabnet.config import Config, merge

    data, out, resume = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    kill_at = int(os.environ.get("KILL_AT", "0"))
    calls = {"n": 0}
    real_save, real_replace = train.save_checkpoint, os.replace

    def save(state, path):
        calls["n"] += 1
        if kill_at and calls["n"] == kill_at and os.environ.get("KILL_IN_WRITE"):
            def replace(src, dst):
                os.kill(os.getpid(), signal.SIGKILL)
            ckpt.os.replace = replace
        result = real_save(state, path)
        if kill_at and calls["n"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    train.save_checkpoint = save
    cfg = merge(Config(), {
        "data": {"train": data + "/train", "val": data + "/val"},
        "model": {"name": "baseline-n"},
        "train": {"epochs": 2, "batch": 2, "imgsz": 128, "workers": 0, "out": out,
                  "warmup_epochs": 0.5, "close_mosaic": 1, "save_every_steps": 1,
                  "lr": 0.01, "ema_tau": 5.0},
    })
    train.fit(cfg, resume=resume, progress=False)
    """
)


def _run(data: Path, out: Path, resume: bool, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **env}
    return subprocess.run(
        [sys.executable, "-c", DRIVER, str(data), str(out), "1" if resume else "0"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from ssabnet.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("resume_data")
    generate_dataset(root / "train", 6, seed=3, size=(160, 128))
    generate_dataset(root / "val", 2, seed=4, size=(160, 128))
    return root


@pytest.fixture(scope="module")
def reference_run(tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = _run(tiny_data, out, resume=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kill_in_write", [False, True], ids=["after-save", "during-save"])
def test_resume_after_kill9_matches_uninterrupted(
    tiny_data, reference_run, tmp_path, kill_in_write
):
    out = tmp_path / "run"
    # 3 batches per epoch; writes: e0b1, e0b2, e0 last, e0 best, e1b1, e1b2 (6th), ...
    env = {"KILL_AT": "6"} | ({"KILL_IN_WRITE": "1"} if kill_in_write else {})
    killed = _run(tiny_data, out, resume=False, **env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    state = read_checkpoint(out / "weights" / "last.pt")  # never corrupt
    leftovers = list((out / "weights").glob(".*.tmp*"))
    assert len(leftovers) == (1 if kill_in_write else 0)
    # mid-epoch 1: epoch 0 complete, 1 or 2 batches of epoch 1 done
    assert state["epoch"] == 0 and state["epoch_step"] == (1 if kill_in_write else 2)
    resumed = _run(tiny_data, out, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not list((out / "weights").glob(".*.tmp*"))  # the cut write's temp file is cleaned
    got = read_checkpoint(out / "weights" / "last.pt")
    want = read_checkpoint(reference_run / "weights" / "last.pt")
    assert got["epoch"] == want["epoch"] == 1 and got["step"] == want["step"]
    for part in ("model",):
        for key, value in want[part].items():
            assert torch.equal(got[part][key], value), key
    for key, value in want["ema"]["module"].items():
        assert torch.equal(got["ema"]["module"][key], value), key
    assert got["optimizer"]["param_groups"][0]["lr"] == want["optimizer"]["param_groups"][0]["lr"]
    assert _rows(out / "results.csv") == _rows(reference_run / "results.csv")


def test_resume_refuses_to_overwrite_and_needs_a_run(tiny_data, reference_run, tmp_path):
    from ssabnet.config import Config, merge
    from ssabnet.engine.train import fit

    cfg = merge(Config(), {"train": {"out": str(reference_run)}})
    with pytest.raises(ValueError, match="--resume"):
        fit(cfg)
    with pytest.raises(FileNotFoundError, match="last.pt"):
        fit(merge(Config(), {"train": {"out": str(tmp_path / "none")}}), resume=True)


def test_non_finite_loss_names_epoch_batch_and_images(tiny_data):
    from ssabnet.data.loader import DetectionSamples, build_loader
    from ssabnet.data.visdrone import read_visdrone
    from ssabnet.engine.distributed import DistEnv
    from ssabnet.engine.schedule import build_scheduler
    from ssabnet.engine.train import NonFiniteLossError, Optimization, train_one_epoch

    records = read_visdrone(tiny_data / "train").records
    loader = build_loader(DetectionSamples(records, 64), 2, 0, shuffle=False)
    model = torch.nn.Conv2d(3, 1, 1)
    calls = {"n": 0}

    def criterion(outputs, targets):
        calls["n"] += 1
        loss = outputs.mean() * (float("nan") if calls["n"] == 2 else 1.0)
        return {"loss": loss, "box": loss.detach()}

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(NonFiniteLossError) as err:
        opt = Optimization(
            model,
            criterion,
            optimizer,
            build_scheduler(optimizer, 10, 0),
            torch.amp.GradScaler("cpu", enabled=False),
            grad_clip=10.0,
        )
        train_one_epoch(opt, loader, 4, DistEnv(0, 1, 0, torch.device("cpu")), progress=False)
    message = str(err.value)
    ids = [r.image_id for r in records[2:4]]
    assert "epoch 4, batch 1" in message and all(i in message for i in ids)
    assert "box=nan" in message
