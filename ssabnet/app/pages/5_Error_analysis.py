"""Error analysis: TIDE error types per size, a confidence threshold, FP and cross-run galleries,
per-class PR curves and a confusion matrix (all from the saved matching tables)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from ssabnet.analysis import (
    ERROR_TYPES,
    FP_TYPES,
    PRED_COLOR,
    MatchTables,
    check_evidence,
    confusion_matrix,
    crop_with_context,
    draw_boxes,
    error_counts,
    error_counts_at,
    error_taxonomy,
    f1_optimal_threshold,
    false_positive_gallery,
    label_errors,
    missed_by_a_found_by_b,
    missed_objects,
    per_class_pr_curves,
    read_image_rgb,
    size_bucket_names,
)
from ssabnet.app import common
from ssabnet.integrations.fiftyone import handoff as fiftyone_handoff

OTHER_COLOR = (255, 170, 0)  # the other run's / nearest detection
TYPE_COLORS = {
    "cls": "#e45756",
    "loc": "#f58518",
    "both": "#b279a2",
    "dupe": "#72b7b2",
    "bkg": "#54a24b",
    "miss": "#4c78a8",
}
TYPE_NAMES = {
    "cls": "classification",
    "loc": "localisation",
    "both": "cls + loc",
    "dupe": "duplicate",
    "bkg": "background",
    "miss": "missed",
}
BOX = ["x1", "y1", "x2", "y2"]


@st.cache_data(show_spinner=False, max_entries=16)
def _analysis(key: tuple, _tables: MatchTables):
    """Labels, taxonomy and the F1-optimal threshold of one run (cached per run and split)."""
    del key
    return label_errors(_tables), error_taxonomy(_tables), f1_optimal_threshold(_tables)


def _key(run) -> tuple:
    return (str(run.path), run.split, common._stamp(run.path, run.split))


def _dataset(run):
    spec = common.dataset_spec(cfg, run.config)
    if spec is None:
        return None
    try:
        with st.spinner(f"Loading dataset {spec} ..."):
            return common.cached_dataset(str(spec))
    except (ValueError, FileNotFoundError) as exc:
        st.error(f"Cannot load dataset {spec}: {exc}")
        return None


def _boxes(row: pd.Series, prefix: str) -> list[float] | None:
    values = [row.get(f"{prefix}{c}") for c in BOX]
    if any(v is None or v != v for v in values):
        return None
    return [float(v) for v in values]


def _gallery(rows: pd.DataFrame, dataset, focus: str, layers, caption, context: float) -> None:
    """One crop per row around the ``focus`` box prefix, with every ``(prefix, color)`` drawn."""
    if dataset is None:
        st.info("Crops need the dataset's images: start the app with `--data NAME|PATH`.")
        return
    records = dataset.by_id()
    columns = st.columns(6)
    for i, (_, row) in enumerate(rows.iterrows()):
        record = records.get(row["image_id"])
        if record is None:
            columns[i % 6].warning(f"{row['image_id']} not in the dataset")
            continue
        image = read_image_rgb(record.image_path)
        crop, focus_box = crop_with_context(image, _boxes(row, focus), context=context)
        shift = [
            float(v)
            for v in (_boxes(row, focus)[0] - focus_box[0], _boxes(row, focus)[1] - focus_box[1])
        ]
        for prefix, color in layers:
            box = _boxes(row, prefix)
            if box is not None:
                moved = [box[0] - shift[0], box[1] - shift[1], box[2] - shift[0], box[3] - shift[1]]
                crop = draw_boxes(crop, [moved], color=color)
        columns[i % 6].image(crop, width="stretch", caption=caption(row))


cfg = common.page_header(
    "Error analysis",
    "Why does the detector miss small objects? TIDE's error types (Bolya et al., ECCV 2020) per "
    "object size from the saved matching tables (IoU 0.5): ΔAP uses all scores; counts and "
    "galleries use the confidence threshold below.",
)
infos = [i for i in common.run_infos(cfg) if i.has_matches]
if not infos:
    st.warning("No run with saved matching tables (val/*/matches_*.parquet).")
    st.stop()
names = [i.name for i in infos]
default = names.index(cfg.compare[-1]) if cfg.compare and cfg.compare[-1] in names else 0
info = infos[names.index(st.selectbox("Run", names, index=default, key="err_run"))]
split = common.split_selector(key="err_split")
runs = common.load_runs([info], split)
if not runs:
    st.stop()
run = runs[0]
if run.matches is None:
    st.error(f"{run.name}: no matching tables in val/{run.split}.")
    st.stop()
try:
    check_evidence(run.matches, f"{run.path / 'val' / run.split / 'matches_dets.parquet'}")
except ValueError as exc:
    st.error(str(exc))
    st.stop()
labelled, report, best = _analysis(_key(run), run.matches)

threshold = st.slider(
    "Confidence threshold for counts and galleries (AP and ΔAP use all scores)",
    0.0,
    1.0,
    float(round(best.score, 3)),
    step=0.001,
    format="%.3f",
    key="err_threshold",
)
st.caption(
    f"Default: the F1-optimal threshold **{best.score:.3f}** (pooled over classes at IoU 0.5: "
    f"F1 {100 * best.f1:.1f} %, precision {100 * best.precision:.1f} %, recall "
    f"{100 * best.recall:.1f} %)."
)

st.subheader("TIDE error types per object size")
buckets = ["all", *size_bucket_names()]
delta = pd.DataFrame(
    [
        {"bucket": b, "type": t, "dAP": 100 * (report.delta_ap[b][t] or 0.0)}
        for b in buckets
        for t in ERROR_TYPES
    ]
)
left, right = st.columns(2)
left.plotly_chart(
    px.bar(
        delta,
        x="bucket",
        y="dAP",
        color="type",
        barmode="group",
        color_discrete_map=TYPE_COLORS,
        category_orders={"bucket": buckets, "type": ERROR_TYPES},
        labels={"dAP": "ΔAP50 (AP points, %)", "bucket": "object size"},
        title="ΔAP50 from fixing each error type (unthresholded)",
    ),
    width="stretch",
)
at = error_counts_at(labelled, threshold)
count_long = pd.DataFrame(
    [
        {"bucket": b, "type": t, "count": int(at.loc[b, t])}
        for b in size_bucket_names()
        for t in ERROR_TYPES
    ]
)
right.plotly_chart(
    px.bar(
        count_long,
        x="bucket",
        y="count",
        color="type",
        color_discrete_map=TYPE_COLORS,
        category_orders={"bucket": size_bucket_names(), "type": ERROR_TYPES},
        labels={"bucket": "object size", "count": "errors"},
        title=f"Errors at confidence ≥ {threshold:.3f}",
    ),
    width="stretch",
)
table = pd.DataFrame(
    {"AP50 % (all scores)": [common.fmt_pct(report.ap[b]) for b in buckets]}, index=buckets
)
for t in ERROR_TYPES:
    table[f"ΔAP {t} %"] = [common.fmt_pct(report.delta_ap[b][t], 2) for b in buckets]
for t in ERROR_TYPES:
    table[f"n {t} @thr"] = [int(at.loc[b, t]) for b in buckets]
st.dataframe(table, width="stretch")
st.caption(
    "Types: cls = right place, wrong class; loc = right class, IoU 0.1-0.5; both = wrong class "
    "and mislocalised; dupe = a second detection of an object already found; bkg = nothing "
    "there (IoU ≤ 0.1); miss = no detection near the object. Errors are charged to the object "
    "they are about (bkg: its own size); `ssabnet errors --run` prints the same table."
)

st.subheader("Outcomes by group")
by = st.radio("Group by", ["size_bucket", "class_name", "occlusion"], horizontal=True, key="err_by")
counts = error_counts(run.matches, by, threshold=threshold)
long = counts.reset_index().melt(
    id_vars=by, value_vars=["tp", "fn", "fp"], var_name="outcome", value_name="count"
)
st.plotly_chart(
    px.bar(
        long,
        x=by,
        y="count",
        color="outcome",
        barmode="group",
        color_discrete_map={"tp": "seagreen", "fn": "crimson", "fp": "orange"},
        title=f"{run.name}: TP / FN / FP by {by} at confidence ≥ {threshold:.3f}",
    ),
    width="stretch",
)
st.dataframe(counts.style.format({"recall": "{:.1%}"}, na_rep="–"), width="stretch")
if by == "occlusion":
    st.caption("Detections carry no occlusion level: the FP total is in the row '(detections)'.")

dataset = _dataset(run)
context = st.slider("Crop context (× box size)", 2.0, 8.0, 4.0, key="err_context")

st.subheader("False positives by type and size (most confident first)")
c1, c2, c3 = st.columns(3)
fp_type = c1.selectbox(
    "Type",
    ["all", *FP_TYPES],
    key="err_fp_type",
    format_func=lambda t: t if t == "all" else f"{t} ({TYPE_NAMES[t]})",
)
fp_bucket = c2.selectbox("Size", ["all", *size_bucket_names()], key="err_fp_bucket")
fp_limit = c3.slider("How many", 6, 48, 12, step=6, key="err_fp_limit")
fps = false_positive_gallery(
    labelled,
    threshold,
    None if fp_type == "all" else fp_type,
    None if fp_bucket == "all" else fp_bucket,
    fp_limit,
)
if fps.empty:
    st.info("No false positive of this type and size at this threshold.")
else:
    st.caption("Red: the false positive; green: the object it is about (none for bkg).")
    _gallery(
        fps,
        dataset,
        "",
        [("gt_", (0, 220, 0)), ("", PRED_COLOR)],
        lambda r: (
            f"{r['error_type']} · {r['class_name']} {r['score']:.2f}"
            + (f" on {r['gt_class']}" if isinstance(r["gt_class"], str) else "")
            + f" · IoU {r['best_iou']:.2f} · {r['image_id']}"
        ),
        context,
    )

st.subheader("Missed objects (smallest first)")
c1, c2, c3 = st.columns(3)
miss_buckets = c1.multiselect(
    "Buckets", size_bucket_names(), default=["very_tiny", "tiny"], key="err_buckets"
)
classes = ["all", *sorted(set(run.matches.gts["class_name"]))]
class_name = c2.selectbox("Class", classes, key="err_class")
limit = c3.slider("How many", 4, 48, 12, step=4, key="err_limit")
missed = missed_objects(
    run.matches,
    tuple(miss_buckets),
    None if class_name == "all" else class_name,
    limit,
    threshold=threshold,
)
if missed.empty:
    st.info("No missed object in the chosen buckets/class.")
else:
    near = run.matches.dets.set_index(["image_id", "det_index"])[BOX].reindex(
        pd.MultiIndex.from_arrays([missed["image_id"], missed["near_det"]])
    )
    missed = missed.assign(**{f"near_{c}": near[c].to_numpy() for c in BOX})
    st.dataframe(
        missed[
            [
                "image_id",
                "gt_index",
                "class_name",
                "size",
                "size_bucket",
                "occlusion",
                "near_iou",
                "near_score",
                "near_class",
            ]
        ],
        hide_index=True,
        width="stretch",
    )
    st.caption("Green: the missed object; orange: the nearest detection of any class and score.")
    _gallery(
        missed,
        dataset,
        "",
        [("near_", OTHER_COLOR), ("", (0, 220, 0))],
        lambda r: (
            f"{r['class_name']} {r['size']:.0f}px occ {r['occlusion']} · nearest IoU "
            f"{r['near_iou']:.2f}"
            + (f" ({r['near_score']:.2f})" if r["near_score"] == r["near_score"] else "")
            + f" · {r['image_id']}"
        ),
        context,
    )

st.subheader("Missed by one run, found by another")
others = [i for i in infos if i.name != run.name]
if not others:
    st.info("Only one run has matching tables: nothing to compare with.")
else:
    other_names = [i.name for i in others]
    pick = next((n for n in cfg.compare if n in other_names), other_names[0])
    other_info = others[
        other_names.index(
            st.selectbox(
                "Other run (B)", other_names, index=other_names.index(pick), key="err_other"
            )
        )
    ]
    other_runs = common.load_runs([other_info], split)
    if other_runs and other_runs[0].matches is not None:
        other = other_runs[0]
        _, _, other_best = _analysis(_key(other), other.matches)
        st.caption(
            f"Each run at its own F1-optimal threshold: A = {run.name} at this page's "
            f"{threshold:.3f}, B = {other.name} at {other_best.score:.3f}. Green: the object; "
            "red: the run that found it; orange: the nearest detection of the run that missed it."
        )
        cross_bucket = st.selectbox("Size", ["all", *size_bucket_names()], key="err_cross_bucket")
        bucket_arg = None if cross_bucket == "all" else cross_bucket
        try:
            tab_ab, tab_ba = st.tabs(
                [
                    f"missed by {run.name}, found by {other.name}",
                    f"missed by {other.name}, found by {run.name}",
                ]
            )
            for tab, (a, ta, b, tb) in (
                (tab_ab, (run.matches, threshold, other.matches, other_best.score)),
                (tab_ba, (other.matches, other_best.score, run.matches, threshold)),
            ):
                rows = missed_by_a_found_by_b(a, b, ta, tb, bucket=bucket_arg, limit=12)
                with tab:
                    st.write(f"{len(rows)} objects shown (smallest first).")
                    if not rows.empty:
                        _gallery(
                            rows,
                            dataset,
                            "",
                            [("a_", OTHER_COLOR), ("b_", PRED_COLOR), ("", (0, 220, 0))],
                            lambda r: (
                                f"{r['class_name']} {r['size']:.0f}px · found "
                                f"{r['b_score']:.2f} · {r['image_id']}"
                            ),
                            context,
                        )
        except ValueError as exc:
            st.error(str(exc))

st.subheader("Per-class PR curves and confusion matrix (IoU 0.5)")
pr_bucket = st.selectbox("Size", ["all", *size_bucket_names()], key="err_pr_bucket")
curves = per_class_pr_curves(run.matches, None if pr_bucket == "all" else pr_bucket)
left, right = st.columns(2)
if curves.empty:
    left.info("No objects or detections in this size bucket.")
else:
    left.plotly_chart(
        px.line(
            curves,
            x="recall",
            y="precision",
            color="class_name",
            title=f"Precision-recall per class ({pr_bucket}, all scores)",
            range_x=[0, 1],
            range_y=[0, 1.02],
        ),
        width="stretch",
    )
matrix = confusion_matrix(labelled, threshold)
right.plotly_chart(
    px.imshow(
        matrix,
        text_auto=True,
        color_continuous_scale="Blues",
        aspect="auto",
        labels={"x": "predicted", "y": "true", "color": "count"},
        title=f"Confusion matrix at confidence ≥ {threshold:.3f}",
    ),
    width="stretch",
)
st.caption(
    "Rows: true class (background = no object); columns: predicted class (background = not "
    "detected). Row sums are the objects of a class, column sums the kept detections."
)

st.subheader("Open in FiftyOne")
data_arg = str(cfg.data_spec or (run.config.get("data") or {}).get("val") or "DATA")
if run.predictions is not None:
    fo_handoff = fiftyone_handoff(data_arg, run.predictions, run.name.replace("/", "_"))
    st.code(f"{fo_handoff.index_command}\n{fo_handoff.launch_command}", language="bash")
    st.caption(
        f"The first command indexes this run as field `{fo_handoff.field}` of the FiftyOne "
        f"dataset `{fo_handoff.dataset}` (again: nothing changes); the second opens the App "
        f"(http://127.0.0.1:5151) on the saved view `{fo_handoff.view}`: only the ground truth "
        "this run missed, in full images. Filter it by `size_bucket` in the sidebar."
    )
else:
    st.info(
        f"{run.name} has no predictions.json; write one with `ssabnet val --weights "
        f"{run.weights or 'CKPT'} --data {data_arg} --save-predictions "
        f"{run.path / 'predictions.json'} --out /tmp/metrics.json`, then index it with "
        "`ssabnet fiftyone index`."
    )
