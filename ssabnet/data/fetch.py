"""``ssabnet data fetch``: download a catalog card's archive, verify it, extract it atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from ssabnet.data.catalog import find_card
from ssabnet.data.images import make_default_permissions
from ssabnet.errors import InputFileError, OutputPathError, UsageError


def _safe_members(names: list[str], archive: Path) -> None:
    for name in names:
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts:
            raise InputFileError(f"{archive}: unsafe path {name!r} in archive; nothing extracted")


def extract_archive(archive: Path, dest: Path) -> None:
    """Extract a ``.zip`` or tar archive into ``dest`` (refuses absolute/``..`` member paths)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            _safe_members(zf.namelist(), archive)
            zf.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            _safe_members([m.name for m in members], archive)
            if any(m.issym() or m.islnk() or m.isdev() for m in members):
                raise InputFileError(f"{archive}: links/devices in archive; nothing extracted")
            tf.extractall(dest, filter="data")
    else:
        raise InputFileError(f"{archive}: not a zip or tar archive")


def fetch(
    name: str | Path,
    root: str | Path | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    allow_unverified: bool = False,
    force: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download a card's archive, verify its sha256 and extract it atomically into ``root``.

    Steps: download into a temporary file beside the target (hashing while reading); compare
    with the card's (or the given) ``sha256``; extract into a temporary folder beside the
    target; rename the dataset folder into place. On any failure the temporaries are deleted and
    the target is untouched, so there is never a half-extracted dataset.

    Args:
        name: catalog name or card path.
        root: target folder (default: the card's ``root``).
        url, sha256: override the card's values.
        allow_unverified: accept a download when no checksum is known (prints its sha256).
        force: replace an existing target folder.

    Returns:
        The dataset folder.

    Raises:
        ValueError: no URL, checksum mismatch or missing checksum, bad archive.
    """
    card = find_card(name)
    if card is None:
        raise UsageError(f"{name!r} is a path, not a catalog name; fetch needs a catalog card")
    target = Path(root) if root is not None else card.root
    url = url or card.url
    expected = (sha256 or card.sha256 or "").lower() or None
    if not url:
        where = f" from {card.homepage}" if card.homepage else ""
        raise UsageError(
            f"no download URL is known for {card.name!r}; download it{where} and extract it to "
            f"{target} (or pass --url)"
        )
    if (target.exists() or target.is_symlink()) and not target.is_dir():
        raise OutputPathError(
            f"{target} is a file, not a dataset folder; it is left as it is (--force replaces "
            "only a folder). Remove it or choose another --root"
        )
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.download-", dir=target.parent)
    download = Path(tmp_name)
    staging: Path | None = None
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while block := response.read(1 << 20):
                digest.update(block)
                out.write(block)
        got = digest.hexdigest()
        if expected is None and not allow_unverified:
            raise InputFileError(
                f"no sha256 is known for {card.name!r}; the download's sha256 is {got}. "
                "Check it and pass --sha256 (or --allow-unverified); nothing was extracted"
            )
        if expected is not None and got != expected:
            raise InputFileError(
                f"checksum mismatch for {url}: expected sha256 {expected}, got {got}; "
                "the download was deleted and nothing was extracted"
            )
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        extract_archive(download, staging)
        content = staging
        if card.archive_subdir:
            content = staging / card.archive_subdir
            if not content.is_dir():
                raise InputFileError(f"archive has no folder {card.archive_subdir!r}")
        else:
            entries = [p for p in staging.iterdir() if not p.name.startswith("__MACOSX")]
            if len(entries) == 1 and entries[0].is_dir():
                content = entries[0]
        make_default_permissions(content)  # mkdtemp creates 0o700
        if target.exists():
            shutil.rmtree(target)
        os.replace(content, target)
    finally:
        download.unlink(missing_ok=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return target
