"""The layer diagram in docs/architecture.md is the import-linter contract; the code keeps it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _contract_layers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return layers


def test_docs_diagram_is_the_contract():
    doc = (REPO / "docs" / "architecture.md").read_text()
    diagram = doc.split("```text", 1)[1].split("```", 1)[0]
    drawn = [
        " ".join(match.group(0).split())
        for line in diagram.splitlines()
        if (match := re.match(r" {0,2}[a-z_]+( [|:] [a-z_]+)*", line))
    ]
    assert drawn == [" ".join(layer.split()) for layer in _contract_layers()]


def test_every_package_module_is_in_a_layer():
    layered = {name for layer in _contract_layers() for name in re.split(r"[|:]", layer)}
    layered = {name.strip() for name in layered}
    children = {
        p.stem if p.is_file() else p.name
        for p in (REPO / "ssabnet").iterdir()
        if (p.suffix == ".py" or (p / "__init__.py").is_file()) and not p.name.startswith("__")
    }
    assert children - layered == set()


def test_import_contracts_hold():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [str(lint_imports)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:]
