"""The official VisDrone-DET protocol against values worked out by hand from the MATLAB rules."""

from __future__ import annotations

import numpy as np
import pytest
from test_eval_coco import pred, record
from test_eval_support import VISDRONE_INFO, noisy_predictions, visdrone_sample_records

from ssabnet.evaluation import Evaluator
from ssabnet.evaluation.ignore import (
    ignore_region_integral_image,
    in_ignore_regions,
    in_ignore_regions_integral,
    matlab_round,
)
from ssabnet.evaluation.visdrone_official import overlap_xywh, voc_ap


def xyxy(x, y, w, h):
    return [x, y, x + w, y + h]


def official(records, predictions, max_dets=500):
    evaluator = Evaluator(VISDRONE_INFO, records, protocol="visdrone-official", max_dets=max_dets)
    evaluator.process(predictions)
    return evaluator.evaluate()


# GT (xywh): pedestrian A [10,10,20,20], pedestrian B [50,50,20,20], people C [10,60,10,10].
GT = [xyxy(10, 10, 20, 20), xyxy(50, 50, 20, 20), xyxy(10, 60, 10, 10)]
# d1 exact on A (.9); d2 on B shifted 2 px: IoU 360/440 = .818 (.8); d3 FP (.7); d4 people FP (.6)
DETS = [xyxy(10, 10, 20, 20), xyxy(52, 50, 20, 20), xyxy(80, 80, 10, 10), xyxy(30, 60, 10, 10)]
SCORES = [0.9, 0.8, 0.7, 0.6]
LABELS = [0, 0, 0, 1]


def test_hand_case():
    # pedestrian: thresholds .50-.80 (7): TP TP FP -> VOC AP 1; .85-.95 (3): TP FP FP -> rec stays
    # .5: AP .5. Class AP = (7 + 1.5) / 10 = .85. people: one FP -> 0. The summary is the
    # toolkit's mean2(AP(evalClass, :)): pedestrian and people are in one image each (weight
    # 1/2 each); the 8 classes in no image have weight 0.
    records = [record("img", GT, [0, 0, 1], size=(100, 100))]
    m = official(records, {"img": pred(DETS, SCORES, LABELS)})
    assert m["per_class"]["pedestrian"]["AP"] == pytest.approx(0.85)
    assert m["per_class"]["people"]["AP"] == 0.0
    assert m["per_class"]["people"]["weight"] == 0.5 and m["per_class"]["bus"]["weight"] == 0
    assert m["AP"] == pytest.approx(0.425)
    assert m["AP50"] == pytest.approx(0.5) and m["AP75"] == pytest.approx(0.5)
    # AR: maxDets 1 keeps d1 only: pedestrian recall .5 at all 10 thresholds -> .5 / 2.
    # maxDets >= 10: pedestrian recall 1 (7 thr) and .5 (3 thr) = .85 per class -> .425.
    assert m["AR1"] == pytest.approx(0.25)
    assert m["AR10"] == pytest.approx(0.425) and m["AR500"] == pytest.approx(0.425)
    assert m["APs"] is None and m["protocol"] == "visdrone-official"


def test_truncation_is_in_file_order_not_score_order():
    records = [record("img", GT, [0, 0, 1], size=(100, 100))]
    order = [2, 0, 1, 3]  # the FP d3 is the first line of the file
    m = official(
        records,
        {"img": pred(np.array(DETS)[order], np.array(SCORES)[order], np.array(LABELS)[order])},
    )
    assert m["AR1"] == 0.0  # the single kept detection is the FP
    assert m["AP"] == pytest.approx(0.425)  # at maxDets 500 nothing changes
    assert m["AR10"] == pytest.approx(0.425)


def test_classes_are_weighted_by_the_images_they_appear_in():
    # pedestrian in 3 images (found everywhere: AP 1), car in 1 image (missed: AP 0). The
    # toolkit's evalClass = [1, 1, 1, 4] -> AP = 3/4, not the uniform (1 + 0) / 2. An image whose
    # only pedestrian is ignore-flagged (score 0) still counts: evalClass looks at every GT row.
    box = xyxy(10, 10, 20, 20)
    records = [record(f"i{k}", [box], [0], size=(100, 100)) for k in range(2)]
    records.append(record("i2", [box, xyxy(50, 50, 20, 20)], [0, 3], size=(100, 100)))
    records.append(record("i3", [xyxy(60, 10, 8, 8)], [0], ignore=[True], size=(100, 100)))
    predictions = {f"i{k}": pred([box], [0.9], [0]) for k in range(3)}
    m = official(records, predictions)
    assert m["per_class"]["pedestrian"]["n_images"] == 4
    assert m["per_class"]["pedestrian"]["n_gt"] == 4  # ignore GT in the recall denominator
    assert m["per_class"]["pedestrian"]["AP"] == pytest.approx(0.75)
    assert m["per_class"]["car"]["AP"] == 0.0 and m["per_class"]["car"]["n_images"] == 1
    assert m["AP"] == pytest.approx(4 / 5 * 0.75)
    assert m["AR500"] == pytest.approx(4 / 5 * 0.75)


def test_iou_of_exactly_085_is_not_a_match_at_085():
    # Octave's 0.5:0.05:0.95 holds 0.5 + 7 * 0.05 = 0.8500000000000001 (checked by running the
    # toolkit): a 17 x 10 detection inside a 20 x 10 object (IoU 17/20 = 0.85 in floating point)
    # matches at .50-.80 only. Uniform thresholds (np.linspace) would count .85 too.
    records = [record("img", [xyxy(10, 10, 20, 10)], [3], size=(100, 100))]
    m = official(records, {"img": pred([xyxy(10, 10, 17, 10)], [0.9], [3])})
    assert m["AP"] == pytest.approx(0.7)
    m = official(records, {"img": pred([xyxy(10, 10, 18, 10)], [0.9], [3])})  # IoU .9: matched
    assert m["AP"] == pytest.approx(0.9)


def test_no_ground_truth_at_all_is_nan_as_in_the_toolkit():
    records = [record("img", np.zeros((0, 4)), [], size=(100, 100))]
    m = official(records, {"img": pred([xyxy(10, 10, 17, 10)], [0.9], [3])})
    assert np.isnan(m["AP"]) and np.isnan(m["AR500"])


def test_ignore_gt_counts_in_the_recall_denominator():
    # add a score-0 pedestrian D far away: the toolkit counts it in numel(gtMatch), so recall
    # tops at 2/3: thresholds <= .80: VOC AP 2/3; >= .85: 1/3 -> (7 * 2/3 + 3 * 1/3) / 10 = 17/30.
    # A detection on D is "ignored" (-1): neither TP nor FP.
    gt = [*GT, xyxy(80, 10, 10, 10)]
    records = [record("img", gt, [0, 0, 1, 0], ignore=[False, False, False, True], size=(100, 100))]
    dets = [*DETS, xyxy(80, 10, 10, 10)]
    m = official(records, {"img": pred(dets, [*SCORES, 0.95], [*LABELS, 0])})
    assert m["per_class"]["pedestrian"]["AP"] == pytest.approx(17 / 30)
    assert m["per_class"]["pedestrian"]["n_gt"] == 4 - 1  # D counted, C is "people"


def test_others_are_neither_ignore_nor_gt_in_the_official_protocol():
    # a pedestrian detection on an "others" object is a FP for the toolkit (COCO protocol: ignored)
    records = [
        record(
            "img", [*GT, xyxy(70, 80, 10, 10)], [0, 0, 1, -1], ignore=[0, 0, 0, 1], size=(100, 100)
        )
    ]
    dets = [xyxy(70, 80, 10, 10), *DETS]
    m = official(records, {"img": pred(dets, [0.99, *SCORES], [0, *LABELS])})
    assert m["per_class"]["pedestrian"]["AP50"] < 1.0
    coco = Evaluator(VISDRONE_INFO, records)
    coco.process({"img": pred(dets, [0.99, *SCORES], [0, *LABELS])})
    assert coco.evaluate()["per_class"]["pedestrian"]["AP50"] == pytest.approx(1.0)


def test_integral_image_rule_vs_exact_geometry():
    # region [10,10,10,10] paints pixels 10..20 x 10..20 (11 x 11, 1-based); box [8,8,4,4] reads
    # rows/cols 9..12 of which 10..12 are painted: 9/16 >= .5 -> dropped by the toolkit, while
    # its exact overlap with [10,20]^2 is (2 x 2)/16 = .25 -> kept by the COCO rule.
    integral = ignore_region_integral_image(np.array([[10, 10, 10, 10]]), 100, 100)
    boxes = np.array(
        [
            [8, 8, 4, 4],
            [10, 10, 10, 10],
            [15, 10, 10, 10],
            [16, 10, 10, 10],
            [7.5, 7.5, 4, 4],
            [50, 50, 5, 5],
        ]
    )
    dropped = in_ignore_regions_integral(boxes, integral, 100, 100)
    assert dropped.tolist() == [True, True, True, False, True, False]
    exact = in_ignore_regions(np.c_[boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], [[10, 10, 20, 20]])
    assert exact.tolist() == [False, True, True, False, False, False]
    assert integral[-1, -1] == 121  # 11 x 11 painted pixels
    assert ignore_region_integral_image(np.zeros((0, 4)), 10, 10) is None


def test_matlab_round_is_half_away_from_zero():
    assert matlab_round(np.array([0.5, 1.5, 2.5, -0.5, 2.4])).tolist() == [1, 2, 3, -1, 2]


def test_voc_ap_and_overlap_hand_values():
    assert voc_ap(np.array([0.5, 1.0, 1.0]), np.array([1.0, 1.0, 2 / 3])) == pytest.approx(1.0)
    assert voc_ap(np.array([0.5, 0.5, 0.5]), np.array([1.0, 0.5, 1 / 3])) == pytest.approx(0.5)
    assert voc_ap(np.zeros(0), np.zeros(0)) == 0.0
    dt = np.array([[0.0, 0.0, 10.0, 10.0]])
    gt = np.array([[5.0, 0.0, 10.0, 10.0], [5.0, 0.0, 10.0, 10.0], [10.0, 0.0, 5.0, 5.0]])
    np.testing.assert_allclose(
        overlap_xywh(dt, gt, np.array([False, True, False])), [[50 / 150, 0.5, 0.0]]
    )


def test_official_gt_as_predictions_and_order_independence_on_real_sample():
    records = visdrone_sample_records(limit=25)
    gt_preds = {
        r.image_id: pred(r.boxes[r.evaluated], np.ones(r.evaluated.sum()), r.labels[r.evaluated])
        for r in records
    }
    m = official(records, gt_preds)
    # no score-0 object of classes 1..10 in these images, so every class with GT has AP 1 and so
    # has their image-weighted mean; classes without GT have weight 0
    assert not any(r.ignore[r.labels >= 0].any() for r in records)
    assert m["AP"] == pytest.approx(1.0)
    # score-sorted and shuffled files agree at maxDets 500 (the fast path equals the slow one)
    predictions = noisy_predictions(records, seed=2)
    rng = np.random.default_rng(0)
    shuffled = {}
    for image_id, p in predictions.items():
        perm = rng.permutation(len(p["scores"]))
        shuffled[image_id] = {k: v[perm] for k, v in p.items()}
    a, b = official(records, predictions), official(records, shuffled)
    for key in ("AP", "AP50", "AP75", "AR500"):
        assert a[key] == pytest.approx(b[key], abs=1e-12), key
    assert a["AR10"] != b["AR10"]  # truncation in file order differs
    # slow path (unsorted file, one matching per maxDets) vs fast path: the first 10 lines of the
    # shuffled file, re-sorted by score, give the same AR10
    first10 = {}
    for image_id, p in shuffled.items():
        order = np.argsort(-p["scores"][:10], kind="stable")
        first10[image_id] = {k: v[:10][order] for k, v in p.items()}
    assert official(records, first10)["AR10"] == pytest.approx(b["AR10"], abs=1e-12)
