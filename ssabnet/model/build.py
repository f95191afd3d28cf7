"""``build_model``: the one place that reads :class:`ModelConfig`, and the named presets.

Presets are fully specified ``ModelConfig`` values; ablations are derived from their base with
``dataclasses.replace`` (one part switched each). Variant names map explicitly to classes below.

Families (``S`` = ``n``, ``s`` or ``m``):

* ``baseline-S``: YOLOv8 (P3-P5, nearest-upsampling PAN-FPN, concat fusion, strided convs).
* ``baseline-S-p2``: the same network with the stride-4 level: the YOLOv8-P2 architecture
  (``yolov8-p2.yaml``). The fair reference for SSA, which also predicts on P2..P5.
* ``baseline-S-p2-<part>``: the P2 baseline plus ONE SSA part (:data:`P2_ADDITIONS`).
* ``ssabnet-S``: all SSA parts; ``ssabnet-S-<suffix>``: one part switched off or swapped
  (:data:`ABLATIONS`).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import torch
from torch import nn

from ssabnet.errors import ConfigError, InputFileError, MissingInputError
from ssabnet.model.backbone import CSPBackbone
from ssabnet.model.blocks import scale_channels, scale_depth
from ssabnet.model.config import ModelConfig
from ssabnet.model.detector import SSABNet
from ssabnet.model.head import DetectHead
from ssabnet.model.neck import SSANeck
from ssabnet.model.ssa import (
    CARAFE,
    BlurDownsample,
    ConcatFusion,
    DeformAlign,
    DySample,
    FADEUpsample,
    FlowAlign,
    GatedFusion,
    NearestUpsample,
    StridedConvDownsample,
)

_SCALES = {  # width, depth, max_channels (YOLOv8)
    "n": (0.25, 0.33, 1024),
    "s": (0.5, 0.33, 1024),
    "m": (0.75, 0.67, 768),
}
# Reference (width = 1) neck output channels of P2..P5 and C2f repeats (YOLOv8 / YOLOv8-p2).
_NECK_CHANNELS = (128, 256, 512, 1024)
_NECK_REPEATS = 3

# One-part ablations of ssabnet-<scale>: suffix -> field changes.
ABLATIONS: dict[str, dict[str, object]] = {
    "nop2": {"use_p2": False},
    "noalign": {"align": "none"},
    "nogate": {"fusion": "concat"},
    "noblur": {"downsample": "conv"},
    "carafe": {"upsampler": "carafe"},
    "dysample": {"upsampler": "dysample"},
    "nearest": {"upsampler": "nearest"},
    "deform": {"align": "deform"},
    "noreduce": {"reduce_deep": False},
}

# One SSA part added to baseline-<scale>-p2: suffix -> field changes. With ABLATIONS' "nearest",
# "noalign", "nogate" and "noblur" (one part removed from ssabnet) they answer "what does each
# SSA part add over a plain P2 model".
P2_ADDITIONS: dict[str, dict[str, object]] = {
    "fade": {"upsampler": "fade"},
    "flow": {"align": "flow"},
    "gate": {"fusion": "gate"},
    "blur": {"downsample": "blur"},
    "reduce": {"reduce_deep": True},
}


def _presets() -> dict[str, ModelConfig]:
    presets: dict[str, ModelConfig] = {}
    for scale, (width, depth, max_channels) in _SCALES.items():
        common = {"width": width, "depth": depth, "max_channels": max_channels}
        presets[f"baseline-{scale}"] = ModelConfig(
            name=f"baseline-{scale}",
            use_p2=False,
            upsampler="nearest",
            up_kernel=3,
            align="none",
            fusion="concat",
            downsample="conv",
            reduce_deep=False,
            **common,
        )
        plain_p2 = dataclasses.replace(
            presets[f"baseline-{scale}"], name=f"baseline-{scale}-p2", use_p2=True
        )
        presets[plain_p2.name] = plain_p2
        for suffix, changes in P2_ADDITIONS.items():
            name = f"{plain_p2.name}-{suffix}"
            presets[name] = dataclasses.replace(plain_p2, name=name, **changes)
        # k_up = 3 (not FADE/CARAFE's 5): a 2.8x cheaper reassembly at P2 for little loss.
        full = ModelConfig(
            name=f"ssabnet-{scale}",
            use_p2=True,
            upsampler="fade",
            up_kernel=3,
            align="flow",
            fusion="gate",
            downsample="blur",
            reduce_deep=True,
            **common,
        )
        presets[full.name] = full
        for suffix, changes in ABLATIONS.items():
            name = f"{full.name}-{suffix}"
            presets[name] = dataclasses.replace(full, name=name, **changes)
    return presets


PRESETS: dict[str, ModelConfig] = _presets()


def _pick(kind: str, name: str, options: dict[str, object]) -> object:
    if name not in options:
        raise ConfigError(f"unknown {kind} {name!r}; known: {', '.join(options)}")
    return options[name]


def resolve_config(cfg: str | ModelConfig, num_classes: int | None = None) -> ModelConfig:
    """The preset named by ``cfg`` with every non-``None`` field of ``cfg`` applied on top."""
    if isinstance(cfg, str):
        cfg = ModelConfig(name=cfg)
    if cfg.name not in PRESETS:
        raise ConfigError(f"unknown model {cfg.name!r}; known: {', '.join(PRESETS)}")
    base = PRESETS[cfg.name]
    changes = {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(cfg)
        if getattr(cfg, f.name) is not None and f.name != "name"
    }
    resolved = dataclasses.replace(base, **changes)
    if num_classes is not None:
        resolved = dataclasses.replace(resolved, num_classes=num_classes)
    if resolved.num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {resolved.num_classes}")
    if resolved.up_kernel % 2 == 0:
        raise ConfigError(f"up_kernel must be odd, got {resolved.up_kernel}")
    return resolved


def build_model(name_or_cfg: str | ModelConfig, num_classes: int | None = None) -> SSABNet:
    """Build a detector from a preset name or a :class:`ModelConfig`.

    Example::

        model = build_model("ssabnet-n", num_classes=10).eval()
        outputs = model(torch.rand(1, 3, 640, 640))
        outputs["cls_logits"].shape  # [1, 34000, 10]: P2..P5 = 160^2 + 80^2 + 40^2 + 20^2

    Raises ``ValueError`` for unknown names/variants, ``FileNotFoundError`` for a missing
    ``backbone_weights`` file.
    """
    cfg = resolve_config(name_or_cfg, num_classes)
    upsampler = _pick(
        "upsampler",
        cfg.upsampler,
        {
            "nearest": NearestUpsample,
            "carafe": partial(CARAFE, up_kernel=cfg.up_kernel),
            "fade": partial(FADEUpsample, up_kernel=cfg.up_kernel),
            "dysample": DySample,
        },
    )
    align = _pick("align", cfg.align, {"none": None, "flow": FlowAlign, "deform": DeformAlign})
    fusion = _pick("fusion", cfg.fusion, {"concat": ConcatFusion, "gate": GatedFusion})
    downsample = _pick(
        "downsample", cfg.downsample, {"conv": StridedConvDownsample, "blur": BlurDownsample}
    )
    backbone = CSPBackbone(cfg.width, cfg.depth, cfg.max_channels)
    neck = SSANeck(
        backbone.out_channels,
        [scale_channels(c, cfg.width, cfg.max_channels) for c in _NECK_CHANNELS],
        num_blocks=scale_depth(_NECK_REPEATS, cfg.depth),
        upsampler=upsampler,
        align=align,
        fusion=fusion,
        downsample=downsample,
        use_p2=cfg.use_p2,
        reduce_deep=cfg.reduce_deep,
    )
    head = DetectHead(neck.out_channels, neck.strides, cfg.num_classes, cfg.reg_max)
    model = SSABNet(backbone, neck, head)
    model.config = cfg
    if cfg.backbone_weights:
        load_backbone_weights(model.backbone, cfg.backbone_weights)
    return model


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load a local backbone state dict (a bare state dict, or under ``state_dict``/``model``;
    keys may carry a ``backbone.`` prefix). Any missing, unexpected or mis-shaped key is a
    ``ValueError`` naming them - a partial load would silently train from a different start."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"backbone weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise InputFileError(f"{path}: expected a state dict, got {type(state).__name__}")
    state = {k.removeprefix("backbone."): v for k, v in state.items()}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if tuple(state[k].shape) != tuple(own[k].shape)
    )
    problems = [
        f"{what} ({len(keys)}): {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape", mismatched))
        if keys
    ]
    if problems:
        raise InputFileError(f"{path}: backbone weights do not match; " + "; ".join(problems))
    backbone.load_state_dict(state)
