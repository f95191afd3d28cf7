"""Split a VisDrone-format dataset into train/val **by sequence** (``ssabnet data split``).

VisDrone-DET frames of one video share the first field of their name
(``0000001_02999_d_0000005`` belongs to sequence ``0000001``) and are often near-duplicates: a
random per-image split lets the same scene sit on both sides and overstates validation AP. This
module assigns whole sequences to one side. The output folders hold **symbolic links** to the
source images and annotation files (nothing is copied) and ``split.json`` records the sequences
of each side, so the split is reproducible and auditable.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ssabnet.atomic_io import write_json_atomic
from ssabnet.data.dataset import load_dataset
from ssabnet.errors import InputFileError, MissingInputError, UsageError

SPLIT_FILE = "split.json"


def sequence_of(image_id: str) -> str:
    """The sequence an image belongs to: UAVDT ``"M0101/img000001"`` -> ``"M0101"``,
    VisDrone ``"0000001_02999_d_0000005"`` -> ``"0000001"`` (a name without ``_`` is its own
    sequence)."""
    if "/" in image_id:
        return image_id.split("/", 1)[0]
    return image_id.split("_", 1)[0]


def choose_val_sequences(counts: dict[str, int], val_fraction: float, seed: int) -> list[str]:
    """Sequences for the val side: a seeded shuffle, taken until they hold ``val_fraction`` of
    the images (at least one sequence on each side)."""
    if not 0 < val_fraction < 1:
        raise UsageError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if len(counts) < 2:
        raise InputFileError(
            f"cannot split by sequence: only {len(counts)} sequence(s) ({sorted(counts)})"
        )
    order = sorted(counts)
    np.random.default_rng(seed).shuffle(order)
    target, total, chosen = val_fraction * sum(counts.values()), 0, []
    for sequence in order[:-1]:  # the last one always stays in train
        if total >= target:
            break
        chosen.append(sequence)
        total += counts[sequence]
    return sorted(chosen)


def split_by_sequence(
    spec: str | Path, out: str | Path, val_fraction: float = 0.25, seed: int = 0
) -> dict:
    """Write ``out/train`` and ``out/val`` (VisDrone layout, symlinks) + ``out/split.json``.

    Args:
        spec: a VisDrone-format dataset (catalog name or folder with images/ + annotations/).
        out: output folder; existing ``train``/``val`` link folders in it are replaced.
        val_fraction: share of the images (not sequences) wanted on the val side.
        seed: seed of the sequence shuffle.

    Returns:
        what ``split.json`` holds: source, seed, fraction, sequences and image counts per side.
    """
    dataset = load_dataset(spec)
    if dataset.info.format != "visdrone":
        raise UsageError(
            f"{spec}: split by sequence writes VisDrone folders; this dataset is "
            f"{dataset.info.format!r} (UAVDT splits are lists of sequences in a catalog card)"
        )
    if dataset.root is None:
        raise UsageError(f"{spec}: the dataset has no folder to link to")
    source = Path(dataset.root).resolve()
    counts: dict[str, int] = {}
    for record in dataset.records:
        counts[sequence_of(record.image_id)] = counts.get(sequence_of(record.image_id), 0) + 1
    val_sequences = set(choose_val_sequences(counts, val_fraction, seed))
    out = Path(out)
    summary: dict = {
        "source": str(source),
        "seed": seed,
        "val_fraction": val_fraction,
        "splits": {},
    }
    for split in ("train", "val"):
        folder = out / split
        for sub in ("images", "annotations"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            for stale in (folder / sub).iterdir():  # a previous split's links
                if stale.is_symlink():
                    stale.unlink()
        records = [
            r
            for r in dataset.records
            if (sequence_of(r.image_id) in val_sequences) == (split == "val")
        ]
        for record in records:
            image = Path(record.image_path).resolve()
            annotation = source / "annotations" / f"{record.image_id}.txt"
            if not annotation.is_file():
                raise MissingInputError(f"{annotation}: annotation of {image.name} not found")
            os.symlink(image, folder / "images" / image.name)
            os.symlink(annotation, folder / "annotations" / annotation.name)
        summary["splits"][split] = {
            "images": len(records),
            "objects": int(sum(int(r.evaluated.sum()) for r in records)),
            "sequences": {s: counts[s] for s in sorted({sequence_of(r.image_id) for r in records})},
        }
    write_json_atomic(out / SPLIT_FILE, summary)
    return summary


__all__ = ["choose_val_sequences", "sequence_of", "split_by_sequence"]
