"""Ablation harness: do SSA and SABL help, on which object sizes, and against a peer?

``ssabnet ablate`` trains every variant x seed with the same data, image size and budget,
evaluates the **final** weights of each run on the same split with the one evaluator, and
reports mean +- std over seeds and the paired bootstrap CI of each variant's gain over the
baseline per size bucket.

Variants (``VARIANTS``), all at one model scale ``S`` (``n``, ``s`` or ``m``):

============  =======================  ========================================
name          model                    loss recipe (``ssabnet.losses.config``)
============  =======================  ========================================
baseline      ``baseline-S``           ``BASELINE_LOSS`` (CIoU, IoU assigner)
baseline-p2   ``baseline-S-p2``        ``BASELINE_LOSS`` (YOLOv8-P2 architecture)
p2+fade       ``baseline-S-p2-fade``   ``BASELINE_LOSS`` (one SSA part on the P2 baseline;
p2+flow       ``baseline-S-p2-flow``   likewise ``+gate``, ``+blur``)
ssa           ``ssabnet-S``            ``BASELINE_LOSS``
ssa-nearest   ``ssabnet-S-nearest``    ``BASELINE_LOSS`` (one SSA part removed; likewise
                                       ``-noalign``, ``-nogate``, ``-noblur``)
sabl          ``baseline-S``           ``SABL_LOSS`` (the SABL box loss, "relative" variant)
ssa+sabl      ``ssabnet-S``            ``SABL_LOSS``
p2+sabl       ``baseline-S-p2``        ``SABL_LOSS``
sabl-paper    ``baseline-S``           ``PAPER_SABL_LOSS`` (literal reading: fixed-C SABL,
ssa+sabl-     ``ssabnet-S``            anchor balancing, SABL assigner; the recipe of the
paper                                  first docs/results.md tables)
============  =======================  ========================================

The report gives each variant's gain over ``baseline`` and, when ``baseline-p2`` ran, over
``baseline-p2`` too: the reference that differs from ``ssa`` only in the SSA operators.

Budget: ``epochs`` (the same number for every variant) or ``minutes`` per run, converted to
epochs from a timed probe of each variant's training step; with ``equal="epochs"`` (default)
every variant gets the epochs that the slowest one fits in the budget, with ``equal="time"``
each variant gets its own (same wall-clock). The plan, including the probe's timings, is
written to ``<out>/plan.json`` before any training.

Folder layout (peers written by ``benchmarks/ablation_peer.py`` use the same)::

    <out>/plan.json
    <out>/<variant>/seed<k>/            an ordinary ``ssabnet train`` run folder
        ablation_run.json               written last: its presence marks a finished run
        val/last/metrics.json           + matches_*.parquet: the final weights on the val split
    <out>/results.csv  <out>/gains.csv  <out>/results.md

No checkpoint is selected on the validation split: each run validates once, after its last
epoch, so the reported split is never used for tuning. Under ``torchrun`` every rank runs the
same sequence of runs (each run is one DDP job) and rank 0 writes the report.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssabnet import __version__
from ssabnet import runs as run_folder  # `runs` is the DataFrame of runs below
from ssabnet.atomic_io import atomic_path, write_json_atomic, write_text_atomic
from ssabnet.config import Config, config_to_dict, merge
from ssabnet.data import load_dataset
from ssabnet.data.loader import DetectionSamples, collate_detection
from ssabnet.engine.distributed import (
    cleanup_distributed,
    launch_rank,
    launch_world_size,
    resolve_device,
    setup_distributed,
)
from ssabnet.engine.predict import load_checkpoint
from ssabnet.engine.train import build_optimizer, fit
from ssabnet.errors import MissingInputError, OverwriteError, UsageError
from ssabnet.evaluation import MatchTables, bootstrap_ap_difference
from ssabnet.evaluation.evaluator import SUMMARY_METRICS
from ssabnet.losses.config import BASELINE_LOSS, PAPER_SABL_LOSS, SABL_LOSS
from ssabnet.losses.criterion import build_criterion
from ssabnet.model.build import build_model

PLAN_FILE = "plan.json"
RUN_FILE = "ablation_run.json"
BASELINE = "baseline"
P2_BASELINE = "baseline-p2"  # second reference of the gains tables (the SSA parts' own gain)
#: The gains tables' default references (each one that ran); ``--reference`` names others.
DEFAULT_REFERENCES = (BASELINE, P2_BASELINE)
#: Columns of the report's per-variant table (mean ± std over seeds), every COCO scale included.
REPORT_METRICS = ("AP", "AP50", "APs", "APm", "APl", "AP_vt", "AP_t")
RUN_FIELDS = (
    "variant",
    "seed",
    "kind",
    "model",
    "box_loss",
    "epochs",
    "imgsz",
    "train_seconds",
    "params_m",
)


@dataclass(frozen=True)
class Variant:
    """One ablation arm: which model family and which loss recipe."""

    name: str
    model: str  # preset name with ``{scale}``, e.g. ``"baseline-{scale}-p2"``
    loss: dict[str, Any]

    def overrides(self, scale: str) -> dict[str, dict[str, Any]]:
        return {"model": {"name": self.model.format(scale=scale)}, "loss": dict(self.loss)}


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("baseline", "baseline-{scale}", BASELINE_LOSS),
        Variant(P2_BASELINE, "baseline-{scale}-p2", BASELINE_LOSS),
        *(
            Variant(f"p2+{part}", f"baseline-{{scale}}-p2-{part}", BASELINE_LOSS)
            for part in ("fade", "flow", "gate", "blur")
        ),
        Variant("ssa", "ssabnet-{scale}", BASELINE_LOSS),
        *(
            Variant(f"ssa-{suffix}", f"ssabnet-{{scale}}-{suffix}", BASELINE_LOSS)
            for suffix in ("nearest", "noalign", "nogate", "noblur")
        ),
        Variant("sabl", "baseline-{scale}", SABL_LOSS),
        Variant("ssa+sabl", "ssabnet-{scale}", SABL_LOSS),
        Variant("p2+sabl", "baseline-{scale}-p2", SABL_LOSS),
        Variant("sabl-paper", "baseline-{scale}", PAPER_SABL_LOSS),
        Variant("ssa+sabl-paper", "ssabnet-{scale}", PAPER_SABL_LOSS),
    )
}


@dataclass(frozen=True)
class AblationPlan:
    """Everything that defines an ablation (stored as ``<out>/plan.json``).

    ``config`` is the base configuration (``config_to_dict``) every run starts from; a run
    changes only ``model.name``, the ``loss`` recipe, ``train.seed``, ``train.epochs``,
    ``train.val_interval`` (= epochs) and ``train.out``.
    """

    out: str
    train: str
    val: str
    scale: str
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: dict[str, int]
    budget: dict[str, Any]
    config: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        data = {f: getattr(self, f) for f in self.__dataclass_fields__}
        data["variants"], data["seeds"] = list(self.variants), list(self.seeds)
        # what the peer script reads: the shared epochs when every variant has the same
        data["peer_epochs"] = max(self.epochs.values())
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AblationPlan:
        fields = {f: data[f] for f in cls.__dataclass_fields__}
        fields["variants"] = tuple(fields["variants"])
        fields["seeds"] = tuple(int(s) for s in fields["seeds"])
        fields["epochs"] = {k: int(v) for k, v in fields["epochs"].items()}
        return cls(**fields)

    def run_dir(self, variant: str, seed: int) -> Path:
        return Path(self.out) / variant / f"seed{seed}"

    def run_config(self, variant: str, seed: int) -> Config:
        epochs = self.epochs[variant]
        changes = VARIANTS[variant].overrides(self.scale)
        changes["train"] = {
            "seed": seed,
            "epochs": epochs,
            "val_interval": epochs,
            "out": str(self.run_dir(variant, seed)),
        }
        return merge(merge(Config(), self.config), changes)


def parse_variants(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise UsageError(f"unknown ablation variant(s) {unknown}; choose from {list(VARIANTS)}")
    return names


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"3"`` -> seeds 0, 1, 2; ``"0,5,7"`` -> those seeds."""
    text = str(text).strip()
    try:
        if "," in text:
            seeds = tuple(int(s) for s in text.split(",") if s.strip())
        else:
            seeds = tuple(range(int(text)))
    except ValueError:
        raise UsageError(
            f"--seeds: expected a count or a comma list of ints, got {text!r}"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds: need at least one seed and no repeats, got {text!r}")
    return seeds


# ----------------------------------------------------------------------------- budget
def probe_seconds_per_image(cfg: Config, records: list, steps: int = 3) -> float:
    """Wall seconds per training image of ``cfg`` (forward, loss, backward, optimizer step).

    Times ``steps`` steps after one warm-up step on un-augmented samples of ``records`` at
    ``train.imgsz`` and ``train.batch`` on ``train.device``.
    """
    import torch

    tc = cfg.train
    device = resolve_device(tc.device)
    classes = cfg.model.num_classes
    samples = DetectionSamples(records, tc.imgsz, None)
    batch = [samples[i % len(samples)] for i in range(tc.batch)]
    images, targets, _ = collate_detection(batch)
    images = images.to(device).float().div_(255)
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
    torch.manual_seed(0)
    model = build_model(cfg.model, num_classes=classes).to(device).train()
    criterion = build_criterion(cfg.loss, classes, model.reg_max)
    optimizer = build_optimizer(model, tc)
    times = []
    for _ in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        loss = criterion(model(images), targets)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:])) / tc.batch


#: epoch wall time / (images x probed step time): augmentation, EMA, checkpoints, logging
EPOCH_OVERHEAD = 1.2


def budget_epochs(
    seconds_per_image: dict[str, float],
    train_images: int,
    val_images: int,
    minutes: float,
    equal: str = "epochs",
) -> dict[str, int]:
    """Epochs per variant that fit ``minutes`` per run (>= 1).

    A run costs ``epochs x train_images x spi x EPOCH_OVERHEAD`` plus one validation
    (``val_images x spi / 3``: inference only). ``equal="epochs"`` gives every variant the
    epochs of the slowest; ``equal="time"`` gives each its own.
    """
    if equal not in ("epochs", "time"):
        raise UsageError(f"equal must be 'epochs' or 'time', got {equal!r}")
    if minutes <= 0:
        raise UsageError(f"--budget-minutes must be > 0, got {minutes}")

    def fit_epochs(spi: float) -> int:
        available = minutes * 60 - val_images * spi / 3
        return max(1, math.floor(available / (train_images * spi * EPOCH_OVERHEAD)))

    own = {name: fit_epochs(spi) for name, spi in seconds_per_image.items()}
    if equal == "time":
        return own
    shared = min(own.values())
    return {name: shared for name in own}


def plan_ablation(
    base: Config,
    out: str | Path,
    variants: tuple[str, ...],
    seeds: tuple[int, ...],
    scale: str = "n",
    *,
    epochs: int | None = None,
    budget_minutes: float | None = None,
    equal: str = "epochs",
    log=print,
) -> AblationPlan:
    """Build (or extend) the plan in ``out``; writes ``<out>/plan.json``.

    An existing plan with the same data, scale and base config is reused: its variants keep
    their epochs (so a re-run resumes instead of re-calibrating); new variants/seeds are added.
    A plan made with different data or config is refused.
    """
    if (epochs is None) == (budget_minutes is None):
        raise UsageError("give exactly one of --epochs or --budget-minutes")
    if epochs is not None and epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {epochs}")
    if scale not in ("n", "s", "m"):
        raise UsageError(f"--scale must be n, s or m, got {scale!r}")
    out = Path(out)
    config = config_to_dict(base)
    config["train"].pop("out", None)
    for key in ("seed", "epochs", "val_interval"):  # set per run
        config["train"].pop(key, None)
    config["model"].pop("name", None)
    previous = None
    if (out / PLAN_FILE).is_file():
        previous = AblationPlan.from_json(json.loads((out / PLAN_FILE).read_text()))
        mismatched = [
            key
            for key, have, want in (
                ("data.train", previous.train, base.data.train),
                ("data.val", previous.val, base.data.val),
                ("scale", previous.scale, scale),
                ("config", previous.config, config),
            )
            if have != want
        ]
        if mismatched:
            raise OverwriteError(
                f"{out / PLAN_FILE} was planned with other {', '.join(mismatched)}; "
                "use another --out (or delete that folder)"
            )
    known = dict(previous.epochs) if previous else {}
    new = [v for v in variants if v not in known]
    budget: dict[str, Any] = dict(previous.budget) if previous else {}
    if new and epochs is not None:
        known |= {v: epochs for v in new}
        budget |= {"mode": "epochs", "epochs": epochs}
    elif new:
        if launch_world_size() > 1:
            raise UsageError(
                "--budget-minutes probes speed in one process: under torchrun pass "
                "--epochs (e.g. from a single-process plan's plan.json)"
            )
        train = load_dataset(base.data.train, base.data.format, base.data.skip_invalid)
        val = load_dataset(base.data.val, base.data.format, base.data.skip_invalid)
        probe_cfg = merge(Config(), config)
        spi = {}
        for name in new:
            cfg = merge(probe_cfg, VARIANTS[name].overrides(scale))
            cfg = merge(cfg, {"model": {"num_classes": len(train.info.classes)}})
            spi[name] = probe_seconds_per_image(cfg, train.records[: cfg.train.batch])
            log(f"probe {name}: {spi[name] * 1000:.0f} ms per training image")
        known |= budget_epochs(spi, len(train.records), len(val.records), budget_minutes, equal)
        budget |= {
            "mode": "minutes",
            "minutes": budget_minutes,
            "equal": equal,
            "seconds_per_image": {**budget.get("seconds_per_image", {}), **spi},
            "epoch_overhead": EPOCH_OVERHEAD,
        }
    all_variants = tuple(dict.fromkeys((*(previous.variants if previous else ()), *variants)))
    all_seeds = tuple(dict.fromkeys((*(previous.seeds if previous else ()), *seeds)))
    plan = AblationPlan(
        out=str(out),
        train=base.data.train,
        val=base.data.val,
        scale=scale,
        variants=all_variants,
        seeds=all_seeds,
        epochs={v: known[v] for v in all_variants},
        budget=budget,
        config=config,
    )
    if launch_rank() == 0:
        write_json_atomic(out / PLAN_FILE, plan.to_json())
    return plan


# ----------------------------------------------------------------------------- training
def run_finished(run_dir: Path, epochs: int) -> bool:
    """A finished ablation run: :func:`ssabnet.runs.is_finished` on ``val/last`` (the final
    weights) with the run record written last."""
    return run_folder.is_finished(run_dir, epochs, split="last", marker=RUN_FILE)


def train_variant(plan: AblationPlan, variant: str, seed: int, progress: bool = True) -> str:
    """Train (or resume, or skip) one run; returns ``"done"``, ``"resumed"`` or ``"skipped"``."""
    import torch

    run_dir = plan.run_dir(variant, seed)
    cfg = plan.run_config(variant, seed)
    if (run_dir / run_folder.CONFIG_FILE).is_file():
        run_folder.check_same_recipe(run_dir, config_to_dict(cfg))
    if run_finished(run_dir, cfg.train.epochs):
        return "skipped"
    resume = run_folder.weights_path(run_dir, "last").is_file()
    fit(cfg, resume=resume, progress=progress)
    if launch_rank() == 0:
        results = pd.read_csv(run_dir / run_folder.RESULTS_FILE)
        if len(results) < cfg.train.epochs:
            raise RuntimeError(
                f"{run_dir}: results.csv has {len(results)} of {cfg.train.epochs} epochs"
            )
        loaded = load_checkpoint(run_folder.weights_path(run_dir, "last"))
        params = sum(p.numel() for p in loaded.model.parameters())
        record = {
            "variant": variant,
            "seed": seed,
            "kind": "ssabnet",
            "model": cfg.model.name,
            "box_loss": cfg.loss.box,
            "epochs": cfg.train.epochs,
            "imgsz": cfg.train.imgsz,
            "train_seconds": round(float(results["time"].sum()), 2),
            "params_m": round(params / 1e6, 3),
            "device": cfg.train.device,
            "world_size": launch_world_size(),
            "software": f"ssabnet {__version__}, torch {torch.__version__}",
        }
        write_json_atomic(run_dir / RUN_FILE, record)
    return "resumed" if resume else "done"


def run_ablation(plan: AblationPlan, progress: bool = True, log=print) -> None:
    """Train every variant x seed of ``plan`` that is not finished (seed-major order)."""
    if launch_rank() != 0:
        log = _silent
    total = len(plan.variants) * len(plan.seeds)
    index = 0
    # under torchrun: one process group for all runs (fit keeps a group it did not create)
    setup_distributed(plan.config["train"]["device"])
    try:
        for seed in plan.seeds:
            for variant in plan.variants:
                index += 1
                start = time.perf_counter()
                log(f"[{index}/{total}] {variant} seed {seed} ({plan.epochs[variant]} epochs)")
                status = train_variant(plan, variant, seed, progress)
                log(
                    f"[{index}/{total}] {variant} seed {seed}: {status} in "
                    f"{time.perf_counter() - start:.0f} s"
                )
    finally:
        cleanup_distributed()


def _silent(*_args, **_kwargs) -> None:
    return None


# ----------------------------------------------------------------------------- report
def collect_runs(out: str | Path) -> pd.DataFrame:
    """One row per finished run under ``out`` (ours and peers): identity + final metrics."""
    rows = []
    for record_file in sorted(Path(out).glob(f"*/seed*/{RUN_FILE}")):
        run_dir = record_file.parent
        metrics_file = run_folder.metrics_path(run_dir, "last")
        if not metrics_file.is_file():
            continue
        record = json.loads(record_file.read_text())
        metrics = json.loads(metrics_file.read_text())
        row = {k: record.get(k) for k in RUN_FIELDS}
        row |= {k: metrics.get(k) for k in SUMMARY_METRICS}
        row["run_dir"] = str(run_dir)
        rows.append(row)
    columns = [*RUN_FIELDS, *SUMMARY_METRICS, "run_dir"]
    frame = pd.DataFrame(rows, columns=columns)
    order = {name: i for i, name in enumerate(VARIANTS)}
    frame["_order"] = frame["variant"].map(lambda v: order.get(v, len(order)))
    return (
        frame.sort_values(["_order", "variant", "seed"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def summarize_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per variant (std is NaN for a single seed)."""
    metrics = [m for m in SUMMARY_METRICS if m in runs]
    grouped = runs.groupby("variant", sort=False)
    summary = grouped[metrics].agg(["mean", "std"])
    summary.columns = [f"{m}_{stat}" for m, stat in summary.columns]
    summary.insert(0, "runs", grouped.size())
    summary.insert(1, "epochs", grouped["epochs"].first())
    summary.insert(2, "train_seconds", grouped["train_seconds"].mean())
    summary.insert(3, "model", grouped["model"].first())
    return summary


def gains_over_baseline(
    runs: pd.DataFrame, n_boot: int = 1000, seed: int = 0, reference: str = BASELINE
) -> pd.DataFrame:
    """Paired bootstrap (over val images) of each variant's AP50 gain over ``reference``.

    Each side's AP is averaged over its seeds in every resample
    (:func:`ssabnet.evaluation.bootstrap_ap_difference` with one table per seed).
    Rows: ``(variant, bucket)``; columns ``ap_ref, ap_variant, delta, ci_low, ci_high,
    p_value, n_gt``.
    """

    def tables(variant: str) -> list[MatchTables]:
        dirs = runs.loc[runs["variant"] == variant, "run_dir"]
        return [MatchTables.load(run_folder.val_dir(d, "last")) for d in dirs]

    if reference not in set(runs["variant"]):
        return pd.DataFrame()
    ref = tables(reference)
    frames = []
    for variant in dict.fromkeys(runs["variant"]):
        if variant == reference:
            continue
        boot = bootstrap_ap_difference(ref, tables(variant), n_boot=n_boot, seed=seed)
        boot = boot.rename(columns={"ap_a": "ap_ref", "ap_b": "ap_variant"})
        boot.insert(0, "variant", variant)
        frames.append(boot.reset_index().rename(columns={"group": "bucket"}))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def _pct(mean: float, std: float | None = None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    text = f"{100 * mean:.1f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {100 * std:.1f}"
    return text


def format_report(plan: dict[str, Any] | None, runs: pd.DataFrame, gains: pd.DataFrame) -> str:
    """The Markdown report (``results.md``): setup, per-variant table, gains per bucket."""
    lines = ["# Ablation results", ""]
    if plan:
        train = plan["config"].get("train", {})
        budget = plan.get("budget", {})
        if budget.get("mode") == "minutes":
            how = (
                f"{budget['minutes']} min per run, equal {budget.get('equal', 'epochs')} "
                f"(epochs from a timed probe)"
            )
        else:
            how = "the same epochs for every variant"
        lines += [
            f"- data: train `{plan['train']}`, reported on `{plan['val']}` (final weights, no "
            "checkpoint selection)",
            f"- scale `{plan['scale']}`, imgsz {train.get('imgsz')}, batch {train.get('batch')}, "
            f"{train.get('optimizer')} lr {train.get('lr')}, device {train.get('device')}",
            f"- budget: {how}; epochs per variant: "
            + ", ".join(f"{k} {v}" for k, v in plan["epochs"].items()),
            "",
        ]
    lines += [
        "Mean ± std over seeds, percent (COCO AP@[.5:.95] unless named; AP_vt < 8 px, "
        "AP_t 8–16 px, APs < 32 px).",
        "",
        "| variant | model | runs | epochs | min/run | " + " | ".join(REPORT_METRICS) + " |",
        "|---|---|---|---|---|" + "---|" * len(REPORT_METRICS),
    ]
    if not runs.empty:
        summary = summarize_runs(runs)
        for variant, row in summary.iterrows():
            cells = [_pct(row[f"{m}_mean"], row[f"{m}_std"]) for m in REPORT_METRICS]
            lines.append(
                f"| {variant} | {row['model']} | {int(row['runs'])} | {int(row['epochs'])} | "
                f"{row['train_seconds'] / 60:.1f} | " + " | ".join(cells) + " |"
            )
    if gains.empty:
        return "\n".join(lines) + "\n"
    if "reference" not in gains:
        gains = gains.assign(reference=BASELINE)
    for reference, ref_gains in gains.groupby("reference", sort=False):
        lines += _gains_table(reference, ref_gains)
    return "\n".join(lines) + "\n"


def _gains_table(reference: str, gains: pd.DataFrame) -> list[str]:
    """Markdown lines of one gains table (AP50 gain over ``reference`` per size bucket)."""
    buckets = list(dict.fromkeys(gains["bucket"]))
    counts = gains.groupby("bucket", sort=False)["n_gt"].first()
    lines = [
        "",
        f"AP50 gain over `{reference}` (percentage points), seeds averaged on each side, paired "
        "bootstrap over validation images (95% CI); **bold** where the CI excludes 0.",
        "",
        "| variant | " + " | ".join(f"{b} (n={int(counts[b])})" for b in buckets) + " |",
        "|---|" + "---|" * len(buckets),
    ]
    for variant, part in gains.groupby("variant", sort=False):
        by_bucket = part.set_index("bucket")
        cells = []
        for bucket in buckets:
            r = by_bucket.loc[bucket]
            if math.isnan(r["delta"]):
                cells.append("–")
                continue
            text = f"{100 * r['delta']:+.1f} [{100 * r['ci_low']:+.1f}, {100 * r['ci_high']:+.1f}]"
            outside = r["ci_low"] > 0 or r["ci_high"] < 0
            cells.append(f"**{text}**" if outside else text)
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def write_report(
    out: str | Path, n_boot: int = 1000, references: tuple[str, ...] | None = None
) -> dict[str, Path]:
    """Collect the finished runs in ``out``; write results.csv, gains.csv and results.md.

    ``references``: the variants each gains table compares against (any variant or peer that
    ran, e.g. ``("ssa",)`` for SABL vs CIoU on the SSA network). Default: ``baseline`` and
    ``baseline-p2``, each where it ran. A named reference with no finished run is an error.
    """
    out = Path(out)
    runs = collect_runs(out)
    if runs.empty:
        raise MissingInputError(f"no finished ablation runs (*/seed*/{RUN_FILE}) under {out}")
    if references is not None:
        missing = [r for r in references if r not in set(runs["variant"])]
        if missing:
            raise UsageError(
                f"--reference {','.join(missing)}: no finished run of that variant under {out} "
                f"(finished: {', '.join(dict.fromkeys(runs['variant']))})"
            )
    frames = []
    for reference in references if references is not None else DEFAULT_REFERENCES:
        part = gains_over_baseline(runs, n_boot=n_boot, reference=reference)
        if not part.empty:
            part.insert(0, "reference", reference)
            frames.append(part)
    gains = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    plan = json.loads((out / PLAN_FILE).read_text()) if (out / PLAN_FILE).is_file() else None
    paths = {
        "results": out / "results.csv",
        "gains": out / "gains.csv",
        "report": out / "results.md",
    }
    for table, key in ((runs, "results"), (gains, "gains")):
        with atomic_path(paths[key]) as tmp:
            table.to_csv(tmp, index=False)
    write_text_atomic(paths["report"], format_report(plan, runs, gains))
    return paths


__all__ = [
    "VARIANTS",
    "AblationPlan",
    "Variant",
    "budget_epochs",
    "collect_runs",
    "format_report",
    "gains_over_baseline",
    "parse_seeds",
    "parse_variants",
    "plan_ablation",
    "probe_seconds_per_image",
    "run_ablation",
    "summarize_runs",
    "train_variant",
    "write_report",
]
