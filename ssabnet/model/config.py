"""Model configuration (owned by the model package; composed into :class:`ssabnet.config.Config`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    name: str = "ssabnet-s"
    num_classes: int = 10
