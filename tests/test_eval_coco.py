"""COCO protocol of the Evaluator: hand-computed cases, real VisDrone sample, both backends."""

from __future__ import annotations

import numpy as np
import pytest
from test_eval_support import VISDRONE_INFO, noisy_predictions, visdrone_sample_records

from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.evaluation import METRIC_KEYS, Evaluator
from ssabnet.evaluation.coco_protocol import AREA_RANGES

INFO2 = DatasetInfo("toy", "coco", ("car", "pedestrian"), (1, 2))


def record(image_id, boxes, labels, ignore=None, regions=None, size=(1000, 1000)):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    return ImageRecord(
        image_id=image_id,
        image_path=f"{image_id}.jpg",
        width=size[0],
        height=size[1],
        boxes=boxes,
        labels=np.asarray(labels, np.int64).reshape(n),
        ignore=np.zeros(n, bool) if ignore is None else np.asarray(ignore, bool),
        truncation=np.zeros(n, np.int64),
        occlusion=np.zeros(n, np.int64),
        ignore_regions=np.zeros((0, 4), np.float32)
        if regions is None
        else np.asarray(regions, np.float32).reshape(-1, 4),
    )


def pred(boxes, scores, labels):
    return {
        "boxes": np.asarray(boxes, np.float64).reshape(-1, 4),
        "scores": np.asarray(scores, np.float64),
        "labels": np.asarray(labels, np.int64),
    }


def evaluate(info, records, predictions, **kwargs):
    evaluator = Evaluator(info, records, **kwargs)
    evaluator.process(predictions)
    return evaluator.evaluate()


@pytest.fixture(scope="module")
def sample():
    return visdrone_sample_records()


def gt_as_predictions(records):
    return {
        r.image_id: pred(r.boxes[r.evaluated], np.ones(r.evaluated.sum()), r.labels[r.evaluated])
        for r in records
    }


@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
def test_gt_as_predictions_gives_ap_one_on_real_sample(sample, backend):
    records = sample if backend == "faster" else sample[:30]
    m = evaluate(VISDRONE_INFO, records, gt_as_predictions(records), backend=backend)
    for key in ("AP", "AP50", "AP75", "APs", "APm", "AP_vt", "AP_t", "AP_s_tiny", "AR500"):
        assert m[key] == pytest.approx(1.0), key
    assert all(row["AP"] == pytest.approx(1.0) for row in m["per_class"].values())
    assert set(METRIC_KEYS) <= set(m)
    assert (m["n_images"], m["max_dets"], m["protocol"], m["backend"]) == (
        len(records),
        500,
        "coco",
        backend,
    )


def shifted_case():
    """10 GT cars 40x40; 5 detected exactly (score .8), 5 shifted by 8 px: IoU 32/48 (score .9)."""
    boxes = np.array([[50 * i, 100, 50 * i + 40, 140] for i in range(10)], np.float32)
    dets = boxes.astype(np.float64).copy()
    dets[5:, [0, 2]] += 8.0
    scores = np.r_[np.full(5, 0.8), np.full(5, 0.9)]
    return [record("a", boxes, np.zeros(10))], {"a": pred(dets, scores, np.zeros(10))}


@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
def test_shifted_boxes_give_hand_computed_ap(backend):
    # IoU of a shifted box: (40-8)/(40+8) = 2/3. Thresholds .50-.65 (4 of 10): 10 TP -> AP 1.
    # Thresholds .70-.95 (6): the 5 shifted (higher scores) are FP first, then 5 TP: interpolated
    # precision is 5/10 up to recall .5 (51 of the 101 recall points), 0 beyond.
    records, predictions = shifted_case()
    m = evaluate(INFO2, records, predictions, backend=backend)
    low = 25.5 / 101
    assert m["AP50"] == pytest.approx(1.0)
    assert m["AP75"] == pytest.approx(low)
    assert m["AP"] == pytest.approx((4 * 1.0 + 6 * low) / 10)
    assert m["APm"] == pytest.approx(m["AP"])  # 40 px: COCO medium
    assert m["APs"] is None and m["AP_vt"] is None and m["APl"] is None
    # recall: 1 at 4 thresholds, 0.5 at 6; AR1 (1 det per class per image): the first shifted
    # box, TP only up to .65 -> 1/10 at 4 thresholds.
    assert m["AR500"] == pytest.approx(0.7)
    assert m["AR100"] == pytest.approx(0.7)
    assert m["AR1"] == pytest.approx(0.04)
    assert m["per_class"]["pedestrian"]["AP"] is None  # no GT of that class
    assert m["per_class"]["car"]["AP"] == pytest.approx(m["AP"])


def test_bucket_edges_are_half_open():
    # an 8x8 box (size exactly 8) is "tiny", not "very_tiny"; 7.9 px is very tiny
    records = [record("a", [[10, 10, 18, 18], [100, 100, 107.9, 107.9]], [0, 0])]
    predictions = {"a": pred([[10, 10, 18, 18]], [0.9], [0])}
    m = evaluate(INFO2, records, predictions)
    assert m["AP_t"] == pytest.approx(1.0)
    assert m["AP_vt"] == pytest.approx(0.0)  # the 7.9 px object is missed
    labels = [label for label, _ in AREA_RANGES]
    assert labels == ["all", "coco_small", "medium", "large", "very_tiny", "tiny", "small"]


def test_detections_and_gt_in_ignore_regions_change_nothing(sample):
    records = sample[:40]
    base_preds = noisy_predictions(records, seed=3)
    base = evaluate(VISDRONE_INFO, records, base_preds)
    rng = np.random.default_rng(0)
    extra_preds, extra_records = {}, []
    added = 0
    for r in records:
        p = {k: v.copy() for k, v in base_preds[r.image_id].items()}
        boxes, labels = list(r.boxes), list(r.labels)
        for x1, y1, x2, y2 in r.ignore_regions:
            if x2 - x1 < 4 or y2 - y1 < 4:
                continue
            w, h = (x2 - x1) / 2, (y2 - y1) / 2
            x, y = rng.uniform(x1, x1 + w), rng.uniform(y1, y1 + h)
            box = np.array([[x, y, x + w, y + h]])
            p["boxes"] = np.concatenate([p["boxes"], box])
            p["scores"] = np.r_[p["scores"], 0.99]
            p["labels"] = np.r_[p["labels"], rng.integers(0, 10)]
            boxes.append(box[0].astype(np.float32))
            labels.append(int(rng.integers(0, 10)))
            added += 1
        n = len(boxes)
        extra_records.append(
            record(
                r.image_id,
                boxes,
                labels,
                np.r_[r.ignore, np.zeros(n - len(r.ignore), bool)],
                r.ignore_regions,
                (r.width, r.height),
            )
        )
        extra_preds[r.image_id] = p
    assert added > 20
    extra = evaluate(VISDRONE_INFO, extra_records, extra_preds)
    for key in METRIC_KEYS:
        assert extra[key] == pytest.approx(base[key], abs=1e-12), key


def test_ignore_regions_drop_at_half_area():
    region = [[0, 0, 100, 100]]
    # GT car 1 is exactly half inside (dropped); GT car 2 is outside and detected
    r = record("a", [[80, 10, 120, 30], [60, 110, 160, 130]], [0, 0], regions=region)
    m = evaluate(INFO2, [r], {"a": pred([[60, 110, 160, 130]], [0.5], [0])})
    assert m["AP"] == pytest.approx(1.0)  # the half-covered GT is not a miss
    r2 = record("a", [[82, 10, 122, 30], [60, 110, 160, 130]], [0, 0], regions=region)
    m2 = evaluate(INFO2, [r2], {"a": pred([[60, 110, 160, 130]], [0.5], [0])})
    assert m2["AR500"] == pytest.approx(0.5)  # 18/40 inside: kept, and missed


def test_truncation_to_max_dets_per_image():
    gt = [[10, 10, 50, 50]]
    far = np.array(
        [
            [600 + i % 20 * 10, 600 + i // 20 * 10, 605 + i % 20 * 10, 605 + i // 20 * 10]
            for i in range(500)
        ],
        np.float64,
    )
    boxes = np.concatenate([far, [[10, 10, 50, 50]]])
    labels = np.zeros(501)
    low_tp = pred(boxes, np.r_[np.full(500, 0.9), 0.1], labels)  # TP is the 501st
    high_tp = pred(boxes, np.r_[np.full(500, 0.5), 0.95], labels)
    records = [record("a", gt, [0])]
    assert evaluate(INFO2, records, {"a": low_tp})["AR500"] == 0.0
    assert evaluate(INFO2, records, {"a": low_tp}, max_dets=501)["AR501"] == 1.0
    assert evaluate(INFO2, records, {"a": high_tp})["AP"] == pytest.approx(1.0)
    evaluator = Evaluator(INFO2, records)
    evaluator.process({"a": low_tp})
    dets = evaluator.matches().dets
    assert (dets["status"] == "over_max_dets").sum() == 1
    assert dets.loc[dets["status"] == "over_max_dets", "det_index"].item() == 500


def test_others_and_score0_objects_are_ignore_not_false_positives():
    # car GT, an "others" object (label -1) and a score-0 pedestrian (ignore GT of its class)
    r = record(
        "a",
        [[10, 10, 50, 50], [200, 200, 260, 240], [400, 400, 420, 440]],
        [0, -1, 1],
        ignore=[False, True, True],
    )
    predictions = {
        "a": pred(
            [[200, 200, 260, 240], [10, 10, 50, 50], [401, 401, 419, 439], [400, 400, 420, 440]],
            [0.9, 0.8, 0.7, 0.6],
            [0, 0, 1, 0],  # car on "others"; car on car; pedestrian on the ignore pedestrian;
        ),  # a car on the ignore *pedestrian* is a plain FP (the ignore box is class-specific)
    }
    m = evaluate(INFO2, [r], predictions)
    assert m["per_class"]["car"]["AP"] == pytest.approx(1.0)  # the last FP is after full recall
    assert m["per_class"]["pedestrian"]["AP"] is None  # only ignore GT: nothing to average
    evaluator = Evaluator(INFO2, [r])
    evaluator.process(predictions)
    dets, gts = evaluator.matches()
    assert dets["status"].tolist() == ["ignored", "tp", "ignored", "fp"]
    assert gts["status"].tolist() == ["tp", "ignore", "ignore"]


def test_ignore_gt_cannot_absorb_a_true_positive():
    # a large ignore car box around a real car: the detection (IoU .8 with the car, and fully
    # inside the ignore box) must match the real car
    r = record("a", [[100, 100, 140, 140], [80, 80, 200, 200]], [0, 0], ignore=[False, True])
    predictions = {"a": pred([[104, 100, 144, 140]], [0.9], [0])}
    evaluator = Evaluator(INFO2, [r])
    evaluator.process(predictions)
    assert evaluator.evaluate()["AP50"] == pytest.approx(1.0)
    assert evaluator.matches().dets["status"].tolist() == ["tp"]


@pytest.mark.slow
def test_backends_agree_on_real_sample_with_noisy_predictions(sample):
    predictions = noisy_predictions(sample, seed=0, fp_fraction=0.3)
    fast = evaluate(VISDRONE_INFO, sample, predictions, backend="faster")
    ref = evaluate(VISDRONE_INFO, sample, predictions, backend="pycocotools")
    assert 0.1 < fast["AP50"] < 0.9  # a non-trivial case
    for key in METRIC_KEYS:
        assert abs(fast[key] - ref[key]) < 1e-4, key
    for name, row in fast["per_class"].items():
        for key, value in row.items():
            other = ref["per_class"][name][key]
            assert (value is None and other is None) or abs(value - other) < 1e-4, (name, key)


def test_process_validates_input():
    records = [record("a", [[0, 0, 10, 10]], [0])]
    evaluator = Evaluator(INFO2, records)
    with pytest.raises(ValueError, match="unknown image_id 'b'"):
        evaluator.process({"b": pred([], [], [])})
    with pytest.raises(ValueError, match="label 5 outside 0..1"):
        evaluator.process({"a": pred([[0, 0, 1, 1]], [0.5], [5])})
    with pytest.raises(ValueError, match="non-finite"):
        evaluator.process({"a": pred([[0, 0, np.nan, 1]], [0.5], [0])})
    evaluator.process({"a": pred([[0, 0, 10, 10]], [0.5], [0])})
    with pytest.raises(ValueError, match="given twice"):
        evaluator.process({"a": pred([[0, 0, 10, 10]], [0.5], [0])})
    evaluator.reset()
    assert evaluator.evaluate()["AP"] == 0.0  # nothing processed: every object missed
    with pytest.raises(ValueError, match="unknown protocol"):
        Evaluator(INFO2, records, protocol="voc")
    with pytest.raises(ValueError, match="unknown backend"):
        Evaluator(INFO2, records, backend="detectron2")


def test_accepts_torch_tensors():
    import torch

    records, predictions = shifted_case()
    as_torch = {k: {n: torch.as_tensor(v) for n, v in p.items()} for k, p in predictions.items()}
    assert evaluate(INFO2, records, as_torch) == evaluate(INFO2, records, predictions)
