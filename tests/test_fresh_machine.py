"""A newcomer's clean clone sets itself up from the Makefile alone.

CI (``.ci/run`` = ``make test``) runs in a clean clone, so ``make setup`` there builds ``.venv``
from nothing: that is the full reinstall, done once per CI run. A second reinstall inside the test
suite would cost ~3 min for no new information, so this test checks the cheaper things a reinstall
would not catch on a machine where earlier sessions installed extra packages by hand:

* a copy of exactly what ``git clone`` gives (tracked + new unignored files) has no ``.venv``,
  data or runs, and its ``make -n setup``/``demo``/``test`` create the venv, install the pins,
  the package and the browser test's Debian packages;
* every third-party module imported by the package (app included), tests, scripts and notebooks
  belongs to a distribution that ``requirements.txt`` installs (directly or as a dependency), so
  nothing the code needs was installed by hand;
* a wheel built from the clone, installed (not editable) into a fresh venv, runs the demo and the
  app from a folder outside the checkout.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
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
    tops = {"ssabnet", "tests", "scripts", "notebooks"}
    files = [
        ROOT / name for name in clone_files() if name.endswith(".py") and name.split("/")[0] in tops
    ]
    local = {"ssabnet", "tests", "conftest"}
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode("utf-8", "replace")
    except OSError:
        return None


@pytest.mark.slow
def test_installed_wheel_runs_the_demo_and_the_app(tmp_path: Path):
    """``pip install`` of a wheel (not editable) works away from the source tree.

    The wheel is built from exactly what a clone holds and installed into a fresh venv whose
    third-party packages come from the test's own interpreter (a ``.pth`` line, so no 5 GB torch
    reinstall). From a folder outside the checkout: ``ssabnet demo --budget tiny`` runs (catalog
    cards and app pages come from package data) and ``ssabnet app`` serves; SIGTERM to
    ``ssabnet app`` stops its Streamlit child, so the port is free again.
    """
    src = tmp_path / "src"
    for name in clone_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(src),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("ssabnet-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "outer_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    py, cli = venv / "bin" / "python", venv / "bin" / "ssabnet"
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "SSABNET_DATA"}}
    env |= {"OMP_NUM_THREADS": "2", "SSABNET_SHARED": str(ROOT.parent / "shared")}
    where = subprocess.run(
        [str(py), "-c", "import ssabnet; print(ssabnet.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(site), f"imported from {where}, not the installed wheel"

    demo = subprocess.run(
        [
            str(cli),
            "demo",
            "--budget",
            "tiny",
            "--no-app",
            "--no-fiftyone",
            "--no-progress",
            "--out",
            "runs/demo",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert (work / "runs" / "demo" / "ssabnet-n" / "predictions.json").is_file()
    root = subprocess.run(
        [
            str(py),
            "-c",
            "from ssabnet.data.catalog import find_card; "
            "print(find_card('syndrone-demo-val').root)",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(root) == work / "data" / "syndrone" / "val", "packaged cards resolve in the cwd"

    port = _free_port()
    app = subprocess.Popen(
        [str(cli), "app", "--runs", "runs/demo", "--port", str(port), "--headless"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _get(f"http://127.0.0.1:{port}/_stcore/health") != "ok":
            assert app.poll() is None, app.stdout.read()
            assert time.monotonic() < deadline, "the app did not come up in 120 s"
            time.sleep(1)
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 15
        while _get(f"http://127.0.0.1:{port}/_stcore/health") is not None:
            assert time.monotonic() < deadline, "Streamlit still serves after SIGTERM"
            time.sleep(0.5)
    finally:
        if app.poll() is None:
            app.kill()
