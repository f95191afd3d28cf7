"""COCO results files: validation messages, round trips, id schemes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_eval_coco import INFO2, pred, record

from ssabnet.evaluation import (
    coco_results_to_predictions,
    predictions_to_coco_results,
    read_coco_results,
    write_coco_results,
)

# coco_image_ids numbers records in sorted string order: "a" -> 1, "b" -> 2
RECORDS = [record("b", [[0, 0, 10, 10]], [0]), record("a", [[5, 5, 20, 25]], [1])]


def entry(**kw):
    base = {"image_id": 1, "category_id": 1, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}
    base.update(kw)
    return base


def test_round_trip_predictions_coco_results(tmp_path):
    predictions = {
        "a": pred([[1.5, 2.25, 4.5, 6.25], [0, 0, 1, 1]], [0.9, 0.1], [1, 0]),
        "b": pred([[10, 20, 30, 40]], [0.3], [0]),
    }
    entries = predictions_to_coco_results(predictions, INFO2, RECORDS)
    assert entries[0] == {
        "image_id": 1,
        "category_id": 2,
        "bbox": [1.5, 2.25, 3.0, 4.0],
        "score": 0.9,
    }
    assert [e["image_id"] for e in entries] == [1, 1, 2]
    path = write_coco_results(tmp_path / "preds.json", predictions, INFO2, RECORDS)
    back = read_coco_results(path, INFO2, RECORDS)
    for image_id in predictions:
        for key in ("boxes", "scores", "labels"):
            np.testing.assert_allclose(back[image_id][key], predictions[image_id][key])


def test_images_without_detections_get_empty_arrays():
    back = coco_results_to_predictions([entry()], INFO2, RECORDS)
    assert back["b"]["boxes"].shape == (0, 4) and len(back["a"]["scores"]) == 1
    np.testing.assert_allclose(back["a"]["boxes"], [[1.0, 2.0, 4.0, 6.0]])  # xywh -> xyxy


def test_string_image_id_equal_to_record_id_is_accepted():
    back = coco_results_to_predictions([entry(image_id="b")], INFO2, RECORDS)
    assert len(back["b"]["scores"]) == 1


def test_file_order_is_kept_inside_an_image():
    entries = [entry(score=0.1), entry(score=0.9), entry(score=0.5)]
    back = coco_results_to_predictions(entries, INFO2, RECORDS)
    assert back["a"]["scores"].tolist() == [0.1, 0.9, 0.5]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (entry(image_id=7), "unknown image_id 7"),
        (entry(image_id="c"), "unknown image_id 'c'"),
        (entry(category_id=0), "unknown category_id 0"),
        (entry(category_id=11), "unknown category_id 11"),
        (entry(bbox=[1.0, float("nan"), 3.0, 4.0]), "NaN or infinite"),
        (entry(bbox=[1.0, 2.0, -3.0, 4.0]), "negative width or height"),
        (entry(bbox=[1.0, 2.0, 3.0]), "4 numbers"),
        (entry(bbox=[1.0, 2.0, "3", 4.0]), "4 numbers"),
        ({"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}, "missing 'score'"),
        (entry(score=None), "score must be a number"),
        (entry(score=float("nan")), "score is NaN"),
        ([1, 2, 3], "not a JSON object"),
    ],
)
def test_malformed_entry_is_named(bad, message):
    entries = [entry(), entry(image_id=2), bad, entry(image_id=99)]
    with pytest.raises(ValueError, match="entry 2 ") as err:
        coco_results_to_predictions(entries, INFO2, RECORDS, source="preds.json")
    assert message in str(err.value)
    assert str(err.value).startswith("preds.json: entry 2 ")


def test_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_coco_results(tmp_path / "missing.json", INFO2, RECORDS)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"image_id": 1,')
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        read_coco_results(broken, INFO2, RECORDS)
    not_list = tmp_path / "dict.json"
    not_list.write_text(json.dumps({"annotations": []}))
    with pytest.raises(ValueError, match="must be a JSON list"):
        read_coco_results(not_list, INFO2, RECORDS)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([entry(), entry(image_id=42)]))
    with pytest.raises(ValueError, match=r"bad.json: entry 1 .*unknown image_id 42"):
        read_coco_results(bad, INFO2, RECORDS)
