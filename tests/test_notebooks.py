"""The teaching notebooks: stored without outputs, up to date with their generator, and runnable.

Each notebook is executed top to bottom with nbclient in a temporary working directory, on a
kernel that runs THIS interpreter (a kernelspec written into a temp dir, nothing installed into
the user's Jupyter config). When the session fixture ``demo_runs`` exists (tests/conftest.py,
added by the demo) its folder is passed as ``$SSABNET_DEMO_DIR``; otherwise the notebooks fall
back to their own tiny runs, as a student without the demo would.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT_S = 600
NOTEBOOK_BUDGET_S = 240  # each notebook must run in < 4 minutes on 2 CPU cores
KERNEL_NAME = "ssabnet-test"


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_notebooks", NOTEBOOK_DIR / "build_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_four_notebooks_exist():
    assert NOTEBOOKS == [
        "01_scale_aware_losses.ipynb",
        "02_ssa_feature_maps.ipynb",
        "03_error_analysis_by_scale.ipynb",
        "04_train_on_your_data.ipynb",
    ]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_notebook_has_no_outputs_and_matches_generator(name):
    path = NOTEBOOK_DIR / name
    notebook = json.loads(path.read_text())
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{name} cell {index} has stored outputs"
            assert cell["execution_count"] is None, f"{name} cell {index} has an execution count"
    assert path.read_text() == _builder().render(name), (
        f"{name} differs from notebooks/build_notebooks.py; run python notebooks/build_notebooks.py"
    )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_structure_for_teaching(name):
    """Learning goals first, a summary last, exercises with collapsed solutions."""
    cells = json.loads((NOTEBOOK_DIR / name).read_text())["cells"]
    assert cells[0]["cell_type"] == "markdown" and "Learning goals" in "".join(cells[0]["source"])
    assert cells[-1]["cell_type"] == "markdown" and "## Summary" in "".join(cells[-1]["source"])
    solutions = [c for c in cells if "solution" in c["metadata"].get("tags", [])]
    assert len(solutions) >= 2, f"{name}: expected at least two exercises with solutions"
    for cell in solutions:
        assert cell["cell_type"] == "code"
        assert cell["metadata"]["jupyter"] == {"source_hidden": True}
    assert "<details>" in "".join("".join(c["source"]) for c in cells)
    source = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    # Public API only: no private ssabnet names, no reaching into other projects.
    assert not re.search(r"\bssabnet(\.\w+)*\._[a-z]", source), "private ssabnet name used"
    assert "ultralytics" not in source


def test_generator_check_mode_detects_a_stale_notebook(tmp_path, monkeypatch):
    builder = _builder()
    monkeypatch.setattr(builder, "HERE", tmp_path)
    assert builder.main([]) == 0  # writes all four into tmp_path
    assert builder.main(["--check"]) == 0
    stale = tmp_path / NOTEBOOKS[0]
    stale.write_text(stale.read_text().replace("Learning goals", "Goals"))
    assert builder.main(["--check"]) == 1


def test_unknown_cell_marker_is_an_error():
    with pytest.raises(ValueError, match="unknown cell marker"):
        _builder().build("# %% md\ntext\n# %% bogus\nx = 1\n")


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
    import nbformat

    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if "SSABNET_DATA" not in os.environ:  # generated catalog data goes to tmp, not the repo
        monkeypatch.setenv("SSABNET_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SSABNET_DEMO_DIR", str(demo_dir or tmp_path / "no-demo"))
    monkeypatch.delenv("SSABNET_NB_FIFTYONE", raising=False)
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
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
