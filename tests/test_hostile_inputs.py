"""Hostile inputs (issue 22): every one gets a one-line error naming the file (and line), a
non-zero exit code and no traceback, and nothing that existed is modified; or, where the input
is legal, the right result.

Every input is generated in the test and small. The CLI cases run ``ssabnet.cli.main`` in this
process (fast); SIGINT and a closed stdout need a real process and run ``python -m ssabnet``.

Classes covered: files destroyed by outputs (synth, predict, val, convert, train, fetch),
images (truncated, decompression bombs, not an image, EXIF orientation), flags and config
checked before any data is loaded, annotation integers, UAVDT frame sizes, COCO structure and
paths, deeply nested JSON, re-digested checkpoints, resume with changed flags, SIGINT and
BrokenPipe.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssabnet.cli import main
from ssabnet.config import Config, config_to_dict, merge
from ssabnet.data.visdrone import VISDRONE_CLASSES
from ssabnet.engine.checkpoint import read_checkpoint, rng_state, save_checkpoint, state_digest
from ssabnet.model.build import build_model

REPO = Path(__file__).resolve().parents[1]
GOOD_LINE = "2,3,10,8,1,4,0,0"  # a car, inside a 64x48 image


# ----------------------------------------------------------------------------- helpers
def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256 or 'dir'}`` of everything under ``root`` (links not followed)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def jpeg_bytes(size=(64, 48), seed=0, **save_kwargs) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, **save_kwargs)
    return buffer.getvalue()


def make_visdrone(root: Path, lines: dict[str, str] | None = None, size=(64, 48)) -> Path:
    """VisDrone folder: one noise JPEG per entry of ``lines`` (default two good images)."""
    lines = lines if lines is not None else {"a": GOOD_LINE, "b": GOOD_LINE}
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for i, (stem, text) in enumerate(lines.items()):
        (root / "images" / f"{stem}.jpg").write_bytes(jpeg_bytes(size, seed=i))
        (root / "annotations" / f"{stem}.txt").write_bytes((text + "\r\n").encode())
    return root


def png_bomb_bytes(width: int, height: int) -> bytes:
    """A valid PNG header announcing ``width x height`` 8-bit grey pixels; the data is a
    few rows of zeros (a real bomb would deflate gigabytes of zeros from a few MB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def jpeg_with_header_size(width: int, height: int) -> bytes:
    """A small JPEG whose SOF0 header is patched to announce ``width x height``."""
    data = bytearray(jpeg_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def make_checkpoint(
    path: Path, *, run_out: Path | None = None, data: Path | None = None, tamper=None
) -> Path:
    """An untrained baseline-n checkpoint (VisDrone classes, imgsz 64), optionally tampered
    with by ``tamper(state)`` and re-digested (so only the content check can catch it)."""
    train = {"imgsz": 64, "epochs": 1, "batch": 2, "workers": 0}
    if run_out is not None:
        train["out"] = str(run_out)
    changes = {"model": {"name": "baseline-n"}, "train": train}
    if data is not None:
        changes["data"] = {"train": str(data), "val": str(data)}
    cfg = merge(Config(), changes)
    torch.manual_seed(0)
    model = build_model(cfg.model, num_classes=len(VISDRONE_CLASSES))
    state = {
        "model": model.state_dict(),
        "ema": None,
        "optimizer": None,
        "scheduler": None,
        "scaler": None,
        "epoch": 0,
        "epoch_step": 0,
        "step": 0,
        "loss_sums": {},
        "best_value": 0.0,
        "rng": rng_state(),
        "config": config_to_dict(cfg),
        "class_names": list(VISDRONE_CLASSES),
        "dataset_info": {"name": "t", "format": "visdrone", "native_ids": list(range(1, 11))},
        "git_commit": "test",
        "metrics": {},
    }
    save_checkpoint(state, path)
    if tamper is not None:
        state = read_checkpoint(path)
        tamper(state)
        state["digest"] = state_digest(state)
        torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "w.pt")


def run_main(capsys, argv: list) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *names: str) -> str:
    """Non-zero exit, exactly one ``ssabnet: error:`` line naming every string in ``names``."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("ssabnet: error: "), err
    for name in names:
        assert str(name) in lines[0], f"{name!r} not in {lines[0]!r}"
    return lines[0]


# ----------------------------------------------------------------------------- the cases
# Each case builds its inputs under ``tmp`` and returns ``(argv, strings the error names)``;
# the test checks the exit code, the one-line message and that ``tmp`` is unchanged.
Builder = Callable[[Path, Path], tuple[list, list]]
CASES: dict[str, Builder] = {}


def case(name: str):
    def register(fn: Builder) -> Builder:
        assert name not in CASES
        CASES[name] = fn
        return fn

    return register


# --- outputs never destroy what exists
@case("synth-out-user-folder")
def _(tmp, ckpt):
    (tmp / "thesis").mkdir()
    (tmp / "thesis" / "thesis.txt").write_text("three years of work")
    return ["data", "synth", "--out", tmp / "thesis", "--num", "1", "--size", "64", "64"], [
        tmp / "thesis",
        "synthetic.json",
        "--overwrite",
    ]


@case("synth-out-existing-file")
def _(tmp, ckpt):
    (tmp / "notes.txt").write_text("keep me")
    return ["data", "synth", "--out", tmp / "notes.txt", "--num", "1", "--size", "64", "64"], [
        tmp / "notes.txt"
    ]


@case("synth-out-under-a-file")
def _(tmp, ckpt):
    (tmp / "f").write_text("x")
    return ["data", "synth", "--out", tmp / "f" / "sub", "--num", "1"], [tmp / "f"]


@case("predict-visdrone-over-ground-truth")
def _(tmp, ckpt):
    ds = make_visdrone(tmp / "ds")
    argv = [
        "predict",
        "--weights",
        ckpt,
        "--source",
        ds / "images",
        "--format",
        "visdrone",
        "--out",
        ds / "annotations",
        "--imgsz",
        "64",
    ]
    return argv, [ds / "annotations", "--overwrite"]


@case("predict-coco-over-existing-file")
def _(tmp, ckpt):
    ds = make_visdrone(tmp / "ds")
    (tmp / "preds.json").write_text("[]")
    return [
        "predict",
        "--weights",
        ckpt,
        "--source",
        ds / "images",
        "--out",
        tmp / "preds.json",
        "--imgsz",
        "64",
    ], [tmp / "preds.json", "--overwrite"]


@case("predict-coco-out-is-a-folder")
def _(tmp, ckpt):
    ds = make_visdrone(tmp / "ds")
    (tmp / "outdir").mkdir()
    return [
        "predict",
        "--weights",
        ckpt,
        "--source",
        ds / "images",
        "--out",
        tmp / "outdir",
        "--imgsz",
        "64",
    ], [tmp / "outdir", "is a folder"]


@case("predict-visdrone-out-is-a-file")
def _(tmp, ckpt):
    ds = make_visdrone(tmp / "ds")
    (tmp / "out.txt").write_text("x")
    return [
        "predict",
        "--weights",
        ckpt,
        "--source",
        ds / "images",
        "--format",
        "visdrone",
        "--out",
        tmp / "out.txt",
        "--imgsz",
        "64",
    ], [tmp / "out.txt", "is a file"]


def _run_val_folder(tmp: Path) -> tuple[Path, Path]:
    """A dataset and a run's val/best folder holding metrics and matching tables."""
    ds = make_visdrone(tmp / "ds")
    best = tmp / "run" / "val" / "best"
    best.mkdir(parents=True)
    for name in ("metrics.json", "matches_dets.parquet", "matches_gts.parquet"):
        (best / name).write_text("the run's own table")
    (tmp / "preds.json").write_text("[]")
    return ds, best


@case("val-out-beside-a-runs-tables")
def _(tmp, ckpt):
    ds, best = _run_val_folder(tmp)
    return [
        "val",
        "--predictions",
        tmp / "preds.json",
        "--data",
        ds,
        "--out",
        best / "other.json",
    ], [best / "matches_dets.parquet", "--overwrite"]


@case("val-out-existing-metrics")
def _(tmp, ckpt):
    ds, best = _run_val_folder(tmp)
    return [
        "val",
        "--predictions",
        tmp / "preds.json",
        "--data",
        ds,
        "--out",
        best / "metrics.json",
    ], [best / "metrics.json", "--overwrite"]


@case("val-out-is-a-folder")
def _(tmp, ckpt):
    ds, best = _run_val_folder(tmp)
    return ["val", "--predictions", tmp / "preds.json", "--data", ds, "--out", best], [
        best,
        "is a folder",
    ]


@case("val-save-predictions-existing")
def _(tmp, ckpt):
    ds = make_visdrone(tmp / "ds")
    (tmp / "p.json").write_text("[]")
    return [
        "val",
        "--weights",
        ckpt,
        "--data",
        ds,
        "--imgsz",
        "64",
        "--out",
        tmp / "m.json",
        "--save-predictions",
        tmp / "p.json",
    ], [tmp / "p.json"]


@case("convert-out-existing-file")
def _(tmp, ckpt):
    ds = make_visdrone(tmp / "ds")
    (tmp / "coco.json").write_text("{}")
    return ["data", "convert", "--root", ds, "--out", tmp / "coco.json"], [tmp / "coco.json"]


@case("convert-out-is-a-folder")
def _(tmp, ckpt):
    ds = make_visdrone(tmp / "ds")
    return ["data", "convert", "--root", ds, "--out", ds], [ds, "is a folder"]


@case("train-out-is-a-file")
def _(tmp, ckpt):
    (tmp / "run").write_text("not a folder")
    return ["train", "--data", tmp / "nowhere", "--out", tmp / "run"], [tmp / "run", "is a file"]


@case("fetch-force-onto-a-file")
def _(tmp, ckpt):
    (tmp / "target").write_text("precious")
    card = tmp / "card.yaml"
    card.write_text(f"name: x\nformat: visdrone\nroot: {tmp / 'target'}\nurl: file:///none\n")
    return ["data", "fetch", card, "--force", "--allow-unverified"], [tmp / "target", "a file"]


# --- images
def _dataset_with_image(tmp: Path, data: bytes, suffix=".jpg") -> Path:
    ds = make_visdrone(tmp / "ds")
    (ds / "images" / "a.jpg").unlink()
    (ds / "images" / f"a{suffix}").write_bytes(data)
    return ds


@case("predict-truncated-jpeg")
def _(tmp, ckpt):
    ds = _dataset_with_image(tmp, jpeg_bytes()[:700])
    return [
        "predict",
        "--weights",
        ckpt,
        "--source",
        ds / "images",
        "--out",
        tmp / "p.json",
        "--imgsz",
        "64",
    ], [ds / "images" / "a.jpg", "truncated"]


@case("val-weights-truncated-jpeg")
def _(tmp, ckpt):
    ds = _dataset_with_image(tmp, jpeg_bytes()[:700])
    return ["val", "--weights", ckpt, "--data", ds, "--imgsz", "64", "--out", tmp / "m.json"], [
        ds / "images" / "a.jpg",
        "truncated",
    ]


@case("train-truncated-jpeg")
def _(tmp, ckpt):
    ds = _dataset_with_image(tmp, jpeg_bytes()[:700])
    return [
        "train",
        "--data",
        ds,
        "--model",
        "baseline-n",
        "--epochs",
        "1",
        "--imgsz",
        "64",
        "--batch",
        "2",
        "--workers",
        "0",
        "--out",
        tmp / "run",
        "--no-progress",
    ], [
        ds / "images" / "a.jpg",
        "truncated",
    ]


@case("stats-verify-truncated-jpeg")
def _(tmp, ckpt):
    ds = _dataset_with_image(tmp, jpeg_bytes()[:700])
    return ["data", "stats", "--root", ds, "--verify"], [ds / "images" / "a.jpg"]


@case("stats-png-bomb-header")
def _(tmp, ckpt):
    ds = _dataset_with_image(tmp, png_bomb_bytes(20000, 20000), ".png")
    return ["data", "stats", "--root", ds], [ds / "images" / "a.png", "exceeds the limit"]


@case("predict-png-bomb")
def _(tmp, ckpt):
    ds = _dataset_with_image(tmp, png_bomb_bytes(30000, 30000), ".png")
    return [
        "predict",
        "--weights",
        ckpt,
        "--source",
        ds / "images" / "a.png",
        "--out",
        tmp / "p.json",
        "--imgsz",
        "64",
    ], [ds / "images" / "a.png", "exceeds"]


@case("predict-jpeg-bomb-header")
def _(tmp, ckpt):
    ds = _dataset_with_image(tmp, jpeg_with_header_size(20000, 20000))
    argv = [
        "predict",
        "--weights",
        ckpt,
        "--source",
        ds / "images" / "a.jpg",
        "--out",
        tmp / "p.json",
        "--imgsz",
        "64",
    ]
    return argv, [ds / "images" / "a.jpg", "exceeds the limit"]


@case("train-bomb-in-dataset")
def _(tmp, ckpt):
    ds = _dataset_with_image(tmp, png_bomb_bytes(20000, 20000), ".png")
    argv = [
        "train",
        "--data",
        ds,
        "--model",
        "baseline-n",
        "--epochs",
        "1",
        "--imgsz",
        "64",
        "--batch",
        "2",
        "--workers",
        "0",
        "--out",
        tmp / "run",
    ]
    return argv, [ds / "images" / "a.png"]


@case("predict-not-an-image")
def _(tmp, ckpt):
    ds = _dataset_with_image(tmp, b"this is text, not a JPEG")
    return [
        "predict",
        "--weights",
        ckpt,
        "--source",
        ds / "images",
        "--out",
        tmp / "p.json",
        "--imgsz",
        "64",
    ], [ds / "images" / "a.jpg"]


@case("predict-empty-image-file")
def _(tmp, ckpt):
    ds = _dataset_with_image(tmp, b"")
    return [
        "predict",
        "--weights",
        ckpt,
        "--source",
        ds / "images" / "a.jpg",
        "--out",
        tmp / "p.json",
        "--imgsz",
        "64",
    ], [ds / "images" / "a.jpg"]


@case("predict-folder-named-like-an-image")
def _(tmp, ckpt):
    (tmp / "src" / "x.jpg").mkdir(parents=True)
    return [
        "predict",
        "--weights",
        ckpt,
        "--source",
        tmp / "src",
        "--out",
        tmp / "p.json",
        "--imgsz",
        "64",
    ], [tmp / "src" / "x.jpg", "folder"]


# --- flags and config: checked before any data is loaded or any epoch runs
TRAIN_BASE = ["train", "--model", "baseline-n", "--imgsz", "64", "--batch", "2", "--workers", "0"]


def _train_case(*extra):
    def build(tmp, ckpt):
        ds = make_visdrone(tmp / "ds")
        return [*TRAIN_BASE, "--data", ds, "--out", tmp / "run", *extra[0]], list(extra[1])

    return build


for _name, _extra, _names in [
    ("train-epochs-0", ["--epochs", "0"], ["train.epochs", ">= 1", "0"]),
    ("train-epochs-negative", ["--epochs", "-1"], ["train.epochs", "-1"]),
    ("train-imgsz-not-multiple-of-32", ["--imgsz", "100"], ["train.imgsz", "100"]),
    ("train-batch-0", ["--batch", "0"], ["train.batch"]),
    ("train-workers-negative", ["--workers", "-2"], ["train.workers"]),
    ("train-best-metric-unknown", ["train.best_metric=foo"], ["train.best_metric", "'foo'"]),
    ("train-lr-nan", ["train.lr=.nan"], ["train.lr", "finite"]),
    ("train-lr-huge-int", ["train.lr=" + "9" * 400], ["train.lr", "finite"]),
    ("train-mosaic-probability-2", ["train.mosaic=2"], ["train.mosaic", "[0, 1]"]),
    ("train-optimizer-unknown", ["train.optimizer=adam"], ["train.optimizer", "'adam'"]),
    ("train-conf-threshold-nan", ["train.conf_threshold=.nan"], ["train.conf_threshold"]),
    ("train-override-invalid-yaml", ["train.lr=[0.1"], ["train.lr=[0.1", "invalid YAML"]),
    ("train-override-unknown-key", ["train.lrr=0.1"], ["'lrr'"]),
    ("train-override-not-key-value", ["train.lr"], ["train.lr"]),
]:
    CASES[_name] = _train_case(_extra, _names)


def _config_case(text: str | bytes, *names: str):
    def build(tmp, ckpt):
        ds = make_visdrone(tmp / "ds")
        cfg = tmp / "exp.yaml"
        cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
        marker = str(tmp / "pwned")
        argv = [*TRAIN_BASE, "--data", ds, "--out", tmp / "run", "--config", cfg]
        return [str(a).replace("MARKER", marker) for a in argv], [cfg, *names]

    return build


CASES["config-invalid-yaml"] = _config_case("train:\n  lr: [0.1\n  epochs: 2\n", "invalid YAML")
CASES["config-python-tag"] = _config_case(
    "train: !!python/object/apply:os.system ['touch MARKER']\n", "python/object"
)
CASES["config-top-level-list"] = _config_case("- 1\n- 2\n", "mapping")
CASES["config-unknown-key"] = _config_case("train: {epochz: 3}\n", "'epochz'")
CASES["config-wrong-type"] = _config_case("train: {epochs: three}\n", "train.epochs")
CASES["config-binary"] = _config_case(b"train: {lr: \xff\xfe}\n", "UTF-8")
CASES["config-deep-nesting"] = _config_case("[" * 20000 + "]" * 20000, "exp.yaml")


@case("config-missing-file")
def _(tmp, ckpt):
    return [*TRAIN_BASE, "--data", tmp, "--config", tmp / "none.yaml"], [tmp / "none.yaml"]


def _predict_flag_case(*flag_and_names):
    flags, names = flag_and_names

    def build(tmp, ckpt):
        ds = make_visdrone(tmp / "ds")
        return [
            "predict",
            "--weights",
            ckpt,
            "--source",
            ds / "images",
            "--out",
            tmp / "p.json",
            "--imgsz",
            "64",
            *flags,
        ], names

    return build


for _name, _flags, _names in [
    ("predict-conf-nan", ["--conf", "nan"], ["--conf", "nan"]),
    ("predict-conf-above-1", ["--conf", "1.5"], ["--conf", "1.5"]),
    ("predict-conf-negative", ["--conf", "-0.1"], ["--conf"]),
    ("predict-iou-0", ["--iou", "0"], ["--iou"]),
    ("predict-iou-inf", ["--iou", "inf"], ["--iou", "inf"]),
    ("predict-slice-negative", ["--slice", "-5"], ["--slice", "-5"]),
    ("predict-slice-tiny", ["--slice", "4"], ["--slice", "4"]),
    ("predict-overlap-1", ["--slice", "64", "--overlap", "1"], ["--overlap"]),
    ("predict-max-det-0", ["--max-det", "0"], ["--max-det", "0"]),
    ("predict-imgsz-not-multiple-of-32", ["--imgsz", "100"], ["--imgsz", "100"]),
    ("predict-batch-0", ["--batch", "0"], ["--batch", "0"]),
]:
    CASES[_name] = _predict_flag_case(_flags, _names)


@case("val-max-det-0")
def _(tmp, ckpt):
    ds = make_visdrone(tmp / "ds")
    (tmp / "p.json").write_text("[]")
    return [
        "val",
        "--predictions",
        tmp / "p.json",
        "--data",
        ds,
        "--max-det",
        "0",
        "--out",
        tmp / "m.json",
    ], ["--max-det"]


@case("resume-with-changed-epochs")
def _(tmp, ckpt):
    run = tmp / "run"
    make_checkpoint(run / "weights" / "last.pt", run_out=run)
    ds = make_visdrone(tmp / "ds")
    return ["train", "--resume", "--out", run, "--data", ds, "--epochs", "3"], [
        "--resume",
        "train.epochs: 1 -> 3",
    ]


@case("resume-with-changed-override")
def _(tmp, ckpt):
    run = tmp / "run"
    make_checkpoint(run / "weights" / "last.pt", run_out=run)
    return ["train", "--resume", "--out", run, "train.lr=0.5"], ["train.lr: ", " -> 0.5"]


@case("resume-without-a-run")
def _(tmp, ckpt):
    return ["train", "--resume", "--out", tmp / "none"], [tmp / "none", "last.pt"]


# --- annotation integers and files
def _visdrone_line_case(line: str, *names: str):
    def build(tmp, ckpt):
        ds = make_visdrone(tmp / "ds", {"a": GOOD_LINE + "\r\n" + line})
        return ["data", "stats", "--root", ds], [f"{ds / 'annotations' / 'a.txt'}:2", *names]

    return build


for _name, _line, _names in [
    ("visdrone-underscore-digits", "9_9,3,10,8,1,4,0,0", ["field 1", "'9_9'"]),
    ("visdrone-arabic-indic-digits", "\u0662,3,10,8,1,4,0,0", ["field 1", "not an integer"]),
    ("visdrone-fullwidth-digits", "2,\uff13,10,8,1,4,0,0", ["field 2", "not an integer"]),
    ("visdrone-value-over-2-63", f"2,3,{2**64},8,1,4,0,0", ["field 3", "out of range"]),
    ("visdrone-value-under-minus-2-63", f"{-(2**63) - 1},3,10,8,1,4,0,0", ["out of range"]),
    ("visdrone-float-field", "2.5,3,10,8,1,4,0,0", ["field 1", "'2.5'"]),
    ("visdrone-nan-field", "nan,3,10,8,1,4,0,0", ["field 1", "'nan'"]),
    ("visdrone-box-outside-image", "60,40,10,8,1,4,0,0", ["outside the 64x48 image"]),
    ("visdrone-negative-size", "2,3,-10,8,1,4,0,0", ["zero or negative size"]),
    ("visdrone-unknown-category", "2,3,10,8,1,12,0,0", ["object_category 12"]),
    ("visdrone-seven-fields", "2,3,10,8,1,4,0", ["expected 8"]),
]:
    CASES[_name] = _visdrone_line_case(_line, *_names)


@case("visdrone-binary-annotation")
def _(tmp, ckpt):
    ds = make_visdrone(tmp / "ds")
    (ds / "annotations" / "a.txt").write_bytes(b"\xff\xfe\x00garbage")
    return ["data", "stats", "--root", ds], [ds / "annotations" / "a.txt", "UTF-8"]


def _uavdt(tmp: Path, gt_text: str, sizes=((64, 48), (64, 48))) -> Path:
    root = tmp / "uavdt"
    seq = root / "UAV-benchmark-M" / "M0101"
    seq.mkdir(parents=True)
    for i, size in enumerate(sizes, start=1):
        (seq / f"img{i:06d}.jpg").write_bytes(jpeg_bytes(size, seed=i))
    (root / "GT").mkdir()
    (root / "GT" / "M0101_gt_whole.txt").write_text(gt_text)
    (root / "GT" / "M0101_gt_ignore.txt").write_text("")
    return root


UAVDT_GOOD = "1,1,2,3,10,8,1,1,1\n"

for _name, _line, _names in [
    ("uavdt-underscore-digits", "1,1,2,3,1_0,8,1,1,1", ["field 5", "'1_0'"]),
    ("uavdt-arabic-indic-digits", "\u0661,1,2,3,10,8,1,1,1", ["field 1", "not an integer"]),
    ("uavdt-value-over-2-63", f"1,{2**63},2,3,10,8,1,1,1", ["field 2", "out of range"]),
]:

    def _build(tmp, ckpt, line=_line, names=_names):
        root = _uavdt(tmp, UAVDT_GOOD + line + "\n")
        gt = root / "GT" / "M0101_gt_whole.txt"
        return ["data", "stats", "--root", root, "--format", "uavdt"], [f"{gt}:2", *names]

    CASES[_name] = _build


@case("uavdt-frame-of-another-size")
def _(tmp, ckpt):
    root = _uavdt(tmp, UAVDT_GOOD, sizes=((64, 48), (48, 64)))
    frame = root / "UAV-benchmark-M" / "M0101" / "img000002.jpg"
    return ["data", "stats", "--root", root, "--format", "uavdt"], [frame, "48x64 differs"]


def _coco(tmp: Path, doc) -> Path:
    make_visdrone(tmp / "ds")
    path = tmp / "ds" / "instances.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _coco_doc(**changes) -> dict:
    doc = {
        "images": [{"id": 1, "file_name": "images/a.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 8]}],
        "categories": [{"id": 1, "name": "car"}],
    }
    return doc | changes


for _name, _doc, _names in [
    (
        "coco-file-name-absolute",
        _coco_doc(images=[{"id": 1, "file_name": "/etc/passwd", "width": 64, "height": 48}]),
        ["'/etc/passwd'", "inside the dataset"],
    ),
    (
        "coco-file-name-dotdot",
        _coco_doc(images=[{"id": 1, "file_name": "../../x/a.jpg", "width": 64, "height": 48}]),
        ["'../../x/a.jpg'"],
    ),
    ("coco-category-without-id", _coco_doc(categories=[{"name": "car"}]), ["categories[0]"]),
    (
        "coco-category-id-string",
        _coco_doc(categories=[{"id": "1", "name": "car"}]),
        ["categories[0]"],
    ),
    (
        "coco-duplicate-category",
        _coco_doc(categories=[{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]),
        ["duplicate id 1"],
    ),
    ("coco-top-level-list", [1, 2, 3], ["top level is a list"]),
    ("coco-image-without-id", _coco_doc(images=[{"file_name": "images/a.jpg"}]), ["images[0]"]),
    (
        "coco-width-string",
        _coco_doc(images=[{"id": 1, "file_name": "images/a.jpg", "width": "wide", "height": 48}]),
        ["width"],
    ),
    (
        "coco-truncation-over-2-63",
        _coco_doc(
            annotations=[
                {
                    "id": 7,
                    "image_id": 1,
                    "category_id": 1,
                    "bbox": [2, 3, 10, 8],
                    "truncation": 2**64,
                }
            ]
        ),
        ["annotation id 7", "truncation"],
    ),
    ("coco-annotation-not-object", _coco_doc(annotations=["x"]), ["annotations[0]"]),
    ("coco-deeply-nested", "[" * 200_000 + "]" * 200_000, ["nested too deeply"]),
    ("coco-invalid-json", '{"images": [', ["not valid JSON", "line 1"]),
]:

    def _build(tmp, ckpt, doc=_doc, names=_names):
        path = _coco(tmp, doc)
        return ["data", "stats", "--root", path, "--format", "coco"], [path, *names]

    CASES[_name] = _build


@case("val-predictions-deeply-nested")
def _(tmp, ckpt):
    ds = make_visdrone(tmp / "ds")
    (tmp / "p.json").write_text("[" * 200_000 + "]" * 200_000)
    return ["val", "--predictions", tmp / "p.json", "--data", ds, "--out", tmp / "m.json"], [
        tmp / "p.json",
        "nested too deeply",
    ]


# --- checkpoints whose digest was recomputed after tampering
def _tampered_case(tamper, *names: str):
    def build(tmp, ckpt):
        ds = make_visdrone(tmp / "ds")
        weights = make_checkpoint(tmp / "w.pt", tamper=tamper)
        return [
            "predict",
            "--weights",
            weights,
            "--source",
            ds / "images",
            "--out",
            tmp / "p.json",
            "--imgsz",
            "64",
        ], [weights, *names]

    return build


def _shrink_a_tensor(state):
    key = next(k for k, v in state["model"].items() if v.ndim == 4)
    state["model"][key] = state["model"][key][:1]


def _drop_a_tensor(state):
    state["model"].pop(next(iter(state["model"])))


def _bad_model_name(state):
    state["config"]["model"]["name"] = "no-such-model"


def _no_class_names(state):
    del state["class_names"]


CASES["checkpoint-redigested-wrong-shape"] = _tampered_case(_shrink_a_tensor, "size mismatch")
CASES["checkpoint-redigested-missing-tensor"] = _tampered_case(_drop_a_tensor, "Missing key")
CASES["checkpoint-redigested-unknown-model"] = _tampered_case(_bad_model_name, "no-such-model")
CASES["checkpoint-redigested-no-class-names"] = _tampered_case(_no_class_names, "class_names")


@case("resume-redigested-wrong-tensors")
def _(tmp, ckpt):
    ds = make_visdrone(tmp / "ds")
    run = tmp / "run"
    last = make_checkpoint(
        run / "weights" / "last.pt", run_out=run, data=ds, tamper=_shrink_a_tensor
    )
    # the digest is right and no flag changes the run: only loading the tensors can fail
    return ["train", "--resume", "--out", run, "--no-progress"], [last, "size mismatch"]


# ----------------------------------------------------------------------------- the test
def test_at_least_sixty_hostile_cases():
    assert len(CASES) >= 60, len(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_is_one_line_error_and_changes_nothing(name, tmp_path, ckpt, capsys):
    argv, names = CASES[name](tmp_path, ckpt)
    before = snapshot(tmp_path)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, err = run_main(capsys, argv)
    assert_one_line_error(code, err, *[str(n) for n in names])
    assert snapshot(tmp_path) == before, "an input or existing output was modified"
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 400, f"{name} allocated {grown_mb:.0f} MB"  # no bomb was decoded
    assert not (tmp_path / "pwned").exists()  # a !!python tag never runs


# ----------------------------------------------------------------------------- legal inputs
def test_synth_replaces_only_its_own_folder_or_with_overwrite(tmp_path, capsys):
    out = tmp_path / "syn"
    args = ["data", "synth", "--out", out, "--num", "1", "--size", "64", "64"]
    assert run_main(capsys, args)[0] == 0
    (out / "extra.txt").write_text("generated folders are owned: replaced on a re-run")
    assert run_main(capsys, args)[0] == 0 and not (out / "extra.txt").exists()
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.txt").write_text("x")
    assert run_main(capsys, ["data", "synth", "--out", user, "--num", "1"])[0] == 2
    assert (user / "thesis.txt").read_text() == "x"
    assert run_main(capsys, [*args[:3], user, *args[4:], "--overwrite"])[0] == 0
    assert (user / "synthetic.json").is_file() and not (user / "thesis.txt").exists()


def test_predict_overwrite_flag_replaces_outputs(tmp_path, ckpt, capsys):
    ds = make_visdrone(tmp_path / "ds")
    out = tmp_path / "res"
    argv = [
        "predict",
        "--weights",
        ckpt,
        "--source",
        ds / "images",
        "--format",
        "visdrone",
        "--out",
        out,
        "--imgsz",
        "64",
        "--conf",
        "0.5",
    ]
    assert run_main(capsys, argv)[0] == 0
    assert run_main(capsys, argv)[0] == 2  # the second run would overwrite the first
    assert run_main(capsys, [*argv, "--overwrite"])[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "b.txt"]


def test_skip_invalid_counts_a_truncated_image(tmp_path, capsys):
    ds = _dataset_with_image(tmp_path, jpeg_bytes()[:700])
    with pytest.warns(UserWarning, match="skipped 1 image"):
        code = main(["data", "stats", "--root", str(ds), "--verify", "--skip-invalid", "--json"])
    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["num_skipped"] == 1 and stats["images"] == 1


def test_skip_invalid_counts_a_bomb_without_decoding_it(tmp_path, capsys):
    ds = _dataset_with_image(tmp_path, png_bomb_bytes(20000, 20000), ".png")
    with pytest.warns(UserWarning, match="skipped 1 image"):
        code = main(["data", "stats", "--root", str(ds), "--skip-invalid", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["num_skipped"] == 1


def test_exif_orientation_is_ignored_everywhere(tmp_path, ckpt, capsys):
    """A JPEG stored 64x48 with EXIF Orientation 6 ("rotate 90"): SSABNet reads the stored
    pixels (as VisDrone's annotations assume), so sizes, pixels and boxes agree."""
    import cv2

    from ssabnet.data.images import exif_orientation, read_image_rgb, read_image_size
    from ssabnet.data.loader import DetectionSamples

    exif = Image.Exif()
    exif[0x0112] = 6
    ds = make_visdrone(tmp_path / "ds", {"a": "40,30,20,15,1,4,0,0"})
    path = ds / "images" / "a.jpg"
    path.write_bytes(jpeg_bytes((64, 48), exif=exif.tobytes()))
    assert exif_orientation(path) == 6
    assert cv2.imread(str(path)).shape[:2] == (64, 48)  # OpenCV would rotate it
    assert read_image_rgb(path).shape == (48, 64, 3) and read_image_size(path) == (64, 48)
    stored = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(read_image_rgb(path), stored)
    # the training sample pairs the stored pixels with the box (inside 64x48)
    from ssabnet.data import load_dataset

    image, targets, _ = DetectionSamples(load_dataset(ds).records, 64)[0]
    assert image.shape == (3, 64, 64) and targets["boxes"].shape == (1, 4)
    # predict: every box lies inside the stored 64x48 frame
    code, _ = run_main(
        capsys,
        [
            "predict",
            "--weights",
            ckpt,
            "--source",
            path,
            "--out",
            tmp_path / "p.json",
            "--imgsz",
            "64",
        ],
    )
    entries = json.loads((tmp_path / "p.json").read_text())
    assert code == 0 and entries
    for entry in entries:
        x, y, w, h = entry["bbox"]
        assert x >= 0 and y >= 0 and x + w <= 64 + 1e-3 and y + h <= 48 + 1e-3


# ----------------------------------------------------------------------------- processes
def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def test_closed_stdout_exits_quietly(tmp_path):
    ds = make_visdrone(tmp_path / "ds")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: EPIPE on write
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ssabnet", "data", "stats", "--root", str(ds), "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_sigint_exits_130_with_one_line(tmp_path):
    ds = make_visdrone(tmp_path / "ds", {f"i{k}": GOOD_LINE for k in range(8)})
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ssabnet",
            "train",
            "--data",
            str(ds),
            "--model",
            "baseline-n",
            "--epochs",
            "50",
            "--imgsz",
            "64",
            "--batch",
            "2",
            "--workers",
            "0",
            "--out",
            str(run),
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        deadline = time.time() + 120
        while not (run / "config.yaml").exists() and proc.poll() is None:
            assert time.time() < deadline, "training did not start"
            time.sleep(0.2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == "ssabnet: interrupted" and "Traceback" not in err, err


# ----------------------------------------------------------------------------- app confinement
SECRET = "root:x:0:0:root:/root:/bin/bash"


@pytest.fixture
def app_roots(tmp_path) -> tuple[Path, Path, Path]:
    """``(runs root, data root, outside)``: the app may read the first two only."""
    runs, data, outside = tmp_path / "runs", tmp_path / "data", tmp_path / "outside"
    for folder in (runs, data, outside):
        folder.mkdir()
    (outside / "passwd").write_text(SECRET + "\n")
    return runs, data, outside


def _refused(spec, roots, *names: str) -> str:
    from ssabnet.analysis import load_dataset_confined
    from ssabnet.errors import SsabnetError

    with pytest.raises(SsabnetError) as info:
        load_dataset_confined(spec, roots)
    message = str(info.value)
    assert "\n" not in message and "root:x" not in message, message
    for name in names:
        assert str(name) in message, message
    return message


def test_app_refuses_a_card_in_a_run_folder_pointing_outside(app_roots):
    runs, data, outside = app_roots
    make_visdrone(outside / "ds")
    card = runs / "run1" / "card.yaml"
    card.parent.mkdir()
    card.write_text(f"name: evil\nformat: visdrone\nroot: {outside / 'ds'}\n")
    _refused(card, [data, runs], "outside the allowed folder")


def test_app_refuses_symlinked_annotations_outside_the_roots(app_roots):
    runs, data, outside = app_roots
    ds = make_visdrone(data / "ds")
    (ds / "annotations" / "a.txt").unlink()
    (ds / "annotations" / "a.txt").symlink_to(outside / "passwd")
    _refused(ds, [data, runs], ds / "annotations" / "a.txt", "link")


def test_app_refuses_a_linked_dataset_folder_and_outside_paths(app_roots):
    runs, data, outside = app_roots
    make_visdrone(outside / "ds")
    (data / "link").symlink_to(outside / "ds")
    _refused(data / "link", [data, runs], "outside")
    _refused(outside / "ds", [data, runs], "outside")
    _refused("../outside/ds", [data, runs], "'..'")


def test_app_refuses_coco_images_under_a_recorded_root_outside(app_roots):
    runs, data, outside = app_roots
    make_visdrone(outside / "ds")
    doc = _coco_doc(info={"ssabnet": {"dataset_root": str(outside / "ds")}})
    (data / "coco").mkdir()
    (data / "coco" / "instances.json").write_text(json.dumps(doc))
    _refused(data / "coco" / "instances.json", [data, runs], "outside")


def test_app_loads_a_dataset_inside_the_roots(app_roots):
    from ssabnet.analysis import load_dataset_confined

    runs, data, _ = app_roots
    ds = make_visdrone(data / "ds")
    assert len(load_dataset_confined(ds, [data, runs])) == 2


def test_errors_quote_only_a_short_escaped_excerpt(tmp_path, capsys):
    long_line = "\x1b[31m" + "A" * 5000  # an ANSI escape and a huge line
    ds = make_visdrone(tmp_path / "ds", {"a": long_line})
    code, err = run_main(capsys, ["data", "stats", "--root", ds])
    line = assert_one_line_error(code, err, f"{ds / 'annotations' / 'a.txt'}:1")
    assert "\x1b" not in line and "A" * 50 not in line and "\\x1b" in line
