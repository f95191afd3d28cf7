"""From raw model outputs to per-image detections: decode, threshold, class-aware NMS, fusion.

``postprocess(outputs)`` turns the model's dict (see ``SSABNet.forward``) into torchvision-style
``[{"boxes": Tensor[N, 4] xyxy input px, "scores": Tensor[N], "labels": Tensor[N] int64}]``.
NMS is ``torchvision.ops.batched_nms`` (class-aware: boxes of different classes never suppress
each other). :func:`weighted_box_fusion` (Solovyev et al., "Weighted boxes fusion", 2021) is our
own implementation, used to merge tiles of sliced inference.
"""

from __future__ import annotations

import torch
from torchvision.ops import batched_nms, box_iou

from ssabnet.data.transforms import LetterboxParams
from ssabnet.ops.anchors import decode_boxes
from ssabnet.ops.boxes import clip_boxes_xyxy
from ssabnet.protocol import MAX_DET

# Candidates kept per image before NMS: with conf 0.001 and 10 classes an untrained model would
# otherwise send every (anchor, class) pair to NMS (cost grows ~quadratically).
MAX_CANDIDATES = 30000


def select_detections(
    pred_boxes: torch.Tensor,
    pred_scores: torch.Tensor,
    conf_threshold: float = 0.001,
    iou_threshold: float = 0.6,
    max_det: int = MAX_DET,
    max_candidates: int = MAX_CANDIDATES,
) -> list[dict[str, torch.Tensor]]:
    """Threshold + class-aware NMS on decoded predictions (one (anchor, class) pair = one box).

    Args:
        pred_boxes: ``Tensor[B, A, 4]`` xyxy input pixels.
        pred_scores: ``Tensor[B, A, C]`` class probabilities in ``[0, 1]``.
        conf_threshold: minimum score of a kept (anchor, class) pair.
        iou_threshold: IoU above which a lower-scored box of the same class is suppressed.
        max_det: detections kept per image, highest scores first.
        max_candidates: top-scoring pairs sent to NMS per image.

    Returns:
        One dict per image: ``boxes Tensor[N, 4]`` (float32), ``scores Tensor[N]``,
        ``labels Tensor[N]`` int64, sorted by descending score.
    """
    results = []
    num_classes = pred_scores.shape[-1]
    for boxes, scores in zip(pred_boxes, pred_scores, strict=True):
        flat = scores.reshape(-1)  # [A * C], index = anchor * C + class
        keep = flat > conf_threshold
        candidate_idx = keep.nonzero().squeeze(1)
        candidate_scores = flat[candidate_idx]
        if candidate_idx.numel() > max_candidates:
            top = candidate_scores.topk(max_candidates).indices
            candidate_idx, candidate_scores = candidate_idx[top], candidate_scores[top]
        anchor_idx = candidate_idx // num_classes
        labels = candidate_idx % num_classes
        cand_boxes = boxes[anchor_idx].float()
        kept = batched_nms(cand_boxes, candidate_scores.float(), labels, iou_threshold)[:max_det]
        results.append(
            {
                "boxes": cand_boxes[kept],
                "scores": candidate_scores[kept].float(),
                "labels": labels[kept],
            }
        )
    return results


def postprocess(
    outputs: dict[str, torch.Tensor],
    conf_threshold: float = 0.001,
    iou_threshold: float = 0.6,
    max_det: int = MAX_DET,
) -> list[dict[str, torch.Tensor]]:
    """Raw model outputs -> per-image detections in input pixels.

    Args:
        outputs: the model's dict with ``cls_logits Tensor[B, A, C]``, ``box_logits
            Tensor[B, A, 4, reg_max]``, ``anchor_points Tensor[A, 2]``, ``anchor_strides
            Tensor[A]``.

    Returns:
        See :func:`select_detections`; boxes are xyxy pixels of the (letterboxed) input.
    """
    pred_boxes = decode_boxes(
        outputs["box_logits"], outputs["anchor_points"], outputs["anchor_strides"]
    )
    pred_scores = outputs["cls_logits"].sigmoid()
    return select_detections(pred_boxes, pred_scores, conf_threshold, iou_threshold, max_det)


def boxes_input_to_original(boxes: torch.Tensor, params: LetterboxParams) -> torch.Tensor:
    """Letterboxed input pixels -> original image pixels, clipped to the original image.

    Inverse of ``input = original * scale + pad`` (:func:`ssabnet.data.transforms.letterbox`).

    Args:
        boxes: ``Tensor[N, 4]`` xyxy input pixels.
        params: how the image was letterboxed.
    """
    offset = boxes.new_tensor([params.pad_x, params.pad_y, params.pad_x, params.pad_y])
    out = (boxes - offset) / params.scale
    return clip_boxes_xyxy(out, params.orig_width, params.orig_height)


def merge_detections(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    method: str = "nms",
    iou_threshold: float = 0.6,
    max_det: int = MAX_DET,
) -> dict[str, torch.Tensor]:
    """Merge overlapping detections of one image from several views (tiles + full image).

    Args:
        boxes: ``Tensor[N, 4]`` xyxy original pixels; ``scores Tensor[N]``; ``labels Tensor[N]``.
        method: ``"nms"`` (class-aware, keeps the best box) or ``"wbf"`` (score-weighted average
            of each cluster, :func:`weighted_box_fusion`).
    """
    if method == "nms":
        keep = batched_nms(boxes.float(), scores.float(), labels, iou_threshold)[:max_det]
        return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}
    if method == "wbf":
        return weighted_box_fusion(boxes, scores, labels, iou_threshold, max_det)
    raise ValueError(f"unknown merge method {method!r} (expected 'nms' or 'wbf')")


def weighted_box_fusion(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    iou_threshold: float = 0.55,
    max_det: int = MAX_DET,
) -> dict[str, torch.Tensor]:
    """Weighted boxes fusion (Solovyev, Wang, Gabruseva, *Image and Vision Computing* 2021).

    Boxes are visited by descending score; a box joins the first cluster of its class whose
    fused box overlaps it with IoU > ``iou_threshold``, otherwise it starts a new cluster. A
    cluster's box is the score-weighted mean of its members and its score the mean member score
    (single-model variant: no division by the number of models).

    Args:
        boxes: ``Tensor[N, 4]`` xyxy; scores: ``Tensor[N]``; labels: ``Tensor[N]`` int64.

    Returns:
        ``{"boxes", "scores", "labels"}`` of the fused clusters, by descending score.
    """
    order = scores.argsort(descending=True)
    boxes, scores, labels = boxes[order].float(), scores[order].float(), labels[order]
    fused_boxes: list[torch.Tensor] = []
    fused_labels: list[int] = []
    weighted_sums: list[torch.Tensor] = []
    score_sums: list[float] = []
    counts: list[int] = []
    for box, score, label in zip(boxes, scores, labels.tolist(), strict=True):
        same_class = [i for i, lab in enumerate(fused_labels) if lab == label]
        match = -1
        if same_class:
            ious = box_iou(box[None], torch.stack([fused_boxes[i] for i in same_class]))[0]
            best = int(ious.argmax())
            if float(ious[best]) > iou_threshold:
                match = same_class[best]
        if match < 0:
            fused_boxes.append(box.clone())
            fused_labels.append(label)
            weighted_sums.append(box * score)
            score_sums.append(float(score))
            counts.append(1)
        else:
            weighted_sums[match] = weighted_sums[match] + box * score
            score_sums[match] += float(score)
            counts[match] += 1
            fused_boxes[match] = weighted_sums[match] / score_sums[match]
    if not fused_boxes:
        return {
            "boxes": boxes.new_zeros((0, 4)),
            "scores": scores.new_zeros((0,)),
            "labels": labels.new_zeros((0,)),
        }
    out_scores = torch.tensor(
        [s / c for s, c in zip(score_sums, counts, strict=True)], dtype=torch.float32
    )
    out_order = out_scores.argsort(descending=True)[:max_det]
    return {
        "boxes": torch.stack(fused_boxes)[out_order],
        "scores": out_scores[out_order],
        "labels": torch.tensor(fused_labels, dtype=torch.int64)[out_order],
    }
