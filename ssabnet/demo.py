"""``ssabnet demo``: the whole analysis experience on embedded synthetic data, in one command.

Steps (each prints its elapsed time; a re-run skips every step whose outputs exist and are
valid, and resumes a training run that was cut off):

1. ``data``: the synthetic train/val scenes (catalog cards ``syndrone-demo-{train,val}``,
   generated on first use; budgets other than the card's go to ``<out>/data/{train,val}``).
2. ``train baseline-n`` and ``train ssabnet-n``: two ordinary :func:`ssabnet.fit` runs with the
   same small budget and the default recipe (``TrainConfig``/``LossConfig``; they differ only
   in the network). Each run
   folder gets ``config.yaml``, ``results.csv``, ``weights/best.pt`` and
   ``val/best/metrics.json`` + ``matches_*.parquet``.
3. ``predict``: ``<out>/<run>/predictions.json``, COCO results of ``weights/best.pt`` on the val
   split (image ids from :func:`ssabnet.data.coco.coco_image_ids`).
4. ``compare``: per-scale AP of both runs and a paired bootstrap CI of the AP50 difference
   (``<out>/comparison.csv``).
5. ``fiftyone``: the val split + both prediction sets indexed into FiftyOne with evaluation.
6. ``app``: the Streamlit app with both runs preselected (not with ``--no-app``).

``<out>/demo.json`` records what was done: budget, datasets, per-step status and seconds, the
FiftyOne dataset name and the machine's load average.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssabnet import runs
from ssabnet.atomic_io import atomic_path, write_json_atomic
from ssabnet.config import Config, merge
from ssabnet.data import load_dataset
from ssabnet.data.catalog import SyntheticSpec, find_card
from ssabnet.data.synthetic import ensure_generated
from ssabnet.engine.predict import load_checkpoint, predict
from ssabnet.engine.train import fit
from ssabnet.errors import MissingInputError, UsageError
from ssabnet.evaluation import MatchTables, bootstrap_ap_difference, write_coco_results
from ssabnet.evaluation.evaluator import SUMMARY_METRICS

RUN_NAMES = ("baseline-n", "ssabnet-n")
FIFTYONE_DATASET = "ssabnet-demo"
#: Saved view the demo points at: ground truth ssabnet-n missed (see ssabnet.integrations.fiftyone).
FIFTYONE_MISSED_VIEW = "ssabnet_n-missed"
BUDGET_ENV = "SSABNET_DEMO_BUDGET"


@dataclass(frozen=True)
class DemoBudget:
    """How much data and training the demo uses (both runs get the same budget).

    ``image_size`` is the native (W, H) of the synthetic scenes: 320x256 at ``imgsz`` 320 keeps
    objects at VisDrone-like pixel sizes without downscaling.
    """

    name: str
    train_images: int
    val_images: int
    epochs: int
    image_size: tuple[int, int] = (320, 256)
    imgsz: int = 320
    batch: int = 8
    val_interval: int = 5  # validate every N epochs (and after the last)
    # Wall seconds per training image and epoch at imgsz 320, measured on the idle 2-core VM
    # (30 epochs x 64 images: baseline-n 120 s, ssabnet-n 222 s). Only for the estimates.
    seconds_per_image: tuple[tuple[str, float], ...] = (("baseline-n", 0.06), ("ssabnet-n", 0.11))

    def estimate_train_seconds(self, run: str) -> float:
        rate = dict(self.seconds_per_image)[run]
        validations = -(-self.epochs // self.val_interval)
        return rate * (self.epochs * self.train_images + validations * self.val_images / 3)


BUDGETS: dict[str, DemoBudget] = {
    # the card's data (data_catalog/syndrone-demo-*.yaml); < 10 min in all on 2 idle CPU cores.
    # 30 epochs is where both models start to find objects (AP50 ~0.15, docs/benchmarks.md).
    "default": DemoBudget("default", train_images=64, val_images=32, epochs=30),
    # the test suite's budget: same code path, a minute on 2 cores
    "tiny": DemoBudget("tiny", train_images=8, val_images=4, epochs=1, batch=4),
}


def train_overrides(run: str, budget: DemoBudget, data: dict[str, str], out: Path) -> dict:
    """The config changes (on top of the defaults) for one demo run."""
    return {
        "data": {"train": data["train"], "val": data["val"]},
        "model": {"name": run},  # everything else is the default recipe (TrainConfig, LossConfig)
        "train": {
            "epochs": budget.epochs,
            "imgsz": budget.imgsz,
            "batch": budget.batch,
            "val_interval": budget.val_interval,
            "workers": 0,  # 2 cores: loader processes only compete with the training threads
            "out": str(out / run),
            # the recipe (optimizer, lr, warm-up, augmentation) is TrainConfig's defaults
        },
    }


# ----------------------------------------------------------------------------- progress
class _Progress:
    """Numbered step headers with estimates, and elapsed times (plain prints, no bars)."""

    def __init__(self, total: int, log: Callable[[str], None]):
        self.total, self.index, self.log = total, 0, log
        self.steps: list[dict[str, Any]] = []
        self.start = time.perf_counter()

    def run(self, name: str, estimate_s: float, action: Callable[[], tuple[str, Any]]) -> Any:
        """Run ``action`` -> ``(status, value)``; status ``done``, ``skipped`` or ``failed``."""
        self.index += 1
        self.log(f"[{self.index}/{self.total}] {name} (estimate {_fmt_seconds(estimate_s)})")
        start = time.perf_counter()
        status, value = action()
        seconds = time.perf_counter() - start
        self.steps.append({"step": name, "status": status, "seconds": round(seconds, 2)})
        self.log(
            f"[{self.index}/{self.total}] {name}: {status} in {_fmt_seconds(seconds)} "
            f"(total {_fmt_seconds(time.perf_counter() - self.start)})"
        )
        return value


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# ----------------------------------------------------------------------------- steps
def prepare_data(budget: DemoBudget, out: Path) -> tuple[str, dict[str, str]]:
    """Make sure the train/val scenes exist; returns ``(status, {"train": spec, "val": spec})``.

    With the card's own counts and size the spec is the catalog name (data under
    ``$SSABNET_DATA/syndrone``); otherwise the folder ``<out>/data/<split>``.
    """
    specs, generated = {}, False
    for split, count in (("train", budget.train_images), ("val", budget.val_images)):
        card = find_card(f"syndrone-demo-{split}")
        if card is None or card.generate is None:
            raise MissingInputError(f"catalog card syndrone-demo-{split} not found")
        wanted = SyntheticSpec(count, card.generate.seed, tuple(budget.image_size))
        if wanted == card.generate:
            specs[split] = card.name
        else:
            card = dataclasses.replace(card, root=out / "data" / split, generate=wanted)
            specs[split] = str(card.root)
        meta = card.root / "synthetic.json"
        before = meta.stat().st_mtime_ns if meta.is_file() else None
        ensure_generated(card)  # no-op when the folder matches the spec
        generated |= before != (meta.stat().st_mtime_ns if meta.is_file() else None)
    return ("done" if generated else "skipped"), specs


def run_is_complete(run_dir: Path, epochs: int) -> bool:
    """A finished demo run (:func:`ssabnet.runs.is_finished` on ``val/best``)."""
    return runs.is_finished(run_dir, epochs, split="best")


def train_run(run: str, budget: DemoBudget, data: dict[str, str], out: Path, progress: bool):
    """Train one run (or resume it, or skip it when complete); returns ``(status, run_dir)``."""
    overrides = train_overrides(run, budget, data, out)
    run_dir = out / run
    if (run_dir / runs.CONFIG_FILE).is_file():
        runs.check_same_recipe(run_dir, overrides)
    if run_is_complete(run_dir, budget.epochs):
        return "skipped", run_dir
    resume = runs.weights_path(run_dir, "last").is_file()
    fit(merge(Config(), overrides), resume=resume, progress=progress)
    if not run_is_complete(run_dir, budget.epochs):
        raise RuntimeError(f"{run_dir}: training finished but the run folder is incomplete")
    return "done", run_dir


def write_predictions(run_dir: Path, val_spec: str, imgsz: int) -> tuple[str, Path]:
    """``<run>/predictions.json``: COCO results of ``weights/best.pt`` on the val split."""
    path = run_dir / runs.PREDICTIONS_FILE
    weights = runs.weights_path(run_dir, "best")
    if path.is_file() and path.stat().st_mtime >= weights.stat().st_mtime:
        try:
            if isinstance(json.loads(path.read_text()), list):
                return "skipped", path
        except json.JSONDecodeError:
            pass
    dataset = load_dataset(val_spec)
    loaded = load_checkpoint(weights)
    records = dataset.records
    predictions = predict(
        loaded,
        [r.image_path for r in records],
        image_ids=[r.image_id for r in records],
        imgsz=imgsz,
    )
    write_coco_results(path, predictions, dataset.info, records)  # atomic
    return "done", path


def predict_runs(out: Path, val_spec: str, imgsz: int) -> tuple[str, None]:
    """:func:`write_predictions` for every demo run."""
    statuses = [write_predictions(out / run, val_spec, imgsz)[0] for run in RUN_NAMES]
    return ("done" if "done" in statuses else "skipped"), None


def compare_runs(out: Path, n_boot: int = 1000) -> tuple[str, Any]:
    """Per-scale AP of both runs + paired bootstrap CI of AP50(ssabnet) - AP50(baseline).

    Returns ``("done", (metrics_table, bootstrap_table))``, both DataFrames; writes
    ``<out>/comparison.csv`` (the bootstrap table).
    """
    import pandas as pd

    a, b = RUN_NAMES
    metrics = {
        run: json.loads(runs.metrics_path(out / run, "best").read_text()) for run in RUN_NAMES
    }
    table = pd.DataFrame({run: [metrics[run].get(k) for k in SUMMARY_METRICS] for run in RUN_NAMES})
    table.index = list(SUMMARY_METRICS)
    boot = bootstrap_ap_difference(
        MatchTables.load(runs.val_dir(out / a, "best")),
        MatchTables.load(runs.val_dir(out / b, "best")),
        n_boot=n_boot,
        seed=0,
        by="bucket",
    )
    with atomic_path(out / "comparison.csv") as tmp:
        boot.to_csv(tmp)
    return "done", (table, boot)


def format_comparison(table, boot) -> str:
    """The final comparison as text (percent)."""

    def pct(value) -> str:
        return "    -" if value is None or value != value else f"{100 * value:5.1f}"

    a, b = RUN_NAMES
    lines = [f"{'metric':<8}{a:>12}{b:>12}"]
    for key, row in table.iterrows():
        lines.append(f"{key:<8}{pct(row[a]):>12}{pct(row[b]):>12}")
    lines.append("")
    lines.append(f"AP50 {b} - {a}, paired bootstrap over images (1000 resamples, 95% CI), percent:")
    lines.append(f"{'bucket':<12}{'n_gt':>6}{a:>12}{b:>12}{'delta':>8}{'95% CI':>18}")
    for group, row in boot.iterrows():
        ci = f"[{pct(row['ci_low']).strip()}, {pct(row['ci_high']).strip()}]"
        lines.append(
            f"{group:<12}{int(row['n_gt']):>6}{pct(row['ap_a']):>12}{pct(row['ap_b']):>12}"
            f"{pct(row['delta']):>8}{ci:>18}"
        )
    return "\n".join(lines)


def index_fiftyone(out: Path, val_spec: str) -> tuple[str, str | None]:
    """Index the val split and both prediction sets into FiftyOne (with evaluation)."""
    try:  # late: the demo runs without FiftyOne (an optional, heavy dependency)
        from ssabnet.integrations.fiftyone import index_dataset
    except ImportError as exc:
        print(f"  FiftyOne step skipped: the integration is not available ({exc})")
        return "skipped", None
    predictions = {run.replace("-", "_"): out / run / runs.PREDICTIONS_FILE for run in RUN_NAMES}
    try:
        # Our evaluator's verdicts in FiftyOne's evaluation schema (a registered evaluation per
        # field for the Model Evaluation panel) and the error views. The demo owns this name:
        # a dataset left by an earlier demo on other data is replaced.
        index_dataset(val_spec, predictions, FIFTYONE_DATASET, replace=True)
    except Exception as exc:  # noqa: BLE001 - FiftyOne's database may fail to start: report it
        print(
            f"  FiftyOne step failed: {type(exc).__name__}: {exc}\n"
            f"  (the runs are fine; retry later with: ssabnet fiftyone index ...)"
        )
        return "failed", None
    return "done", FIFTYONE_DATASET


def launch_app(out: Path, val_spec: str, port: int) -> int:
    """Start the Streamlit app (blocks until Ctrl-C) with both runs preselected."""
    command = [
        sys.executable,
        "-m",
        "ssabnet",
        "app",
        "--runs",
        str(out),
        "--data",
        val_spec,
        "--compare",
        ",".join(RUN_NAMES),
        "--port",
        str(port),
    ]
    print("starting the app: " + " ".join(command[2:]) + "  (Ctrl-C to stop)", flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


# ----------------------------------------------------------------------------- main entry
def run_demo(
    out: str | Path = "runs/demo",
    budget: str | DemoBudget | None = None,
    *,
    app: bool = True,
    fiftyone: bool = True,
    port: int = 8501,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns what ``<out>/demo.json`` records.

    Args:
        out: output folder (``<out>/baseline-n``, ``<out>/ssabnet-n``, ``demo.json``, ...).
        budget: a :data:`BUDGETS` name or a :class:`DemoBudget`; default ``$SSABNET_DEMO_BUDGET``
            or ``"default"``.
        app: start the Streamlit app at the end (blocks until Ctrl-C).
        fiftyone: index the val split and predictions into FiftyOne.
        progress: show training progress bars.
    """
    log = log or (lambda text: print(text, flush=True))
    chosen = budget or os.environ.get(BUDGET_ENV) or "default"
    if isinstance(chosen, str):
        if chosen not in BUDGETS:
            raise UsageError(f"unknown demo budget {chosen!r}; choose one of {sorted(BUDGETS)}")
        chosen = BUDGETS[chosen]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    steps = _Progress(3 + len(RUN_NAMES) + int(fiftyone) + int(app), log)
    log(
        f"SSABNet demo into {out}: budget {chosen.name} ({chosen.train_images} train / "
        f"{chosen.val_images} val scenes at {chosen.image_size[0]}x{chosen.image_size[1]}, "
        f"{chosen.epochs} epochs, imgsz {chosen.imgsz}); load average {load_before[0]:.2f} on "
        f"{os.cpu_count()} CPUs"
    )
    data = steps.run("data", 5 + 0.02 * chosen.train_images, lambda: prepare_data(chosen, out))
    for run in RUN_NAMES:
        steps.run(
            f"train {run}",
            chosen.estimate_train_seconds(run),
            lambda run=run: train_run(run, chosen, data, out, progress),
        )
    steps.run(
        "predict (val split, weights/best.pt)",
        0.3 * chosen.val_images * len(RUN_NAMES),
        lambda: predict_runs(out, data["val"], chosen.imgsz),
    )
    table, boot = steps.run("compare", 5, lambda: compare_runs(out))
    log(format_comparison(table, boot))
    fiftyone_name = None
    if fiftyone:
        fiftyone_name = steps.run("fiftyone", 60, lambda: index_fiftyone(out, data["val"]))
    record = {
        "out": str(out),
        "budget": dataclasses.asdict(chosen),
        "datasets": data,
        "runs": {run: str(out / run) for run in RUN_NAMES},
        "predictions": {run: str(out / run / runs.PREDICTIONS_FILE) for run in RUN_NAMES},
        "comparison": str(out / "comparison.csv"),
        "fiftyone_dataset": fiftyone_name,
        "fiftyone_command": f"ssabnet fiftyone launch --name {fiftyone_name} --view "
        f"{FIFTYONE_MISSED_VIEW}"
        if fiftyone_name
        else None,
        "steps": steps.steps,
        "total_seconds": round(time.perf_counter() - steps.start, 2),
        "load_average": {"start": list(load_before), "end": list(os.getloadavg())},
        "cpus": os.cpu_count(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json_atomic(out / "demo.json", record)
    log(
        f"demo finished in {_fmt_seconds(record['total_seconds'])} (load average now "
        f"{record['load_average']['end'][0]:.2f}); summary in {out / 'demo.json'}"
    )
    if fiftyone_name:
        log(
            f"FiftyOne App, misses of ssabnet-n: {record['fiftyone_command']}  "
            "(http://127.0.0.1:5151)"
        )
    if app:
        steps.run("app", 0, lambda: (_app_status(launch_app(out, data["val"], port)), None))
    else:
        log(
            f"app not started (--no-app); start it with: ssabnet app --runs {out} "
            f"--data {data['val']} --compare {','.join(RUN_NAMES)}"
        )
    return record


def _app_status(code: int) -> str:
    return "done" if code == 0 else "failed"


__all__ = [
    "BUDGETS",
    "RUN_NAMES",
    "DemoBudget",
    "compare_runs",
    "format_comparison",
    "prepare_data",
    "run_demo",
    "run_is_complete",
    "train_overrides",
]
