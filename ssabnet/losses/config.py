"""Loss configuration (owned by the losses package; composed into :class:`ssabnet.config.Config`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LossConfig:
    box: str = "sabl"
