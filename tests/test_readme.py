"""The README cannot rot: its runnable blocks run, the others parse, its links exist, and
docs/cli.md is what scripts/gen_cli_docs.py generates from the argparse definitions."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ssabnet.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"(?:<!-- (runnable|not-runnable: [^>]+) -->\n)?```(\w+)\n(.*?)```", re.S)


def readme_blocks() -> list[tuple[str | None, str, str]]:
    """``(marker, language, code)`` of every fenced block, in order."""
    return [(m[1], m[2], m[3]) for m in BLOCK.finditer(README.read_text())]


def commands(code: str) -> list[list[str]]:
    """Shell lines of a block (continuations joined, comments dropped) as argument lists."""
    joined = code.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def test_every_shell_and_python_block_is_marked():
    blocks = readme_blocks()
    assert sum(marker == "runnable" for marker, _, _ in blocks) >= 2
    for marker, language, code in blocks:
        if language in ("bash", "python"):
            assert marker is not None, f"unmarked ```{language} block in README:\n{code}"


def _ssabnet_args(argv: list[str]) -> list[str] | None:
    """The arguments after ``ssabnet`` / ``-m ssabnet`` in a command line, else None."""
    for i, token in enumerate(argv):
        if token == "ssabnet":
            return argv[i + 1 :]
    return None


def test_not_runnable_commands_still_parse():
    """Commands that need a GPU, the internet or real data: the flags must exist, targets too."""
    parser = build_parser()
    checked = 0
    for marker, _, code in readme_blocks():
        if marker is None or marker == "runnable":
            continue
        for argv in commands(code):
            if argv and argv[0] == "make":
                result = subprocess.run(
                    ["make", "-n", *argv[1:]], cwd=ROOT, capture_output=True, text=True
                )
                assert result.returncode == 0, result.stderr
                checked += 1
            elif (args := _ssabnet_args([a for a in argv if a])) is not None:
                parsed = parser.parse_args(args)
                assert getattr(parsed, "handler", None), argv
                checked += 1
    assert checked >= 8


@pytest.mark.slow
def test_runnable_blocks_run(tmp_path: Path, demo_runs: Path):
    """Each runnable block runs in a fresh working folder; ``runs/demo`` is the demo fixture."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "demo").symlink_to(demo_runs, target_is_directory=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["SSABNET_DATA"] = str(tmp_path / "data")
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "2")
    ran = 0
    for marker, language, code in readme_blocks():
        if marker != "runnable":
            continue
        if language == "bash":
            argv = ["bash", "-euo", "pipefail", "-c", code]
        else:
            argv = [sys.executable, "-c", code]
        result = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"README block failed:\n{code}\n{result.stderr[-3000:]}"
        ran += 1
    assert ran >= 2
    assert (tmp_path / "runs" / "mini" / "predictions.json").is_file()
    assert (tmp_path / "runs" / "mini" / "val.json").is_file()


def test_relative_links_exist():
    text = README.read_text()
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
    assert links
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_cli_docs_are_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    text = (ROOT / "docs" / "cli.md").read_text()
    for name in ("## ssabnet demo", "## ssabnet train", "--no-app", "--budget"):
        assert name in text
