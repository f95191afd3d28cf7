"""SABL gradient curves: loss and gradient vs. displacement, and the modulation mu(s)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from ssabnet import loss_curves
from ssabnet.analysis import modulation_curve
from ssabnet.app import common

KINDS = ["iou", "giou", "diou", "ciou", "eiou", "nwd", "sabl", "sabl-paper"]
#: Shown name -> (box loss kind, fixed parameters): the two SABL readings side by side.
VARIANT_KINDS = {
    "sabl": ("sabl", {"variant": "relative"}),
    "sabl-paper": ("sabl", {"variant": "paper"}),
}
COMPONENTS = {"x": "grad_cx", "y": "grad_cy", "xy": "grad_norm", "size": "grad_w"}
GRADIENTS = ["grad_norm", "grad_cx", "grad_cy", "grad_w", "grad_h"]


@st.cache_data(show_spinner=False, max_entries=64)
def _curves(
    kinds: tuple[str, ...],
    size: float,
    max_offset: float,
    points: int,
    direction: str,
    scale: float,
    nwd_c: float,
    kappa: float,
    beta: float,
    sabl_c: float,
    c_rel: float,
) -> pd.DataFrame:
    offsets = np.linspace(-max_offset, max_offset, points)
    sabl = {"kappa": kappa, "beta": beta, "C": sabl_c, "c_rel": c_rel}
    params = {"nwd": {"C": nwd_c}, "sabl": sabl, "sabl-paper": sabl}
    frames = []
    for name in kinds:
        kind, fixed = VARIANT_KINDS.get(name, (name, {}))
        table = loss_curves(
            kind, size, offsets, direction=direction, scale=scale, **params.get(name, {}), **fixed
        )
        frames.append(table.assign(kind=name))
    return pd.concat(frames, ignore_index=True)


common.page_header(
    "SABL gradient curves",
    "How each box loss and its gradient react when a prediction slides off a ground-truth "
    "square of a given size. IoU-type gradients vanish once boxes stop overlapping; NWD's do "
    "not; SABL hands over from a Wasserstein penalty (tiny) to CIoU (large) with the weight "
    "mu(s). 'sabl' is the default reading (Wasserstein distance relative to the object size: "
    "its centre gradient stays at least CIoU's up to 4 object sizes of offset); 'sabl-paper' "
    "the literal one (1 - exp(-W/C) with a fixed C, whose gradient fades beyond about 2C).",
)
c1, c2, c3 = st.columns(3)
size = c1.slider("Object size s (px)", 2, 128, 12, key="sabl_size")
max_offset = c2.slider("Offset range ± (px)", 1, 128, 32, key="sabl_range")
direction = c3.selectbox(
    "Displacement",
    ["x", "y", "xy", "size"],
    key="sabl_dir",
    help="x/y/xy: move the centre; size: grow/shrink the prediction",
)
kinds = st.multiselect(
    "Losses", KINDS, default=["iou", "ciou", "nwd", "sabl", "sabl-paper"], key="sabl_kinds"
)
c4, c5, c6, c7, c8 = st.columns(5)
nwd_c = c4.number_input("NWD C (px)", 1.0, 200.0, 12.8, key="sabl_nwd_c")
kappa = c5.number_input("SABL κ (px)", 1.0, 256.0, 32.0, key="sabl_kappa")
beta = c6.number_input("SABL β", 0.5, 50.0, 6.0, key="sabl_beta")
sabl_c = c7.number_input("sabl-paper C (px)", 1.0, 200.0, 12.0, key="sabl_c")
c_rel = c8.number_input("sabl C / object size", 0.05, 4.0, 0.75, key="sabl_c_rel")
scale = st.slider("Prediction size / GT size", 0.25, 4.0, 1.0, key="sabl_scale")
if not kinds:
    st.info("Pick at least one loss.")
    st.stop()

try:
    table = _curves(
        tuple(kinds),
        float(size),
        float(max_offset),
        241,
        direction,
        float(scale),
        float(nwd_c),
        float(kappa),
        float(beta),
        float(sabl_c),
        float(c_rel),
    )
except (ValueError, TypeError) as exc:
    st.error(f"Cannot compute the curves: {exc}")
    st.stop()

component = st.selectbox(
    "Gradient component",
    GRADIENTS,
    index=GRADIENTS.index(COMPONENTS[direction]),
    help="grad_norm: length of the whole gradient (cx, cy, w, h); the others: one component",
    key="sabl_component",
)
left, right = st.columns(2)
left.plotly_chart(
    px.line(
        table,
        x="offset",
        y="loss",
        color="kind",
        title=f"Loss vs offset ({direction}), s = {size} px",
    ),
    width="stretch",
)
shown = table.assign(magnitude=table[component].abs())
right.plotly_chart(
    px.line(
        shown,
        x="offset",
        y="magnitude",
        color="kind",
        title=(
            f"||d loss / d box|| (1/px), s = {size} px"
            if component == "grad_norm"
            else f"|d loss / d {component[5:]}| (1/px), s = {size} px"
        ),
    ),
    width="stretch",
)

MU_SIZES = (1.0, 256.0)  # px: the x range of the mu(s) plot (VisDrone objects: 2 px to ~200 px)
sizes = np.geomspace(*MU_SIZES, 200)
mu = modulation_curve(sizes, kappa=float(kappa), beta=float(beta))
figure = px.line(
    mu,
    x="size",
    y="mu",
    title="SABL modulation μ(s): weight of the NWD term",
    log_x=True,
    labels={"size": "object size s = √(w·h) (px, log scale)", "mu": "μ(s)"},
)
# Vertical markers are traces, not add_vline: on a log axis add_vline's annotation is placed
# at log10 coordinates and stretched the axis to 10^12 px.
for x, label, dash in (
    (float(kappa), f"κ = {kappa:g} px", "dot"),
    (float(size), f"s = {size} px", "dash"),
):
    x = min(max(x, MU_SIZES[0]), MU_SIZES[1])
    figure.add_scatter(
        x=[x, x],
        y=[0.0, 1.08],
        mode="lines+text",
        text=["", label],
        textposition="top center",
        line={"dash": dash, "color": "gray"},
        showlegend=False,
        hoverinfo="skip",
    )
figure.update_xaxes(
    range=[np.log10(MU_SIZES[0]), np.log10(MU_SIZES[1])],
    tickvals=[1, 2, 4, 8, 16, 32, 64, 128, 256],
)
figure.update_yaxes(range=[0.0, 1.18])
st.plotly_chart(figure, width="stretch")
with st.expander("Curve table"):
    st.dataframe(table, width="stretch", hide_index=True)
