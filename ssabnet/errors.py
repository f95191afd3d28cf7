"""User-facing errors: what the CLI prints as one line instead of a traceback.

Everything a user can cause with an input (a file, a flag, a config value, a run folder) raises a
subclass of :class:`SsabnetError` whose message names the file (and line) and, where there is
one, the fix. ``ssabnet.cli.main`` prints these as ``ssabnet: error: <message>`` and exits 2;
any other exception is a bug and keeps its traceback (a ``ValueError`` raised for a wrong
argument to a library function is a programming error, not a user error).

:class:`SsabnetError` derives from :class:`ValueError` so that library callers who already
catch ``ValueError`` keep working; :class:`MissingInputError` is also a
:class:`FileNotFoundError`.

The hierarchy::

    SsabnetError (ValueError)
        InputFileError           an input file/folder is malformed or inconsistent
            MissingInputError    ... or does not exist (also FileNotFoundError)
            AnnotationError      (ssabnet.data.record) an annotation line/image is invalid
            CheckpointError      (ssabnet.engine.checkpoint) not a valid checkpoint
            RunError             (ssabnet.runs) a run folder is missing/incomplete/corrupt
        ConfigError              a config key/value (file, override, option) is invalid
        UsageError               command-line options that do not fit together
        OverwriteError           an output would replace something that exists
        UnsafePathError          (ssabnet.paths) a path escapes its root folder
"""

from __future__ import annotations


class SsabnetError(ValueError):
    """Base class of every error caused by user input (the message names the file/flag)."""


class InputFileError(SsabnetError):
    """An input file is missing, unreadable, malformed or inconsistent (message: path[:line])."""


class MissingInputError(InputFileError, FileNotFoundError):
    """A named input (file, folder, dataset, checkpoint, run) does not exist."""


class ConfigError(SsabnetError):
    """A configuration key is unknown, or its value has the wrong type or is out of range
    (in a config file, a dotted override or the option that sets it)."""


class UsageError(SsabnetError):
    """Command-line options (or their values) that do not fit together or are out of range."""


class OverwriteError(SsabnetError):
    """An output would replace something that exists and the user did not ask for it."""


class OutputPathError(SsabnetError):
    """An output path cannot be used: a folder where a file is expected, or the reverse."""
