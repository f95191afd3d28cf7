"""The training loop, in plain sight: ``fit(cfg)`` -> ``train_one_epoch`` + ``evaluate``.

No trainer class and no hooks: ``fit`` reads the config, builds data / model / criterion /
optimizer / schedule / EMA, optionally restores a checkpoint, then alternates one epoch of
training with a validation pass by the evaluator, logging ``results.csv`` and writing
``weights/last.pt`` (every epoch, and every ``train.save_every_steps`` steps) and
``weights/best.pt`` atomically. Under ``torchrun`` the same code runs DDP: rank 0 logs and
writes; validation predictions of all ranks are gathered and evaluated once.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ssabnet import runs as run_folder
from ssabnet.atomic_io import write_text_atomic
from ssabnet.config import Config, config_from_dict, config_to_dict, merge, save_config
from ssabnet.data import DetectionDataset, load_dataset
from ssabnet.data.loader import DetectionSamples, build_loader, num_batches
from ssabnet.data.transforms import AugmentConfig
from ssabnet.engine.checkpoint import (
    CheckpointError,
    git_commit,
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ssabnet.engine.distributed import (
    DistEnv,
    all_reduce_mean,
    all_true,
    barrier,
    broadcast_object,
    cleanup_distributed,
    gather_dicts,
    setup_distributed,
)
from ssabnet.engine.ema import ModelEMA
from ssabnet.engine.schedule import build_scheduler
from ssabnet.errors import ConfigError, InputFileError, OverwriteError
from ssabnet.evaluation import Evaluator, save_evaluation
from ssabnet.evaluation.evaluator import HEADLINE_METRICS, METRIC_KEYS
from ssabnet.losses.criterion import build_criterion
from ssabnet.model.build import build_model, resolve_config
from ssabnet.postprocess import boxes_input_to_original, postprocess
from ssabnet.protocol import MAX_DET


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/inf; the message names the epoch, batch and image ids."""


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch; ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def build_optimizer(model: nn.Module, cfg_train: Any) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW; no weight decay on biases and normalisation weights (1-D)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg_train.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg_train.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg_train.lr, momentum=cfg_train.momentum, nesterov=True)
    if cfg_train.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg_train.lr, betas=(cfg_train.momentum, 0.999))
    raise ConfigError(f"unknown optimizer {cfg_train.optimizer!r} (expected 'sgd' or 'adamw')")


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, dynamic_ncols=True, leave=False)


@dataclass
class Optimization:
    """What one optimizer step touches, and how it steps (the recipe's clip, loss scale, AMP).

    Attributes:
        model: the (possibly DDP-wrapped) model.
        criterion: ``criterion(outputs, targets) -> {"loss": scalar, "<term>": ...}``.
        scheduler: stepped once per optimizer step.
        ema: the EMA of the weights, updated after every step (``None``: off).
        grad_clip: max gradient norm (0 disables).
        loss_scale: the loss is multiplied by this before ``backward`` (``grad_clip`` applies
            to the scaled gradient; the logged terms are not scaled).
        amp: float16 autocast (CUDA only).
    """

    model: nn.Module
    criterion: Callable[..., dict[str, torch.Tensor]]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    ema: ModelEMA | None = None
    grad_clip: float = 0.0
    loss_scale: float = 1.0
    amp: bool = False


@dataclass
class PartialEpoch:
    """An epoch stopped after ``batches_done`` batches whose summed loss terms are ``loss_sums``
    (a mid-epoch checkpoint)."""

    batches_done: int = 0
    loss_sums: dict[str, float] = field(default_factory=dict)


def train_one_epoch(
    opt: Optimization,
    loader: DataLoader,
    epoch: int,
    env: DistEnv,
    *,
    resume: PartialEpoch | None = None,
    save_every_steps: int = 0,
    save_partial: Callable[[PartialEpoch], None] | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Train one epoch; return the mean of each loss term over its batches.

    Also returns ``dropped_boxes``: boxes the augmentation removed this epoch (all ranks),
    because they became smaller than ``train.min_box_size`` or left the image.

    Args:
        opt: model, criterion, optimizer, schedule, scaler, EMA and the step's recipe.
        loader: yields ``(uint8 images [B, 3, S, S], targets, metas)``.
        resume: the part of this epoch already done (mid-epoch resume; the loader's sampler
            must already skip those batches).
        save_every_steps, save_partial: every that many batches ``save_partial(progress)``
            writes a resumable checkpoint.

    Raises:
        NonFiniteLossError: the loss is NaN/inf on any rank (all ranks stop together).
    """
    model, optimizer, scaler = opt.model, opt.optimizer, opt.scaler
    model.train()
    device = env.device
    use_amp = opt.amp and device.type == "cuda"
    start_batch = resume.batches_done if resume is not None else 0
    sums: dict[str, float] = dict(resume.loss_sums) if resume is not None else {}
    total = num_batches(loader)
    bar = _progress(loader, total - start_batch, f"epoch {epoch}", progress and env.is_main)
    batch_index = start_batch
    for images, targets, metas in bar:
        images = images.to(device, non_blocking=True).float().div_(255)
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            outputs = model(images)
            terms = opt.criterion(outputs, targets)
        loss = terms["loss"]
        if not all_true(bool(torch.isfinite(loss).item()), env):
            detail = ", ".join(
                f"{k}={float(v.detach()):.4g}" for k, v in terms.items() if v.numel() == 1
            )
            raise NonFiniteLossError(
                f"non-finite loss at epoch {epoch}, batch {batch_index} (rank {env.rank}, images "
                f"{[m.image_id for m in metas]}): {detail}. Lower train.lr or check these "
                "images' annotations."
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss * opt.loss_scale if opt.loss_scale != 1.0 else loss).backward()
        if opt.grad_clip > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), opt.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        opt.scheduler.step()
        if opt.ema is not None:
            opt.ema.update(unwrap(model))
        batch_index += 1
        logged = {
            k: float(all_reduce_mean(v.detach().float(), env))
            for k, v in terms.items()
            if v.numel() == 1
        }
        for key, value in logged.items():
            sums[key] = sums.get(key, 0.0) + value
        dropped = torch.tensor(float(sum(m.num_dropped for m in metas)), device=device)
        sums["dropped_boxes"] = sums.get("dropped_boxes", 0.0) + float(
            all_reduce_mean(dropped, env) * env.world_size
        )
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(
                {k: f"{v:.3f}" for k, v in logged.items()}
                | {"lr": f"{optimizer.param_groups[0]['lr']:.2e}"}
            )
        due = save_every_steps > 0 and batch_index % save_every_steps == 0
        if save_partial is not None and due and batch_index < total:  # (epoch end saves anyway)
            save_partial(PartialEpoch(batch_index, dict(sums)))
    means = {k: v / max(1, total) for k, v in sums.items() if k != "dropped_boxes"}
    return means | {"dropped_boxes": sums.get("dropped_boxes", 0.0)}


@torch.no_grad()
def predict_loader(
    model: nn.Module,
    loader: DataLoader,
    env: DistEnv,
    conf_threshold: float = 0.001,
    iou_threshold: float = 0.6,
    max_det: int = MAX_DET,
    progress: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """Run ``model`` over a letterbox-only loader; detections in ORIGINAL pixels by image_id.

    Under DDP every rank predicts its shard and the union is returned on every rank.
    """
    model.eval()
    predictions: dict[str, dict[str, np.ndarray]] = {}
    bar = _progress(loader, num_batches(loader), "val", progress and env.is_main)
    for images, _targets, metas in bar:
        outputs = model(images.to(env.device, non_blocking=True).float().div_(255))
        detections = postprocess(outputs, conf_threshold, iou_threshold, max_det)
        for meta, det in zip(metas, detections, strict=True):
            if meta.letterbox is None:
                raise ValueError("evaluation loader must letterbox only (no augmentation)")
            predictions[meta.image_id] = {
                "boxes": boxes_input_to_original(det["boxes"], meta.letterbox).cpu().numpy(),
                "scores": det["scores"].cpu().numpy(),
                "labels": det["labels"].cpu().numpy(),
            }
    return gather_dicts(predictions, env)


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    evaluator: Any,
    *,
    env: DistEnv,
    conf_threshold: float = 0.001,
    iou_threshold: float = 0.6,
    max_det: int = MAX_DET,
    progress: bool = False,
) -> dict[str, Any]:
    """Predict the loader's images and score them with ``evaluator`` (reset/process/evaluate).

    Rank 0 evaluates the gathered predictions and the metrics are broadcast to all ranks.
    """
    predictions = predict_loader(
        model, loader, env, conf_threshold, iou_threshold, max_det, progress
    )
    metrics = None
    if env.is_main:
        evaluator.reset()
        evaluator.process(predictions)
        metrics = evaluator.evaluate()
    return broadcast_object(metrics, env)


def _write_results_row(path: Path, row: dict[str, Any]) -> None:
    """Add a row to ``results.csv`` (header from the first row written).

    The file is rewritten atomically, so a kill never leaves a half-written row."""
    exists = path.is_file() and path.stat().st_size > 0
    old = path.read_text() if exists else ""
    header = old.splitlines()[0].split(",") if exists else list(row)
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore")
    if not exists:
        writer.writeheader()
    writer.writerow(row)
    write_text_atomic(path, old + buffer.getvalue())


def _truncate_results(path: Path, last_epoch: int) -> None:
    """Drop rows after ``last_epoch`` (written before a crash that lost their checkpoint)."""
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
        fieldnames = list(rows[0]) if rows else None
    if fieldnames is None:
        return
    kept = [r for r in rows if int(r["epoch"]) <= last_epoch]
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(kept)
    write_text_atomic(path, buffer.getvalue())


def _tensorboard_writer(run_dir: Path):
    """A TensorBoard ``SummaryWriter`` in the run folder when tensorboard is installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional: results.csv is the log of record
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _metric_value(metrics: dict[str, Any], name: str) -> float | None:
    """``metrics[name]`` as a float; ``None`` when undefined (e.g. no GT in that size bucket)."""
    if name not in metrics and metrics:
        raise ConfigError(
            f"train.best_metric={name!r} is not an evaluator metric; "
            f"choose one of {sorted(k for k in metrics if k != 'per_class')}"
        )
    value = metrics.get(name)
    return None if value is None else float(value)


@dataclass
class TrainStatus:
    """Where a training stands: the next epoch, the part of it already done, the best value."""

    epoch: int = 0
    partial: PartialEpoch = field(default_factory=PartialEpoch)
    best_value: float = -math.inf
    last_metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunIdentity:
    """What every checkpoint of a run records besides the training state."""

    config: dict[str, Any]
    class_names: list[str]
    dataset_info: dict[str, Any]
    git_commit: str


@dataclass
class TrainData:
    """The training set (augmented, its augmentation switched per epoch) and the loaders."""

    train_set: DetectionSamples
    train_loader: DataLoader
    val_loader: DataLoader
    augment: AugmentConfig
    no_mosaic: AugmentConfig


def check_best_metric(name: str) -> None:
    """Raise :class:`~ssabnet.config.ConfigError` unless ``name`` is an evaluator metric."""
    if name not in METRIC_KEYS:
        raise ConfigError(
            f"train.best_metric={name!r} is not an evaluator metric; choose one of "
            + ", ".join(METRIC_KEYS)
        )


def fit(cfg: Config, resume: bool = False, progress: bool = True) -> Path:
    """Train ``cfg`` end to end; return the run folder (``cfg.train.out``).

    The run folder gets ``config.yaml`` (resolved), ``git_commit.txt``, ``results.csv``,
    ``weights/{last,best}.pt`` and ``val/{last,best}/metrics.json`` (+ matching parquet).
    With ``resume=True`` training continues from ``weights/last.pt`` exactly where it stopped
    (optimizer, schedule, EMA, epoch, batch within the epoch, RNG, sampler order).
    """
    check_best_metric(cfg.train.best_metric)  # before any data is loaded or epoch runs
    run_dir = Path(cfg.train.out)
    cfg, state = resume_or_refuse(cfg, run_dir, resume)
    tc = cfg.train
    # a caller that runs several fits in one torchrun job (``ssabnet ablate``) initialises the
    # process group once and keeps it: a second init after destroy hangs under torchrun
    owns_group = not torch.distributed.is_initialized()
    env = setup_distributed(tc.device)
    try:
        seed_everything(tc.seed, tc.deterministic)
        if tc.batch % env.world_size:
            raise ConfigError(f"train.batch={tc.batch} is not divisible by {env.world_size} ranks")
        train_data, val_data = load_train_val(cfg)
        class_names = list(train_data.info.classes)
        cfg = resolve_model(cfg, len(class_names))
        data = build_train_data(cfg, train_data, val_data, env)
        opt = build_optimization(cfg, len(class_names), num_batches(data.train_loader), env)
        evaluator = Evaluator(val_data.info, val_data.records) if env.is_main else None
        status = TrainStatus()
        if state is not None:
            status = restore_training(opt, state, run_folder.weights_path(run_dir, "last"))
        opt.model = wrap_distributed(opt.model, env)
        commit = git_commit() if env.is_main else "unknown"
        identity = RunIdentity(config_to_dict(cfg), class_names, _dataset_info(train_data), commit)
        if env.is_main:
            prepare_run_folder(run_dir, cfg, identity, resumed=state is not None, status=status)
        tensorboard = _tensorboard_writer(run_dir) if env.is_main else None

        for epoch in range(status.epoch, tc.epochs):
            epoch_start = time.time()
            start_epoch_data(data, epoch, tc, status.partial)
            mean_terms = train_one_epoch(
                opt,
                data.train_loader,
                epoch,
                env,
                resume=status.partial,
                save_every_steps=tc.save_every_steps,
                save_partial=functools.partial(
                    save_mid_epoch, opt, status, epoch, identity, run_dir, env
                ),
                progress=progress,
            )
            status.partial = PartialEpoch()
            metrics: dict[str, Any] = {}
            if (epoch + 1) % tc.val_interval == 0 or epoch + 1 == tc.epochs:
                metrics = evaluate(
                    opt.ema.module if opt.ema is not None else unwrap(opt.model),
                    data.val_loader,
                    evaluator,
                    env=env,
                    conf_threshold=tc.conf_threshold,
                    iou_threshold=tc.nms_iou,
                    max_det=tc.max_det,
                    progress=progress,
                )
                status.last_metrics = metrics
            improved = update_best(status, metrics, tc.best_metric)
            if env.is_main:
                row = log_epoch(run_dir, epoch, opt, mean_terms, metrics, epoch_start, tensorboard)
                save_epoch(opt, status, epoch, identity, run_dir, evaluator, metrics, improved)
                print_epoch(epoch, tc.epochs, mean_terms, metrics, row["time"])
            barrier(env)
        return run_dir
    finally:
        if owns_group:
            cleanup_distributed()


def resume_or_refuse(cfg: Config, run_dir: Path, resume: bool) -> tuple[Config, dict | None]:
    """The config to train and the checkpoint to continue (``None`` for a new run).

    On resume the run's own config is used (only device/workers may differ); a new run never
    overwrites a folder that already holds one.
    """
    if resume:
        state = read_checkpoint(run_folder.weights_path(run_dir, "last"))
        saved = config_from_dict(state["config"])
        saved = merge(saved, {"train": {"device": cfg.train.device, "workers": cfg.train.workers}})
        return saved, state
    if run_folder.weights_path(run_dir, "last").exists():
        raise OverwriteError(
            f"{run_dir} already holds a run (weights/last.pt); pass --resume to continue it "
            "or choose another --out"
        )
    return cfg, None


def resolve_model(cfg: Config, num_classes: int) -> Config:
    """``cfg`` with the model config resolved from its preset (what the run folder and every
    checkpoint record), after checking ``model.num_classes`` against the dataset's classes."""
    if cfg.model.num_classes != num_classes:
        raise ConfigError(
            f"model.num_classes={cfg.model.num_classes} but the dataset {cfg.data.train!r} has "
            f"{num_classes} classes; set model.num_classes={num_classes}"
        )
    return dataclasses.replace(cfg, model=resolve_config(cfg.model))


def load_train_val(cfg: Config) -> tuple[DetectionDataset, DetectionDataset]:
    """The training and validation datasets, which must share their classes.

    Every image is decoded once here (``verify``), so a truncated or oversized file is an error
    naming it (or a counted skip with ``data.skip_invalid``) before training, never trained on.
    """
    train_data = load_dataset(cfg.data.train, cfg.data.format, cfg.data.skip_invalid, verify=True)
    val_data = load_dataset(cfg.data.val, cfg.data.format, cfg.data.skip_invalid, verify=True)
    if tuple(train_data.info.classes) != tuple(val_data.info.classes):
        raise InputFileError(
            f"train classes {train_data.info.classes} differ from val classes "
            f"{val_data.info.classes}"
        )
    return train_data, val_data


def build_optimization(
    cfg: Config, num_classes: int, steps_per_epoch: int, env: DistEnv
) -> Optimization:
    """Model, criterion, optimizer, learning-rate schedule, EMA and gradient scaler of ``cfg``."""
    tc = cfg.train
    model = build_model(cfg.model).to(env.device)
    criterion = build_criterion(cfg.loss, num_classes, model.reg_max)
    optimizer = build_optimizer(model, tc)
    scheduler = build_scheduler(
        optimizer,
        tc.epochs * steps_per_epoch,
        round(tc.warmup_epochs * steps_per_epoch),
        tc.schedule,
        tc.final_lr_ratio,
        steps_per_epoch=steps_per_epoch if tc.lr_step == "epoch" else 0,
    )
    use_amp = tc.amp and env.device.type == "cuda"
    return Optimization(
        model=model,
        criterion=criterion,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler(env.device.type, enabled=use_amp),
        ema=ModelEMA(model, tc.ema_decay, tc.ema_tau) if tc.ema else None,
        grad_clip=tc.grad_clip,
        loss_scale=float(tc.batch) if tc.loss_times_batch else 1.0,
        amp=tc.amp,
    )


def build_train_data(
    cfg: Config, train_data: DetectionDataset, val_data: DetectionDataset, env: DistEnv
) -> TrainData:
    """Augmented training samples and the two loaders (sharded across ranks under DDP)."""
    tc = cfg.train
    augment = AugmentConfig(
        **{f.name: getattr(tc, f.name) for f in dataclasses.fields(AugmentConfig)}
    )
    train_set = DetectionSamples(train_data.records, tc.imgsz, augment, seed=tc.seed)
    train_loader = build_loader(
        train_set,
        tc.batch // env.world_size,
        tc.workers,
        shuffle=True,
        seed=tc.seed,
        rank=env.rank,
        world_size=env.world_size,
        drop_last=len(train_set) > tc.batch,
    )
    val_loader = build_loader(
        DetectionSamples(val_data.records, tc.imgsz, None),
        max(1, tc.batch // env.world_size),
        tc.workers,
        shuffle=False,
        rank=env.rank,
        world_size=env.world_size,
    )
    no_mosaic = dataclasses.replace(augment, mosaic=0.0)
    return TrainData(train_set, train_loader, val_loader, augment, no_mosaic)


def restore_training(
    opt: Optimization, state: dict[str, Any], path: str | Path = "checkpoint"
) -> TrainStatus:
    """Load a checkpoint's weights, optimizer, schedule, EMA, scaler and RNG into ``opt``.

    Raises:
        CheckpointError: naming ``path``, when the tensors do not fit (a file re-saved with a
            recomputed digest can still hold another model's weights).
    """
    try:
        opt.model.load_state_dict(state["model"])
        if opt.ema is not None and state.get("ema"):
            opt.ema.load_state_dict(state["ema"])
        opt.optimizer.load_state_dict(state["optimizer"])
        opt.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            opt.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__  # one line
        raise CheckpointError(
            path, f"its content does not fit this run's model/optimizer: {detail[:300]}"
        ) from None
    return TrainStatus(
        epoch=int(state["epoch"]) + 1,
        partial=PartialEpoch(int(state.get("epoch_step", 0)), dict(state.get("loss_sums", {}))),
        best_value=float(state.get("best_value", -math.inf)),
        last_metrics=dict(state.get("metrics", {})),
    )


def wrap_distributed(model: nn.Module, env: DistEnv) -> nn.Module:
    """DDP around ``model`` on several ranks (with one BatchNorm over the global batch on CUDA)."""
    if not env.distributed:
        return model
    if env.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[env.local_rank] if env.device.type == "cuda" else None
    )


def prepare_run_folder(
    run_dir: Path, cfg: Config, identity: RunIdentity, *, resumed: bool, status: TrainStatus
) -> None:
    """Write ``config.yaml`` and ``git_commit.txt``; on resume drop the ``results.csv`` rows
    after the checkpoint and temporary files of a write cut by a kill."""
    (run_dir / run_folder.WEIGHTS_DIR).mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / run_folder.CONFIG_FILE)
    write_text_atomic(run_dir / "git_commit.txt", identity.git_commit + "\n")
    if resumed:
        _truncate_results(run_dir / run_folder.RESULTS_FILE, status.epoch - 1)
        for stale in (run_dir / run_folder.WEIGHTS_DIR).glob(".*.tmp*"):
            stale.unlink()


def start_epoch_data(data: TrainData, epoch: int, tc: Any, partial: PartialEpoch) -> None:
    """Augmentation of ``epoch`` (no mosaic in the last ``close_mosaic``), sampler order and the
    batches a mid-epoch resume skips."""
    final_epochs = epoch >= tc.epochs - tc.close_mosaic
    data.train_set.augment = data.no_mosaic if final_epochs else data.augment
    data.train_set.set_epoch(epoch)
    data.train_loader.sampler.set_epoch(epoch)
    data.train_loader.sampler.set_skip(partial.batches_done * data.train_loader.batch_size)


def update_best(status: TrainStatus, metrics: dict[str, Any], best_metric: str) -> bool:
    """Whether this epoch's ``best_metric`` beats the best so far (and record it)."""
    value = _metric_value(metrics, best_metric) if metrics else None
    improved = value is not None and value > status.best_value
    if improved:
        status.best_value = value
    return improved


def checkpoint_state(
    opt: Optimization,
    status: TrainStatus,
    epoch_done: int,
    partial: PartialEpoch,
    identity: RunIdentity,
) -> dict[str, Any]:
    """The checkpoint dict (format in :mod:`ssabnet.engine.checkpoint`)."""
    return {
        "model": unwrap(opt.model).state_dict(),
        "ema": opt.ema.state_dict() if opt.ema is not None else None,
        "optimizer": opt.optimizer.state_dict(),
        "scheduler": opt.scheduler.state_dict(),
        "scaler": opt.scaler.state_dict() if opt.scaler.is_enabled() else None,
        "epoch": epoch_done,
        "epoch_step": partial.batches_done,
        "step": int(opt.scheduler.last_epoch),
        "loss_sums": dict(partial.loss_sums),
        "best_value": status.best_value,
        "rng": rng_state(),
        "config": identity.config,
        "class_names": identity.class_names,
        "dataset_info": identity.dataset_info,
        "git_commit": identity.git_commit,
        "metrics": {
            k: float(v)
            for k, v in status.last_metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        },
    }


def save_mid_epoch(
    opt: Optimization,
    status: TrainStatus,
    epoch: int,
    identity: RunIdentity,
    run_dir: Path,
    env: DistEnv,
    partial: PartialEpoch,
) -> None:
    """``weights/last.pt`` inside ``epoch`` (rank 0)."""
    if env.is_main:
        state = checkpoint_state(opt, status, epoch - 1, partial, identity)
        save_checkpoint(state, run_folder.weights_path(run_dir, "last"))


def save_epoch(
    opt: Optimization,
    status: TrainStatus,
    epoch: int,
    identity: RunIdentity,
    run_dir: Path,
    evaluator: Any,
    metrics: dict[str, Any],
    improved: bool,
) -> None:
    """``weights/last.pt`` and ``val/last`` after ``epoch``; ``best.pt`` and ``val/best`` too
    when it improved on the best metric."""
    if metrics:
        save_evaluation(evaluator, metrics, run_folder.metrics_path(run_dir, "last"))
    state = checkpoint_state(opt, status, epoch, PartialEpoch(), identity)
    save_checkpoint(state, run_folder.weights_path(run_dir, "last"))
    if improved:
        save_checkpoint(state, run_folder.weights_path(run_dir, "best"))
        save_evaluation(evaluator, metrics, run_folder.metrics_path(run_dir, "best"))


def log_epoch(
    run_dir: Path,
    epoch: int,
    opt: Optimization,
    mean_terms: dict[str, float],
    metrics: dict[str, Any],
    epoch_start: float,
    tensorboard: Any,
) -> dict[str, Any]:
    """Append the epoch's row to ``results.csv`` (and TensorBoard); return the row."""
    row = {"epoch": epoch, "lr": opt.optimizer.param_groups[0]["lr"]}
    row |= {k: round(v, 6) for k, v in mean_terms.items()}
    row |= {k: "" if metrics.get(k) is None else metrics[k] for k in HEADLINE_METRICS}
    row["time"] = round(time.time() - epoch_start, 3)
    _write_results_row(run_dir / run_folder.RESULTS_FILE, row)
    if tensorboard is not None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float):
                tensorboard.add_scalar(key, value, epoch)
        tensorboard.flush()
    return row


def print_epoch(
    epoch: int, epochs: int, mean_terms: dict[str, float], metrics: dict[str, Any], seconds: float
) -> None:
    print(
        f"epoch {epoch + 1}/{epochs} "
        + " ".join(f"{k}={v:.4f}" for k, v in mean_terms.items())
        + "".join(f" {k}={metrics[k]:.4f}" for k in HEADLINE_METRICS if metrics.get(k) is not None)
        + f" ({seconds:.1f}s)",
        flush=True,
    )


def _dataset_info(dataset: DetectionDataset) -> dict[str, Any]:
    return {
        "name": dataset.info.name,
        "format": dataset.info.format,
        "native_ids": [int(i) for i in dataset.info.native_ids],
    }
