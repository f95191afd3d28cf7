"""Compare checkpoints: metric deltas, paired bootstrap CIs per bucket/class, PR curves."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ssabnet.analysis import (
    MatchTables,
    bootstrap_ap_difference,
    compare_metrics,
    precision_recall_curve,
    size_bucket_names,
)
from ssabnet.app import common


@st.cache_data(show_spinner=False, max_entries=16)
def _bootstrap(
    key: tuple, _a: MatchTables, _b: MatchTables, n_boot: int, seed: int, by: str, metric: str
):
    del key  # cache key: (run a, run b, split, stamps)
    return bootstrap_ap_difference(_a, _b, n_boot=n_boot, seed=seed, by=by, metric=metric)


def _fmt_p(p: float, n_boot: int) -> str:
    """A bootstrap p-value as text: below the resampling resolution (2 / n_boot) or 0.001 it
    is only known to be small, so say "< x" instead of printing 0.000."""
    if p != p:
        return "–"
    floor = max(0.001, 2.0 / n_boot)
    return f"< {floor:.2g}" if p < floor else f"{p:.3f}"


def _ci_figure(table: pd.DataFrame, title: str, metric: str) -> go.Figure:
    figure = go.Figure()
    for group, row in table.iterrows():
        figure.add_trace(
            go.Scatter(
                x=[row["ci_low"], row["ci_high"]],
                y=[group, group],
                mode="lines",
                line={"width": 6, "color": "lightsteelblue"},
                showlegend=False,
                hoverinfo="x",
            )
        )
    figure.add_trace(
        go.Scatter(
            x=table["delta"],
            y=list(table.index),
            mode="markers",
            marker={"size": 11, "color": "crimson"},
            name="delta",
        )
    )
    figure.add_vline(x=0.0, line_dash="dash", line_color="gray")
    figure.update_layout(
        title=title,
        xaxis_title=f"{metric} difference (B - A), % points, 95% CI",
        yaxis={"autorange": "reversed"},
        height=120 + 40 * len(table),
    )
    return figure


cfg = common.page_header(
    "Compare checkpoints",
    "Deltas per size bucket and class with a paired bootstrap over images: is a gain on tiny "
    "objects real or noise? Uses the saved matching tables; nothing is re-run.",
)
infos = [i for i in common.run_infos(cfg) if i.has_matches]
if len(infos) < 2:
    st.warning("Comparison needs two runs with saved matching tables (val/*/matches_*.parquet).")
    st.stop()
names = [i.name for i in infos]
wanted = [n for n in cfg.compare if n in names]
reference_name = st.selectbox(
    "Reference run A", names, index=names.index(wanted[0]) if wanted else 0, key="cmp_ref"
)
others_default = [n for n in wanted[1:] if n != reference_name] or [
    n for n in names if n != reference_name
][:1]
others = st.multiselect(
    "Runs B to compare with A",
    [n for n in names if n != reference_name],
    default=others_default,
    key="cmp_others",
)
split = common.split_selector(key="cmp_split")
if not others:
    st.info("Pick at least one run B.")
    st.stop()
runs = common.load_runs([i for i in infos if i.name in [reference_name, *others]], split)
for run in [r for r in runs if r.matches is None]:
    st.warning(f"{run.name}: no matching tables in val/{run.split}; left out.")
runs = [r for r in runs if r.matches is not None]
by_name = {run.name: run for run in runs}
if reference_name not in by_name or not any(n in by_name for n in others):
    st.stop()
reference = by_name[reference_name]

st.subheader("Metric deltas (B - A)")
deltas = compare_metrics(runs, reference_name)
pivot = deltas.pivot(index="metric", columns="run", values="delta").reindex(
    deltas["metric"].drop_duplicates()
)
st.dataframe((100 * pivot).style.format("{:+.2f}", na_rep="–"), width="stretch")
st.caption("Differences in percentage points (B - A).")
st.plotly_chart(
    px.bar(
        deltas.assign(delta=100 * deltas["delta"]),
        x="metric",
        y="delta",
        color="run",
        barmode="group",
        labels={"delta": "B - A (% points)"},
        title=f"Metric differences against {reference_name}",
    ),
    width="stretch",
)

st.subheader("Paired bootstrap over images")
c0, c1, c2, c3 = st.columns(4)
metric = c0.radio(
    "AP",
    ["AP50", "AP"],
    horizontal=True,
    key="cmp_metric",
    help="AP50 at IoU 0.5, or AP = AP@[.5:.95] (the tables re-matched at the ten COCO IoU "
    "thresholds: about 8x slower, ~3 CPU min for 200 resamples at VisDrone-val scale)",
)
n_boot = c1.select_slider("Resamples", [100, 200, 500, 1000, 2000], value=200, key="cmp_nboot")
seed = c2.number_input("Seed", 0, 10_000, 0, key="cmp_seed")
by = c3.radio("Group by", ["bucket", "class"], horizontal=True, key="cmp_by")
for name in others:
    if name not in by_name:
        continue
    run = by_name[name]
    key = (str(reference.path), str(run.path), reference.split, run.split)
    with st.spinner(f"Bootstrapping {reference_name} vs {name} ({n_boot} resamples)..."):
        try:
            table = _bootstrap(key, reference.matches, run.matches, n_boot, int(seed), by, metric)
        except ValueError as exc:
            st.error(f"{reference_name} vs {name}: {exc}")
            continue
    st.markdown(f"**A = {reference_name}, B = {name}** ({metric} in %, differences in % points)")
    shown = table.copy()
    for column in ("ap_a", "ap_b", "delta", "ci_low", "ci_high"):
        shown[column] = 100 * shown[column]
    shown["p_value"] = [_fmt_p(p, n_boot) for p in table["p_value"]]
    st.dataframe(
        shown.style.format(
            {
                "ap_a": "{:.1f}",
                "ap_b": "{:.1f}",
                "delta": "{:+.2f}",
                "ci_low": "{:+.2f}",
                "ci_high": "{:+.2f}",
            },
            na_rep="–",
        ),
        width="stretch",
    )
    percent = table.assign(**{c: 100 * table[c] for c in ("delta", "ci_low", "ci_high")})
    st.plotly_chart(
        _ci_figure(percent, f"{metric}: {name} - {reference_name}", metric), width="stretch"
    )

st.subheader("Precision-recall curves (IoU 0.5, classes pooled)")
bucket = st.selectbox("Size bucket", ["all", *size_bucket_names()], key="cmp_bucket")
frames = []
for run in runs:
    curve = precision_recall_curve(run.matches, None if bucket == "all" else bucket)
    frames.append(curve.assign(run=run.name))
curves = pd.concat(frames, ignore_index=True)
if curves.empty:
    st.info(f"No counted detections or ground truth in bucket {bucket!r}.")
else:
    figure = px.line(
        curves,
        x="recall",
        y="precision",
        color="run",
        title=f"PR curve, bucket {bucket}",
        hover_data=["score"],
    )
    figure.update_layout(xaxis_range=[0, 1], yaxis_range=[0, 1.02])
    st.plotly_chart(figure, width="stretch")
