"""``ssabnet data split``: whole sequences on one side, symlinks, a reproducible record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssabnet.cli import main
from ssabnet.data import load_dataset
from ssabnet.data.split import choose_val_sequences, sequence_of, split_by_sequence


def test_sequence_of():
    assert sequence_of("0000001_02999_d_0000005") == "0000001"
    assert sequence_of("M0101/img000001") == "M0101"
    assert sequence_of("frame") == "frame"


def test_choose_val_sequences():
    counts = {"a": 10, "b": 10, "c": 10, "d": 10}
    chosen = choose_val_sequences(counts, 0.25, seed=0)
    assert len(chosen) == 1 and chosen == choose_val_sequences(counts, 0.25, seed=0)
    assert len(choose_val_sequences(counts, 0.6, seed=1)) == 3
    # never everything: at least one sequence stays in train
    assert len(choose_val_sequences(counts, 0.99, seed=0)) == 3
    with pytest.raises(ValueError, match="only 1 sequence"):
        choose_val_sequences({"a": 5}, 0.25, 0)
    with pytest.raises(ValueError, match="val_fraction"):
        choose_val_sequences(counts, 1.0, 0)


def test_split_real_sample_by_sequence(visdrone_sample_root: Path, tmp_path: Path, capsys):
    assert (
        main(
            [
                "data",
                "split",
                "--data",
                str(visdrone_sample_root),
                "--out",
                str(tmp_path),
                "--val-fraction",
                "0.25",
                "--seed",
                "0",
            ]
        )
        == 0
    )
    assert "val:" in capsys.readouterr().out
    summary = json.loads((tmp_path / "split.json").read_text())
    train_seq = set(summary["splits"]["train"]["sequences"])
    val_seq = set(summary["splits"]["val"]["sequences"])
    assert train_seq and val_seq and not train_seq & val_seq
    train, val = load_dataset(tmp_path / "train"), load_dataset(tmp_path / "val")
    assert len(train) + len(val) == 133
    assert 0.2 <= len(val) / 133 <= 0.45
    assert {sequence_of(r.image_id) for r in val.records} == val_seq
    assert not {sequence_of(r.image_id) for r in train.records} & val_seq
    # links, not copies, and the annotations read back identically
    image = next((tmp_path / "val" / "images").iterdir())
    assert image.is_symlink() and image.resolve().parent == (visdrone_sample_root / "images")
    source = load_dataset(visdrone_sample_root).by_id()
    for record in val.records:
        assert (record.boxes == source[record.image_id].boxes).all()
    # the same seed gives the same split; a re-run replaces the links
    again = split_by_sequence(visdrone_sample_root, tmp_path, 0.25, 0)
    assert again["splits"] == summary["splits"]
    assert len(list((tmp_path / "val" / "images").iterdir())) == len(val)


def test_split_refuses_other_formats(synthetic_root: Path, tmp_path: Path):
    coco = tmp_path / "x.json"
    from ssabnet.data.coco import write_coco_json

    write_coco_json(load_dataset(synthetic_root / "val"), coco)
    with pytest.raises(ValueError, match="VisDrone"):
        split_by_sequence(coco, tmp_path / "out")
