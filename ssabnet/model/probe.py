"""Probing the neck: the same deep map upsampled several ways, spectra, responses inside boxes.

What the teaching notebooks measure about the SSA neck (see ``notebooks/02_ssa_feature_maps``)
lives here so that notebooks hold no tensor math. Pictures (drawing, heat maps) are in
:mod:`ssabnet.visualize`; feature maps come from :func:`ssabnet.model.taps.capture_features`.
Boxes are float ``xyxy`` in model-input pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ssabnet.model.taps import capture_features

STRIDE_MULTIPLE = 32  # the coarsest level (P5) has stride 32: inputs must be multiples of it


def image_to_input(
    image: np.ndarray, long_side: int = 640
) -> tuple[torch.Tensor, tuple[float, float]]:
    """RGB ``uint8[H, W, 3]`` -> model input ``Tensor[1, 3, H', W']`` in [0, 1], no padding.

    The longer side becomes about ``long_side`` and both sides multiples of 32 (the P5 stride),
    keeping the aspect ratio up to that rounding, so feature maps line up with the picture.

    Returns:
        ``(input, (scale_x, scale_y))``: input pixel = scale * original pixel along each axis.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image_to_input expects RGB [H, W, 3], got shape {image.shape}")
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    new_w = max(STRIDE_MULTIPLE, round(width * scale / STRIDE_MULTIPLE) * STRIDE_MULTIPLE)
    new_h = max(STRIDE_MULTIPLE, round(height * scale / STRIDE_MULTIPLE) * STRIDE_MULTIPLE)
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255
    tensor = F.interpolate(tensor, size=(new_h, new_w), mode="bilinear", align_corners=False)
    return tensor.clamp_(0, 1), (new_w / width, new_h / height)


def high_frequency_ratio(energy: np.ndarray | torch.Tensor, cutoff: float = 0.5) -> float:
    """Share of a 2-D map's spectral power above ``cutoff`` x Nyquist (mean removed).

    Nearest-neighbour upsampling adds spurious high frequencies (the staircase at every 2x2
    block edge) that bilinear interpolation suppresses: one number to compare upsamplers on
    the same input. Returns a ratio in [0, 1] (0 for a constant map).
    """
    grid = torch.as_tensor(np.asarray(energy), dtype=torch.float64)
    if grid.dim() != 2:
        raise ValueError(f"high_frequency_ratio expects [H, W], got shape {tuple(grid.shape)}")
    power = torch.fft.fft2(grid - grid.mean()).abs().square()
    fy = torch.fft.fftfreq(grid.shape[0], dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(grid.shape[1], dtype=torch.float64)[None, :]
    radius = torch.sqrt(fx.square() + fy.square()) / 0.5  # 1.0 = Nyquist (0.5 cycles/cell)
    total = power.sum()
    if total <= 0:
        return 0.0
    return float(power[radius > cutoff].sum() / total)


@torch.no_grad()
def compare_upsamplers(
    model: torch.nn.Module, images: torch.Tensor, level: str = "p3"
) -> dict[str, torch.Tensor]:
    """Upsample the SAME deep map of ``level`` three ways: nearest, bilinear and the model's own.

    Runs ``model`` once with taps, takes the deep map entering the ``level`` top-down step
    (``"<level>.semantic"``) and upsamples it 2x with nearest and bilinear interpolation; the
    model's upsampler output (``"<level>.upsampled"``) is returned under the model's upsampler
    name (``"carafe"``, ``"fade"``, ``"dysample"``; omitted for a nearest model, where it equals
    ``"nearest"``).

    Args:
        model: an SSABNet detector (eval mode recommended).
        images: ``Tensor[B, 3, H, W]`` in [0, 1], H and W multiples of 32.
        level: neck level with a top-down step (``"p2"``, ``"p3"``, ``"p4"``).

    Returns:
        ``{"semantic": [B, C, h, w], "nearest", "bilinear", <upsampler>: [B, C, 2h, 2w],
        "shallow": [B, C_L, 2h, 2w]}`` plus ``"kernels"`` ``[B, k*k, 2h, 2w]`` when the
        upsampler predicts reassembly kernels.
    """
    _, taps = capture_features(model, images)
    if f"{level}.semantic" not in taps:
        levels = sorted({name.split(".")[0] for name in taps if name.endswith(".semantic")})
        raise ValueError(f"no top-down step at level {level!r}; levels with one: {levels}")
    semantic = taps[f"{level}.semantic"]
    upsampled = taps[f"{level}.upsampled"]
    size = tuple(upsampled.shape[-2:])
    result = {
        "semantic": semantic,
        "nearest": F.interpolate(semantic, size=size, mode="nearest"),
        "bilinear": F.interpolate(semantic, size=size, mode="bilinear", align_corners=False),
        "shallow": taps[f"{level}.shallow"],
    }
    name = getattr(getattr(model, "config", None), "upsampler", None) or "model"
    if name != "nearest":
        result[name] = upsampled
    if f"{level}.kernels" in taps:
        result["kernels"] = taps[f"{level}.kernels"]
    return result


def mean_inside_boxes(energy: np.ndarray, boxes: np.ndarray, stride: float) -> float:
    """Mean of a ``[H, W]`` map over the cells whose centre lies inside any of ``boxes``.

    Cell ``(i, j)`` of a stride-``s`` map has its centre at input pixel ``((j + 0.5) s,
    (i + 0.5) s)``, the head's anchor-point convention. Returns ``nan`` when no cell centre falls
    in a box: an object smaller than the stride can be missed entirely by that level.

    Args:
        energy: ``float[H, W]`` map (e.g. :func:`ssabnet.visualize.feature_heatmap`).
        boxes: ``float[N, 4]`` xyxy input pixels.
        stride: input pixels per cell.
    """
    height, width = energy.shape
    ys = (np.arange(height) + 0.5) * stride
    xs = (np.arange(width) + 0.5) * stride
    inside = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        inside |= ((ys >= y1) & (ys < y2))[:, None] & ((xs >= x1) & (xs < x2))[None, :]
    if not inside.any():
        return float("nan")
    return float(energy[inside].mean())
