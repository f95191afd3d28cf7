"""Run the official VisDrone-DET toolkit under GNU Octave and compare it with ``visdrone-official``.

The toolkit (VisDrone/VisDrone2018-DET-toolkit, MATLAB, no licence) is not part of this repository:
give the folder of a copy with ``--toolkit`` (it must hold ``utils/saveAnnoRes.m``,
``utils/calcAccuracy.m`` and the helpers they call). This script only *calls* it: it writes a
small driver (``findImageList`` -> ``saveAnnoRes`` -> ``calcAccuracy``, the path of ``evalDET.m``
without its display and printing) and, when Octave has no ``mean2`` (an Image Processing Toolbox
function), a one-line ``mean2(x) = mean(x(:))`` shim, both in a temporary folder.

Ground truth: a VisDrone folder (``images/`` + ``annotations/``); ``--images`` restricts it to
some images (the toolkit evaluates every file in its annotation folder, so a temporary folder of
links is made). Results: a folder of official result txts (``<image>.txt``,
``x,y,w,h,score,category,-1,-1``).

Prints one JSON object: the toolkit's metrics as fractions (its percentages / 100, full
precision) and its wall and CPU seconds (Octave start-up included); with ``--ours`` the same for
``ssabnet`` (``read_visdrone_results`` + ``Evaluator(protocol="visdrone-official")``, reading
included) and the largest absolute difference. Exit status 1 when ``--ours`` differs by more
than ``--tol``.

Usage::

    python benchmarks/visdrone_toolkit_check.py --toolkit ~/VisDrone2018-DET-toolkit \
        --gt ../shared/data/visdrone_sample \
        --results ../shared/data/visdrone_official_reference/A_sorted/results --ours
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The toolkit's outputs, in the order of ``calcAccuracy``'s return values.
TOOLKIT_KEYS = ("AP", "AP50", "AP75", "AR1", "AR10", "AR100", "AR500")
REQUIRED = (
    "saveAnnoRes.m",
    "calcAccuracy.m",
    "evalRes.m",
    "compOas.m",
    "VOCap.m",
    "dropObjectsInIgr.m",
    "createIntImg.m",
    "findImageList.m",
)

DRIVER = """\
addpath('{shim}');
addpath('{utils}');
if exist('mean2') ~= 2 && exist('mean2') ~= 5
  addpath('{shim}/mean2');
end
nameImgs = findImageList('{gt}');
numImgs = length(nameImgs);
[allgt, alldet] = saveAnnoRes('{gt}', '{res}', '{img}', numImgs, nameImgs);
[AP_all, AP_50, AP_75, AR_1, AR_10, AR_100, AR_500] = calcAccuracy(numImgs, allgt, alldet);
printf('TOOLKIT_RESULT %d %.17g %.17g %.17g %.17g %.17g %.17g %.17g\\n', numImgs, AP_all, ...
       AP_50, AP_75, AR_1, AR_10, AR_100, AR_500);
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def find_octave(octave: str | None = None) -> str | None:
    """The Octave executable (``--octave``, ``$OCTAVE``, ``octave-cli``, ``octave``) or None."""
    for name in (octave, os.environ.get("OCTAVE"), "octave-cli", "octave"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def check_toolkit(toolkit: Path) -> Path:
    """The toolkit's ``utils`` folder; raises naming what is missing."""
    utils = Path(toolkit) / "utils"
    missing = [name for name in REQUIRED if not (utils / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{toolkit}: not a VisDrone-DET toolkit copy, missing utils/{missing}"
        )
    return utils


def _link_subset(gt_root: Path, images: list[str], work: Path) -> Path:
    root = work / "gt"
    for sub in ("annotations", "images"):
        (root / sub).mkdir(parents=True)
    for name in images:
        (root / "annotations" / f"{name}.txt").symlink_to(
            (gt_root / "annotations" / f"{name}.txt").resolve()
        )
        (root / "images" / f"{name}.jpg").symlink_to((gt_root / "images" / f"{name}.jpg").resolve())
    return root


def run_toolkit(
    toolkit: Path,
    gt_root: Path,
    results: Path,
    images: list[str] | None = None,
    octave: str | None = None,
    timeout: float | None = None,
) -> dict:
    """Run the toolkit on ``gt_root`` (optionally only ``images``) and ``results``.

    Returns ``{"metrics": {AP..AR500 as fractions}, "images": N, "seconds": wall}``.
    """
    utils = check_toolkit(toolkit)
    exe = find_octave(octave)
    if exe is None:
        raise FileNotFoundError(
            "GNU Octave not found (apt-get install -y octave, or --octave PATH)"
        )
    with tempfile.TemporaryDirectory(prefix="visdrone_toolkit_") as tmp:
        work = Path(tmp)
        if images is not None:
            gt_root = _link_subset(Path(gt_root), images, work)
        (work / "mean2").mkdir()
        (work / "mean2" / "mean2.m").write_text("function y = mean2(x)\n  y = mean(x(:));\nend\n")
        sep = os.sep
        driver = DRIVER.format(
            shim=work,
            utils=utils.resolve(),
            gt=f"{Path(gt_root).resolve() / 'annotations'}{sep}",
            res=f"{Path(results).resolve()}{sep}",
            img=f"{Path(gt_root).resolve() / 'images'}{sep}",
        )
        (work / "run_toolkit.m").write_text(driver)
        start, cpu_start = time.perf_counter(), _children_cpu()
        proc = subprocess.run(
            [exe, "--no-gui", "--quiet", "--no-window-system", str(work / "run_toolkit.m")],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=work,
        )
        seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu_start
    match = re.search(r"^TOOLKIT_RESULT (\d+) (.+)$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or match is None:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise RuntimeError(f"the toolkit failed under {exe} (exit {proc.returncode}):\n{tail}")
    values = [float(v) / 100.0 for v in match.group(2).split()]
    return {
        "metrics": dict(zip(TOOLKIT_KEYS, values, strict=True)),
        "images": int(match.group(1)),
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


def run_ours(gt_root: Path, results: Path, images: list[str] | None = None) -> dict:
    """``ssabnet``'s ``visdrone-official`` protocol on the same input (reading included)."""
    from ssabnet.data.visdrone import read_visdrone
    from ssabnet.evaluation import Evaluator, read_visdrone_results

    start, cpu_start = time.perf_counter(), time.process_time()
    dataset = read_visdrone(gt_root)
    records = [r for r in dataset.records if images is None or r.image_id in set(images)]
    predictions = read_visdrone_results(results, dataset.info, records, allow_extra=True)
    evaluator = Evaluator(dataset.info, records, protocol="visdrone-official")
    evaluator.process(predictions)
    metrics = evaluator.evaluate()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "metrics": {k: metrics[k] for k in TOOLKIT_KEYS},
        "images": len(records),
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


def _result_line(box, score: float, category: int, rng) -> str:
    x, y, w, h = box
    return f"{x:g},{y:g},{w:g},{h:g},{score:g},{category},-1,-1" + (
        "," if rng.random() < 0.3 else ""
    )


def make_case(root: Path, seed: int, num_images: int = 40) -> Path:
    """A seeded small VisDrone-format case built to hit the toolkit's corner cases.

    Small images (fast under Octave) with: ignored regions (class 0) and boxes near their
    edges at half-pixel coordinates (rounding), ground truth with score 0 (ignore flag) and class
    11 ("others"), a class present in only some images and one class never present, detections
    with IoU exactly k/20 of their object (the threshold ulps), many equal scores (ties inside an
    image and across images), duplicates, zero-width boxes, rows in random order, and images with
    more than 500 detections. Every result file has at least one line (the toolkit under Octave
    cannot ``load`` an empty file), and a detection with equal IoU with two objects (the toolkit
    takes the later one). Writes ``root/images``, ``root/annotations``,
    ``root/results``; returns ``root``.
    """
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    for sub in ("images", "annotations", "results"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    class_p = np.array([6, 4, 1, 8, 3, 1, 1, 0.5, 0.5, 0.0])  # class 10 never in the ground truth
    class_p = class_p / class_p.sum()
    for index in range(num_images):
        name = f"{seed:04d}_{index:05d}"
        width, height = [(160, 120), (200, 150), (96, 64)][index % 3]
        Image.new("RGB", (width, height), (90, 90, 90)).save(root / "images" / f"{name}.jpg")
        gt_rows, det_lines = [], []
        for _ in range(int(rng.integers(0, 3))):
            w, h = int(rng.integers(10, width // 2)), int(rng.integers(10, height // 2))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            gt_rows.append((x, y, w, h, 0, 0, 0, 0))
            # detections straddling the region's edge at half pixels (MATLAB round: away from 0)
            for _ in range(2):
                dx = x + w - rng.integers(2, 8) + 0.5
                box = (float(dx), float(y + 0.5), float(rng.integers(4, 12)), float(h // 2 + 0.5))
                det_lines.append(_result_line(box, 0.5, int(rng.integers(1, 11)), rng))
        for _ in range(int(rng.integers(3, 18))):
            w, h = int(rng.integers(4, 30)), int(rng.integers(4, 30))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            category = int(rng.choice(10, p=class_p)) + 1
            if rng.random() < 0.05:
                category = 11
            score = 0 if rng.random() < 0.1 else 1
            gt_rows.append((x, y, w, h, score, category, 0, int(rng.integers(0, 3))))
            if category == 11 or rng.random() < 0.15:
                continue
            det_cat = category if rng.random() < 0.9 else int(rng.integers(1, 11))
            kind = rng.random()
            if kind < 0.3 and x + 20 <= width:  # a 20-wide object, IoU exactly k / 20
                gt_rows[-1] = (x, y, 20, h, *gt_rows[-1][4:])
                box = (x, y, int(rng.integers(10, 21)), h)
            elif kind < 0.6:
                box = (x + int(rng.integers(-2, 3)), y + int(rng.integers(-2, 3)), w, h)
            else:
                box = tuple(round(float(v + rng.normal(0, 1.5)), 2) for v in (x, y, w, h))
                box = (box[0], box[1], max(0.0, box[2]), max(0.0, box[3]))
            score_det = round(float(rng.integers(1, 11)) / 10, 1)  # ties
            det_lines.append(_result_line(box, score_det, det_cat, rng))
            if rng.random() < 0.25:  # duplicate, same score
                det_lines.append(_result_line(box, score_det, det_cat, rng))
        if index % 4 == 1 and width >= 120:  # one detection tied between two objects
            x0, y0 = int(rng.integers(0, width - 30)), int(rng.integers(0, height - 12))
            gt_rows += [(x0, y0, 20, 10, 1, 1, 0, 0), (x0 + 4, y0, 20, 10, 1, 1, 0, 0)]
            det_lines.append(_result_line((x0 + 2, y0, 20, 10), 0.9, 1, rng))  # IoU 9/11 with both
            det_lines.append(_result_line((x0 + 6, y0, 20, 10), 0.8, 1, rng))  # only the 2nd >= .6
        num_fp = int(rng.integers(1, 12))
        if index % 8 == 5:
            num_fp += int(rng.integers(500, 650))
        for _ in range(num_fp):
            w, h = float(rng.integers(0, 25)), float(rng.integers(1, 25))
            x, y = float(rng.integers(0, width)), float(rng.integers(0, height))
            score_det = round(float(rng.integers(1, 11)) / 10, 1)
            det_lines.append(_result_line((x, y, w, h), score_det, int(rng.integers(1, 11)), rng))
        if rng.random() < 0.5:
            rng.shuffle(det_lines)
        gt_text = "".join(",".join(str(v) for v in row) + "\r\n" for row in gt_rows)
        (root / "annotations" / f"{name}.txt").write_text(gt_text, newline="")
        (root / "results" / f"{name}.txt").write_text("".join(line + "\n" for line in det_lines))
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--make-case",
        type=Path,
        metavar="DIR",
        help="write the seeded corner-case set to DIR and exit",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --make-case")
    parser.add_argument("--toolkit", type=Path, help="a copy of the toolkit")
    parser.add_argument("--gt", type=Path, help="VisDrone folder (images/ + annotations/)")
    parser.add_argument("--results", type=Path, help="folder of result txts")
    parser.add_argument(
        "--images",
        help="comma-separated image ids, or a JSON file with a list "
        "(or an object with an 'images' list)",
    )
    parser.add_argument("--octave", help="Octave executable (default: octave-cli or octave)")
    parser.add_argument("--ours", action="store_true", help="also run ssabnet and compare")
    parser.add_argument("--tol", type=float, default=1e-4, help="largest allowed difference")
    args = parser.parse_args(argv)
    if args.make_case:
        print(make_case(args.make_case, args.seed))
        return 0
    if not (args.toolkit and args.gt and args.results):
        parser.error("--toolkit, --gt and --results are required (or --make-case)")
    images = None
    if args.images:
        path = Path(args.images)
        if path.is_file():
            loaded = json.loads(path.read_text())
            images = loaded["images"] if isinstance(loaded, dict) else loaded
        else:
            images = [s for s in args.images.split(",") if s]
    out: dict = {"toolkit": run_toolkit(args.toolkit, args.gt, args.results, images, args.octave)}
    status = 0
    if args.ours:
        ours = run_ours(args.gt, args.results, images)
        diff = {k: abs(ours["metrics"][k] - out["toolkit"]["metrics"][k]) for k in TOOLKIT_KEYS}
        out["ours"] = ours
        out["max_abs_diff"] = max(diff.values())
        out["diff"] = diff
        status = int(out["max_abs_diff"] > args.tol)
    print(json.dumps(out, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
