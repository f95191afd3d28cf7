"""The one evaluator of SSABNet (training, ``ssabnet val``, app, FiftyOne checks, notebooks).

``reset / process / evaluate`` (detectron2 style)::

    evaluator = Evaluator(dataset.info, dataset.records)      # COCO@500 on faster-coco-eval
    for batch in loader:
        evaluator.process({image_id: {"boxes": ..., "scores": ..., "labels": ...}, ...})
    metrics = evaluator.evaluate()     # metrics.json dict
    dets, gts = evaluator.matches()    # per-detection / per-object tables (IoU 0.5)

Boxes are ``xyxy`` in ORIGINAL image pixels, labels contiguous ``0..C-1``. Images never given
to :meth:`Evaluator.process` count as images with no detection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ssabnet.atomic_io import write_json_atomic
from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.errors import ConfigError, InputFileError
from ssabnet.evaluation.coco_protocol import BACKENDS, CocoArrays, coco_arrays, summarize_coco
from ssabnet.evaluation.ignore import ImageView, coco_view
from ssabnet.evaluation.matching import MatchTables, match_tables
from ssabnet.evaluation.results_io import prediction_arrays
from ssabnet.evaluation.visdrone_official import evaluate_official
from ssabnet.protocol import MAX_DET

PROTOCOLS = ("coco", "visdrone-official")
#: Every metric :meth:`Evaluator.evaluate` returns (besides ``per_class`` and what was run).
METRIC_KEYS = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AP_vt",
    "AP_t",
    "AP_s_tiny",
    "AR1",
    "AR10",
    "AR100",
    "AR500",
)
#: Per-bucket AP key by size bucket, in :data:`ssabnet.scales.SIZE_BUCKETS` order.
SCALE_METRICS: dict[str, str] = {
    "very_tiny": "AP_vt",
    "tiny": "AP_t",
    "small": "AP_s_tiny",
    "medium": "APm",
    "large": "APl",
}
#: The headline columns: training's results.csv and log line, the ablation table.
HEADLINE_METRICS = ("AP", "AP50", "APs", "AP_vt", "AP_t")
#: A run's summary: overall AP, COCO's scales, the tiny buckets and recall at 500 detections
#: (the ablation report and the demo's table).
SUMMARY_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AP_vt", "AP_t", "AR500")
METRICS_FILE = "metrics.json"


def _empty_prediction() -> dict[str, np.ndarray]:
    return {
        "boxes": np.zeros((0, 4), np.float64),
        "scores": np.zeros(0, np.float64),
        "labels": np.zeros(0, np.int64),
    }


class Evaluator:
    """Accumulates predictions for a fixed set of records and scores them.

    Args:
        dataset_info: class names and native ids of the dataset.
        records: the ground truth (one :class:`ImageRecord` per evaluated image).
        protocol: ``"coco"`` (COCO AP@[.5:.95] at ``max_dets`` with tiny-object scales) or
            ``"visdrone-official"`` (the official VisDrone2018-DET MATLAB toolkit, re-implemented).
        backend: ``"faster"`` (faster-coco-eval) or ``"pycocotools"`` (reference); used by the
            COCO protocol only.
        max_dets: detections kept per image (highest scores; the official protocol keeps the
            first ``max_dets`` in input order, as the toolkit does).
    """

    def __init__(
        self,
        dataset_info: DatasetInfo,
        records: Iterable[ImageRecord],
        protocol: str = "coco",
        backend: str = "faster",
        max_dets: int = MAX_DET,
    ):
        if protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
        if backend not in BACKENDS:
            raise ConfigError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
        if int(max_dets) < 1:
            raise ConfigError(f"max_dets must be >= 1, got {max_dets}")
        self.info = dataset_info
        self.records = sorted(records, key=lambda r: r.image_id)
        self._by_id = {r.image_id: r for r in self.records}
        if len(self._by_id) != len(self.records):
            raise InputFileError("duplicate image_id in the evaluated records")
        self.protocol = protocol
        self.backend = backend
        self.max_dets = int(max_dets)
        self.reset()

    def reset(self) -> None:
        """Forget every prediction processed so far."""
        self._predictions: dict[str, dict[str, np.ndarray]] = {}
        self._views: dict[str, ImageView] | None = None
        self._arrays: CocoArrays | None = None

    def process(self, predictions: Mapping[str, Mapping]) -> None:
        """Add predictions ``{image_id: {"boxes", "scores", "labels"}}`` (numpy or torch).

        Raises:
            ValueError: unknown image id, an image given twice, a label out of range, or a
                malformed prediction dict.
        """
        for image_id, prediction in predictions.items():
            if image_id not in self._by_id:
                raise InputFileError(f"predictions for unknown image_id {image_id!r}")
            if image_id in self._predictions:
                raise InputFileError(f"predictions for image_id {image_id!r} given twice")
            arrays = prediction_arrays(prediction, image_id)
            bad = (arrays["labels"] < 0) | (arrays["labels"] >= self.info.num_classes)
            if bad.any():
                raise InputFileError(
                    f"predictions for image_id {image_id!r}: label {int(arrays['labels'][bad][0])}"
                    f" outside 0..{self.info.num_classes - 1}"
                )
            self._predictions[image_id] = arrays
        self._views = None
        self._arrays = None

    def _all_predictions(self) -> dict[str, dict[str, np.ndarray]]:
        return {
            r.image_id: self._predictions.get(r.image_id) or _empty_prediction()
            for r in self.records
        }

    def _coco_views(self) -> dict[str, ImageView]:
        if self._views is None:
            preds = self._all_predictions()
            self._views = {
                r.image_id: coco_view(
                    r.boxes,
                    r.ignore_regions,
                    preds[r.image_id]["boxes"],
                    preds[r.image_id]["scores"],
                    self.max_dets,
                )
                for r in self.records
            }
        return self._views

    def evaluate(self) -> dict:
        """Score everything processed; returns the ``metrics.json`` dict.

        Keys: ``AP, AP50, AP75, APs, APm, APl, AP_vt, AP_t, AP_s_tiny, AR1, AR10, AR100, AR500``
        (fractions in [0, 1], ``None`` where no ground truth exists to average over),
        ``per_class`` ``{name: {AP, AP50, AP75, ...}}``, ``n_images``, ``max_dets``,
        ``protocol``, ``backend``.
        """
        if self.protocol == "coco":
            metrics = summarize_coco(self.coco_arrays(), self.info.classes)
            backend = self.backend
        else:
            preds = self._all_predictions()
            metrics = evaluate_official(self.info, self.records, preds, self.max_dets)
            backend = "ssabnet"
        out = {key: metrics.get(key) for key in METRIC_KEYS}
        for key, value in metrics.items():  # e.g. AR300 when max_dets=300
            if key not in out and key != "per_class":
                out[key] = value
        out["per_class"] = metrics["per_class"]
        out.update(
            n_images=len(self.records),
            max_dets=self.max_dets,
            protocol=self.protocol,
            backend=backend,
        )
        return out

    def coco_arrays(self) -> CocoArrays:
        """The accumulated COCOeval arrays of the COCO protocol (what :meth:`evaluate` summarizes
        when ``protocol == "coco"``): ``precision[T, R, K, A, M]``, ``recall[T, K, A, M]``, with
        ``K`` in ascending native category id order. Computed once per set of predictions.
        """
        if self._arrays is None:
            self._arrays = coco_arrays(
                self.info,
                self.records,
                self._all_predictions(),
                self._coco_views(),
                self.backend,
                self.max_dets,
            )
        return self._arrays

    def matches(self) -> MatchTables:
        """Per-detection and per-object matching tables at IoU 0.5 (COCO rules, area all).

        See :mod:`ssabnet.evaluation.matching` for the columns. The tables follow the COCO
        protocol's ignore rules whatever ``protocol`` is.
        """
        return match_tables(self.info, self.records, self._all_predictions(), self._coco_views())


def write_metrics(metrics: Mapping, path: str | Path) -> Path:
    """Write a metrics dict as indented JSON (``None`` -> ``null``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, metrics)
    return path


def save_evaluation(evaluator: Evaluator, metrics: Mapping, metrics_path: str | Path) -> list[Path]:
    """Write ``metrics_path`` (JSON) and the matching tables (parquet) beside it."""
    metrics_path = Path(metrics_path)
    written = [write_metrics(metrics, metrics_path)]
    written.extend(evaluator.matches().save(metrics_path.parent))
    return written


def evaluate_predictions(
    dataset,
    predictions_by_image_id: Mapping[str, Mapping],
    protocol: str = "coco",
    backend: str = "faster",
    max_dets: int = MAX_DET,
    out_dir: str | Path | None = None,
    records: Iterable[ImageRecord] | None = None,
) -> dict:
    """Score predictions on a dataset in one call (what ``ssabnet val`` and the engine use).

    Args:
        dataset: a ``DetectionDataset`` (``.info``, ``.records``).
        predictions_by_image_id: contract-4 prediction dicts keyed by record ``image_id``.
        out_dir: when given, writes ``metrics.json``, ``matches_dets.parquet`` and
            ``matches_gts.parquet`` there.
        records: evaluate on these records instead of all of ``dataset.records``.

    Returns:
        the metrics dict of :meth:`Evaluator.evaluate`.
    """
    evaluator = Evaluator(
        dataset.info,
        dataset.records if records is None else records,
        protocol=protocol,
        backend=backend,
        max_dets=max_dets,
    )
    evaluator.process(predictions_by_image_id)
    metrics = evaluator.evaluate()
    if out_dir is not None:
        save_evaluation(evaluator, metrics, Path(out_dir) / METRICS_FILE)
    return metrics
