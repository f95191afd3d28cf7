"""Checkpoint I/O (atomic, safe, tamper/truncation detection), RNG state, EMA, LR schedule."""

from __future__ import annotations

import math
import os
import pickle
import random

import numpy as np
import pytest
import torch
from torch import nn

from ssabnet.engine.checkpoint import (
    CheckpointError,
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ssabnet.engine.ema import ModelEMA
from ssabnet.engine.schedule import build_scheduler, lr_factor


def _state():
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": 3,
        "rng": rng_state(),
        "config": {"train": {"lr": 0.1, "hsv": [0.1, 0.2, 0.3]}},
        "class_names": ["car", "bus"],
        "metrics": {"AP": 0.25},
    }


def test_round_trip_and_no_temp_files_left(tmp_path):
    state = _state()
    path = save_checkpoint(state, tmp_path / "w" / "last.pt")
    loaded = read_checkpoint(path)
    assert loaded["epoch"] == 3 and loaded["class_names"] == ["car", "bus"]
    assert torch.equal(loaded["model"]["weight"], state["model"]["weight"])
    assert loaded["optimizer"]["state"][0]["momentum_buffer"].shape == (2, 3)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]
    # Overwriting replaces the file atomically (same name, new content).
    save_checkpoint({**_state(), "epoch": 4}, path)
    assert read_checkpoint(path)["epoch"] == 4


def test_truncated_file_gives_clear_error(tmp_path):
    path = save_checkpoint(_state(), tmp_path / "last.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"last\.pt: cannot be read"):
        read_checkpoint(path)


def test_modified_tensor_bytes_detected_by_digest(tmp_path):
    path = save_checkpoint(_state(), tmp_path / "last.pt")
    state = torch.load(path, weights_only=True)
    state["model"]["weight"][0, 0] += 1.0  # a tamperer who rewrites a valid file
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="digest"):
        read_checkpoint(path)


def test_code_carrying_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    torch.save({"format": "ssabnet-checkpoint", "payload": Evil()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="evil.pt"):
        read_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_foreign_and_missing_files(tmp_path):
    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an SSABNet checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        read_checkpoint(tmp_path / "nothere.pt")


def test_rng_state_round_trip_through_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    path = save_checkpoint({"rng": rng_state()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(read_checkpoint(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_ema_update_hand_computed():
    model = nn.Linear(1, 1, bias=False)
    nn.init.constant_(model.weight, 1.0)
    ema = ModelEMA(model, decay=0.5, tau=1e-9)  # ramp done immediately: d = 0.5
    nn.init.constant_(model.weight, 3.0)
    ema.update(model)
    assert ema.module.weight.item() == pytest.approx(2.0)
    restored = ModelEMA(model)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 1 and restored.module.weight.item() == pytest.approx(2.0)


def test_lr_schedule_warmup_cosine_linear():
    assert lr_factor(0, 100, 10) == pytest.approx(1 / 11)
    assert lr_factor(9, 100, 10) == pytest.approx(10 / 11)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine", 0.01) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(55, 100, 10, "linear", 0.0) == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, "cosine", 0.01) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="unknown lr schedule"):
        lr_factor(0, 10, 0, "step")
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.2)
    sched = build_scheduler(opt, 100, 10)
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)
    state = sched.state_dict()
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.2)
    sched2 = build_scheduler(opt2, 100, 10)
    sched2.load_state_dict(state)
    opt2.step()
    sched2.step()
    opt.step()
    sched.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])


def test_lr_schedule_per_epoch_like_ultralytics():
    # 10 epochs x 20 steps, 20 warm-up steps: f(e / 10) per epoch, cosine from 1 to 0.01.
    def f(progress: float) -> float:
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    args = (200, 20, "cosine", 0.01)
    assert lr_factor(5, *args, steps_per_epoch=20) == pytest.approx(6 / 21 * f(0.0))
    assert lr_factor(20, *args, steps_per_epoch=20) == pytest.approx(f(0.1))
    assert lr_factor(39, *args, steps_per_epoch=20) == pytest.approx(f(0.1))  # constant in epoch
    assert lr_factor(40, *args, steps_per_epoch=20) == pytest.approx(f(0.2))
    last = lr_factor(199, *args, steps_per_epoch=20)
    assert last == pytest.approx(f(0.9)) and last > 0.01  # the last epoch stays above lrf
    # per step (default) decays from the end of the warm-up instead
    assert lr_factor(20, *args) == pytest.approx(1.0)


def test_train_config_checks_lr_step_and_min_visible():
    from ssabnet.config import ConfigError, TrainConfig

    assert TrainConfig(lr_step="epoch", min_visible=0.1).lr_step == "epoch"
    with pytest.raises(ConfigError, match="train.lr_step"):
        TrainConfig(lr_step="batch")
    with pytest.raises(ConfigError, match="train.min_visible"):
        TrainConfig(min_visible=1.5)
