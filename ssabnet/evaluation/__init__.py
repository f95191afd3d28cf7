"""Evaluation: the one :class:`Evaluator` (COCO@500 with tiny scales, official VisDrone)."""

from ssabnet.evaluation.bootstrap import bootstrap_ap_difference
from ssabnet.evaluation.evaluator import (
    METRIC_KEYS,
    PROTOCOLS,
    Evaluator,
    evaluate_predictions,
    save_evaluation,
    write_metrics,
)
from ssabnet.evaluation.matching import MatchTables
from ssabnet.evaluation.readers import PRED_FORMATS, LoadedPredictions, load_predictions
from ssabnet.evaluation.results_io import (
    coco_results_to_predictions,
    predictions_to_coco_results,
    read_coco_results,
    read_visdrone_results,
    write_coco_results,
)

__all__ = [
    "METRIC_KEYS",
    "PRED_FORMATS",
    "PROTOCOLS",
    "Evaluator",
    "LoadedPredictions",
    "MatchTables",
    "bootstrap_ap_difference",
    "coco_results_to_predictions",
    "evaluate_predictions",
    "load_predictions",
    "predictions_to_coco_results",
    "save_evaluation",
    "read_coco_results",
    "read_visdrone_results",
    "write_coco_results",
    "write_metrics",
]
