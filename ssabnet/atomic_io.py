"""Atomic file writes: a reader (or a crash) never sees a half-written output.

Every output file of SSABNet (metrics, results tables, predictions, parquet matching tables,
plans, run cards) is written to a temporary file in the destination folder and moved into
place with :func:`os.replace`, which is atomic on POSIX within one file system.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ssabnet.errors import OutputPathError, OverwriteError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the suffix is kept last, for writers and readers that go by it (onnx, parquet)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.is_file():  # mkstemp creates 0o600; outputs get the usual rw-r--r--
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns ``path``."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(
    path: str | Path, obj: Any, *, indent: int | None = 2, allow_nan: bool = True
) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (``allow_nan=False`` refuses NaN/inf)."""
    return write_text_atomic(path, json.dumps(obj, indent=indent, allow_nan=allow_nan) + "\n")


def check_parent_writable(path: str | Path, option: str = "--out") -> Path:
    """Raise :class:`OutputPathError` if an existing ancestor of ``path`` is not a folder."""
    path = Path(path)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"{option} {path}: {parent} is a file, not a folder")
            break
    return path


def check_output_file(
    path: str | Path, *, overwrite: bool, option: str = "--out", example: str = "out.json"
) -> Path:
    """Check that ``path`` may be written as an output *file*, before any work is done.

    Raises:
        OutputPathError: ``path`` is a folder (the message suggests ``path/example``), or an
            ancestor is a file.
        OverwriteError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(
            f"{option} {path} is a folder; give a file path, e.g. {option} {path / example}"
        )
    check_parent_writable(path, option)
    if path.exists() and not overwrite:
        raise OverwriteError(
            f"{path} exists and is left as it is; pass --overwrite to replace it or choose "
            f"another {option}"
        )
    return path


def check_output_files_in(
    folder: str | Path, names: list[str], *, overwrite: bool, option: str = "--out"
) -> Path:
    """Check that files ``names`` may be written into ``folder`` (see :func:`check_output_file`).

    Raises:
        OutputPathError: ``folder`` (or an ancestor) is a file.
        OverwriteError: some of the files exist and ``overwrite`` is False (count and first).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{option} {folder} is a file; give a folder")
    check_parent_writable(folder, option)
    existing = [name for name in names if (folder / name).exists()]
    if existing and not overwrite:
        raise OverwriteError(
            f"{folder}: {len(existing)} of the output files exist already (first: "
            f"{folder / existing[0]}) and are left as they are; pass --overwrite to replace "
            f"them or choose another {option}"
        )
    return folder
