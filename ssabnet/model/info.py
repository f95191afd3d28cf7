"""Model complexity: parameter count and GFLOPs at a given input size.

GFLOPs follow the usual detection convention (YOLO/thop/fvcore tables): one multiply-add = 2
FLOPs, counted with ``torch.utils.flop_counter.FlopCounterMode``, which counts convolutions and
matrix products only. Pointwise work (activations, BN in eval mode, the k_up^2 multiply-adds of
content-aware reassembly, ``grid_sample``) and ``torchvision.ops.deform_conv2d`` are not counted,
so SSA operators are slightly under-counted; latency is measured by ``benchmarks/model_speed.py``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, image_size: tuple[int, int] = (640, 640)) -> int:
    """FLOPs (2 x MACs) of one forward pass on a ``[1, 3, H, W]`` input, in eval mode."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        images = torch.zeros(1, 3, *image_size, device=device)
        with FlopCounterMode(display=False) as counter:
            model(images)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def model_info(model: nn.Module, image_size: int | tuple[int, int] = 640) -> dict:
    """Summary dict: ``name``, ``params``, ``gflops`` (at ``image_size``, batch 1), ``imgsz``,
    ``strides``, ``levels`` (``"P2"``..), ``num_anchors``, ``num_classes``, ``reg_max``."""
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    strides = tuple(int(s) for s in model.strides)
    config = getattr(model, "config", None)
    return {
        "name": getattr(config, "name", type(model).__name__),
        "params": count_parameters(model),
        "gflops": round(count_flops(model, size) / 1e9, 3),
        "imgsz": list(size),
        "strides": list(strides),
        "levels": [f"P{s.bit_length() - 1}" for s in strides],
        "num_anchors": sum((size[0] // s) * (size[1] // s) for s in strides),
        "num_classes": int(model.num_classes),
        "reg_max": int(model.reg_max),
    }
