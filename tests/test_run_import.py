"""Another detector's predictions as a run: ``val --predictions P --run DIR``, ``runs list``,
round trips through the formats, and ``--imgsz`` defaulting to the training size."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ssabnet.cli import main
from ssabnet.evaluation import MatchTables, bootstrap_ap_difference
from ssabnet.runs import discover_runs, is_finished, load_run

TRAIN_IMGSZ = 128


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory) -> Path:
    """A runs root with one short training run (``<root>/trained``, baseline-n at 128 px)."""
    root = tmp_path_factory.mktemp("runs")
    code = main(
        [
            "train",
            "--data",
            str(synthetic_root),
            "--model",
            "baseline-n",
            "--box-loss",
            "ciou",
            "--epochs",
            "1",
            "--imgsz",
            str(TRAIN_IMGSZ),
            "--batch",
            "8",
            "--workers",
            "0",
            "--out",
            str(root / "trained"),
            "--no-progress",
        ]
    )
    assert code == 0
    return root


@pytest.fixture(scope="module")
def predictions(trained, synthetic_root, tmp_path_factory) -> dict[str, Path]:
    """The trained run's predictions on the val images as COCO results and as VisDrone txts."""
    out = tmp_path_factory.mktemp("preds")
    weights = str(trained / "trained" / "weights" / "last.pt")
    source = str(synthetic_root / "val" / "images")
    assert (
        main(["predict", "--weights", weights, "--source", source, "--out", str(out / "p.json")])
        == 0
    )
    assert (
        main(
            [
                "predict",
                "--weights",
                weights,
                "--source",
                source,
                "--out",
                str(out / "txt"),
                "--format",
                "visdrone",
            ]
        )
        == 0
    )
    return {"coco": out / "p.json", "visdrone": out / "txt"}


def val_run(preds, data, run, *extra) -> int:
    return main(
        ["val", "--predictions", str(preds), "--data", str(data), "--run", str(run), *extra]
    )


# ----------------------------------------------------------------------------- imgsz
def test_val_and_predict_use_the_training_imgsz(trained, synthetic_root, tmp_path, capsys):
    weights = str(trained / "trained" / "weights" / "last.pt")
    data = str(synthetic_root / "val")
    assert (
        main(
            [
                "val",
                "--weights",
                weights,
                "--data",
                data,
                "--out",
                str(tmp_path / "a" / "metrics.json"),
            ]
        )
        == 0
    )
    assert f"imgsz {TRAIN_IMGSZ} (the checkpoint's training size" in capsys.readouterr().out
    assert (
        main(
            [
                "val",
                "--weights",
                weights,
                "--data",
                data,
                "--imgsz",
                str(TRAIN_IMGSZ),
                "--out",
                str(tmp_path / "b" / "metrics.json"),
            ]
        )
        == 0
    )
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a["inference"]["imgsz"] == TRAIN_IMGSZ and a["AP"] == b["AP"]
    assert (
        main(
            [
                "val",
                "--weights",
                weights,
                "--data",
                data,
                "--imgsz",
                "160",
                "--out",
                str(tmp_path / "c" / "metrics.json"),
            ]
        )
        == 0
    )
    assert "imgsz 160 (--imgsz; the checkpoint was trained at 128)" in capsys.readouterr().out
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["inference"]["imgsz"] == 160
    assert (
        main(
            [
                "predict",
                "--weights",
                weights,
                "--source",
                data + "/images",
                "--out",
                str(tmp_path / "p.json"),
            ]
        )
        == 0
    )
    assert f"at imgsz {TRAIN_IMGSZ} written to" in capsys.readouterr().out


# ----------------------------------------------------------------------------- import
def test_imported_run_is_a_run_next_to_trained_ones(trained, predictions, synthetic_root, capsys):
    run = trained / "other-detector"
    assert val_run(predictions["coco"], synthetic_root / "val", run, "--name", "yolo-x") == 0
    printed = capsys.readouterr().out
    assert "format: coco (auto-detected)" in printed and f"run {run}" in printed
    card = json.loads((run / "run.json").read_text())
    assert card["kind"] == "imported" and card["detector"] == "yolo-x"
    assert card["source"] == str(predictions["coco"].resolve()) and card["format"] == "coco"
    assert card["dataset"] == str((synthetic_root / "val").resolve()) and card["created"]
    assert len(card["source_sha256"]) == 64 and card["decisions"]
    # the same numbers as `val --out` on the same file
    assert (
        main(
            [
                "val",
                "--predictions",
                str(predictions["coco"]),
                "--data",
                str(synthetic_root / "val"),
                "--out",
                str(run.parent / "m" / "metrics.json"),
            ]
        )
        == 0
    )
    plain = json.loads((run.parent / "m" / "metrics.json").read_text())
    loaded = load_run(run)
    assert loaded.kind == "imported" and loaded.metrics["AP"] == plain["AP"]
    assert loaded.weights is None and not loaded.has_weights and loaded.predictions.is_file()
    assert loaded.config["model"]["name"] == "yolo-x"
    # already COCO results with SSABNet ids: kept byte for byte
    assert loaded.predictions.read_bytes() == predictions["coco"].read_bytes()
    assert loaded.config["data"]["val"] == card["dataset"]
    # discovery and `runs list` see both kinds
    infos = {i.name: i for i in discover_runs(trained)}
    assert infos["other-detector"].kind == "imported" and infos["trained"].kind == "trained"
    assert infos["other-detector"].ap == pytest.approx(plain["AP"])
    capsys.readouterr()
    assert main(["runs", "list", "--runs", str(trained), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["other-detector"]["kind"] == "imported" and rows["trained"]["kind"] == "trained"
    assert rows["other-detector"]["model"] == "yolo-x" and rows["trained"]["AP"] is not None
    assert main(["runs", "list", "--runs", str(trained)]) == 0
    table = capsys.readouterr().out
    assert "imported" in table and "trained" in table
    # the comparison code takes the two kinds together (same images, same GT)
    trained_tables = MatchTables.load(trained / "trained" / "val" / "last")
    boot = bootstrap_ap_difference(trained_tables, loaded.matches, n_boot=50, seed=0)
    assert len(boot) >= 1
    assert not is_finished(run, epochs=1)  # an imported run is never a finished *training*


def test_visdrone_txt_folder_gives_the_coco_metrics(predictions, synthetic_root, tmp_path):
    data = synthetic_root / "val"
    assert val_run(predictions["coco"], data, tmp_path / "coco") == 0
    assert val_run(predictions["visdrone"], data, tmp_path / "txt") == 0
    a = json.loads((tmp_path / "coco" / "val" / "best" / "metrics.json").read_text())
    b = json.loads((tmp_path / "txt" / "val" / "best" / "metrics.json").read_text())
    assert json.loads((tmp_path / "txt" / "run.json").read_text())["format"] == "visdrone"
    # the txt format keeps boxes to 0.01 px and scores to 1e-4: the same metrics to that grain
    for key in ("AP", "AP50", "AP75", "APs", "AP_vt", "AP_t", "AR500"):
        if a[key] is None:
            assert b[key] is None
        else:
            assert b[key] == pytest.approx(a[key], abs=1e-3), key


def test_existing_run_is_refused_unless_overwrite(predictions, synthetic_root, tmp_path, capsys):
    data = synthetic_root / "val"
    run = tmp_path / "imp"
    assert val_run(predictions["coco"], data, run) == 0
    before = (run / "run.json").read_text()
    assert val_run(predictions["coco"], data, run) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (run / "run.json").read_text() == before
    assert val_run(predictions["coco"], data, run, "--overwrite", "--name", "again") == 0
    assert json.loads((run / "run.json").read_text())["detector"] == "again"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imp"]  # no staging leftovers


def test_a_trained_run_is_never_replaced(trained, predictions, synthetic_root, capsys):
    assert (
        val_run(predictions["coco"], synthetic_root / "val", trained / "trained", "--overwrite")
        == 2
    )
    assert "holds a trained run" in capsys.readouterr().err
    assert (trained / "trained" / "weights" / "last.pt").is_file()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e[3].update(image_id=999), "unknown image_id 999"),
        (lambda e: e[3].update(category_id=42), "unknown category_id 42"),
        (lambda e: e[3].update(score=1.2), r"score must lie in \[0, 1\]"),
        (lambda e: e[3].update(bbox=[1, 2, -3, 4]), "negative width or height"),
    ],
)
def test_bad_file_writes_nothing(predictions, synthetic_root, tmp_path, capsys, mutate, message):
    entries = json.loads(predictions["coco"].read_text())
    mutate(entries)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(entries))
    assert val_run(bad, synthetic_root / "val", tmp_path / "runs" / "imp") == 2
    err = capsys.readouterr().err
    assert err.startswith("ssabnet: error: ") and str(bad) in err and "entry 3" in err
    assert pytest.importorskip("re").search(message, err)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bad_txt_names_file_and_line(predictions, synthetic_root, tmp_path, capsys):
    folder = tmp_path / "txt"
    shutil.copytree(predictions["visdrone"], folder)
    first = sorted(folder.glob("*.txt"))[0]
    lines = first.read_text().splitlines()
    lines[1] = "1,2,3,nan,0.5,1,-1,-1"
    first.write_text("\n".join(lines) + "\n")
    assert val_run(folder, synthetic_root / "val", tmp_path / "imp") == 2
    assert f"{first}:2:" in capsys.readouterr().err
    assert not (tmp_path / "imp").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert val_run(empty, synthetic_root / "val", tmp_path / "imp") == 2
    assert "no .txt result files" in capsys.readouterr().err


# ----------------------------------------------------------------------------- Ultralytics
@pytest.fixture(scope="module")
def numeric_dataset(synthetic_root, tmp_path_factory) -> Path:
    """12 scenes renamed ``1.jpg .. 12.jpg`` (as many public datasets name frames); sorted as
    strings ("1", "10", "11", "12", "2", ...) their SSABNet ids differ from the numbers."""
    root = tmp_path_factory.mktemp("numeric")
    (root / "images").mkdir()
    (root / "annotations").mkdir()
    scenes = [
        *sorted((synthetic_root / "val" / "images").glob("*.jpg")),
        *sorted((synthetic_root / "train" / "images").glob("*.jpg"))[:4],
    ]
    for i, image in enumerate(scenes, start=1):
        shutil.copy(image, root / "images" / f"{i}.jpg")
        annotation = image.parent.parent / "annotations" / f"{image.stem}.txt"
        shutil.copy(annotation, root / "annotations" / f"{i}.txt")
    return root


def test_ultralytics_numeric_stems_score_ap_100(numeric_dataset, tmp_path, capsys):
    from ssabnet.data import load_dataset

    dataset = load_dataset(numeric_dataset)
    entries = []  # what Ultralytics writes: image_id = int(stem), 0-based class index
    for r in dataset.records:
        for (x1, y1, x2, y2), label in zip(
            r.boxes[r.evaluated], r.labels[r.evaluated], strict=True
        ):
            entries.append(
                {
                    "image_id": int(r.image_path.stem),
                    "category_id": int(label),
                    "bbox": [
                        round(float(x1), 3),
                        round(float(y1), 3),
                        round(float(x2 - x1), 3),
                        round(float(y2 - y1), 3),
                    ],
                    "score": 1.0,
                }
            )
    preds = tmp_path / "predictions.json"
    preds.write_text(json.dumps(entries))
    run = tmp_path / "yolo"
    assert val_run(preds, numeric_dataset, run, "--pred-format", "ultralytics") == 0
    printed = capsys.readouterr().out
    assert "numeric file stems" in printed and "0-based class indices" in printed
    assert json.loads((run / "val" / "best" / "metrics.json").read_text())["AP"] == 1.0
    # predictions.json is rewritten with SSABNet ids and the dataset's class ids
    from ssabnet.evaluation import Evaluator, read_coco_results

    stored = read_coco_results(run / "predictions.json", dataset.info, dataset.records)
    evaluator = Evaluator(dataset.info, dataset.records)
    evaluator.process(stored)
    assert evaluator.evaluate()["AP"] == 1.0
    # auto: ids 1..12 are also valid SSABNet ids, naming other images -> an error, never a guess
    assert val_run(preds, numeric_dataset, tmp_path / "auto") == 2
    err = capsys.readouterr().err
    assert "--pred-format coco" in err and "--pred-format ultralytics" in err
    assert not (tmp_path / "auto").exists()


# ----------------------------------------------------------------------------- the app
def test_app_takes_imported_runs_next_to_trained_ones(demo_runs, tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    app = Path(__file__).resolve().parents[1] / "ssabnet" / "app"
    root = tmp_path / "runs"
    shutil.copytree(demo_runs / "ssabnet-n", root / "ssabnet-n")
    assert (
        val_run(
            demo_runs / "ssabnet-n" / "predictions.json",
            demo_runs / "data" / "val",
            root / "other",
            "--name",
            "other-detector",
        )
        == 0
    )
    monkeypatch.setenv("SSABNET_APP_RUNS", str(root))
    monkeypatch.setenv("SSABNET_APP_DATA", "")
    monkeypatch.setenv("SSABNET_APP_DATA_ROOTS", str(demo_runs / "data"))
    monkeypatch.setenv("SSABNET_APP_COMPARE", "ssabnet-n,other")

    def run(page: str) -> AppTest:
        at = AppTest.from_file(str(app / page), default_timeout=120).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        return at

    table = run("ssabnet_app.py").dataframe[0].value
    assert table["run"].tolist() == ["other", "ssabnet-n"]
    assert table["kind"].tolist() == ["imported", "trained"]
    assert table["model"].tolist()[0] == "other-detector"
    run("pages/1_Runs.py")
    run("pages/2_Compare.py")
    errors = run("pages/5_Error_analysis.py")  # the imported run is preselected (compare[-1])
    assert errors.selectbox(key="err_run").value == "other"
    maps = run("pages/3_Feature_maps.py")
    assert any("other: imported runs" in i.value and "no weights" in i.value for i in maps.info)
    assert maps.selectbox(key="fm_run").options == ["ssabnet-n"]
