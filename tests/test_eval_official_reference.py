"""``--protocol visdrone-official`` against numbers the official VisDrone-DET toolkit printed.

Three kinds of evidence, strongest last:

* the stored reference sets in ``../shared/data/visdrone_official_reference/`` (133 real images,
  scored by one ``ssabnet val --predictions <folder> --protocol visdrone-official`` command;
  the toolkit at commit 0054457 run under GNU Octave 7.3 by whoever made them): always run where
  the shared data is, to 1e-4 as the issue asks (we agree to all 6 stored decimals);
* our own seeded corner-case sets (``benchmarks/visdrone_toolkit_check.py --make-case``; ties,
  IoU exactly on a threshold, half-pixel boxes at ignored regions, > 500 unsorted rows), with
  the numbers the toolkit printed for them when we ran it (Octave 7.3.0, Debian 12):
  ``python benchmarks/visdrone_toolkit_check.py --toolkit DIR --gt CASE --results CASE/results``;
  these need no shared data and always run;
* the toolkit itself, when a copy is given in ``$SSABNET_VISDRONE_TOOLKIT`` and Octave is
  installed (skipped with the reason otherwise: the toolkit has no licence, so it is not in the
  repository and CI cannot download it).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from ssabnet.cli import main
from ssabnet.data.visdrone import read_visdrone
from ssabnet.evaluation import Evaluator, read_visdrone_results

KEYS = ("AP", "AP50", "AP75", "AR1", "AR10", "AR100", "AR500")
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "visdrone_toolkit_check.py"
TOOLKIT_ENV = "SSABNET_VISDRONE_TOOLKIT"

#: What the toolkit printed (its percentages / 100) for ``--make-case DIR --seed S`` (40 images).
SEEDED_TOOLKIT = {
    1: {
        "AP": 0.054837627004,
        "AP50": 0.12319877298,
        "AP75": 0.044358352477,
        "AR1": 0.025320093327,
        "AR10": 0.256864999719,
        "AR100": 0.335344633721,
        "AR500": 0.351627396413,
    },
    2: {
        "AP": 0.032694039904,
        "AP50": 0.083111946819,
        "AP75": 0.021224903638,
        "AR1": 0.020638858454,
        "AR10": 0.214534990859,
        "AR100": 0.293962955246,
        "AR500": 0.311281780259,
    },
}


def _script():
    spec = importlib.util.spec_from_file_location("visdrone_toolkit_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_from_folder(gt_root: Path, results: Path) -> dict:
    dataset = read_visdrone(gt_root)
    records = dataset.records
    predictions = read_visdrone_results(results, dataset.info, records)
    evaluator = Evaluator(dataset.info, records, protocol="visdrone-official")
    evaluator.process(predictions)
    return evaluator.evaluate()


def _gt_subset(sample: Path, images: list[str], root: Path) -> Path:
    """A VisDrone folder of links to some images of ``sample`` (the toolkit's GT folder)."""
    for sub, ext in (("images", "jpg"), ("annotations", "txt")):
        (root / sub).mkdir(parents=True)
        for name in images:
            (root / sub / f"{name}.{ext}").symlink_to(sample / sub / f"{name}.{ext}")
    return root


@pytest.mark.parametrize("name", ["A_sorted", "B_unsorted_dups_over500"])
def test_stored_toolkit_numbers(shared_data_dir, tmp_path, name):
    # one command, as a user runs it: ssabnet val --predictions <folder of result txts>
    reference = shared_data_dir / "visdrone_official_reference"
    if not reference.is_dir():
        pytest.skip(f"reference numbers not found at {reference}")
    expected = json.loads((reference / name / "official_metrics.json").read_text())
    images = expected["images"] if isinstance(expected["images"], list) else None
    gt = shared_data_dir / "visdrone_sample"
    if images is not None:
        gt = _gt_subset(gt, images, tmp_path / "gt")
    out = tmp_path / "val" / "metrics.json"
    argv = [
        "val",
        "--predictions",
        str(reference / name / "results"),
        "--data",
        str(gt),
        "--protocol",
        "visdrone-official",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    metrics = json.loads(out.read_text())
    assert metrics["n_images"] == (len(images) if images else 133)
    for key in KEYS:  # the stored values have 6 decimals
        assert metrics[key] == pytest.approx(expected[key], abs=1e-4), key
        assert metrics[key] == pytest.approx(expected[key], abs=1e-6), key


@pytest.mark.parametrize("seed", sorted(SEEDED_TOOLKIT))
def test_seeded_corner_cases_against_the_toolkit_numbers(tmp_path, seed):
    case = _script().make_case(tmp_path / "case", seed)
    metrics = official_from_folder(case, case / "results")
    for key in KEYS:
        assert metrics[key] == pytest.approx(SEEDED_TOOLKIT[seed][key], abs=1e-9), key


def test_against_the_real_toolkit_under_octave(tmp_path):
    toolkit = os.environ.get(TOOLKIT_ENV)
    script = _script()
    if not toolkit:
        pytest.skip(f"set {TOOLKIT_ENV}=<copy of VisDrone2018-DET-toolkit> to run the toolkit")
    if script.find_octave() is None:
        pytest.skip("GNU Octave not installed (apt-get install -y octave)")
    script.check_toolkit(Path(toolkit))
    case = script.make_case(tmp_path / "case", seed=3, num_images=16)
    theirs = script.run_toolkit(Path(toolkit), case, case / "results", timeout=900)
    ours = official_from_folder(case, case / "results")
    assert theirs["images"] == ours["n_images"] == 16
    for key in KEYS:
        assert ours[key] == pytest.approx(theirs["metrics"][key], abs=1e-9), key
