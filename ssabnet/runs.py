"""The run folder: what it is, its files, whether it is finished, discovery and loading.

This module is the one place that knows the layout; ``fit``, the demo, the ablation, the
import of another detector's predictions (:mod:`ssabnet.run_import`), the app, notebooks and
reports go through it.

Two kinds of run share one layout::

    <run>/config.yaml                 trained: the resolved training config
    <run>/results.csv                 trained: one row per epoch
    <run>/weights/{last,best}.pt      trained: checkpoints
    <run>/run.json                    imported: the run card (detector, source file, format,
                                      decisions, dataset, date)
    <run>/val/{best,last}/metrics.json + matches_{dets,gts}.parquet   both kinds
    <run>/predictions.json            COCO results with SSABNet ids (imported runs, demo runs)

A *trained* run is what :func:`ssabnet.fit` writes; an *imported* run holds the predictions of
any detector scored by ``ssabnet val --predictions P --run DIR`` (``val/best`` only, no
weights). :func:`is_finished` says whether a trained run is complete and
:func:`check_same_recipe` whether it was made with the recipe a caller is about to (re)run;
:func:`discover_runs` lists run folders under a root without loading anything heavy;
:func:`load_run` reads one and raises :class:`RunError` (naming the file) when something is
missing or corrupt, so callers can show one clear message instead of a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ssabnet.errors import InputFileError, MissingInputError, UsageError
from ssabnet.evaluation.evaluator import SCALE_METRICS
from ssabnet.evaluation.matching import DETS_FILE, GTS_FILE, MatchTables
from ssabnet.model.build import PRESETS

CONFIG_FILE = "config.yaml"
RESULTS_FILE = "results.csv"
CARD_FILE = "run.json"
PREDICTIONS_FILE = "predictions.json"
METRICS_FILE = "metrics.json"
WEIGHTS_DIR = "weights"
KINDS = ("trained", "imported")
#: Settings that change where or how fast a run trains, never what it learns: ignored by
#: :func:`check_same_recipe`.
RUN_LOCAL_KEYS = (("train", "out"), ("train", "device"), ("train", "workers"))

#: Summary columns of :func:`runs_summary`.
SUMMARY_METRICS = ("AP", "AP50", "AP75", "APs", *SCALE_METRICS.values(), "AR500")
SPLITS = ("best", "last")
_MAX_DEPTH = 3


class RunError(InputFileError):
    """A run folder is missing, incomplete or holds a corrupt file (the message names it)."""


# ----------------------------------------------------------------------------- layout
def val_dir(run_dir: str | Path, split: str = "best") -> Path:
    """``<run>/val/<split>``: metrics.json and the matching tables of one validation."""
    return Path(run_dir) / "val" / split


def metrics_path(run_dir: str | Path, split: str = "best") -> Path:
    """``<run>/val/<split>/metrics.json``."""
    return val_dir(run_dir, split) / METRICS_FILE


def weights_path(run_dir: str | Path, which: str = "best") -> Path:
    """``<run>/weights/<which>.pt``."""
    return Path(run_dir) / WEIGHTS_DIR / f"{which}.pt"


def read_card(run_dir: str | Path) -> dict[str, Any] | None:
    """The run card (``run.json``) of an imported run, or ``None`` if there is none.

    Raises:
        RunError: the card exists but is not a JSON object with ``"kind"``.
    """
    file = Path(run_dir) / CARD_FILE
    if not file.is_file():
        return None
    try:
        card = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{file}: corrupt JSON ({exc})") from exc
    if not isinstance(card, dict) or card.get("kind") not in KINDS:
        raise RunError(f"{file}: not a run card (expected an object with kind in {KINDS})")
    return card


def run_kind(run_dir: str | Path) -> str:
    """``"imported"`` for a folder with an imported run card, else ``"trained"``."""
    file = Path(run_dir) / CARD_FILE
    if file.is_file():
        try:
            return str(json.loads(file.read_text()).get("kind", "trained"))
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            return "trained"
    return "trained"


# ----------------------------------------------------------------------------- state
def is_finished(
    run_dir: str | Path, epochs: int, split: str = "best", marker: str | None = None
) -> bool:
    """A finished trained run: nothing to train or validate again.

    Holds ``config.yaml``, ``results.csv`` with at least ``epochs`` rows, ``weights/<split>.pt``,
    ``val/<split>/metrics.json`` with an ``AP`` and both matching tables, and ``marker`` (a file
    the caller writes last, e.g. the ablation's ``ablation_run.json``) when given. A corrupt
    file makes the run unfinished, never an error.
    """
    run_dir = Path(run_dir)
    needed = [
        run_dir / CONFIG_FILE,
        run_dir / RESULTS_FILE,
        weights_path(run_dir, split),
        metrics_path(run_dir, split),
        val_dir(run_dir, split) / DETS_FILE,
        val_dir(run_dir, split) / GTS_FILE,
    ]
    if marker is not None:
        needed.append(run_dir / marker)
    if not all(p.is_file() for p in needed):
        return False
    try:
        metrics = json.loads(metrics_path(run_dir, split).read_text())
        rows = pd.read_csv(run_dir / RESULTS_FILE)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(metrics, dict) and "AP" in metrics and len(rows) >= epochs


def _same_relative_path(have: Any, want: Any, old_root: Path | None, new_root: Path) -> bool:
    """Paths inside the run's parent folder compare relative to it (the folder was moved)."""
    if not isinstance(have, str) or not isinstance(want, str) or old_root is None:
        return False
    try:
        return Path(have).relative_to(old_root) == Path(want).relative_to(new_root)
    except ValueError:
        return False


def _with_resolved_model(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the ``model`` fields left ``None`` (take the preset's value) filled from
    the preset: runs save the resolved model config, plans and older runs may hold ``None``."""
    model = config.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        return config
    if model["name"] not in PRESETS:
        return config
    preset = PRESETS[model["name"]]
    filled = {
        key: getattr(preset, key) if value is None and hasattr(preset, key) else value
        for key, value in model.items()
    }
    return {**config, "model": filled}


def check_same_recipe(
    run_dir: str | Path, want: dict[str, Any], ignore: tuple[tuple[str, str], ...] = RUN_LOCAL_KEYS
) -> None:
    """Refuse to skip or resume a run folder made with another recipe.

    Args:
        run_dir: a run folder holding ``config.yaml``.
        want: the config (a nested ``{section: {key: value}}`` dict, complete or only the keys
            the caller sets) the run is about to be skipped or resumed for.
        ignore: ``(section, key)`` pairs that do not change the recipe.

    A path under the run's parent folder (e.g. the demo's ``<out>/data/train``) is compared
    relative to that folder, so a moved output folder is still the same recipe.

    Raises:
        RunError: naming the first differences and the fix.
    """
    run_dir = Path(run_dir)
    file = run_dir / CONFIG_FILE
    try:
        saved = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RunError(
            f"{file}: unreadable ({exc}); delete {run_dir} or use another --out"
        ) from exc
    saved, want = _with_resolved_model(saved), _with_resolved_model(want)
    saved_out = (saved.get("train") or {}).get("out")
    old_root = Path(saved_out).parent if isinstance(saved_out, str) else None
    diffs = []
    for section, values in want.items():
        for key, value in values.items():
            have = (saved.get(section) or {}).get(key)
            if (section, key) in ignore or have == value:
                continue
            if _same_relative_path(have, value, old_root, run_dir.parent):
                continue
            diffs.append(f"{section}.{key}={have!r} (now {value!r})")
    if diffs:
        raise RunError(
            f"{run_dir} was made with another recipe: {'; '.join(diffs[:4])}"
            f"{'; ...' if len(diffs) > 4 else ''}: delete {run_dir} or use another --out"
        )


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
        kind: ``"trained"`` or ``"imported"`` (predictions of another detector).
        dataset: the validation dataset (``data.val`` or the card's ``dataset``), if known.
        ap: AP@[.5:.95] of the first split in ``splits``, if readable.
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
    kind: str = "trained"
    dataset: str | None = None
    ap: float | None = None


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
        notes: remarks on what was loaded (e.g. a split fallback).
        kind: ``"trained"`` or ``"imported"``.
        card: the run card of an imported run (``run.json``), else ``None``.

    For an imported run ``config`` is a view built from the card (``model.name`` = the
    detector, ``data.val`` = the dataset), so pages that read the config work for both kinds.
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
    kind: str = "trained"
    card: dict[str, Any] | None = None

    @property
    def has_weights(self) -> bool:
        return self.weights is not None


def _read_config(path: Path) -> dict[str, Any]:
    file = path / CONFIG_FILE
    if not file.is_file():
        raise RunError(
            f"{file}: missing (not a run folder written by ssabnet.fit, nor one imported with "
            "ssabnet val --predictions P --run DIR)"
        )
    try:
        config = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RunError(f"{file}: not valid YAML ({exc})") from exc
    if not isinstance(config, dict):
        raise RunError(f"{file}: expected a mapping, got {type(config).__name__}")
    return config


def card_config(card: dict[str, Any]) -> dict[str, Any]:
    """The config view of an imported run: ``model.name`` and ``data.val`` from its card."""
    return {
        "model": {"name": card.get("detector", "?")},
        "loss": {"box": "-"},
        "data": {"val": card.get("dataset")},
    }


def _weights(path: Path) -> Path | None:
    for name in ("best", "last"):
        if weights_path(path, name).is_file():
            return weights_path(path, name)
    return None


def is_run_dir(path: str | Path) -> bool:
    """A folder holding ``config.yaml``, ``results.csv`` or a run card."""
    path = Path(path)
    return any((path / f).is_file() for f in (CONFIG_FILE, RESULTS_FILE, CARD_FILE))


def _first_ap(path: Path, splits: tuple[str, ...]) -> float | None:
    for split in splits:
        try:
            value = json.loads(metrics_path(path, split).read_text()).get("AP")
            return None if value is None else float(value)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError, ValueError):
            return None
    return None


def run_info(path: str | Path, name: str | None = None) -> RunInfo:
    """Cheap summary of one run folder (never raises for a broken run: see ``problem``)."""
    path = Path(path).resolve()
    problem = None
    model = box = "?"
    dataset = None
    kind = run_kind(path)
    try:
        card = read_card(path) if kind == "imported" else None
        config = card_config(card) if card else _read_config(path)
        model = str((config.get("model") or {}).get("name", "?"))
        box = str((config.get("loss") or {}).get("box", "?"))
        dataset = (config.get("data") or {}).get("val")
    except RunError as exc:
        problem = str(exc)
    epochs = 0
    results = path / RESULTS_FILE
    if results.is_file():
        with results.open(errors="replace") as handle:
            epochs = max(0, sum(1 for line in handle if line.strip()) - 1)
    splits = tuple(s for s in SPLITS if metrics_path(path, s).is_file())
    if not splits and problem is None:
        problem = f"{path / 'val'}: no metrics.json (no validated epoch yet)"
    has_matches = any(
        (val_dir(path, s) / DETS_FILE).is_file() and (val_dir(path, s) / GTS_FILE).is_file()
        for s in SPLITS
    )
    return RunInfo(
        name or path.name,
        path,
        model,
        box,
        epochs,
        splits,
        has_matches,
        _weights(path),
        problem,
        kind,
        None if dataset is None else str(dataset),
        _first_ap(path, splits),
    )


def discover_runs(root: str | Path, max_depth: int = _MAX_DEPTH) -> list[RunInfo]:
    """Run folders under ``root`` (the root itself included), sorted by relative name.

    A run folder holds ``config.yaml``, ``results.csv`` or ``run.json`` (an imported run, see
    :func:`is_run_dir`); the search does not descend into a
    run folder, nor deeper than ``max_depth`` levels, and ignores hidden folders.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise MissingInputError(f"runs folder not found: {root}")
    found: list[RunInfo] = []

    def walk(folder: Path, depth: int) -> None:
        if is_run_dir(folder):
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
    card = read_card(path)
    config = card_config(card) if card and card["kind"] == "imported" else _read_config(path)
    notes: list[str] = []
    chosen = split
    if not metrics_path(path, split).is_file():
        other = next(s for s in SPLITS if s != split)
        if metrics_path(path, other).is_file():
            notes.append(f"no val/{split}; showing val/{other}")
            chosen = other
    metrics = _read_metrics(metrics_path(path, chosen))
    predictions = path / PREDICTIONS_FILE
    return Run(
        name=name or path.name,
        path=path,
        split=chosen,
        config=config,
        metrics=metrics,
        results=_read_results(path / RESULTS_FILE),
        matches=_read_matches(val_dir(path, chosen)),
        weights=_weights(path),
        predictions=predictions if predictions.is_file() else None,
        notes=tuple(notes),
        kind=card["kind"] if card else "trained",
        card=card,
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
            "kind": run.kind,
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
        raise UsageError(f"reference run {reference!r} is not among {sorted(by_name)}")
    ref_metrics = by_name[reference].metrics
    rows = []
    for run in runs:
        if run.name == reference:
            continue
        for key in SUMMARY_METRICS:
            value, ref = _value(run.metrics, key), _value(ref_metrics, key)
            rows.append(
                {
                    "run": run.name,
                    "metric": key,
                    "value": value,
                    "reference": ref,
                    "delta": value - ref,
                }
            )
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
    "CARD_FILE",
    "CONFIG_FILE",
    "KINDS",
    "PREDICTIONS_FILE",
    "RESULTS_FILE",
    "SCALE_METRICS",
    "SUMMARY_METRICS",
    "Run",
    "RunError",
    "RunInfo",
    "card_config",
    "check_same_recipe",
    "compare_metrics",
    "discover_runs",
    "is_finished",
    "is_run_dir",
    "load_run",
    "metrics_path",
    "read_card",
    "run_kind",
    "val_dir",
    "weights_path",
    "per_class_table",
    "run_info",
    "runs_summary",
    "scale_ap_table",
    "training_curves",
]
