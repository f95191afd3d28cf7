"""Object-size buckets, defined once for data statistics, evaluation, FiftyOne and the app.

Size is ``sqrt(w * h)`` of the ground-truth box in original image pixels. The AI-TOD tiny
buckets (very tiny < 8, tiny 8-16, small 16-32) refine COCO's "small" (< 32); COCO's medium
(32-96) and large (> 96) are kept. Intervals are half-open ``[lo, hi)`` on the size, which is
the same as COCO's area ranges ``[lo**2, hi**2)`` on the area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SizeBucket:
    name: str
    lo: float  # pixels, inclusive
    hi: float  # pixels, exclusive

    @property
    def area_range(self) -> tuple[float, float]:
        """``[lo**2, hi**2)`` in px² (COCO ``areaRng`` style)."""
        return (self.lo**2, self.hi**2 if math.isfinite(self.hi) else 1e10)


#: The five disjoint buckets used everywhere (stats, per-object attributes, AP per bucket).
SIZE_BUCKETS: tuple[SizeBucket, ...] = (
    SizeBucket("very_tiny", 0.0, 8.0),
    SizeBucket("tiny", 8.0, 16.0),
    SizeBucket("small", 16.0, 32.0),
    SizeBucket("medium", 32.0, 96.0),
    SizeBucket("large", 96.0, math.inf),
)

#: COCO's "small" = very_tiny + tiny + small (< 32 px).
COCO_SMALL = SizeBucket("coco_small", 0.0, 32.0)


def size_bucket_names() -> list[str]:
    return [b.name for b in SIZE_BUCKETS]


def size_bucket_index(sizes: np.ndarray) -> np.ndarray:
    """Index into :data:`SIZE_BUCKETS` for each size (pixels), ``int64[N]``."""
    edges = np.array([b.hi for b in SIZE_BUCKETS[:-1]], dtype=np.float64)
    return np.searchsorted(edges, np.asarray(sizes, dtype=np.float64), side="right")
