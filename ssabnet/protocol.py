"""Constants of the evaluation protocol that inference, training, evaluation and the CLI share,
defined once here (the bottom layer, so that every layer may import them)."""

from __future__ import annotations

#: Detections kept per image after NMS and scored by the evaluator: VisDrone's official toolkit
#: scores at most 500 detections per image (COCO's 100 would truncate crowded drone images).
MAX_DET = 500
