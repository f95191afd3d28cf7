"""Loading a dataset that may only read inside allowed folders (the app's rule).

The app reads datasets named by a user (``--data``) or by a run's ``config.yaml``; a run folder
can come from anyone. :func:`load_dataset_confined` loads such a dataset only if everything it
would read lies inside the allowed roots:

* a catalog *name* (``data_catalog/``, chosen by whoever installed SSABNet) is trusted;
* a folder, COCO file or card *path* must resolve inside a root (``..`` refused, symlinks
  followed before the check, :func:`ssabnet.paths.resolve_under`);
* a card found by path (e.g. placed in a run folder) must have its ``root`` inside a root;
* no file or folder in the dataset tree may be a symlink leading outside the roots (a linked
  ``annotations/a.txt -> /etc/passwd`` is refused before anything is read, so no error
  message can quote such a file);
* every image a record points to (COCO ``file_name`` under a recorded ``dataset_root``) must
  lie inside a root.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ssabnet.data.catalog import find_card, list_cards
from ssabnet.data.dataset import DetectionDataset, load_dataset
from ssabnet.paths import UnsafePathError, resolve_under


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def check_tree_confined(top: Path, roots: Sequence[Path]) -> None:
    """Raise :class:`UnsafePathError` if ``top`` or any entry below it resolves outside
    ``roots`` (links are checked, not followed into)."""
    roots = [Path(r).resolve() for r in roots]
    if not _inside(top.resolve(), roots):
        raise UnsafePathError(f"{top} is outside the allowed folder(s)")
    if not top.is_dir():
        return
    for folder, dirs, files in os.walk(top, followlinks=False):
        for name in [*dirs, *files]:
            entry = Path(folder) / name
            if entry.is_symlink() and not _inside(entry.resolve(), roots):
                raise UnsafePathError(
                    f"{entry} is a link to a location outside the allowed folder(s); not read"
                )


def load_dataset_confined(
    spec: str | Path, roots: Sequence[str | Path], *, skip_invalid: bool = False
) -> DetectionDataset:
    """:func:`~ssabnet.data.dataset.load_dataset` restricted to files inside ``roots``.

    Raises:
        UnsafePathError: the spec, a card's root, a linked file or an image lies outside
            ``roots`` (nothing outside is read).
    """
    resolved_roots = [Path(r).expanduser().resolve() for r in roots]
    if isinstance(spec, str) and spec in list_cards():
        return load_dataset(spec, skip_invalid=skip_invalid)  # the installed catalog: trusted
    path = resolve_under(spec, resolved_roots)
    card = find_card(path) if path.suffix in (".yaml", ".yml") and path.is_file() else None
    if card is not None:
        if card.generate is not None:
            raise UnsafePathError(f"{path}: a synthetic card found by path is not generated here")
        check_tree_confined(resolve_under(card.root, resolved_roots), resolved_roots)
    else:
        check_tree_confined(path.parent if path.is_file() else path, resolved_roots)
    dataset = load_dataset(path, skip_invalid=skip_invalid)
    for record in dataset.records:
        if not _inside(Path(record.image_path).resolve(), resolved_roots):
            raise UnsafePathError(
                f"{spec}: image of {record.image_id!r} lies outside the allowed folder(s)"
            )
    return dataset
