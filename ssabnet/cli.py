"""The ``ssabnet`` command line.

Every sub-command is declared here (argparse), and each handler is a few lines that call the
public API. Heavy imports happen inside handlers so that ``ssabnet --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


# ----------------------------------------------------------------------------- data
def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="dataset tools: stats, convert, synth, fetch")
    dsub = data.add_subparsers(dest="data_command", required=True)
    # (the data package's helper fills these in)


# ----------------------------------------------------------------------------- model
def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="model tools: info")
    msub = model.add_subparsers(dest="model_command", required=True)
    # (the model package's helper fills these in)


# ----------------------------------------------------------------------------- val
def _add_val_command(sub: argparse._SubParsersAction) -> None:
    pass  # (the evaluation helper fills this in)


# ----------------------------------------------------------------------------- train / predict
def _add_engine_commands(sub: argparse._SubParsersAction) -> None:
    pass  # (the engine helper fills this in)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssabnet",
        description="SSABNet: small-object detection in drone imagery (SSA neck + SABL loss).",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    _add_data_commands(sub)
    _add_model_commands(sub)
    _add_val_command(sub)
    _add_engine_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from ssabnet import __version__

        print(__version__)
        return 0
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        # Bad input is reported as one clear line (file and line are in the message).
        print(f"ssabnet: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
