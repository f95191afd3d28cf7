"""SSA feature maps: one forward pass with taps on a dataset image or an upload (cached)."""

from __future__ import annotations

import hashlib

import plotly.express as px
import streamlit as st

from ssabnet.analysis import (
    PRED_COLOR,
    REDUCTIONS,
    decode_image_bytes,
    draw_boxes,
    feature_heatmap,
    kernel_at,
    offset_magnitude,
    overlay_heatmap,
    read_image_rgb,
    run_with_taps,
)
from ssabnet.app import common


@st.cache_data(show_spinner=False, max_entries=16)
def _feature_view(key: tuple, _model, _image, _gt_boxes, imgsz: int, conf: float):
    del key  # (weights, stamp, image key) identify the inputs
    return run_with_taps(_model, _image, imgsz, _gt_boxes, conf=conf)


cfg = common.page_header(
    "SSA feature maps",
    "Shallow detail, upsampled semantics, alignment offsets, fusion gate and fused output of "
    "each neck level, for one image (one cached forward pass on CPU).",
)
all_infos = common.run_infos(cfg)
infos = [i for i in all_infos if i.weights is not None]
imported = [i.name for i in all_infos if i.kind == "imported"]
if imported:
    st.info(
        f"Not listed: {', '.join(imported)}: imported runs (another detector's predictions, "
        "no weights). Feature maps need an SSABNet checkpoint; their metrics, comparisons and "
        "error analysis are on the other pages."
    )
if not infos:
    st.warning("No run with weights (weights/best.pt or last.pt) under the runs folder.")
    st.stop()
names = [i.name for i in infos]
ssa_first = next((i for i, info in enumerate(infos) if info.model.startswith("ssabnet")), 0)
info = infos[names.index(st.selectbox("Checkpoint", names, index=ssa_first, key="fm_run"))]
try:
    with st.spinner(f"Loading {info.weights} ..."):
        loaded = common.cached_checkpoint(str(info.weights), info.weights.stat().st_mtime)
except Exception as exc:  # a corrupt/foreign checkpoint must not crash the page
    st.error(f"Cannot load checkpoint {info.weights}: {exc}")
    st.stop()
class_names = list(loaded.info.classes)

source = st.radio("Image", ["From the dataset", "Upload"], horizontal=True, key="fm_source")
gt_boxes = None
if source == "Upload":
    upload = st.file_uploader("An image (JPEG/PNG/BMP)", key="fm_upload")
    if upload is None:
        st.info("Upload an image to see its feature maps.")
        st.stop()
    data = upload.getvalue()
    try:
        image = decode_image_bytes(data, upload.name)
    except ValueError as exc:
        st.error(f"Refused: {exc}")
        st.stop()
    image_key = hashlib.sha256(data).hexdigest()
else:
    spec = common.dataset_spec(cfg, loaded.config)
    if spec is None:
        st.stop()
    try:
        with st.spinner(f"Loading dataset {spec} ..."):
            dataset = common.cached_dataset(str(spec))
    except (ValueError, FileNotFoundError) as exc:
        st.error(f"Cannot load dataset {spec}: {exc}")
        st.stop()
    ids = [r.image_id for r in dataset.records]
    image_id = st.selectbox(f"Image ({len(ids)} in {dataset.info.name})", ids, key="fm_image")
    record = dataset.records[ids.index(image_id)]
    try:
        image = read_image_rgb(record.image_path)
    except ValueError as exc:
        st.error(str(exc))
        st.stop()
    gt_boxes = record.boxes
    image_key = f"{spec}:{image_id}"

train_cfg = loaded.config.get("train") or {}
c1, c2 = st.columns(2)
imgsz = int(
    c1.number_input(
        "Input size (px, multiple of 32)",
        64,
        1280,
        int(train_cfg.get("imgsz", 640)),
        step=32,
        key="fm_imgsz",
    )
)
conf = c2.slider("Score threshold for drawn predictions", 0.01, 0.9, 0.25, key="fm_conf")
if imgsz % 32:
    st.error("The input size must be a multiple of 32 (the coarsest stride).")
    st.stop()
with st.spinner("Running the model with feature taps ..."):
    view = _feature_view(
        (str(info.weights), info.weights.stat().st_mtime, image_key),
        loaded.model,
        image,
        gt_boxes,
        imgsz,
        conf,
    )

captions = [
    f"{class_names[int(lab)]} {score:.2f}" if 0 <= lab < len(class_names) else ""
    for lab, score in zip(view.pred_labels, view.pred_scores, strict=True)
]
boxed = draw_boxes(view.input_image, view.gt_boxes)
boxed = draw_boxes(boxed, view.pred_boxes, captions=captions, color=PRED_COLOR)
levels = sorted({name.split(".")[0] for name in view.taps})
c1, c2, c3, c4 = st.columns(4)
level = c1.selectbox("Neck level (p2 finest)", levels, key="fm_level")
kinds = [name.split(".", 1)[1] for name in sorted(view.taps) if name.startswith(level + ".")]
default_kind = "gate" if "gate" in kinds else kinds[0]
kind = c2.selectbox("Tap", kinds, index=kinds.index(default_kind), key="fm_tap")
reduce = c3.selectbox("Channel reduction", REDUCTIONS, index=1, key="fm_reduce")
alpha = c4.slider("Overlay opacity", 0.0, 1.0, 0.5, key="fm_alpha")

tensor = view.taps[f"{level}.{kind}"]
is_offsets = kind in ("offsets", "sample_offsets")
if is_offsets:
    shown = offset_magnitude(tensor)  # px, plotted as is
    heat = feature_heatmap(shown[None], 0)
    title = f"{level}.{kind}: mean offset length (px), shape {tuple(tensor.shape)}"
else:
    heat = shown = feature_heatmap(tensor, reduce if tensor.shape[0] > 1 else 0)
    title = f"{level}.{kind} ({reduce}, scaled to 0-1), shape {tuple(tensor.shape)}"
left, right = st.columns(2)
left.image(
    boxed, caption=f"input {imgsz}px: GT green, predictions red ({len(captions)})", width="stretch"
)
right.image(
    overlay_heatmap(view.input_image, heat, alpha),
    caption=f"{level}.{kind} over the image",
    width="stretch",
)
st.plotly_chart(px.imshow(shown, color_continuous_scale="Inferno", title=title), width="stretch")

with st.expander(f"All taps of {level}", expanded=False):
    columns = st.columns(4)
    for i, name in enumerate(kinds):
        t = view.taps[f"{level}.{name}"]
        if name in ("offsets", "sample_offsets"):
            small = feature_heatmap(offset_magnitude(t)[None], 0)
        else:
            small = feature_heatmap(t, "l2" if t.shape[0] > 1 else 0)
        columns[i % 4].image(
            overlay_heatmap(view.input_image, small, 0.7),
            caption=f"{level}.{name} {tuple(t.shape)}",
            width="stretch",
        )

kernel_name = f"{level}.kernels"
if kernel_name in view.taps:
    st.subheader("Reassembly kernel at a location")
    kernels = view.taps[kernel_name]
    height, width = kernels.shape[1:]
    kx = st.slider("cell x", 0, width - 1, width // 2, key="fm_kx")
    ky = st.slider("cell y", 0, height - 1, height // 2, key="fm_ky")
    st.plotly_chart(
        px.imshow(
            kernel_at(kernels, kx, ky),
            text_auto=".2f",
            color_continuous_scale="Blues",
            title=f"{kernel_name} at cell ({kx}, {ky})",
        ),
        width="stretch",
    )
else:
    st.caption(
        f"No content-aware reassembly kernels at {level} (nearest/DySample upsampling or "
        "the coarsest level)."
    )
