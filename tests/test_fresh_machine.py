"""A newcomer's clean clone sets itself up from the Makefile alone.

CI (``.ci/run`` = ``make test``) runs in a clean clone, so ``make setup`` there builds ``.venv``
from nothing: that is the full reinstall, done once per CI run. A second reinstall inside the test
suite would cost ~3 min for no new information, so this test checks the cheaper things a reinstall
would not catch on a machine where earlier sessions installed extra packages by hand:

* a copy of exactly what ``git clone`` gives (tracked + new unignored files) has no ``.venv``,
  data or runs, and its ``make -n setup``/``demo``/``test`` create the venv, install the pins,
  the package and the browser test's Debian packages;
* every third-party module imported by the package, app, tests, scripts and benchmarks belongs to
  a distribution that ``requirements.txt`` installs (directly or as a dependency), so nothing the
  code needs was installed by hand.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def clone_files() -> list[str]:
    """What a clone of the working tree holds: tracked files plus new files git does not ignore."""
    result = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"not a git checkout: {result.stderr.strip()}")
    return [name for name in result.stdout.splitlines() if (ROOT / name).is_file()]


@pytest.mark.slow
def test_clean_copy_sets_itself_up_from_the_makefile(tmp_path: Path):
    files = clone_files()
    for top in (".venv", "data", "runs"):
        assert not any(name.split("/")[0] == top for name in files), f"{top}/ would be committed"
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)

    def dry_run(target: str) -> str:
        result = subprocess.run(
            ["make", "-n", target], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    setup = dry_run("setup")
    assert "python3 -m venv .venv" in setup
    assert "pip install --quiet -r requirements.txt" in setup
    assert "pip install --quiet --no-deps -e ." in setup
    assert "apt-get install -y -qq chromium chromium-driver" in setup
    assert "ssabnet demo" in dry_run("demo") and "python3 -m venv .venv" in dry_run("demo")
    test = dry_run("test")
    assert "ruff check ." in test and "-m pytest" in test
    assert "make test" in (tmp_path / ".ci" / "run").read_text()


def _imported_modules(paths: list[Path]) -> set[str]:
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_by_requirements() -> set[str]:
    """Distributions requirements.txt installs, with their (non-extra) dependencies."""
    wanted = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            wanted.append(_normalise(re.split(r"[<>=!~\[; ]", line)[0]))
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" not in requirement:
                wanted.append(_normalise(re.split(r"[<>=!~\[; (]", requirement)[0]))
    return seen


def test_every_third_party_import_is_pinned():
    files = [
        ROOT / name
        for name in clone_files()
        if name.endswith(".py") and name.split("/")[0] in {"ssabnet", "app", "tests", "scripts"}
    ]
    local = {"ssabnet", "app", "tests", "conftest", "common"}
    local |= {p.stem for p in files}  # scripts and app pages import their siblings
    third_party = _imported_modules(files) - set(sys.stdlib_module_names) - local
    installed = _installed_by_requirements()
    owners = metadata.packages_distributions()
    missing = {}
    for module in sorted(third_party):
        dists = {_normalise(d) for d in owners.get(module, [])}
        if not dists & installed:
            missing[module] = sorted(dists) or ["not installed"]
    assert not missing, f"imported but not installed by requirements.txt: {missing}"
