"""UAVDT (UAV-benchmark-M frames + UAV-benchmark-MOTD ground truth) reader.

On disk (official layout; ``root`` holds both folders)::

    <root>/UAV-benchmark-M/<seq>/img000001.jpg ...          frames, 1024x540
    <root>/UAV-benchmark-MOTD_v1.0/GT/<seq>_gt_whole.txt      (or <root>/GT/...)
        frame_index,target_id,bbox_left,bbox_top,bbox_width,bbox_height,out-of-view,occlusion,
        object_category   (1 car, 2 truck, 3 bus)
    <root>/UAV-benchmark-MOTD_v1.0/GT/<seq>_gt_ignore.txt
        same 9 columns; each row is an ignored region of that frame (last two fields -1)

One :class:`~ssabnet.data.record.ImageRecord` per frame image on disk, ``image_id =
"<seq>/img000001"`` (frame names repeat across sequences). ``labels = category - 1``,
``ignore`` all False, ``truncation`` = the raw ``out-of-view`` code and ``occlusion`` = the raw
``occlusion`` code (UAVDT's own 1-based codes, kept as they are), ignore-file rows ->
``ignore_regions``. ``native`` keeps ``target_id`` and ``line`` (0-based line in
``_gt_whole.txt``) per object, and ``region_target_id``/``region_line`` per region.

The image size is read from the first frame of each sequence (UAVDT frames of a sequence share
one size) and every other frame's header must agree; ``verify=True`` also decodes every frame.
GT rows for frames that have no image file are not loaded (one warning gives the count), so a
partial copy of a sequence can be read. Errors name ``file:line``: wrong field count,
non-integer field, zero/negative size, category not 1..3, frame index < 1, box more than 1 px
outside the frame, missing GT or ignore file, unreadable frame, frame of another size.
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from ssabnet.data.images import list_images, read_image_size, verify_image
from ssabnet.data.record import (
    AnnotationError,
    DatasetInfo,
    DetectionDataset,
    ImageRecord,
    SkipLog,
    check_box_inside,
    field_excerpt,
    parse_int_field,
)
from ssabnet.errors import MissingInputError
from ssabnet.ops.boxes import boxes_xywh_to_xyxy

UAVDT_CLASSES: tuple[str, ...] = ("car", "truck", "bus")
UAVDT_NATIVE_IDS: tuple[int, ...] = (1, 2, 3)
_FRAME_RE = re.compile(r"^img(\d+)$")


def uavdt_info(name: str = "uavdt") -> DatasetInfo:
    """:class:`DatasetInfo` of UAVDT-DET (car, truck, bus; native ids 1..3)."""
    return DatasetInfo(name, "uavdt", UAVDT_CLASSES, UAVDT_NATIVE_IDS)


def find_uavdt_dirs(root: str | Path) -> tuple[Path, Path]:
    """``(frames_dir, gt_dir)`` of a UAVDT root (see the module docstring for the layout)."""
    root = Path(root)
    frames_dir = root / "UAV-benchmark-M" if (root / "UAV-benchmark-M").is_dir() else root
    candidates = [root / "UAV-benchmark-MOTD_v1.0" / "GT", root / "GT"]
    candidates += sorted(p.parent for p in root.glob("*/GT/*_gt_whole.txt"))
    for gt_dir in candidates:
        if gt_dir.is_dir() and any(gt_dir.glob("*_gt_whole.txt")):
            return frames_dir, gt_dir
    raise MissingInputError(
        f"{root} is not a UAVDT folder: no GT/<seq>_gt_whole.txt found "
        "(expected UAV-benchmark-M/<seq>/img*.jpg and UAV-benchmark-MOTD_v1.0/GT/)"
    )


def parse_uavdt_file(
    path: Path, width: int | None, height: int | None, skip_log: SkipLog, *, regions: bool
) -> list[tuple[int, tuple[int, ...]]]:
    """``[(line_index, row)]`` of valid 9-integer rows of a GT or ignore file."""
    try:
        text = path.read_bytes().decode("utf-8-sig")  # tolerate a BOM
    except FileNotFoundError as exc:
        raise AnnotationError(path, "annotation file not found") from exc
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"not a UTF-8 text file ({exc})") from exc
    rows = []
    for index, raw in enumerate(text.splitlines()):
        if not raw.strip():
            continue
        try:
            rows.append((index, _parse_row(raw, path, index + 1, width, height, regions)))
        except AnnotationError as exc:
            skip_log.report(exc, "line")
    return rows


def _parse_row(
    raw: str, path: Path, line: int, width: int | None, height: int | None, regions: bool
) -> tuple[int, ...]:
    fields = raw.strip().split(",")
    if len(fields) != 9:
        raise AnnotationError(
            path,
            "expected 9 comma-separated integers (frame_index,target_id,left,top,width,height,"
            f"out-of-view,occlusion,object_category), got {len(fields)}: " + field_excerpt(raw, 40),
            line,
        )
    values = []
    for i, field in enumerate(fields):
        try:
            values.append(parse_int_field(field))
        except ValueError as exc:
            raise AnnotationError(
                path, f"field {i + 1} ({field_excerpt(field)}) {exc}", line
            ) from None
    row = tuple(values)
    frame, _tid, left, top, w, h, _oov, _occ, category = row
    if frame < 1:
        raise AnnotationError(path, f"frame_index must be >= 1, got {frame}", line)
    if w <= 0 or h <= 0:
        raise AnnotationError(path, f"box has zero or negative size (width {w}, height {h})", line)
    if not regions and category not in UAVDT_NATIVE_IDS:
        raise AnnotationError(path, f"unknown object_category {category} (expected 1..3)", line)
    check_box_inside(path, line, (left, top, w, h), width, height, "frame")
    return row


def read_uavdt(
    root: str | Path,
    *,
    skip_invalid: bool = False,
    verify: bool = False,
    name: str | None = None,
    sequences: tuple[str, ...] | None = None,
) -> DetectionDataset:
    """Read UAVDT frames and GT into a :class:`DetectionDataset`.

    Args:
        root: folder holding ``UAV-benchmark-M/`` and ``UAV-benchmark-MOTD_v1.0/GT/`` (or
            ``GT/``).
        skip_invalid: skip (and count) invalid lines, frames and sequences instead of raising.
        verify: decode every frame and check it has the sequence's size.
        name: dataset name (default: the folder name).
        sequences: only these sequences (e.g. a split); all sequence folders when ``None``.
    """
    root = Path(root)
    frames_dir, gt_dir = find_uavdt_dirs(root)
    available = sorted(p.name for p in frames_dir.iterdir() if p.is_dir() and p.name != "GT")
    if sequences is not None:
        missing = sorted(set(sequences) - set(available))
        if missing:
            raise MissingInputError(f"{frames_dir}: sequence folders missing: {', '.join(missing)}")
        available = [s for s in available if s in set(sequences)]
    skip_log = SkipLog(skip_invalid)
    records: list[ImageRecord] = []
    unmatched = 0
    for seq in available:
        try:
            seq_records, seq_unmatched = _read_sequence(
                seq, frames_dir / seq, gt_dir, skip_log, verify
            )
        except AnnotationError as exc:
            if exc.line is not None:
                raise
            skip_log.report(exc, "sequence")
            continue
        records.extend(seq_records)
        unmatched += seq_unmatched
    if not records and not skip_log.count:
        raise MissingInputError(f"no UAVDT frames found under {frames_dir}")
    if unmatched:
        warnings.warn(
            f"{root}: {unmatched} annotated frames have no image file and were not loaded",
            stacklevel=3,
        )
    return skip_log.finish(uavdt_info(name or root.name), records, root, root)


def _read_sequence(
    seq: str, seq_dir: Path, gt_dir: Path, skip_log: SkipLog, verify: bool
) -> tuple[list[ImageRecord], int]:
    frames: dict[int, Path] = {}
    for image_path in list_images(seq_dir):
        match = _FRAME_RE.match(image_path.stem)
        if not match:
            skip_log.report(
                AnnotationError(image_path, "frame file name must be img<frame number>.jpg"),
                "image",
            )
            continue
        frames[int(match.group(1))] = image_path
    if not frames:
        return [], 0
    gt_path, ignore_path = gt_dir / f"{seq}_gt_whole.txt", gt_dir / f"{seq}_gt_ignore.txt"
    for path in (gt_path, ignore_path):
        if not path.is_file():
            raise AnnotationError(path, f"missing annotation file for sequence {seq}")
    width, height = read_image_size(frames[min(frames)])
    # Every frame's header is read (cheap); ``verify`` also decodes it. A frame of another size
    # would put the sequence's boxes in the wrong place, so it is an error naming the frame.
    for image_path in frames.values():
        size = verify_image(image_path) if verify else read_image_size(image_path)
        if size != (width, height):
            raise AnnotationError(
                image_path,
                f"frame size {size[0]}x{size[1]} differs from {width}x{height}, the size of "
                f"the sequence's first frame {frames[min(frames)].name}",
            )
    objects = defaultdict(list)
    for index, row in parse_uavdt_file(gt_path, width, height, skip_log, regions=False):
        objects[row[0]].append((index, row))
    regions = defaultdict(list)
    for index, row in parse_uavdt_file(ignore_path, width, height, skip_log, regions=True):
        regions[row[0]].append((index, row))
    unmatched = len((set(objects) | set(regions)) - set(frames))
    records = []
    for frame, image_path in sorted(frames.items()):
        obj_lines = np.array([i for i, _ in objects.get(frame, [])], np.int64)
        obj = np.array([r for _, r in objects.get(frame, [])], np.int64).reshape(-1, 9)
        reg_lines = np.array([i for i, _ in regions.get(frame, [])], np.int64)
        reg = np.array([r for _, r in regions.get(frame, [])], np.int64).reshape(-1, 9)
        records.append(
            ImageRecord(
                image_id=f"{seq}/{image_path.stem}",
                image_path=image_path,
                width=width,
                height=height,
                boxes=boxes_xywh_to_xyxy(obj[:, 2:6].astype(np.float32)),
                labels=obj[:, 8] - 1,
                ignore=np.zeros(len(obj), bool),
                truncation=obj[:, 6].copy(),
                occlusion=obj[:, 7].copy(),
                ignore_regions=boxes_xywh_to_xyxy(reg[:, 2:6].astype(np.float32)),
                native={
                    "target_id": obj[:, 1].copy(),
                    "line": obj_lines,
                    "region_target_id": reg[:, 1].copy(),
                    "region_line": reg_lines,
                },
            )
        )
    return records, unmatched
