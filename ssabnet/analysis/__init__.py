"""Error analysis: above evaluation (it reads the matching tables), below the CLI and the app.

* :mod:`~ssabnet.analysis.taxonomy`: TIDE's error types with their oracle ΔAP, per object size,
  and per-box labels (:func:`error_taxonomy`, :func:`label_errors`, :func:`tide_compat_tables`);
* :mod:`~ssabnet.analysis.threshold`: the F1-optimal confidence threshold and counts at a
  threshold (:func:`f1_optimal_threshold`, :func:`error_counts_at`, :func:`object_labels_at`);
* :mod:`~ssabnet.analysis.curves`: per-class PR curves and a confusion matrix;
* :mod:`~ssabnet.analysis.galleries`: rows for the FP and "missed by A, found by B" galleries;
* :mod:`~ssabnet.analysis.counts`: pooled PR curve, TP/FN/FP counts, missed objects;
* :mod:`~ssabnet.analysis.report`: ``ssabnet errors`` (tables from a run or from predictions,
  the printed table, ``errors.json``).

No streamlit or fiftyone import here: the app and the FiftyOne integration call these.

This module is also the analysis API of the edges: ``ssabnet.app`` and the notebooks import
from :mod:`ssabnet` and from here only (runs, matching tables, bootstrap, size buckets, the
drawing and feature-map helpers are re-exported below).
"""

from ssabnet.analysis.counts import (
    GROUPINGS,
    error_counts,
    missed_objects,
    precision_recall_curve,
)
from ssabnet.analysis.curves import (
    BACKGROUND,
    class_names,
    confusion_matrix,
    per_class_pr_curves,
)
from ssabnet.analysis.galleries import false_positive_gallery, missed_by_a_found_by_b
from ssabnet.analysis.taxonomy import (
    ALL,
    BACKGROUND_IOU,
    ERROR_TYPES,
    FP_TYPES,
    TIDE_MAX_DETS,
    ErrorReport,
    check_evidence,
    error_taxonomy,
    label_errors,
    tide_compat_tables,
)
from ssabnet.analysis.threshold import (
    ThresholdChoice,
    error_counts_at,
    f1_optimal_threshold,
    object_labels_at,
    objects_found,
)
from ssabnet.data.catalog import list_cards
from ssabnet.data.confine import load_dataset_confined
from ssabnet.data.images import read_image_rgb
from ssabnet.evaluation import MatchTables, bootstrap_ap_difference
from ssabnet.losses.curves import modulation_curve
from ssabnet.model.probe import (
    compare_upsamplers,
    high_frequency_ratio,
    image_to_input,
    mean_inside_boxes,
)
from ssabnet.model.taps import capture_features
from ssabnet.ops.boxes import box_size
from ssabnet.paths import UnsafePathError, resolve_under
from ssabnet.runs import (
    SUMMARY_METRICS,
    Run,
    RunError,
    RunInfo,
    compare_metrics,
    discover_runs,
    load_run,
    per_class_table,
    run_info,
    runs_summary,
    scale_ap_table,
    training_curves,
)
from ssabnet.scales import size_bucket_names
from ssabnet.visualize import (
    PRED_COLOR,
    REDUCTIONS,
    crop_with_context,
    decode_image_bytes,
    draw_boxes,
    feature_heatmap,
    kernel_at,
    offset_magnitude,
    overlay_heatmap,
    run_with_taps,
)

__all__ = [
    "SUMMARY_METRICS",
    "ALL",
    "BACKGROUND",
    "BACKGROUND_IOU",
    "ERROR_TYPES",
    "FP_TYPES",
    "GROUPINGS",
    "TIDE_MAX_DETS",
    "ErrorReport",
    "ThresholdChoice",
    "check_evidence",
    "class_names",
    "confusion_matrix",
    "error_counts",
    "error_counts_at",
    "error_taxonomy",
    "f1_optimal_threshold",
    "false_positive_gallery",
    "label_errors",
    "missed_by_a_found_by_b",
    "missed_objects",
    "object_labels_at",
    "objects_found",
    "per_class_pr_curves",
    "precision_recall_curve",
    "tide_compat_tables",
    "PRED_COLOR",
    "REDUCTIONS",
    "MatchTables",
    "Run",
    "RunError",
    "RunInfo",
    "UnsafePathError",
    "bootstrap_ap_difference",
    "compare_metrics",
    "crop_with_context",
    "decode_image_bytes",
    "discover_runs",
    "draw_boxes",
    "feature_heatmap",
    "kernel_at",
    "list_cards",
    "load_run",
    "modulation_curve",
    "offset_magnitude",
    "overlay_heatmap",
    "per_class_table",
    "read_image_rgb",
    "load_dataset_confined",
    "resolve_under",
    "run_info",
    "run_with_taps",
    "runs_summary",
    "scale_ap_table",
    "size_bucket_names",
    "training_curves",
    "box_size",
    "capture_features",
    "compare_upsamplers",
    "high_frequency_ratio",
    "image_to_input",
    "mean_inside_boxes",
]
