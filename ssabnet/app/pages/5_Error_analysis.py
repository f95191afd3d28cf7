"""Error analysis: TP/FN/FP by size bucket, class and occlusion; gallery of missed tiny objects."""

from __future__ import annotations

import shlex

import plotly.express as px
import streamlit as st

from ssabnet.analysis import (
    crop_with_context,
    draw_boxes,
    error_counts,
    missed_objects,
    read_image_rgb,
    size_bucket_names,
)
from ssabnet.app import common

cfg = common.page_header(
    "Error analysis",
    "Misses (FN) and false alarms (FP) at IoU 0.5 from the saved matching tables, and the "
    "tiny objects the detector did not find.",
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

by = st.radio("Group by", ["size_bucket", "class_name", "occlusion"], horizontal=True, key="err_by")
counts = error_counts(run.matches, by)
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
        title=f"{run.name}: TP / FN / FP by {by}",
    ),
    width="stretch",
)
st.dataframe(counts.style.format({"recall": "{:.3f}"}, na_rep="–"), width="stretch")
if by == "occlusion":
    st.caption("Detections carry no occlusion level: the FP total is in the row '(detections)'.")

st.subheader("Missed objects (smallest first)")
c1, c2, c3, c4 = st.columns(4)
buckets = c1.multiselect(
    "Buckets", size_bucket_names(), default=["very_tiny", "tiny"], key="err_buckets"
)
classes = ["all", *sorted(set(run.matches.gts["class_name"]))]
class_name = c2.selectbox("Class", classes, key="err_class")
limit = c3.slider("How many", 4, 48, 12, step=4, key="err_limit")
context = c4.slider("Context (× object size)", 2.0, 8.0, 4.0, key="err_context")
missed = missed_objects(
    run.matches, tuple(buckets), None if class_name == "all" else class_name, limit
)
if missed.empty:
    st.info("No missed object in the chosen buckets/class.")
else:
    spec = common.dataset_spec(cfg, run.config)
    dataset = None
    if spec is not None:
        try:
            with st.spinner(f"Loading dataset {spec} ..."):
                dataset = common.cached_dataset(str(spec))
        except (ValueError, FileNotFoundError) as exc:
            st.error(f"Cannot load dataset {spec}: {exc}")
    st.dataframe(
        missed[
            ["image_id", "gt_index", "class_name", "size", "size_bucket", "occlusion", "truncation"]
        ],
        hide_index=True,
        width="stretch",
    )
    if dataset is not None:
        records = dataset.by_id()
        columns = st.columns(6)
        for i, row in missed.iterrows():
            record = records.get(row["image_id"])
            if record is None:
                columns[i % 6].warning(f"{row['image_id']} not in {spec}")
                continue
            image = read_image_rgb(record.image_path)
            crop, box = crop_with_context(
                image, [row["x1"], row["y1"], row["x2"], row["y2"]], context=context, min_side=32
            )
            columns[i % 6].image(
                draw_boxes(crop, box[None]),
                width="stretch",
                caption=f"{row['class_name']} {row['size']:.0f}px "
                f"occ {row['occlusion']} · {row['image_id']}",
            )

st.subheader("Open in FiftyOne")
data_arg = str(cfg.data_spec or (run.config.get("data") or {}).get("val") or "DATA")
fo_name = f"ssabnet-{run.name.replace('/', '-')}"
if run.predictions is not None:
    index = (
        f"ssabnet fiftyone index --data {shlex.quote(data_arg)} --pred "
        f"{shlex.quote(run.name.replace('/', '_') + '=' + str(run.predictions))} "
        f"--name {fo_name} --eval --persistent"
    )
    st.code(f"{index}\nssabnet fiftyone launch --name {fo_name}", language="bash")
    st.caption(
        "In the FiftyOne App, filter the ground truth on eval = 'fn' and size_bucket "
        "to see the same misses in full images."
    )
else:
    st.info(
        f"{run.name} has no predictions.json; write one with `ssabnet val --weights "
        f"{run.weights or 'CKPT'} --data {data_arg} --save-predictions "
        f"{run.path / 'predictions.json'} --out /tmp/metrics.json`, then index it with "
        "`ssabnet fiftyone index`."
    )
