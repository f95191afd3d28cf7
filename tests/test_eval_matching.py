"""Matching tables: hand cases, agreement with COCOeval's AP50, parquet round trip."""

from __future__ import annotations

import numpy as np
import pytest
from test_eval_coco import INFO2, pred, record
from test_eval_support import VISDRONE_INFO, noisy_predictions, visdrone_sample_records

from ssabnet.evaluation import Evaluator, MatchTables, evaluate_predictions
from ssabnet.evaluation.matching import ap50_from_tables, coco_interpolated_ap, greedy_match
from ssabnet.ops.boxes import pairwise_overlap


def test_greedy_match_prefers_normal_gt_then_best_then_last_tie():
    # det 0: IoU .6 with gt 0, .7 with gt 1 -> gt 1. det 1: gt 1 taken -> gt 0 (.6).
    # det 2: only the crowd gt 3 qualifies -> crowd. det 3: ties .8/.8 on gts 0/2 -> but gt 0 is
    # taken, so gt 2. det 4: nothing >= .5.
    overlap = np.array(
        [
            [0.6, 0.7, 0.0, 0.9],
            [0.6, 0.9, 0.0, 0.0],
            [0.1, 0.0, 0.0, 0.5],
            [0.8, 0.0, 0.8, 0.0],
            [0.4, 0.4, 0.4, 0.4],
        ]
    )
    crowd = np.array([False, False, False, True])
    det_gt, det_iou = greedy_match(overlap, crowd)
    assert det_gt.tolist() == [1, 0, 3, 2, -1]
    assert det_iou.tolist() == [0.7, 0.6, 0.5, 0.8, 0.0]
    tie_gt, _ = greedy_match(np.array([[0.8, 0.8]]), np.array([False, False]))
    assert tie_gt.tolist() == [1]  # COCOeval keeps the later of equal IoUs


def test_pairwise_overlap_crowd_uses_detection_area():
    dets = np.array([[0.0, 0.0, 10.0, 10.0]])
    gts = np.array([[0.0, 0.0, 20.0, 20.0], [0.0, 0.0, 20.0, 20.0]])
    overlap = pairwise_overlap(dets, gts, np.array([False, True]))
    np.testing.assert_allclose(overlap, [[0.25, 1.0]])


def test_tables_hand_case_statuses_and_columns():
    r = record(
        "img",
        [[10, 10, 50, 50], [100, 100, 104, 104], [300, 300, 340, 340]],
        [0, 0, 1],
        regions=[[290, 290, 400, 400]],
    )
    r.occlusion[:] = [0, 2, 1]
    predictions = {
        "img": pred(
            [[12, 10, 52, 50], [500, 500, 520, 520], [300, 300, 340, 340], [10, 10, 50, 50]],
            [0.9, 0.8, 0.7, 0.6],
            [0, 0, 1, 0],
        )
    }
    evaluator = Evaluator(INFO2, [r])
    evaluator.process(predictions)
    dets, gts = evaluator.matches()
    assert dets["status"].tolist() == ["tp", "fp", "in_ignore_region", "fp"]  # duplicate is FP
    assert dets["matched_gt"].tolist() == [0, -1, -1, -1]
    assert dets["iou"].iloc[0] == pytest.approx(38 * 40 / (2 * 1600 - 38 * 40))
    assert gts["status"].tolist() == ["tp", "fn", "in_ignore_region"]
    assert gts["size_bucket"].tolist() == ["medium", "very_tiny", "medium"]
    assert gts["occlusion"].tolist() == [0, 2, 1]
    assert gts["det_index"].tolist() == [0, -1, -1]
    assert gts["det_score"].iloc[0] == 0.9
    assert gts["class_name"].tolist() == ["car", "car", "pedestrian"]


def test_table_ap50_equals_cocoeval_ap50_on_real_sample():
    records = visdrone_sample_records()
    predictions = noisy_predictions(records, seed=1)
    evaluator = Evaluator(VISDRONE_INFO, records)
    evaluator.process(predictions)
    metrics = evaluator.evaluate()
    tables = evaluator.matches()
    assert ap50_from_tables(tables, VISDRONE_INFO.num_classes) == pytest.approx(
        metrics["AP50"], abs=1e-12
    )
    # every evaluated, not-dropped object appears once as tp or fn; TPs are one-to-one
    gts = tables.gts
    assert gts["status"].isin(["tp", "fn", "ignore", "in_ignore_region"]).all()
    assert (tables.dets["status"] == "tp").sum() == (gts["status"] == "tp").sum()


def test_coco_interpolated_ap_hand_values():
    # TP, FP, TP with 2 GT: precision 1, .5, 2/3 -> interpolated 1 up to recall .5, 2/3 to 1
    assert coco_interpolated_ap(np.array([1, 0, 1.0]), np.array([0, 1, 0.0]), 2) == pytest.approx(
        (51 * 1.0 + 50 * 2 / 3) / 101
    )
    assert coco_interpolated_ap(np.zeros(0), np.zeros(0), 3) == 0.0
    assert np.isnan(coco_interpolated_ap(np.zeros(0), np.zeros(0), 0))


def test_evaluate_predictions_writes_metrics_and_parquet(tmp_path):
    import json
    from types import SimpleNamespace

    records = [record("a", [[10, 10, 50, 50]], [0])]
    dataset = SimpleNamespace(info=INFO2, records=records)
    metrics = evaluate_predictions(
        dataset, {"a": pred([[10, 10, 50, 50]], [0.9], [0])}, out_dir=tmp_path
    )
    assert json.loads((tmp_path / "metrics.json").read_text())["AP"] == metrics["AP"] == 1.0
    tables = MatchTables.load(tmp_path)
    assert tables.dets["status"].tolist() == ["tp"]
    assert tables.gts["matched"].tolist() == [True]
