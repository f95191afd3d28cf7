"""The detector: output contract, presets, sizes, gradients, determinism, export, state dicts."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ssabnet.model import PRESETS, ModelConfig, build_model, capture_features
from ssabnet.model.build import resolve_config
from ssabnet.model.info import model_info
from ssabnet.ops.anchors import decode_boxes, make_anchors

N_SCALE_PRESETS = sorted(n for n in PRESETS if n.endswith("-n") or "-n-" in n)


def num_anchors(height: int, width: int, strides: tuple[int, ...]) -> int:
    return sum((height // s) * (width // s) for s in strides)


@pytest.fixture(scope="module")
def ssabnet_n() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("ssabnet-n").eval()


def test_preset_names_cover_scales_and_ablations() -> None:
    for scale in "nsm":
        assert f"baseline-{scale}" in PRESETS and f"ssabnet-{scale}" in PRESETS
        for suffix in ("nop2", "noalign", "nogate", "noblur", "carafe", "dysample", "nearest"):
            assert f"ssabnet-{scale}-{suffix}" in PRESETS
    # Ablations switch exactly one part of their base.
    base = PRESETS["ssabnet-s"]
    for name in ("ssabnet-s-noalign", "ssabnet-s-nop2", "ssabnet-s-carafe"):
        diffs = [
            f
            for f in base.__dataclass_fields__
            if f != "name" and getattr(PRESETS[name], f) != getattr(base, f)
        ]
        assert len(diffs) == 1, (name, diffs)


def test_p2_baseline_is_ssabnet_with_every_ssa_part_off_and_additions_add_one() -> None:
    from ssabnet.model.build import P2_ADDITIONS

    for scale in "nsm":
        plain = PRESETS[f"baseline-{scale}-p2"]
        assert plain.use_p2 and plain.upsampler == "nearest" and plain.align == "none"
        assert plain.fusion == "concat" and plain.downsample == "conv" and not plain.reduce_deep
        # ssabnet-S with all SSA operators switched back is the plain P2 network (no confound
        # left between "baseline-S-p2 vs ssabnet-S" other than the SSA parts).
        stripped = resolve_config(
            ModelConfig(
                name=f"ssabnet-{scale}",
                upsampler="nearest",
                align="none",
                fusion="concat",
                downsample="conv",
                reduce_deep=False,
            )
        )
        assert {**vars(stripped), "name": None} == {**vars(plain), "name": None}
        for suffix in P2_ADDITIONS:
            added = PRESETS[f"baseline-{scale}-p2-{suffix}"]
            diffs = [
                f for f in vars(plain) if f != "name" and getattr(added, f) != getattr(plain, f)
            ]
            assert len(diffs) == 1, (suffix, diffs)
            assert getattr(added, diffs[0]) == getattr(PRESETS[f"ssabnet-{scale}"], diffs[0])


def test_p2_baseline_has_the_parameters_of_yolov8_p2() -> None:
    # ultralytics 8.4.190 DetectionModel("yolov8n-p2.yaml", nc=10) has 2,927,880 parameters and
    # yolov8n.yaml 3,012,798; each includes 16 in the fixed DFL projection conv that ours
    # computes as a buffer-free expectation. Measured in .benchenv (docs/results.md).
    params = {
        n: sum(p.numel() for p in build_model(n).parameters())
        for n in ("baseline-n", "baseline-n-p2")
    }
    assert params == {"baseline-n": 3_012_798 - 16, "baseline-n-p2": 2_927_880 - 16}


@pytest.mark.parametrize("name", N_SCALE_PRESETS)
def test_output_contract_for_every_preset(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=3).eval()
    height, width = 128, 160
    with torch.no_grad():
        out = model(torch.rand(2, 3, height, width))
    expected_strides = (4, 8, 16, 32) if PRESETS[name].use_p2 else (8, 16, 32)
    assert model.strides == expected_strides and model.reg_max == 16 and model.num_classes == 3
    a = num_anchors(height, width, expected_strides)
    assert set(out) == {"cls_logits", "box_logits", "anchor_points", "anchor_strides"}
    assert out["cls_logits"].shape == (2, a, 3)
    assert out["box_logits"].shape == (2, a, 4, 16)
    assert out["anchor_points"].shape == (a, 2)
    assert out["anchor_strides"].shape == (a,)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_other_scales_build_with_yolov8_sized_parameter_counts() -> None:
    names = [f"{kind}-{scale}" for kind in ("baseline", "ssabnet") for scale in "nsm"]
    params = {n: sum(p.numel() for p in build_model(n).parameters()) for n in names}
    # YOLOv8n/s have 3.2 M / 11.2 M parameters with 80 classes; ours are built for 10 classes.
    assert 2.8e6 < params["baseline-n"] < 3.3e6
    assert 10.8e6 < params["baseline-s"] < 11.5e6
    assert params["baseline-n"] < params["baseline-s"] < params["baseline-m"]
    assert params["ssabnet-n"] < params["ssabnet-s"] < params["ssabnet-m"]


def test_anchor_layout_fine_to_coarse_row_major(ssabnet_n: torch.nn.Module) -> None:
    with torch.no_grad():
        out = ssabnet_n(torch.rand(1, 3, 64, 96))
    points, strides = out["anchor_points"], out["anchor_strides"]
    # level P2 (stride 4): 16 x 24 cells; first row then second row.
    assert points[0].tolist() == [2.0, 2.0] and points[1].tolist() == [6.0, 2.0]
    assert points[24].tolist() == [2.0, 6.0]
    assert strides[: 16 * 24].eq(4).all() and strides[16 * 24] == 8
    assert points[16 * 24].tolist() == [4.0, 4.0]
    assert points[-1].tolist() == [80.0, 48.0] and strides[-1] == 32  # P5: 2 x 3 cells


def test_make_anchors_hand_computed() -> None:
    points, strides = make_anchors([(1, 2), (1, 1)], [8, 16])
    assert points.tolist() == [[4.0, 4.0], [12.0, 4.0], [8.0, 8.0]]
    assert strides.tolist() == [8.0, 8.0, 16.0]


def test_decode_boxes_hand_computed() -> None:
    logits = torch.full((1, 1, 4, 16), -1e4)
    for side, bin_index in enumerate([1, 2, 3, 0]):  # l, t, r, b in strides
        logits[0, 0, side, bin_index] = 0.0
    boxes = decode_boxes(logits, torch.tensor([[12.0, 20.0]]), torch.tensor([8.0]))
    assert boxes.tolist() == [[[4.0, 4.0, 36.0, 20.0]]]
    # Equal logits: expected distance is the mean bin 7.5 strides on every side.
    uniform = decode_boxes(
        torch.zeros(1, 1, 4, 16), torch.tensor([[0.0, 0.0]]), torch.tensor([2.0])
    )
    torch.testing.assert_close(uniform, torch.tensor([[[-15.0, -15.0, 15.0, 15.0]]]))


def test_class_bias_prior(ssabnet_n: torch.nn.Module) -> None:
    for branch, stride in zip(ssabnet_n.head.cls_branches, ssabnet_n.strides, strict=True):
        expected = math.log(5 / 10 / (640 / stride) ** 2)
        torch.testing.assert_close(branch[-1].bias, torch.full((10,), expected))


def test_odd_but_valid_size_608x1088(ssabnet_n: torch.nn.Module) -> None:
    with torch.no_grad():
        out = ssabnet_n(torch.rand(1, 3, 608, 1088))
    a = num_anchors(608, 1088, (4, 8, 16, 32))
    assert out["cls_logits"].shape == (1, a, 10)
    assert out["anchor_points"][:, 0].max() < 1088 and out["anchor_points"][:, 1].max() < 608


@pytest.mark.parametrize(
    ("height", "width", "message"),
    [
        (600, 640, r"input size 600x640 \(HxW\).*height 576 or 608, width 640"),
        (640, 1000, "input size 640x1000 .*width 992 or 1024"),
        (20, 64, "height 32"),
    ],
)
def test_sizes_not_multiple_of_32_are_rejected(ssabnet_n, height, width, message) -> None:
    with pytest.raises(ValueError, match=message):
        ssabnet_n(torch.rand(1, 3, height, width))


def test_bad_image_shape_is_rejected(ssabnet_n) -> None:
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        ssabnet_n(torch.rand(1, 1, 64, 64))


@pytest.mark.parametrize(
    "name",
    ["baseline-n", "ssabnet-n", "ssabnet-n-carafe", "ssabnet-n-dysample", "ssabnet-n-deform"],
)
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=2).train()
    out = model(torch.rand(2, 3, 64, 96))
    loss = out["cls_logits"].sigmoid().mean() + out["box_logits"].softmax(-1)[..., 3].mean()
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
    # The loss is not degenerate: most parameters get a non-zero gradient.
    nonzero = sum(bool(p.grad.abs().sum() > 0) for p in model.parameters())
    assert nonzero > 0.9 * len(list(model.parameters()))


def test_eval_is_deterministic_and_batch_independent(ssabnet_n) -> None:
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        first, second = ssabnet_n(images), ssabnet_n(images)
        single = ssabnet_n(images[1:])
    for key in first:
        assert torch.equal(first[key], second[key]), key
    torch.testing.assert_close(
        single["cls_logits"][0], first["cls_logits"][1], atol=1e-4, rtol=1e-4
    )
    torch.testing.assert_close(
        single["box_logits"][0], first["box_logits"][1], atol=1e-4, rtol=1e-4
    )


def test_state_dict_round_trip(tmp_path) -> None:
    torch.manual_seed(1)
    source = build_model("ssabnet-n").eval()
    torch.save(source.state_dict(), tmp_path / "model.pt")
    torch.manual_seed(2)
    target = build_model("ssabnet-n").eval()
    target.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a, b = source(images), target(images)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_torch_export_matches_eager(ssabnet_n) -> None:
    images = torch.rand(1, 3, 64, 96)
    exported = torch.export.export(ssabnet_n, (images,))
    with torch.no_grad():
        eager = ssabnet_n(images)
        other = exported.module()(images)
    for key in eager:
        torch.testing.assert_close(other[key], eager[key], rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_jit_trace_matches_eager() -> None:
    torch.manual_seed(0)
    model = build_model("ssabnet-n-deform").eval()
    images = torch.rand(1, 3, 64, 64)
    traced = torch.jit.trace(model, (images,), strict=False)
    with torch.no_grad():
        eager, other = model(images), traced(images)
    for key in eager:
        torch.testing.assert_close(other[key], eager[key], rtol=1e-4, atol=1e-4)


def test_feature_taps(ssabnet_n) -> None:
    images = torch.rand(1, 3, 64, 96)
    outputs, taps = capture_features(ssabnet_n, images)
    with torch.no_grad():
        plain = ssabnet_n(images)
    assert torch.equal(outputs["cls_logits"], plain["cls_logits"])
    shapes = {name: tuple(t.shape) for name, t in taps.items()}
    for level, stride in ((2, 4), (3, 8), (4, 16)):
        h, w = 64 // stride, 96 // stride
        for what in ("upsampled", "aligned", "fused", "out"):
            assert shapes[f"p{level}.{what}"][2:] == (h, w), (level, what)
        assert shapes[f"p{level}.semantic"][2:] == (h // 2, w // 2)
        assert shapes[f"p{level}.kernels"] == (1, 9, h, w)  # k_up = 3
        assert shapes[f"p{level}.offsets"] == (1, 8, h, w)  # 4 groups x (x, y)
        assert shapes[f"p{level}.gate"] == (1, 1, h, w)
        gate = taps[f"p{level}.gate"]
        assert (gate > 0).all() and (gate < 1).all()
        torch.testing.assert_close(taps[f"p{level}.kernels"].sum(1), torch.ones(1, h, w))
    assert shapes["p2.shallow"] == (1, 32, 16, 24)  # C2 of the n backbone: 128 * 0.25
    assert shapes["p5.out"][2:] == (2, 3)
    # Taps are switched off again.
    assert all(getattr(m, "taps", None) is None for m in ssabnet_n.modules())
    _, baseline_taps = capture_features(build_model("baseline-n").eval(), images)
    assert "p3.fused" in baseline_taps and "p2.out" not in baseline_taps
    assert not any(k.endswith((".kernels", ".gate", ".aligned")) for k in baseline_taps)


def test_unknown_names_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'yolo-x'; known: baseline-n"):
        build_model("yolo-x")
    with pytest.raises(ValueError, match=r"unknown upsampler 'bilinear'; known: nearest"):
        build_model(ModelConfig(name="ssabnet-n", upsampler="bilinear"))
    with pytest.raises(ValueError, match=r"unknown align 'dcn'"):
        build_model(ModelConfig(name="ssabnet-n", align="dcn"))
    with pytest.raises(ValueError, match="up_kernel must be odd"):
        build_model(ModelConfig(name="ssabnet-n", up_kernel=4))


def test_config_fields_override_the_preset() -> None:
    cfg = resolve_config(ModelConfig(name="baseline-n", use_p2=True, num_classes=3))
    assert cfg.use_p2 and cfg.upsampler == "nearest" and cfg.width == 0.25 and cfg.num_classes == 3
    model = build_model(ModelConfig(name="baseline-n", upsampler="carafe", up_kernel=5))
    assert model.strides == (8, 16, 32)
    assert model.neck.top_down[0].upsample.up_kernel == 5
    assert build_model("ssabnet-n", num_classes=4).num_classes == 4


def test_config_tree_drives_build() -> None:
    from ssabnet.config import load_config

    cfg = load_config(
        overrides=["model.name=ssabnet-n", "model.fusion=concat", "model.num_classes=5"]
    )
    model = build_model(cfg.model)
    assert model.num_classes == 5 and model.config.fusion == "concat"


def test_backbone_weights(tmp_path) -> None:
    torch.manual_seed(3)
    source = build_model("baseline-n")
    state = {f"backbone.{k}": v for k, v in source.backbone.state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "bb.pt")
    model = build_model(ModelConfig(name="ssabnet-n", backbone_weights=str(tmp_path / "bb.pt")))
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key

    with pytest.raises(FileNotFoundError, match="backbone weights not found"):
        build_model(ModelConfig(name="ssabnet-n", backbone_weights=str(tmp_path / "none.pt")))
    torch.save(build_model("baseline-s").backbone.state_dict(), tmp_path / "s.pt")
    with pytest.raises(ValueError, match=r"s\.pt: backbone weights do not match; shape"):
        build_model(ModelConfig(name="ssabnet-n", backbone_weights=str(tmp_path / "s.pt")))
    partial = dict(source.backbone.state_dict())
    partial.pop("stem.conv.weight")
    partial["extra.weight"] = torch.zeros(1)
    torch.save(partial, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match=r"missing \(1\): stem\.conv\.weight; unexpected \(1\)"):
        build_model(ModelConfig(name="ssabnet-n", backbone_weights=str(tmp_path / "partial.pt")))


def test_model_info_and_cli(capsys) -> None:
    info = model_info(build_model("baseline-n"), 640)
    assert info["params"] == sum(p.numel() for p in build_model("baseline-n").parameters())
    assert 7.5 < info["gflops"] < 9.0  # YOLOv8n: 8.7 GFLOPs with 80 classes
    assert info["strides"] == [8, 16, 32] and info["levels"] == ["P3", "P4", "P5"]
    assert info["num_anchors"] == 8400

    from ssabnet.cli import main

    assert main(["model", "info", "ssabnet-n", "--imgsz", "320", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["strides"] == [4, 8, 16, 32] and data["imgsz"] == [320, 320]
    assert data["params"] > 2e6 and data["gflops"] > 0
    assert main(["model", "info", "baseline-n", "--imgsz", "320"]) == 0
    assert "P3/P4/P5" in capsys.readouterr().out
    assert main(["model", "info", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
