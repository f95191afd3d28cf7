"""Runs & per-scale AP: summary table, AP per size bucket and per class, training curves."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from ssabnet.analysis import (
    SUMMARY_METRICS,
    per_class_table,
    runs_summary,
    scale_ap_table,
    training_curves,
)
from ssabnet.app import common


def _is_metric(name: str) -> bool:
    """AP/AR columns (fractions in metrics.json and results.csv): shown in percent here."""
    return str(name).startswith(("AP", "AR"))


def _percent(frame, columns):
    return frame.assign(**{c: 100 * frame[c] for c in columns if c in frame})


cfg = common.page_header(
    "Runs & per-scale AP",
    "COCO AP at 500 detections per image, split into the five size buckets of ssabnet.scales.",
)
infos = common.extra_run_box(cfg, common.run_infos(cfg), key="runs_extra")
split = common.split_selector(key="runs_split")
chosen = common.run_selector(infos, "Runs", key="runs_pick")
if not chosen:
    st.info("Pick at least one run.")
    st.stop()
runs = common.load_runs(chosen, split)
if not runs:
    st.stop()
for run in runs:
    for note in run.notes:
        st.info(f"{run.name}: {note}")

summary = runs_summary(runs)
columns = st.columns(min(4, len(runs)))
for column, (_, row) in zip(columns, summary.iterrows(), strict=False):
    column.metric(
        f"{row['run']} · AP",
        common.fmt_pct(row["AP"]),
        help=f"AP50 {common.fmt_pct(row['AP50'])}, tiny AP {common.fmt_pct(row['AP_t'])}",
    )
metric_columns = [c for c in summary.columns if _is_metric(c)]
st.dataframe(
    _percent(summary, metric_columns),
    hide_index=True,
    width="stretch",
    column_config={
        c: st.column_config.NumberColumn(f"{c} %", format="%.1f") for c in metric_columns
    },
)
st.caption("All AP and AR figures on this page are in percent (metrics.json stores fractions).")

headline = st.multiselect(
    "Headline metrics",
    ["AP", "AP50", "AP75", "APs", "AR500"],
    default=["AP", "AP50", "AP75"],
    key="runs_headline",
)
if headline:
    long = _percent(summary, headline).melt(
        id_vars="run", value_vars=headline, var_name="metric", value_name="value"
    )
    st.plotly_chart(
        px.bar(
            long,
            x="metric",
            y="value",
            color="run",
            barmode="group",
            title="Headline metrics",
            labels={"value": "%"},
        ),
        width="stretch",
    )

st.subheader("AP per size bucket")
st.plotly_chart(
    px.bar(
        _percent(scale_ap_table(runs), ["AP"]),
        x="bucket",
        y="AP",
        color="run",
        barmode="group",
        labels={"AP": "AP %"},
        title="AP@[.5:.95] by object size (sqrt(area) px: <8, 8-16, 16-32, 32-96, >=96)",
    ),
    width="stretch",
)

st.subheader("AP per class")
class_metric = st.selectbox("Per-class metric", list(SUMMARY_METRICS), key="runs_class_metric")
per_class = per_class_table(runs, class_metric)
if per_class[class_metric].notna().any():
    st.plotly_chart(
        px.bar(
            _percent(per_class, [class_metric]),
            x="class_name",
            y=class_metric,
            color="run",
            barmode="group",
            labels={class_metric: f"{class_metric} %"},
        ),
        width="stretch",
    )
else:
    st.info(f"No class has ground truth for {class_metric}.")

st.subheader("Training curves")
curves = training_curves(runs)
if curves.empty:
    st.info("No results.csv in the selected runs.")
else:
    terms = sorted(set(curves["term"]) - {"time"})
    default = [t for t in ("loss", "box", "AP50") if t in terms] or terms[:2]
    picked = st.multiselect("Columns of results.csv", terms, default=default, key="runs_terms")
    if picked:
        shown = curves[curves["term"].isin(picked)]
        metric_rows = shown["term"].map(_is_metric)
        shown = shown.assign(value=shown["value"].where(~metric_rows, 100 * shown["value"]))
        figure = px.line(
            shown,
            x="epoch",
            y="value",
            color="run",
            facet_col="term",
            facet_col_wrap=3,
            markers=True,
        )
        figure.update_yaxes(matches=None, showticklabels=True)
        st.caption("AP/AR curves in percent; losses as logged.")
        st.plotly_chart(figure, width="stretch")
