"""SSA operators: invariants that pin down each one (exact where the math allows)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ssabnet.model.ssa import (
    CARAFE,
    BlurDownsample,
    ConcatFusion,
    DeformAlign,
    DySample,
    FADEUpsample,
    FlowAlign,
    GatedFusion,
    NearestUpsample,
    StridedConvDownsample,
    reassemble,
    reassemble_unfold,
)


def one_hot_centre_kernels(batch: int, kernel_size: int, height: int, width: int) -> torch.Tensor:
    kernels = torch.zeros(batch, kernel_size * kernel_size, height, width)
    kernels[:, (kernel_size * kernel_size) // 2] = 1.0
    return kernels


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("scale", [2, 3])
def test_reassemble_one_hot_centre_is_nearest_exactly(kernel_size: int, scale: int) -> None:
    torch.manual_seed(0)
    features = torch.randn(2, 5, 6, 7)
    kernels = one_hot_centre_kernels(2, kernel_size, 6 * scale, 7 * scale)
    out = reassemble(features, kernels, kernel_size, scale)
    nearest = F.interpolate(features, scale_factor=scale, mode="nearest")
    assert out.shape == nearest.shape
    assert torch.equal(out, nearest)


def test_reassemble_one_hot_offset_kernel_is_shifted_nearest() -> None:
    # All weight on tap (dy, dx) = (0, 2) of a 3x3 kernel: read x[y - 1, x + 1] (zero outside).
    features = torch.arange(12.0).view(1, 1, 3, 4)
    kernels = torch.zeros(1, 9, 6, 8)
    kernels[:, 2] = 1.0
    out = reassemble(features, kernels, 3, 2)
    shifted = F.pad(features, (1, 1, 1, 1))[:, :, 0:3, 2:6]
    assert torch.equal(out, F.interpolate(shifted, scale_factor=2, mode="nearest"))
    assert out[0, 0, 0, 0] == 0 and out[0, 0, 2, 0] == 1.0  # row 1 of out reads row 0, col 1


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_reassemble_matches_unfold_reference_and_gradients(kernel_size: int) -> None:
    torch.manual_seed(1)
    features = torch.randn(2, 4, 5, 6, requires_grad=True)
    logits = torch.randn(2, kernel_size**2, 10, 12, requires_grad=True)
    kernels = logits.softmax(dim=1)
    out = reassemble(features, kernels, kernel_size, 2)
    ref = reassemble_unfold(features, kernels, kernel_size, 2)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum(), (features, logits), retain_graph=True)
    grads_ref = torch.autograd.grad((ref * weights).sum(), (features, logits))
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)


def test_reassemble_uniform_kernels_average_the_neighbourhood() -> None:
    torch.manual_seed(2)
    features = torch.randn(1, 3, 4, 5)
    kernels = torch.full((1, 9, 8, 10), 1 / 9)
    mean = F.avg_pool2d(features, 3, stride=1, padding=1, count_include_pad=True)
    expected = F.interpolate(mean, scale_factor=2, mode="nearest")
    torch.testing.assert_close(reassemble(features, kernels, 3, 2), expected)


@pytest.mark.parametrize("upsampler_cls", [CARAFE, FADEUpsample])
def test_content_aware_upsampler_with_one_hot_kernels_is_nearest(upsampler_cls, monkeypatch):
    torch.manual_seed(3)
    module = upsampler_cls(8, 4, up_kernel=5).eval()
    deep, shallow = torch.randn(2, 8, 5, 6), torch.randn(2, 4, 10, 12)
    kernels = module.kernels(deep, shallow)
    assert kernels.shape == (2, 25, 10, 12)
    torch.testing.assert_close(kernels.sum(dim=1), torch.ones(2, 10, 12))
    monkeypatch.setattr(module, "kernels", lambda d, s: one_hot_centre_kernels(2, 5, 10, 12))
    assert torch.equal(module(deep, shallow), F.interpolate(deep, scale_factor=2))


def test_fade_kernels_depend_on_the_shallow_map_but_carafe_does_not() -> None:
    torch.manual_seed(4)
    deep = torch.randn(1, 8, 4, 4)
    shallow_a, shallow_b = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    fade, carafe = FADEUpsample(8, 4).eval(), CARAFE(8, 4).eval()
    assert not torch.allclose(fade.kernels(deep, shallow_a), fade.kernels(deep, shallow_b))
    assert torch.equal(carafe.kernels(deep, shallow_a), carafe.kernels(deep, shallow_b))


def test_dysample_with_zero_offsets_is_bilinear_upsampling() -> None:
    torch.manual_seed(5)
    module = DySample(8, 4, groups=4).eval()
    torch.nn.init.zeros_(module.offset.weight)
    deep = torch.randn(2, 8, 5, 7)
    out = module(deep, torch.zeros(2, 4, 10, 14))
    expected = F.interpolate(deep, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_flow_align_starts_as_identity_and_moves_with_offsets() -> None:
    torch.manual_seed(6)
    module = FlowAlign(8, 4, groups=2).eval()
    upsampled, shallow = torch.randn(1, 8, 6, 9), torch.randn(1, 4, 6, 9)
    torch.testing.assert_close(module(upsampled, shallow), upsampled, rtol=1e-5, atol=1e-5)
    # A bias of +1 px on the x offset of every group reads one pixel to the right.
    with torch.no_grad():
        module.offset.bias.copy_(torch.tensor([1.0, 0.0, 1.0, 0.0]))
    out = module(upsampled, shallow)
    torch.testing.assert_close(out[..., :-1], upsampled[..., 1:], rtol=1e-5, atol=1e-5)


def test_deform_align_with_zero_offsets_is_a_plain_conv() -> None:
    torch.manual_seed(7)
    module = DeformAlign(8, 4, groups=2).eval()
    upsampled, shallow = torch.randn(1, 8, 6, 5), torch.randn(1, 4, 6, 5)
    expected = F.conv2d(upsampled, module.weight, module.bias, padding=1)
    torch.testing.assert_close(module(upsampled, shallow), expected, rtol=1e-4, atol=1e-5)


def test_concat_fusion_is_a_1x1_conv_over_the_concatenation() -> None:
    torch.manual_seed(8)
    deep, shallow = torch.randn(2, 6, 4, 4), torch.randn(2, 3, 4, 4)
    fusion = ConcatFusion(6, 3, 5).eval()
    weight = torch.cat([fusion.conv_deep.weight, fusion.conv_shallow.weight], dim=1)
    expected = fusion.act(fusion.bn(F.conv2d(torch.cat([deep, shallow], dim=1), weight)))
    torch.testing.assert_close(fusion(deep, shallow), expected)


def test_gated_fusion_equals_concat_fusion_of_the_gated_maps() -> None:
    torch.manual_seed(9)
    deep, shallow = torch.randn(2, 6, 4, 4), torch.randn(2, 3, 4, 4)
    gated = GatedFusion(6, 3, 5).eval()
    with torch.no_grad():
        gated.conv_deep.weight[-1].normal_()  # a gate that varies over the image
        gated.gate_bias.fill_(0.3)
    gate_logit = (
        F.conv2d(deep, gated.conv_deep.weight[-1:])
        + F.conv2d(shallow, gated.conv_shallow.weight[-1:])
        + 0.3
    )
    gate = torch.sigmoid(gate_logit)
    assert gate.min() < 0.3 and gate.max() > 0.7
    weight = torch.cat([gated.conv_deep.weight[:-1], gated.conv_shallow.weight[:-1]], dim=1)
    concat = torch.cat([(1 - gate) * deep, gate * shallow], dim=1)
    expected = gated.act(gated.bn(F.conv2d(concat, weight)))
    torch.testing.assert_close(gated(deep, shallow), expected, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        gated.gate_bias.fill_(100.0)  # gate -> 1: the deep map has no influence at all
    torch.testing.assert_close(gated(deep, shallow), gated(torch.zeros_like(deep), shallow))


def test_blur_removes_the_nyquist_checkerboard() -> None:
    # [1, 2, 1] / 4 maps ...0, 1, 0... to 0.5 everywhere (also at reflect-padded borders), so the
    # stride-2 conv after it sees a constant: the checkerboard cannot alias into it.
    ys, xs = torch.meshgrid(torch.arange(8), torch.arange(10), indexing="ij")
    checkerboard = ((ys + xs) % 2).float().expand(1, 3, 8, 10)
    module = BlurDownsample(3, 4).eval()
    torch.testing.assert_close(module.blur(checkerboard), torch.full((1, 3, 8, 10), 0.5))
    assert module(checkerboard).shape == (1, 4, 4, 5)
    assert StridedConvDownsample(3, 4)(checkerboard).shape == (1, 4, 4, 5)


def test_nearest_upsample_ignores_shallow() -> None:
    deep = torch.randn(1, 2, 3, 3)
    out = NearestUpsample(2, 5)(deep, torch.randn(1, 5, 6, 6))
    assert torch.equal(out, F.interpolate(deep, scale_factor=2))
