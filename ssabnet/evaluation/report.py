"""Human-readable tables of a metrics dict (what ``ssabnet val`` prints)."""

from __future__ import annotations

from collections.abc import Mapping

_SUMMARY = (
    ("AP", "AP @[.50:.95]"),
    ("AP50", "AP @.50"),
    ("AP75", "AP @.75"),
    ("APs", "AP small  (<32 px)"),
    ("APm", "AP medium (32-96)"),
    ("APl", "AP large  (>=96)"),
    ("AP_vt", "AP very tiny (<8)"),
    ("AP_t", "AP tiny   (8-16)"),
    ("AP_s_tiny", "AP small  (16-32)"),
)
_CLASS_COLUMNS = ("AP", "AP50", "AP75", "APs", "AP_vt", "AP_t")
#: visdrone-official: no size ranges; ``weight`` is the class's share of the summary means.
_OFFICIAL_CLASS_COLUMNS = ("AP", "AP50", "AP75", "AR{max_dets}", "weight")


def _pct(value) -> str:
    return "   -" if value is None else f"{100 * value:5.1f}"


def format_metrics_table(metrics: Mapping) -> str:
    """Summary and per-class table of a metrics dict, values in percent (``-`` = no GT)."""
    lines = [
        f"protocol {metrics['protocol']}, backend {metrics['backend']}, "
        f"{metrics['n_images']} images, maxDets {metrics['max_dets']}"
    ]
    for key, label in _SUMMARY:
        if key in metrics and (metrics[key] is not None or metrics["protocol"] == "coco"):
            lines.append(f"  {label:<20} {_pct(metrics[key])}")
    recalls = [k for k in metrics if k.startswith("AR") and k[2:].isdigit()]
    lines.append("  " + "  ".join(f"{k} {_pct(metrics[k]).strip()}" for k in recalls))
    per_class = metrics.get("per_class") or {}
    if per_class:
        if metrics["protocol"] == "visdrone-official":
            lines.append("  summary = class means weighted by images per class (the toolkit's)")
            wanted = [c.format(max_dets=metrics["max_dets"]) for c in _OFFICIAL_CLASS_COLUMNS]
        else:
            wanted = list(_CLASS_COLUMNS)
        columns = [c for c in wanted if any(c in row for row in per_class.values())]
        width = max(len(name) for name in per_class) + 2
        lines.append("  " + "class".ljust(width) + "".join(f"{c:>8}" for c in columns))
        for name, row in per_class.items():
            cells = "".join(f"{_pct(row.get(c)):>8}" for c in columns)
            lines.append("  " + name.ljust(width) + cells)
    return "\n".join(lines)
