"""Sliced inference, export equivalence and the train/predict/export/val command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssabnet.engine.predict import predict_image, slice_windows, tile_origins
from ssabnet.ops.anchors import make_anchors


class BlobDetector(nn.Module):
    """A hand-made 'detector' obeying the model contract: one class, one stride-8 level.

    A cell fires when the mean brightness of its 8x8 input pixels exceeds 0.6, predicting a box
    of one stride on every side of the cell centre. A 12 px white square therefore fires at
    full resolution but not once a 1600 px frame is letterboxed to 640 (it becomes 4.8 px and
    covers at most 36 % of a cell): only sliced inference can find it.
    """

    reg_max = 16

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        cells = F.avg_pool2d(images.mean(1, keepdim=True), 8)  # [B, 1, H/8, W/8]
        batch, _, height, width = cells.shape
        cls_logits = ((cells - 0.6) * 40).flatten(1)[..., None]  # [B, A, 1]
        box_logits = torch.full((batch, height * width, 4, self.reg_max), -20.0)
        box_logits[..., 1] = 20.0  # distance = 1 stride on each side
        points, strides = make_anchors([(height, width)], [8])
        return {
            "cls_logits": cls_logits,
            "box_logits": box_logits,
            "anchor_points": points,
            "anchor_strides": strides,
        }


def test_tile_origins_cover_the_image():
    assert tile_origins(1000, 640, 0.2) == [0, 360]  # step 512, last aligned to the edge
    assert tile_origins(640, 640, 0.2) == [0]
    assert tile_origins(300, 640, 0.2) == [0]
    assert tile_origins(1600, 640, 0.2) == [0, 512, 960]
    windows = slice_windows(1600, 1000, 640, 0.2)
    assert len(windows) == 6 and windows[-1] == (960, 360, 1600, 1000)
    with pytest.raises(ValueError, match="overlap"):
        tile_origins(1000, 640, 1.0)


@pytest.mark.parametrize("merge", ["nms", "wbf"])
def test_sliced_inference_finds_a_tiny_object_in_a_big_frame(merge):
    frame = np.zeros((1200, 1600, 3), np.uint8)
    x, y = 1000, 600  # inside the overlap of two tiles (x 960..1152): found twice, merged once
    frame[y : y + 12, x : x + 12] = 255
    model = BlobDetector()
    full = predict_image(model, frame, imgsz=640, conf=0.5)
    assert len(full["boxes"]) == 0
    sliced = predict_image(
        model, frame, imgsz=640, conf=0.5, slice_size=640, overlap=0.2, merge=merge
    )
    assert len(sliced["boxes"]) == 1
    cx = (sliced["boxes"][0, 0] + sliced["boxes"][0, 2]) / 2
    cy = (sliced["boxes"][0, 1] + sliced["boxes"][0, 3]) / 2
    assert abs(cx - (x + 6)) <= 4 and abs(cy - (y + 6)) <= 4  # in frame pixels


@pytest.fixture(scope="module")
def trained_run(synthetic_root, tmp_path_factory):
    """One short CLI training run (baseline-n, 128 px) shared by the command-line tests."""
    from ssabnet.cli import main

    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(
        [
            "train",
            "--data",
            str(synthetic_root),
            "--model",
            "baseline-n",
            "--box-loss",
            "ciou",
            "--epochs",
            "1",
            "--imgsz",
            "128",
            "--batch",
            "8",
            "--workers",
            "0",
            "--out",
            str(out),
            "--no-progress",
            "train.mosaic=0.5",
        ]
    )
    assert code == 0
    return out


def test_cli_train_writes_the_run_folder(trained_run, synthetic_root):
    import yaml

    cfg = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert cfg["model"]["name"] == "baseline-n" and cfg["loss"]["box"] == "ciou"
    assert cfg["train"]["mosaic"] == 0.5 and cfg["data"]["val"] == str(synthetic_root / "val")
    for name in (
        "weights/last.pt",
        "weights/best.pt",
        "results.csv",
        "git_commit.txt",
        "val/last/metrics.json",
        "val/last/matches_dets.parquet",
    ):
        assert (trained_run / name).is_file(), name
    header = (trained_run / "results.csv").read_text().splitlines()[0].split(",")
    for column in (
        "epoch",
        "lr",
        "loss",
        "cls",
        "box",
        "dfl",
        "AP",
        "AP50",
        "APs",
        "AP_vt",
        "AP_t",
        "time",
    ):
        assert column in header


def test_cli_predict_coco_and_visdrone(trained_run, synthetic_root, tmp_path):
    from ssabnet.cli import main

    weights = str(trained_run / "weights" / "last.pt")
    source = str(synthetic_root / "val" / "images")
    assert (
        main(
            [
                "predict",
                "--weights",
                weights,
                "--source",
                source,
                "--out",
                str(tmp_path / "p.json"),
                "--imgsz",
                "128",
            ]
        )
        == 0
    )
    entries = json.loads((tmp_path / "p.json").read_text())
    assert entries and {"image_id", "category_id", "bbox", "score"} <= set(entries[0])
    assert {e["category_id"] for e in entries} <= set(range(1, 11))
    assert (
        main(
            [
                "predict",
                "--weights",
                weights,
                "--source",
                source + "/*.jpg",
                "--out",
                str(tmp_path / "vd"),
                "--format",
                "visdrone",
                "--imgsz",
                "128",
                "--slice",
                "160",
                "--overlap",
                "0.25",
            ]
        )
        == 0
    )
    files = sorted((tmp_path / "vd").glob("*.txt"))
    assert len(files) == 8
    scores = [float(line.split(",")[4]) for line in files[0].read_text().splitlines()]
    assert scores == sorted(scores, reverse=True) and len(scores) <= 500


def test_cli_val_weights_same_as_predictions_file(trained_run, synthetic_root, tmp_path):
    from ssabnet.cli import main

    weights = str(trained_run / "weights" / "last.pt")
    data = str(synthetic_root / "val")
    assert (
        main(
            [
                "predict",
                "--weights",
                weights,
                "--source",
                data + "/images",
                "--out",
                str(tmp_path / "p.json"),
                "--imgsz",
                "128",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "val",
                "--weights",
                weights,
                "--data",
                data,
                "--imgsz",
                "128",
                "--out",
                str(tmp_path / "a" / "metrics.json"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "val",
                "--predictions",
                str(tmp_path / "p.json"),
                "--data",
                data,
                "--out",
                str(tmp_path / "b" / "metrics.json"),
            ]
        )
        == 0
    )
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    for key in ("AP", "AP50", "AR500"):
        assert a[key] == pytest.approx(b[key], abs=1e-6)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_gives_the_same_boxes_as_eager(trained_run, synthetic_root, tmp_path, fmt, capsys):
    from ssabnet.cli import main
    from ssabnet.data.loader import read_image_rgb
    from ssabnet.data.transforms import Targets, letterbox
    from ssabnet.engine.export import check_export
    from ssabnet.engine.predict import load_checkpoint

    out = tmp_path / ("model.ts" if fmt == "torchscript" else "model.onnx")
    weights = str(trained_run / "weights" / "last.pt")
    assert main(["export", "--weights", weights, "--format", fmt, "--out", str(out)]) == 0
    assert "max |export - eager|" in capsys.readouterr().out
    images = [
        letterbox(read_image_rgb(p), Targets.empty(), 128)[0]
        for p in sorted((synthetic_root / "val" / "images").glob("*.jpg"))[:3]
    ]
    batch = torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy()).float() / 255
    diffs = check_export(load_checkpoint(weights).model, out, 128, images=batch)
    assert diffs["max_box_diff"] < 1e-2 and diffs["max_detection_diff"] < 1e-2
    # an existing --out is left alone unless --overwrite; nothing else is written beside it
    before = out.read_bytes()
    assert main(["export", "--weights", weights, "--format", fmt, "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and out.read_bytes() == before
    again = ["export", "--weights", weights, "--format", fmt, "--out", str(out), "--overwrite"]
    assert main(again) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_bad_checkpoint_is_a_one_line_cli_error(tmp_path, capsys):
    from ssabnet.cli import main

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert (
        main(
            [
                "predict",
                "--weights",
                str(bad),
                "--source",
                str(tmp_path),
                "--out",
                str(tmp_path / "p.json"),
            ]
        )
        == 2
    )
    assert "bad.pt" in capsys.readouterr().err
