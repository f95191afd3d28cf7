"""Learning-rate schedule: linear warm-up, then cosine or linear decay, per optimizer step.

The factor multiplies each param group's base lr. It is a pure function of the step so a resumed
run follows the same curve (the scheduler's state is just the step count).
"""

from __future__ import annotations

import math
from functools import partial

import torch

from ssabnet.errors import ConfigError


def _decay(progress: float, schedule: str, final_ratio: float) -> float:
    progress = min(1.0, max(0.0, progress))
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if schedule == "cosine" else 1 - progress
    return final_ratio + (1 - final_ratio) * shape


def lr_factor(
    step: int,
    total_steps: int,
    warmup_steps: int,
    schedule: str = "cosine",
    final_ratio: float = 0.01,
    steps_per_epoch: int = 0,
) -> float:
    """Multiplier of the base lr at optimizer ``step`` (0-based).

    Per step (``steps_per_epoch = 0``): linear warm-up from ``1 / (warmup_steps + 1)`` to 1 over
    ``warmup_steps`` steps, then decay from 1 at the end of warm-up to ``final_ratio`` at
    ``total_steps`` (cosine or linear).

    Per epoch (``steps_per_epoch > 0``, ultralytics' schedule): the decay ``f(e / E)`` over the
    whole run (``E = total_steps / steps_per_epoch`` epochs) changes once per epoch ``e``, so
    the last epoch runs at ``f((E - 1) / E)``, above ``final_ratio``; during the warm-up the
    factor ramps linearly towards the current epoch's ``f``.
    """
    if schedule not in ("cosine", "linear"):
        raise ConfigError(f"unknown lr schedule {schedule!r} (expected 'cosine' or 'linear')")
    ramp = (step + 1) / (warmup_steps + 1) if step < warmup_steps else 1.0
    if steps_per_epoch > 0:
        epochs = max(1, round(total_steps / steps_per_epoch))
        return ramp * _decay((step // steps_per_epoch) / epochs, schedule, final_ratio)
    if step < warmup_steps:
        return ramp
    span = max(1, total_steps - warmup_steps)
    return _decay((step - warmup_steps) / span, schedule, final_ratio)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int,
    schedule: str = "cosine",
    final_ratio: float = 0.01,
    steps_per_epoch: int = 0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepping :func:`lr_factor` once per optimizer step (``steps_per_epoch >
    0``: the decay changes once per epoch)."""
    lr_factor(0, total_steps, warmup_steps, schedule, final_ratio)  # validates ``schedule``
    fn = partial(
        lr_factor,
        total_steps=total_steps,
        warmup_steps=warmup_steps,
        schedule=schedule,
        final_ratio=final_ratio,
        steps_per_epoch=steps_per_epoch,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
