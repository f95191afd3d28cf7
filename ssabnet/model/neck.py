"""The SSA neck: a PAN-FPN whose top-down and bottom-up steps take pluggable operators.

The baseline YOLOv8 PAN-FPN is this same class with ``upsampler=NearestUpsample``,
``align=None``, ``fusion=ConcatFusion``, ``downsample=StridedConvDownsample``, ``use_p2=False``.
SSABNet swaps in content-aware upsampling, alignment, gated fusion and blur-pool downsampling and
adds the stride-4 level (the shallow restoration pathway); see ``docs/architecture.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ssabnet.model.blocks import C2f, ConvBNAct
from ssabnet.model.ssa import ConcatFusion, NearestUpsample, StridedConvDownsample
from ssabnet.model.taps import Tappable, set_tap_prefix

# factory(deep_channels, shallow_channels) -> module, and factory(in_channels, out_channels).
PairFactory = Callable[[int, int], nn.Module]
FusionFactory = Callable[[int, int, int], nn.Module]


class TopDownStep(Tappable, nn.Module):
    """(Reduce the deep map to ``Cs`` channels,) upsample it, align it to the lateral map, fuse,
    C2f.

    ``forward(deep: Tensor[B, Cd, h, w], shallow: Tensor[B, Cs, 2h, 2w]) -> Tensor[B, Co, 2h, 2w]``.
    Taps: ``semantic``, ``shallow``, ``upsampled``, ``aligned``, ``fused`` (+ the operators').
    """

    def __init__(
        self,
        deep_channels: int,
        shallow_channels: int,
        out_channels: int,
        num_blocks: int,
        upsampler: PairFactory,
        align: PairFactory | None,
        fusion: FusionFactory,
        reduce_deep: bool = False,
    ) -> None:
        super().__init__()
        self.reduce = None
        if reduce_deep:
            # 1x1 at low resolution: every high-res SSA operator then moves Cs, not Cd, channels.
            self.reduce = ConvBNAct(deep_channels, shallow_channels, 1)
            deep_channels = shallow_channels
        self.upsample = upsampler(deep_channels, shallow_channels)
        self.align = align(deep_channels, shallow_channels) if align is not None else None
        # The fusion module computes the C2f's input projection itself (no concatenated copy).
        hidden = int(out_channels * 0.5)
        self.fuse = fusion(deep_channels, shallow_channels, 2 * hidden)
        self.block = C2f(2 * hidden, out_channels, num_blocks, project_input=False)

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        if self.reduce is not None:
            deep = self.reduce(deep)
        self.tap("semantic", deep)
        self.tap("shallow", shallow)
        upsampled = self.upsample(deep, shallow)
        self.tap("upsampled", upsampled)
        if self.align is not None:
            upsampled = self.align(upsampled, shallow)
            self.tap("aligned", upsampled)
        fused = self.block(self.fuse(upsampled, shallow))
        self.tap("fused", fused)
        return fused


class BottomUpStep(nn.Module):
    """Downsample the finer output, concatenate with the top-down map of this level, C2f.

    ``forward(finer: Tensor[B, Cf, 2h, 2w], lateral: Tensor[B, Cl, h, w]) -> Tensor[B, Co, h, w]``.
    """

    def __init__(
        self,
        finer_channels: int,
        lateral_channels: int,
        out_channels: int,
        num_blocks: int,
        downsample: PairFactory,
    ) -> None:
        super().__init__()
        self.down = downsample(finer_channels, finer_channels)
        self.block = C2f(finer_channels + lateral_channels, out_channels, num_blocks)

    def forward(self, finer: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.down(finer), lateral], dim=1))


class SSANeck(Tappable, nn.Module):
    """PAN-FPN over backbone maps C2..C5 with pluggable SSA operators.

    Args:
        in_channels: channels of the backbone maps C2, C3, C4, C5 (strides 4, 8, 16, 32).
        out_channels: channels of the neck outputs P2, P3, P4, P5 (P2's is unused without P2).
        num_blocks: Bottlenecks per C2f.
        upsampler: ``factory(deep_channels, shallow_channels)`` of a 2x upsampler
            (:mod:`ssabnet.model.ssa`).
        align: ``factory(deep_channels, shallow_channels)`` of an alignment module, or ``None``.
        fusion: ``factory(deep_channels, shallow_channels, out_channels)`` of a module fusing the
            two maps into the (activated) input projection of the following C2f.
        downsample: ``factory(in_channels, out_channels)`` of a stride-2 module.
        use_p2: include the stride-4 level (shallow restoration pathway) and predict on P2..P5.
        reduce_deep: 1x1 ConvBNAct of the deep map to the lateral map's channel count before
            upsampling (halves the high-resolution work of the SSA operators).

    ``forward(features: list of 4 Tensor[B, C_i, H/s_i, W/s_i]) -> list of Tensor`` for the
    output levels, fine to coarse (``self.strides``, ``self.out_channels``). Taps: ``pL.out``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: Sequence[int],
        num_blocks: int = 1,
        upsampler: PairFactory = NearestUpsample,
        align: PairFactory | None = None,
        fusion: FusionFactory = ConcatFusion,
        downsample: PairFactory = StridedConvDownsample,
        use_p2: bool = False,
        reduce_deep: bool = False,
    ) -> None:
        super().__init__()
        if len(in_channels) != 4 or len(out_channels) != 4:
            raise ValueError("SSANeck needs 4 input and 4 output channel counts (C2..C5/P2..P5)")
        first = 0 if use_p2 else 1
        self.levels = tuple(range(2 + first, 6))  # pyramid levels, e.g. (3, 4, 5)
        self.strides = tuple(2**level for level in self.levels)
        ins = list(in_channels)[first:]
        outs = list(out_channels)[first:]
        self.first = first
        self.out_channels = tuple(outs)
        n = len(ins)
        # Top-down: from the coarsest (C5 after SPPF) to the finest level.
        self.top_down = nn.ModuleList()
        deep_channels = ins[-1]
        for i in range(n - 2, -1, -1):
            step = TopDownStep(
                deep_channels, ins[i], outs[i], num_blocks, upsampler, align, fusion, reduce_deep
            )
            set_tap_prefix(step, f"p{self.levels[i]}")
            self.top_down.append(step)
            deep_channels = outs[i]
        # Bottom-up: the coarsest level concatenates with the backbone's C5 itself.
        self.bottom_up = nn.ModuleList()
        for i in range(1, n):
            lateral = outs[i] if i < n - 1 else ins[-1]
            self.bottom_up.append(
                BottomUpStep(outs[i - 1], lateral, outs[i], num_blocks, downsample)
            )

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        features = list(features)[self.first :]
        top_down = [features[-1]]
        for step, shallow in zip(self.top_down, reversed(features[:-1]), strict=True):
            top_down.append(step(top_down[-1], shallow))
        top_down.reverse()  # fine -> coarse; the last entry is C5 itself
        outputs = [top_down[0]]
        for step, lateral in zip(self.bottom_up, top_down[1:], strict=True):
            outputs.append(step(outputs[-1], lateral))
        for level, out in zip(self.levels, outputs, strict=True):
            self.tap(f"p{level}.out", out)
        return outputs
