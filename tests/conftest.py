"""Shared pytest fixtures (every helper may add fixtures here; keep them session-scoped & cheap).

* ``shared_data_dir``: ``../shared/data`` beside the repository (real data, read-only).
* ``visdrone_sample_root``: the 133 real VisDrone images + GT (skips if absent).
* ``visdrone_val_gt_root``: the 548 VisDrone-val GT files without images (skips if absent).
* ``synthetic_root``: a synthetic dataset generated once per session, ``root/train`` (24
  images) and ``root/val`` (8 images), 320x256, VisDrone format.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (a CI run must not fail on a case drawn for
# the first time); `HYPOTHESIS_PROFILE=explore` searches afresh with more examples.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SYNTHETIC_SIZE = (320, 256)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (expected ../shared/data beside repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def visdrone_sample_root(shared_data_dir: Path) -> Path:
    root = shared_data_dir / "visdrone_sample"
    if not root.is_dir():
        pytest.skip(f"VisDrone sample not found at {root}")
    return root


@pytest.fixture(scope="session")
def visdrone_val_gt_root(shared_data_dir: Path) -> Path:
    root = shared_data_dir / "visdrone_val_gt"
    if not root.is_dir():
        pytest.skip(f"VisDrone-val GT not found at {root}")
    return root


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root with ``train/`` (24 images, seed 0) and ``val/`` (8 images, seed 1), 320x256."""
    from ssabnet.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("syndrone")
    generate_dataset(root / "train", 24, seed=0, size=SYNTHETIC_SIZE)
    generate_dataset(root / "val", 8, seed=1, size=SYNTHETIC_SIZE)
    return root


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ssabnet demo --no-app --budget tiny`` run once per session; returns its ``--out`` folder.

    Layout: ``baseline-n/`` and ``ssabnet-n/`` (ordinary fit run folders with
    ``predictions.json``), ``comparison.csv`` and ``demo.json``. Same code path as ``make demo``,
    with the test budget (8 train / 4 val scenes, 1 epoch) and no FiftyOne indexing.
    """
    from ssabnet.cli import main

    out = tmp_path_factory.mktemp("demo")
    code = main(
        [
            "demo",
            "--no-app",
            "--no-fiftyone",
            "--budget",
            "tiny",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert code == 0, "ssabnet demo failed"
    return out
