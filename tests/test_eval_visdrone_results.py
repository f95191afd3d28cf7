"""Reading a folder of official VisDrone-DET result txts (``read_visdrone_results``)."""

from __future__ import annotations

import numpy as np
import pytest
from test_eval_coco import INFO2, pred, record

from ssabnet.data.visdrone import write_visdrone_results
from ssabnet.errors import InputFileError
from ssabnet.evaluation import read_visdrone_results

RECORDS = [record("b", [[0, 0, 10, 10]], [0]), record("a", [[5, 5, 20, 25]], [1])]


def write(folder, files: dict[str, bytes | str]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return folder


def test_round_trip_with_predict_format(tmp_path):
    predictions = {
        "a": pred([[1.5, 2.25, 4.5, 6.25], [0, 0, 1, 1]], [0.9, 0.1], [1, 0]),
        "b": pred(np.zeros((0, 4)), [], []),
    }
    out = write_visdrone_results(predictions, tmp_path / "res", INFO2.native_ids, ["a", "b"])
    back = read_visdrone_results(out, INFO2, RECORDS)
    assert set(back) == {"a", "b"}
    np.testing.assert_allclose(back["a"]["boxes"], predictions["a"]["boxes"])
    np.testing.assert_allclose(back["a"]["scores"], [0.9, 0.1])
    assert back["a"]["labels"].tolist() == [1, 0]
    assert back["b"]["boxes"].shape == (0, 4) and back["b"]["labels"].dtype == np.int64


def test_real_file_quirks_and_file_order(tmp_path):
    # BOM, CRLF, trailing commas, a blank line, rows not sorted by score, an empty file
    folder = write(
        tmp_path / "res",
        {
            "a.txt": b"\xef\xbb\xbf1,2,3,4,0.1,2,-1,-1,\r\n\r\n10.5,20.25,3,4,0.9,1,-1,-1,\r\n",
            "b.txt": b"",
        },
    )
    back = read_visdrone_results(folder, INFO2, RECORDS)
    assert back["a"]["scores"].tolist() == [0.1, 0.9]  # file order, not score order
    np.testing.assert_allclose(back["a"]["boxes"], [[1, 2, 4, 6], [10.5, 20.25, 13.5, 24.25]])
    assert back["a"]["labels"].tolist() == [1, 0]
    assert back["b"]["scores"].shape == (0,)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1,2,3,4,0.5,1,-1", "expected 8 comma-separated values"),
        ("1,2,3,4,0.5,1,-1,-1,7", "expected 8 comma-separated values"),
        ("1 2 3 4 0.5 1 -1 -1", "expected 8 comma-separated values"),
        ("1,2,x,4,0.5,1,-1,-1", "bbox_width 'x' is not a number"),
        ("1,2,nan,4,0.5,1,-1,-1", "NaN or infinite"),
        ("1,2,3,inf,0.5,1,-1,-1", "NaN or infinite"),
        ("1,2,-3,4,0.5,1,-1,-1", "negative box size"),
        ("1,2,3,-0.5,0.5,1,-1,-1", "negative box size"),
        ("1,2,3,4,1.5,1,-1,-1", "score 1.5 outside [0, 1]"),
        ("1,2,3,4,-0.1,1,-1,-1", "outside [0, 1]"),
        ("1,2,3,4,0.5,0,-1,-1", "object_category 0 is not an evaluated class"),
        ("1,2,3,4,0.5,11,-1,-1", "object_category 11 is not an evaluated class"),
        ("1,2,3,4,0.5,1.5,-1,-1", "object_category 1.5 is not an integer"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, message):
    folder = write(tmp_path / "res", {"a.txt": f"1,2,3,4,0.5,1,-1,-1\n\n{line}\n", "b.txt": ""})
    with pytest.raises(InputFileError, match="a.txt:3: ") as err:
        read_visdrone_results(folder, INFO2, RECORDS)
    assert message in str(err.value)


def test_zero_size_box_is_accepted(tmp_path):
    # The toolkit scores a zero-area detection (it can only be a false positive); not an error.
    folder = write(tmp_path / "res", {"a.txt": "1,2,0,4,0.5,1,-1,-1\n", "b.txt": ""})
    assert read_visdrone_results(folder, INFO2, RECORDS)["a"]["boxes"].tolist() == [[1, 2, 1, 6]]


def test_folder_level_errors(tmp_path):
    with pytest.raises(InputFileError, match="results folder not found"):
        read_visdrone_results(tmp_path / "nope", INFO2, RECORDS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match=r"empty: no \.txt result files"):
        read_visdrone_results(tmp_path / "empty", INFO2, RECORDS)
    folder = write(tmp_path / "res", {"a.txt": ""})
    with pytest.raises(InputFileError, match=r"1 of 2 evaluated images have no result file.*b.txt"):
        read_visdrone_results(folder, INFO2, RECORDS)
    write(folder, {"b.txt": "", "zz.txt": ""})
    with pytest.raises(InputFileError, match=r"zz.txt: result file of an image not in"):
        read_visdrone_results(folder, INFO2, RECORDS)
    with pytest.warns(UserWarning, match="ignored 1 result files"):
        back = read_visdrone_results(folder, INFO2, RECORDS, allow_extra=True)
    assert set(back) == {"a", "b"}
    (folder / "zz.txt").unlink()
    write(folder, {"a.txt": b"1,2,3,4,0.5,1,-1,-1\n\xff\xfe"})
    with pytest.raises(InputFileError, match="a.txt: not a UTF-8 text file"):
        read_visdrone_results(folder, INFO2, RECORDS)


def test_category_map_and_nested_ids(tmp_path):
    records = [record("seq1/img000001", [[0, 0, 10, 10]], [0])]
    folder = write(tmp_path / "res" / "seq1", {"img000001.txt": "1,2,3,4,0.5,0,-1,-1\n"})
    back = read_visdrone_results(tmp_path / "res", INFO2, records, category_to_label={0: 1})
    assert back["seq1/img000001"]["labels"].tolist() == [1]
    assert folder.is_dir()
