"""Read any detector's predictions: COCO results, Ultralytics ``predictions.json``, VisDrone txts.

:func:`load_predictions` is the one entry point (``ssabnet val --predictions``, the run import
and ``ssabnet fiftyone index --pred`` call it). It returns contract-4 prediction dicts keyed by
record ``image_id`` plus the decisions it took, as lines to print, so that nothing is guessed
silently.

Formats (``pred_format``):

``coco``
    A JSON list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` in original
    image pixels. An integer ``image_id`` is the SSABNet COCO id (the record's position in
    sorted ``image_id`` order, from 1: :func:`ssabnet.data.coco.coco_image_ids`, the ids of
    ``ssabnet data convert``). A string ``image_id`` is resolved by name (see below).
``ultralytics``
    The same JSON list as written by Ultralytics ``val(save_json=True)``: ``image_id`` is
    ``int(stem)`` for a numeric file stem and the stem otherwise. An integer is therefore read
    as a **numeric file stem**, never as a position.
``visdrone``
    A folder of official VisDrone-DET result files (one ``<image stem>.txt`` per image, lines
    ``x,y,w,h,score,category,-1,-1``), read by :mod:`ssabnet.evaluation.results_io`.
``auto`` (default)
    A folder is ``visdrone``; a JSON list is ``coco`` or ``ultralytics`` by this **rule for
    integer ids**: the set of integer ids in the file must fit exactly one reading (every id is
    a valid SSABNet COCO id, or every id is the integer of a numeric file stem). When both fit
    and they name different images for some id, it is an error asking for
    ``--pred-format coco`` or ``--pred-format ultralytics``; when both name the same images
    the choice does not matter. A file whose ids fit neither reading is an error too.

String image ids are matched, in this order, to a record's ``image_id``, its ``image_id``
after dropping a file suffix (COCO ``file_name`` relative to the dataset root), the image's
file name (``0000001.jpg``) and the image's stem; a name shared by several images is an error.

Class ids: ``class_map`` is ``None`` (automatic), ``"offset:K"`` (the file's id is the
dataset's native id plus ``K``: ``offset:-1`` for 0-based files of a 1-based dataset), or a
mapping / a YAML or JSON file ``{file id: dataset class name or native id, or null to drop}``
(dropped detections are counted and reported). Automatic: the file's ids are the dataset's
native ids (VisDrone 1..10) if they all fit; else 0-based class indices if they all fit; when
both fit the native reading is taken and the decision says how to ask for the other.

Every bad input raises :class:`ssabnet.errors.InputFileError` naming the file and the entry
(JSON) or line (txt): unknown image or class, a box that is not 4 finite numbers or has a
negative width or height, a score outside [0, 1], an empty file or folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ssabnet.data.coco import coco_image_ids
from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.errors import InputFileError
from ssabnet.evaluation.results_io import read_visdrone_results
from ssabnet.json_input import read_json
from ssabnet.ops.boxes import boxes_xywh_to_xyxy

PRED_FORMATS = ("auto", "coco", "ultralytics", "visdrone")
Predictions = dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True)
class LoadedPredictions:
    """What :func:`load_predictions` read.

    Attributes:
        predictions: ``{record image_id: {"boxes": float64[N, 4] xyxy px, "scores": [N],
            "labels": int64[N] contiguous}}`` for every record (empty arrays without detections);
            inside an image, detections keep the file's order.
        format: the format read (``"coco"``, ``"ultralytics"`` or ``"visdrone"``).
        source: the file or folder read.
        decisions: one line per choice taken (format, image-id reading, class ids, drops).
        num_detections: detections kept.
        num_dropped: detections dropped by a ``null`` entry of the class map.
        images_with_detections: records that got at least one detection.
        canonical: the file already is what :func:`results_io.write_coco_results` writes for
            these predictions up to order and number formatting: COCO results with SSABNet
            integer ids and the dataset's category ids, every entry kept (an import may copy it).
    """

    predictions: Predictions
    format: str
    source: Path
    decisions: tuple[str, ...]
    num_detections: int
    num_dropped: int = 0
    images_with_detections: int = 0
    canonical: bool = False


# ----------------------------------------------------------------------------- class maps
def parse_class_map(spec: str | Path | Mapping | None, info: DatasetInfo) -> ClassMap | None:
    """``None``, ``"offset:K"``, a mapping or a YAML/JSON file -> :class:`ClassMap`.

    Raises:
        InputFileError: unreadable file, an unknown class name or native id, a bad offset.
    """
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        return ClassMap.from_mapping(spec, info, "class map")
    text = str(spec)
    if text.startswith("offset:"):
        try:
            offset = int(text.split(":", 1)[1])
        except ValueError:
            raise InputFileError(
                f"--class-map {text!r}: expected offset:K with an integer K"
            ) from None
        # file id = native id + offset
        return ClassMap(
            {native + offset: label for label, native in enumerate(info.native_ids)},
            f"offset {offset:+d} (file id = dataset id {offset:+d})",
        )
    path = Path(text)
    if not path.is_file():
        raise InputFileError(f"{path}: class map file not found (or give offset:K)")
    import yaml

    try:
        data = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: not valid YAML/JSON ({exc})") from exc
    if not isinstance(data, Mapping):
        raise InputFileError(f"{path}: expected a mapping {{file id: class name or id}}")
    return ClassMap.from_mapping(data, info, str(path))


@dataclass(frozen=True)
class ClassMap:
    """File category id -> contiguous label (``None``: drop the detection)."""

    label_of: dict[int, int | None]
    description: str

    @classmethod
    def from_mapping(cls, data: Mapping, info: DatasetInfo, where: str) -> ClassMap:
        by_name = {name: label for label, name in enumerate(info.classes)}
        by_native = {native: label for label, native in enumerate(info.native_ids)}
        label_of: dict[int, int | None] = {}
        for key, value in data.items():
            try:
                file_id = int(key)
            except (TypeError, ValueError):
                raise InputFileError(
                    f"{where}: key {key!r} is not an integer category id"
                ) from None
            if value is None:
                label_of[file_id] = None
            elif isinstance(value, str) and value in by_name:
                label_of[file_id] = by_name[value]
            elif isinstance(value, int) and not isinstance(value, bool) and value in by_native:
                label_of[file_id] = by_native[value]
            else:
                raise InputFileError(
                    f"{where}: {key!r} -> {value!r} is neither a class of the dataset "
                    f"{list(info.classes)} nor one of its ids {list(info.native_ids)} (or null)"
                )
        return cls(label_of, f"{where} ({len(label_of)} ids)")


def _auto_class_map(file_ids: set[int], info: DatasetInfo) -> tuple[ClassMap | None, str]:
    native = {n: label for label, n in enumerate(info.native_ids)}
    zero = {label: label for label in range(info.num_classes)}
    fits_native, fits_zero = file_ids <= native.keys(), file_ids <= zero.keys()
    shown = _id_range(file_ids)
    if fits_native and (not fits_zero or all(native[i] == zero[i] for i in file_ids)):
        return ClassMap(native, "dataset ids"), f"class ids {shown}: the dataset's ids"
    if fits_native:
        return ClassMap(native, "dataset ids"), (
            f"class ids {shown} fit both the dataset's ids {_id_range(native)} and 0-based "
            "indices; read as the dataset's ids (pass --class-map offset:-1 if they are 0-based)"
        )
    if fits_zero:
        return ClassMap(zero, "0-based class indices"), (
            f"class ids {shown}: 0-based class indices (label i = {info.classes[0]!r}...), not "
            f"the dataset's ids {_id_range(native)}"
        )
    return None, ""


def _id_range(ids) -> str:
    ids = sorted(ids)
    if not ids:
        return "(none)"
    if ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 2:
        return f"{ids[0]}..{ids[-1]}"
    return "{" + ", ".join(str(i) for i in ids[:12]) + (", ..." if len(ids) > 12 else "") + "}"


# ----------------------------------------------------------------------------- image ids
@dataclass(frozen=True)
class _ImageNames:
    """Ways a results file may name an image (built once per dataset)."""

    position: dict[int, str]  # SSABNet COCO id -> image_id
    numeric_stem: dict[int, str | None]  # int(stem) -> image_id (None: shared by several)
    names: dict[str, str | None]  # image_id / path w/o suffix / file name / stem -> image_id

    @classmethod
    def build(cls, records: Sequence[ImageRecord]) -> _ImageNames:
        position = {v: k for k, v in coco_image_ids(records).items()}
        numeric: dict[int, str | None] = {}
        names: dict[str, str | None] = {r.image_id: r.image_id for r in records}
        for key_of in (lambda r: r.image_path.name, lambda r: r.image_path.stem):
            found: dict[str, str | None] = {}
            for r in records:
                key = key_of(r)
                found[key] = r.image_id if found.get(key, r.image_id) == r.image_id else None
            for key, value in found.items():
                names.setdefault(key, value)
        for r in records:
            stem = r.image_path.stem
            if stem.isascii() and stem.isdigit():
                key = int(stem)
                numeric[key] = r.image_id if numeric.get(key, r.image_id) == r.image_id else None
        return cls(position, numeric, names)

    def resolve(self, name: str) -> str | None:
        """A string id -> record image_id (``None``: unknown or shared by several images)."""
        if name in self.names:
            return self.names[name]
        no_suffix = name.rsplit(".", 1)[0] if "." in Path(name).name else name
        if no_suffix != name and no_suffix in self.names:
            return self.names[no_suffix]
        return None


def _resolve_int_ids(
    ints: set[int], names: _ImageNames, pred_format: str, source: str, where
) -> tuple[dict[int, str], str, str]:
    """Integer ids -> image_id; returns ``(mapping, format, decision)`` or raises.

    ``where(image_id)`` names the first entry holding ``image_id`` (file and entry/line).
    """
    stems = {k: v for k, v in names.numeric_stem.items() if v is not None}
    fits_pos = ints <= names.position.keys()
    fits_stem = ints <= stems.keys()
    shown = _id_range(ints)
    use_ultralytics = "--pred-format ultralytics (integer ids are numeric file stems)"
    use_coco = "--pred-format coco (integer ids from `ssabnet data convert`)"
    if pred_format == "coco" or (pred_format == "auto" and fits_pos and not fits_stem):
        if not fits_pos:
            bad = min(ints - names.position.keys())
            hint = f"; they are numeric file stems: pass {use_ultralytics}" if fits_stem else ""
            raise InputFileError(
                f"{where(bad)}: unknown image_id {bad} (SSABNet COCO ids of this dataset are "
                f"1..{len(names.position)}){hint}"
            )
        return names.position, "coco", f"integer image ids {shown}: SSABNet COCO ids"
    if pred_format == "ultralytics" or (pred_format == "auto" and fits_stem and not fits_pos):
        if not fits_stem:
            bad = min(ints - stems.keys())
            shared = bad in names.numeric_stem
            why = "is the stem of several images" if shared else "is no image's numeric stem"
            hint = f"; they fit SSABNet COCO ids: pass {use_coco}" if fits_pos else ""
            raise InputFileError(f"{where(bad)}: image_id {bad} {why}{hint}")
        return stems, "ultralytics", f"integer image ids {shown}: numeric file stems"
    if fits_pos and fits_stem:
        if all(names.position[i] == stems[i] for i in ints):
            return (
                stems,
                "coco",
                (
                    f"integer image ids {shown}: SSABNet COCO ids and numeric file stems name the "
                    "same images"
                ),
            )
        raise InputFileError(
            f"{source}: integer image ids {shown} fit two readings that name different images: "
            f"SSABNet COCO ids (sorted position) and numeric file stems (Ultralytics); pass "
            f"{use_coco} or {use_ultralytics}"
        )
    bad = min(ints - names.position.keys() - stems.keys())
    raise InputFileError(
        f"{where(bad)}: unknown image_id {bad}: neither a SSABNet COCO id "
        f"(1..{len(names.position)}) nor the numeric stem of an image "
        "of the dataset (wrong --data?)"
    )


# ----------------------------------------------------------------------------- JSON results
def _bad_entry(source: str, index: int, entry: Any, why: str) -> InputFileError:
    text = json.dumps(entry, default=str)
    if len(text) > 200:
        text = text[:200] + "..."
    return InputFileError(f"{source}: entry {index} {text}: {why}")


def _is_number(value: Any) -> bool:
    return type(value) is float or type(value) is int


def _json_columns(entries: list, source: str):
    """Columns of a results list; the first entry of a wrong type is named.

    A fast path checks types per column (sets of types); any surprise falls back to the entry
    by entry check, which raises naming the first bad entry.
    """
    try:
        raw_ids = [e["image_id"] for e in entries]
        categories = [e["category_id"] for e in entries]
        bboxes = [e["bbox"] for e in entries]
        scores = [e["score"] for e in entries]
        ok = (
            {type(v) for v in raw_ids} <= {int, str}
            and {type(v) for v in categories} <= {int}
            and {type(v) for v in scores} <= {int, float}
            and {type(v) for v in bboxes} <= {list}
            and {len(v) for v in bboxes} <= {4}
            and {type(v) for b in bboxes for v in b} <= {int, float}
        )
    except (KeyError, TypeError, IndexError):
        ok = False
    if not ok:
        _check_entries(entries, source)  # raises
    xywh = np.array(bboxes, dtype=np.float64).reshape(-1, 4)
    categories = np.array(categories, dtype=np.int64)
    scores = np.array(scores, dtype=np.float64)
    bad = ~np.isfinite(xywh).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _bad_entry(source, i, entries[i], "bbox has a NaN or infinite value")
    bad = (xywh[:, 2] < 0) | (xywh[:, 3] < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _bad_entry(source, i, entries[i], "bbox has a negative width or height")
    bad = ~((scores >= 0) & (scores <= 1))  # NaN fails both comparisons
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        why = "score is NaN" if np.isnan(scores[i]) else "score must lie in [0, 1]"
        raise _bad_entry(source, i, entries[i], why)
    return raw_ids, categories, boxes_xywh_to_xyxy(xywh), scores


def _check_entries(entries: list, source: str) -> None:
    """Raise naming the first entry that is not a well-typed COCO result."""
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise _bad_entry(source, index, entry, "not a JSON object")
        for key in ("image_id", "category_id", "bbox", "score"):
            if key not in entry:
                raise _bad_entry(source, index, entry, f"missing {key!r}")
        raw_id, category, bbox, score = (
            entry[k] for k in ("image_id", "category_id", "bbox", "score")
        )
        if type(raw_id) is not int and type(raw_id) is not str:
            raise _bad_entry(source, index, entry, "image_id must be an integer or a string")
        if type(category) is not int:
            raise _bad_entry(source, index, entry, "category_id must be an integer")
        if type(bbox) is not list or len(bbox) != 4 or not all(map(_is_number, bbox)):
            raise _bad_entry(source, index, entry, "bbox must be 4 numbers [x, y, w, h]")
        if not _is_number(score):
            raise _bad_entry(source, index, entry, "score must be a number")
    raise AssertionError("_check_entries found no bad entry")  # the fast path disagreed


def _read_json_results(path: Path, records, pred_format: str):
    """``(rows of image index, categories, xyxy boxes, scores, format, decisions)`` of a JSON."""
    source = str(path)
    entries = read_json(path, "results file")  # (also refuses JSON nested too deeply)
    if isinstance(entries, dict) and "annotations" in entries and "images" in entries:
        raise InputFileError(
            f"{path}: a COCO dataset file (images + annotations), not a results list; give the "
            "detector's results (a JSON list of {image_id, category_id, bbox, score})"
        )
    if not isinstance(entries, list):
        raise InputFileError(f"{path}: a results file must be a JSON list of detections")
    if not entries:
        raise InputFileError(f"{path}: holds no detections (an empty list)")
    raw_ids, categories, boxes, scores = _json_columns(entries, source)
    names = _ImageNames.build(records)
    index_of = {r.image_id: i for i, r in enumerate(records)}
    ints = {v for v in set(raw_ids) if type(v) is int}
    strs = {v for v in set(raw_ids) if type(v) is str}
    decisions = []
    chosen = "coco" if pred_format == "auto" else pred_format
    lookup: dict[Any, int] = {}
    if ints:

        def where(value) -> str:
            i = raw_ids.index(value)
            return str(_bad_entry(source, i, entries[i], "")).rstrip(": ")

        mapping, chosen, decision = _resolve_int_ids(ints, names, pred_format, source, where)
        decisions.append(decision)
        lookup |= {i: index_of[mapping[i]] for i in ints}
    for name in strs:
        image_id = names.resolve(name)
        if image_id is None:
            i = raw_ids.index(name)
            why = "names several images" if name in names.names else "unknown image_id"
            raise _bad_entry(source, i, entries[i], f"{why} {name!r} (wrong --data?)")
        lookup[name] = index_of[image_id]
    if strs:
        decisions.append(f"{len(strs)} string image ids matched by image id, file name or stem")
    rows = np.fromiter((lookup[v] for v in raw_ids), dtype=np.int64, count=len(raw_ids))
    ssabnet_ids = chosen == "coco" and not strs
    return rows, categories, boxes, scores, chosen, decisions, entries, ssabnet_ids


# ----------------------------------------------------------------------------- VisDrone txt
class _EveryCategory(Mapping):
    """``category -> category`` for any integer: read the raw ids, decide the mapping after."""

    def __getitem__(self, key: int) -> int:
        return int(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int)

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


def _read_visdrone_folder(path: Path, records, info: DatasetInfo):
    """A folder of official result txts (:func:`results_io.read_visdrone_results`) -> columns."""
    raw = read_visdrone_results(path, info, records, category_to_label=_EveryCategory())
    per_record = [raw[r.image_id] for r in records]
    counts = [len(p["scores"]) for p in per_record]
    if not sum(counts):
        raise InputFileError(f"{path}: the result files hold no detections")
    rows = np.repeat(np.arange(len(records), dtype=np.int64), counts)
    boxes = np.concatenate([p["boxes"] for p in per_record]).reshape(-1, 4)
    scores = np.concatenate([p["scores"] for p in per_record])
    categories = np.concatenate([p["labels"] for p in per_record]).astype(np.int64)
    decisions = [f"{len(records)} result files (one per image)"]
    return rows, categories, boxes, scores, "visdrone", decisions, None, False


# ----------------------------------------------------------------------------- entry point
def detect_format(path: str | Path) -> str:
    """``"visdrone"`` for a folder, ``"json"`` for a file (coco vs ultralytics: by its ids)."""
    path = Path(path)
    if path.is_dir():
        return "visdrone"
    if path.is_file():
        return "json"
    raise InputFileError(f"predictions not found: {path} (a results .json or a folder of txts)")


def load_predictions(
    path: str | Path,
    dataset,
    pred_format: str = "auto",
    class_map: str | Path | Mapping | None = None,
    *,
    records: Sequence[ImageRecord] | None = None,
) -> LoadedPredictions:
    """Read a detector's predictions for ``dataset`` (see the module docstring for the rules).

    Args:
        path: a results JSON (COCO / Ultralytics) or a folder of VisDrone-DET result txts.
        dataset: a ``DetectionDataset`` (``.info``, ``.records``) the predictions are for.
        pred_format: one of :data:`PRED_FORMATS`.
        class_map: ``None`` (automatic), ``"offset:K"``, a mapping or a YAML/JSON file.
        records: resolve image ids against these records (default: ``dataset.records``).

    Returns:
        :class:`LoadedPredictions`: predictions for every record and the decisions taken.

    Raises:
        InputFileError: unknown format, missing/empty input, or a bad entry (named).
    """
    if pred_format not in PRED_FORMATS:
        raise InputFileError(f"unknown --pred-format {pred_format!r}; choose from {PRED_FORMATS}")
    path = Path(path)
    info: DatasetInfo = dataset.info
    records = list(dataset.records if records is None else records)
    kind = detect_format(path)
    if pred_format == "visdrone" and kind != "visdrone":
        raise InputFileError(f"{path}: --pred-format visdrone needs a folder of result txts")
    if pred_format in ("coco", "ultralytics") and kind != "json":
        raise InputFileError(f"{path}: --pred-format {pred_format} needs a .json results file")
    mapping = parse_class_map(class_map, info)
    decisions = []
    if kind == "visdrone":
        rows, categories, boxes, scores, chosen, more, entries, ssabnet_ids = _read_visdrone_folder(
            path, records, info
        )
    else:
        rows, categories, boxes, scores, chosen, more, entries, ssabnet_ids = _read_json_results(
            path, records, pred_format
        )
    how = "auto-detected" if pred_format == "auto" else "given"
    decisions.append(f"format: {chosen} ({how})")
    decisions.extend(more)
    file_ids = set(np.unique(categories).tolist())
    if mapping is None:
        mapping, decision = _auto_class_map(file_ids, info)
        if mapping is None:
            bad = min(file_ids - set(info.native_ids))
            i = int(np.flatnonzero(categories == bad)[0])
            raise _entry_error(
                path,
                kind,
                entries,
                i,
                records,
                info,
                set(info.native_ids),
                (
                    f"unknown category_id {bad}: the file's ids {_id_range(file_ids)} are neither "
                    f"the dataset's ids {list(info.native_ids)} nor 0-based indices; pass "
                    "--class-map FILE or --class-map offset:K"
                ),
            )
        decisions.append(decision)
    else:
        unknown = file_ids - mapping.label_of.keys()
        if unknown:
            bad = min(unknown)
            i = int(np.flatnonzero(categories == bad)[0])
            raise _entry_error(
                path,
                kind,
                entries,
                i,
                records,
                info,
                set(mapping.label_of),
                (f"category_id {bad} is not in the class map ({mapping.description})"),
            )
        decisions.append(f"class ids: {mapping.description}")
    lut_keys = np.array(sorted(mapping.label_of), dtype=np.int64)
    lut_vals = np.array(
        [-1 if mapping.label_of[k] is None else mapping.label_of[k] for k in lut_keys],
        dtype=np.int64,
    )
    labels = lut_vals[np.searchsorted(lut_keys, categories)]
    keep = labels >= 0
    dropped = int((~keep).sum())
    if dropped:
        decisions.append(f"dropped {dropped} detections of classes mapped to null")
    predictions = _group(rows[keep], boxes[keep], scores[keep], labels[keep], records)
    with_dets = sum(1 for p in predictions.values() if len(p["scores"]))
    decisions.append(f"{int(keep.sum())} detections on {with_dets} of {len(records)} images")
    native = {n: label for label, n in enumerate(info.native_ids)}
    canonical = (
        ssabnet_ids
        and not dropped
        and all(mapping.label_of.get(c) == native.get(c) for c in file_ids)
    )
    return LoadedPredictions(
        predictions, chosen, path, tuple(decisions), int(keep.sum()), dropped, with_dets, canonical
    )


def _entry_error(
    path: Path, kind: str, entries, index: int, records, info, known: set[int], why: str
) -> InputFileError:
    """The error for detection ``index``: its JSON entry, or its txt ``file:line``."""
    if kind == "json":
        return _bad_entry(str(path), index, entries[index], why)
    # txt: read again, refusing unknown categories, to find the first bad line's file:line
    try:
        read_visdrone_results(path, info, records, category_to_label=dict.fromkeys(known, 0))
    except InputFileError as exc:
        where = str(exc).split(": object_category", 1)[0]
        return InputFileError(f"{where}: {why}")
    return InputFileError(f"{path}: {why}")


def _group(rows, boxes, scores, labels, records) -> Predictions:
    """Per-record arrays (``boxes`` xyxy), the file's order kept inside an image."""
    order = np.argsort(rows, kind="stable")
    rows, boxes, scores, labels = rows[order], boxes[order], scores[order], labels[order]
    bounds = np.searchsorted(rows, np.arange(len(records) + 1))
    out: Predictions = {}
    for i, record in enumerate(records):
        lo, hi = bounds[i], bounds[i + 1]
        out[record.image_id] = {
            "boxes": boxes[lo:hi],
            "scores": scores[lo:hi],
            "labels": labels[lo:hi],
        }
    return out


__all__ = [
    "PRED_FORMATS",
    "ClassMap",
    "LoadedPredictions",
    "detect_format",
    "load_predictions",
    "parse_class_map",
]
