"""Configuration: a tree of frozen dataclasses, YAML files that list only changes, dotted overrides.

The defaults *are* the reference recipe. An experiment YAML lists only what differs, e.g.::

    model: {name: ssabnet-s}
    loss: {box: sabl}
    train: {epochs: 100, batch: 16}

and the CLI adds dotted overrides on top (``train.lr=0.005``). Unknown keys and values of the
wrong type are errors that name the offending key — nothing is silently dropped. The resolved
config is saved in every run folder and checkpoint (:func:`config_to_dict`).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ssabnet.atomic_io import write_text_atomic
from ssabnet.errors import ConfigError
from ssabnet.losses.config import LossConfig
from ssabnet.model.config import ModelConfig
from ssabnet.protocol import MAX_DET

T = TypeVar("T")


@dataclass(frozen=True)
class DataConfig:
    """Which data to train and validate on.

    ``train``/``val`` are catalog names (``data_catalog/*.yaml``), catalog YAML paths or
    dataset folders; ``format`` forces the folder format (``auto`` detects it).
    """

    train: str = "syndrone-demo-train"
    val: str = "syndrone-demo-val"
    format: str = "auto"
    skip_invalid: bool = False  # count and skip malformed annotation lines instead of failing


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation recipe.

    The recipe defaults (optimizer, lr, warm-up, mosaic) are the one every measurement in
    docs/results.md used (AdamW from scratch, 20 epochs on synthetic drone scenes at imgsz 320).
    The ultralytics-parity switches (``lr_step=epoch``, ``loss_times_batch``,
    ``min_visible=0.1``, and the assigner's CIoU metric and tiny-box widening in ``LossConfig``)
    are on: together they gained 2.2 AP on ``baseline-n-p2`` and 0.4 AP on ``ssabnet-n`` on the
    tuning split (docs/results.md section 4; one seed, measured as a group). None of it was
    measured at full scale (VisDrone at 640 for 100+ epochs).
    """

    epochs: int = 100
    batch: int = 16
    imgsz: int = 640
    device: str = "cpu"
    workers: int = 2
    seed: int = 0
    # AdamW lr 0.002: the recipe of every measured run (docs/results.md); SGD (YOLOv8's lr 0.01
    # expects train.loss_times_batch) was not compared. sgd | adamw
    optimizer: str = "adamw"
    lr: float = 0.002
    momentum: float = 0.937  # SGD momentum / AdamW beta1
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    schedule: str = "cosine"  # cosine | linear
    # step: the lr follows the schedule every optimizer step, decaying after the warm-up;
    # epoch: ultralytics' way, the decay set once per epoch over the whole run (warm-up ramps
    # per step towards that epoch's value).
    lr_step: str = "epoch"  # step | epoch
    final_lr_ratio: float = 0.01  # lr at the last epoch = lr * final_lr_ratio
    ema: bool = True
    ema_decay: float = 0.9999
    amp: bool = True  # only takes effect on CUDA
    grad_clip: float = 10.0  # max grad-norm; 0 disables
    # Backpropagate loss x batch size (ultralytics' v8DetectionLoss returns it so): with AdamW
    # only the clipping changes (grad_clip then bounds a batch-times-larger gradient); with SGD
    # the effective lr grows by the batch size too.
    loss_times_batch: bool = True
    # Off: every measured run trained without it (the peers too). Probability; 1.0 and
    # close_mosaic 10 is YOLOv8's full-scale practice, not measured here.
    mosaic: float = 0.0
    close_mosaic: int = 0  # last N epochs without mosaic
    hflip: float = 0.5
    vflip: float = 0.0
    scale: float = 0.5  # random scale range 1 +- scale
    hsv: tuple[float, float, float] = (0.015, 0.7, 0.4)
    val_interval: int = 1
    best_metric: str = "AP"
    out: str = "runs/train"
    deterministic: bool = True
    translate: float = 0.1  # random shift, fraction of imgsz
    min_box_size: float = 2.0  # px: augmented boxes smaller than this are dropped (and counted)
    # augmented boxes keeping less of their area in the image are dropped (ultralytics: 0.1)
    min_visible: float = 0.1
    ema_tau: float = 2000.0  # EMA decay ramp length in optimizer steps
    save_every_steps: int = 0  # also write last.pt every N steps inside an epoch; 0 = per epoch
    conf_threshold: float = 0.001  # validation: low, so AP integrates the whole PR curve
    nms_iou: float = 0.6
    max_det: int = MAX_DET  # detections kept per image (ssabnet.protocol says why 500)

    def __post_init__(self) -> None:
        if self.lr_step not in ("step", "epoch"):
            raise ConfigError(f"train.lr_step: unknown value {self.lr_step!r}; expected step|epoch")
        if not 0.0 <= self.min_visible <= 1.0:
            raise ConfigError(f"train.min_visible must be in [0, 1], got {self.min_visible}")
        # Checked when the config is built, i.e. before any data is loaded or epoch runs.
        _check_ranges("train", self, _TRAIN_RANGES)


#: ``field: (rule text, predicate)`` for :class:`TrainConfig` (checked in ``__post_init__``).
_TRAIN_RANGES: dict[str, tuple[str, Any]] = {
    "epochs": (">= 1", lambda v: v >= 1),
    "batch": (">= 1", lambda v: v >= 1),
    "imgsz": ("a positive multiple of 32", lambda v: v >= 32 and v % 32 == 0),
    "workers": (">= 0", lambda v: v >= 0),
    "optimizer": ("'sgd' or 'adamw'", lambda v: v in ("sgd", "adamw")),
    "lr": ("> 0", lambda v: v > 0),
    "momentum": ("in [0, 1)", lambda v: 0 <= v < 1),
    "weight_decay": (">= 0", lambda v: v >= 0),
    "warmup_epochs": (">= 0", lambda v: v >= 0),
    "schedule": ("'cosine' or 'linear'", lambda v: v in ("cosine", "linear")),
    "final_lr_ratio": ("in [0, 1]", lambda v: 0 <= v <= 1),
    "ema_decay": ("in (0, 1)", lambda v: 0 < v < 1),
    "grad_clip": (">= 0 (0 disables)", lambda v: v >= 0),
    "mosaic": ("a probability in [0, 1]", lambda v: 0 <= v <= 1),
    "close_mosaic": (">= 0", lambda v: v >= 0),
    "hflip": ("a probability in [0, 1]", lambda v: 0 <= v <= 1),
    "vflip": ("a probability in [0, 1]", lambda v: 0 <= v <= 1),
    "scale": ("in [0, 1)", lambda v: 0 <= v < 1),
    "hsv": ("three values >= 0", lambda v: len(v) == 3 and all(x >= 0 for x in v)),
    "val_interval": (">= 1", lambda v: v >= 1),
    "best_metric": ("a metric name", lambda v: bool(v)),
    "out": ("a folder path", lambda v: bool(v)),
    "translate": ("in [0, 1)", lambda v: 0 <= v < 1),
    "min_box_size": (">= 0", lambda v: v >= 0),
    "ema_tau": ("> 0", lambda v: v > 0),
    "save_every_steps": (">= 0 (0 = per epoch)", lambda v: v >= 0),
    "conf_threshold": ("in [0, 1]", lambda v: 0 <= v <= 1),
    "nms_iou": ("in (0, 1]", lambda v: 0 < v <= 1),
    "max_det": (">= 1", lambda v: v >= 1),
}


def _check_ranges(section: str, cfg: Any, ranges: dict[str, tuple[str, Any]]) -> None:
    for name, (rule, ok) in ranges.items():
        value = getattr(cfg, name)
        if not ok(value):
            raise ConfigError(f"{section}.{name} must be {rule}, got {value!r}")


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _check_value(value: Any, annotation: Any, key: str) -> Any:
    """Validate/convert ``value`` against a (resolved) type annotation."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(annotation):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _check_value(value, option, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: {value!r} matches none of {annotation}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_value(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(
            _check_value(v, a, f"{key}[{i}]")
            for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(annotation, value, prefix=f"{key}.")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise ConfigError(f"{key}: expected a finite number, got {value!r}")
            return number
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a (partial) mapping; unknown keys and bad types raise."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]!r}; valid keys: {', '.join(sorted(names))}"
        )
    kwargs = {k: _check_value(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
    return cls(**kwargs)


def merge(cfg: T, changes: dict[str, Any], prefix: str = "") -> T:
    """Return ``cfg`` with a nested mapping of changes applied (recursive dataclasses.replace)."""
    hints = typing.get_type_hints(type(cfg))
    names = {f.name for f in dataclasses.fields(cfg)}
    updates = {}
    for key, value in changes.items():
        if key not in names:
            raise ConfigError(
                f"unknown config key {prefix}{key!r}; valid keys: {', '.join(sorted(names))}"
            )
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            updates[key] = merge(current, value, prefix=f"{prefix}{key}.")
        else:
            updates[key] = _check_value(value, hints[key], f"{prefix}{key}")
    return dataclasses.replace(cfg, **updates)


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["train.lr=0.01", "model.name=ssabnet-s"]`` -> nested dict (values parsed as YAML)."""
    nested: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        dotted, raw = item.split("=", 1)
        value = _safe_yaml(raw, f"override {item!r}") if raw != "" else ""
        node = nested
        parts = dotted.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def _safe_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` with any failure as a one-line :class:`ConfigError` (``source:line``).

    Tags that build Python objects (``!!python/...``) are refused by the safe loader.
    """
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply") from None


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, base: Config | None = None
) -> Config:
    """Defaults <- YAML file (only changes) <- dotted overrides."""
    cfg = base or Config()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
        data = _safe_yaml(text, str(path)) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        try:
            cfg = merge(cfg, data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    if overrides:
        cfg = merge(cfg, parse_overrides(overrides))
    return cfg


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain, YAML/JSON-serialisable dict (tuples become lists)."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        return value

    return convert(cfg)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Inverse of :func:`config_to_dict` (strict)."""
    return from_dict(Config, data)


def config_differences(old: Any, new: Any, ignore: tuple[str, ...] = ()) -> list[str]:
    """``["train.epochs: 2 -> 3", ...]``: dotted keys whose values differ (``ignore`` skipped)."""

    def flat(value: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, sub in value.items():
                out |= flat(sub, f"{prefix}{key}.")
            return out
        return {prefix[:-1]: value}

    a, b = flat(config_to_dict(old)), flat(config_to_dict(new))
    return [
        f"{key}: {a.get(key)!r} -> {b.get(key)!r}"
        for key in sorted(set(a) | set(b))
        if key not in ignore and a.get(key) != b.get(key)
    ]


def save_config(cfg: Config, path: str | Path) -> None:
    write_text_atomic(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
