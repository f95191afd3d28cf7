"""A torch ``Dataset`` over :class:`ImageRecord` s, its collate function and DataLoader builders.

Training samples are letterboxed (or mosaicked) to a square ``imgsz`` and augmented by
:mod:`ssabnet.data.transforms`. The augmentation of sample ``i`` in epoch ``e`` is drawn from
``numpy.random.default_rng([seed, e, i])``: it does not depend on which worker loads it or on
what was loaded before, so a resumed run sees exactly the same batches.

Targets follow the criterion's contract: per image ``{"boxes": Tensor[M, 4] xyxy input px,
"labels": Tensor[M] int64, "ignore_regions": Tensor[K, 4] xyxy input px}`` where the ignore
regions are the record's ignore regions plus the boxes of its ignored objects (VisDrone score-0
objects, "others").
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ssabnet.data.images import read_image_rgb
from ssabnet.data.record import ImageRecord
from ssabnet.data.transforms import (
    AugmentConfig,
    LetterboxParams,
    Targets,
    augment_hsv,
    horizontal_flip,
    letterbox,
    mosaic,
    mosaic_center,
    random_affine,
    vertical_flip,
)
from ssabnet.errors import ConfigError


def record_targets(record: ImageRecord) -> Targets:
    """Targets in original pixels: evaluated objects as boxes, ignored ones as ignore regions."""
    evaluated = record.evaluated
    regions = np.concatenate(
        [record.ignore_regions.reshape(-1, 4), record.boxes[~evaluated].reshape(-1, 4)]
    )
    return Targets(
        boxes=record.boxes[evaluated].astype(np.float32).reshape(-1, 4),
        labels=record.labels[evaluated].astype(np.int64),
        ignore_regions=regions.astype(np.float32),
    )


@dataclass(frozen=True)
class SampleMeta:
    """Where a sample came from: ``image_id`` and how it was letterboxed (None if mosaic)."""

    image_id: str
    letterbox: LetterboxParams | None
    num_dropped: int


class DetectionSamples(Dataset):
    """Letterboxed (and, with ``augment``, augmented) samples of a list of records.

    ``dataset[i]`` returns ``(image uint8 Tensor[3, S, S], targets dict, SampleMeta)``.

    Args:
        records: the images and annotations.
        imgsz: square input side in pixels (multiple of 32).
        augment: augmentation settings, or None for evaluation (letterbox only).
        seed: base seed of the per-sample augmentation RNG.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        imgsz: int,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ):
        if imgsz % 32:
            raise ConfigError(f"imgsz must be a multiple of 32, got {imgsz}")
        self.records = list(records)
        self.imgsz = imgsz
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's augmentation draws (call before creating the epoch's iterator)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def _load(self, index: int) -> tuple[np.ndarray, Targets]:
        record = self.records[index]
        return read_image_rgb(record.image_path), record_targets(record)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], SampleMeta]:
        record = self.records[index]
        image, targets = self._load(index)
        params: LetterboxParams | None = None
        aug = self.augment
        if aug is None:
            image, targets, params = letterbox(image, targets, self.imgsz)
        else:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if len(self.records) >= 2 and rng.random() < aug.mosaic:
                others = rng.integers(0, len(self.records), 3).tolist()
                loaded = [(image, targets)] + [self._load(i) for i in others]
                canvas, targets = mosaic(
                    [x[0] for x in loaded],
                    [x[1] for x in loaded],
                    rng,
                    self.imgsz,
                    aug.min_box_size,
                    aug.min_visible,
                )
                image, targets = random_affine(
                    canvas,
                    targets,
                    rng,
                    self.imgsz,
                    aug.scale,
                    aug.translate,
                    center=mosaic_center(canvas),
                    min_size=aug.min_box_size,
                    min_visible=aug.min_visible,
                )
            else:
                image, targets, params = letterbox(image, targets, self.imgsz)
                image, targets = random_affine(
                    image,
                    targets,
                    rng,
                    self.imgsz,
                    aug.scale,
                    aug.translate,
                    min_size=aug.min_box_size,
                    min_visible=aug.min_visible,
                )
                params = None  # the affine moved the pixels: letterbox params no longer apply
            image = augment_hsv(image, rng, aug.hsv)
            if rng.random() < aug.hflip:
                image, targets = horizontal_flip(image, targets)
            if rng.random() < aug.vflip:
                image, targets = vertical_flip(image, targets)
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        target_dict = {
            "boxes": torch.from_numpy(targets.boxes.reshape(-1, 4).astype(np.float32)),
            "labels": torch.from_numpy(targets.labels.astype(np.int64)),
            "ignore_regions": torch.from_numpy(
                targets.ignore_regions.reshape(-1, 4).astype(np.float32)
            ),
        }
        return tensor, target_dict, SampleMeta(record.image_id, params, targets.num_dropped)


def collate_detection(
    batch: list[tuple[torch.Tensor, dict[str, torch.Tensor], SampleMeta]],
) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]], list[SampleMeta]]:
    """Stack images to ``uint8 Tensor[B, 3, S, S]``; targets and metas stay per-image lists."""
    images = torch.stack([item[0] for item in batch])
    return images, [item[1] for item in batch], [item[2] for item in batch]


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can skip the first batches of an epoch (mid-epoch resume).

    With ``num_replicas=1`` it is also the single-process sampler, so one code path gives the
    same shuffled order (seeded by ``seed + epoch``) with or without DDP.
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ):
        super().__init__(
            dataset,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self.skip = 0

    def set_skip(self, num_samples: int) -> None:
        """Skip this many of this rank's samples in the next iteration only."""
        self.skip = num_samples

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        skip, self.skip = self.skip, 0
        return iter(indices[skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip


def build_loader(
    dataset: DetectionSamples,
    batch_size: int,
    workers: int,
    shuffle: bool,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
) -> DataLoader:
    """DataLoader with a :class:`ResumableSampler` (sharded across ranks under DDP).

    Workers are not persistent so that ``dataset.set_epoch`` reaches them each epoch.
    """
    sampler = ResumableSampler(
        dataset,
        num_replicas=world_size,
        rank=rank,
        shuffle=shuffle,
        seed=seed,
        drop_last=drop_last,
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_detection,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        worker_init_fn=_worker_init,
        persistent_workers=False,
    )


def _worker_init(_worker_id: int) -> None:
    cv2.setNumThreads(0)  # each worker is one process; OpenCV threads would oversubscribe cores
    torch.set_num_threads(1)


def num_batches(loader: DataLoader) -> int:
    """Batches per epoch for this rank, independent of a pending ``skip``."""
    sampler = loader.sampler
    n = sampler.num_samples if isinstance(sampler, DistributedSampler) else len(sampler)
    return n // loader.batch_size if loader.drop_last else math.ceil(n / loader.batch_size)
