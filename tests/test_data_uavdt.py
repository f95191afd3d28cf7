"""UAVDT reader on the real M0101 ground truth with generated 1024x540 frames."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssabnet.data import AnnotationError, load_dataset
from ssabnet.data.uavdt import UAVDT_CLASSES, read_uavdt


def write_frames(seq_dir: Path, frames, size=(1024, 540)) -> None:
    seq_dir.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        Image.new("RGB", size, (80, 80, 80)).save(seq_dir / f"img{frame:06d}.jpg", quality=50)


@pytest.fixture
def uavdt_root(shared_data_dir, tmp_path) -> Path:
    """Official layout with the real M0101 GT and frames 1, 2, 3 and 407 only."""
    gt = shared_data_dir / "uavdt_gt_only" / "UAV-benchmark-MOTD_v1.0"
    if not gt.is_dir():
        pytest.skip(f"UAVDT GT not found at {gt}")
    root = tmp_path / "UAVDT"
    shutil.copytree(gt, root / "UAV-benchmark-MOTD_v1.0")
    write_frames(root / "UAV-benchmark-M" / "M0101", [1, 2, 3, 407])
    return root


def test_reads_frames_with_real_gt(uavdt_root):
    with pytest.warns(UserWarning, match="403 annotated frames have no image file"):
        ds = load_dataset(uavdt_root)
    assert ds.info.format == "uavdt" and ds.info.classes == UAVDT_CLASSES
    assert [r.image_id for r in ds] == [
        "M0101/img000001",
        "M0101/img000002",
        "M0101/img000003",
        "M0101/img000407",
    ]
    first = ds[0]
    assert (first.width, first.height) == (1024, 540)
    # awk -F, '$1==1' M0101_gt_whole.txt: 15 rows, 13 car / 1 truck / 1 bus
    assert first.num_objects == 15
    assert np.bincount(first.labels, minlength=3).tolist() == [13, 1, 1]
    # line 1: 1,1,141,147,106,45,1,1,3  (frame 1, target 1, bus)
    np.testing.assert_array_equal(first.boxes[0], [141, 147, 247, 192])
    assert first.labels[0] == 2 and first.native["target_id"][0] == 1
    assert first.truncation[0] == 1 and first.occlusion[0] == 1  # raw UAVDT codes
    # M0101_gt_ignore.txt frame 1: 914,189,105,54 / 956,480,64,58 / 788,291,121,113
    np.testing.assert_array_equal(
        first.ignore_regions, [[914, 189, 1019, 243], [956, 480, 1020, 538], [788, 291, 909, 404]]
    )
    last = ds[3]
    assert last.num_objects == 9 and len(last.ignore_regions) == 1
    assert not any(r.ignore.any() for r in ds)


def test_sequence_filter_and_missing_sequence(uavdt_root):
    write_frames(uavdt_root / "UAV-benchmark-M" / "M0202", [1], size=(1024, 540))
    gt = uavdt_root / "UAV-benchmark-MOTD_v1.0" / "GT"
    (gt / "M0202_gt_whole.txt").write_text("1,1,10,10,20,20,1,1,1\n")
    (gt / "M0202_gt_ignore.txt").write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        both = read_uavdt(uavdt_root)
        only = read_uavdt(uavdt_root, sequences=("M0202",))
    assert len(both) == 5 and [r.image_id for r in only] == ["M0202/img000001"]
    with pytest.raises(FileNotFoundError, match="sequence folders missing: M0999"):
        read_uavdt(uavdt_root, sequences=("M0101", "M0999"))


def test_missing_ignore_file(uavdt_root):
    (uavdt_root / "UAV-benchmark-MOTD_v1.0" / "GT" / "M0101_gt_ignore.txt").unlink()
    with pytest.raises(AnnotationError, match="M0101_gt_ignore.txt: missing annotation file"):
        read_uavdt(uavdt_root)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1,1,10,10,20,20,1,1", "expected 9 comma-separated integers"),
        ("1,1,10,10,x,20,1,1,1", r"field 5 \('x'\) is not an integer"),
        ("1,1,10,10,0,20,1,1,1", "zero or negative size"),
        ("1,1,10,10,20,20,1,1,4", "unknown object_category 4"),
        ("0,1,10,10,20,20,1,1,1", "frame_index must be >= 1"),
        ("1,1,1010,10,20,20,1,1,1", "outside the 1024x540 frame"),
    ],
)
def test_bad_gt_line(tmp_path, line, message):
    root = tmp_path / "u"
    write_frames(root / "UAV-benchmark-M" / "M0001", [1], size=(1024, 540))
    (root / "GT").mkdir()
    (root / "GT" / "M0001_gt_whole.txt").write_text(f"1,1,10,10,20,20,1,1,1\n{line}\n")
    (root / "GT" / "M0001_gt_ignore.txt").write_text("")
    with pytest.raises(AnnotationError, match=message) as info:
        read_uavdt(root)
    assert "M0001_gt_whole.txt:2:" in str(info.value)
    with pytest.warns(UserWarning, match="skipped 1 line"):
        ds = read_uavdt(root, skip_invalid=True)
    assert ds.num_skipped == 1 and ds[0].num_objects == 1


def test_frame_of_other_size_is_found_without_verify(tmp_path):
    root = tmp_path / "u"
    write_frames(root / "UAV-benchmark-M" / "M0001", [1], size=(1024, 540))
    write_frames(root / "UAV-benchmark-M" / "M0001", [2], size=(640, 480))
    (root / "GT").mkdir()
    (root / "GT" / "M0001_gt_whole.txt").write_text("1,1,10,10,20,20,1,1,1\n")
    (root / "GT" / "M0001_gt_ignore.txt").write_text("2,9,0,0,30,30,1,-1,-1\n")
    # the header of every frame is read (cheap), so this is caught with or without verify
    for verify in (False, True):
        with pytest.raises(AnnotationError, match="img000002.jpg: frame size 640x480 differs"):
            read_uavdt(root, verify=verify)
    ds = read_uavdt(root, skip_invalid=True)  # counted skip of the sequence
    assert len(ds) == 0 and ds.num_skipped == 1


def test_not_uavdt(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a UAVDT folder"):
        read_uavdt(tmp_path)
