"""The types of the data package: the in-memory :class:`ImageRecord` every dataset reader
produces and every consumer reads, the :class:`DetectionDataset` a reader returns and the
:class:`SkipLog` readers share.

One :class:`ImageRecord` per image, whatever the on-disk format (VisDrone, UAVDT, COCO,
synthetic). Boxes are ``float32 xyxy`` in original image pixels. Nothing a format carries is
dropped: objects that are not trained/evaluated stay in the record with ``ignore=True`` and
ignored *regions* (VisDrone class 0, UAVDT ``gt_ignore``) are kept apart in ``ignore_regions``.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ssabnet.errors import InputFileError


class AnnotationError(InputFileError):
    """A dataset file is malformed; the message names the file (and line, 1-based)."""

    def __init__(self, path: str | Path, message: str | None = None, line: int | None = None):
        if message is None:
            # Rebuilt from text alone: torch re-raises a DataLoader worker's exception as
            # ``type(exc)(formatted traceback)``; keep its last line so the error stays one line.
            text = str(path).strip().splitlines()[-1] if str(path).strip() else ""
            prefix = f"{type(self).__module__}.{type(self).__name__}: "
            text = text[len(prefix) :] if text.startswith(prefix) else text
            self.path, self.line = text.partition(":")[0], None
            super().__init__(text)
            return
        self.path = str(path)
        self.line = line
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")


#: Annotation integers must fit int64 (they are stored in int64 arrays).
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_int_field(text: str) -> int:
    """Parse one annotation field as a plain integer: optional sign and ASCII digits only.

    Python's ``int`` also accepts ``"9_9"`` (99) and non-ASCII digits (``"\u0663"`` -> 3);
    annotation files never mean those, so they are refused, as are values outside int64.

    Raises:
        ValueError: ``"is not an integer"`` or ``"is out of range (int64)"`` (callers add the
            file, line and field).
    """
    value = text.strip()
    digits = value[1:] if value[:1] in "+-" else value
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError("is not an integer")
    number = int(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise ValueError("is out of range (int64)")
    return number


def field_excerpt(text: str, limit: int = 30) -> str:
    """A short, escaped excerpt of an annotation field for an error message."""
    text = text.strip()
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


#: How far (px) an annotated box may reach outside its image before it is an error. Real
#: VisDrone/UAVDT boxes all lie inside; one pixel absorbs off-by-one conventions of annotators.
BOUNDS_TOLERANCE_PX = 1.0


def check_box_inside(
    path: str | Path,
    line: int,
    xywh: tuple[int, int, int, int],
    width: int | None,
    height: int | None,
    what: str = "image",
) -> None:
    """Raise :class:`AnnotationError` if an ``xywh`` pixel box leaves the ``width x height`` frame
    by more than :data:`BOUNDS_TOLERANCE_PX`. Unknown sizes (``None``) skip the check."""
    if width is None or height is None:
        return
    left, top, w, h = xywh
    tol = BOUNDS_TOLERANCE_PX
    if left < -tol or top < -tol or left + w > width + tol or top + h > height + tol:
        raise AnnotationError(
            path,
            f"box [{left}, {top}, {left + w}, {top + h}] (xyxy) lies outside the "
            f"{width}x{height} {what}",
            line,
        )


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: its name, format and the trainable/evaluated class names.

    ``classes[i]`` is the name of label ``i``; labels are contiguous ``0..num_classes-1``.
    ``native_ids[i]`` is the id the on-disk format uses for class ``i`` (VisDrone: 1..10).
    """

    name: str
    format: str
    classes: tuple[str, ...]
    native_ids: tuple[int, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class ImageRecord:
    """One image and its annotations.

    Attributes:
        image_id: stable string key, unique within a dataset (VisDrone: file stem;
            UAVDT: ``"<sequence>/img000123"`` because frame names repeat across sequences).
        image_path: path of the image file.
        width, height: image size in pixels.
        boxes: ``float32[N, 4]`` xyxy pixels of every annotated object (ignored ones included).
        labels: ``int64[N]`` contiguous class index into ``DatasetInfo.classes``; ``-1`` for an
            object of no trainable class (VisDrone "others", class 11).
        ignore: ``bool[N]``; True for objects that neither help nor hurt in evaluation and are
            not trained as positives (VisDrone ``score == 0``, class "others").
        truncation, occlusion: ``int64[N]`` as the format defines them; ``-1`` where unknown.
        ignore_regions: ``float32[K, 4]`` xyxy pixels of ignored areas.
        native: format-specific extras needed for an exact round trip (e.g. VisDrone raw
            category and score per object, UAVDT track ids), keyed by field name.
    """

    image_id: str
    image_path: Path
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0,), bool))
    truncation: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    occlusion: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    ignore_regions: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    native: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.image_path = Path(self.image_path)
        n = len(self.boxes)
        for name in ("labels", "ignore", "truncation", "occlusion"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"{self.image_id}: {name} has {len(getattr(self, name))} rows, boxes {n}"
                )

    @property
    def num_objects(self) -> int:
        return len(self.boxes)

    @property
    def evaluated(self) -> np.ndarray:
        """``bool[N]``: objects that count in training and evaluation."""
        return (~self.ignore) & (self.labels >= 0)


@dataclass
class DetectionDataset:
    """Records of one dataset split, all boxes ``float32 xyxy`` in original image pixels.

    Attributes:
        info: name, format and classes (``info.classes[label]``).
        records: one :class:`ImageRecord` per image, sorted by ``image_id``.
        root: the folder (or annotation file's folder) the dataset was read from.
        num_skipped: invalid annotation lines plus invalid images skipped (``skip_invalid``).
        skipped: one ``"file:line: reason"`` message per skipped item.
    """

    info: DatasetInfo
    records: list[ImageRecord]
    root: Path
    num_skipped: int = 0
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)

    def __getitem__(self, index: int) -> ImageRecord:
        return self.records[index]

    def by_id(self) -> dict[str, ImageRecord]:
        """``{image_id: record}``."""
        return {r.image_id: r for r in self.records}


class SkipLog:
    """Raise on bad input, or (``skip_invalid=True``) count it and warn once at the end.

    ``kind`` groups the counts in the summary, e.g. ``"line"`` or ``"image"``.
    """

    def __init__(self, skip_invalid: bool):
        self.skip_invalid = skip_invalid
        self.messages: list[str] = []
        self.kinds: Counter[str] = Counter()

    def report(self, error: AnnotationError, kind: str) -> None:
        if not self.skip_invalid:
            raise error
        self.messages.append(str(error))
        self.kinds[kind] += 1

    @property
    def count(self) -> int:
        return len(self.messages)

    def warn_summary(self, source: str | Path, stacklevel: int = 3) -> None:
        if not self.messages:
            return
        counts = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in self.kinds.items())
        warnings.warn(
            f"{source}: skipped {counts} with invalid input (skip_invalid=True); "
            f"first: {self.messages[0]}",
            stacklevel=stacklevel,
        )

    def finish(
        self, info: DatasetInfo, records: list[ImageRecord], root: Path, source: str | Path
    ) -> DetectionDataset:
        """End of a reader: warn once about what was skipped and build the (sorted) dataset."""
        self.warn_summary(source, stacklevel=4)
        return DetectionDataset(
            info=info,
            records=sorted(records, key=lambda r: r.image_id),
            root=root,
            num_skipped=self.count,
            skipped=list(self.messages),
        )
