"""Data catalog: cards, variable expansion, spec resolution, format detection, fetch."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import threading
import zipfile
from pathlib import Path

import pytest

from ssabnet.data import load_dataset
from ssabnet.data.catalog import DatasetCard, expand_vars, find_card, list_cards, load_card
from ssabnet.data.dataset import detect_format
from ssabnet.data.fetch import extract_archive, fetch
from ssabnet.data.synthetic import ensure_generated

REPO_CATALOG = Path(__file__).resolve().parents[1] / "ssabnet" / "data_catalog"
EXPECTED_CARDS = {
    "visdrone-det-train",
    "visdrone-det-val",
    "visdrone-det-test-dev",
    "visdrone-sample",
    "visdrone-val-gt",
    "uavdt-train",
    "uavdt-test",
    "syndrone-demo-train",
    "syndrone-demo-val",
    "syndrone-ablation-train",
    "syndrone-ablation-val",
}


# ----------------------------------------------------------------------------- expansion
@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}/x", {"A": "/a"}, "/a/x"),
        ("${A:-d}/x", {}, "d/x"),
        ("${A:-d}/x", {"A": ""}, "d/x"),  # empty counts as unset, as in the shell
        ("${A:-${B:-z}/y}/x", {"B": "/b"}, "/b/y/x"),
        ("${A:-${B:-z}/y}/x", {}, "z/y/x"),
        ("plain/path", {}, "plain/path"),
    ],
)
def test_expand_vars(text, env, expected):
    assert expand_vars(text, env) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("${NOPE}/x", "NOPE is not set"), ("${A:-x", "unbalanced"), ("${1A}", "bad variable")],
)
def test_expand_vars_errors(text, message):
    with pytest.raises(ValueError, match=message):
        expand_vars(text, {})


# ----------------------------------------------------------------------------- cards
def test_repo_cards_are_complete_and_valid():
    names = {p.stem for p in REPO_CATALOG.glob("*.yaml")}
    assert names >= EXPECTED_CARDS
    for path in REPO_CATALOG.glob("*.yaml"):
        card = load_card(path)  # every card, ours or added later, must be valid
        assert card.name == path.stem
        assert card.classes and card.license and card.root.is_absolute()
    for name in EXPECTED_CARDS:
        card = load_card(REPO_CATALOG / f"{name}.yaml")
        if card.format == "uavdt":
            assert card.classes == ("car", "truck", "bus") and card.sequences
        else:
            assert card.format == "visdrone" and len(card.classes) == 10
    train, test = (
        load_card(REPO_CATALOG / "uavdt-train.yaml"),
        load_card(REPO_CATALOG / "uavdt-test.yaml"),
    )
    assert len(train.sequences) == 30 and len(test.sequences) == 20
    assert not set(train.sequences) & set(test.sequences)


def test_relative_root_is_relative_to_project_and_env_overrides(monkeypatch):
    monkeypatch.delenv("SSABNET_DATA", raising=False)
    card = load_card(REPO_CATALOG / "syndrone-demo-val.yaml")
    # packaged cards resolve against the checkout (the repo root, two levels above the cards)
    assert card.root == REPO_CATALOG.parents[1] / "data" / "syndrone" / "val"
    assert card.generate.num_images == 32 and card.generate.size == (320, 256)
    monkeypatch.setenv("SSABNET_DATA", "/somewhere")
    assert load_card(REPO_CATALOG / "syndrone-demo-val.yaml").root == Path(
        "/somewhere/syndrone/val"
    )


def test_sample_card_points_at_shared_data(visdrone_sample_root, monkeypatch):
    monkeypatch.delenv("SSABNET_SHARED", raising=False)
    card = find_card("visdrone-sample")
    assert card.root.resolve() == visdrone_sample_root.resolve()


def write_card(folder: Path, name: str, **fields) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"name": name, "format": "visdrone", "root": "data/x", "classes": ["a"]} | fields
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(data))  # JSON is valid YAML
    return path


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"bogus": 1}, "unknown card keys"),
        ({"format": "kitti"}, "format must be one of"),
        ({"root": ""}, "card needs a 'root'"),
        ({"generate": {"seed": 1}}, "generate needs 'num_images'"),
    ],
)
def test_bad_cards(tmp_path, fields, message):
    with pytest.raises(ValueError, match=message):
        load_card(write_card(tmp_path / "data_catalog", "bad", **fields))


def test_find_card_resolution(tmp_path, monkeypatch):
    catalog = tmp_path / "cat" / "data_catalog"
    path = write_card(catalog, "mine")
    monkeypatch.setenv("SSABNET_CATALOG", str(catalog))
    assert "mine" in list_cards()
    assert find_card("mine").path == path
    assert find_card(str(path)).name == "mine"  # a card path
    assert find_card(tmp_path) is None  # an existing folder is a path
    assert find_card("mine").root == tmp_path / "cat" / "data" / "x"
    with pytest.raises(FileNotFoundError, match="neither an existing path nor a catalog name"):
        find_card("no-such-dataset")


def test_detect_format(tmp_path, visdrone_sample_root):
    assert detect_format(visdrone_sample_root) == "visdrone"
    (tmp_path / "u" / "UAV-benchmark-MOTD_v1.0" / "GT").mkdir(parents=True)
    (tmp_path / "u" / "UAV-benchmark-MOTD_v1.0" / "GT" / "M0101_gt_whole.txt").write_text("")
    assert detect_format(tmp_path / "u") == "uavdt"
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.json").write_text("{}")
    assert detect_format(tmp_path / "c") == "coco"
    assert detect_format(tmp_path / "c" / "x.json") == "coco"
    (tmp_path / "e").mkdir()
    with pytest.raises(ValueError, match="cannot tell the dataset format"):
        detect_format(tmp_path / "e")


def test_synthetic_card_generates_once_and_regenerates_when_stale(tmp_path, monkeypatch):
    catalog = tmp_path / "data_catalog"
    spec = {"num_images": 2, "seed": 4, "size": [128, 96]}
    write_card(catalog, "syn", root="gen/syn", generate=spec)
    monkeypatch.setenv("SSABNET_CATALOG", str(catalog))
    ds = load_dataset("syn")
    assert len(ds) == 2 and ds.info.name == "syn"
    stamp = (tmp_path / "gen" / "syn" / "synthetic.json").stat().st_mtime_ns
    load_dataset("syn")  # up to date: not regenerated
    assert (tmp_path / "gen" / "syn" / "synthetic.json").stat().st_mtime_ns == stamp
    write_card(catalog, "syn", root="gen/syn", generate=spec | {"num_images": 3})
    assert len(load_dataset("syn")) == 3
    leftovers = [p for p in (tmp_path / "gen").iterdir() if p.name != "syn"]
    assert leftovers == []


def test_synthetic_card_never_overwrites_user_data(tmp_path):
    user = tmp_path / "mine"
    (user / "images").mkdir(parents=True)
    card = DatasetCard("x", tmp_path / "x.yaml", "visdrone", user, ("a",), generate=None)
    assert ensure_generated(card) == user
    from ssabnet.data.catalog import SyntheticSpec

    card = DatasetCard("x", tmp_path / "x.yaml", "visdrone", user, ("a",))
    card = DatasetCard(**{**card.__dict__, "generate": SyntheticSpec(1, 0, (128, 96))})
    ensure_generated(card)
    assert not (user / "synthetic.json").exists() and not any((user / "images").iterdir())


def test_missing_real_dataset_message(tmp_path, monkeypatch):
    catalog = tmp_path / "data_catalog"
    write_card(catalog, "real", root="nowhere", homepage="https://example.org/ds")
    monkeypatch.setenv("SSABNET_CATALOG", str(catalog))
    with pytest.raises(FileNotFoundError, match="get it from https://example.org/ds"):
        load_dataset("real")


# ----------------------------------------------------------------------------- fetch
def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def http_server(tmp_path):
    """Serve ``tmp_path/www`` on 127.0.0.1 (random port); yields the base URL."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", www
    server.shutdown()
    server.server_close()


ARCHIVE = {
    "Tiny-DET/images/a.jpg": b"jpeg bytes",
    "Tiny-DET/annotations/a.txt": b"1,1,2,2,1,1,0,0\r\n",
}


def fetch_card(tmp_path, url, sha256, **extra) -> Path:
    return write_card(
        tmp_path / "data_catalog", "tiny", root="data/tiny", url=url, sha256=sha256, **extra
    )


def test_fetch_good_checksum_extracts_atomically(tmp_path, http_server):
    base, www = http_server
    archive = make_zip(ARCHIVE)
    (www / "tiny.zip").write_bytes(archive)
    card = fetch_card(tmp_path, f"{base}/tiny.zip", hashlib.sha256(archive).hexdigest())
    root = fetch(card)
    assert root == tmp_path / "data" / "tiny"
    assert (root / "annotations" / "a.txt").read_bytes() == ARCHIVE["Tiny-DET/annotations/a.txt"]
    assert sorted(p.name for p in root.parent.iterdir()) == ["tiny"]  # no temporaries left
    (www / "tiny.zip").unlink()
    assert fetch(card) == root  # already there: no download needed


def test_fetch_bad_checksum_fails_and_leaves_nothing(tmp_path, http_server):
    base, www = http_server
    (www / "tiny.zip").write_bytes(make_zip(ARCHIVE))
    card = fetch_card(tmp_path, f"{base}/tiny.zip", "0" * 64)
    with pytest.raises(ValueError, match="checksum mismatch .* nothing was extracted"):
        fetch(card)
    assert not (tmp_path / "data" / "tiny").exists()
    assert list((tmp_path / "data").iterdir()) == []


def test_fetch_without_checksum_needs_explicit_consent(tmp_path, http_server):
    base, www = http_server
    archive = make_zip(ARCHIVE)
    (www / "tiny.zip").write_bytes(archive)
    card = fetch_card(tmp_path, f"{base}/tiny.zip", None)
    digest = hashlib.sha256(archive).hexdigest()
    with pytest.raises(ValueError, match=f"no sha256 is known .* sha256 is {digest}"):
        fetch(card)
    assert list((tmp_path / "data").iterdir()) == []
    assert fetch(card, sha256=digest).is_dir()


def test_fetch_archive_subdir_and_custom_root(tmp_path, http_server):
    base, www = http_server
    archive = make_zip(ARCHIVE | {"README.txt": b"x"})
    (www / "t.zip").write_bytes(archive)
    card = fetch_card(
        tmp_path, f"{base}/t.zip", hashlib.sha256(archive).hexdigest(), archive_subdir="Tiny-DET"
    )
    root = fetch(card, tmp_path / "elsewhere")
    assert sorted(p.name for p in root.iterdir()) == ["annotations", "images"]


def test_fetch_errors(tmp_path, http_server):
    base, _www = http_server
    card = fetch_card(tmp_path, None, None)
    with pytest.raises(ValueError, match="no download URL is known"):
        fetch(card)
    card = fetch_card(tmp_path, f"{base}/missing.zip", "0" * 64)
    with pytest.raises(OSError):  # HTTP 404
        fetch(card)
    assert list((tmp_path / "data").iterdir()) == []


def test_extract_refuses_path_traversal(tmp_path):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(make_zip({"../evil.txt": b"x"}))
    with pytest.raises(ValueError, match="unsafe path"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
