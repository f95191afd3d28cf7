"""Training augmentation and letterboxing for UAV imagery that keep tiny boxes valid.

Every transform takes an RGB ``uint8`` image ``ndarray[H, W, 3]`` and a :class:`Targets`
(boxes ``float32[N, 4]`` xyxy pixels of that image, labels ``int64[N]``, ignore regions
``float32[K, 4]`` xyxy pixels) and returns the transformed pair. Ignore regions go through the
same geometry as boxes, so "do not penalise here" stays aligned with the pixels.

Drone objects are often 4-16 px: geometric transforms are restricted to scale + translation +
flips (rotation and shear would inflate the axis-aligned box of a 6 px car by up to 40 %), and
after every geometric step :func:`filter_boxes` drops boxes that became smaller than
``min_size`` px or kept less than ``min_visible`` of their area inside the image. The number of
dropped boxes is accumulated in ``Targets.num_dropped`` so it can be logged, never silent.
Randomness comes only from the ``numpy.random.Generator`` passed in, which makes a sample's
augmentation a pure function of its seed (needed for exact resume).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from ssabnet.ops.boxes import box_area, clip_boxes_xyxy

PAD_VALUE = 114  # grey padding, the usual YOLO choice: neutral for the HSV jitter


@dataclass(frozen=True)
class Targets:
    """Annotations of one (possibly transformed) image.

    Attributes:
        boxes: ``float32[N, 4]`` xyxy pixels of the objects trained as positives.
        labels: ``int64[N]`` contiguous class indices ``0..C-1``.
        ignore_regions: ``float32[K, 4]`` xyxy pixels where no anchor is penalised as negative.
        num_dropped: boxes removed so far by the transforms (too small / mostly outside).
    """

    boxes: np.ndarray
    labels: np.ndarray
    ignore_regions: np.ndarray
    num_dropped: int = 0

    @staticmethod
    def empty() -> Targets:
        return Targets(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.int64), np.zeros((0, 4), np.float32)
        )


@dataclass(frozen=True)
class LetterboxParams:
    """How an original image was mapped into the square network input.

    ``input = original * scale + (pad_x, pad_y)``; ``orig_width``/``orig_height`` in pixels.
    """

    scale: float
    pad_x: float
    pad_y: float
    orig_width: int
    orig_height: int


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the training augmentation.

    The values (and their defaults) are :class:`ssabnet.config.TrainConfig`'s fields of the same
    names, copied by name (``ssabnet.engine.train.build_train_data``); they are not repeated here.
    """

    mosaic: float  # probability
    hflip: float  # probability
    vflip: float  # probability
    scale: float  # zoom factor drawn uniformly in [1 - scale, 1 + scale]
    translate: float  # fraction of the output size
    hsv: tuple[float, float, float]  # gains of hue, saturation, value
    min_box_size: float  # px: smaller boxes are dropped after a geometric transform
    min_visible: float  # fraction of the box area that must stay inside the image


def _affine_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine ``matrix`` to ``points[..., 2]``."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def transform_boxes_affine(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Axis-aligned box of the 4 transformed corners of each ``xyxy`` box, ``float32[N, 4]``."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4).astype(np.float32)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    corners = np.stack(
        [
            np.stack([x1, y1], -1),
            np.stack([x2, y1], -1),
            np.stack([x1, y2], -1),
            np.stack([x2, y2], -1),
        ],
        axis=1,
    )  # [N, 4 corners, 2]
    moved = _affine_points(corners.astype(np.float64), matrix)
    out = np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)
    return out.astype(np.float32)


def filter_boxes(
    targets: Targets,
    unclipped_boxes: np.ndarray,
    width: int,
    height: int,
    min_size: float,
    min_visible: float,
) -> Targets:
    """Clip boxes to the image and drop those too small or mostly outside.

    Args:
        targets: targets whose ``boxes`` are the *unclipped* transformed boxes.
        unclipped_boxes: ``float32[N, 4]`` same boxes (their area is the reference for
            ``min_visible``).
        width, height: image size in pixels after the transform.
        min_size: minimum width *and* height in pixels of a kept box.
        min_visible: minimum fraction of the unclipped area that must stay inside the image.

    Ignore regions are clipped and dropped only when they become empty.
    """
    clipped = clip_boxes_xyxy(unclipped_boxes.astype(np.float32), width, height)
    w = clipped[:, 2] - clipped[:, 0]
    h = clipped[:, 3] - clipped[:, 1]
    full_area = box_area(unclipped_boxes.astype(np.float64))
    visible = np.where(
        full_area > 0, box_area(clipped.astype(np.float64)) / np.maximum(full_area, 1e-12), 0.0
    )
    keep = (w >= min_size) & (h >= min_size) & (visible >= min_visible)
    regions = clip_boxes_xyxy(targets.ignore_regions.astype(np.float32), width, height)
    region_keep = box_area(regions) > 0
    return Targets(
        boxes=clipped[keep].astype(np.float32),
        labels=targets.labels[keep],
        ignore_regions=regions[region_keep].astype(np.float32),
        num_dropped=targets.num_dropped + int((~keep).sum()),
    )


def letterbox(
    image: np.ndarray, targets: Targets, size: int, scaleup: bool = True
) -> tuple[np.ndarray, Targets, LetterboxParams]:
    """Resize keeping the aspect ratio so the long side is ``size``, pad to ``size x size``.

    Args:
        image: ``uint8[H, W, 3]``.
        targets: boxes/ignore regions in original pixels.
        size: network input side in pixels.
        scaleup: allow enlarging small images (off for evaluation of tiny frames is rare;
            default on so all inputs have the same scale logic).

    Returns:
        ``(uint8[size, size, 3], targets in input pixels, LetterboxParams)``. Boxes are only
        rescaled: letterboxing never drops a box (evaluation must see every object).
    """
    height, width = image.shape[:2]
    scale = size / max(height, width)
    if not scaleup:
        scale = min(scale, 1.0)
    new_w, new_h = round(width * scale), round(height * scale)
    if (new_w, new_h) != (width, height):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, (new_w, new_h), interpolation=interp)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = image
    params = LetterboxParams(float(scale), float(pad_x), float(pad_y), width, height)
    offset = np.array([pad_x, pad_y, pad_x, pad_y], np.float32)
    moved = replace(
        targets,
        boxes=(targets.boxes * scale + offset).astype(np.float32),
        ignore_regions=(targets.ignore_regions * scale + offset).astype(np.float32),
    )
    return canvas, moved, params


def random_affine(
    image: np.ndarray,
    targets: Targets,
    rng: np.random.Generator,
    out_size: int,
    scale: float = 0.5,
    translate: float = 0.1,
    center: tuple[float, float] | None = None,
    min_size: float = 2.0,
    min_visible: float = 0.3,
) -> tuple[np.ndarray, Targets]:
    """Random zoom + translation, output ``out_size x out_size`` (no rotation/shear, see module).

    The point ``center`` of the input (default: its centre) is mapped to the output centre after
    zooming by ``s ~ U(1 - scale, 1 + scale)`` and shifting by ``U(-translate, translate) *
    out_size``. Boxes are transformed, clipped and filtered with :func:`filter_boxes`.
    """
    height, width = image.shape[:2]
    cx, cy = center if center is not None else (width / 2, height / 2)
    zoom = float(rng.uniform(1 - scale, 1 + scale))
    tx = float(rng.uniform(-translate, translate)) * out_size
    ty = float(rng.uniform(-translate, translate)) * out_size
    matrix = np.array(
        [[zoom, 0.0, out_size / 2 + tx - zoom * cx], [0.0, zoom, out_size / 2 + ty - zoom * cy]],
        dtype=np.float64,
    )
    warped = cv2.warpAffine(
        image,
        matrix,
        (out_size, out_size),
        flags=cv2.INTER_LINEAR,
        borderValue=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
    )
    moved = transform_boxes_affine(targets.boxes, matrix)
    regions = transform_boxes_affine(targets.ignore_regions, matrix)
    out = filter_boxes(
        replace(targets, ignore_regions=regions), moved, out_size, out_size, min_size, min_visible
    )
    return warped, out


def mosaic(
    images: list[np.ndarray],
    targets: list[Targets],
    rng: np.random.Generator,
    size: int,
    min_size: float,
    min_visible: float,
) -> tuple[np.ndarray, Targets]:
    """Tile 4 letterbox-scaled images around a random centre of a ``2*size`` square canvas.

    Image ``i`` (long side resized to ``size``) touches the centre with its bottom-right,
    bottom-left, top-right and top-left corner respectively. The result is ``uint8[2*size,
    2*size, 3]``; follow it with :func:`random_affine` (``center`` = the mosaic centre) to get
    back to ``size``. Boxes are clipped to their tile and filtered (:func:`filter_boxes` with
    ``min_size`` and ``min_visible``, the training recipe's).
    """
    if len(images) != 4 or len(targets) != 4:
        raise ValueError(f"mosaic needs 4 images, got {len(images)}")
    canvas_size = 2 * size
    canvas = np.full((canvas_size, canvas_size, 3), PAD_VALUE, dtype=np.uint8)
    xc = int(rng.uniform(0.5 * size, 1.5 * size))
    yc = int(rng.uniform(0.5 * size, 1.5 * size))
    all_boxes, all_labels, all_regions, dropped = [], [], [], 0
    for i, (image, target) in enumerate(zip(images, targets, strict=True)):
        h0, w0 = image.shape[:2]
        r = size / max(h0, w0)
        w, h = max(1, round(w0 * r)), max(1, round(h0 * r))
        if (w, h) != (w0, h0):
            image = cv2.resize(
                image, (w, h), interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR
            )
        if i == 0:  # top-left tile
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b = w - (x2a - x1a), h - (y2a - y1a)
        elif i == 1:  # top-right
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, canvas_size), yc
            x1b, y1b = 0, h - (y2a - y1a)
        elif i == 2:  # bottom-left
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(yc + h, canvas_size)
            x1b, y1b = w - (x2a - x1a), 0
        else:  # bottom-right
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, canvas_size), min(yc + h, canvas_size)
            x1b, y1b = 0, 0
        canvas[y1a:y2a, x1a:x2a] = image[y1b : y1b + (y2a - y1a), x1b : x1b + (x2a - x1a)]
        dx, dy = x1a - x1b, y1a - y1b
        offset = np.array([dx, dy, dx, dy], np.float32)
        boxes = target.boxes * r + offset
        regions = target.ignore_regions * r + offset
        # Clip to this tile's rectangle, not just the canvas: content outside it is not shown.
        tile = Targets(boxes - [x1a, y1a, x1a, y1a], target.labels, regions - [x1a, y1a, x1a, y1a])
        kept = filter_boxes(tile, tile.boxes, x2a - x1a, y2a - y1a, min_size, min_visible)
        all_boxes.append(kept.boxes + [x1a, y1a, x1a, y1a])
        all_labels.append(kept.labels)
        all_regions.append(kept.ignore_regions + [x1a, y1a, x1a, y1a])
        dropped += kept.num_dropped + target.num_dropped
    out = Targets(
        boxes=np.concatenate(all_boxes).astype(np.float32).reshape(-1, 4),
        labels=np.concatenate(all_labels).astype(np.int64),
        ignore_regions=np.concatenate(all_regions).astype(np.float32).reshape(-1, 4),
        num_dropped=dropped,
    )
    return canvas, out


def mosaic_center(canvas: np.ndarray) -> tuple[float, float]:
    """Centre of a mosaic canvas (used as the affine ``center`` so the output covers it)."""
    return canvas.shape[1] / 2, canvas.shape[0] / 2


def horizontal_flip(image: np.ndarray, targets: Targets) -> tuple[np.ndarray, Targets]:
    """Mirror left-right; boxes ``x -> W - x`` (exact, no filtering needed)."""
    width = image.shape[1]

    def flip(b: np.ndarray) -> np.ndarray:
        return np.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], 1).astype(np.float32)

    return np.ascontiguousarray(image[:, ::-1]), replace(
        targets, boxes=flip(targets.boxes), ignore_regions=flip(targets.ignore_regions)
    )


def vertical_flip(image: np.ndarray, targets: Targets) -> tuple[np.ndarray, Targets]:
    """Mirror top-bottom (drone views have no canonical "up")."""
    height = image.shape[0]

    def flip(b: np.ndarray) -> np.ndarray:
        return np.stack([b[:, 0], height - b[:, 3], b[:, 2], height - b[:, 1]], 1).astype(
            np.float32
        )

    return np.ascontiguousarray(image[::-1]), replace(
        targets, boxes=flip(targets.boxes), ignore_regions=flip(targets.ignore_regions)
    )


def augment_hsv(
    image: np.ndarray, rng: np.random.Generator, gains: tuple[float, float, float]
) -> np.ndarray:
    """Random hue/saturation/value gains ``1 + U(-g, g)`` on an RGB ``uint8`` image."""
    if not any(gains):
        return image
    r = rng.uniform(-1, 1, 3) * np.asarray(gains) + 1
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV))
    x = np.arange(0, 256, dtype=np.float64)
    lut_hue = ((x * r[0]) % 180).astype(np.uint8)
    lut_sat = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * r[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
