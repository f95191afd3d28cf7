"""The one entry point :func:`load_dataset` and the dispatch from a format to its reader.

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

from pathlib import Path

from ssabnet.data.catalog import FORMATS, find_card
from ssabnet.data.coco import read_coco
from ssabnet.data.record import DetectionDataset
from ssabnet.data.synthetic import ensure_generated
from ssabnet.data.uavdt import read_uavdt
from ssabnet.data.visdrone import read_visdrone
from ssabnet.errors import ConfigError, InputFileError, MissingInputError


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
    root = Path(root)
    if not root.exists():
        raise MissingInputError(f"dataset path not found: {root}")
    fmt = detect_format(root) if format == "auto" else format
    if fmt == "visdrone":
        return read_visdrone(root, skip_invalid=skip_invalid, verify=verify, name=name)
    if fmt == "uavdt":
        return read_uavdt(
            root, skip_invalid=skip_invalid, verify=verify, name=name, sequences=sequences
        )
    if fmt == "coco":
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
    does not exist (see :func:`ssabnet.data.synthetic.ensure_generated`).

    Raises:
        AnnotationError: invalid annotation or image (``file:line`` in the message).
        FileNotFoundError: the spec is neither a known catalog name nor an existing path.
    """
    card = find_card(spec)
    if card is None:
        return read_dataset_folder(spec, format, skip_invalid=skip_invalid, verify=verify)
    if card.generate is not None:
        ensure_generated(card)
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


def detect_format(root: str | Path) -> str:
    """Format of a dataset folder or file: ``"visdrone"``, ``"uavdt"`` or ``"coco"``.

    * ``*.json`` file, or a folder with exactly one ``*.json`` (or ``annotations/*.json``): coco;
    * ``annotations/*.txt`` (normally beside ``images/``): visdrone;
    * ``UAV-benchmark-M/`` or a ``GT/`` folder with ``*_gt_whole.txt`` (possibly under
      ``UAV-benchmark-MOTD_v1.0/``): uavdt.
    """
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() == ".json":
            return "coco"
        raise InputFileError(f"cannot tell the dataset format of file {root} (expected a .json)")
    if (root / "annotations").is_dir():
        if any((root / "annotations").glob("*.txt")):
            return "visdrone"  # images/ may be absent: annotation-only (VisDrone-val GT)
        if len(list((root / "annotations").glob("*.json"))) == 1:
            return "coco"
    if (root / "UAV-benchmark-M").is_dir() or any(root.glob("*/GT/*_gt_whole.txt")):
        return "uavdt"
    if any(root.glob("GT/*_gt_whole.txt")):
        return "uavdt"
    if len(list(root.glob("*.json"))) == 1:
        return "coco"
    raise InputFileError(
        f"cannot tell the dataset format of {root}: expected VisDrone (images/ + "
        "annotations/*.txt), UAVDT (UAV-benchmark-M/ + GT/*_gt_whole.txt) or COCO (one .json); "
        "pass --format"
    )
