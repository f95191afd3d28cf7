"""The data catalog: YAML dataset cards and path expansion (it reads cards and nothing else).

A card (``data_catalog/<name>.yaml``) describes one dataset split::

    name: visdrone-det-val
    format: visdrone                 # visdrone | uavdt | coco
    root: ${SSABNET_DATA:-data}/VisDrone2019-DET-val
    classes: [pedestrian, people, ...]
    homepage: https://github.com/VisDrone/VisDrone-Dataset
    url: null                        # direct archive URL for `ssabnet data fetch`, if one exists
    sha256: null                     # of the archive; fetch refuses an unverified download
    archive_subdir: VisDrone2019-DET-val   # folder inside the archive that becomes `root`
    license: ...
    citation: ...
    generate: {num_images: 64, seed: 1, size: [640, 480]}   # synthetic cards only
    sequences: [M0101, ...]          # UAVDT cards: which sequences form the split

``root`` expansion: ``${VAR}`` and ``${VAR:-default}`` (defaults may nest), ``~``; a relative
result is taken relative to the folder that holds the card's ``data_catalog/`` folder. For the
cards shipped inside the package (``ssabnet/data_catalog/``, package data) that base is the
source checkout when ssabnet runs from one, so ``data/...`` means ``<repo>/data/...``
(git-ignored) whatever the working directory, and the working directory for an installed
(non-editable) package.

Cards are searched in ``$SSABNET_CATALOG`` (``os.pathsep``-separated folders), then
``./data_catalog``, then the cards shipped with the package.

Synthetic cards (``generate:``) are generated on first use by
:func:`ssabnet.data.synthetic.ensure_generated`; ``ssabnet data fetch`` downloads a card's
archive (:mod:`ssabnet.data.fetch`); format detection and reading are
:mod:`ssabnet.data.dataset`'s.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from ssabnet.errors import InputFileError, MissingInputError

FORMATS = ("visdrone", "uavdt", "coco")
#: The cards shipped with the package (package data, found through importlib.resources).
PACKAGED_CATALOG = Path(str(resources.files("ssabnet") / "data_catalog"))
_CHECKOUT_ROOT = Path(__file__).resolve().parents[2]


def packaged_cards_base() -> Path:
    """Base of relative roots in the packaged cards: the source checkout, else the cwd."""
    if (_CHECKOUT_ROOT / "pyproject.toml").is_file() and (_CHECKOUT_ROOT / ".git").exists():
        return _CHECKOUT_ROOT
    return Path.cwd()


@dataclass(frozen=True)
class SyntheticSpec:
    """How a synthetic card's data is generated (``generate:`` in the card)."""

    num_images: int
    seed: int
    size: tuple[int, int] = (640, 480)


@dataclass(frozen=True)
class DatasetCard:
    """One dataset split as described by its YAML card (``root`` already expanded)."""

    name: str
    path: Path
    format: str
    root: Path
    classes: tuple[str, ...]
    description: str = ""
    homepage: str | None = None
    url: str | None = None
    sha256: str | None = None
    archive_subdir: str | None = None
    license: str = ""
    citation: str = ""
    notes: str = ""
    sequences: tuple[str, ...] | None = None
    generate: SyntheticSpec | None = None


_CARD_KEYS = {
    "name",
    "format",
    "root",
    "classes",
    "description",
    "homepage",
    "url",
    "sha256",
    "archive_subdir",
    "license",
    "citation",
    "notes",
    "sequences",
    "generate",
}


def expand_vars(text: str, environ: dict[str, str] | None = None) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}`` (nested defaults allowed) and a leading ``~``.

    An unset ``${VAR}`` without default raises ``ValueError`` naming the variable.
    """
    env = os.environ if environ is None else environ
    out, i = [], 0
    while i < len(text):
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= text[j] == "}"
                j += 1
            if depth:
                raise InputFileError(f"unbalanced '${{' in {text!r}")
            body = text[i + 2 : j - 1]
            name, sep, default = body.partition(":-")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise InputFileError(f"bad variable name {name!r} in {text!r}")
            value = env.get(name) or None
            if value is None:
                if not sep:
                    raise InputFileError(
                        f"environment variable {name} is not set (needed by {text!r})"
                    )
                value = expand_vars(default, env)
            out.append(value)
            i = j
        else:
            out.append(text[i])
            i += 1
    return os.path.expanduser("".join(out))


def catalog_dirs() -> list[Path]:
    """Folders searched for cards, in order (existing ones only, no duplicates)."""
    candidates = [Path(p) for p in os.environ.get("SSABNET_CATALOG", "").split(os.pathsep) if p]
    candidates += [Path.cwd() / "data_catalog", PACKAGED_CATALOG]
    seen, dirs = set(), []
    for folder in candidates:
        key = folder.resolve()
        if folder.is_dir() and key not in seen:
            seen.add(key)
            dirs.append(folder)
    return dirs


def list_cards() -> dict[str, Path]:
    """``{card name: yaml path}`` of every card found (first folder wins on a clash)."""
    cards: dict[str, Path] = {}
    for folder in catalog_dirs():
        for path in sorted(folder.glob("*.yaml")):
            cards.setdefault(path.stem, path)
    return cards


def load_card(path: str | Path) -> DatasetCard:
    """Read and validate one card; unknown keys and a missing ``format``/``root`` are errors."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputFileError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: a dataset card must be a YAML mapping")
    unknown = set(data) - _CARD_KEYS
    if unknown:
        raise InputFileError(f"{path}: unknown card keys {sorted(unknown)}")
    for key in ("format", "root"):
        if not data.get(key):
            raise InputFileError(f"{path}: card needs a {key!r}")
    if data["format"] not in FORMATS:
        raise InputFileError(f"{path}: format must be one of {FORMATS}, got {data['format']!r}")
    folder = path.resolve().parent
    project_root = packaged_cards_base() if folder == PACKAGED_CATALOG.resolve() else folder.parent
    root = Path(expand_vars(str(data["root"])))
    if not root.is_absolute():
        root = project_root / root
    generate = None
    if data.get("generate") is not None:
        spec = dict(data["generate"])
        try:
            generate = SyntheticSpec(
                num_images=int(spec.pop("num_images")),
                seed=int(spec.pop("seed")),
                size=tuple(int(v) for v in spec.pop("size", (640, 480))),
            )
        except KeyError as exc:
            raise InputFileError(f"{path}: generate needs {exc.args[0]!r}") from None
        if spec:
            raise InputFileError(f"{path}: unknown generate keys {sorted(spec)}")
    sequences = data.get("sequences")
    return DatasetCard(
        name=str(data.get("name") or path.stem),
        path=path,
        format=data["format"],
        root=Path(os.path.normpath(root)),
        classes=tuple(data.get("classes") or ()),
        description=str(data.get("description") or ""),
        homepage=data.get("homepage"),
        url=data.get("url"),
        sha256=(str(data["sha256"]).lower() if data.get("sha256") else None),
        archive_subdir=data.get("archive_subdir"),
        license=str(data.get("license") or ""),
        citation=str(data.get("citation") or ""),
        notes=str(data.get("notes") or ""),
        sequences=tuple(str(s) for s in sequences) if sequences else None,
        generate=generate,
    )


def find_card(spec: str | Path) -> DatasetCard | None:
    """The card ``spec`` names, ``None`` if ``spec`` is an existing dataset path.

    ``spec``: a catalog name, a ``.yaml``/``.yml`` card path, or a dataset folder/JSON file.

    Raises:
        FileNotFoundError: ``spec`` is neither a known name nor an existing path.
    """
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return load_card(path)
    if path.exists():
        return None
    cards = list_cards()
    if str(spec) in cards:
        return load_card(cards[str(spec)])
    known = ", ".join(sorted(cards)) or "(no data_catalog/ found)"
    raise MissingInputError(
        f"dataset {str(spec)!r} is neither an existing path nor a catalog name (known: {known})"
    )
