"""Another detector's predictions as a run: ``ssabnet val --predictions P --data D --run DIR``.

The imported run has the layout of :mod:`ssabnet.runs` (kind ``"imported"``)::

    DIR/run.json                      the run card: detector, source file (+ sha256), format and
                                      the reader's decisions, dataset, protocol, date, counts
    DIR/predictions.json              the predictions as COCO results with SSABNet image ids
                                      (a byte copy when the source already is exactly that)
    DIR/val/best/metrics.json         + matches_{dets,gts}.parquet, as for a trained run

so the app, FiftyOne indexing, the bootstrap comparison and the notebooks take it next to
trained runs. Everything is computed before anything is written, then written into a hidden
staging folder beside ``DIR`` that is renamed into place: a bad input leaves nothing behind and
a reader never sees half a run. An existing ``DIR`` is replaced only with ``overwrite=True``
and only if it is an imported run (a trained run is never replaced by an import).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssabnet import __version__, runs
from ssabnet.errors import OverwriteError
from ssabnet.evaluation.evaluator import Evaluator, save_evaluation
from ssabnet.evaluation.readers import LoadedPredictions, load_predictions
from ssabnet.evaluation.results_io import predictions_to_coco_results
from ssabnet.protocol import MAX_DET


@dataclass(frozen=True)
class ImportedRun:
    """What :func:`import_predictions` wrote: the run folder, its card, metrics and inputs."""

    path: Path
    card: dict[str, Any]
    metrics: dict[str, Any]
    loaded: LoadedPredictions


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def dataset_reference(spec: str | Path) -> str:
    """How the card names the dataset: a catalog name as given, a path made absolute."""
    path = Path(spec)
    return str(path.resolve()) if path.exists() else str(spec)


def check_run_target(run_dir: Path, overwrite: bool) -> None:
    """Refuse an existing ``run_dir`` unless ``overwrite`` and it is an imported run.

    Raises:
        OverwriteError: the folder exists (and is not empty) and may not be replaced.
    """
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise OverwriteError(f"{run_dir}: exists and is not a folder")
    if not any(run_dir.iterdir()):
        return
    if not overwrite:
        raise OverwriteError(f"{run_dir}: already exists; pass --overwrite to replace it")
    if runs.run_kind(run_dir) != "imported":
        raise OverwriteError(
            f"{run_dir}: holds a trained run (or something else), not an imported one; "
            "--overwrite only replaces imported runs: choose another --run folder"
        )


def import_predictions(
    source: str | Path,
    dataset,
    run_dir: str | Path,
    *,
    dataset_spec: str | Path,
    name: str | None = None,
    pred_format: str = "auto",
    class_map: str | Path | Mapping | None = None,
    max_dets: int = MAX_DET,
    backend: str = "faster",
    overwrite: bool = False,
    loaded: LoadedPredictions | None = None,
) -> ImportedRun:
    """Score a detector's predictions on ``dataset`` and write them as an imported run.

    Args:
        source: the predictions (see :func:`ssabnet.evaluation.readers.load_predictions`).
        dataset: the ``DetectionDataset`` they are for.
        run_dir: the run folder to write.
        dataset_spec: how the user named the dataset (``--data``), kept in the card so the app
            finds the images again.
        name: the detector's name (default: the run folder's name).
        pred_format, class_map: passed to ``load_predictions``.
        max_dets: detections kept per image by the evaluator (COCO protocol).
        backend: evaluator backend.
        overwrite: replace an existing imported run in ``run_dir``.
        loaded: already-read predictions (skips reading ``source`` again).

    Raises:
        OverwriteError: ``run_dir`` exists (see :func:`check_run_target`).
        InputFileError: a bad predictions file (nothing is written).
    """
    run_dir = Path(run_dir)
    check_run_target(run_dir, overwrite)
    source = Path(source)
    if loaded is None:
        loaded = load_predictions(source, dataset, pred_format, class_map)
    evaluator = Evaluator(
        dataset.info, dataset.records, protocol="coco", backend=backend, max_dets=max_dets
    )
    evaluator.process(loaded.predictions)
    metrics = evaluator.evaluate()
    card = {
        "kind": "imported",
        "name": name or run_dir.resolve().name,
        "detector": name or run_dir.resolve().name,
        "source": str(source.resolve()),
        "source_sha256": _sha256(source),
        "format": loaded.format,
        "decisions": list(loaded.decisions),
        "dataset": dataset_reference(dataset_spec),
        "dataset_name": dataset.info.name,
        "classes": list(dataset.info.classes),
        "protocol": "coco",
        "max_dets": max_dets,
        "images": len(dataset.records),
        "detections": loaded.num_detections,
        "dropped": loaded.num_dropped,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "software": f"ssabnet {__version__}",
    }
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", dir=run_dir.parent))
    try:
        if loaded.canonical:  # already COCO results with our ids: keep the bytes (fast, exact)
            shutil.copyfile(source, staging / runs.PREDICTIONS_FILE)
        else:
            entries = predictions_to_coco_results(loaded.predictions, dataset.info, dataset.records)
            text = json.dumps(entries, separators=(",", ":"))
            (staging / runs.PREDICTIONS_FILE).write_text(text)
        save_evaluation(evaluator, metrics, runs.metrics_path(staging, "best"))
        (staging / runs.CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")  # written last
        _replace_folder(staging, run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImportedRun(run_dir, card, metrics, loaded)


def _replace_folder(staging: Path, run_dir: Path) -> None:
    """Move ``staging`` to ``run_dir``; an old ``run_dir`` is moved aside first, then deleted."""
    old = None
    if run_dir.exists():
        old = run_dir.with_name(f".{run_dir.name}.old-{time.time_ns()}")
        run_dir.rename(old)
    try:
        staging.rename(run_dir)
    except BaseException:
        if old is not None:
            old.rename(run_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["ImportedRun", "check_run_target", "dataset_reference", "import_predictions"]
