"""DDP through torchrun: 2 CPU processes (gloo) against one process with the same global batch."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ssabnet.engine.checkpoint import read_checkpoint

REPO = Path(__file__).resolve().parents[1]

DRIVER = textwrap.dedent(
    """
    import json, sys
    from ssabnet.config import Config, merge
    mode, data, out = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "train":
        from ssabnet.engine.train import fit
        cfg = merge(Config(), {
            "data": {"train": data + "/train", "val": data + "/val"},
            "model": {"name": "baseline-n"},
            "loss": {"normalize": "num_fg", "balance": False},
            "train": {"epochs": 2, "batch": 4, "imgsz": 128, "workers": 0, "out": out,
                      "warmup_epochs": 0.0, "close_mosaic": 1, "lr": 0.01, "ema": False,
                      "optimizer": "sgd"},
        })
        fit(cfg, progress=False)
    else:  # evaluate a checkpoint with the sharded evaluation of the training loop
        from ssabnet.data.loader import DetectionSamples, build_loader
        from ssabnet.data.visdrone import read_visdrone
        from ssabnet.engine.distributed import cleanup_distributed, setup_distributed
        from ssabnet.engine.predict import load_checkpoint
        from ssabnet.engine.train import evaluate
        from ssabnet.evaluation import Evaluator
        env = setup_distributed("cpu")
        val = read_visdrone(data + "/val")
        model = load_checkpoint(sys.argv[4]).model
        loader = build_loader(DetectionSamples(val.records, 128), 2, 0, shuffle=False,
                              rank=env.rank, world_size=env.world_size)
        metrics = evaluate(model, loader, Evaluator(val.info, val.records), env=env)
        if env.is_main:
            json.dump(metrics, open(out, "w"))
        cleanup_distributed()
    """
)


def _launch(args: list[str], nproc: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    script = Path(args[1]).parent / "driver.py"
    script.write_text(DRIVER)
    if nproc == 1:
        cmd = [sys.executable, str(script), *args]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={nproc}",
            str(script),
            *args,
        ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    from ssabnet.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("ddp")
    generate_dataset(root / "data" / "train", 8, seed=5, size=(160, 128))
    generate_dataset(root / "data" / "val", 3, seed=6, size=(160, 128))
    _launch(["train", str(root / "data"), str(root / "single")], 1)
    _launch(["train", str(root / "data"), str(root / "ddp")], 2)
    return root


def _rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_ddp_training_matches_single_process(ddp_runs):
    single = read_checkpoint(ddp_runs / "single" / "weights" / "last.pt")
    ddp = read_checkpoint(ddp_runs / "ddp" / "weights" / "last.pt")
    assert single["step"] == ddp["step"] == 4  # 8 images / global batch 4 * 2 epochs
    # Why not bit-equal: on CPU there is no SyncBatchNorm, so each rank normalises BatchNorm
    # with its own 2 images instead of 4, and the criterion divides by the rank's own number of
    # positives before DDP averages gradients. Measured on this data: both runs move the
    # weights by the same distance (0.410 vs 0.414 in L2 over 4 SGD steps) while the update
    # directions differ (BatchNorm gradients of 2 vs 4 tiny images); the final weights agree to
    # 0.6 %. Tolerances: moves within 10 %, weights within 1.5 %.
    from ssabnet.model.build import build_model

    torch.manual_seed(0)  # fit() seeds torch with train.seed = 0 before building the model
    init = build_model("baseline-n", num_classes=10).state_dict()
    move_single = move_ddp = wdiff = wnorm = 0.0
    for key, value in single["model"].items():
        if not value.dtype.is_floating_point or "running" in key:
            continue
        move_single += float((value - init[key]).pow(2).sum())
        move_ddp += float((ddp["model"][key] - init[key]).pow(2).sum())
        wdiff += float((value - ddp["model"][key]).pow(2).sum())
        wnorm += float(value.pow(2).sum())
    assert move_single > 0.01, "training did not move the weights"
    assert move_ddp**0.5 == pytest.approx(move_single**0.5, rel=0.1)
    assert (wdiff / wnorm) ** 0.5 < 0.015
    rows_single, rows_ddp = (
        _rows(ddp_runs / "single" / "results.csv"),
        _rows(ddp_runs / "ddp" / "results.csv"),
    )
    for a, b in zip(rows_single, rows_ddp, strict=True):
        assert float(b["loss"]) == pytest.approx(float(a["loss"]), rel=0.1)
        # Near-identical weights give near-identical AP (metrics are in [0, 1]).
        assert float(b["AP50"]) == pytest.approx(float(a["AP50"]), abs=0.02)


@pytest.mark.slow
def test_ddp_evaluation_equals_single_process(ddp_runs):
    ckpt = str(ddp_runs / "single" / "weights" / "last.pt")
    data = str(ddp_runs / "data")
    _launch(["eval", data, str(ddp_runs / "m1.json"), ckpt], 1)
    _launch(["eval", data, str(ddp_runs / "m2.json"), ckpt], 2)
    m1 = json.loads((ddp_runs / "m1.json").read_text())
    m2 = json.loads((ddp_runs / "m2.json").read_text())
    assert m1["n_images"] == m2["n_images"] == 3  # the padded duplicate shard entry is merged
    for key in ("AP", "AP50", "AP75", "APs", "AR100"):
        # Same weights, same images, same post-processing: only float summation order inside a
        # batch of 1 vs 2 images may differ (~1e-7 in scores), far below a 1e-6 change in AP.
        assert m2[key] == pytest.approx(m1[key], abs=1e-6), key
