"""Readers of other detectors' predictions: COCO ids/file names/stems, Ultralytics, class maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_eval_coco import INFO2, record

from ssabnet.data.record import DetectionDataset
from ssabnet.errors import InputFileError
from ssabnet.evaluation import Evaluator
from ssabnet.evaluation.readers import load_predictions


def dataset(records) -> DetectionDataset:
    return DetectionDataset(INFO2, records, Path("."))


# SSABNet COCO ids follow sorted image_id order: "a" -> 1, "b" -> 2
NAMED = dataset([record("b", [[0, 0, 10, 10]], [0]), record("a", [[5, 5, 20, 25]], [1])])


def numeric_dataset(n: int = 10) -> DetectionDataset:
    """Images ``1.jpg .. n.jpg`` (sorted as strings: 1, 10, 2, ...), one GT box each."""
    records = [record(str(i), [[10 * i, 10, 10 * i + 30, 50]], [i % 2]) for i in range(1, n + 1)]
    return dataset(records)


def write(tmp_path, entries, name="preds.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(entries))
    return path


def entry(**kw):
    base = {"image_id": 1, "category_id": 1, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}
    return base | kw


def gt_entries(ds, image_id=lambda r: r.image_id, category=lambda label, native: native):
    """Perfect predictions: every evaluated GT box with score 1."""
    out = []
    for r in ds.records:
        for box, label in zip(r.boxes, r.labels, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            native = ds.info.native_ids[label]
            out.append(
                {
                    "image_id": image_id(r),
                    "category_id": category(int(label), native),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": 1.0,
                }
            )
    return out


def ap(ds, predictions) -> float:
    evaluator = Evaluator(ds.info, ds.records)
    evaluator.process(predictions)
    return evaluator.evaluate()["AP"]


# ----------------------------------------------------------------------------- image ids
@pytest.mark.parametrize("key", ["b", "b.jpg", 2], ids=["image_id", "file_name", "ssabnet-id"])
def test_image_named_by_id_file_name_or_position(tmp_path, key):
    loaded = load_predictions(write(tmp_path, [entry(image_id=key)]), NAMED)
    assert len(loaded.predictions["b"]["scores"]) == 1
    assert len(loaded.predictions["a"]["scores"]) == 0
    assert loaded.format == "coco"


def test_coco_file_name_with_folder_is_matched(tmp_path):
    ds = dataset([record("seq1/img001", [[0, 0, 5, 5]], [0]), record("seq2/img001", [], [])])
    loaded = load_predictions(write(tmp_path, [entry(image_id="seq1/img001.jpg")]), ds)
    assert len(loaded.predictions["seq1/img001"]["scores"]) == 1
    # the bare stem is shared by two sequences: an error, not a guess
    with pytest.raises(InputFileError, match="names several images 'img001'"):
        load_predictions(write(tmp_path, [entry(image_id="img001")]), ds)


def test_ultralytics_numeric_stems_score_ap_100(tmp_path, capsys):
    ds = numeric_dataset(10)
    path = write(tmp_path, gt_entries(ds, image_id=lambda r: int(r.image_id)))
    loaded = load_predictions(path, ds, pred_format="ultralytics")
    assert loaded.format == "ultralytics"
    assert ap(ds, loaded.predictions) == pytest.approx(1.0)
    # the same ids read as SSABNet positions would be silently wrong: auto refuses to guess
    with pytest.raises(
        InputFileError, match="fit two readings.*--pred-format coco.*--pred-format ultralytics"
    ):
        load_predictions(path, ds)


def test_auto_picks_the_only_reading_that_fits(tmp_path):
    # stems 101..110: integer ids 101.. cannot be positions (10 images) -> Ultralytics stems
    ds = dataset([record(str(100 + i), [[i, i, i + 20, i + 20]], [0]) for i in range(1, 11)])
    path = write(tmp_path, gt_entries(ds, image_id=lambda r: int(r.image_id)))
    loaded = load_predictions(path, ds)
    assert loaded.format == "ultralytics"
    assert any("numeric file stems" in line for line in loaded.decisions)
    assert ap(ds, loaded.predictions) == pytest.approx(1.0)
    # positions 1..10 do not fit these stems -> SSABNet COCO ids
    loaded = load_predictions(
        write(tmp_path, gt_entries(ds, image_id=lambda r: int(r.image_id) - 100)), ds
    )
    assert loaded.format == "coco"


def test_explicit_format_never_reinterprets(tmp_path):
    ds = dataset([record(str(100 + i), [[i, i, i + 20, i + 20]], [0]) for i in range(1, 4)])
    stems = write(tmp_path, [entry(image_id=101)])
    with pytest.raises(InputFileError, match="pass --pred-format ultralytics"):
        load_predictions(stems, ds, pred_format="coco")
    positions = write(tmp_path, [entry(image_id=2)], "pos.json")
    with pytest.raises(InputFileError, match="pass --pred-format coco"):
        load_predictions(positions, ds, pred_format="ultralytics")


def test_same_images_either_way_is_not_ambiguous(tmp_path):
    ds = numeric_dataset(9)  # stems 1..9 sort like positions 1..9
    loaded = load_predictions(
        write(tmp_path, gt_entries(ds, image_id=lambda r: int(r.image_id))), ds
    )
    assert ap(ds, loaded.predictions) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- class ids
def test_zero_based_classes_detected_and_reported(tmp_path):
    path = write(tmp_path, gt_entries(NAMED, category=lambda label, native: label))
    loaded = load_predictions(path, NAMED)
    assert any("0-based" in line for line in loaded.decisions)
    assert ap(NAMED, loaded.predictions) == pytest.approx(1.0)


def test_class_map_offset_and_file(tmp_path):
    path = write(tmp_path, gt_entries(NAMED, category=lambda label, native: native + 10))
    with pytest.raises(InputFileError, match="--class-map"):
        load_predictions(path, NAMED)
    assert ap(NAMED, load_predictions(path, NAMED, class_map="offset:10").predictions) == 1.0
    mapping = tmp_path / "map.yaml"
    mapping.write_text("11: car\n12: 2\n13: null\n")
    loaded = load_predictions(path, NAMED, class_map=mapping)
    assert ap(NAMED, loaded.predictions) == pytest.approx(1.0)
    mapping.write_text("11: car\n")
    with pytest.raises(InputFileError, match="category_id 12 is not in the class map"):
        load_predictions(path, NAMED, class_map=mapping)
    mapping.write_text("11: bus\n")
    with pytest.raises(InputFileError, match="'bus' is neither a class"):
        load_predictions(path, NAMED, class_map=mapping)


def test_null_in_class_map_drops_and_counts(tmp_path):
    path = write(tmp_path, [entry(category_id=1), entry(category_id=7), entry(category_id=7)])
    loaded = load_predictions(path, NAMED, class_map={1: "car", 7: None})
    assert loaded.num_dropped == 2 and loaded.num_detections == 1
    assert any("dropped 2" in line for line in loaded.decisions)


# ----------------------------------------------------------------------------- bad files
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (entry(image_id=99), "unknown image_id 99"),
        (entry(image_id="zzz"), "unknown image_id 'zzz'"),
        (entry(category_id=5), "unknown category_id 5"),
        (entry(bbox=[1, 2, float("nan"), 4]), "NaN or infinite"),
        (entry(bbox=[1, 2, -3, 4]), "negative width or height"),
        (entry(bbox=[1, 2, 3]), "4 numbers"),
        (entry(bbox=["1", 2, 3, 4]), "4 numbers"),
        (entry(score=1.5), r"score must lie in \[0, 1\]"),
        (entry(score=-0.1), r"score must lie in \[0, 1\]"),
        (entry(score=float("nan")), "score is NaN"),
        (entry(score="0.5"), "score must be a number"),
        (entry(image_id=1.0), "integer or a string"),
        ({"image_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}, "missing 'category_id'"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_bad_entry_is_named(tmp_path, bad, message):
    path = write(tmp_path, [entry(), bad])
    with pytest.raises(InputFileError, match=message) as info:
        load_predictions(path, NAMED)
    assert str(path) in str(info.value) and "entry 1" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "no detections"),
        ("{", "not valid JSON"),
        ('{"a": 1}', "JSON list"),
        ('{"images": [], "annotations": []}', "COCO dataset file"),
    ],
)
def test_bad_file_is_named(tmp_path, text, message):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(InputFileError, match=message):
        load_predictions(path, NAMED)


def test_missing_path_and_wrong_format(tmp_path):
    with pytest.raises(InputFileError, match="predictions not found"):
        load_predictions(tmp_path / "nope.json", NAMED)
    with pytest.raises(InputFileError, match="needs a folder"):
        load_predictions(write(tmp_path, [entry()]), NAMED, pred_format="visdrone")


def test_file_order_kept_and_equal_to_the_coco_reader(tmp_path):
    from ssabnet.evaluation import read_coco_results

    rng = np.random.default_rng(0)
    entries = [
        entry(
            image_id=int(rng.integers(1, 3)),
            category_id=int(rng.integers(1, 3)),
            bbox=[float(v) for v in rng.uniform(0, 50, 4)],
            score=float(rng.uniform()),
        )
        for _ in range(200)
    ]
    path = write(tmp_path, entries)
    new = load_predictions(path, NAMED).predictions
    old = read_coco_results(path, NAMED.info, NAMED.records)
    for image_id in old:
        for key in ("boxes", "scores", "labels"):
            np.testing.assert_array_equal(new[image_id][key], old[image_id][key])
