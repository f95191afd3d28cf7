"""The app's core support modules: path safety, run loading, error analysis, pictures, launcher.

These run without Streamlit; the pages themselves are tested in ``test_app.py``.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ssabnet.analysis import error_counts, missed_objects, precision_recall_curve
from ssabnet.evaluation import MatchTables
from ssabnet.paths import UnsafePathError, resolve_under
from ssabnet.runs import (
    SCALE_METRICS,
    RunError,
    compare_metrics,
    discover_runs,
    load_run,
    per_class_table,
    runs_summary,
    scale_ap_table,
    training_curves,
)
from ssabnet.visualize import (
    crop_with_context,
    decode_image_bytes,
    draw_boxes,
    feature_heatmap,
    kernel_at,
    offset_magnitude,
    overlay_heatmap,
)


# ----------------------------------------------------------------------------- paths
def test_resolve_under_accepts_inside_and_refuses_escapes(tmp_path):
    root = tmp_path / "runs"
    (root / "a").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    assert resolve_under("a", [root]) == (root / "a").resolve()
    assert resolve_under(str(root / "a"), [root]) == (root / "a").resolve()
    with pytest.raises(UnsafePathError, match=r"'\.\.' is not allowed"):
        resolve_under("a/../../secret", [root])
    with pytest.raises(UnsafePathError, match="outside the allowed"):
        resolve_under("/etc/passwd", [root])
    with pytest.raises(UnsafePathError, match="empty"):
        resolve_under("  ", [root])
    (root / "link").symlink_to(outside)  # a symlink inside the root pointing out of it
    with pytest.raises(UnsafePathError, match="outside the allowed"):
        resolve_under("link", [root])
    # a second root is allowed too
    assert resolve_under(str(outside), [root, outside]) == outside.resolve()


# ----------------------------------------------------------------------------- runs
def test_discover_and_load_demo_runs(demo_runs):
    infos = discover_runs(demo_runs)
    assert [i.name for i in infos] == ["baseline-n", "ssabnet-n"]  # data/ is not a run
    base, ssa = infos
    assert (base.model, base.box_loss) == ("baseline-n", "ciou")
    assert (ssa.model, ssa.box_loss) == ("ssabnet-n", "ciou")  # the demo trains the defaults
    assert base.has_matches and base.weights is not None and base.problem is None
    run = load_run(base.path, name=base.name)
    stored = json.loads((base.path / "val" / run.split / "metrics.json").read_text())
    assert run.metrics == stored
    assert len(run.results) == base.epochs >= 1
    assert run.matches is not None and len(run.matches.gts) > 0
    assert run.predictions == base.path / "predictions.json"

    runs = [load_run(i.path, name=i.name) for i in infos]
    summary = runs_summary(runs)
    assert list(summary["run"]) == ["baseline-n", "ssabnet-n"]
    assert summary.loc[1, "AP50"] == pytest.approx(runs[1].metrics["AP50"])
    scales = scale_ap_table(runs)
    assert list(scales["bucket"][:5]) == list(SCALE_METRICS)
    for bucket, key in SCALE_METRICS.items():
        value = scales[(scales.run == "ssabnet-n") & (scales.bucket == bucket)]["AP"].item()
        expected = runs[1].metrics[key]
        assert (np.isnan(value) and expected is None) or value == pytest.approx(expected)
    classes = per_class_table(runs, "AP50")
    assert set(classes["class_name"]) == set(runs[0].metrics["per_class"])
    curves = training_curves(runs)
    loss = curves[(curves.run == "baseline-n") & (curves.term == "loss")]["value"]
    assert loss.tolist() == pytest.approx(runs[0].results["loss"].tolist())


def test_compare_metrics_deltas(demo_runs):
    runs = [load_run(demo_runs / n, name=n) for n in ("baseline-n", "ssabnet-n")]
    deltas = compare_metrics(runs, "baseline-n").set_index("metric")
    assert set(deltas["run"]) == {"ssabnet-n"}
    ap50 = deltas.loc["AP50"]
    assert ap50["delta"] == pytest.approx(runs[1].metrics["AP50"] - runs[0].metrics["AP50"])
    with pytest.raises(ValueError, match="reference run 'nope'"):
        compare_metrics(runs, "nope")


def test_broken_runs_give_clear_errors(demo_runs, tmp_path):
    run = tmp_path / "broken"
    shutil.copytree(demo_runs / "baseline-n", run, ignore=shutil.ignore_patterns("*.pt"))
    (run / "val" / "best" / "metrics.json").write_text("{not json")
    with pytest.raises(RunError, match=r"metrics.json: corrupt JSON"):
        load_run(run)
    shutil.rmtree(run / "val" / "best")  # falls back to val/last, and says so
    fallback = load_run(run, "best")
    assert fallback.split == "last" and fallback.notes == ("no val/best; showing val/last",)
    (run / "val" / "last" / "matches_gts.parquet").write_bytes(b"garbage")
    with pytest.raises(RunError, match="corrupt matching tables"):
        load_run(run, "last")
    (run / "config.yaml").unlink()
    with pytest.raises(RunError, match=r"config.yaml: missing"):
        load_run(run)
    info = discover_runs(tmp_path)[0]  # discovery never raises: it reports the problem
    assert info.name == "broken" and "config.yaml" in info.problem and info.model == "?"
    with pytest.raises(RunError, match="run folder not found"):
        load_run(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="runs folder not found"):
        discover_runs(tmp_path / "nothing")


# ----------------------------------------------------------------------------- error analysis
def _tables() -> MatchTables:
    """Two images, hand-made: 3 TP-able GT (tiny, tiny, medium), 1 ignored GT, 4 detections."""
    gts = pd.DataFrame(
        {
            "image_id": ["a", "a", "b", "b"],
            "gt_index": [0, 1, 0, 1],
            "label": [0, 0, 1, 0],
            "class_name": ["car", "car", "van", "car"],
            "x1": [0.0, 20.0, 0.0, 50.0],
            "y1": [0.0, 20.0, 0.0, 50.0],
            "x2": [10.0, 30.0, 40.0, 60.0],
            "y2": [10.0, 30.0, 40.0, 60.0],
            "size": [10.0, 10.0, 40.0, 10.0],
            "size_bucket": ["tiny", "tiny", "medium", "tiny"],
            "occlusion": [0, 1, 2, 0],
            "truncation": [0, 0, 0, 0],
            "status": ["tp", "fn", "tp", "ignore"],
            "matched": [True, False, True, False],
            "det_index": [0, -1, 0, -1],
            "det_score": [0.9, np.nan, 0.6, np.nan],
            "iou": [0.8, np.nan, 0.7, np.nan],
        }
    )
    dets = pd.DataFrame(
        {
            "image_id": ["a", "a", "b", "b"],
            "det_index": [0, 1, 0, 1],
            "label": [0, 0, 1, 1],
            "class_name": ["car", "car", "van", "van"],
            "score": [0.9, 0.8, 0.6, 0.3],
            "x1": [0.0, 100.0, 0.0, 100.0],
            "y1": [0.0, 100.0, 0.0, 100.0],
            "x2": [10.0, 105.0, 40.0, 140.0],
            "y2": [10.0, 105.0, 40.0, 140.0],
            "size": [10.0, 5.0, 40.0, 40.0],
            "size_bucket": ["tiny", "very_tiny", "medium", "medium"],
            "status": ["tp", "fp", "tp", "fp"],
            "tp": [True, False, True, False],
            "matched_gt": [0, -1, 0, -1],
            "iou": [0.8, np.nan, 0.7, np.nan],
        }
    )
    return MatchTables(dets, gts)


def test_precision_recall_curve_by_hand():
    tables = _tables()
    curve = precision_recall_curve(tables)  # ranks 0.9 TP, 0.8 FP, 0.6 TP, 0.3 FP; 3 GT
    assert curve["score"].tolist() == [0.9, 0.8, 0.6, 0.3]
    assert curve["recall"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert curve["precision"].tolist() == pytest.approx([1.0, 0.5, 2 / 3, 0.5])
    tiny = precision_recall_curve(tables, bucket="tiny")  # GT a0, a1; only det 0.9 counts
    assert tiny["recall"].tolist() == [0.5] and tiny["precision"].tolist() == [1.0]
    van = precision_recall_curve(tables, class_name="van")
    assert van["recall"].tolist() == [1.0, 1.0] and van["precision"].tolist() == [1.0, 0.5]
    assert precision_recall_curve(tables, bucket="large").empty
    with pytest.raises(ValueError, match="unknown size bucket 'huge'"):
        precision_recall_curve(tables, bucket="huge")


def test_error_counts_and_missed_by_hand():
    tables = _tables()
    by_bucket = error_counts(tables, "size_bucket")
    assert list(by_bucket.index) == ["very_tiny", "tiny", "small", "medium", "large"]
    assert by_bucket.loc["tiny", ["tp", "fn", "fp"]].tolist() == [1, 1, 0]
    assert by_bucket.loc["very_tiny", ["tp", "fn", "fp"]].tolist() == [0, 0, 1]
    assert by_bucket.loc["medium", ["tp", "fn", "fp"]].tolist() == [1, 0, 1]
    assert by_bucket.loc["tiny", "recall"] == 0.5 and np.isnan(by_bucket.loc["large", "recall"])
    by_class = error_counts(tables, "class_name")
    assert by_class.loc["car", ["tp", "fn", "fp"]].tolist() == [1, 1, 1]
    by_occ = error_counts(tables, "occlusion")
    assert by_occ.loc["1", "fn"] == 1 and by_occ.loc["(detections)", "fp"] == 2
    with pytest.raises(ValueError, match="unknown grouping"):
        error_counts(tables, "colour")
    missed = missed_objects(tables)
    assert missed[["image_id", "gt_index"]].values.tolist() == [["a", 1]]
    assert missed_objects(tables, ("medium",)).empty
    with pytest.raises(ValueError, match="unknown size bucket"):
        missed_objects(tables, ("tinyish",))


def test_pr_curve_on_real_matches_ends_at_table_recall(demo_runs):
    tables = load_run(demo_runs / "ssabnet-n").matches
    curve = precision_recall_curve(tables)
    positives = tables.gts["status"].isin(["tp", "fn"]).sum()
    found = (tables.gts["status"] == "tp").sum()
    final = curve["recall"].iloc[-1] if len(curve) else 0.0
    assert final == pytest.approx(found / positives)
    counts = error_counts(tables)
    assert counts["tp"].sum() == found and counts["fn"].sum() == positives - found


# ----------------------------------------------------------------------------- pictures
def test_decode_image_bytes_refuses_non_images():
    buffer = io.BytesIO()
    Image.new("RGB", (7, 5), (10, 20, 30)).save(buffer, format="PNG")
    image = decode_image_bytes(buffer.getvalue())
    assert image.shape == (5, 7, 3) and image[0, 0].tolist() == [10, 20, 30]
    with pytest.raises(ValueError, match="'notes.txt': .*not an image"):
        decode_image_bytes(b"hello, not a picture", "notes.txt")


def test_crop_draw_and_maps_by_hand():
    image = np.zeros((100, 200, 3), np.uint8)
    crop, box = crop_with_context(image, [100, 40, 110, 50], context=4.0, min_side=8)
    assert crop.shape == (40, 40, 3)  # side 4 * 10 around the centre (105, 45)
    assert box.tolist() == [15.0, 15.0, 25.0, 25.0]
    crop, box = crop_with_context(image, [0, 0, 4, 4], context=3.0, min_side=32)
    assert crop.shape == (18, 18, 3) and box.tolist() == [0.0, 0.0, 4.0, 4.0]  # clipped at 0

    drawn = draw_boxes(image, np.array([[10, 10, 20, 20]]), color=(0, 255, 0))
    assert drawn[10, 15].tolist() == [0, 255, 0] and drawn[15, 15].tolist() == [0, 0, 0]
    assert image.max() == 0  # the input is not modified

    feature = torch.zeros(2, 2, 3)
    feature[0, 1, 2], feature[1, 1, 2] = 3.0, 4.0
    heat = feature_heatmap(feature, "l2")
    assert heat[1, 2] == 1.0 and heat.sum() == 1.0
    assert feature_heatmap(feature, 1)[1, 2] == 1.0
    assert not feature_heatmap(torch.ones(1, 2, 2), "mean").any()  # constant -> zeros
    with pytest.raises(ValueError, match="unknown reduction"):
        feature_heatmap(feature, "median")

    offsets = torch.zeros(4, 1, 2)  # two groups of (dx, dy)
    offsets[0, 0, 0], offsets[1, 0, 0] = 3.0, 4.0  # group 0 length 5, group 1 length 0
    assert offset_magnitude(offsets).tolist() == [[2.5, 0.0]]
    kernels = torch.arange(9 * 2 * 3, dtype=torch.float32).reshape(9, 2, 3)
    assert kernel_at(kernels, 2, 1).ravel().tolist() == [5.0 + 6 * i for i in range(9)]
    with pytest.raises(ValueError, match="outside"):
        kernel_at(kernels, 3, 0)

    over = overlay_heatmap(image[:10, :10], np.ones((2, 2), np.float32), alpha=1.0)
    assert over.shape == (10, 10, 3) and over.max() > 200  # inferno at 1.0 is bright


# ----------------------------------------------------------------------------- launcher and CLI
def test_app_environment_and_command(demo_runs, tmp_path):
    from ssabnet.app_launcher import APP_FILE, app_command, app_environment

    env = app_environment(demo_runs, str(demo_runs / "data" / "val"), [tmp_path], ["a", "b"])
    assert env["SSABNET_APP_RUNS"] == str(demo_runs.resolve())
    assert env["SSABNET_APP_COMPARE"] == "a,b"
    roots = env["SSABNET_APP_DATA_ROOTS"].split(":")
    assert roots == [str(tmp_path.resolve()), str((demo_runs / "data" / "val").resolve())]
    catalog = app_environment(demo_runs, "syndrone-demo-val")
    assert catalog["SSABNET_APP_DATA"] == "syndrone-demo-val"
    with pytest.raises(FileNotFoundError, match="no catalog card and no folder"):
        app_environment(demo_runs, str(tmp_path / "missing"))
    command = app_command(8765)
    assert command[1:4] == ["-m", "streamlit", "run"] and Path(command[4]) == APP_FILE
    flags = dict(zip(command[5::2], command[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8765"
    assert flags["--browser.gatherUsageStats"] == "false"


def test_cli_app_arguments_and_missing_runs(tmp_path, capsys):
    from ssabnet.cli import build_parser, main

    args = build_parser().parse_args(
        [
            "app",
            "--runs",
            "r",
            "--data",
            "syndrone-demo-val",
            "--port",
            "9000",
            "--compare",
            "baseline-n,ssabnet-n",
            "--headless",
        ]
    )
    assert (args.runs, args.port, args.compare, args.headless) == (
        Path("r"),
        9000,
        "baseline-n,ssabnet-n",
        True,
    )
    assert main(["app", "--runs", str(tmp_path / "none"), "--headless"]) == 2
    assert "runs folder not found" in capsys.readouterr().err
