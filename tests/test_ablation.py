"""``ssabnet ablate``: variants, budget, resumable runs, the report, peers in the same layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ssabnet.ablation import (
    RUN_FILE,
    VARIANTS,
    AblationPlan,
    budget_epochs,
    parse_seeds,
    parse_variants,
    plan_ablation,
    write_report,
)
from ssabnet.cli import main
from ssabnet.config import Config, merge
from ssabnet.losses.config import BASELINE_LOSS, PAPER_SABL_LOSS, SABL_LOSS


def test_variants_are_the_two_factors():
    """baseline/ssa/sabl/ssa+sabl = {baseline, ssabnet} model x {baseline, SABL} loss."""
    expect = {
        "baseline": ("baseline-n", BASELINE_LOSS),
        "ssa": ("ssabnet-n", BASELINE_LOSS),
        "sabl": ("baseline-n", SABL_LOSS),
        "ssa+sabl": ("ssabnet-n", SABL_LOSS),
        "p2+sabl": ("baseline-n-p2", SABL_LOSS),
        "sabl-paper": ("baseline-n", PAPER_SABL_LOSS),
        "ssa+sabl-paper": ("ssabnet-n", PAPER_SABL_LOSS),
    }
    for name, (model, loss) in expect.items():
        overrides = VARIANTS[name].overrides("n")
        cfg = merge(Config(), overrides)
        assert cfg.model.name == model
        assert {k: getattr(cfg.loss, k) for k in loss} == loss
    # SABL_LOSS changes only the box loss; the literal recipe also balancing and the assigner
    assert {k for k in BASELINE_LOSS if BASELINE_LOSS[k] != SABL_LOSS[k]} == {"box"}
    assert all(BASELINE_LOSS[k] != PAPER_SABL_LOSS[k] for k in BASELINE_LOSS)
    assert merge(Config(), {"loss": PAPER_SABL_LOSS}).loss.sabl_variant == "paper"


def test_ssa_part_variants_add_or_remove_one_part_with_the_baseline_loss():
    expect = {
        "baseline-p2": "baseline-s-p2",
        "p2+fade": "baseline-s-p2-fade",
        "p2+blur": "baseline-s-p2-blur",
        "ssa-nearest": "ssabnet-s-nearest",
        "ssa-noalign": "ssabnet-s-noalign",
    }
    for name, model in expect.items():
        cfg = merge(Config(), VARIANTS[name].overrides("s"))
        assert cfg.model.name == model
        assert {k: getattr(cfg.loss, k) for k in BASELINE_LOSS} == BASELINE_LOSS


def test_parse_seeds_and_variants():
    assert parse_seeds("3") == (0, 1, 2)
    assert parse_seeds("0,5,7") == (0, 5, 7)
    for bad in ("x", "0,0", "0"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)
    assert parse_variants("ssa+sabl, baseline") == ("ssa+sabl", "baseline")
    with pytest.raises(ValueError, match="unknown ablation variant"):
        parse_variants("baseline,p2")


def test_budget_epochs_equal_epochs_or_time():
    spi = {"baseline": 0.05, "ssa": 0.1}  # seconds per training image
    # 10 min, 100 train images, 50 val: baseline fits floor((600 - 0.83) / 6) = 99 epochs,
    # ssa floor((600 - 1.67) / 12) = 49
    assert budget_epochs(spi, 100, 50, 10, "time") == {"baseline": 99, "ssa": 49}
    assert budget_epochs(spi, 100, 50, 10, "epochs") == {"baseline": 49, "ssa": 49}
    assert budget_epochs(spi, 10_000, 50, 0.01) == {"baseline": 1, "ssa": 1}  # at least one
    with pytest.raises(ValueError):
        budget_epochs(spi, 100, 50, 0)
    with pytest.raises(ValueError):
        budget_epochs(spi, 100, 50, 10, "wall")


def _base(synthetic_root: Path, **train) -> Config:
    recipe = {
        "imgsz": 320,
        "batch": 4,
        "workers": 0,
        "mosaic": 0.0,
        "close_mosaic": 0,
        "optimizer": "adamw",
        "lr": 0.002,
    } | train
    data = {"train": str(synthetic_root / "train"), "val": str(synthetic_root / "val")}
    return merge(Config(), {"data": data, "train": recipe})


def test_plan_run_config_and_mismatch(synthetic_root: Path, tmp_path: Path):
    plan = plan_ablation(_base(synthetic_root), tmp_path, ("baseline", "sabl"), (0, 1), epochs=3)
    cfg = plan.run_config("sabl", 1)
    assert cfg.model.name == "baseline-n" and cfg.loss.box == "sabl"
    assert (cfg.train.seed, cfg.train.epochs, cfg.train.val_interval) == (1, 3, 3)
    assert cfg.train.out == str(tmp_path / "sabl" / "seed1")
    assert cfg.train.imgsz == 320 and cfg.train.optimizer == "adamw"
    stored = AblationPlan.from_json(json.loads((tmp_path / "plan.json").read_text()))
    assert stored == plan
    # extending the plan keeps what is there
    bigger = plan_ablation(_base(synthetic_root), tmp_path, ("ssa",), (2,), epochs=5)
    assert bigger.epochs == {"baseline": 3, "sabl": 3, "ssa": 5}
    assert bigger.seeds == (0, 1, 2)
    # another recipe in the same folder is refused, naming what differs
    with pytest.raises(ValueError, match="config"):
        plan_ablation(_base(synthetic_root, lr=0.01), tmp_path, ("baseline",), (0,), epochs=3)
    with pytest.raises(ValueError, match="exactly one"):
        plan_ablation(_base(synthetic_root), tmp_path / "x", ("baseline",), (0,))


@pytest.mark.slow
def test_budget_minutes_probes_each_variant(synthetic_root: Path, tmp_path: Path):
    plan = plan_ablation(
        _base(synthetic_root), tmp_path, ("baseline", "ssa"), (0,), budget_minutes=0.5
    )
    spi = plan.budget["seconds_per_image"]
    assert set(spi) == {"baseline", "ssa"} and all(v > 0 for v in spi.values())
    # the SSA neck costs more per image than the plain PAN neck
    assert spi["ssa"] > spi["baseline"]
    assert plan.epochs["baseline"] == plan.epochs["ssa"] >= 1
    assert plan.budget["mode"] == "minutes" and plan.budget["equal"] == "epochs"


@pytest.fixture(scope="module")
def ablation_out(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ssabnet ablate`` with two variants x two seeds, 1 epoch each, on the synthetic data."""
    out = tmp_path_factory.mktemp("ablation")
    code = main(
        [
            "ablate",
            "--data",
            str(synthetic_root),
            "--variants",
            "baseline,sabl",
            "--seeds",
            "2",
            "--epochs",
            "1",
            "--imgsz",
            "320",
            "--batch",
            "4",
            "--workers",
            "0",
            "--out",
            str(out),
            "--no-progress",
            "--n-boot",
            "100",
            "train.mosaic=0",
        ]
    )
    assert code == 0
    return out


@pytest.mark.slow
def test_ablate_writes_runs_and_report(ablation_out: Path):
    runs = pd.read_csv(ablation_out / "results.csv")
    assert sorted(zip(runs["variant"], runs["seed"], strict=True)) == [
        ("baseline", 0),
        ("baseline", 1),
        ("sabl", 0),
        ("sabl", 1),
    ]
    assert set(runs["box_loss"]) == {"ciou", "sabl"} and (runs["epochs"] == 1).all()
    assert (runs["params_m"] > 1).all() and (runs["train_seconds"] > 0).all()
    for run_dir in runs["run_dir"]:
        run_dir = Path(run_dir)
        metrics = json.loads((run_dir / "val" / "last" / "metrics.json").read_text())
        saved = runs.loc[runs["run_dir"] == str(run_dir)].iloc[0]
        assert saved["AP50"] == pytest.approx(metrics["AP50"])
        assert (run_dir / "val" / "last" / "matches_gts.parquet").is_file()
    # different seeds really are different runs (different initialisations)
    a, b = (ablation_out / "baseline" / f"seed{s}" / "weights" / "last.pt" for s in (0, 1))
    assert a.read_bytes() != b.read_bytes()
    gains = pd.read_csv(ablation_out / "gains.csv")
    assert set(gains["variant"]) == {"sabl"}
    assert {"all", "very_tiny", "tiny", "small"} <= set(gains["bucket"])
    finite = gains.dropna(subset=["delta"])
    assert (
        (finite["ci_low"] <= finite["delta"] + 1e-12)
        & (finite["delta"] <= finite["ci_high"] + 1e-12)
    ).all()
    report = (ablation_out / "results.md").read_text()
    assert (
        "| baseline | baseline-n | 2 | 1 |" in report and "| sabl | baseline-n | 2 | 1 |" in report
    )
    assert "AP50 gain over `baseline`" in report and "| sabl |" in report.split("AP50 gain")[1]


@pytest.mark.slow
def test_rerun_skips_and_finishes_an_interrupted_run(
    ablation_out: Path, synthetic_root: Path, capsys
):
    weights = ablation_out / "sabl" / "seed1" / "weights" / "last.pt"
    before = weights.stat().st_mtime_ns
    (ablation_out / "sabl" / "seed1" / RUN_FILE).unlink()  # as if killed before the record
    code = main(
        [
            "ablate",
            "--data",
            str(synthetic_root),
            "--variants",
            "baseline,sabl",
            "--seeds",
            "2",
            "--epochs",
            "1",
            "--imgsz",
            "320",
            "--batch",
            "4",
            "--workers",
            "0",
            "--out",
            str(ablation_out),
            "--no-progress",
            "--n-boot",
            "50",
            "train.mosaic=0",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.count(": skipped in") == 3 and out.count(": resumed in") == 1
    assert (ablation_out / "sabl" / "seed1" / RUN_FILE).is_file()
    assert weights.stat().st_mtime_ns == before  # nothing retrained


@pytest.mark.slow
def test_peer_runs_in_the_layout_are_reported(ablation_out: Path, tmp_path: Path):
    """A peer (benchmarks/ablation_peer.py) only has to write the run layout to be compared."""
    out = tmp_path / "with_peer"
    shutil.copytree(ablation_out, out)
    peer = out / "yolov8n-p2" / "seed0"
    shutil.copytree(out / "baseline" / "seed0" / "val", peer / "val")
    record = json.loads((out / "baseline" / "seed0" / RUN_FILE).read_text())
    record |= {"variant": "yolov8n-p2", "kind": "peer", "model": "yolov8n-p2.yaml"}
    (peer / RUN_FILE).write_text(json.dumps(record))
    paths = write_report(out, n_boot=50)
    runs = pd.read_csv(paths["results"])
    assert list(runs.loc[runs["kind"] == "peer", "variant"]) == ["yolov8n-p2"]
    gains = pd.read_csv(paths["gains"]).set_index(["variant", "bucket"])
    # the peer's tables are the baseline seed 0's, so its full-data AP50 is exactly that run's
    runs = runs.set_index(["variant", "seed"])
    assert gains.loc[("yolov8n-p2", "all"), "ap_variant"] == pytest.approx(
        runs.loc[("baseline", 0), "AP50"], abs=1e-9
    )
    assert "| yolov8n-p2 |" in paths["report"].read_text()
    # every COCO scale has its column, with the seed std
    report = paths["report"].read_text()
    assert "| min/run | AP | AP50 | APs | APm | APl | AP_vt | AP_t |" in report
    baseline_row = next(line for line in report.splitlines() if line.startswith("| baseline |"))
    assert baseline_row.count(" ± ") == 7

    # --reference: the gains tables against the named variants only (here: the peer)
    assert (
        main(
            [
                "ablate",
                "--report-only",
                "--out",
                str(out),
                "--reference",
                "yolov8n-p2",
                "--n-boot",
                "50",
            ]
        )
        == 0
    )
    gains = pd.read_csv(out / "gains.csv")
    assert set(gains["reference"]) == {"yolov8n-p2"}
    assert set(gains["variant"]) == {"baseline", "sabl"}
    assert "AP50 gain over `yolov8n-p2`" in (out / "results.md").read_text()
    # a reference that did not run is an error naming it, not an empty table
    assert main(["ablate", "--report-only", "--out", str(out), "--reference", "ssa"]) == 2


def test_report_needs_runs(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no finished ablation runs"):
        write_report(tmp_path)
    assert main(["ablate", "--report-only", "--out", str(tmp_path)]) == 2


def test_report_has_one_gains_table_per_reference():
    from ssabnet.ablation import format_report

    rows = [
        {
            "reference": ref,
            "variant": var,
            "bucket": bucket,
            "ap_ref": 0.2,
            "ap_variant": 0.25,
            "delta": 0.05,
            "ci_low": 0.01,
            "ci_high": 0.09,
            "p_value": 0.01,
            "n_gt": 10,
        }
        for ref, variants in (("baseline", ("baseline-p2", "ssa")), ("baseline-p2", ("ssa",)))
        for var in variants
        for bucket in ("all", "tiny")
    ]
    text = format_report(None, pd.DataFrame(), pd.DataFrame(rows))
    assert "AP50 gain over `baseline` (" in text and "AP50 gain over `baseline-p2` (" in text
    second = text.split("AP50 gain over `baseline-p2`")[1]
    assert "| ssa | **+5.0 [+1.0, +9.0]** | **+5.0 [+1.0, +9.0]** |" in second
    assert "| baseline-p2 |" not in second
