"""Write docs/cli.md from the argparse definitions in ``ssabnet/cli.py`` (never hand-edited).

Usage: ``python scripts/gen_cli_docs.py`` (rewrite) or ``--check`` (exit 1 if out of date;
tests/test_readme.py runs the check).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cli.md"
WIDTH = "100"  # argparse wraps help to $COLUMNS: fixed, so the output does not depend on the tty

HEADER = """# CLI reference

Generated from the argparse definitions in `ssabnet/cli.py` by `scripts/gen_cli_docs.py`
(`make cli-docs`); do not edit by hand. `tests/test_readme.py` fails when this file is stale.
"""


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """``(name, parser)`` of every sub-command, depth first, in declaration order."""
    found = []
    for action in parser._actions:  # argparse has no public walk over sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.append((name, child))
                found.extend((f"{name} {sub_name}", sub) for sub_name, sub in _subcommands(child))
    return found


def render() -> str:
    """The whole docs/cli.md text."""
    os.environ["COLUMNS"] = WIDTH
    sys.path.insert(0, str(ROOT))
    from ssabnet.cli import build_parser

    parser = build_parser()
    parts = [HEADER, "## ssabnet\n", "```text", parser.format_help().rstrip(), "```\n"]
    for name, child in _subcommands(parser):
        parts += [f"## ssabnet {name}\n", "```text", child.format_help().rstrip(), "```\n"]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--check", action="store_true", help="exit 1 if docs/cli.md is stale")
    options = args.parse_args(argv)
    text = render()
    if options.check:
        if not DOC.is_file() or DOC.read_text() != text:
            print(f"{DOC} is out of date: run `python scripts/gen_cli_docs.py`", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
