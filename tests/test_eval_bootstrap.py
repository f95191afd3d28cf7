"""Paired bootstrap of AP50 differences from matching tables."""

from __future__ import annotations

import numpy as np
import pytest
from test_eval_support import VISDRONE_INFO, noisy_predictions, visdrone_sample_records

from ssabnet.evaluation import Evaluator
from ssabnet.evaluation.bootstrap import bootstrap_ap_difference
from ssabnet.evaluation.matching import ap50_from_tables
from ssabnet.scales import size_bucket_names


@pytest.fixture(scope="module")
def two_detectors():
    """A: noisy detector; B: A with the scores of its false positives divided by 10."""
    records = visdrone_sample_records(limit=40)
    preds_a = noisy_predictions(records, seed=0)
    evaluator = Evaluator(VISDRONE_INFO, records)
    evaluator.process(preds_a)
    tables_a = evaluator.matches()
    preds_b = {k: {n: v.copy() for n, v in p.items()} for k, p in preds_a.items()}
    fp = tables_a.dets[tables_a.dets["status"] == "fp"]
    for image_id, index in zip(fp["image_id"], fp["det_index"], strict=True):
        preds_b[image_id]["scores"][index] /= 10
    evaluator.reset()
    evaluator.process(preds_b)
    return tables_a, evaluator.matches()


def test_identical_results_give_zero_difference(two_detectors):
    a, _ = two_detectors
    frame = bootstrap_ap_difference(a, a, n_boot=50, seed=0)
    assert list(frame.index) == ["all", *size_bucket_names()]
    assert (frame["delta"].fillna(0) == 0).all()
    assert (frame["ci_low"].fillna(0) == 0).all() and (frame["ci_high"].fillna(0) == 0).all()
    # the full-data value is the COCO AP50 of the tables
    assert frame.loc["all", "ap_a"] == pytest.approx(ap50_from_tables(a, 10), abs=1e-12)


def test_fewer_false_positives_is_a_significant_gain(two_detectors):
    a, b = two_detectors
    frame = bootstrap_ap_difference(a, b, n_boot=100, seed=1)
    row = frame.loc["all"]
    assert (
        row["delta"] > 0 and row["ci_low"] > 0 and row["ci_low"] <= row["delta"] <= row["ci_high"]
    )
    assert row["p_value"] < 0.05
    assert row["n_gt"] == int(a.gts["status"].isin(["tp", "fn"]).sum())
    assert frame["n_gt"].iloc[1:].sum() == row["n_gt"]  # the buckets partition the GT
    again = bootstrap_ap_difference(a, b, n_boot=100, seed=1)
    assert again.equals(frame)  # seeded
    reverse = bootstrap_ap_difference(b, a, n_boot=100, seed=1)
    np.testing.assert_allclose(reverse["delta"], -frame["delta"])


def test_by_class_and_errors(two_detectors):
    a, b = two_detectors
    frame = bootstrap_ap_difference(a, b, n_boot=20, by="class")
    assert set(frame.index) <= set(VISDRONE_INFO.classes) and len(frame) >= 5
    with pytest.raises(ValueError, match="unknown grouping"):
        bootstrap_ap_difference(a, b, by="size")
    with pytest.raises(ValueError, match="not on the same images"):
        bootstrap_ap_difference(a, type(b)(b.dets, b.gts.iloc[:-1]), n_boot=5)


def test_seed_lists_average_each_side(two_detectors):
    """One table per seed: each side's AP is the mean over its tables, resample by resample."""
    a, b = two_detectors
    single = bootstrap_ap_difference(a, b, n_boot=60, seed=3)
    listed = bootstrap_ap_difference([a], [b], n_boot=60, seed=3)
    assert single.equals(listed)
    pooled = bootstrap_ap_difference([a, b], [b], n_boot=60, seed=3)
    for group in pooled.index:
        mean_ap = (single.loc[group, "ap_a"] + single.loc[group, "ap_b"]) / 2
        if np.isnan(mean_ap):
            continue
        assert pooled.loc[group, "ap_a"] == pytest.approx(mean_ap, abs=1e-12)
        # half of the single gain, on the full data and at both ends of the interval
        assert pooled.loc[group, "delta"] == pytest.approx(single.loc[group, "delta"] / 2)
    assert pooled.loc["all", "ci_low"] == pytest.approx(single.loc["all", "ci_low"] / 2)
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ap_difference([], [b])


def test_rematch_at_half_reproduces_the_tables_and_ap_equals_cocoeval():
    from ssabnet.evaluation.matching import rematch

    records = visdrone_sample_records(limit=30)
    evaluator = Evaluator(VISDRONE_INFO, records)
    evaluator.process(noisy_predictions(records, seed=3))
    tables = evaluator.matches()
    again = rematch(tables, 0.5).dets
    for column in ("status", "matched_gt"):
        assert again[column].tolist() == tables.dets[column].tolist()
    strict = rematch(tables, 0.95).dets
    assert strict["tp"].sum() < tables.dets["tp"].sum()
    # AP@[.5:.95] from the tables' ten re-matchings is COCOeval's AP on the full data
    frame = bootstrap_ap_difference(tables, tables, n_boot=10, seed=0, metric="AP")
    assert frame.loc["all", "ap_a"] == pytest.approx(evaluator.evaluate()["AP"], abs=1e-12)
    assert (frame["delta"].fillna(0) == 0).all()
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap_ap_difference(tables, tables, metric="AP75")
