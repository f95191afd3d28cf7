"""Exponential moving average of model weights (Polyak averaging with a warm-up ramp).

The evaluated and exported model is the EMA copy: it is smoother than the raw weights, which
matters with the small batches drone images force. The decay ramps up as
``decay * (1 - exp(-updates / tau))`` so the first updates are not dominated by the random init
(the ramp used by YOLOv5/v8; ``tau = 2000`` updates).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ModelEMA:
    """EMA copy of a model's floating-point parameters and buffers.

    Args:
        model: the trained model (unwrapped, not DDP).
        decay: asymptotic decay.
        tau: ramp length in updates.
        updates: number of updates already done (restored on resume).
    """

    def __init__(
        self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0
    ):
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = updates

    def current_decay(self) -> float:
        return self.decay * (1 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """``ema = d * ema + (1 - d) * model`` for floating tensors; others are copied."""
        self.updates += 1
        d = self.current_decay()
        model_state = model.state_dict()
        for name, ema_value in self.module.state_dict().items():
            value = model_state[name].detach()
            if ema_value.dtype.is_floating_point:
                ema_value.mul_(d).add_(value, alpha=1 - d)
            else:
                ema_value.copy_(value)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
        self.decay = float(state["decay"])
