"""Pictures for analysis: boxes drawn on images, context crops, feature maps as heat maps.

Used by the Streamlit app and the notebooks, which must not hold tensor math themselves. Images
are RGB ``uint8[H, W, 3]`` numpy arrays; boxes are ``float[N, 4]`` xyxy absolute pixels of the
image they are drawn on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from ssabnet.data.images import read_image_rgb
from ssabnet.data.transforms import LetterboxParams, Targets, letterbox
from ssabnet.model.taps import capture_features
from ssabnet.postprocess import postprocess

REDUCTIONS = ("mean", "l2", "max", "abs_mean")
GT_COLOR = (0, 220, 0)
PRED_COLOR = (255, 60, 60)


def decode_image_bytes(data: bytes, name: str = "upload") -> np.ndarray:
    """Decode an uploaded file into RGB ``uint8[H, W, 3]`` (stored pixels, EXIF ignored).

    The same reader as every other image (:func:`ssabnet.data.images.read_image_rgb`): pixel
    cap, truncation and size checks included.

    Raises:
        ImageError: a ``ValueError`` naming ``name``: not a decodable image, truncated, too large.
    """
    return read_image_rgb(data, name=repr(name))


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    *,
    captions: Sequence[str] | None = None,
    color: tuple[int, int, int] = GT_COLOR,
    width: int = 1,
) -> np.ndarray:
    """A copy of ``image`` with ``boxes`` (``float[N, 4]`` xyxy px) outlined, optional captions."""
    canvas = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        draw.rectangle([x1, y1, max(x1, x2), max(y1, y2)], outline=color, width=width)
        if captions is not None and i < len(captions) and captions[i]:
            draw.text((x1 + 1, max(0.0, y1 - 10)), str(captions[i]), fill=color)
    return np.asarray(canvas)


def crop_with_context(
    image: np.ndarray, box: Sequence[float], context: float = 3.0, min_side: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Square crop around ``box`` with surrounding context, clipped to the image.

    Args:
        image: ``uint8[H, W, 3]``.
        box: xyxy px.
        context: crop side = ``context * max(box w, box h)`` (at least ``min_side`` px).
        min_side: smallest crop side in px (tiny objects get enough surroundings).

    Returns:
        ``(crop uint8[h, w, 3], box xyxy in crop px float32[4])``.
    """
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(float(min_side), context * max(x2 - x1, y2 - y1, 1.0))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = int(np.clip(np.floor(cx - side / 2), 0, max(0, width - 1)))
    top = int(np.clip(np.floor(cy - side / 2), 0, max(0, height - 1)))
    right = int(np.clip(np.ceil(cx + side / 2), left + 1, width))
    bottom = int(np.clip(np.ceil(cy + side / 2), top + 1, height))
    crop = image[top:bottom, left:right]
    return crop, np.array([x1 - left, y1 - top, x2 - left, y2 - top], dtype=np.float32)


def feature_heatmap(feature: torch.Tensor | np.ndarray, reduce: str | int = "l2") -> np.ndarray:
    """One channel-reduced map of a feature tensor, scaled to ``[0, 1]``.

    Args:
        feature: ``[C, H, W]`` (or ``[1, C, H, W]``).
        reduce: ``"mean"``, ``"l2"`` (channel norm), ``"max"``, ``"abs_mean"`` or a channel index.

    Returns:
        ``float32[H, W]`` min-max normalised (all zeros for a constant map).
    """
    values = torch.as_tensor(feature).detach().float().cpu()
    if values.ndim == 4:
        values = values[0]
    if values.ndim != 3:
        raise ValueError(f"expected a [C, H, W] feature map, got shape {tuple(values.shape)}")
    if isinstance(reduce, int):
        if not 0 <= reduce < values.shape[0]:
            raise ValueError(f"channel {reduce} out of range 0..{values.shape[0] - 1}")
        heat = values[reduce]
    elif reduce == "mean":
        heat = values.mean(0)
    elif reduce == "l2":
        heat = values.norm(dim=0)
    elif reduce == "max":
        heat = values.amax(0)
    elif reduce == "abs_mean":
        heat = values.abs().mean(0)
    else:
        raise ValueError(f"unknown reduction {reduce!r}; expected one of {REDUCTIONS}")
    lo, hi = heat.min(), heat.max()
    scaled = (heat - lo) / (hi - lo) if hi > lo else torch.zeros_like(heat)
    return scaled.numpy().astype(np.float32)


def offset_magnitude(offsets: torch.Tensor | np.ndarray) -> np.ndarray:
    """Mean length (px) of the ``(dx, dy)`` offset pairs of ``[2*G, H, W]`` -> ``float32[H, W]``."""
    values = torch.as_tensor(offsets).detach().float().cpu()
    if values.ndim == 4:
        values = values[0]
    if values.ndim != 3 or values.shape[0] % 2:
        raise ValueError(f"expected offsets [2*G, H, W], got shape {tuple(values.shape)}")
    pairs = values.reshape(values.shape[0] // 2, 2, *values.shape[1:])  # [G, 2, H, W]
    return pairs.norm(dim=1).mean(0).numpy().astype(np.float32)


def kernel_at(kernels: torch.Tensor | np.ndarray, x: int, y: int) -> np.ndarray:
    """Reassembly kernel ``float32[k, k]`` at feature cell ``(x, y)`` of ``[k*k, H, W]``."""
    values = torch.as_tensor(kernels).detach().float().cpu()
    if values.ndim == 4:
        values = values[0]
    k = int(round(values.shape[0] ** 0.5))
    if values.ndim != 3 or k * k != values.shape[0]:
        raise ValueError(f"expected kernels [k*k, H, W], got shape {tuple(values.shape)}")
    height, width = values.shape[1:]
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"cell ({x}, {y}) outside the {width}x{height} map")
    return values[:, y, x].reshape(k, k).numpy().astype(np.float32)


def overlay_heatmap(
    image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, cmap: str = "inferno"
) -> np.ndarray:
    """Blend a ``[0, 1]`` heat map (any resolution) over ``image`` (resized bilinearly)."""
    from matplotlib import colormaps

    height, width = image.shape[:2]
    resized = Image.fromarray(np.asarray(heat, dtype=np.float32)).resize(
        (width, height), Image.BILINEAR
    )
    colored = colormaps[cmap](np.clip(np.asarray(resized), 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colored
    return blended.clip(0, 255).astype(np.uint8)


@dataclass(frozen=True)
class FeatureView:
    """One image run through a model with feature taps on (all in network-input pixels).

    Attributes:
        input_image: the letterboxed image ``uint8[S, S, 3]`` the model saw.
        taps: name -> ``Tensor[C, H, W]`` (batch dimension removed), see
            :mod:`ssabnet.model.taps`.
        pred_boxes: ``float32[N, 4]`` xyxy input px; ``pred_scores`` ``[N]``; ``pred_labels``
            ``int64[N]``.
        gt_boxes: ``float32[M, 4]`` xyxy input px (empty if no GT was given).
        params: the letterbox mapping from the original image.
    """

    input_image: np.ndarray
    taps: dict[str, torch.Tensor]
    pred_boxes: np.ndarray
    pred_scores: np.ndarray
    pred_labels: np.ndarray
    gt_boxes: np.ndarray
    params: LetterboxParams


@torch.no_grad()
def run_with_taps(
    model: torch.nn.Module,
    image: np.ndarray,
    imgsz: int,
    gt_boxes: np.ndarray | None = None,
    conf: float = 0.25,
    iou: float = 0.6,
    max_det: int = 300,
) -> FeatureView:
    """Letterbox ``image`` to ``imgsz``, run ``model`` once with taps, post-process detections."""
    boxes = np.zeros((0, 4), np.float32) if gt_boxes is None else np.asarray(gt_boxes, np.float32)
    targets = Targets(
        boxes.reshape(-1, 4), np.zeros(len(boxes), np.int64), np.zeros((0, 4), np.float32)
    )
    input_image, moved, params = letterbox(image, targets, imgsz)
    device = next(model.parameters()).device
    batch = torch.from_numpy(input_image.transpose(2, 0, 1).copy())[None].to(device)
    outputs, taps = capture_features(model, batch.float().div_(255))
    det = postprocess(outputs, conf, iou, max_det)[0]
    return FeatureView(
        input_image=input_image,
        taps={name: tensor[0].cpu() for name, tensor in taps.items()},
        pred_boxes=det["boxes"].cpu().numpy().astype(np.float32),
        pred_scores=det["scores"].cpu().numpy(),
        pred_labels=det["labels"].cpu().numpy().astype(np.int64),
        gt_boxes=moved.boxes,
        params=params,
    )


__all__ = [
    "REDUCTIONS",
    "FeatureView",
    "crop_with_context",
    "decode_image_bytes",
    "draw_boxes",
    "feature_heatmap",
    "kernel_at",
    "offset_magnitude",
    "overlay_heatmap",
    "run_with_taps",
]
