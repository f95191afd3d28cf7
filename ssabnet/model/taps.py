"""Feature taps: named intermediate feature maps for analysis, without editing the model.

Modules that expose internals inherit :class:`Tappable` and call ``self.tap(name, tensor)`` in
``forward``; that is a no-op unless :func:`capture_features` has switched taps on, so training,
export and tracing never pay for it. Names are ``"<level>.<what>"``:

=====================  ======================================================================
name                   tensor (one entry per neck level ``pL``, L = 2..5)
=====================  ======================================================================
``pL.semantic``        deep (coarser) map entering the top-down step (after the optional 1x1
                       reduction to the lateral width), ``[B, C_deep, H/2, W/2]``
``pL.shallow``         backbone lateral map C_L (the detail input), ``[B, C_L, H, W]``
``pL.upsampled``       deep map after the upsampler, ``[B, C_deep, H, W]``
``pL.kernels``         content-aware reassembly kernels (CARAFE/FADE), ``[B, k_up^2, H, W]``
``pL.sample_offsets``  DySample sampling offsets in low-res pixels, ``[B, 2*groups, H, W]``
``pL.offsets``         alignment offsets (x, y) in pixels per group, ``[B, 2*groups, H, W]``
                       (flow alignment) or ``[B, 2*k*k*groups, H, W]`` (deformable)
``pL.aligned``         upsampled deep map after alignment, ``[B, C_deep, H, W]``
``pL.gate``            gated fusion: weight of the shallow map, in (0, 1), ``[B, 1, H, W]``
``pL.fused``           output of the top-down step (after C2f), ``[B, C_out, H, W]``
``pL.out``             final neck output fed to the head, ``[B, C_out, H, W]``
=====================  ======================================================================

Which names exist depends on the configuration (no ``kernels`` with nearest upsampling, no
``gate`` with concat fusion, the coarsest level has only ``out``). Example::

    outputs, taps = capture_features(model, images)
    taps["p3.gate"].shape   # torch.Size([1, 1, 80, 80]) for a 640x640 input
"""

from __future__ import annotations

import torch
from torch import nn


class Tappable:
    """Mixin for modules that can record named tensors (see the module docstring)."""

    tap_prefix: str = ""
    taps: dict[str, torch.Tensor] | None = None

    def tap(self, name: str, tensor: torch.Tensor) -> None:
        if self.taps is not None:
            key = f"{self.tap_prefix}.{name}" if self.tap_prefix else name
            self.taps[key] = tensor.detach()


def set_tap_prefix(module: nn.Module, prefix: str) -> None:
    """Give ``module`` and every tappable module inside it the name prefix ``prefix``."""
    for sub in module.modules():
        if isinstance(sub, Tappable):
            sub.tap_prefix = prefix


@torch.no_grad()
def capture_features(
    model: nn.Module, images: torch.Tensor
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Run ``model(images)`` once with taps on; return ``(outputs, taps)``.

    ``taps`` maps the names documented in this module to detached tensors. The model is left
    exactly as it was (taps switched off again, train/eval mode untouched).
    """
    store: dict[str, torch.Tensor] = {}
    tappable = [m for m in model.modules() if isinstance(m, Tappable)]
    for module in tappable:
        module.taps = store
    try:
        outputs = model(images)
    finally:
        for module in tappable:
            module.taps = None
    return outputs, store
