"""``ssabnet errors``: the taxonomy table, its JSON and the files saved beside the tables.

The CLI handler loads the matching tables (from a run folder, or by evaluating predictions on
a dataset) and calls :func:`error_summary`; this module formats and saves, nothing else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssabnet.analysis.taxonomy import ERROR_TYPES, FP_TYPES, error_taxonomy, label_errors
from ssabnet.analysis.threshold import error_counts_at, f1_optimal_threshold
from ssabnet.atomic_io import write_json_atomic, write_text_atomic
from ssabnet.errors import OverwriteError
from ssabnet.evaluation.matching import MatchTables

ERRORS_FILE = "errors.json"
ERRORS_TABLE_FILE = "errors.csv"
COMPAT_SUFFIX = "_tide_compat"


def _clean(value):
    """JSON-safe: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def error_summary(
    tables: MatchTables, threshold: float | None = None, compat: bool = False
) -> dict:
    """The ``ssabnet errors --json`` document.

    ``AP`` (AP50, 0-1) and ``buckets`` ``{bucket: {type: ΔAP}}`` (0-1, unthresholded, TIDE's
    oracle) as the issue's schema; ``bucket_AP``, ``counts`` (errors of each type, all
    scores), ``threshold`` (the confidence threshold used for ``counts_at_threshold``: the
    F1-optimal one unless ``threshold`` is given) and ``counts_at_threshold`` per bucket.
    """
    report = error_taxonomy(tables, compat=compat)
    best = f1_optimal_threshold(tables)
    if threshold is None:
        chosen, how = best.score, "f1-optimal"
    else:
        chosen, how = float(threshold), "given"
    at = error_counts_at(label_errors(tables), chosen)
    doc = report.to_json()
    doc["threshold"] = {
        "score": chosen,
        "chosen": how,
        "f1_optimal": best.score,
        "f1": best.f1,
        "precision": best.precision,
        "recall": best.recall,
    }
    doc["counts_at_threshold"] = {
        bucket: {
            c: float(at.at[bucket, c]) if c in ("precision", "recall") else int(at.at[bucket, c])
            for c in at.columns
        }
        for bucket in at.index
    }
    return _clean(doc)


def _pct(value) -> str:
    return "     -" if value is None else f"{100 * value:6.2f}"


def format_error_table(doc: dict) -> str:
    """The printed table: AP50 and ΔAP in AP points (%), then counts at the threshold."""
    thr = doc["threshold"]
    lines = [
        "TIDE error types per object size (AP50 and ΔAP in %, all scores; "
        f"mode {doc['settings']['mode']})",
        f"{'bucket':<10} {'AP50':>6} " + " ".join(f"{'d' + t:>6}" for t in ERROR_TYPES),
    ]
    for bucket, delta in doc["buckets"].items():
        lines.append(
            f"{bucket:<10} {_pct(doc['bucket_AP'][bucket])} "
            + " ".join(_pct(delta[t]) for t in ERROR_TYPES)
        )
    lines.append("")
    lines.append(
        f"counts at confidence >= {thr['score']:.4f} ({thr['chosen']}; F1-optimal "
        f"{thr['f1_optimal']:.4f}: F1 {100 * thr['f1']:.1f}%, P {100 * thr['precision']:.1f}%, "
        f"R {100 * thr['recall']:.1f}%)"
    )
    cols = ["tp", "fp", *FP_TYPES, "fn", "miss"]
    lines.append(f"{'bucket':<10} " + " ".join(f"{c:>7}" for c in cols))
    for bucket, row in doc["counts_at_threshold"].items():
        lines.append(f"{bucket:<10} " + " ".join(f"{row[c]:>7d}" for c in cols))
    return "\n".join(lines)


def save_error_summary(
    doc: dict, out_dir: str | Path, compat: bool = False, overwrite: bool = False
) -> list[Path]:
    """Write ``errors.json`` and ``errors.csv`` (``*_tide_compat`` with ``compat``).

    Raises:
        OverwriteError: a file exists and ``overwrite`` is false.
    """
    out_dir = Path(out_dir)
    suffix = COMPAT_SUFFIX if compat else ""
    json_path = out_dir / ERRORS_FILE.replace(".json", f"{suffix}.json")
    csv_path = out_dir / ERRORS_TABLE_FILE.replace(".csv", f"{suffix}.csv")
    existing = [p for p in (json_path, csv_path) if p.exists()]
    if existing and not overwrite:
        raise OverwriteError(f"{existing[0]}: exists; pass --overwrite to replace it")
    rows = ["bucket,AP50," + ",".join(f"dAP_{t}" for t in ERROR_TYPES)]
    for bucket, delta in doc["buckets"].items():
        values = [doc["bucket_AP"][bucket], *(delta[t] for t in ERROR_TYPES)]
        rows.append(bucket + "," + ",".join("" if v is None else f"{v:.6f}" for v in values))
    write_json_atomic(json_path, doc, allow_nan=False)
    write_text_atomic(csv_path, "\n".join(rows) + "\n")
    return [json_path, csv_path]


__all__ = [
    "ERRORS_FILE",
    "ERRORS_TABLE_FILE",
    "error_summary",
    "format_error_table",
    "save_error_summary",
]
