"""The detector: ``SSABNet(backbone, neck, head)`` returning raw head outputs."""

from __future__ import annotations

import torch
from torch import nn


def check_input_size(height: int, width: int, multiple: int) -> None:
    """Raise ``ValueError`` unless both sides are positive multiples of ``multiple``."""
    bad = [(name, size) for name, size in (("height", height), ("width", width)) if size % multiple]
    if bad or height <= 0 or width <= 0:

        def nearest(size: int) -> str:
            lower = max(size // multiple * multiple, multiple)
            upper = lower + multiple if lower < size else lower
            return f"{lower} or {upper}" if lower != upper else f"{lower}"

        raise ValueError(
            f"input size {height}x{width} (HxW) must be a multiple of the max stride {multiple} "
            f"on both sides; nearest valid: height {nearest(height)}, width {nearest(width)} "
            "(letterbox/pad the image)"
        )


class SSABNet(nn.Module):
    """One-stage detector: CSP backbone -> (SSA) neck -> decoupled DFL head.

    ``forward(images: Tensor[B, 3, H, W])`` with float pixels in ``[0, 1]`` and ``H``, ``W``
    multiples of ``max(self.strides)`` (32; otherwise ``ValueError``). Returns a dict:

    * ``cls_logits``: ``Tensor[B, A, num_classes]`` pre-sigmoid class scores;
    * ``box_logits``: ``Tensor[B, A, 4, reg_max]`` DFL bin logits of distances (l, t, r, b) in
      stride units (decode with :func:`ssabnet.ops.anchors.decode_boxes`);
    * ``anchor_points``: ``Tensor[A, 2]`` ``(x, y)`` cell centres in input pixels;
    * ``anchor_strides``: ``Tensor[A]`` stride of each anchor in pixels;

    with ``A = sum_l H/s_l * W/s_l`` over levels fine -> coarse, row-major inside a level.
    Attributes: ``num_classes``, ``strides`` (tuple of ints), ``reg_max``.
    """

    size_multiple = 32  # the backbone's max stride: every level must tile the image exactly

    def __init__(self, backbone: nn.Module, neck: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.neck, self.head = backbone, neck, head
        self.num_classes = head.num_classes
        self.strides = tuple(head.strides)
        self.reg_max = head.reg_max

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape [B, 3, H, W], got {tuple(images.shape)}")
        check_input_size(int(images.shape[-2]), int(images.shape[-1]), self.size_multiple)
        return self.head(self.neck(self.backbone(images)))
