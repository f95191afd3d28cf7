"""atomic_io: the file appears whole or not at all, with ordinary permissions."""

from __future__ import annotations

import stat

import pytest

from ssabnet.atomic_io import atomic_path, write_json_atomic, write_text_atomic


def test_written_files_are_complete_and_readable_by_others(tmp_path):
    path = write_json_atomic(tmp_path / "sub" / "m.json", {"AP": 0.5})
    assert path.read_text() == '{\n  "AP": 0.5\n}\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0o600
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]  # no temporary left


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = write_text_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
