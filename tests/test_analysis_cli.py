"""``ssabnet errors``: the JSON schema, the saved table, threshold vs AP, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ssabnet.analysis import ERROR_TYPES
from ssabnet.cli import main
from ssabnet.data import load_dataset
from ssabnet.data.coco import coco_image_ids
from ssabnet.scales import size_bucket_names


@pytest.fixture(scope="module")
def case(synthetic_root, tmp_path_factory):
    """Synthetic val set and a COCO results file with every kind of error."""
    root = synthetic_root / "val"
    dataset = load_dataset(root, format="visdrone")
    ids = coco_image_ids(dataset.records)
    rng = np.random.default_rng(0)
    entries = []
    for r in dataset.records:
        for box, label in zip(r.boxes[r.evaluated], r.labels[r.evaluated], strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            w, h = x2 - x1, y2 - y1
            shift = rng.choice([0.0, 0.05, 0.6])  # exact, good, mislocalised
            wrong = rng.random() < 0.15
            entries.append(
                {
                    "image_id": ids[r.image_id],
                    "score": float(rng.uniform(0.2, 1.0)),
                    "category_id": int((label + 1) % 10 if wrong else label) + 1,
                    "bbox": [x1 + shift * w, y1, w, h],
                }
            )
        for _ in range(20):
            x, y = rng.uniform(0, 280), rng.uniform(0, 220)
            entries.append(
                {
                    "image_id": ids[r.image_id],
                    "category_id": int(rng.integers(1, 11)),
                    "bbox": [x, y, 12.0, 10.0],
                    "score": float(rng.uniform(0, 0.5)),
                }
            )
    preds = tmp_path_factory.mktemp("errors") / "preds.json"
    preds.write_text(json.dumps(entries))
    return root, preds


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_json_schema_and_threshold_never_changes_ap(case, capsys):
    root, preds = case
    base = ["errors", "--predictions", str(preds), "--data", str(root), "--json"]
    doc = _json(capsys, base)
    assert set(doc["buckets"]) == {"all", *size_bucket_names()}
    assert all(set(v) == set(ERROR_TYPES) for v in doc["buckets"].values())
    assert 0.0 < doc["AP"] < 1.0 and doc["AP"] == doc["bucket_AP"]["all"]
    for bucket, delta in doc["buckets"].items():  # None exactly where a bucket has no objects
        if doc["bucket_AP"][bucket] is None:
            assert all(v is None for v in delta.values())
        else:
            assert all(0.0 <= v <= 1.0 for v in delta.values())
    assert doc["buckets"]["all"]["loc"] > 0 and doc["buckets"]["all"]["bkg"] > 0
    assert doc["threshold"]["chosen"] == "f1-optimal"
    assert doc["threshold"]["score"] == doc["threshold"]["f1_optimal"] > 0
    low = _json(capsys, [*base, "--threshold", "0.1"])
    high = _json(capsys, [*base, "--threshold", "0.9"])
    for key in ("AP", "buckets", "bucket_AP", "counts"):
        assert low[key] == high[key] == doc[key]
    assert low["counts_at_threshold"]["all"]["tp"] > high["counts_at_threshold"]["all"]["tp"]
    assert low["counts_at_threshold"]["all"]["fp"] > high["counts_at_threshold"]["all"]["fp"]
    compat = _json(capsys, [*base, "--tide-compat"])
    assert compat["settings"]["mode"] == "tide-compat"


def test_run_folder_table_saved_and_not_overwritten(case, tmp_path, capsys):
    root, preds = case
    run = tmp_path / "run"
    (run / "val" / "best").mkdir(parents=True)
    (run / "config.yaml").write_text("model: {name: baseline-n}\n")
    assert (
        main(
            [
                "val",
                "--predictions",
                str(preds),
                "--data",
                str(root),
                "--out",
                str(run / "val" / "best" / "metrics.json"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["errors", "--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert "very_tiny" in out and "counts at confidence >=" in out
    saved = json.loads((run / "val" / "best" / "errors.json").read_text())
    metrics = json.loads((run / "val" / "best" / "metrics.json").read_text())
    assert saved["AP"] == pytest.approx(metrics["AP50"])
    table = pd.read_csv(run / "val" / "best" / "errors.csv", index_col="bucket")
    assert table.loc["all", "dAP_loc"] == pytest.approx(saved["buckets"]["all"]["loc"], abs=1e-6)
    assert main(["errors", "--run", str(run)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["errors", "--run", str(run), "--overwrite"]) == 0


def test_clear_errors(case, tmp_path, capsys):
    root, preds = case
    assert main(["errors", "--predictions", str(preds)]) == 2
    assert "needs --data" in capsys.readouterr().err
    assert main(["errors", "--run", str(tmp_path), "--tide-compat"]) == 2
    assert "--tide-compat" in capsys.readouterr().err
    run = tmp_path / "old"
    (run / "val" / "best").mkdir(parents=True)
    (run / "config.yaml").write_text("model: {name: baseline-n}\n")
    assert (
        main(
            [
                "val",
                "--predictions",
                str(preds),
                "--data",
                str(root),
                "--out",
                str(run / "val" / "best" / "metrics.json"),
            ]
        )
        == 0
    )
    dets_file = run / "val" / "best" / "matches_dets.parquet"
    pd.read_parquet(dets_file).drop(columns=["cls_iou"]).to_parquet(dets_file)
    capsys.readouterr()
    assert main(["errors", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert "matches_dets.parquet" in err and "cls_iou" in err
