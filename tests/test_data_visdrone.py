"""VisDrone reader/writer: real-data counts, exact round trips, ignore handling, bad input."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssabnet.data import AnnotationError, load_dataset
from ssabnet.data.visdrone import (
    VISDRONE_CLASSES,
    read_visdrone,
    read_visdrone_annotation,
    write_visdrone,
    write_visdrone_annotation,
    write_visdrone_results,
)

# shared/data/README.md, hand-checked with awk on the files
SAMPLE_PER_CLASS = {
    "pedestrian": 1589,
    "people": 646,
    "bicycle": 307,
    "car": 3412,
    "van": 543,
    "truck": 449,
    "tricycle": 92,
    "awning-tricycle": 82,
    "bus": 72,
    "motor": 1091,
}


def make_visdrone(root: Path, annotations: dict[str, str], size=(100, 80)) -> Path:
    """A tiny VisDrone folder: one grey JPEG of ``size`` per annotation text."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for stem, text in annotations.items():
        Image.new("RGB", size, (90, 90, 90)).save(root / "images" / f"{stem}.jpg")
        if text is not None:
            (root / "annotations" / f"{stem}.txt").write_bytes(text.encode())
    return root


# ----------------------------------------------------------------------------- real data
def test_sample_counts_match_readme(visdrone_sample_root):
    ds = read_visdrone(visdrone_sample_root)
    assert len(ds) == 133 and ds.num_skipped == 0
    lines = sum(r.num_objects + len(r.ignore_regions) for r in ds)
    assert lines == 8504
    assert sum(int(r.evaluated.sum()) for r in ds) == 8283
    assert sum(len(r.ignore_regions) for r in ds) == 191  # category 0
    assert sum(int((r.labels == -1).sum()) for r in ds) == 30  # category 11 "others"
    labels = np.concatenate([r.labels[r.evaluated] for r in ds])
    counts = np.bincount(labels, minlength=10)
    assert dict(zip(VISDRONE_CLASSES, counts.tolist(), strict=True)) == SAMPLE_PER_CLASS
    sizes = {(r.width, r.height) for r in ds}
    assert sizes == {(1400, 1050), (2000, 1500), (1360, 765), (1920, 1080)}


def test_sample_first_file_boxes(visdrone_sample_root):
    ds = read_visdrone(visdrone_sample_root)
    rec = ds.by_id()["0000001_02999_d_0000005"]
    assert (rec.width, rec.height) == (1920, 1080)
    # file lines 1-2: 871,572,54,92,1,4,0,0 and 948,592,62,92,1,4,0,0
    np.testing.assert_array_equal(rec.boxes[:2], [[871, 572, 925, 664], [948, 592, 1010, 684]])
    assert rec.labels[:2].tolist() == [3, 3]  # car
    assert rec.boxes.dtype == np.float32 and rec.labels.dtype == np.int64
    assert rec.num_objects + len(rec.ignore_regions) == 128  # lines in the file
    # first category-0 line: 550,248,46,67,0,0,0,0
    assert [550, 248, 596, 315] in rec.ignore_regions.tolist()


def test_sample_writer_reproduces_every_file_byte_for_byte(visdrone_sample_root, tmp_path):
    ds = read_visdrone(visdrone_sample_root)
    write_visdrone(ds, tmp_path)
    for rec in ds:
        original = (visdrone_sample_root / "annotations" / f"{rec.image_id}.txt").read_bytes()
        assert (tmp_path / f"{rec.image_id}.txt").read_bytes() == original, rec.image_id


def test_val_gt_annotation_only(visdrone_val_gt_root):
    with pytest.warns(UserWarning, match="annotation-only"):
        ds = load_dataset(visdrone_val_gt_root)
    assert len(ds) == 548
    assert sum(int(r.evaluated.sum()) for r in ds) == 38759
    assert sum(len(r.ignore_regions) for r in ds) == 1378
    assert sum(int((r.labels == -1).sum()) for r in ds) == 32
    assert all(r.width == 0 and r.height == 0 for r in ds)


def test_catalog_name_loads_sample(visdrone_sample_root):
    ds = load_dataset("visdrone-sample")
    assert ds.info.name == "visdrone-sample" and len(ds) == 133
    assert ds.root.resolve() == visdrone_sample_root.resolve()


# ----------------------------------------------------------------------------- semantics
def test_ignore_semantics(tmp_path):
    text = (
        "10,10,5,6,1,4,0,1\r\n"  # car, evaluated
        "20,20,4,4,0,4,1,2\r\n"  # car with score 0 -> ignored object
        "30,30,10,10,0,0,0,0\r\n"  # ignored region
        "40,40,3,7,0,11,0,0\r\n"  # others -> label -1, ignored
    )
    root = make_visdrone(tmp_path / "ds", {"a": text})
    rec = read_visdrone(root)[0]
    assert rec.labels.tolist() == [3, 3, -1]
    assert rec.ignore.tolist() == [False, True, True]
    assert rec.evaluated.tolist() == [True, False, False]
    assert rec.truncation.tolist() == [0, 1, 0] and rec.occlusion.tolist() == [1, 2, 0]
    np.testing.assert_array_equal(rec.ignore_regions, [[30, 30, 40, 40]])
    np.testing.assert_array_equal(rec.boxes[0], [10, 10, 15, 16])
    out = write_visdrone_annotation(rec, tmp_path / "a.txt")
    assert out.read_bytes() == text.encode()  # region stays on its original line


def test_trailing_comma_lf_and_blank_lines_accepted(tmp_path):
    root = make_visdrone(tmp_path / "ds", {"a": "1,2,3,4,1,1,0,0,\n\n5,6,7,8,1,2,0,1,\n"})
    rec = read_visdrone(root)[0]
    np.testing.assert_array_equal(rec.boxes, [[1, 2, 4, 6], [5, 6, 12, 14]])
    # rows are reproduced (canonical form: CRLF, no trailing comma)
    out = write_visdrone_annotation(rec, tmp_path / "a.txt").read_bytes()
    assert out == b"1,2,3,4,1,1,0,0\r\n5,6,7,8,1,2,0,1\r\n"


def test_utf8_bom_is_tolerated_and_binary_rejected(tmp_path):
    root = make_visdrone(tmp_path / "ds", {"a": "\ufeff1,2,3,4,1,1,0,0\r\n"})
    np.testing.assert_array_equal(read_visdrone(root)[0].boxes, [[1, 2, 4, 6]])
    (root / "annotations" / "a.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(AnnotationError, match=r"a\.txt: not a UTF-8 text file"):
        read_visdrone(root)


def test_box_touching_border_within_one_pixel_is_accepted(tmp_path):
    root = make_visdrone(tmp_path / "ds", {"a": "-1,0,101,81,1,1,0,0\r\n"}, size=(100, 80))
    assert read_visdrone(root)[0].num_objects == 1


def test_empty_annotation_file(tmp_path):
    root = make_visdrone(tmp_path / "ds", {"a": ""})
    rec = read_visdrone(root)[0]
    assert rec.num_objects == 0 and rec.boxes.shape == (0, 4) and rec.ignore_regions.shape == (0, 4)


# ----------------------------------------------------------------------------- bad input
BAD_LINES = [
    ("1,2,3,4,1,1,0", "expected 8 comma-separated integers"),
    ("1,2,3,4,1,1,0,0,0", "expected 8 comma-separated integers"),
    ("1,2,x,4,1,1,0,0", "field 3 ('x') is not an integer"),
    ("1,2,nan,4,1,1,0,0", "field 3 ('nan') is not an integer"),
    ("1,2,3.5,4,1,1,0,0", "is not an integer"),
    ("1,2,0,4,1,1,0,0", "zero or negative size"),
    ("1,2,3,-4,1,1,0,0", "zero or negative size"),
    ("1,2,3,4,1,12,0,0", "unknown object_category 12"),
    ("1,2,3,4,1,-1,0,0", "unknown object_category -1"),
    ("1,2,3,4,2,1,0,0", "score must be 0 or 1"),
    ("1,2,3,4,1,1,2,0", "truncation must be 0 or 1"),
    ("1,2,3,4,1,1,0,3", "occlusion must be 0, 1 or 2"),
    ("90,10,20,10,1,1,0,0", "lies outside the 100x80 image"),
    ("-5,10,20,10,1,1,0,0", "lies outside"),
    ("10,75,5,10,1,1,0,0", "lies outside"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_bad_line_names_file_and_line(tmp_path, line, message):
    root = make_visdrone(tmp_path / "ds", {"a": f"1,1,2,2,1,1,0,0\r\n{line}\r\n"})
    with pytest.raises(AnnotationError, match=re.escape(message)) as info:
        read_visdrone(root)
    assert info.value.line == 2
    assert info.value.path.endswith("a.txt")
    assert "a.txt:2:" in str(info.value)


@pytest.mark.parametrize(("line", "message"), BAD_LINES[:3])
def test_bad_line_skipped_with_one_warning(tmp_path, line, message):
    text = f"1,1,2,2,1,1,0,0\r\n{line}\r\n3,3,2,2,1,4,0,0\r\n"
    root = make_visdrone(tmp_path / "ds", {"a": text, "b": f"{line}\r\n"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = read_visdrone(root, skip_invalid=True)
    summaries = [w for w in caught if "skipped 2 lines" in str(w.message)]
    assert len(summaries) == 1
    assert ds.num_skipped == 2 and len(ds.skipped) == 2
    assert ds.by_id()["a"].labels.tolist() == [0, 3]
    assert ds.by_id()["b"].num_objects == 0


def test_missing_annotation_file(tmp_path):
    root = make_visdrone(tmp_path / "ds", {"a": "1,1,2,2,1,1,0,0\r\n", "b": None})
    with pytest.raises(AnnotationError, match=r"b\.txt: missing annotation file for image"):
        read_visdrone(root)
    with pytest.warns(UserWarning, match="skipped 1 image"):
        ds = read_visdrone(root, skip_invalid=True)
    assert [r.image_id for r in ds] == ["a"] and ds.num_skipped == 1


def test_annotation_without_image(tmp_path):
    root = make_visdrone(tmp_path / "ds", {"a": "1,1,2,2,1,1,0,0\r\n"})
    (root / "annotations" / "zz.txt").write_text("1,1,2,2,1,1,0,0\r\n")
    with pytest.raises(AnnotationError, match=r"zz\.txt: annotation file has no image"):
        read_visdrone(root)


def test_two_images_with_one_stem(tmp_path):
    root = make_visdrone(tmp_path / "ds", {"a": ""})
    Image.new("RGB", (10, 10)).save(root / "images" / "a.png")
    with pytest.raises(AnnotationError, match="several images share a name stem"):
        read_visdrone(root)


def test_corrupt_image(tmp_path):
    root = make_visdrone(tmp_path / "ds", {"a": "1,1,2,2,1,1,0,0\r\n", "b": ""})
    (root / "images" / "b.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(AnnotationError, match=r"b\.jpg: unreadable or corrupt image"):
        read_visdrone(root)


def test_truncated_jpeg_found_only_by_verify(tmp_path):
    root = make_visdrone(tmp_path / "ds", {"a": "1,1,2,2,1,1,0,0\r\n"}, size=(300, 200))
    path = root / "images" / "a.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:1500])  # header intact, data cut
    assert read_visdrone(root)[0].width == 300  # header-only read is cheap and succeeds
    with pytest.raises(AnnotationError, match="unreadable or corrupt image"):
        read_visdrone(root, verify=True)


def test_not_a_visdrone_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotations/ is missing"):
        read_visdrone(tmp_path)


def test_standalone_annotation_reader_checks_bounds_only_with_size(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("500,500,10,10,1,1,0,0\n")
    assert read_visdrone_annotation(path, tmp_path / "x.jpg", None, None).num_objects == 1
    with pytest.raises(AnnotationError, match="outside"):
        read_visdrone_annotation(path, tmp_path / "x.jpg", 100, 100)


# ----------------------------------------------------------------------------- results
def test_write_results_official_format(tmp_path):
    predictions = {
        "img1": {
            "boxes": np.array([[10, 20, 30, 60], [0, 0, 5.5, 4.25]]),
            "scores": np.array([0.25, 0.9]),
            "labels": np.array([3, 9]),
        }
    }
    write_visdrone_results(predictions, tmp_path, image_ids=["img1", "img2"])
    lines = (tmp_path / "img1.txt").read_text().splitlines()
    assert lines == [
        "0.00,0.00,5.50,4.25,0.9000,10,-1,-1",  # highest score first, label 9 -> category 10
        "10.00,20.00,20.00,40.00,0.2500,4,-1,-1",
    ]
    assert (tmp_path / "img2.txt").read_text() == ""


def test_write_results_accepts_torch_and_rejects_bad_labels(tmp_path):
    torch = pytest.importorskip("torch")
    ok = {"a": {"boxes": torch.zeros(1, 4), "scores": torch.ones(1), "labels": torch.zeros(1)}}
    write_visdrone_results(ok, tmp_path)
    assert (tmp_path / "a.txt").read_text().endswith(",1,-1,-1\n")
    bad = {"a": {"boxes": np.zeros((1, 4)), "scores": np.ones(1), "labels": np.array([10])}}
    with pytest.raises(ValueError, match="label out of range"):
        write_visdrone_results(bad, tmp_path)
