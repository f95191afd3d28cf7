"""A loaded dataset (:class:`DetectionDataset`) and the one entry point :func:`load_dataset`.

``load_dataset`` accepts what every command accepts: a catalog name (``data_catalog/<name>.yaml``),
the path of a catalog YAML, or a dataset folder whose format (VisDrone, UAVDT, COCO) is detected
(or forced with ``format=``). Readers live one per format (``visdrone.py``, ``uavdt.py``,
``coco.py``); they all return a :class:`DetectionDataset` of :class:`ImageRecord`.

Bad input: by default the first malformed line or unreadable image raises
:class:`~ssabnet.data.record.AnnotationError` naming ``file:line``. With ``skip_invalid=True`` the
line (or the whole image, when the image or its annotation file is the problem) is skipped,
counted in ``DetectionDataset.num_skipped`` and described in ``DetectionDataset.skipped``, and
one warning summarises the counts.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ssabnet.data.record import AnnotationError, DatasetInfo, ImageRecord
from ssabnet.errors import ConfigError, MissingInputError


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


#: Folder formats ``load_dataset`` can read.
FORMATS: tuple[str, ...] = ("visdrone", "uavdt", "coco")


def read_dataset_folder(
    root: str | Path,
    format: str = "auto",
    *,
    skip_invalid: bool = False,
    verify: bool = False,
    name: str | None = None,
    sequences: tuple[str, ...] | None = None,
) -> DetectionDataset:
    """Read a dataset folder (or a COCO JSON file) of a known or detected format."""
    from ssabnet.data import catalog

    root = Path(root)
    if not root.exists():
        raise MissingInputError(f"dataset path not found: {root}")
    fmt = catalog.detect_format(root) if format == "auto" else format
    if fmt == "visdrone":
        from ssabnet.data.visdrone import read_visdrone

        return read_visdrone(root, skip_invalid=skip_invalid, verify=verify, name=name)
    if fmt == "uavdt":
        from ssabnet.data.uavdt import read_uavdt

        return read_uavdt(
            root, skip_invalid=skip_invalid, verify=verify, name=name, sequences=sequences
        )
    if fmt == "coco":
        from ssabnet.data.coco import read_coco

        return read_coco(root, skip_invalid=skip_invalid, verify=verify, name=name)
    raise ConfigError(f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")


def load_dataset(
    spec: str | Path,
    format: str = "auto",
    skip_invalid: bool = False,
    *,
    verify: bool = False,
) -> DetectionDataset:
    """Load a dataset from a catalog name, a catalog YAML path or a dataset folder.

    Args:
        spec: ``"visdrone-sample"`` (a card in ``data_catalog/``), ``"cards/x.yaml"``, or a
            folder (VisDrone ``images/`` + ``annotations/``; UAVDT ``UAV-benchmark-M/`` + ``GT/``;
            COCO: a ``.json`` file or a folder holding exactly one).
        format: ``"auto"`` (detect), ``"visdrone"``, ``"uavdt"`` or ``"coco"``.
        skip_invalid: skip and count invalid lines/images instead of raising.
        verify: fully decode every image (slow; finds corrupt files).

    Synthetic catalog datasets (``syndrone-demo-*``) are generated on first use when their folder
    does not exist (see :func:`ssabnet.data.catalog.ensure_generated`).

    Raises:
        AnnotationError: invalid annotation or image (``file:line`` in the message).
        FileNotFoundError: the spec is neither a known catalog name nor an existing path.
    """
    from ssabnet.data import catalog

    card = catalog.find_card(spec)
    if card is None:
        return read_dataset_folder(spec, format, skip_invalid=skip_invalid, verify=verify)
    if card.generate is not None:
        catalog.ensure_generated(card)
    if not card.root.exists():
        raise MissingInputError(
            f"dataset {card.name!r} not found at {card.root} (card {card.path}); "
            + (
                f"download it with `ssabnet data fetch {card.name}` or set SSABNET_DATA"
                if card.url
                else f"get it from {card.homepage} and put it there, or set SSABNET_DATA"
            )
        )
    fmt = card.format if format == "auto" else format
    return read_dataset_folder(
        card.root,
        fmt,
        skip_invalid=skip_invalid,
        verify=verify,
        name=card.name,
        sequences=card.sequences,
    )
