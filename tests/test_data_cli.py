"""``ssabnet data stats|convert|synth|fetch`` (the stable CLI)."""

from __future__ import annotations

import json
import warnings

import pytest
from PIL import Image

from ssabnet.cli import main


def run_json(capsys, argv) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_stats_json_on_real_sample(capsys, visdrone_sample_root):
    argv = ["data", "stats", "--format", "visdrone", "--root", str(visdrone_sample_root)]
    stats = run_json(capsys, [*argv, "--json"])
    assert stats["images"] == 133 and stats["evaluated"] == 8283
    assert stats["ignore_regions"] == 191 and stats["boxes_per_class"]["car"] == 3412
    # README: 2137 boxes < 16 px, 5068 < 32 px, 448 with area > 96² (+1 with area exactly 96²)
    buckets = stats["size_buckets"]
    assert buckets["very_tiny"] + buckets["tiny"] == 2137
    assert buckets["very_tiny"] + buckets["tiny"] + buckets["small"] == 5068
    assert buckets["large"] == 449
    assert stats["size_bucket_labels"]["very_tiny"] == "<8"


def test_stats_by_catalog_name_and_table(capsys, visdrone_sample_root):
    assert main(["data", "stats", "--data", "visdrone-sample"]) == 0
    out = capsys.readouterr().out
    assert "images    133" in out and "8-16" in out and "car" in out


def test_stats_val_gt_buckets(capsys, visdrone_val_gt_root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = run_json(capsys, ["data", "stats", "--root", str(visdrone_val_gt_root), "--json"])
    assert stats["size_buckets"] == {
        "very_tiny": 2342,
        "tiny": 9608,
        "small": 14625,
        "medium": 11116,
        "large": 1068,
    }


def test_stats_bad_input_is_one_line_error(capsys, tmp_path):
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    Image.new("RGB", (50, 40)).save(root / "images" / "a.jpg")
    (root / "annotations" / "a.txt").write_text("1,1,2,2,1,1,0,0\r\n1,2,3\r\n")
    assert main(["data", "stats", "--format", "visdrone", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ssabnet: error: ") and "a.txt:2: expected 8" in err
    with pytest.warns(UserWarning, match="skipped 1 line"):
        argv = ["data", "stats", "--root", str(root), "--skip-invalid", "--json"]
        stats = run_json(capsys, argv)
    assert stats["num_skipped"] == 1 and stats["evaluated"] == 1


def test_stats_needs_a_source(capsys):
    assert main(["data", "stats"]) == 2
    assert "give --data NAME|PATH or --format FORMAT --root PATH" in capsys.readouterr().err


def test_synth_then_convert(capsys, tmp_path):
    out = tmp_path / "syn"
    argv = ["data", "synth", "--out", str(out), "--num", "3", "--seed", "2", "--size", "160", "128"]
    assert main(argv) == 0
    assert "wrote 3 images" in capsys.readouterr().out
    assert len(list((out / "images").glob("*.jpg"))) == 3
    target = tmp_path / "syn.json"
    argv = ["data", "convert", "--format", "visdrone", "--root", str(out), "--out", str(target)]
    assert main(argv) == 0
    assert "3 images" in capsys.readouterr().out
    coco = json.loads(target.read_text())
    assert [im["id"] for im in coco["images"]] == [1, 2, 3]
    assert coco["images"][0]["width"] == 160 and len(coco["categories"]) == 10
    stats = run_json(capsys, ["data", "stats", "--format", "coco", "--root", str(target), "--json"])
    assert stats["images"] == 3


def test_fetch_cli_errors_cleanly(capsys):
    assert main(["data", "fetch", "visdrone-det-val"]) == 2
    assert "no download URL is known for 'visdrone-det-val'" in capsys.readouterr().err
