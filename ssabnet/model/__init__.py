"""The SSABNet detector: backbone, SSA neck, DFL head (see ``docs/architecture.md``).

Names are imported lazily so that ``ssabnet.model.config`` (read by :mod:`ssabnet.config`) does
not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PRESETS": "ssabnet.model.build",
    "build_model": "ssabnet.model.build",
    "resolve_config": "ssabnet.model.build",
    "ModelConfig": "ssabnet.model.config",
    "SSABNet": "ssabnet.model.detector",
    "capture_features": "ssabnet.model.taps",
    "model_info": "ssabnet.model.info",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ssabnet.model' has no attribute {name!r}")
