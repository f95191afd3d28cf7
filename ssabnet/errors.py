"""User-facing errors: what the CLI prints as one line instead of a traceback.

Everything a user can cause with an input (a file, a flag, a config value, a run folder) raises a
subclass of :class:`SsabnetError` whose message names the file (and line) and, where there is
one, the fix. ``ssabnet.cli.main`` prints these as ``ssabnet: error: <message>`` and exits 2;
any other exception is a bug and keeps its traceback.

:class:`SsabnetError` derives from :class:`ValueError` so that library callers who already
catch ``ValueError`` keep working.
"""

from __future__ import annotations


class SsabnetError(ValueError):
    """Base class of every error caused by user input (the message names the file/flag)."""


class InputFileError(SsabnetError):
    """An input file is missing, unreadable, malformed or inconsistent (message: path[:line])."""


class OverwriteError(SsabnetError):
    """An output would replace something that exists and the user did not ask for it."""
