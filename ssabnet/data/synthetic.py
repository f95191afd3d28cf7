"""Synthetic drone scenes ("syndrone"): a seeded generator written in the VisDrone on-disk format.

Each image is an aerial-looking scene: textured ground (grass/soil/concrete, three octaves of
noise), straight roads with sidewalks and dashed lane markings, roofs with ridges and cast
shadows, tree canopies, and many small objects of the ten VisDrone classes with class-distinct
appearance (colour, shape, aspect):

* car: rounded body in a car colour, dark windshield and rear window, lighter roof;
* van: boxier, mostly white/silver, one windshield, long flat roof;
* truck: cab of one colour and a long cargo box of another;
* bus: long, strong colour, a band of windows and roof units;
* tricycle: small body with an open cargo tray; awning-tricycle: same with a striped canopy;
* pedestrian: tall thin blob (head, shirt, dark legs); people: squat blob (sitting/standing
  groups); bicycle: two dark wheels + rider; motor: dark elongated body + rider with helmet.

Every object casts a shadow in the scene's sun direction. Vehicles drive along roads in the
road's direction (a box wider than tall goes on a horizontal road); nothing stands on roofs.
Objects come in queues and groups (:data:`GROUP_RATE`), which is also where most overlap
occlusion comes from; large objects are placed first, then all are drawn in random order.

**Size distribution.** Box sizes (``sqrt(w*h)``) and aspect ratios are log-normal per class with
the means and spreads measured on the official VisDrone2019-DET-val ground truth (548 files,
38,759 boxes; see :data:`CLASS_STATS`), class frequencies are VisDrone-val's, and all boxes of
one image share a random scale offset (flight altitude) that keeps the marginal spread. Objects
per image follow a gamma-Poisson law with VisDrone-val's mean 70.7 and s.d. 46.0 at 640x480,
scaled by image area for other sizes (and by :data:`PLACEMENT_LOSS` for objects that find no
free spot). Only ~12 % of objects may cross the border, so that, as in VisDrone, ~4 % of boxes
are truncated. The measured fit is in ``docs/data.md``.

**Annotations** (VisDrone GT lines, CRLF): objects partly under tree canopies or later objects
get ``occlusion`` 1 (< 50 % hidden) or 2 (>= 50 %; objects > 85 % hidden are dropped, they are
invisible); objects cut by the image border are clipped and get ``truncation`` 1; dense parking
lots and crowds are drawn but annotated only as one ignored region (category 0, score 0); a few
unidentified objects are "others" (category 11, score 0).

Deterministic: image ``i`` of seed ``s`` depends only on ``(s, i)`` and the generator version
(same bytes for the same seed with the same OpenCV/libjpeg build).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ssabnet.atomic_io import check_parent_writable
from ssabnet.data.catalog import DatasetCard
from ssabnet.data.images import make_default_permissions
from ssabnet.data.record import ImageRecord
from ssabnet.data.visdrone import write_visdrone_annotation
from ssabnet.errors import OverwriteError, UsageError
from ssabnet.ops.boxes import intersection_over_area

#: Bump when the rendered output changes (stored in ``synthetic.json``).
GENERATOR_VERSION = 1
JPEG_QUALITY = 90
_SHIFT = 4  # cv2 fixed-point bits: sub-pixel drawing of tiny objects
_SCALE = 1 << _SHIFT


@dataclass(frozen=True)
class ClassStats:
    """Per-class statistics of VisDrone2019-DET-val GT (evaluated boxes).

    ``frequency``: share of boxes; ``log_size``: mean/s.d. of ``ln sqrt(w*h)`` (pixels);
    ``log_aspect``: mean/s.d. of ``ln(w/h)``.
    """

    frequency: float
    log_size: tuple[float, float]
    log_aspect: tuple[float, float]


#: Measured on /work/shared/data/visdrone_val_gt (script: benchmarks/bench_synthetic.py --fit).
CLASS_STATS: tuple[ClassStats, ...] = (
    ClassStats(0.2282, (2.846, 0.530), (-0.887, 0.290)),  # pedestrian
    ClassStats(0.1322, (2.784, 0.540), (-0.519, 0.285)),  # people
    ClassStats(0.0332, (3.013, 0.519), (-0.158, 0.530)),  # bicycle
    ClassStats(0.3629, (3.429, 0.746), (0.283, 0.432)),  # car
    ClassStats(0.0510, (3.477, 0.698), (0.169, 0.419)),  # van
    ClassStats(0.0194, (3.670, 0.755), (0.115, 0.501)),  # truck
    ClassStats(0.0270, (3.305, 0.621), (0.080, 0.462)),  # tricycle
    ClassStats(0.0137, (3.336, 0.602), (-0.084, 0.381)),  # awning-tricycle
    ClassStats(0.0065, (3.574, 0.810), (-0.090, 0.434)),  # bus
    ClassStats(0.1261, (2.960, 0.566), (-0.158, 0.486)),  # motor
)
OBJECTS_PER_IMAGE_MEAN = 70.7  # VisDrone-val, evaluated boxes per image
OBJECTS_PER_IMAGE_SD = 46.0
REFERENCE_AREA = 640 * 480  # the density above is used as is at this image size
ALTITUDE_LOG_SD = 0.30  # shared per-image log-scale offset (part of each class's spread)
PERSON_CLASSES = frozenset({0, 1, 2, 9})  # pedestrian, people, bicycle, motor
PLACEMENT_LOSS = 1.09  # ~8 % of sampled objects find no free spot; sample that many more
GROUP_RATE = 0.45  # objects placed next to one of their kind (queues, groups)
HEAVY_OVERLAP_RATE = 0.15  # objects allowed to cover up to 70 % of a neighbour
TRUNCATED_RATE = 0.12  # objects that may cross the border (about half of them do)
OTHERS_RATE = 0.002  # VisDrone-val: 32 "others" per 38,759 objects, rounded up to be seen

_CAR_COLOURS = np.array(
    [
        [235, 235, 235],
        [200, 200, 205],
        [150, 150, 155],
        [35, 35, 40],
        [160, 30, 30],
        [30, 60, 140],
        [70, 90, 70],
        [200, 170, 60],
    ],
    np.float32,
)
_SHIRT_COLOURS = np.array(
    [
        [200, 40, 40],
        [40, 80, 190],
        [230, 230, 230],
        [30, 30, 30],
        [220, 180, 40],
        [60, 140, 60],
        [150, 60, 150],
        [230, 120, 40],
    ],
    np.float32,
)
_BUS_COLOURS = np.array(
    [[220, 180, 30], [40, 120, 200], [230, 230, 230], [60, 160, 70], [200, 60, 50]], np.float32
)
_ROOF_COLOURS = np.array(
    [[150, 70, 55], [120, 120, 125], [90, 110, 140], [180, 170, 150], [80, 80, 70]], np.float32
)
_GROUND_COLOURS = np.array(
    [[96, 120, 70], [130, 118, 92], [128, 128, 122], [110, 125, 85], [150, 140, 120]], np.float32
)


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: float = 18.0) -> tuple:
    noise = rng.normal(0, amount, 3)
    return tuple(
        min(max(float(c) + float(d), 0.0), 255.0) for c, d in zip(colour, noise, strict=True)
    )


def _pick(rng: np.random.Generator, palette: np.ndarray, amount: float = 18.0) -> tuple:
    return _jitter(rng, palette[rng.integers(len(palette))], amount)


# ----------------------------------------------------------------------------- drawing helpers
class _Frame:
    """An object's local frame: ``u`` along its length (0 front .. 1 back), ``v`` across.

    Maps unit coordinates to image pixels for a rectangle of ``length x width`` centred at
    ``centre`` and rotated by ``angle`` (radians, 0 = length along +x).
    """

    def __init__(self, centre: tuple[float, float], length: float, width: float, angle: float):
        self.centre = np.array(centre, np.float64)
        c, s = math.cos(angle), math.sin(angle)
        self.axis_u = np.array([c, s]) * length
        self.axis_v = np.array([-s, c]) * width
        self.length, self.width, self.angle = length, width, angle

    def points(self, uv: np.ndarray) -> np.ndarray:
        """``uv[K, 2]`` in ``[0, 1]`` -> image points ``float[K, 2]``."""
        uv = np.asarray(uv, np.float64) - 0.5
        return self.centre + uv[:, :1] * self.axis_u + uv[:, 1:] * self.axis_v

    def rect(self, img: np.ndarray, u0, v0, u1, v1, colour) -> None:
        pts = self.points(np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]]))
        cv2.fillPoly(img, [np.round(pts * _SCALE).astype(np.int32)], colour, cv2.LINE_AA, _SHIFT)

    def ellipse(self, img: np.ndarray, u, v, du, dv, colour) -> None:
        """Filled ellipse centred at ``(u, v)`` with half-axes ``du, dv`` (unit coordinates)."""
        centre = self.points(np.array([[u, v]]))[0]
        axes = (max(du * self.length, 0.35), max(dv * self.width, 0.35))
        cv2.ellipse(
            img,
            (round(centre[0] * _SCALE), round(centre[1] * _SCALE)),
            (round(axes[0] * _SCALE), round(axes[1] * _SCALE)),
            math.degrees(self.angle),
            0,
            360,
            colour,
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )


def _draw_vehicle(img, rng, frame: _Frame, cls: int) -> None:
    dark = (25.0, 28.0, 35.0)
    if cls == 3:  # car
        body = _pick(rng, _CAR_COLOURS)
        frame.rect(img, 0.02, 0.05, 0.98, 0.95, body)
        frame.rect(img, 0.22, 0.12, 0.38, 0.88, dark)  # windshield
        frame.rect(img, 0.38, 0.15, 0.72, 0.85, _jitter(rng, np.array(body), 10))  # roof
        frame.rect(img, 0.72, 0.15, 0.84, 0.85, (45.0, 48.0, 55.0))  # rear window
    elif cls == 4:  # van
        body = _pick(rng, _CAR_COLOURS[:3], 10)
        frame.rect(img, 0.0, 0.03, 1.0, 0.97, body)
        frame.rect(img, 0.08, 0.1, 0.2, 0.9, dark)
        frame.rect(img, 0.2, 0.1, 0.97, 0.9, _jitter(rng, np.array(body) * 1.05, 6))
    elif cls == 5:  # truck
        frame.rect(img, 0.0, 0.1, 0.25, 0.9, _pick(rng, _SHIRT_COLOURS))  # cab
        frame.rect(img, 0.03, 0.15, 0.1, 0.85, dark)
        frame.rect(img, 0.28, 0.0, 1.0, 1.0, _pick(rng, _ROOF_COLOURS, 25))  # cargo
        frame.rect(img, 0.3, 0.45, 0.98, 0.55, (70.0, 70.0, 70.0))
    elif cls == 8:  # bus
        body = _pick(rng, _BUS_COLOURS)
        frame.rect(img, 0.0, 0.0, 1.0, 1.0, body)
        frame.rect(img, 0.02, 0.08, 0.97, 0.22, dark)  # window bands
        frame.rect(img, 0.02, 0.78, 0.97, 0.92, dark)
        frame.rect(img, 0.3, 0.35, 0.45, 0.65, (190.0, 190.0, 190.0))  # roof units
        frame.rect(img, 0.6, 0.35, 0.75, 0.65, (190.0, 190.0, 190.0))
    elif cls in (6, 7):  # tricycle, awning-tricycle
        frame.ellipse(img, 0.15, 0.5, 0.12, 0.2, dark)  # front wheel + driver
        frame.rect(img, 0.25, 0.05, 0.98, 0.95, _pick(rng, _SHIRT_COLOURS, 25))
        if cls == 6:
            frame.rect(img, 0.4, 0.2, 0.92, 0.8, (90.0, 80.0, 70.0))  # open tray
        else:
            stripe_a, stripe_b = _pick(rng, _SHIRT_COLOURS), (235.0, 235.0, 235.0)
            for k in range(4):  # striped canopy
                frame.rect(
                    img, 0.3 + 0.17 * k, 0.0, 0.47 + 0.17 * k, 1.0, (stripe_a, stripe_b)[k % 2]
                )
    else:  # "others": a cart-like grey box
        frame.rect(img, 0.0, 0.0, 1.0, 1.0, _jitter(rng, np.array([120, 110, 100]), 20))
        frame.rect(img, 0.1, 0.1, 0.9, 0.9, _jitter(rng, np.array([90, 80, 70]), 20))


def _draw_person(img, rng, frame: _Frame, cls: int) -> None:
    """Persons and two-wheelers: ``u`` runs from the head (0) to the feet/back wheel (1)."""
    skin = _jitter(rng, np.array([190, 150, 120]), 20)
    hair = _jitter(rng, np.array([30, 25, 20]), 8)
    shirt = _pick(rng, _SHIRT_COLOURS, 25)
    trousers = _jitter(rng, np.array([45, 45, 60]), 15)
    if cls == 0:  # pedestrian: tall, thin
        frame.ellipse(img, 0.68, 0.5, 0.3, 0.22, trousers)
        frame.ellipse(img, 0.38, 0.5, 0.22, 0.4, shirt)
        frame.ellipse(img, 0.12, 0.5, 0.11, 0.3, hair)
    elif cls == 1:  # people: squat, wide
        frame.ellipse(img, 0.6, 0.5, 0.36, 0.45, shirt)
        frame.ellipse(img, 0.82, 0.5, 0.15, 0.42, trousers)
        frame.ellipse(img, 0.2, 0.5, 0.17, 0.28, skin)
        frame.ellipse(img, 0.17, 0.5, 0.12, 0.24, hair)
    elif cls == 2:  # bicycle: two thin wheels, frame, rider
        wheel = (20.0, 20.0, 20.0)
        frame.ellipse(img, 0.18, 0.5, 0.16, 0.12, wheel)
        frame.ellipse(img, 0.82, 0.5, 0.16, 0.12, wheel)
        frame.rect(img, 0.18, 0.45, 0.82, 0.55, (150.0, 150.0, 160.0))
        frame.ellipse(img, 0.5, 0.5, 0.16, 0.4, shirt)
        frame.ellipse(img, 0.42, 0.5, 0.07, 0.22, hair)
    else:  # motor: dark bulky body, rider with a bright helmet
        frame.ellipse(img, 0.55, 0.5, 0.42, 0.3, (30.0, 30.0, 35.0))
        frame.ellipse(img, 0.55, 0.5, 0.22, 0.42, shirt)
        helmet = _pick(rng, np.array([[230, 230, 230], [220, 40, 40], [240, 200, 40]], np.float32))
        frame.ellipse(img, 0.38, 0.5, 0.1, 0.25, helmet)


# ----------------------------------------------------------------------------- scene
@dataclass
class _Road:
    horizontal: bool
    centre: float
    width: float


def _noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    small = rng.normal(0, 1, (max(2, height // cell + 2), max(2, width // cell + 2)))
    return cv2.resize(small.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)


def _ground(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    base = (_GROUND_COLOURS[rng.integers(len(_GROUND_COLOURS))] + rng.normal(0, 8, 3)).astype(
        np.float32
    )
    tex = 14 * _noise(rng, height, width, 96) + 8 * _noise(rng, height, width, 24)
    tex += 5 * _noise(rng, height, width, 4)
    tint = _noise(rng, height, width, 64)
    tint_rgb = rng.normal(0, 6, 3).astype(np.float32)
    return cv2.merge([tex + tint * tint_rgb[c] + base[c] for c in range(3)])


def _sample_objects(rng: np.random.Generator, count: int, scale: float):
    """Class index, box width and height (pixels) of ``count`` objects."""
    freq = np.array([c.frequency for c in CLASS_STATS])
    classes = rng.choice(len(CLASS_STATS), size=count, p=freq / freq.sum())
    mu = np.array([c.log_size[0] for c in CLASS_STATS])[classes]
    sd = np.array([c.log_size[1] for c in CLASS_STATS])[classes]
    within_sd = np.sqrt(np.maximum(sd**2 - ALTITUDE_LOG_SD**2, 0.01))
    log_size = mu + scale + within_sd * rng.normal(size=count)
    a_mu = np.array([c.log_aspect[0] for c in CLASS_STATS])[classes]
    a_sd = np.array([c.log_aspect[1] for c in CLASS_STATS])[classes]
    log_aspect = a_mu + a_sd * rng.normal(size=count)
    size = np.exp(log_size)
    return classes, size * np.exp(log_aspect / 2), size * np.exp(-log_aspect / 2)


def _covered_fraction(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Fraction of ``box[4]``'s area covered by each of ``boxes[N, 4]``, ``float64[N]``."""
    return intersection_over_area(box[None], np.asarray(boxes).reshape(-1, 4))[0]


def _fit_frame(cx, cy, w, h, jitter_rad, flip) -> _Frame:
    """A rotated rectangle whose axis-aligned bounding box is exactly ``w x h``."""
    horizontal = w >= h
    long_side, short_side = (w, h) if horizontal else (h, w)
    theta = jitter_rad
    cos, sin = math.cos(theta), math.sin(abs(theta))
    det = cos * cos - sin * sin
    length = (long_side * cos - short_side * sin) / det
    width = (short_side * cos - long_side * sin) / det
    if width < 0.5 * short_side:  # too thin to rotate: keep it axis aligned
        theta, length, width = 0.0, long_side, short_side
    angle = (0.0 if horizontal else math.pi / 2) + theta + (math.pi if flip else 0.0)
    return _Frame((cx, cy), length, width, angle)


def render_scene(
    rng: np.random.Generator, width: int, height: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render one scene: ground, roads, roofs, ignored regions, objects, trees, camera.

    The steps draw into one float32 canvas in this order (later ones hide earlier ones) and
    draw from ``rng`` in this order, so a scene is a pure function of the generator's state.

    Returns:
        ``image``: ``uint8[H, W, 3]`` RGB, and annotations as VisDrone-coded arrays:
        ``boxes`` ``float32[N, 4]`` xyxy pixels (integer valued, inside the image),
        ``category`` ``int64[N]`` (1..10, 11 "others"), ``truncation``, ``occlusion``
        ``int64[N]``, ``regions`` ``float32[K, 4]`` xyxy ignored regions.
    """
    area_ratio = width * height / REFERENCE_AREA
    img = _ground(rng, height, width)
    shadow = np.zeros((height, width), np.float32)
    sun = rng.normal(0, 1, 2)
    sun = sun / (np.linalg.norm(sun) + 1e-9)
    roads, road_rects = _draw_roads(img, rng, width, height)
    roof_boxes = _draw_roofs(img, shadow, rng, sun, road_rects, width, height, area_ratio)
    region_arr = _draw_ignored_regions(img, rng, width, height, area_ratio)
    placed = _place_objects(rng, roads, roof_boxes, region_arr, width, height, area_ratio)
    _draw_objects(img, shadow, rng, sun, placed)
    canopy = _draw_trees(img, rng, roads, sun, width, height, area_ratio)
    image = _camera(img, rng, width, height)
    return image, _annotate(placed, canopy, region_arr, width, height)


def _draw_roads(
    img: np.ndarray, rng: np.random.Generator, width: int, height: int
) -> tuple[list[_Road], np.ndarray]:
    """Axis-aligned roads with sidewalks and dashed lane markings; returns the roads and the
    ``float64[R, 4]`` xyxy strips (road + 10 px) that roofs keep off."""
    roads: list[_Road] = []
    for _ in range(int(rng.integers(1, 4))):
        horizontal = bool(rng.random() < 0.6)
        extent = height if horizontal else width
        roads.append(_Road(horizontal, float(rng.uniform(0.1, 0.9) * extent), rng.uniform(28, 64)))
    asphalt = np.float32(rng.uniform(55, 95))
    for road in roads:
        lo, hi = road.centre - road.width / 2, road.centre + road.width / 2
        side = rng.uniform(5, 10)
        pave = np.float32(rng.uniform(140, 180))
        for a, b, value in ((lo - side, hi + side, pave), (lo, hi, asphalt)):
            a, b = int(max(a, 0)), int(max(b, 0))
            if road.horizontal:
                img[a:b] = value + 4 * _noise(rng, len(img[a:b]), width, 3)[..., None]
            else:
                img[:, a:b] = value + 4 * _noise(rng, height, len(img[0, a:b]), 3)[..., None]
        dash, gap = rng.uniform(10, 20), rng.uniform(10, 20)
        start = rng.uniform(0, dash + gap)
        paint = (235.0, 235.0, 230.0) if rng.random() < 0.7 else (230.0, 200.0, 60.0)
        extent = width if road.horizontal else height
        for t in np.arange(-start, extent, dash + gap):
            if road.horizontal:
                p0, p1 = (t, road.centre - 1), (t + dash, road.centre + 1)
            else:
                p0, p1 = (road.centre - 1, t), (road.centre + 1, t + dash)
            cv2.rectangle(
                img,
                (round(p0[0] * _SCALE), round(p0[1] * _SCALE)),
                (round(p1[0] * _SCALE), round(p1[1] * _SCALE)),
                paint,
                -1,
                cv2.LINE_AA,
                _SHIFT,
            )
    road_rects = np.array(
        [
            [0, r.centre - r.width / 2 - 10, width, r.centre + r.width / 2 + 10]
            if r.horizontal
            else [r.centre - r.width / 2 - 10, 0, r.centre + r.width / 2 + 10, height]
            for r in roads
        ],
        np.float64,
    )

    return roads, road_rects


def _draw_roofs(
    img: np.ndarray,
    shadow: np.ndarray,
    rng: np.random.Generator,
    sun: np.ndarray,
    road_rects: np.ndarray,
    width: int,
    height: int,
    area_ratio: float,
) -> np.ndarray:
    """Roofs with ridge lines and cast shadows, kept off the roads; ``float64[K, 4]`` xyxy
    boxes that objects keep off."""
    roofs: list[list[float]] = []
    for _ in range(int(rng.poisson(2.5 * area_ratio))):
        bw, bh = rng.uniform(40, 170, 2)
        x0, y0 = rng.uniform(-20, width - 20), rng.uniform(-20, height - 20)
        box = np.array([x0, y0, x0 + bw, y0 + bh])
        if _covered_fraction(box, road_rects).max(initial=0) > 0:
            continue
        off = sun * rng.uniform(6, 16)
        pts = np.array([[x0, y0], [x0 + bw, y0], [x0 + bw, y0 + bh], [x0, y0 + bh]])
        cv2.fillPoly(shadow, [np.round((pts + off) * _SCALE).astype(np.int32)], 1.0, 0, _SHIFT)
        roof = _pick(rng, _ROOF_COLOURS, 15)
        ipts = np.round(pts * _SCALE).astype(np.int32)
        cv2.fillPoly(img, [ipts], roof, cv2.LINE_AA, _SHIFT)
        roofs.append([x0, y0, x0 + bw, y0 + bh])
        half = tuple(float(v) * 0.8 for v in roof)
        if bw > bh:
            cv2.rectangle(img, (int(x0), int(y0 + bh / 2)), (int(x0 + bw), int(y0 + bh)), half, -1)
            cv2.line(
                img, (int(x0), int(y0 + bh / 2)), (int(x0 + bw), int(y0 + bh / 2)), (60, 60, 60)
            )
        else:
            cv2.rectangle(img, (int(x0 + bw / 2), int(y0)), (int(x0 + bw), int(y0 + bh)), half, -1)
            cv2.line(
                img, (int(x0 + bw / 2), int(y0)), (int(x0 + bw / 2), int(y0 + bh)), (60, 60, 60)
            )

    return np.array(roofs, np.float64).reshape(-1, 4)


def _draw_ignored_regions(
    img: np.ndarray, rng: np.random.Generator, width: int, height: int, area_ratio: float
) -> np.ndarray:
    """Dense parking lots and crowds: drawn, annotated as ignored regions (VisDrone category
    0); ``float64[K, 4]`` xyxy, rounded to pixels."""
    regions = []
    for _ in range(int(rng.poisson(2.0 * area_ratio))):
        rw, rh = rng.uniform(30, 110), rng.uniform(25, 80)
        x0, y0 = rng.uniform(0, max(width - rw, 1)), rng.uniform(0, max(height - rh, 1))
        crowd = rng.random() < 0.4
        cv2.rectangle(
            img,
            (int(x0), int(y0)),
            (int(x0 + rw), int(y0 + rh)),
            _jitter(rng, np.array([150, 150, 145]), 10),
            -1,
        )
        step = rng.uniform(5, 8) if crowd else rng.uniform(7, 11)
        for yy in np.arange(y0 + step / 2, y0 + rh - step / 2, step * (1.0 if crowd else 1.6)):
            for xx in np.arange(x0 + step / 2, x0 + rw - step / 2, step):
                if rng.random() < 0.25:
                    continue
                jitter = rng.normal(0, 0.8, 2)
                if crowd:
                    f = _Frame(
                        (xx + jitter[0], yy + jitter[1]), step * 0.9, step * 0.5, math.pi / 2
                    )
                    _draw_person(img, rng, f, int(rng.integers(0, 2)))
                else:
                    f = _Frame(
                        (xx + jitter[0], yy + jitter[1]), step * 1.4, step * 0.7, math.pi / 2
                    )
                    _draw_vehicle(img, rng, f, 3)
        regions.append([x0, y0, min(x0 + rw, width), min(y0 + rh, height)])
    region_arr = np.round(np.array(regions, np.float64).reshape(-1, 4))
    return region_arr


def _place_objects(
    rng: np.random.Generator,
    roads: list[_Road],
    roof_boxes: np.ndarray,
    blocked_regions: np.ndarray,
    width: int,
    height: int,
    area_ratio: float,
) -> list[tuple[int, np.ndarray, _Frame]]:
    """Sample objects (VisDrone's classes, sizes and counts) and place them: vehicles mostly on
    roads, queues and groups overlapping, off roofs and ignored regions. Returns
    ``(class, box, frame)`` in draw order (= occlusion order)."""
    lam = rng.gamma(
        (OBJECTS_PER_IMAGE_MEAN**2) / (OBJECTS_PER_IMAGE_SD**2 - OBJECTS_PER_IMAGE_MEAN),
        (OBJECTS_PER_IMAGE_SD**2 - OBJECTS_PER_IMAGE_MEAN) / OBJECTS_PER_IMAGE_MEAN,
    )
    count = int(np.clip(rng.poisson(lam * area_ratio * PLACEMENT_LOSS), 2, 400 * area_ratio))
    classes, box_w, box_h = _sample_objects(rng, count, rng.normal(0, ALTITUDE_LOG_SD))
    placed_boxes = np.zeros((count, 4))  # rows [:len(placed)] are filled
    placed: list[tuple[int, np.ndarray, _Frame]] = []
    # big objects first (they are the hardest to fit), drawn later in random order
    order = np.argsort(-(box_w * box_h), kind="stable")
    for cls, w, h in zip(
        classes[order].tolist(), box_w[order].tolist(), box_h[order].tolist(), strict=True
    ):
        w, h = min(w, 0.9 * width), min(h, 0.9 * height)
        is_person = cls in PERSON_CLASSES
        if not is_person and rng.random() < OTHERS_RATE / 0.5:  # vehicles are ~half the boxes
            cls = 10  # "others" (drawn as a cart)
        # VisDrone cuts ~4 % of boxes at the border; the small synthetic frame would cut ~17 %
        # if centres were uniform, so most objects are kept fully inside
        margin = -0.3 if rng.random() < TRUNCATED_RATE else 0.5
        # a few objects may hide most of an earlier one (VisDrone occlusion 2)
        max_overlap = 0.7 if rng.random() < HEAVY_OVERLAP_RATE else 0.4
        kin = [i for i, (c, _b, _f) in enumerate(placed) if (c in PERSON_CLASSES) == is_person]
        group = bool(kin) and rng.random() < GROUP_RATE
        for _attempt in range(20):
            matching = [r for r in roads if r.horizontal == (w >= h)]
            if group:  # queues of vehicles, groups of people: neighbours overlap
                _c, near, _f = placed[kin[int(rng.integers(len(kin)))]]
                ncx, ncy = (near[0] + near[2]) / 2, (near[1] + near[3]) / 2
                if is_person:
                    cx, cy = ncx + rng.normal(0, 0.8 * w), ncy + rng.normal(0, 0.6 * h)
                else:
                    step = rng.choice([-1, 1]) * rng.uniform(0.8, 1.3)
                    cx = ncx + (step * max(w, near[2] - near[0]) if w >= h else rng.normal(0, 2))
                    cy = ncy + (step * max(h, near[3] - near[1]) if h > w else rng.normal(0, 2))
            elif not is_person and matching and rng.random() < 0.75:
                road = matching[int(rng.integers(len(matching)))]
                along = (
                    rng.uniform(margin * w, width - margin * w)
                    if road.horizontal
                    else rng.uniform(margin * h, height - margin * h)
                )
                lane = max(road.width / 2 - min(w, h) / 2, 0) * rng.uniform(-1, 1)
                cx, cy = (
                    (along, road.centre + lane) if road.horizontal else (road.centre + lane, along)
                )
            else:
                cx = rng.uniform(margin * w, width - margin * w)
                cy = rng.uniform(margin * h, height - margin * h)
            box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            if margin > 0 and (box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height):
                continue
            if _covered_fraction(box, roof_boxes).max(initial=0) > 0.1:
                continue
            if _covered_fraction(box, blocked_regions).max(initial=0) > 0.3:
                continue
            if placed and _covered_fraction(box, placed_boxes[: len(placed)]).max() > max_overlap:
                continue
            jitter = math.radians(rng.normal(0, 6)) if not is_person else 0.0
            frame = _fit_frame(cx, cy, w, h, jitter, bool(rng.random() < 0.5) and not is_person)
            placed_boxes[len(placed)] = box
            placed.append((cls, box, frame))
            break
    placed = [placed[i] for i in rng.permutation(len(placed))]  # draw order = occlusion order

    return placed


def _draw_objects(
    img: np.ndarray,
    shadow: np.ndarray,
    rng: np.random.Generator,
    sun: np.ndarray,
    placed: list[tuple[int, np.ndarray, _Frame]],
) -> None:
    """Cast every shadow (roofs' and objects'), then draw the objects over them."""
    for _cls, _box, frame in placed:  # shadows first, so no object darkens a neighbour's body
        off = sun * max(1.0, 0.25 * min(frame.length, frame.width))
        pts = frame.points(np.array([[0, 0], [1, 0], [1, 1], [0, 1]])) + off
        cv2.fillPoly(shadow, [np.round(pts * _SCALE).astype(np.int32)], 1.0, 0, _SHIFT)
    shadow = cv2.GaussianBlur(shadow, (0, 0), 1.2)
    img *= (1 - 0.45 * shadow)[..., None]
    for cls, _box, frame in placed:
        if cls in PERSON_CLASSES:
            _draw_person(img, rng, frame, cls)
        else:
            _draw_vehicle(img, rng, frame, cls)


def _draw_trees(
    img: np.ndarray,
    rng: np.random.Generator,
    roads: list[_Road],
    sun: np.ndarray,
    width: int,
    height: int,
    area_ratio: float,
) -> np.ndarray:
    """Tree canopies, drawn last (they hide objects below them); returns the ``uint8[H, W]``
    canopy mask that occlusion is measured on."""
    canopy = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.poisson(9 * area_ratio))):
        if roads and rng.random() < 0.6:  # roadside rows
            road = roads[int(rng.integers(len(roads)))]
            edge = road.centre + rng.choice([-1, 1]) * (road.width / 2 + rng.uniform(-6, 10))
            along = rng.uniform(0, width if road.horizontal else height)
            tx, ty = (along, edge) if road.horizontal else (edge, along)
        else:
            tx, ty = rng.uniform(0, width), rng.uniform(0, height)
        green = _jitter(rng, np.array([50, 85, 40]), 12)
        for _blob in range(int(rng.integers(2, 6))):
            r = rng.uniform(5, 16)
            bx, by = tx + rng.normal(0, 7), ty + rng.normal(0, 7)
            centre = (round(bx * _SCALE), round(by * _SCALE))
            shade = (
                round((bx + sun[0] * r * 0.6) * _SCALE),
                round((by + sun[1] * r * 0.6) * _SCALE),
            )
            cv2.circle(
                img,
                shade,
                round(r * _SCALE),
                tuple(v * 0.6 for v in green),
                -1,
                cv2.LINE_AA,
                _SHIFT,
            )
            cv2.circle(img, centre, round(r * 0.92 * _SCALE), green, -1, cv2.LINE_AA, _SHIFT)
            hl = (round((bx - sun[0] * r * 0.3) * _SCALE), round((by - sun[1] * r * 0.3) * _SCALE))
            cv2.circle(
                img,
                hl,
                round(r * 0.45 * _SCALE),
                tuple(min(v * 1.3, 255) for v in green),
                -1,
                cv2.LINE_AA,
                _SHIFT,
            )
            cv2.circle(canopy, centre, round(r * _SCALE), 1, -1, 8, _SHIFT)

    return canopy


def _camera(img: np.ndarray, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Illumination gradient, sensor noise and a slight blur; the ``uint8`` image."""
    gx = (np.arange(width, dtype=np.float32) / width - 0.5) * np.float32(0.12 * rng.normal())
    gy = (np.arange(height, dtype=np.float32) / height - 0.5) * np.float32(0.12 * rng.normal())
    gain = np.float32(rng.uniform(0.85, 1.15)) * (1 + gy[:, None] + gx[None, :])
    img *= gain[..., None]
    img += 3.0 * rng.standard_normal((height, width, 1), dtype=np.float32)
    img = cv2.GaussianBlur(img, (3, 3), 0.6)
    return np.clip(img, 0, 255).astype(np.uint8)


def _annotate(
    placed: list[tuple[int, np.ndarray, _Frame]],
    canopy: np.ndarray,
    region_arr: np.ndarray,
    width: int,
    height: int,
) -> dict[str, np.ndarray]:
    """Annotations: boxes clipped to the image, truncation, occlusion by canopy and by later
    objects; practically invisible objects are left out."""
    canopy_sum = cv2.integral(canopy)
    boxes, categories, truncation, occlusion = [], [], [], []
    all_boxes = np.array([b for _, b, _ in placed]).reshape(-1, 4)
    for i, (cls, box, _frame) in enumerate(placed):
        inside = np.clip(box, 0, [width, height, width, height])
        x1, y1, x2, y2 = (int(v) for v in np.round(inside))
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        cut = 1 - (inside[2] - inside[0]) * (inside[3] - inside[1]) / (
            (box[2] - box[0]) * (box[3] - box[1])
        )
        visible_area = (x2 - x1) * (y2 - y1)
        hidden_canopy = (
            canopy_sum[y2, x2] - canopy_sum[y1, x2] - canopy_sum[y2, x1] + canopy_sum[y1, x1]
        ) / visible_area
        hidden_objects = _covered_fraction(box, all_boxes[i + 1 :]).max(initial=0.0)
        hidden = max(float(hidden_canopy), float(hidden_objects))
        if hidden > 0.85:
            continue  # practically invisible: not annotated (and not ignored either)
        boxes.append([x1, y1, x2, y2])
        categories.append(11 if cls == 10 else cls + 1)
        truncation.append(1 if cut > 0.03 else 0)
        occlusion.append(0 if hidden < 0.05 else (1 if hidden < 0.5 else 2))
    return {
        "boxes": np.array(boxes, np.float32).reshape(-1, 4),
        "category": np.array(categories, np.int64),
        "truncation": np.array(truncation, np.int64),
        "occlusion": np.array(occlusion, np.int64),
        "regions": region_arr.astype(np.float32),
    }


def scene_record(
    annotations: dict[str, np.ndarray], image_id: str, image_path: Path, width: int, height: int
) -> ImageRecord:
    """:class:`ImageRecord` of a rendered scene (same mapping as the VisDrone reader)."""
    category = annotations["category"]
    n, k = len(category), len(annotations["regions"])
    return ImageRecord(
        image_id=image_id,
        image_path=image_path,
        width=width,
        height=height,
        boxes=annotations["boxes"],
        labels=np.where(category == 11, -1, category - 1).astype(np.int64),
        ignore=category == 11,
        truncation=annotations["truncation"],
        occlusion=annotations["occlusion"],
        ignore_regions=annotations["regions"],
        native={
            "category": category,
            "score": (category != 11).astype(np.int64),
            "line": np.arange(n, dtype=np.int64),
            "region_score": np.zeros(k, np.int64),
            "region_truncation": np.zeros(k, np.int64),
            "region_occlusion": np.zeros(k, np.int64),
            "region_line": np.arange(n, n + k, dtype=np.int64),
        },
    )


def image_name(seed: int, index: int) -> str:
    """File stem (= ``image_id``) of image ``index`` of ``seed``."""
    return f"syn{seed:04d}_{index:06d}"


def _render_file(job: tuple[int, int, int, int]) -> tuple[str, bytes, dict[str, np.ndarray]]:
    """Render and JPEG-encode image ``index`` of ``seed`` (a picklable unit of work)."""
    seed, index, width, height = job
    image, annotations = render_scene(
        np.random.default_rng([seed, index, GENERATOR_VERSION]), width, height
    )
    name = image_name(seed, index)
    ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {name}")
    return name, encoded.tobytes(), annotations


def _write_files(folder: Path, rendered, width: int, height: int) -> None:
    for name, jpeg, scene_annotations in rendered:
        image_path = folder / "images" / f"{name}.jpg"
        image_path.write_bytes(jpeg)
        record = scene_record(scene_annotations, name, image_path, width, height)
        write_visdrone_annotation(record, folder / "annotations" / f"{name}.txt")


def generate_dataset(
    out_dir: str | Path,
    num_images: int,
    seed: int,
    size: tuple[int, int] = (640, 480),
    workers: int = 1,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``num_images`` synthetic scenes in VisDrone format under ``out_dir``.

    Layout: ``out_dir/images/<id>.jpg``, ``out_dir/annotations/<id>.txt`` and
    ``out_dir/synthetic.json`` (generator version, seed, count, size). Files are written into a
    temporary sibling folder and renamed into place, so an interrupted run leaves no partial
    dataset. An existing ``out_dir`` is replaced only if it is owned by the generator (it holds
    ``synthetic.json``, the ownership marker), is empty, or ``overwrite`` is True: a folder of
    anything else is never deleted.

    Args:
        out_dir: target folder.
        num_images: number of images (>= 1).
        seed: random seed; image ``i`` depends only on ``(seed, i)``.
        size: ``(width, height)`` in pixels.
        workers: processes rendering in parallel (output is identical for any value).
        overwrite: replace ``out_dir`` even if it is not a synthetic dataset.

    Raises:
        OverwriteError: ``out_dir`` holds files but no ``synthetic.json`` (and no ``overwrite``).

    Returns:
        ``out_dir`` as a :class:`Path`.
    """
    width, height = (int(v) for v in size)
    if num_images < 1:
        raise UsageError(f"num_images must be >= 1, got {num_images}")
    if width < 64 or height < 64:
        raise UsageError(f"image size must be at least 64x64, got {width}x{height}")
    out_dir = Path(out_dir)
    check_parent_writable(out_dir)
    if out_dir.exists() and not overwrite:
        owned = out_dir.is_dir() and (
            (out_dir / "synthetic.json").is_file() or not any(out_dir.iterdir())
        )
        if not owned:
            what = "folder" if out_dir.is_dir() else "file"
            raise OverwriteError(
                f"{out_dir} is a {what} not made by 'ssabnet data synth' (no synthetic.json); "
                "it is left as it is. Choose another --out, or pass --overwrite to replace it"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        (tmp / "images").mkdir()
        (tmp / "annotations").mkdir()
        jobs = [(seed, index, width, height) for index in range(num_images)]
        if workers > 1 and num_images > 1:
            with ProcessPoolExecutor(min(workers, num_images)) as pool:
                rendered = pool.map(_render_file, jobs, chunksize=4)
                _write_files(tmp, rendered, width, height)
        else:
            _write_files(tmp, map(_render_file, jobs), width, height)
        meta = {
            "generator": "syndrone",
            "version": GENERATOR_VERSION,
            "seed": seed,
            "num_images": num_images,
            "size": [width, height],
        }
        (tmp / "synthetic.json").write_text(json.dumps(meta, indent=2) + "\n")
        make_default_permissions(tmp)  # mkdtemp creates 0o700
        if out_dir.is_dir() and not out_dir.is_symlink():
            shutil.rmtree(out_dir)
        elif out_dir.exists() or out_dir.is_symlink():
            out_dir.unlink()
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def ensure_generated(card: DatasetCard) -> Path:
    """Generate a synthetic card's data if missing or stale; returns ``card.root``.

    A missing folder is generated; a folder whose ``synthetic.json`` differs from the card (other
    seed, count, size or generator version) is regenerated; a folder without ``synthetic.json``
    is user data and left alone.
    """
    spec = card.generate
    if spec is None:
        return card.root
    meta_path = card.root / "synthetic.json"
    wanted = {
        "generator": "syndrone",
        "version": GENERATOR_VERSION,
        "seed": spec.seed,
        "num_images": spec.num_images,
        "size": list(spec.size),
    }
    if card.root.exists():
        if not meta_path.is_file():
            return card.root  # user data at this path: never overwritten
        try:
            if json.loads(meta_path.read_text()) == wanted:
                return card.root
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            pass  # an unreadable marker: the folder is still ours, regenerate it
    return generate_dataset(card.root, spec.num_images, spec.seed, spec.size)
