"""``ssabnet demo``: layout of its output, valid metrics, and re-runs that skip finished steps."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from ssabnet.cli import main
from ssabnet.demo import (
    BUDGETS,
    RUN_NAMES,
    DemoBudget,
    format_comparison,
    run_demo,
    run_is_complete,
    train_overrides,
)

pytestmark = pytest.mark.slow


def test_layout_metrics_and_predictions(demo_runs: Path):
    from ssabnet.data import load_dataset
    from ssabnet.data.coco import coco_image_ids

    record = json.loads((demo_runs / "demo.json").read_text())
    assert record["budget"]["name"] == "tiny" and record["fiftyone_dataset"] is None
    assert [s["step"] for s in record["steps"]] == [
        "data",
        "train baseline-n",
        "train ssabnet-n",
        "predict (val split, weights/best.pt)",
        "compare",
    ]
    assert all(s["status"] == "done" and s["seconds"] >= 0 for s in record["steps"])
    val = load_dataset(record["datasets"]["val"])
    assert len(val.records) == BUDGETS["tiny"].val_images
    ids = set(coco_image_ids(val.records).values())
    for run in RUN_NAMES:
        run_dir = demo_runs / run
        for name in ("config.yaml", "results.csv", "weights/best.pt", "git_commit.txt"):
            assert (run_dir / name).is_file(), name
        metrics = json.loads((run_dir / "val" / "best" / "metrics.json").read_text())
        assert metrics["n_images"] == len(val.records) and metrics["protocol"] == "coco"
        for key in ("AP", "AP50", "AP_vt", "AP_t", "APs", "AR500"):
            assert metrics[key] is None or 0.0 <= metrics[key] <= 1.0
        gts = pd.read_parquet(run_dir / "val" / "best" / "matches_gts.parquet")
        assert len(gts) == sum(len(r.boxes) for r in val.records)
        predictions = json.loads((run_dir / "predictions.json").read_text())
        assert isinstance(predictions, list) and predictions, run
        assert {p["image_id"] for p in predictions} <= ids
        assert {p["category_id"] for p in predictions} <= set(range(1, 11))
        assert all(len(p["bbox"]) == 4 and 0.0 <= p["score"] <= 1.0 for p in predictions)
        assert run_is_complete(run_dir, BUDGETS["tiny"].epochs)
    assert pd.read_csv(run_dir / "results.csv")["epoch"].tolist() == [0]
    comparison = pd.read_csv(demo_runs / "comparison.csv", index_col=0)
    assert comparison.index[0] == "all"
    assert {"very_tiny", "tiny", "small"} <= set(comparison.index)
    assert (
        (comparison["ci_low"] <= comparison["delta"] + 1e-12) | comparison["ci_low"].isna()
    ).all()


def test_recipes_differ_only_in_the_network(tmp_path: Path):
    data = {"train": "t", "val": "v"}
    base = train_overrides("baseline-n", BUDGETS["default"], data, tmp_path)
    ours = train_overrides("ssabnet-n", BUDGETS["default"], data, tmp_path)
    # the loss and recipe are the defaults (chosen on the tuning split): no overrides at all
    assert "loss" not in base and "loss" not in ours
    assert base["model"]["name"] == "baseline-n" and ours["model"]["name"] == "ssabnet-n"
    assert {k: v for k, v in base["train"].items() if k != "out"} == {
        k: v for k, v in ours["train"].items() if k != "out"
    }
    # the recipe is TrainConfig's defaults: the demo sets only its budget and paths
    assert set(ours["train"]) == {"epochs", "imgsz", "batch", "val_interval", "workers", "out"}


def test_rerun_skips_finished_steps(demo_runs: Path, capsys):
    before = {
        run: (demo_runs / run / "weights" / "best.pt").stat().st_mtime_ns for run in RUN_NAMES
    }
    start = time.perf_counter()
    code = main(["demo", "--no-app", "--no-fiftyone", "--budget", "tiny", "--out", str(demo_runs)])
    seconds = time.perf_counter() - start
    assert code == 0
    record = json.loads((demo_runs / "demo.json").read_text())
    status = {s["step"]: s["status"] for s in record["steps"]}
    assert status == {
        "data": "skipped",
        "train baseline-n": "skipped",
        "train ssabnet-n": "skipped",
        "predict (val split, weights/best.pt)": "skipped",
        "compare": "done",
    }
    after = {run: (demo_runs / run / "weights" / "best.pt").stat().st_mtime_ns for run in RUN_NAMES}
    assert after == before
    assert seconds < 30, f"a re-run took {seconds:.1f} s"
    printed = capsys.readouterr().out
    assert "[2/5] train baseline-n: skipped" in printed and "95% CI" in printed


def test_other_budget_in_same_folder_is_refused(demo_runs: Path, tmp_path: Path):
    out = tmp_path / "demo"
    shutil.copytree(demo_runs, out)
    tiny = BUDGETS["tiny"]
    longer = DemoBudget("longer", tiny.train_images, tiny.val_images, epochs=2, batch=tiny.batch)
    with pytest.raises(ValueError, match=r"train\.epochs=1.*delete"):
        run_demo(out, longer, app=False, fiftyone=False, progress=False)
    # an incomplete run folder is not taken for a finished one
    (out / "baseline-n" / "val" / "best" / "matches_gts.parquet").unlink()
    assert not run_is_complete(out / "baseline-n", tiny.epochs)
    assert not run_is_complete(out / "missing", tiny.epochs)


def test_unknown_budget_is_an_error(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown demo budget 'huge'"):
        run_demo(tmp_path, "huge", app=False)


def test_format_comparison_hand_made():
    table = pd.DataFrame(
        {"baseline-n": [0.10, None], "ssabnet-n": [0.125, 0.5]}, index=["AP", "AP_t"]
    )
    boot = pd.DataFrame(
        {
            "ap_a": [0.2],
            "ap_b": [0.25],
            "delta": [0.05],
            "ci_low": [-0.01],
            "ci_high": [0.1],
            "p_value": [0.2],
            "n_gt": [7],
        },
        index=["all"],
    )
    text = format_comparison(table, boot)
    assert "AP              10.0        12.5" in text
    assert "AP_t               -        50.0" in text
    assert "[-1.0, 10.0]" in text and " 5.0" in text
