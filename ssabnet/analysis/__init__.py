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

__all__ = [
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
]
