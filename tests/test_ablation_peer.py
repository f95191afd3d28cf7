"""The peer script's data side (benchmarks/ablation_peer.py), without ultralytics.

The peer trains on a YOLO-format copy of our data; these tests check that the copy holds exactly
the evaluated objects, in the right place, and that it is rebuilt when the data changes.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ssabnet.data import load_dataset
from ssabnet.data.record import ImageRecord

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation_peer.py"


@pytest.fixture(scope="module")
def peer():
    spec = importlib.util.spec_from_file_location("ablation_peer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports ssabnet, torch, numpy; ultralytics only on use
    return module


def _parse(text: str) -> np.ndarray:
    rows = [line.split() for line in text.splitlines()]
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def test_labels_keep_only_evaluated_objects(peer, tmp_path: Path):
    record = ImageRecord(
        "x",
        tmp_path / "x.jpg",
        width=100,
        height=50,
        boxes=np.array(
            [[10, 10, 30, 20], [0, 0, 5, 5], [50, 20, 70, 40], [90, 40, 101, 51], [40, 40, 40, 45]],
            np.float32,
        ),
        labels=np.array([3, 0, -1, 9, 2]),
        ignore=np.array([False, True, False, False, False]),
        truncation=np.zeros(5, np.int64),
        occlusion=np.zeros(5, np.int64),
    )
    text, dropped = peer.yolo_labels(record)
    rows = _parse(text)
    # the ignored object, the class -1 object and the zero-width box are dropped
    assert dropped == 3 and rows[:, 0].tolist() == [3, 9]
    assert rows[0, 1:] == pytest.approx([0.2, 0.3, 0.2, 0.2])
    # the box 1 px outside the image is clipped to it (ultralytics rejects it otherwise)
    assert rows[1, 1:] == pytest.approx([0.95, 0.9, 0.1, 0.2])
    assert (rows[:, 1:] >= 0).all() and (rows[:, 1:] <= 1).all()


def test_yolo_copy_round_trips_and_rebuilds(peer, synthetic_root: Path, tmp_path: Path):
    train = load_dataset(synthetic_root / "train")
    val = load_dataset(synthetic_root / "val")
    root = tmp_path / "_peer_data"
    specs = {"train": "t", "val": "v"}
    data_yaml = peer.prepare_yolo_data(root, train, val, specs)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["splits"]["val"]["images"] == len(val.records)
    images = sorted((root / "images" / "val").iterdir())
    assert len(images) == len(val.records) and all(p.is_symlink() for p in images)
    for path, record in zip(images, val.records, strict=True):
        assert path.resolve() == Path(record.image_path).resolve()
        rows = _parse((root / "labels" / "val" / path.name).with_suffix(".txt").read_text())
        size = np.array([record.width, record.height] * 2)
        back = np.concatenate([rows[:, 1:3] - rows[:, 3:] / 2, rows[:, 1:3] + rows[:, 3:] / 2], 1)
        keep = record.evaluated
        expected = np.clip(record.boxes[keep], 0, size)
        assert np.abs(back * size - expected).max() < 1e-3
        assert rows[:, 0].tolist() == record.labels[keep].tolist()
    stamp = (root / "manifest.json").stat().st_mtime_ns
    assert peer.prepare_yolo_data(root, train, val, specs) == data_yaml  # reused
    assert (root / "manifest.json").stat().st_mtime_ns == stamp
    peer.prepare_yolo_data(root, train, load_dataset(synthetic_root / "train"), specs)
    assert len(list((root / "images" / "val").iterdir())) == len(train.records)  # rebuilt


def test_differences_list_only_what_the_recipe_leaves_different(peer, synthetic_root: Path):
    from ssabnet.config import Config, merge

    train = load_dataset(synthetic_root / "train")
    args = {"epochs": 20, "device": "cpu"}

    def topics(cfg: Config) -> set[str]:
        found = peer.differences(cfg, args, train, "shared", [4, 8, 16, 32])
        return {d.split(":")[0] for d in found}

    old = merge(  # the recipe before the parity switches became the defaults
        Config(),
        {
            "loss": {"assigner_widen_tiny": False, "assigner_metric": "iou"},
            "train": {"loss_times_batch": False, "lr_step": "step"},
        },
    )
    plain = topics(old)
    assert {"assigner candidates", "assigner overlap", "loss scale", "lr schedule"} <= plain
    assert any(
        "shorter than 8 px" in d
        for d in peer.differences(old, args, train, "shared", [4, 8, 16, 32])
    )
    left = topics(Config())  # the defaults: ultralytics' rules
    assert not left & {"assigner candidates", "assigner overlap", "loss scale", "lr schedule"}
    assert "augmentation code" in left  # always: ultralytics' own augmentation code
    assert "CIoU" in peer.PEER_LOSS and "IoU metric" not in peer.PEER_LOSS
