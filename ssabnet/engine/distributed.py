"""Thin helpers over ``torch.distributed`` for DDP runs launched with ``torchrun``.

``torchrun --nproc-per-node N -m ssabnet train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup_distributed` reads them and
initialises the default process group (``nccl`` on CUDA, ``gloo`` on CPU). Without those
variables everything runs as a single process (rank 0 of 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from ssabnet.errors import ConfigError


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: ``rank`` of ``world_size``, and its ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:i"`` -> a device, with a clear error if CUDA is absent."""
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available; use cpu")
        return torch.device(device)
    raise ConfigError(f"unknown device {device!r} (expected cpu, cuda or cuda:<index>)")


def launch_rank() -> int:
    """This process's rank as torchrun set it (``RANK``; 0 for a plain process).

    Readable before the process group exists (e.g. to let only rank 0 write a plan); the one
    place outside :func:`setup_distributed` that reads torchrun's environment.
    """
    return int(os.environ.get("RANK", "0"))


def launch_world_size() -> int:
    """Number of processes torchrun started (``WORLD_SIZE``; 1 for a plain process)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup_distributed(device: str) -> DistEnv:
    """Initialise the process group from torchrun's env vars (no-op for a single process).

    Under DDP on CUDA each process uses ``cuda:LOCAL_RANK`` whatever index ``device`` names.
    """
    world_size = launch_world_size()
    rank = launch_rank()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    base = resolve_device(device)
    if world_size == 1:
        return DistEnv(0, 1, 0, base)
    if base.type == "cuda":
        torch.cuda.set_device(local_rank)
        base = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if base.type == "cuda" else "gloo", timeout=timedelta(minutes=30)
        )
    return DistEnv(rank, world_size, local_rank, base)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Mean of ``tensor`` over ranks (returns a new tensor; identity for one process)."""
    if not env.distributed:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / env.world_size


def all_true(flag: bool, env: DistEnv) -> bool:
    """True when ``flag`` is true on every rank (so all ranks take the same branch)."""
    if not env.distributed:
        return flag
    value = torch.tensor([1 if flag else 0], device=env.device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def gather_dicts(local: dict[str, Any], env: DistEnv) -> dict[str, Any]:
    """Union of every rank's dict (picklable values), available on all ranks."""
    if not env.distributed:
        return local
    parts: list[Any] = [None] * env.world_size
    dist.all_gather_object(parts, local)
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    return merged


def broadcast_object(obj: Any, env: DistEnv) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not env.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()
