"""Learning-rate schedule: linear warm-up, then cosine or linear decay, per optimizer step.

The factor multiplies each param group's base lr. It is a pure function of the step so a resumed
run follows the same curve (the scheduler's state is just the step count).
"""

from __future__ import annotations

import math
from functools import partial

import torch


def lr_factor(
    step: int,
    total_steps: int,
    warmup_steps: int,
    schedule: str = "cosine",
    final_ratio: float = 0.01,
) -> float:
    """Multiplier of the base lr at optimizer ``step`` (0-based).

    Warm-up: linear from ``1 / (warmup_steps + 1)`` to 1 over ``warmup_steps`` steps. Decay:
    from 1 at the end of warm-up to ``final_ratio`` at ``total_steps`` (cosine or linear).
    """
    if schedule not in ("cosine", "linear"):
        raise ValueError(f"unknown lr schedule {schedule!r} (expected 'cosine' or 'linear')")
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if schedule == "cosine" else 1 - progress
    return final_ratio + (1 - final_ratio) * shape


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int,
    schedule: str = "cosine",
    final_ratio: float = 0.01,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepping :func:`lr_factor` once per optimizer step."""
    lr_factor(0, total_steps, warmup_steps, schedule, final_ratio)  # validates ``schedule``
    fn = partial(
        lr_factor,
        total_steps=total_steps,
        warmup_steps=warmup_steps,
        schedule=schedule,
        final_ratio=final_ratio,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
