"""``ssabnet val``: COCO results file in, metrics.json + parquet tables out."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from test_eval_support import VISDRONE_SAMPLE, visdrone_sample_records

from ssabnet.cli import main
from ssabnet.data.coco import coco_image_ids


def _mini_visdrone(tmp_path, names):
    """A 3-image VisDrone-format folder (symlinked images, copied annotations)."""
    root = tmp_path / "mini"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for name in names:
        (root / "images" / f"{name}.jpg").symlink_to(VISDRONE_SAMPLE / "images" / f"{name}.jpg")
        shutil.copy(VISDRONE_SAMPLE / "annotations" / f"{name}.txt", root / "annotations")
    return root


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    records = visdrone_sample_records()[:3]
    root = _mini_visdrone(tmp_path_factory.mktemp("val"), [r.image_id for r in records])
    ids = coco_image_ids(records)
    entries = [
        {
            "image_id": ids[r.image_id],
            "category_id": int(label) + 1,
            "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
            "score": 1.0,
        }
        for r in records
        for (x1, y1, x2, y2), label in zip(r.boxes[r.evaluated], r.labels[r.evaluated], strict=True)
    ]
    return root, entries


@pytest.mark.parametrize("protocol", ["coco", "visdrone-official"])
def test_val_gt_as_predictions(mini, tmp_path, capsys, protocol):
    root, entries = mini
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(entries))
    out = tmp_path / "run" / "metrics.json"
    argv = [
        "val",
        "--predictions",
        str(preds),
        "--data",
        str(root),
        "--out",
        str(out),
        "--protocol",
        protocol,
    ]
    assert main(argv) == 0
    metrics = json.loads(out.read_text())
    assert metrics["n_images"] == 3 and metrics["protocol"] == protocol
    if protocol == "coco":
        assert metrics["AP"] == pytest.approx(1.0)
    else:  # the toolkit weights classes by the images they are in; absent classes weigh 0
        present = {e["category_id"] for e in entries}
        weighted = [name for name, row in metrics["per_class"].items() if row["weight"] > 0]
        assert len(weighted) == len(present) < 10
        assert metrics["AP"] == pytest.approx(1.0)
    dets = pd.read_parquet(out.parent / "matches_dets.parquet")
    gts = pd.read_parquet(out.parent / "matches_gts.parquet")
    assert len(dets) == len(entries) and (dets["status"] == "tp").all()
    assert (gts["status"] == "tp").sum() == len(entries)
    printed = capsys.readouterr().out
    assert "AP @[.50:.95]" in printed and "pedestrian" in printed


def test_val_rejects_a_malformed_file_with_one_line(mini, tmp_path, capsys):
    root, entries = mini
    bad = [*entries[:5], {**entries[5], "score": float("nan")}]
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(bad))
    code = main(
        ["val", "--predictions", str(preds), "--data", str(root), "--out", str(tmp_path / "m.json")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ssabnet: error: ") and "entry 5" in err and "score is NaN" in err
    assert not (tmp_path / "m.json").exists()


def test_val_needs_predictions_or_weights(capsys):
    with pytest.raises(SystemExit):
        main(["val", "--data", "x"])
    assert "--predictions" in capsys.readouterr().err
