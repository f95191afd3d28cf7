"""Every page of the Streamlit app with ``streamlit.testing.v1.AppTest`` on the demo runs.

Widgets change what is shown, and missing/corrupt runs or unsafe paths give a clear message
instead of a traceback. The real-browser test is ``test_app_browser.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "ssabnet" / "app"
TIMEOUT = 120


@pytest.fixture
def app_env(demo_runs, monkeypatch):
    monkeypatch.setenv("SSABNET_APP_RUNS", str(demo_runs))
    monkeypatch.setenv("SSABNET_APP_DATA", "")
    monkeypatch.setenv("SSABNET_APP_DATA_ROOTS", str(demo_runs / "data"))
    monkeypatch.setenv("SSABNET_APP_COMPARE", "baseline-n,ssabnet-n")
    return demo_runs


def _run(page: str) -> AppTest:
    at = AppTest.from_file(str(APP / page), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _images(at: AppTest) -> list:
    return [node for node in _walk(at._tree) if type(node).__name__ == "Image"]


def _walk(node):
    for child in getattr(node, "children", {}).values():
        yield child
        yield from _walk(child)


def _titles(at: AppTest) -> list[str]:
    return [(f["layout"].get("title") or {}).get("text", "") for f in _figures(at)]


def test_overview_lists_runs(app_env):
    at = _run("ssabnet_app.py")
    assert at.metric[0].value == "2"
    table = at.dataframe[0].value
    assert table["run"].tolist() == ["baseline-n", "ssabnet-n"]
    assert table["box loss"].tolist() == ["ciou", "ciou"]  # the demo trains the defaults


def test_runs_page_charts_follow_the_selection(app_env):
    at = _run("pages/1_Runs.py")
    assert len(at.get("plotly_chart")) == 4  # headline, per bucket, per class, training curves
    assert at.dataframe[0].value["run"].tolist() == ["baseline-n", "ssabnet-n"]
    bucket_fig = _figures(at)[1]
    assert {t["name"] for t in bucket_fig["data"]} == {"baseline-n", "ssabnet-n"}
    # percent everywhere: the table and the charts show AP in %, like the cards and the CLI
    metrics = json.loads((app_env / "ssabnet-n" / "val" / "best" / "metrics.json").read_text())
    shown = at.dataframe[0].value.set_index("run")
    assert shown.loc["ssabnet-n", "AP50"] == pytest.approx(100 * metrics["AP50"])
    assert bucket_fig["layout"]["yaxis"]["title"]["text"] == "AP %"
    assert list(bucket_fig["data"][0]["x"]) == ["very_tiny", "tiny", "small", "medium", "large"]

    at.multiselect(key="runs_pick").set_value(["ssabnet-n"]).run()
    assert at.dataframe[0].value["run"].tolist() == ["ssabnet-n"]
    assert {t["name"] for t in _figures(at)[1]["data"]} == {"ssabnet-n"}
    at.multiselect(key="runs_pick").set_value([]).run()
    assert at.info[0].value == "Pick at least one run."
    assert not at.get("plotly_chart")


def test_runs_page_refuses_paths_outside_and_reports_corrupt_runs(app_env, tmp_path, monkeypatch):
    at = _run("pages/1_Runs.py")
    at.text_input(key="runs_extra").input("../../etc").run()
    assert any("Refused" in e.value and "'..' is not allowed" in e.value for e in at.error)
    at.text_input(key="runs_extra").input("/etc").run()
    assert any("outside the allowed" in e.value for e in at.error)

    runs = tmp_path / "runs"
    shutil.copytree(app_env / "baseline-n", runs / "good", ignore=shutil.ignore_patterns("*.pt"))
    shutil.copytree(app_env / "ssabnet-n", runs / "bad", ignore=shutil.ignore_patterns("*.pt"))
    for split in ("best", "last"):
        (runs / "bad" / "val" / split / "metrics.json").write_text("{oops")
    monkeypatch.setenv("SSABNET_APP_RUNS", str(runs))
    at = _run("pages/1_Runs.py")
    assert any("bad" in e.value and "corrupt JSON" in e.value for e in at.error)
    assert at.dataframe[0].value["run"].tolist() == ["good"]  # the good run is still shown

    monkeypatch.setenv("SSABNET_APP_RUNS", str(tmp_path / "nowhere"))
    at = _run("pages/1_Runs.py")
    assert "runs folder not found" in at.error[0].value


def test_compare_page_bootstrap_and_pr_curves(app_env):
    at = _run("pages/2_Compare.py")
    assert at.selectbox(key="cmp_ref").value == "baseline-n"
    tables = [d.value for d in at.dataframe]
    boot = tables[1]  # [0] metric deltas, [1] bootstrap
    assert list(boot.index)[:2] == ["all", "very_tiny"]
    assert {"delta", "ci_low", "ci_high", "p_value"} <= set(boot.columns)
    assert all(p == "–" or p.startswith("< ") or 0 <= float(p) <= 1 for p in boot["p_value"])
    assert "0.000" not in boot["p_value"].tolist()
    assert at.radio(key="cmp_metric").value == "AP50"  # AP50 by default, AP@[.5:.95] on request
    assert any(t.startswith("AP50: ") for t in _titles(at))
    at.radio(key="cmp_metric").set_value("AP").run()
    assert any(t.startswith("AP: ") for t in _titles(at))  # (the tiny demo's APs are ~0)
    at.radio(key="cmp_metric").set_value("AP50").run()
    assert any("PR curve" in t for t in _titles(at))

    at.radio(key="cmp_by").set_value("class").run()
    by_class = at.dataframe[1].value
    assert "car" in by_class.index and "very_tiny" not in by_class.index

    at.radio(key="cmp_by").set_value("bucket").run()
    at.selectbox(key="cmp_ref").set_value("ssabnet-n").run()
    at.multiselect(key="cmp_others").set_value(["baseline-n"]).run()
    swapped = at.dataframe[1].value
    assert swapped.loc["all", "delta"] == pytest.approx(-boot.loc["all", "delta"])

    at.selectbox(key="cmp_bucket").set_value("large").run()
    assert not at.exception


def test_feature_maps_page_taps_and_kernels(app_env):
    at = _run("pages/3_Feature_maps.py")
    assert at.selectbox(key="fm_run").value == "ssabnet-n"  # SSA model preselected
    assert not at.error, [e.value for e in at.error]
    assert len(_images(at)) >= 2  # boxes drawn + overlay
    first = _titles(at)[0]
    assert first.startswith("p2.gate")
    assert any("kernels at cell" in t for t in _titles(at))

    at.selectbox(key="fm_tap").set_value("offsets").run()
    assert _titles(at)[0].startswith("p2.offsets: mean offset length (px)")
    at.selectbox(key="fm_level").set_value("p5").run()
    assert _titles(at)[0].startswith("p5.out")
    assert any("No content-aware reassembly kernels at p5" in c.value for c in at.caption)

    at.selectbox(key="fm_level").set_value("p3").run()
    at.selectbox(key="fm_tap").set_value("kernels").run()
    at.slider(key="fm_kx").set_value(0).run()
    assert any("at cell (0," in t for t in _titles(at))

    at.number_input(key="fm_imgsz").set_value(200).run()
    assert "multiple of 32" in at.error[0].value

    at.radio(key="fm_source").set_value("Upload").run()
    assert at.info[0].value == "Upload an image to see its feature maps."


def test_sabl_page_widgets_drive_loss_curves(app_env):
    at = _run("pages/4_SABL_curves.py")
    loss_fig, _grad_fig, mu_fig = _figures(at)
    assert {t["name"] for t in loss_fig["data"]} == {"iou", "ciou", "nwd", "sabl", "sabl-paper"}
    table = at.dataframe[0].value
    assert table["gt_size"].unique().tolist() == [12.0]
    # The two SABL readings side by side: at the far end (32 px, 2.7 object sizes) the default
    # pulls harder than CIoU and than the literal reading.
    far = table[table["offset"] == table["offset"].max()].set_index("kind")["grad_cx"]
    assert far["sabl"] > far["ciou"] and far["sabl"] > 2 * far["sabl-paper"]

    at.slider(key="sabl_size").set_value(64).run()
    table = at.dataframe[0].value
    assert table["gt_size"].unique().tolist() == [64.0]
    assert "s = 64" in _titles(at)[0]

    at.multiselect(key="sabl_kinds").set_value(["nwd"]).run()
    at.slider(key="sabl_range").set_value(100).run()
    table = at.dataframe[0].value
    assert set(table["kind"]) == {"nwd"} and table["offset"].max() == 100.0
    # IoU's gradient is zero once the boxes stop overlapping; NWD's is not (the point of NWD)
    far = table[table["offset"].abs() > 64 + 1]
    assert (far["grad_cx"].abs() > 0).all()

    # mu(s): px on a log axis from 1 to 256 px (not stretched to 10^12), kappa labelled in view
    mu_fig = _figures(at)[2]
    axis = mu_fig["layout"]["xaxis"]
    assert axis["type"] == "log" and axis["range"] == pytest.approx([0.0, np.log10(256)])
    assert "px" in axis["title"]["text"]
    labels = [t.get("text") for t in mu_fig["data"] if t.get("mode") == "lines+text"]
    assert ["", "κ = 32 px"] in labels and ["", "s = 64 px"] in labels

    at.multiselect(key="sabl_kinds").set_value([]).run()
    assert at.info[0].value == "Pick at least one loss."


def test_error_analysis_page_taxonomy_threshold_galleries(app_env):
    from ssabnet.analysis import error_taxonomy, f1_optimal_threshold, load_run

    at = _run("pages/5_Error_analysis.py")
    assert at.selectbox(key="err_run").value == "ssabnet-n"  # last of --compare
    run = load_run(app_env / "ssabnet-n")
    best = f1_optimal_threshold(run.matches)
    assert at.slider(key="err_threshold").value == pytest.approx(round(best.score, 3))
    assert any(f"{best.score:.3f}" in c.value for c in at.caption)  # the default is shown
    taxonomy = at.dataframe[0].value
    assert list(taxonomy.index) == ["all", "very_tiny", "tiny", "small", "medium", "large"]
    report = error_taxonomy(run.matches)
    assert taxonomy.loc["all", "ΔAP loc %"] == f"{100 * report.delta_ap['all']['loc']:.2f}"
    titles = _titles(at)
    assert any("ΔAP50 from fixing each error type" in t for t in titles)
    assert any("Precision-recall per class" in t for t in titles)
    assert any("Confusion matrix" in t for t in titles)
    delta_fig = next(f for f in _figures(at) if "ΔAP50" in f["layout"]["title"]["text"])
    assert {t["name"] for t in delta_fig["data"]} == {"cls", "loc", "both", "dupe", "bkg", "miss"}
    counts = at.dataframe[1].value
    assert list(counts.index) == ["very_tiny", "tiny", "small", "medium", "large"]

    # the threshold changes counts, never AP
    at.slider(key="err_threshold").set_value(0.0).run()
    low = at.dataframe[1].value
    low_tax = at.dataframe[0].value
    at.slider(key="err_threshold").set_value(0.9).run()
    high = at.dataframe[1].value
    assert low["fp"].sum() > high["fp"].sum()
    assert (
        at.dataframe[0].value["AP50 % (all scores)"].tolist()
        == low_tax["AP50 % (all scores)"].tolist()
    )
    at.slider(key="err_threshold").set_value(0.0).run()

    at.radio(key="err_by").set_value("class_name").run()
    assert "car" in at.dataframe[1].value.index
    code = at.code[0].value
    assert "ssabnet fiftyone index" in code and "predictions.json" in code

    # galleries: one crop per false positive, per missed object, per cross-run object
    at.selectbox(key="err_fp_type").set_value("bkg").run()
    assert len(_images(at)) > 0
    at.multiselect(key="err_buckets").set_value(["very_tiny", "tiny", "small", "medium"]).run()
    missed = at.dataframe[2].value
    assert len(missed) > 0 and "near_iou" in missed.columns
    assert at.selectbox(key="err_other").value == "baseline-n"
    assert len(at.tabs) == 2 and "found by" in at.tabs[0].label
