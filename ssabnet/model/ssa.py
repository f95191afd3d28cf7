"""The Spatial-Semantic Aggregation (SSA) parts of the neck, each a drop-in module.

Upsamplers share one interface, ``forward(deep: Tensor[B, C, h, w], shallow: Tensor[B, Cs, s*h,
s*w]) -> Tensor[B, C, s*h, s*w]`` (``shallow`` is the lateral detail map; operators that do not
use it ignore it):

* :class:`NearestUpsample` - the baseline.
* :class:`CARAFE` - Wang et al., "CARAFE: Content-Aware ReAssembly of FEatures", ICCV 2019:
  channel compressor, content encoder, pixel shuffle, softmax-normalised ``k_up x k_up`` kernels,
  reassembly of the deep map.
* :class:`FADEUpsample` - in the spirit of Lu et al., "FADE: Fusing the Assets of Decoder and
  Encoder for Task-Agnostic Upsampling", ECCV 2022: the reassembly kernels are predicted from
  *both* the deep (decoder) map and the shallow (encoder) detail map.
* :class:`DySample` - Liu et al., "Learning to Upsample by Learning to Sample", ICCV 2023: point
  sampling with ``grid_sample`` at learned offsets.

Alignment, ``forward(upsampled: Tensor[B, C, H, W], shallow: Tensor[B, Cs, H, W]) ->
Tensor[B, C, H, W]``, in the spirit of Huang et al., "FaPN: Feature-aligned Pyramid Network",
ICCV 2021 (offsets predicted from both maps):

* :class:`FlowAlign` - per-group offset field applied with ``grid_sample`` (cheap on CPU).
* :class:`DeformAlign` - ``torchvision.ops.deform_conv2d`` as in FaPN.

Fusion, ``forward(deep, shallow) -> Tensor[B, Co, H, W]`` (the activated 1x1 projection that
starts the next C2f): :class:`ConcatFusion` (baseline) and :class:`GatedFusion` (learned spatial
gate, as FADE's gating between encoder and decoder).

Downsampling, ``forward(x: Tensor[B, C, H, W]) -> Tensor[B, C_out, H/2, W/2]``:
:class:`StridedConvDownsample` (baseline) and :class:`BlurDownsample` (Zhang, "Making
Convolutional Networks Shift-Invariant Again", ICML 2019).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from ssabnet.model.blocks import ConvBNAct
from ssabnet.model.taps import Tappable


# ----------------------------------------------------------------------------- reassembly
def reassemble(
    features: torch.Tensor, kernels: torch.Tensor, kernel_size: int, scale: int = 2
) -> torch.Tensor:
    """Content-aware reassembly (the CARAFE/FADE upsampling step) without ``unfold``.

    ``out[b, c, s*y + i, s*x + j] = sum_{dy, dx} kernels[b, dy*k + dx, s*y + i, s*x + j] *
    features[b, c, y + dy - k//2, x + dx - k//2]`` (zero outside the map).

    Instead of materialising ``k^2`` shifted copies (what ``F.unfold`` does: ``k^2`` times the
    memory of the output), we loop over the ``s^2`` sub-pixel phases and, inside, over the ``k^2``
    offsets, accumulating in place into one low-resolution ``[B, C, h, w]`` map (each term
    multiplies a *view* of the zero-padded input by a *view* of one kernel plane), then write it
    into its strided phase of the output. Extra memory: the output plus one ``1/s^2`` of it (also
    under autograd, which saves only views); the small accumulator stays in cache, which makes
    this ~3x faster on CPU than accumulating into the full output.

    Args:
        features: ``Tensor[B, C, h, w]`` map to upsample.
        kernels: ``Tensor[B, k*k, s*h, s*w]`` one kernel per output pixel (normalise them first).
        kernel_size: ``k`` (odd).
        scale: ``s``.

    Returns:
        ``Tensor[B, C, s*h, s*w]``.
    """
    tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()
    needs_grad = torch.is_grad_enabled() and (features.requires_grad or kernels.requires_grad)
    if needs_grad and not tracing:
        return _Reassemble.apply(features, kernels, kernel_size, scale)
    return _reassemble_forward(features, kernels, kernel_size, scale)


def _reassemble_forward(
    features: torch.Tensor, kernels: torch.Tensor, kernel_size: int, scale: int
) -> torch.Tensor:
    batch, channels, height, width = features.shape
    k2 = kernel_size * kernel_size
    pad = kernel_size // 2
    padded = F.pad(features, (pad, pad, pad, pad))
    # [B, k2, s*h, s*w] -> [B, k2, s, s, h, w]: plane (i, j) holds output pixels (s*y+i, s*x+j).
    kernel_planes = F.pixel_unshuffle(kernels, scale).view(batch, k2, scale, scale, height, width)
    out = features.new_empty(batch, channels, height, scale, width, scale)
    for i in range(scale):
        for j in range(scale):
            phase = kernel_planes[:, :, i, j]  # [B, k2, h, w]
            acc = phase[:, 0:1] * padded[:, :, 0:height, 0:width]
            for index in range(1, k2):
                dy, dx = divmod(index, kernel_size)
                window = padded[:, :, dy : dy + height, dx : dx + width]
                acc.addcmul_(phase[:, index : index + 1], window)
            out[:, :, :, i, :, j] = acc
    return out.view(batch, channels, height * scale, width * scale)


class _Reassemble(torch.autograd.Function):
    """Explicit backward for :func:`reassemble`, with the same offset loop.

    Autograd through the loop would turn each of the ``s^2 k^2`` slices into a full-size zero
    tensor in backward (slow, and memory-hungry for k = 5); here the gradients accumulate in
    place: ``d features[y + dy, x + dx] += g * kernel``, ``d kernel = sum_c g * window``.
    """

    @staticmethod
    def forward(ctx, features, kernels, kernel_size, scale):
        ctx.save_for_backward(features, kernels)
        ctx.kernel_size, ctx.scale = kernel_size, scale
        return _reassemble_forward(features, kernels, kernel_size, scale)

    @staticmethod
    def backward(ctx, grad_out):
        features, kernels = ctx.saved_tensors
        kernel_size, scale = ctx.kernel_size, ctx.scale
        batch, channels, height, width = features.shape
        k2 = kernel_size * kernel_size
        pad = kernel_size // 2
        padded = F.pad(features, (pad, pad, pad, pad))
        planes = F.pixel_unshuffle(kernels, scale).view(batch, k2, scale, scale, height, width)
        grad_padded = torch.zeros_like(padded)
        grad_planes = torch.empty_like(planes)
        grad_phases = grad_out.reshape(batch, channels, height, scale, width, scale)
        for i in range(scale):
            for j in range(scale):
                grad = grad_phases[:, :, :, i, :, j].contiguous()  # [B, C, h, w]
                for index in range(k2):
                    dy, dx = divmod(index, kernel_size)
                    window = padded[:, :, dy : dy + height, dx : dx + width]
                    grad_planes[:, index, i, j] = (grad * window).sum(dim=1)
                    grad_padded[:, :, dy : dy + height, dx : dx + width].addcmul_(
                        grad, planes[:, index : index + 1, i, j]
                    )
        grad_features = grad_padded[:, :, pad : pad + height, pad : pad + width]
        grad_kernels = F.pixel_shuffle(
            grad_planes.view(batch, k2 * scale * scale, height, width), scale
        )
        return grad_features, grad_kernels, None, None


def reassemble_unfold(
    features: torch.Tensor, kernels: torch.Tensor, kernel_size: int, scale: int = 2
) -> torch.Tensor:
    """Reference (naive) :func:`reassemble`: ``unfold`` + nearest repeat + weighted sum.

    Materialises ``k^2`` copies of the *upsampled* map; kept only for tests and the memory
    benchmark. Same arguments, same result.
    """
    batch, channels, height, width = features.shape
    k2 = kernel_size * kernel_size
    columns = F.unfold(features, kernel_size, padding=kernel_size // 2)  # [B, C*k2, h*w]
    columns = columns.view(batch, channels * k2, height, width)
    columns = F.interpolate(columns, scale_factor=scale, mode="nearest")
    columns = columns.view(batch, channels, k2, height * scale, width * scale)
    return (columns * kernels[:, None]).sum(dim=2)


# ----------------------------------------------------------------------------- upsamplers
class NearestUpsample(Tappable, nn.Module):
    """Nearest-neighbour upsampling of the deep map (baseline); ignores ``shallow``."""

    def __init__(self, deep_channels: int, shallow_channels: int, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        return F.interpolate(deep, scale_factor=self.scale, mode="nearest")


class CARAFE(Tappable, nn.Module):
    """CARAFE (Wang et al., ICCV 2019) upsampler; kernels predicted from the deep map only.

    Channel compressor (1x1 to ``compressed_channels``), content encoder (``encoder_kernel``
    conv to ``s^2 * k_up^2`` channels), pixel shuffle to ``[B, k_up^2, s*h, s*w]``, softmax over
    the ``k_up^2`` taps, then :func:`reassemble`. Tap: ``kernels``.
    """

    def __init__(
        self,
        deep_channels: int,
        shallow_channels: int,
        scale: int = 2,
        up_kernel: int = 5,
        encoder_kernel: int = 3,
        compressed_channels: int = 64,
    ) -> None:
        super().__init__()
        self.scale, self.up_kernel = scale, up_kernel
        self.compress = nn.Conv2d(deep_channels, compressed_channels, 1)
        self.encoder = nn.Conv2d(
            compressed_channels,
            scale * scale * up_kernel * up_kernel,
            encoder_kernel,
            padding=encoder_kernel // 2,
        )

    def kernels(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        """Normalised kernels ``Tensor[B, k_up^2, s*h, s*w]`` (each sums to 1)."""
        logits = F.pixel_shuffle(self.encoder(self.compress(deep)), self.scale)
        return logits.softmax(dim=1)

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        kernels = self.kernels(deep, shallow)
        self.tap("kernels", kernels)
        return reassemble(deep, kernels, self.up_kernel, self.scale)


class FADEUpsample(Tappable, nn.Module):
    """FADE-style upsampler (after Lu et al., ECCV 2022): kernels from deep *and* shallow maps.

    ``logits = nearest_up(enc_deep(compress_deep(deep))) + enc_shallow(compress_shallow(shallow))``
    - the sum of two convolutions equals one convolution over the concatenation of the
    (nearest-upsampled) semantic map and the detail map, FADE's "semi-shift convolution", but the
    deep half runs at low resolution. Softmax over ``k_up^2`` then :func:`reassemble` of the deep
    map. Tap: ``kernels``.
    """

    def __init__(
        self,
        deep_channels: int,
        shallow_channels: int,
        scale: int = 2,
        up_kernel: int = 5,
        encoder_kernel: int = 3,
        compressed_channels: int = 8,  # speed choice (docs/benchmarks.md); accuracy unmeasured
    ) -> None:
        super().__init__()
        self.scale, self.up_kernel = scale, up_kernel
        k2 = up_kernel * up_kernel
        pad = encoder_kernel // 2
        self.compress_deep = nn.Conv2d(deep_channels, compressed_channels, 1)
        self.compress_shallow = nn.Conv2d(shallow_channels, compressed_channels, 1)
        self.encoder_deep = nn.Conv2d(compressed_channels, k2, encoder_kernel, padding=pad)
        self.encoder_shallow = nn.Conv2d(
            compressed_channels, k2, encoder_kernel, padding=pad, bias=False
        )

    def kernels(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        """Normalised kernels ``Tensor[B, k_up^2, s*h, s*w]`` (each sums to 1)."""
        deep_logits = self.encoder_deep(self.compress_deep(deep))
        deep_logits = F.interpolate(deep_logits, scale_factor=self.scale, mode="nearest")
        shallow_logits = self.encoder_shallow(self.compress_shallow(shallow))
        return (deep_logits + shallow_logits).softmax(dim=1)

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        kernels = self.kernels(deep, shallow)
        self.tap("kernels", kernels)
        return reassemble(deep, kernels, self.up_kernel, self.scale)


class PairConv1x1(nn.Module):
    """1x1 conv over ``concat([a, b])`` computed as ``conv_a(a) + conv_b(b)`` (no concat copy).

    ``forward(a: Tensor[B, Ca, H, W], b: Tensor[B, Cb, H, W]) -> Tensor[B, out_channels, H, W]``.
    """

    def __init__(self, a_channels: int, b_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(a_channels, out_channels, 1)
        self.conv_b = nn.Conv2d(b_channels, out_channels, 1, bias=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.conv_a(a) + self.conv_b(b)


def _pixel_centre_grid(
    height: int, width: int, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised (align_corners=False) x and y coordinates of pixel centres, ``[H, W]`` each."""
    ys = (torch.arange(height, device=like.device, dtype=like.dtype) + 0.5) * (2.0 / height) - 1
    xs = (torch.arange(width, device=like.device, dtype=like.dtype) + 0.5) * (2.0 / width) - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return grid_x, grid_y


def _sample_groups(
    features: torch.Tensor, offsets: torch.Tensor, groups: int, out_size: tuple[int, int]
) -> torch.Tensor:
    """Bilinear sampling of ``features`` at output pixel centres shifted by ``offsets``.

    Args:
        features: ``Tensor[B, C, h, w]`` (C divisible by ``groups``).
        offsets: ``Tensor[B, 2*groups, H, W]`` (x, y) per group, in pixels of ``features``.
        out_size: ``(H, W)``.

    Returns:
        ``Tensor[B, C, H, W]``; zero offsets give ``F.interpolate(..., "bilinear",
        align_corners=False)`` (identity when ``(H, W) == (h, w)``).
    """
    batch, channels, height, width = features.shape
    out_h, out_w = out_size
    grid_x, grid_y = _pixel_centre_grid(out_h, out_w, offsets)
    offsets = offsets.view(batch * groups, 2, out_h, out_w)
    sample_x = grid_x + offsets[:, 0] * (2.0 / width)
    sample_y = grid_y + offsets[:, 1] * (2.0 / height)
    grid = torch.stack([sample_x, sample_y], dim=-1)  # [B*G, H, W, 2]
    grouped = features.reshape(batch * groups, channels // groups, height, width)
    sampled = F.grid_sample(
        grouped, grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return sampled.view(batch, channels, out_h, out_w)


class DySample(Tappable, nn.Module):
    """DySample (Liu et al., ICCV 2023), "lp" style with a static scope factor.

    A 1x1 conv predicts ``s^2`` offsets (x, y) per group at low resolution, scaled by 0.25 (the
    paper's static scope, keeps neighbouring sample points from overlapping); pixel shuffle gives
    one offset per output pixel and group; ``grid_sample`` reads the deep map there. With zero
    offsets it is bilinear upsampling. Tap: ``sample_offsets`` (low-res pixels).
    """

    def __init__(
        self, deep_channels: int, shallow_channels: int, scale: int = 2, groups: int = 4
    ) -> None:
        super().__init__()
        if deep_channels % groups:
            raise ValueError(f"DySample: {deep_channels} channels not divisible by {groups=}")
        self.scale, self.groups = scale, groups
        self.offset = nn.Conv2d(deep_channels, 2 * groups * scale * scale, 1)
        nn.init.normal_(self.offset.weight, std=1e-3)
        nn.init.zeros_(self.offset.bias)

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        offsets = F.pixel_shuffle(self.offset(deep) * 0.25, self.scale)  # [B, 2G, sh, sw]
        self.tap("sample_offsets", offsets)
        out_size = (deep.shape[-2] * self.scale, deep.shape[-1] * self.scale)
        return _sample_groups(deep, offsets, self.groups, out_size)


# ----------------------------------------------------------------------------- alignment
class FlowAlign(Tappable, nn.Module):
    """Align the upsampled semantic map to the detail map with a learned offset field.

    Offsets (x, y per channel group, in pixels) are predicted from both maps, as in FaPN
    (Huang et al., ICCV 2021): ``1x1 conv(concat) -> BN, SiLU -> 3x3 conv -> 2*groups``; the map
    is resampled with ``grid_sample``. The last conv is zero-initialised, so alignment starts as
    the identity. ``hidden`` = 8 keeps the P2 cost low (see docs/benchmarks.md). Taps:
    ``offsets``.
    """

    def __init__(
        self, deep_channels: int, shallow_channels: int, groups: int = 4, hidden: int = 8
    ) -> None:
        super().__init__()
        if deep_channels % groups:
            raise ValueError(f"FlowAlign: {deep_channels} channels not divisible by {groups=}")
        self.groups = groups
        self.activate = nn.Sequential(
            nn.BatchNorm2d(hidden, eps=1e-3, momentum=0.03), nn.SiLU(inplace=True)
        )
        self.project = PairConv1x1(deep_channels, shallow_channels, hidden)
        self.offset = nn.Conv2d(hidden, 2 * groups, 3, padding=1)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, upsampled: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        offsets = self.offset(self.activate(self.project(upsampled, shallow)))
        self.tap("offsets", offsets)
        return _sample_groups(upsampled, offsets, self.groups, upsampled.shape[-2:])


class DeformAlign(Tappable, nn.Module):
    """FaPN-style alignment with a deformable 3x3 convolution (``torchvision.ops.deform_conv2d``).

    Offsets for ``groups`` deformable groups are predicted from ``concat(upsampled, shallow)``
    (zero-initialised: starts as a plain 3x3 conv). Slower on CPU than :class:`FlowAlign`.
    Taps: ``offsets``.
    """

    def __init__(
        self, deep_channels: int, shallow_channels: int, groups: int = 4, hidden: int = 32
    ) -> None:
        super().__init__()
        if deep_channels % groups:
            raise ValueError(f"DeformAlign: {deep_channels} channels not divisible by {groups=}")
        self.compress = ConvBNAct(deep_channels + shallow_channels, hidden, 1)
        self.offset = nn.Conv2d(hidden, 2 * 9 * groups, 3, padding=1)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        self.weight = nn.Parameter(torch.empty(deep_channels, deep_channels, 3, 3))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.bias = nn.Parameter(torch.zeros(deep_channels))

    def forward(self, upsampled: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        offsets = self.offset(self.compress(torch.cat([upsampled, shallow], dim=1)))
        self.tap("offsets", offsets)
        return deform_conv2d(upsampled, offsets, self.weight, self.bias, padding=1)


# ----------------------------------------------------------------------------- fusion
class ConcatFusion(Tappable, nn.Module):
    """PAN-FPN fusion: ``SiLU(BN(conv1x1(concat([deep, shallow]))))`` (the C2f's input conv).

    Computed as ``conv_deep(deep) + conv_shallow(shallow)`` - the same linear map as a 1x1 conv
    over the concatenation, without the concatenated copy.
    ``forward(deep: Tensor[B, Cd, H, W], shallow: Tensor[B, Cs, H, W]) -> Tensor[B, Co, H, W]``.
    """

    def __init__(self, deep_channels: int, shallow_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_deep = nn.Conv2d(deep_channels, out_channels, 1, bias=False)
        self.conv_shallow = nn.Conv2d(shallow_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU(inplace=True)

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv_deep(deep) + self.conv_shallow(shallow)))


class GatedFusion(ConcatFusion):
    """Learned spatial gate between the semantic and the detail map.

    ``g = sigmoid(w_d . deep + w_s . shallow + b)`` (``[B, 1, H, W]``, starts near 0.5) chooses
    per location how much detail to pass on (FADE's gating between encoder and decoder maps);
    the output is :class:`ConcatFusion` of ``((1 - g) * deep, g * shallow)``. Because ``g`` is
    one number per pixel and the conv is 1x1, that equals
    ``SiLU(BN((1 - g) * conv_deep(deep) + g * conv_shallow(shallow)))``, which gates ``Co``
    channels instead of ``Cd + Cs`` and never concatenates. The gate logit is one extra output
    channel of each 1x1 conv (a separate 1-channel conv is slow on CPU). Tap: ``gate``.
    """

    def __init__(self, deep_channels: int, shallow_channels: int, out_channels: int) -> None:
        super().__init__(deep_channels, shallow_channels, out_channels)
        self.out_channels = out_channels
        self.conv_deep = nn.Conv2d(deep_channels, out_channels + 1, 1, bias=False)
        self.conv_shallow = nn.Conv2d(shallow_channels, out_channels + 1, 1, bias=False)
        self.gate_bias = nn.Parameter(torch.zeros(1))
        with torch.no_grad():  # small gate weights: g ~ 0.5 everywhere at the start
            self.conv_deep.weight[-1].mul_(0.01)
            self.conv_shallow.weight[-1].mul_(0.01)

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        projected_deep = self.conv_deep(deep)  # [B, Co + 1, H, W]; last channel: gate logit
        projected_shallow = self.conv_shallow(shallow)
        n = self.out_channels
        gate = torch.sigmoid(projected_deep[:, n:] + projected_shallow[:, n:] + self.gate_bias)
        self.tap("gate", gate)
        mixed = torch.lerp(projected_deep[:, :n], projected_shallow[:, :n], gate)
        return self.act(self.bn(mixed))


# ----------------------------------------------------------------------------- downsampling
class StridedConvDownsample(ConvBNAct):
    """3x3 stride-2 ConvBNAct (baseline bottom-up downsampling)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, stride=2)


class BlurDownsample(nn.Module):
    """Anti-aliased downsampling (Zhang, ICML 2019): low-pass, subsample, then a 3x3 ConvBNAct.

    A fixed depthwise 3x3 binomial filter ``[1, 2, 1]^T [1, 2, 1] / 16`` (reflect padding) is
    applied with stride 2 ("BlurPool": the signal is low-passed before it is subsampled, so
    frequencies above the new Nyquist limit cannot alias), then a stride-1 3x3 ConvBNAct at the
    low resolution - the same FLOPs as the baseline's stride-2 conv.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        taps_1d = torch.tensor([1.0, 2.0, 1.0])
        kernel = (taps_1d[:, None] * taps_1d[None, :]) / 16.0
        self.register_buffer(
            "blur_kernel", kernel.expand(in_channels, 1, 3, 3).clone(), persistent=False
        )
        self.conv = ConvBNAct(in_channels, out_channels, 3, stride=1)

    def blur(self, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
        """The low-pass filter, ``Tensor[B, C, H, W] -> Tensor[B, C, H/stride, W/stride]``."""
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(padded, self.blur_kernel, stride=stride, groups=x.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.blur(x, stride=2))
