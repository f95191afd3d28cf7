"""ssabnet.model.probe: the measurements notebook 02 shows, on hand-made inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssabnet.model import probe


def test_high_frequency_ratio_constant_checkerboard_and_smooth():
    assert probe.high_frequency_ratio(np.full((8, 8), 3.0)) == 0.0
    checkerboard = np.indices((8, 8)).sum(axis=0) % 2  # all power at the Nyquist corner
    assert probe.high_frequency_ratio(checkerboard) == pytest.approx(1.0)
    ramp = np.tile(np.cos(2 * np.pi * np.arange(16) / 16), (16, 1))  # 1/16 cycles per cell
    assert probe.high_frequency_ratio(ramp) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        probe.high_frequency_ratio(np.zeros((2, 2, 2)))


def test_nearest_blocks_have_more_high_frequency_than_bilinear():
    coarse = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    nearest = torch.nn.functional.interpolate(coarse, scale_factor=2, mode="nearest")[0, 0]
    bilinear = torch.nn.functional.interpolate(coarse, scale_factor=2, mode="bilinear")[0, 0]
    assert probe.high_frequency_ratio(nearest) > probe.high_frequency_ratio(bilinear)


def test_mean_inside_boxes_uses_cell_centres():
    energy = np.arange(16, dtype=np.float64).reshape(4, 4)  # stride 4: centres at 2, 6, 10, 14
    # box [0, 0, 8, 4] holds centres (2, 2) and (6, 2): cells (0, 0) and (0, 1)
    assert probe.mean_inside_boxes(energy, np.array([[0, 0, 8, 4]]), stride=4) == 0.5
    # a 1.5 px object between centres: nothing to respond with at this stride
    assert math.isnan(probe.mean_inside_boxes(energy, np.array([[3, 3, 4.5, 4.5]]), stride=4))
    both = np.array([[0, 0, 4, 4], [12, 12, 16, 16]])
    assert probe.mean_inside_boxes(energy, both, stride=4) == (0 + 15) / 2


def test_image_to_input_shape_and_scales():
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    image[..., 0] = 255
    tensor, (sx, sy) = probe.image_to_input(image, long_side=320)
    assert tensor.shape == (1, 3, 256, 320)  # 240 rounds to 256 (multiple of 32)
    assert (sx, sy) == (0.5, 256 / 480)
    assert torch.allclose(tensor[0, 0], torch.ones(256, 320))
    with pytest.raises(ValueError, match="RGB"):
        probe.image_to_input(np.zeros((4, 4), dtype=np.uint8))


def test_compare_upsamplers_on_a_carafe_model():
    from ssabnet import build_model

    torch.manual_seed(0)
    model = build_model("ssabnet-n-carafe", num_classes=2).eval()
    images = torch.rand(1, 3, 64, 96)
    maps = probe.compare_upsamplers(model, images, level="p3")
    assert set(maps) == {"semantic", "nearest", "bilinear", "shallow", "carafe", "kernels"}
    semantic = maps["semantic"]
    assert maps["nearest"].shape[-2:] == (8, 12) and semantic.shape[-2:] == (4, 6)
    # nearest copies each coarse value into a 2x2 block
    assert torch.equal(maps["nearest"][..., ::2, ::2], semantic)
    assert torch.equal(maps["nearest"][..., 1::2, 1::2], semantic)
    # CARAFE kernels are softmax-normalised per output pixel
    assert torch.allclose(maps["kernels"].sum(dim=1), torch.ones(1, 8, 12), atol=1e-5)
    with pytest.raises(ValueError, match="no top-down step at level 'p5'"):
        probe.compare_upsamplers(model, images, level="p5")


def test_compare_upsamplers_nearest_model_has_no_extra_entry():
    from ssabnet import build_model

    model = build_model("baseline-n", num_classes=1).eval()
    maps = probe.compare_upsamplers(model, torch.rand(1, 3, 64, 64), level="p4")
    assert "nearest" in maps and "kernels" not in maps and len(maps) == 4
