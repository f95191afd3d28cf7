"""COCO export/import: exact VisDrone -> COCO -> VisDrone round trip, id scheme, bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from ssabnet.data import AnnotationError, load_dataset
from ssabnet.data.coco import coco_image_ids, read_coco, records_to_coco, write_coco_json
from ssabnet.data.record import DatasetInfo, ImageRecord
from ssabnet.data.visdrone import read_visdrone, write_visdrone


def test_visdrone_coco_visdrone_round_trip_on_all_real_files(visdrone_sample_root, tmp_path):
    ds = read_visdrone(visdrone_sample_root)
    path = write_coco_json(ds, tmp_path / "sample.json")
    back = load_dataset(path)
    assert len(back) == 133
    write_visdrone(back, tmp_path / "annotations")
    for rec, rec2 in zip(ds, back, strict=True):
        assert rec.image_id == rec2.image_id
        assert rec2.image_path.resolve() == rec.image_path.resolve()
        np.testing.assert_array_equal(rec.boxes, rec2.boxes)
        np.testing.assert_array_equal(rec.labels, rec2.labels)
        np.testing.assert_array_equal(rec.ignore, rec2.ignore)
        np.testing.assert_array_equal(rec.ignore_regions, rec2.ignore_regions)
        original = (visdrone_sample_root / "annotations" / f"{rec.image_id}.txt").read_bytes()
        rows = [line.split(b",") for line in original.splitlines()]
        rewritten = (tmp_path / "annotations" / f"{rec.image_id}.txt").read_bytes()
        assert [line.split(b",") for line in rewritten.splitlines()] == rows
        assert rewritten == original  # canonical CRLF files come back byte for byte


def test_export_scheme(visdrone_sample_root):
    ds = read_visdrone(visdrone_sample_root)
    coco = records_to_coco(ds.info, ds.records, ds.root)
    assert [c["id"] for c in coco["categories"]] == list(range(1, 11))
    ids = {im["ssabnet_id"]: im["id"] for im in coco["images"]}
    assert ids == coco_image_ids(ds.records)
    assert ids["0000001_02999_d_0000005"] == 1  # sorted string ids, numbered from 1
    first = coco["images"][0]
    assert first["file_name"] == "images/0000001_02999_d_0000005.jpg"
    assert (first["width"], first["height"]) == (1920, 1080)
    ann = coco["annotations"][0]
    assert ann["bbox"] == [871, 572, 54, 92] and ann["category_id"] == 4 and ann["area"] == 4968
    assert ann["iscrowd"] == 0 and ann["native"] == {"category": 4, "score": 1, "line": 0}
    others = [a for a in coco["annotations"] if a["category_id"] == 11]
    assert len(others) == 30 and all(a["iscrowd"] == a["ignore"] == 1 for a in others)
    assert sum(len(im["ignore_regions"]) for im in coco["images"]) == 191
    assert len(coco["annotations"]) == 8504 - 191


def test_pycocotools_reads_export(visdrone_sample_root, tmp_path):
    coco_api = pytest.importorskip("pycocotools.coco")
    ds = read_visdrone(visdrone_sample_root)
    path = write_coco_json(ds, tmp_path / "s.json")
    api = coco_api.COCO(str(path))
    assert len(api.getImgIds()) == 133
    assert len(api.getAnnIds(catIds=[4], iscrowd=False)) == 3412  # evaluated cars


def test_image_ids_are_stable_and_unique():
    recs = [ImageRecord("b", "b.jpg", 10, 10), ImageRecord("a", "a.jpg", 10, 10)]
    assert coco_image_ids(recs) == {"a": 1, "b": 2}
    assert coco_image_ids(reversed(recs)) == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="duplicate image_id"):
        coco_image_ids(recs + [ImageRecord("a", "c.jpg", 10, 10)])


def test_synthetic_round_trip(synthetic_root, tmp_path):
    ds = load_dataset(synthetic_root / "val")
    back = read_coco(write_coco_json(ds, tmp_path / "v.json"))
    write_visdrone(back, tmp_path / "ann")
    for rec in ds:
        original = (synthetic_root / "val" / "annotations" / f"{rec.image_id}.txt").read_bytes()
        assert (tmp_path / "ann" / f"{rec.image_id}.txt").read_bytes() == original


def make_plain_coco(tmp_path, annotations, categories=None, width=50, height=40):
    (tmp_path / "images").mkdir(exist_ok=True)
    Image.new("RGB", (width, height)).save(tmp_path / "images" / "x.jpg")
    coco = {
        "images": [{"id": 7, "file_name": "x.jpg", "width": width, "height": height}],
        "annotations": annotations,
        "categories": categories or [{"id": 3, "name": "b"}, {"id": 1, "name": "a"}],
    }
    path = tmp_path / "annotations" / "instances.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(coco))
    return path


def test_plain_coco_import(tmp_path):
    anns = [
        {"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 3, 4], "iscrowd": 0},
        {"id": 2, "image_id": 7, "category_id": 1, "bbox": [5.5, 6, 7, 8], "iscrowd": 1},
    ]
    path = make_plain_coco(tmp_path, anns)
    ds = load_dataset(tmp_path)  # detects annotations/instances.json
    assert ds.info.classes == ("a", "b") and ds.info.native_ids == (1, 3)
    rec = ds[0]
    assert rec.image_id == "x" and rec.image_path == tmp_path / "images" / "x.jpg"
    np.testing.assert_array_equal(rec.boxes, [[1, 2, 4, 6], [5.5, 6, 12.5, 14]])
    assert rec.labels.tolist() == [1, 0] and rec.ignore.tolist() == [False, True]
    assert rec.truncation.tolist() == [-1, -1]
    assert read_coco(path).num_skipped == 0


@pytest.mark.parametrize(
    ("ann", "message"),
    [
        ({"category_id": 9, "bbox": [1, 2, 3, 4]}, "annotation id 1 (image 'x.jpg'): unknown"),
        ({"category_id": 1, "bbox": [1, 2, float("nan"), 4]}, "4 finite numbers"),
        ({"category_id": 1, "bbox": [1, 2, 3]}, "4 finite numbers"),
        ({"category_id": 1, "bbox": [1, 2, 0, 4]}, "zero or negative size"),
        ({"category_id": 1, "bbox": [45, 2, 10, 4]}, "outside the 50x40 image"),
        ({"category_id": 1, "bbox": [1, 2, 3, 4], "image_id": 99}, "image_id 99 not in images"),
    ],
)
def test_bad_coco_annotation(tmp_path, ann, message):
    path = make_plain_coco(tmp_path, [{"id": 1, "image_id": 7, **ann}])
    with pytest.raises(AnnotationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_coco(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = read_coco(path, skip_invalid=True)
    assert ds.num_skipped == 1 and len(caught) == 1


def test_missing_image_and_bad_json(tmp_path):
    path = make_plain_coco(tmp_path, [])
    (tmp_path / "images" / "x.jpg").unlink()
    with pytest.raises(AnnotationError, match="image 'x.jpg': file not found"):
        read_coco(path, image_root=tmp_path / "images")
    path.write_text("{not json")
    with pytest.raises(AnnotationError, match="not valid JSON"):
        read_coco(path)
    path.write_text('{"images": []}')
    with pytest.raises(AnnotationError, match="not a COCO detection file"):
        read_coco(path)


def test_records_without_native_fields(tmp_path):
    info = DatasetInfo("t", "visdrone", ("a", "b"), (1, 2))
    rec = ImageRecord(
        "r",
        tmp_path / "r.jpg",
        20,
        20,
        boxes=np.array([[1, 1, 5, 5], [2, 2, 4, 4]], np.float32),
        labels=np.array([1, -1]),
        ignore=np.array([False, True]),
        truncation=np.array([0, 0]),
        occlusion=np.array([0, 0]),
    )
    coco = records_to_coco(info, [rec])
    assert [a["category_id"] for a in coco["annotations"]] == [2, -1]
    assert coco["annotations"][1]["iscrowd"] == 1
