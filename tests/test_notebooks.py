"""The teaching notebooks: Jupytext percent scripts (the only source), well-formed, runnable.

Each ``notebooks/NN_name.py`` is read with jupytext into a notebook and executed top to bottom
with nbclient in a temporary working directory, on a kernel that runs THIS interpreter (a
kernelspec written into a temp dir, nothing installed into the user's Jupyter config). When the
session fixture ``demo_runs`` exists (tests/conftest.py, added by the demo) its folder is passed
as ``$SSABNET_DEMO_DIR``; otherwise the notebooks fall back to their own tiny runs, as a student
without the demo would. ``ruff`` lints the same files (``make lint``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT_S = 600
NOTEBOOK_BUDGET_S = 240  # each notebook must run in < 4 minutes on 2 CPU cores
KERNEL_NAME = "ssabnet-test"


def _read(name: str):
    return jupytext.read(NOTEBOOK_DIR / name)


def _text(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def test_the_four_notebooks_exist():
    assert NOTEBOOKS == [
        "01_scale_aware_losses.py",
        "02_ssa_feature_maps.py",
        "03_error_analysis_by_scale.py",
        "04_train_on_your_data.py",
    ]
    assert not _tracked_ipynb(), "notebooks are kept as Jupytext .py only; .ipynb is generated"


def _tracked_ipynb() -> list[str]:
    result = subprocess.run(
        ["git", "ls-files", "*.ipynb"], cwd=NOTEBOOK_DIR, capture_output=True, text=True
    )
    return result.stdout.split()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_source_is_canonical_percent_format(name):
    """py -> notebook -> py gives the same text: what is stored is what Jupyter shows."""
    path = NOTEBOOK_DIR / name
    notebook = jupytext.read(path)
    assert notebook.metadata["jupytext"]["text_representation"]["format_name"] == "percent"
    assert jupytext.writes(notebook, fmt="py:percent") == path.read_text(), (
        f"{name} is not in canonical jupytext percent format; run "
        f"`.venv/bin/jupytext --to py:percent --update notebooks/{name}` after converting"
    )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_structure_for_teaching(name):
    """Learning goals first, a summary last, exercises with collapsed solutions."""
    cells = _read(name).cells
    assert cells[0].cell_type == "markdown" and "Learning goals" in _text(cells[0])
    assert cells[-1].cell_type == "markdown" and "## Summary" in _text(cells[-1])
    solutions = [c for c in cells if "solution" in c.metadata.get("tags", [])]
    assert len(solutions) >= 2, f"{name}: expected at least two exercises with solutions"
    for cell in solutions:
        assert cell.cell_type == "code"
        assert cell.metadata["jupyter"] == {"source_hidden": True}
    assert "<details>" in "".join(_text(c) for c in cells)
    source = "".join(_text(c) for c in cells if c.cell_type == "code")
    # Public API only: no private ssabnet names, no reaching into other projects.
    assert not re.search(r"\bssabnet(\.\w+)*\._[a-z]", source), "private ssabnet name used"
    assert "ultralytics" not in source


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory) -> Path:
    """A Jupyter data dir with one kernelspec that runs the current interpreter."""
    data_dir = tmp_path_factory.mktemp("jupyter")
    spec_dir = data_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "ssabnet (tests)",
                "language": "python",
            }
        )
    )
    return data_dir


@pytest.fixture(scope="session")
def demo_dir(request) -> Path | None:
    """The demo output folder when the ``demo_runs`` fixture exists, else None (fallback path)."""
    try:
        return Path(request.getfixturevalue("demo_runs"))
    except pytest.FixtureLookupError:
        return None


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_without_errors(name, tmp_path, kernel_dir, demo_dir, monkeypatch):
    import nbclient

    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if "SSABNET_DATA" not in os.environ:  # generated catalog data goes to tmp, not the repo
        monkeypatch.setenv("SSABNET_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SSABNET_DEMO_DIR", str(demo_dir or tmp_path / "no-demo"))
    monkeypatch.delenv("SSABNET_NB_FIFTYONE", raising=False)
    notebook = _read(name)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the failing cell
    elapsed = time.perf_counter() - start
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
    figures = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert figures >= 3, f"{name}: only {figures} figures rendered"
    assert elapsed < NOTEBOOK_BUDGET_S, f"{name} took {elapsed:.0f} s (budget {NOTEBOOK_BUDGET_S})"


@pytest.mark.slow
def test_jupyter_lab_opens_the_py_notebooks(tmp_path):
    """The documented ``jupyter lab notebooks/`` serves each .py file as a notebook (jupytext)."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    jupyter = Path(sys.executable).with_name("jupyter")
    server = subprocess.Popen(
        [
            str(jupyter),
            "lab",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ip=127.0.0.1",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            f"--ServerApp.root_dir={NOTEBOOK_DIR}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), JUPYTER_CONFIG_DIR=str(tmp_path)),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                url = f"http://127.0.0.1:{port}/api/contents/{NOTEBOOKS[0]}?type=notebook"
                with urllib.request.urlopen(url, timeout=5) as response:
                    model = json.loads(response.read())
                break
            except OSError:
                assert server.poll() is None, "jupyter lab exited"
                assert time.monotonic() < deadline, "jupyter lab did not answer in 60 s"
                time.sleep(1)
        assert model["type"] == "notebook"
        cells = model["content"]["cells"]
        assert "Learning goals" in "".join(cells[0]["source"])
        assert len(cells) == len(_read(NOTEBOOKS[0]).cells)
    finally:
        server.terminate()
        server.wait(timeout=30)
