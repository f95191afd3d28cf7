"""Training runs on disk: discovery and loading for the app, notebooks and reports.

A run folder is what :func:`ssabnet.fit` writes: ``config.yaml``, ``results.csv`` (one row per
epoch), ``weights/{last,best}.pt``, ``val/{best,last}/metrics.json`` with the matching tables
``matches_{dets,gts}.parquet`` and, for demo runs, ``predictions.json`` (COCO results).
:func:`discover_runs` lists run folders under a root without loading anything heavy;
:func:`load_run` reads one and raises :class:`RunError` (a ``ValueError`` naming the file) when
something is missing or corrupt, so callers can show one clear message instead of a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ssabnet.evaluation.matching import DETS_FILE, GTS_FILE, MatchTables

#: Per-scale AP keys of ``metrics.json`` in bucket order (:data:`ssabnet.scales.SIZE_BUCKETS`).
SCALE_METRICS: dict[str, str] = {
    "very_tiny": "AP_vt",
    "tiny": "AP_t",
    "small": "AP_s_tiny",
    "medium": "APm",
    "large": "APl",
}
#: Summary columns of :func:`runs_summary`.
SUMMARY_METRICS = ("AP", "AP50", "AP75", "APs", *SCALE_METRICS.values(), "AR500")
SPLITS = ("best", "last")
_MAX_DEPTH = 3


class RunError(ValueError):
    """A run folder is missing, incomplete or holds a corrupt file (the message names it)."""


@dataclass(frozen=True)
class RunInfo:
    """What :func:`discover_runs` knows about a run without loading it.

    Attributes:
        name: path relative to the discovery root (``"baseline-n"``, ``"demo/ssabnet-n"``).
        path: absolute run folder.
        model: ``model.name`` from ``config.yaml`` (``"?"`` if unreadable).
        box_loss: ``loss.box`` from ``config.yaml`` (``"?"`` if unreadable).
        epochs: rows in ``results.csv`` (completed epochs).
        splits: validation splits with a ``metrics.json`` (subset of ``("best", "last")``).
        has_matches: ``val/best`` (or ``val/last``) holds both matching tables.
        weights: ``weights/best.pt`` (or ``last.pt``) if present.
        problem: why the run cannot be used fully, or ``None``.
    """

    name: str
    path: Path
    model: str
    box_loss: str
    epochs: int
    splits: tuple[str, ...]
    has_matches: bool
    weights: Path | None
    problem: str | None = None


@dataclass(frozen=True)
class Run:
    """One loaded run.

    Attributes:
        name, path: as in :class:`RunInfo`.
        split: which validation result was loaded (``"best"`` or ``"last"``).
        config: the resolved training config (nested dict from ``config.yaml``).
        metrics: ``metrics.json`` of ``split`` (AP, AP50, ..., ``per_class``).
        results: ``results.csv`` as a DataFrame (one row per epoch; empty if absent).
        matches: the matching tables of ``split`` or ``None`` if not saved.
        weights: checkpoint path or ``None``.
        predictions: ``predictions.json`` (COCO results) if present.
    """

    name: str
    path: Path
    split: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    results: pd.DataFrame
    matches: MatchTables | None
    weights: Path | None
    predictions: Path | None = None
    notes: tuple[str, ...] = field(default=())


def _read_config(path: Path) -> dict[str, Any]:
    import yaml

    file = path / "config.yaml"
    if not file.is_file():
        raise RunError(f"{file}: missing (not a run folder written by ssabnet.fit?)")
    try:
        config = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RunError(f"{file}: not valid YAML ({exc})") from exc
    if not isinstance(config, dict):
        raise RunError(f"{file}: expected a mapping, got {type(config).__name__}")
    return config


def _weights(path: Path) -> Path | None:
    for name in ("best.pt", "last.pt"):
        if (path / "weights" / name).is_file():
            return path / "weights" / name
    return None


def _is_run_dir(path: Path) -> bool:
    return (path / "config.yaml").is_file() or (path / "results.csv").is_file()


def run_info(path: str | Path, name: str | None = None) -> RunInfo:
    """Cheap summary of one run folder (never raises for a broken run: see ``problem``)."""
    path = Path(path).resolve()
    problem = None
    model = box = "?"
    try:
        config = _read_config(path)
        model = str((config.get("model") or {}).get("name", "?"))
        box = str((config.get("loss") or {}).get("box", "?"))
    except RunError as exc:
        problem = str(exc)
    epochs = 0
    results = path / "results.csv"
    if results.is_file():
        with results.open(errors="replace") as handle:
            epochs = max(0, sum(1 for line in handle if line.strip()) - 1)
    splits = tuple(s for s in SPLITS if (path / "val" / s / "metrics.json").is_file())
    if not splits and problem is None:
        problem = f"{path / 'val'}: no metrics.json (no validated epoch yet)"
    has_matches = any(
        (path / "val" / s / DETS_FILE).is_file() and (path / "val" / s / GTS_FILE).is_file()
        for s in SPLITS
    )
    return RunInfo(
        name or path.name, path, model, box, epochs, splits, has_matches, _weights(path), problem
    )


def discover_runs(root: str | Path, max_depth: int = _MAX_DEPTH) -> list[RunInfo]:
    """Run folders under ``root`` (the root itself included), sorted by relative name.

    A run folder holds ``config.yaml`` or ``results.csv``; the search does not descend into a
    run folder, nor deeper than ``max_depth`` levels, and ignores hidden folders.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"runs folder not found: {root}")
    found: list[RunInfo] = []

    def walk(folder: Path, depth: int) -> None:
        if _is_run_dir(folder):
            name = folder.relative_to(root).as_posix() if folder != root else folder.name
            found.append(run_info(folder, name))
            return
        if depth >= max_depth:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if not child.name.startswith(".") and child.resolve().is_relative_to(root):
                walk(child, depth + 1)

    walk(root, 0)
    return sorted(found, key=lambda info: info.name)


def _read_metrics(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise RunError(f"{file}: missing (the run has no validated epoch for this split)")
    try:
        metrics = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{file}: corrupt JSON ({exc})") from exc
    if not isinstance(metrics, dict) or "AP" not in metrics:
        raise RunError(f"{file}: not an ssabnet metrics.json (no 'AP' key)")
    return metrics


def _read_results(file: Path) -> pd.DataFrame:
    if not file.is_file():
        return pd.DataFrame()
    try:
        frame = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RunError(f"{file}: corrupt CSV ({exc})") from exc
    if "epoch" not in frame.columns:
        raise RunError(f"{file}: no 'epoch' column (not a results.csv written by ssabnet.fit)")
    return frame


def _read_matches(folder: Path) -> MatchTables | None:
    if not ((folder / DETS_FILE).is_file() and (folder / GTS_FILE).is_file()):
        return None
    try:
        return MatchTables.load(folder)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise RunError(f"{folder}: corrupt matching tables ({type(exc).__name__}: {exc})") from exc


def load_run(path: str | Path, split: str = "best", name: str | None = None) -> Run:
    """Load a run folder: config, metrics of ``split``, results.csv, matching tables.

    Falls back from ``best`` to ``last`` (and back) when only the other split was saved; the
    fallback is noted in ``Run.notes``.

    Raises:
        RunError: missing folder/config/metrics, or a corrupt file (named in the message).
        ValueError: unknown ``split``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    path = Path(path).resolve()
    if not path.is_dir():
        raise RunError(f"{path}: run folder not found")
    config = _read_config(path)
    notes: list[str] = []
    chosen = split
    if not (path / "val" / split / "metrics.json").is_file():
        other = next(s for s in SPLITS if s != split)
        if (path / "val" / other / "metrics.json").is_file():
            notes.append(f"no val/{split}; showing val/{other}")
            chosen = other
    metrics = _read_metrics(path / "val" / chosen / "metrics.json")
    predictions = path / "predictions.json"
    return Run(
        name=name or path.name,
        path=path,
        split=chosen,
        config=config,
        metrics=metrics,
        results=_read_results(path / "results.csv"),
        matches=_read_matches(path / "val" / chosen),
        weights=_weights(path),
        predictions=predictions if predictions.is_file() else None,
        notes=tuple(notes),
    )


def _value(metrics: dict[str, Any], key: str) -> float:
    value = metrics.get(key)
    return float("nan") if value is None else float(value)


def runs_summary(runs: list[Run]) -> pd.DataFrame:
    """One row per run: model, box loss, epochs and :data:`SUMMARY_METRICS` (NaN = no GT)."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run": run.name,
            "model": (run.config.get("model") or {}).get("name", "?"),
            "box_loss": (run.config.get("loss") or {}).get("box", "?"),
            "epochs": len(run.results),
            "split": run.split,
        }
        row |= {key: _value(run.metrics, key) for key in SUMMARY_METRICS}
        rows.append(row)
    return pd.DataFrame(rows)


def scale_ap_table(runs: list[Run]) -> pd.DataFrame:
    """Long table ``run, bucket, AP`` of the per-bucket AP@[.5:.95] (``SIZE_BUCKETS`` order)."""
    rows = [
        {"run": run.name, "bucket": bucket, "AP": _value(run.metrics, key)}
        for run in runs
        for bucket, key in SCALE_METRICS.items()
    ]
    return pd.DataFrame(rows, columns=["run", "bucket", "AP"])


def per_class_table(runs: list[Run], metric: str = "AP") -> pd.DataFrame:
    """Long table ``run, class_name, <metric>`` from ``metrics["per_class"]``."""
    rows = []
    for run in runs:
        for class_name, values in (run.metrics.get("per_class") or {}).items():
            rows.append({"run": run.name, "class_name": class_name, metric: _value(values, metric)})
    return pd.DataFrame(rows, columns=["run", "class_name", metric])


def compare_metrics(runs: list[Run], reference: str) -> pd.DataFrame:
    """Each run's :data:`SUMMARY_METRICS` against the run named ``reference``.

    Returns:
        Long table ``run, metric, value, reference, delta`` (``delta = value - reference``,
        NaN where either has no GT) for every run other than the reference.

    Raises:
        ValueError: ``reference`` is not among ``runs``.
    """
    by_name = {run.name: run for run in runs}
    if reference not in by_name:
        raise ValueError(f"reference run {reference!r} is not among {sorted(by_name)}")
    ref_metrics = by_name[reference].metrics
    rows = []
    for run in runs:
        if run.name == reference:
            continue
        for key in SUMMARY_METRICS:
            value, ref = _value(run.metrics, key), _value(ref_metrics, key)
            rows.append({"run": run.name, "metric": key, "value": value, "reference": ref,
                         "delta": value - ref})  # fmt: skip
    return pd.DataFrame(rows, columns=["run", "metric", "value", "reference", "delta"])


def training_curves(runs: list[Run]) -> pd.DataFrame:
    """Long table ``run, epoch, term, value`` of every numeric ``results.csv`` column."""
    frames = []
    for run in runs:
        if run.results.empty:
            continue
        numeric = run.results.apply(pd.to_numeric, errors="coerce")
        long = numeric.melt(id_vars="epoch", var_name="term", value_name="value").dropna()
        long.insert(0, "run", run.name)
        frames.append(long)
    if not frames:
        return pd.DataFrame(columns=["run", "epoch", "term", "value"])
    return pd.concat(frames, ignore_index=True)


__all__ = [
    "SCALE_METRICS",
    "SUMMARY_METRICS",
    "Run",
    "RunError",
    "RunInfo",
    "compare_metrics",
    "discover_runs",
    "load_run",
    "per_class_table",
    "run_info",
    "runs_summary",
    "scale_ap_table",
    "training_curves",
]
