"""Reading JSON input files: any failure is one :class:`~ssabnet.errors.InputFileError` line.

``json.loads`` raises ``RecursionError`` on deeply nested input (a 200k-deep ``[[[[...`` file),
``UnicodeDecodeError`` on binary data and ``JSONDecodeError`` on syntax errors; callers of
:func:`read_json` see one error naming ``file:line`` instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ssabnet.errors import InputFileError


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Parse the JSON file ``path``.

    Raises:
        InputFileError: missing, unreadable, not UTF-8, invalid or too deeply nested JSON.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a folder, expected a {what}") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    return parse_json(data, str(path), what)


def parse_json(data: bytes | str, source: str, what: str = "JSON file") -> Any:
    """Parse JSON text or UTF-8 bytes (``source`` names it in errors)."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        return json.loads(text)
    except UnicodeDecodeError:
        raise InputFileError(f"{source}: not a UTF-8 text {what}") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(
            f"{source}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise InputFileError(f"{source}: JSON nested too deeply to be a {what}") from None
