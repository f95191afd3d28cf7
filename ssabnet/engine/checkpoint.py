"""Checkpoint files: atomic writes, safe loading, tamper/truncation detection.

A checkpoint is a ``torch.save`` file holding only tensors, numbers, strings, lists and dicts,
so it is loaded with ``torch.load(weights_only=True)`` and can never execute code. It contains::

    format, version            "ssabnet-checkpoint", 1
    model                      model state dict (raw weights)
    ema                        {"module": state dict, "updates", "decay"} or None
    optimizer, scheduler       state dicts (or None in an exported/stripped checkpoint)
    scaler                     GradScaler state dict or None
    epoch, step                last completed epoch (0-based; -1 if none), optimizer steps done
    epoch_step                 batches done in the epoch being trained (mid-epoch save) or 0
    rng                        python / numpy / torch / cuda RNG states as tensors and numbers
    config                     the resolved Config as a plain dict
    class_names                list of class names
    git_commit                 commit of the code that wrote it (or "unknown")
    metrics                    last validation metrics (flat dict of numbers) or {}
    digest                     sha256 over everything above (detects modified files)

Writes go to a temporary file in the same folder, are fsync'ed and renamed over the target, so a
kill at any moment leaves either the old or the new file, never a partial one.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssabnet.atomic_io import atomic_path
from ssabnet.errors import InputFileError, MissingInputError

FORMAT = "ssabnet-checkpoint"
VERSION = 1


class CheckpointError(InputFileError):
    """A checkpoint file is missing, truncated, modified or not an SSABNet checkpoint."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        super().__init__(f"{path}: {message}")


def _update_digest(hasher: Any, obj: Any) -> None:
    """Feed a canonical encoding of ``obj`` (nested dict/list/tensor/scalar) into ``hasher``."""
    if isinstance(obj, dict):
        hasher.update(b"{")
        for key in sorted(obj, key=str):
            hasher.update(repr(key).encode())
            _update_digest(hasher, obj[key])
        hasher.update(b"}")
    elif isinstance(obj, list | tuple):
        hasher.update(b"[")
        for item in obj:
            _update_digest(hasher, item)
        hasher.update(b"]")
    elif isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu().contiguous()
        hasher.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    else:
        hasher.update(f"{type(obj).__name__}:{obj!r}".encode())


def state_digest(state: dict[str, Any]) -> str:
    """sha256 hex digest of a checkpoint dict, ignoring its ``digest`` entry."""
    hasher = hashlib.sha256()
    _update_digest(hasher, {k: v for k, v in state.items() if k != "digest"})
    return hasher.hexdigest()


def git_commit(repo_dir: str | Path | None = None) -> str:
    """Current git commit of the code (``-dirty`` appended if the tree has changes)."""
    cwd = Path(repo_dir) if repo_dir else Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not commit:
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states in a ``weights_only``-loadable form."""
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
        "numpy": {
            "key": torch.from_numpy(numpy_state[1].astype(np.int64)),
            "pos": int(numpy_state[2]),
            "has_gauss": int(numpy_state[3]),
            "cached_gaussian": float(numpy_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal.tolist()), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["key"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` (see module docstring) atomically to ``path``; adds format and digest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {**state, "format": FORMAT, "version": VERSION}
    state["digest"] = state_digest(state)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(buffer.getbuffer())
        handle.flush()
        os.fsync(handle.fileno())  # the bytes are on disk before the rename publishes them
    # fsync the folder so the rename itself survives a crash.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict safely (``weights_only=True``) and verify its digest.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: truncated, corrupted, modified, or not an SSABNet checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means an unreadable file
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            path,
            "cannot be read as a checkpoint (truncated, corrupted, or it contains objects that "
            f"a safe weights-only load refuses): {first_line}",
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(path, f"not an SSABNet checkpoint (no format={FORMAT!r} entry)")
    if state.get("version") != VERSION:
        raise CheckpointError(path, f"unsupported checkpoint version {state.get('version')!r}")
    expected = state.get("digest")
    if expected != state_digest(state):
        raise CheckpointError(
            path, "content does not match its sha256 digest: the file was modified or corrupted"
        )
    return state
