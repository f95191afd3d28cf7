"""Confining user-typed paths to configured root folders (the app's path safety).

A path typed into the app (a run folder, a dataset folder) is only ever read if it lies inside
one of the roots the app was started with. Relative paths are taken relative to the first root;
``..`` components are refused outright (even when they would come back inside), and the final
path is resolved (symlinks followed) before the containment check, so a symlink pointing out of
a root is refused as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ssabnet.errors import SsabnetError


class UnsafePathError(SsabnetError):
    """A user-supplied path points outside the allowed roots."""


def resolve_under(user_path: str | Path, roots: Sequence[str | Path]) -> Path:
    """Resolve ``user_path`` and check it lies inside one of ``roots``.

    Args:
        user_path: what the user typed: relative (to ``roots[0]``) or absolute.
        roots: allowed root folders (at least one).

    Returns:
        The resolved absolute path (it need not exist).

    Raises:
        UnsafePathError: empty path, a ``..`` component, a NUL byte, or a location outside
            every root after resolving symlinks.

    Example:
        >>> resolve_under("runs/../../etc/passwd", ["/srv/runs"])
        Traceback (most recent call last):
        ...
        ssabnet.paths.UnsafePathError: '..' is not allowed in paths: 'runs/../../etc/passwd'
    """
    if not roots:
        raise UnsafePathError("no root folder is configured")
    text = str(user_path).strip()
    if not text:
        raise UnsafePathError("empty path")
    if "\x00" in text:
        raise UnsafePathError("path contains a NUL byte")
    candidate = Path(text).expanduser()
    if ".." in candidate.parts:
        raise UnsafePathError(f"'..' is not allowed in paths: {text!r}")
    resolved_roots = [Path(root).expanduser().resolve() for root in roots]
    if not candidate.is_absolute():
        candidate = resolved_roots[0] / candidate
    resolved = candidate.resolve()
    if not any(resolved == root or resolved.is_relative_to(root) for root in resolved_roots):
        allowed = ", ".join(str(root) for root in resolved_roots)
        raise UnsafePathError(f"{text!r} is outside the allowed folder(s): {allowed}")
    return resolved


__all__ = ["UnsafePathError", "resolve_under"]
