"""Model configuration (owned by the model package; composed into :class:`ssabnet.config.Config`).

``name`` picks a preset from :data:`ssabnet.model.build.PRESETS` (``baseline-{n,s,m}``,
``baseline-{n,s,m}-p2`` (YOLOv8-P2), ``ssabnet-{n,s,m}``, one-part ablations such as
``ssabnet-s-noalign`` and one-part additions such as ``baseline-s-p2-fade``). Every architecture
field left at ``None`` takes the preset's value; a value set here overrides it, e.g.
``model: {name: ssabnet-s, upsampler: carafe, up_kernel: 5}`` in an experiment YAML.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    name: str = "ssabnet-s"
    num_classes: int = 10  # VisDrone's trainable classes
    width: float | None = None  # channel multiplier (YOLOv8: n 0.25, s 0.5, m 0.75)
    depth: float | None = None  # C2f repeat multiplier (n/s 0.33, m 0.67)
    max_channels: int | None = None  # cap before the width multiplier (n/s 1024, m 768)
    use_p2: bool | None = None  # shallow restoration pathway: predict on P2..P5
    upsampler: str | None = None  # nearest | carafe | fade | dysample
    up_kernel: int | None = None  # k_up of carafe/fade reassembly kernels (odd)
    align: str | None = None  # none | flow | deform
    fusion: str | None = None  # concat | gate
    downsample: str | None = None  # conv | blur
    reduce_deep: bool | None = None  # 1x1 the deep map to the lateral width before upsampling
    reg_max: int = 16  # DFL bins per side: distances up to 15 strides (240 px at P5)
    backbone_weights: str | None = None  # local state-dict file for the backbone (no download)
