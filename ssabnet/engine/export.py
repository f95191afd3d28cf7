"""Export the inference graph to TorchScript or ONNX and check it against eager mode.

The exported graph is ``images Tensor[B, 3, S, S] float in [0, 1] -> (pred_boxes Tensor[B, A,
4] xyxy input px, pred_scores Tensor[B, A, C] in [0, 1])``: the network plus DFL decoding and
the sigmoid. Thresholding and class-aware NMS stay outside (data-dependent shapes export badly
and every runtime has its own NMS); :func:`ssabnet.postprocess.select_detections` applies them
to the exported outputs exactly as to eager ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ssabnet.errors import UsageError
from ssabnet.ops.anchors import decode_boxes
from ssabnet.postprocess import select_detections

EXPORT_FORMATS = ("torchscript", "onnx")


class InferenceGraph(nn.Module):
    """``model`` + decoding: ``images -> (pred_boxes [B, A, 4], pred_scores [B, A, C])``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self.model(images)
        pred_boxes = decode_boxes(
            outputs["box_logits"], outputs["anchor_points"], outputs["anchor_strides"]
        )
        return pred_boxes, outputs["cls_logits"].sigmoid()


def export_model(model: nn.Module, fmt: str, out: str | Path, imgsz: int = 640) -> Path:
    """Write ``model``'s inference graph for a ``1 x 3 x imgsz x imgsz`` input to ``out``.

    ``torchscript``: ``torch.jit.trace`` (fixed input size). ``onnx``: opset 17, batch axis
    dynamic, image size fixed at ``imgsz`` (anchors are baked in for that size).
    """
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format {fmt!r} (expected one of {EXPORT_FORMATS})")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    graph = InferenceGraph(model.eval().cpu()).eval()
    example = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if fmt == "torchscript":
            traced = torch.jit.trace(graph, example, check_trace=False)
            traced.save(str(out))
        else:
            torch.onnx.export(
                graph,
                (example,),
                str(out),
                input_names=["images"],
                output_names=["pred_boxes", "pred_scores"],
                opset_version=17,
                dynamic_axes={
                    "images": {0: "batch"},
                    "pred_boxes": {0: "batch"},
                    "pred_scores": {0: "batch"},
                },
                dynamo=False,
            )
    return out


def run_exported(path: str | Path, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run an exported file on ``images`` (CPU); returns ``(pred_boxes, pred_scores)``."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        boxes, scores = session.run(None, {"images": images.cpu().numpy().astype(np.float32)})
        return torch.from_numpy(boxes), torch.from_numpy(scores)
    module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        boxes, scores = module(images.cpu())
    return boxes, scores


def check_export(
    model: nn.Module,
    path: str | Path,
    imgsz: int = 640,
    images: torch.Tensor | None = None,
    conf: float = 0.001,
    iou: float = 0.6,
    atol: float = 1e-2,
) -> dict[str, float]:
    """Compare an exported file with eager mode on the same images.

    Raw outputs must agree to ``atol`` (pixels for boxes) and, after the same thresholding and
    class-aware NMS, the two detection lists must have the same labels and boxes within
    ``atol``. Returns the largest absolute differences; raises ``AssertionError`` otherwise.
    """
    if images is None:
        images = torch.rand(2, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(1))
    graph = InferenceGraph(model.eval().cpu()).eval()
    with torch.no_grad():
        eager_boxes, eager_scores = graph(images)
    boxes, scores = run_exported(path, images)
    box_diff = float((boxes - eager_boxes).abs().max())
    score_diff = float((scores - eager_scores).abs().max())
    if box_diff > atol or score_diff > atol:
        raise AssertionError(
            f"{path}: outputs differ from eager (boxes {box_diff:.3g} px, scores {score_diff:.3g})"
        )
    # The detections eager mode keeps (threshold + class-aware NMS) must come out of the export
    # with the same boxes and scores. They are compared anchor by anchor: re-running NMS on the
    # export could legitimately keep a different one of two boxes whose scores tie to ~1e-7.
    det_diff = 0.0
    for image, det in enumerate(select_detections(eager_boxes, eager_scores, conf, iou)):
        for box, score, label in zip(det["boxes"], det["scores"], det["labels"], strict=True):
            anchors = (eager_boxes[image] == box).all(-1) & (eager_scores[image, :, label] == score)
            anchor = int(anchors.nonzero()[0, 0])
            det_diff = max(
                det_diff,
                float((boxes[image, anchor] - box).abs().max()),
                float((scores[image, anchor, label] - score).abs()),
            )
    if det_diff > atol:
        raise AssertionError(f"{path}: kept detections differ from eager by {det_diff:.3g}")
    return {"max_box_diff": box_diff, "max_score_diff": score_diff, "max_detection_diff": det_diff}
