"""Synthetic drone scenes: determinism, VisDrone format, size fit to VisDrone-val."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ssabnet.data import load_dataset
from ssabnet.data.stats import dataset_stats
from ssabnet.data.synthetic import (
    CLASS_STATS,
    GENERATOR_VERSION,
    generate_dataset,
    image_name,
    render_scene,
)

# VisDrone2019-DET-val, evaluated boxes, sqrt(w*h) buckets (shared/data/README.md):
# 2,342 / 9,608 / 14,625 / 11,116 / 1,068 of 38,759
VISDRONE_VAL_SHARES = {
    "very_tiny": 2342 / 38759,
    "tiny": 9608 / 38759,
    "small": 14625 / 38759,
    "medium": 11116 / 38759,
    "large": 1068 / 38759,
}
SHARE_TOLERANCE = 0.03  # absolute, per bucket, on 48 images at 640x480 (measured max gap 0.023)


def test_fixture_dataset_is_readable_visdrone(synthetic_root):
    train = load_dataset(synthetic_root / "train")
    val = load_dataset(synthetic_root / "val")
    assert len(train) == 24 and len(val) == 8
    assert train.info.classes[3] == "car" and train.num_skipped == 0
    assert {(r.width, r.height) for r in train} == {(320, 256)}
    assert train[0].image_id == image_name(0, 0) == "syn0000_000000"
    for rec in train:
        assert rec.boxes.shape[1] == 4
        assert (rec.boxes[:, 2] > rec.boxes[:, 0]).all() and (
            rec.boxes[:, 3] > rec.boxes[:, 1]
        ).all()
        assert (rec.boxes >= 0).all() and (rec.boxes[:, 2] <= 320).all()
        assert (rec.boxes[:, 3] <= 256).all()
    meta = json.loads((synthetic_root / "val" / "synthetic.json").read_text())
    assert meta == {
        "generator": "syndrone",
        "version": GENERATOR_VERSION,
        "seed": 1,
        "num_images": 8,
        "size": [320, 256],
    }


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate_dataset(tmp_path / "a", 3, seed=5, size=(256, 192))
    b = generate_dataset(tmp_path / "b", 3, seed=5, size=(256, 192))
    c = generate_dataset(tmp_path / "c", 3, seed=6, size=(256, 192))
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 7  # 3 images + 3 annotations + synthetic.json
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    img = f"images/{image_name(5, 0)}.jpg"
    assert (a / img).read_bytes() != (c / f"images/{image_name(6, 0)}.jpg").read_bytes()


def test_parallel_workers_give_identical_files(tmp_path):
    one = generate_dataset(tmp_path / "one", 4, seed=9, size=(128, 96))
    two = generate_dataset(tmp_path / "two", 4, seed=9, size=(128, 96), workers=2)
    for path in sorted(p for p in one.rglob("*") if p.is_file()):
        assert path.read_bytes() == (two / path.relative_to(one)).read_bytes()


def test_image_depends_only_on_seed_and_index(tmp_path):
    short = generate_dataset(tmp_path / "short", 1, seed=3, size=(256, 192))
    long = generate_dataset(tmp_path / "long", 2, seed=3, size=(256, 192))
    name = image_name(3, 0)
    assert (short / "images" / f"{name}.jpg").read_bytes() == (
        long / "images" / f"{name}.jpg"
    ).read_bytes()


@pytest.mark.slow
def test_size_distribution_fits_visdrone_val(tmp_path):
    ds = load_dataset(generate_dataset(tmp_path / "fit", 48, seed=0, size=(640, 480)))
    stats = dataset_stats(ds)
    for bucket, share in VISDRONE_VAL_SHARES.items():
        got = stats["size_bucket_shares"][bucket]
        assert abs(got - share) < SHARE_TOLERANCE, (bucket, got, share)
    assert 55 < stats["objects_per_image"]["mean"] < 85  # VisDrone-val: 70.7
    # every class appears; most boxes are under 32 px, many under 16 px
    assert all(n > 0 for n in stats["boxes_per_class"].values())
    small = sum(stats["size_bucket_shares"][b] for b in ("very_tiny", "tiny", "small"))
    assert small > 0.6
    # occlusion, truncation and ignored regions are all present
    assert stats["occlusion"].get("1", 0) > 0 and stats["occlusion"].get("2", 0) > 0
    assert 0 < stats["truncation"].get("1", 0) < 0.1 * stats["evaluated"]
    assert stats["ignore_regions"] > 0


def test_class_statistics_are_a_distribution():
    assert len(CLASS_STATS) == 10
    assert abs(sum(c.frequency for c in CLASS_STATS) - 1) < 0.01


def test_render_scene_contract():
    image, ann = render_scene(np.random.default_rng(0), 200, 150)
    assert image.shape == (150, 200, 3) and image.dtype == np.uint8
    n = len(ann["boxes"])
    assert ann["boxes"].dtype == np.float32 and ann["boxes"].shape == (n, 4)
    assert len(ann["category"]) == len(ann["truncation"]) == len(ann["occlusion"]) == n
    assert set(ann["category"].tolist()) <= set(range(1, 12))
    assert np.array_equal(ann["boxes"], np.round(ann["boxes"]))  # VisDrone stores integers
    assert image.std() > 10  # textured, not a flat colour


def test_objects_are_distinguishable_by_colour(tmp_path):
    """Cars and pedestrians differ in mean appearance: the task is learnable."""
    image, ann = render_scene(np.random.default_rng(1), 640, 480)
    means = {}
    for cat in (1, 4):
        boxes = ann["boxes"][ann["category"] == cat].astype(int)
        crops = [image[y1:y2, x1:x2].reshape(-1, 3) for x1, y1, x2, y2 in boxes]
        if crops:
            means[cat] = np.concatenate(crops).mean(0)
    assert len(means) == 2
    assert np.abs(means[1] - means[4]).max() > 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_images": 0}, "num_images must be >= 1"), ({"size": (32, 32)}, "at least 64x64")],
)
def test_bad_arguments(tmp_path, kwargs, message):
    args = {"num_images": 1, "seed": 0, "size": (128, 128)} | kwargs
    with pytest.raises(ValueError, match=message):
        generate_dataset(tmp_path / "x", **args)
    assert not (tmp_path / "x").exists()
