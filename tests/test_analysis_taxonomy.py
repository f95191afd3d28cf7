"""TIDE error types, ΔAP, threshold, confusion matrix: hand-made cases and invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ssabnet.analysis import (
    ERROR_TYPES,
    FP_TYPES,
    confusion_matrix,
    error_counts_at,
    error_taxonomy,
    f1_optimal_threshold,
    false_positive_gallery,
    label_errors,
    missed_by_a_found_by_b,
    object_labels_at,
)
from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.evaluation import Evaluator
from ssabnet.evaluation.matching import ap50_from_tables

INFO = DatasetInfo("hand", "coco", ("car", "person"), (1, 2))
CAR, PERSON = 0, 1
# Objects: A and B are cars, C a person (40x40 px: "medium").
GT_BOXES = np.array([[100, 100, 140, 140], [300, 300, 340, 340], [200, 50, 240, 90]], np.float32)
GT_LABELS = np.array([CAR, CAR, PERSON])
A, B, C = GT_BOXES
SHIFTED_A = A + np.array([20, 0, 20, 0], np.float32)  # IoU 1/3 with A
EMPTY_AREA = np.array([500, 400, 540, 440], np.float32)


def _record(image_id="img0", boxes=GT_BOXES, labels=GT_LABELS) -> ImageRecord:
    n = len(boxes)
    return ImageRecord(
        image_id,
        Path(f"/nonexistent/{image_id}.jpg"),
        640,
        480,
        boxes=boxes,
        labels=labels,
        ignore=np.zeros(n, bool),
        truncation=np.zeros(n, np.int64),
        occlusion=np.zeros(n, np.int64),
    )


def _tables(dets: list[tuple[np.ndarray, int, float]], records=None):
    records = records or [_record()]
    evaluator = Evaluator(INFO, records)
    by_image = {}
    for r in records:
        mine = [d for d in dets if len(d) == 3 or d[3] == r.image_id]
        by_image[r.image_id] = {
            "boxes": np.array([d[0] for d in mine], np.float32).reshape(-1, 4),
            "labels": np.array([d[1] for d in mine], np.int64),
            "scores": np.array([d[2] for d in mine], np.float64),
        }
    evaluator.process(by_image)
    return evaluator.matches()


PERFECT = [(A, CAR, 0.9), (B, CAR, 0.8), (C, PERSON, 0.7)]

# One error of each type, each placed so that it costs AP (it outranks a true positive).
CASES = {
    "loc": [(SHIFTED_A, CAR, 0.95), (B, CAR, 0.8), (C, PERSON, 0.7)],
    "cls": [(A, PERSON, 0.95), (B, CAR, 0.8), (C, PERSON, 0.7)],
    "both": [(SHIFTED_A, PERSON, 0.95), *PERFECT],
    "dupe": [(A, CAR, 0.9), (A, CAR, 0.85), (B, CAR, 0.8), (C, PERSON, 0.7)],
    "bkg": [(EMPTY_AREA, CAR, 0.95), *PERFECT],
    "miss": [(A, CAR, 0.9), (C, PERSON, 0.7)],
}


def test_perfect_detections_have_no_error():
    report = error_taxonomy(_tables(PERFECT))
    assert report.ap["all"] == pytest.approx(1.0)
    assert all(v == 0.0 for v in report.delta_ap["all"].values())
    assert all(v == 0 for v in report.counts["all"].values())
    assert set(report.dets["error_type"]) == {"tp"}


@pytest.mark.parametrize("error", ERROR_TYPES)
def test_one_error_of_each_type_is_exactly_that_type(error):
    report = error_taxonomy(_tables(CASES[error]))
    counts = report.counts["all"]
    assert counts[error] == 1
    assert sum(counts.values()) == 1, counts
    delta = report.delta_ap["all"]
    assert delta[error] > 0.0
    assert report.ap["all"] + delta[error] == pytest.approx(1.0)  # fixing it restores AP 1
    assert all(delta[t] == 0.0 for t in ERROR_TYPES if t != error), delta
    # the error lands in the bucket of the object it is about (all objects are "medium")
    assert report.counts["medium"][error] == 1
    assert report.delta_ap["medium"][error] == pytest.approx(delta[error])
    if error in FP_TYPES:
        fp = report.dets[report.dets["status"] == "fp"]
        assert fp["error_type"].tolist() == [error]
    else:
        assert report.gts["error_type"].tolist() == ["tp", "miss", "tp"]


def test_loc_and_cls_label_the_object_they_could_take():
    loc = error_taxonomy(_tables(CASES["loc"]))
    assert loc.gts["error_type"].tolist() == ["loc", "tp", "tp"]
    assert loc.dets.loc[0, "error_gt"] == 0 and bool(loc.dets.loc[0, "oracle_tp"])
    cls = error_taxonomy(_tables(CASES["cls"]))
    assert cls.gts["error_type"].tolist() == ["cls", "tp", "tp"]


def test_only_the_best_loc_error_per_object_is_fixed():
    dets = [(SHIFTED_A, CAR, 0.95), (SHIFTED_A + 1, CAR, 0.94), (B, CAR, 0.8), (C, PERSON, 0.7)]
    labelled = label_errors(_tables(dets))
    d = labelled.dets
    assert d["error_type"].tolist() == ["loc", "loc", "tp", "tp"]
    assert d["oracle_tp"].tolist() == [True, False, False, False]


def test_small_objects_are_charged_to_their_bucket():
    tiny = np.array([[10, 10, 16, 16], [300, 300, 340, 340]], np.float32)  # 6 px, 40 px
    record = _record(boxes=tiny, labels=np.array([CAR, CAR]))
    # a 12 px box over the 6 px car (IoU 0.25): a loc error on a very tiny object
    report = error_taxonomy(
        _tables([(np.array([7, 7, 19, 19], np.float32), CAR, 0.9), (tiny[1], CAR, 0.8)], [record])
    )
    assert report.counts["very_tiny"]["loc"] == 1
    assert report.delta_ap["very_tiny"]["loc"] > 0
    assert report.counts["tiny"]["loc"] == 0 and report.ap["medium"] == pytest.approx(1.0)


def _synthetic_tables(seed=0, images=12, dets_per_image=60):
    rng = np.random.default_rng(seed)
    records, dets = [], []
    for i in range(images):
        n = int(rng.integers(3, 15))
        xy = rng.uniform(0, 560, (n, 2))
        wh = rng.uniform(4, 80, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        labels = rng.integers(0, 2, n)
        records.append(_record(f"img{i:02d}", boxes, labels))
        for _ in range(dets_per_image):
            j = int(rng.integers(n))
            jitter = rng.normal(0, rng.choice([1.0, 6.0, 30.0]), 4)
            box = boxes[j] + jitter
            box[2:] = np.maximum(box[2:], box[:2] + 1)
            label = labels[j] if rng.random() < 0.85 else 1 - labels[j]
            dets.append((box.astype(np.float32), int(label), float(rng.random()), f"img{i:02d}"))
    return _tables(dets, records)


def test_labels_partition_and_all_bucket_ap_equals_metrics_ap50():
    tables = _synthetic_tables()
    report = error_taxonomy(tables)
    d = report.dets
    fp = d["status"] == "fp"
    assert d.loc[fp, "error_type"].isin(FP_TYPES).all()
    assert (d.loc[~fp, "error_type"].isin(["tp", "ignored"])).all()
    assert sum(report.counts["all"][t] for t in FP_TYPES) == int(fp.sum())
    assert report.ap["all"] == pytest.approx(ap50_from_tables(tables, INFO.num_classes))
    for t in ERROR_TYPES:  # bucket counts add up to the total
        per_bucket = sum(report.counts[b][t] for b in report.counts if b != "all")
        assert per_bucket == report.counts["all"][t]
    assert set(report.to_json()["buckets"]["all"]) == set(ERROR_TYPES)


def test_threshold_changes_counts_but_never_ap():
    tables = _synthetic_tables()
    report = error_taxonomy(tables)
    labelled = label_errors(tables)
    low, high = error_counts_at(labelled, 0.0), error_counts_at(labelled, 0.7)
    assert (low.loc["all", "tp"] > high.loc["all", "tp"]) and (low.loc["all", "fp"] > 0)
    assert high.loc["all", "fn"] > low.loc["all", "fn"]
    again = error_taxonomy(tables)
    assert again.ap == report.ap and again.delta_ap == report.delta_ap
    # at threshold 0 the object labels are the unthresholded ones
    assert (
        object_labels_at(labelled, 0.0)
        == np.where(labelled.gts["error_type"] == "ignored", "ignored", labelled.gts["error_type"])
    ).all()


def test_f1_optimal_threshold_is_the_brute_force_optimum():
    tables = _synthetic_tables(seed=1)
    choice = f1_optimal_threshold(tables)
    d = tables.dets[tables.dets["status"].isin(["tp", "fp"])]
    num_gt = int(tables.gts["status"].isin(["tp", "fn"]).sum())
    best = -1.0
    for t in np.unique(d["score"]):
        kept = d[d["score"] >= t]
        tp = int(kept["tp"].sum())
        p, r = tp / len(kept), tp / num_gt
        best = max(best, 2 * p * r / (p + r) if p + r else 0.0)
    assert choice.f1 == pytest.approx(best)
    kept = d[d["score"] >= choice.score]
    assert choice.precision == pytest.approx(kept["tp"].mean())


def test_confusion_matrix_rows_are_objects_and_columns_detections():
    tables = _synthetic_tables(seed=2)
    labelled = label_errors(tables)
    for threshold in (0.0, 0.5):
        m = confusion_matrix(labelled, threshold)
        assert list(m.index) == ["car", "person", "background"]
        objects = labelled.gts[labelled.gts["error_type"] != "ignored"]["class_name"]
        assert m.drop("background").sum(axis=1).to_dict() == objects.value_counts().to_dict()
        kept = labelled.dets[
            (labelled.dets["score"] >= threshold) & labelled.dets["status"].isin(["tp", "fp"])
        ]
        cols = m.drop(columns="background").sum(axis=0)
        assert cols.to_dict() == kept["class_name"].value_counts().to_dict()
        assert m.loc["background", "background"] == 0
    hand = confusion_matrix(label_errors(_tables(CASES["cls"])), 0.5)
    assert hand.loc["car", "person"] == 1 and hand.loc["car", "car"] == 1


def test_galleries_fp_by_type_and_missed_by_a_found_by_b():
    labelled = label_errors(_tables(CASES["loc"]))
    rows = false_positive_gallery(labelled, threshold=0.5, error_type="loc", bucket="medium")
    assert len(rows) == 1 and rows.loc[0, "gt_class"] == "car"
    assert rows.loc[0, ["gt_x1", "gt_y1", "gt_x2", "gt_y2"]].tolist() == A.tolist()
    a, b = _tables(CASES["loc"]), _tables(PERFECT)
    found = missed_by_a_found_by_b(a, b, 0.5, 0.5)
    assert found["gt_index"].tolist() == [0]
    assert found.loc[0, "a_near_iou"] == pytest.approx(1 / 3)
    assert found.loc[0, ["a_x1", "a_x2"]].tolist() == [SHIFTED_A[0], SHIFTED_A[2]]
    assert missed_by_a_found_by_b(b, a, 0.5, 0.5).empty
    other = _tables(PERFECT, [_record(boxes=GT_BOXES + 1)])
    with pytest.raises(ValueError, match="different ground truth"):
        missed_by_a_found_by_b(a, other, 0.5, 0.5)


def test_old_tables_without_evidence_give_one_clear_error():
    tables = _tables(PERFECT)
    old = type(tables)(tables.dets.drop(columns=["cls_iou"]), tables.gts)
    with pytest.raises(ValueError, match="cls_iou"):
        error_taxonomy(old)
    assert isinstance(tables.dets, pd.DataFrame)


def test_no_detections_and_no_objects_give_clear_results():
    nothing_found = label_errors(_tables([]))
    report = error_taxonomy(_tables([]))
    assert report.ap["all"] == 0.0 and report.counts["all"]["miss"] == 3
    matrix = confusion_matrix(nothing_found, 0.5)
    assert matrix.loc["car", "background"] == 2 and matrix.loc["person", "background"] == 1
    empty_image = _record(boxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64))
    no_objects = error_taxonomy(_tables([(EMPTY_AREA, CAR, 0.9)], [empty_image]))
    assert no_objects.ap["all"] is None  # nothing to average: no number is invented
    assert all(v is None for v in no_objects.delta_ap["all"].values())
    assert no_objects.counts["all"]["bkg"] == 1
