"""The ``ssabnet`` command line.

Every sub-command is declared here (argparse), and each handler is a few lines that call the
public API. Heavy imports happen inside handlers so that ``ssabnet --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ssabnet.errors import InputFileError, OutputPathError, SsabnetError, UsageError
from ssabnet.losses.config import LOSS_RECIPES
from ssabnet.protocol import MAX_DET


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


# ----------------------------------------------------------------------------- data
def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="dataset tools: stats, convert, synth, fetch, split")
    dsub = data.add_subparsers(dest="data_command", required=True)
    formats = ("visdrone", "uavdt", "coco")

    stats = dsub.add_parser("stats", help="images, boxes per class, ignore regions, size buckets")
    stats.add_argument("--data", help="catalog name, catalog YAML or dataset folder")
    stats.add_argument("--format", choices=formats, help="dataset format (with --root)")
    stats.add_argument("--root", type=Path, help="dataset folder (or COCO .json)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.add_argument("--skip-invalid", action="store_true", help="skip and count bad lines")
    stats.add_argument("--verify", action="store_true", help="decode every image (slow)")
    stats.set_defaults(handler=_data_stats)

    convert = dsub.add_parser("convert", help="convert a VisDrone/UAVDT dataset to COCO JSON")
    convert.add_argument("--format", choices=formats, default=None, help="source format")
    convert.add_argument("--root", type=Path, help="source dataset folder")
    convert.add_argument("--data", help="catalog name or folder (instead of --format/--root)")
    convert.add_argument("--out", type=Path, required=True, help="output COCO .json")
    convert.add_argument("--skip-invalid", action="store_true", help="skip and count bad lines")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    convert.set_defaults(handler=_data_convert)

    synth = dsub.add_parser("synth", help="generate synthetic drone scenes (VisDrone format)")
    synth.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder; an existing one is replaced only if it holds synthetic.json (made "
        "by this command) or is empty",
    )
    synth.add_argument("--num", type=int, default=64, help="number of images")
    synth.add_argument("--seed", type=int, default=0, help="random seed")
    synth.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    synth.add_argument("--workers", type=int, default=1, help="parallel processes")
    synth.add_argument(
        "--overwrite", action="store_true", help="replace --out even if it is not synthetic data"
    )
    synth.set_defaults(handler=_data_synth)

    fetch = dsub.add_parser("fetch", help="download, verify (sha256) and extract a dataset")
    fetch.add_argument("name", help="catalog name (see data_catalog/)")
    fetch.add_argument("--root", type=Path, help="target folder (default: the card's root)")
    fetch.add_argument("--url", help="archive URL (default: the card's url)")
    fetch.add_argument("--sha256", help="expected sha256 (default: the card's sha256)")
    fetch.add_argument("--allow-unverified", action="store_true", help="accept no checksum")
    fetch.add_argument("--force", action="store_true", help="replace an existing dataset folder")
    fetch.set_defaults(handler=_data_fetch)

    split = dsub.add_parser(
        "split", help="split a VisDrone-format dataset into train/val by sequence (symlinks)"
    )
    split.add_argument("--data", required=True, help="catalog name or VisDrone folder")
    split.add_argument("--out", type=Path, required=True, help="folder for train/ val/ split.json")
    split.add_argument("--val-fraction", type=float, default=0.25, help="share of images in val")
    split.add_argument("--seed", type=int, default=0, help="seed of the sequence shuffle")
    split.set_defaults(handler=_data_split)


def _data_source(args) -> tuple[str | Path, str]:
    """``(spec, format)`` from ``--data`` or ``--format``/``--root``."""
    if args.data and args.root:
        raise UsageError("give either --data or --root, not both")
    if args.data:
        return args.data, args.format or "auto"
    if args.root is None:
        raise UsageError("give --data NAME|PATH or --format FORMAT --root PATH")
    return args.root, args.format or "auto"


def _data_stats(args) -> int:
    from ssabnet.data import load_dataset
    from ssabnet.data.stats import dataset_stats, format_stats

    spec, fmt = _data_source(args)
    dataset = load_dataset(spec, format=fmt, skip_invalid=args.skip_invalid, verify=args.verify)
    stats = dataset_stats(dataset)
    if args.json:
        _print_json(stats)
    else:
        print(format_stats(stats))
    return 0


def _data_convert(args) -> int:
    from ssabnet.atomic_io import check_output_file
    from ssabnet.data import load_dataset
    from ssabnet.data.coco import write_coco_json

    check_output_file(args.out, overwrite=args.overwrite, example="dataset.json")
    spec, fmt = _data_source(args)
    dataset = load_dataset(spec, format=fmt, skip_invalid=args.skip_invalid)
    path = write_coco_json(dataset, args.out)
    n_objects = sum(r.num_objects for r in dataset.records)
    print(f"wrote {path}: {len(dataset)} images, {n_objects} objects")
    return 0


def _data_synth(args) -> int:
    import time

    from ssabnet.data.synthetic import generate_dataset

    start = time.perf_counter()
    out = generate_dataset(
        args.out, args.num, args.seed, tuple(args.size), args.workers, overwrite=args.overwrite
    )
    seconds = time.perf_counter() - start
    print(f"wrote {args.num} images to {out} in {seconds:.1f} s ({args.num / seconds:.1f} img/s)")
    return 0


def _data_fetch(args) -> int:
    from ssabnet.data.fetch import fetch

    path = fetch(
        args.name,
        args.root,
        url=args.url,
        sha256=args.sha256,
        allow_unverified=args.allow_unverified,
        force=args.force,
    )
    print(f"{args.name}: {path}")
    return 0


def _data_split(args) -> int:
    from ssabnet.data.split import split_by_sequence

    summary = split_by_sequence(args.data, args.out, args.val_fraction, args.seed)
    for name, part in summary["splits"].items():
        print(
            f"{name}: {part['images']} images, {part['objects']} objects, sequences "
            + ", ".join(f"{s} ({n})" for s, n in part["sequences"].items())
        )
    print(f"wrote {args.out / 'train'}, {args.out / 'val'} (symlinks) and split.json")
    return 0


# ----------------------------------------------------------------------------- model
def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="model tools: info")
    msub = model.add_subparsers(dest="model_command", required=True)
    info = msub.add_parser("info", help="parameters, GFLOPs, strides and levels of a model")
    info.add_argument("name", help="preset name, e.g. baseline-s, ssabnet-s, ssabnet-s-noalign")
    info.add_argument("--imgsz", type=int, default=640, help="square input size (multiple of 32)")
    info.add_argument("--num-classes", type=int, default=None, help="default: the preset's")
    info.add_argument("--json", action="store_true", help="print a JSON object")
    info.set_defaults(handler=_model_info)


def _model_info(args: argparse.Namespace) -> int:
    from ssabnet.model import build_model, model_info

    info = model_info(build_model(args.name, num_classes=args.num_classes), args.imgsz)
    if args.json:
        _print_json(info)
    else:
        print(
            f"{info['name']}: {info['params'] / 1e6:.2f} M params, {info['gflops']:.1f} GFLOPs "
            f"at {args.imgsz}x{args.imgsz} (1 MAC = 2 FLOPs; conv/matmul only), levels "
            f"{'/'.join(info['levels'])} strides {info['strides']}, {info['num_anchors']} anchors"
        )
    return 0


# ----------------------------------------------------------------------------- val
def _add_val_command(sub: argparse._SubParsersAction) -> None:
    val = sub.add_parser(
        "val",
        help="score detections (a COCO results file, or a checkpoint) on a dataset",
        description="Evaluate with COCO AP@[.5:.95] at maxDets 500 and tiny-object scales, or "
        "the official VisDrone-DET protocol. Writes metrics.json and the matching tables "
        "(matches_dets.parquet, matches_gts.parquet) next to it.",
    )
    source = val.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--predictions",
        type=Path,
        help="another detector's predictions: a COCO / Ultralytics results .json, or a folder of "
        "VisDrone-DET result txts",
    )
    source.add_argument("--weights", type=Path, help="checkpoint to run on the dataset's images")
    val.add_argument("--data", required=True, help="catalog name, catalog YAML or dataset folder")
    val.add_argument("--format", default="auto", choices=["auto", "visdrone", "uavdt", "coco"])
    val.add_argument(
        "--pred-format",
        default="auto",
        choices=["auto", "coco", "ultralytics", "visdrone"],
        help="(--predictions) format of the predictions; auto decides by the file and its ids "
        "and prints what it decided",
    )
    val.add_argument(
        "--class-map",
        help="(--predictions) the file's class ids: offset:K (file id = dataset id + K, e.g. "
        "offset:-1 for 0-based ids) or a YAML/JSON file {file id: class name or id, or null}",
    )
    val.add_argument(
        "--out",
        type=Path,
        default=None,
        help="metrics.json path (default metrics.json; not with --run)",
    )
    val.add_argument(
        "--run",
        type=Path,
        help="(--predictions) write a run folder the app, FiftyOne and comparisons take "
        "(metrics, matching tables, predictions, run card)",
    )
    val.add_argument("--name", help="(--run) the detector's name (default: the folder's name)")
    val.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an imported run (--run), or existing metrics, matching tables and "
        "--save-predictions",
    )
    val.add_argument("--backend", default="faster", choices=["faster", "pycocotools"])
    val.add_argument("--protocol", default="coco", choices=["coco", "visdrone-official"])
    val.add_argument("--max-det", type=int, default=MAX_DET, help="detections kept per image")
    val.add_argument(
        "--imgsz",
        type=int,
        default=None,
        help="(--weights) input size (default: the training imgsz)",
    )
    val.add_argument("--device", default="cpu", help="(--weights) torch device")
    val.add_argument("--json", action="store_true", help="print metrics as JSON, not a table")
    val.add_argument(
        "--save-predictions",
        type=Path,
        help="(--weights) also write the detections as a COCO results JSON",
    )
    val.set_defaults(handler=_cmd_val)


def _inference_imgsz(requested: int | None, loaded) -> int:
    """``--imgsz`` if given, else the size the checkpoint was trained at (printed)."""
    trained = int(loaded.config["train"]["imgsz"])
    if requested is None:
        print(f"imgsz {trained} (the checkpoint's training size; --imgsz to change)")
        return trained
    if requested != trained:
        print(f"imgsz {requested} (--imgsz; the checkpoint was trained at {trained})")
    return requested


def _val_predictions_from_weights(args, dataset):
    """``--weights``: run the checkpoint on the dataset's images (training engine's predict)."""
    from ssabnet.engine.predict import load_checkpoint, predict

    loaded = load_checkpoint(args.weights, args.device)
    if tuple(loaded.info.classes) != tuple(dataset.info.classes):
        raise InputFileError(
            f"{args.weights}: trained on classes {loaded.info.classes}, "
            f"dataset has {dataset.info.classes}"
        )
    imgsz = _inference_imgsz(args.imgsz, loaded)
    records = dataset.records
    predictions = predict(
        loaded,
        [r.image_path for r in records],
        image_ids=[r.image_id for r in records],
        imgsz=imgsz,
        device=args.device,
        max_det=args.max_det,
    )
    return predictions, imgsz


def _check_val_args(args) -> None:
    if args.predictions is None:
        for flag, value in (
            ("--run", args.run),
            ("--class-map", args.class_map),
            ("--name", args.name),
        ):
            if value is not None:
                raise UsageError(f"{flag} goes with --predictions, not --weights")
        if args.pred_format != "auto":
            raise UsageError("--pred-format goes with --predictions, not --weights")
    if args.run is not None:
        if args.out is not None:
            raise UsageError("give --run DIR (a run folder) or --out metrics.json, not both")
        if args.protocol != "coco":
            raise UsageError("--run stores COCO metrics (what the app reads): drop --protocol")
    elif args.name is not None:
        raise UsageError("--name goes with --run DIR")


def _check_val_outputs(args) -> None:
    """Before any work: ``--out`` (and the tables beside it) may be written."""
    from ssabnet.atomic_io import check_output_file, check_output_files_in
    from ssabnet.evaluation.matching import DETS_FILE, GTS_FILE

    if args.max_det < 1:
        raise UsageError(f"--max-det must be >= 1, got {args.max_det}")
    if args.imgsz is not None and (args.imgsz < 32 or args.imgsz % 32):
        raise UsageError(f"--imgsz must be a positive multiple of 32, got {args.imgsz}")
    if args.run is None:  # (an imported run's folder is checked by check_run_target)
        out = args.out or Path("metrics.json")
        check_output_file(out, overwrite=args.overwrite, example="metrics.json")
        check_output_files_in(out.parent, [DETS_FILE, GTS_FILE], overwrite=args.overwrite)
    if args.save_predictions is not None:
        check_output_file(
            args.save_predictions,
            overwrite=args.overwrite,
            option="--save-predictions",
            example="predictions.json",
        )


def _cmd_val(args) -> int:
    from ssabnet.data import load_dataset
    from ssabnet.evaluation import Evaluator, load_predictions, save_evaluation, write_coco_results
    from ssabnet.evaluation.report import format_metrics_table

    _check_val_args(args)
    _check_val_outputs(args)
    say = (lambda text: print(text, file=sys.stderr)) if args.json else print
    dataset = load_dataset(args.data, format=args.format)
    if args.run is not None:
        from ssabnet.run_import import check_run_target, import_predictions

        check_run_target(args.run, args.overwrite)  # before the work, not after
    imgsz = None
    if args.predictions is not None:
        loaded = load_predictions(args.predictions, dataset, args.pred_format, args.class_map)
        say(f"read {loaded.source}: " + "; ".join(loaded.decisions))
        predictions = loaded.predictions
    else:
        predictions, imgsz = _val_predictions_from_weights(args, dataset)
        if args.save_predictions is not None:
            write_coco_results(args.save_predictions, predictions, dataset.info, dataset.records)
            print(f"wrote {args.save_predictions}")
    if args.run is not None:
        imported = import_predictions(
            args.predictions,
            dataset,
            args.run,
            dataset_spec=args.data,
            name=args.name,
            max_dets=args.max_det,
            backend=args.backend,
            overwrite=args.overwrite,
            loaded=loaded,
        )
        metrics = imported.metrics
        written = [f"run {imported.path} ({imported.card['detector']}, imported)"]
    else:
        evaluator = Evaluator(
            dataset.info,
            dataset.records,
            protocol=args.protocol,
            backend=args.backend,
            max_dets=args.max_det,
        )
        evaluator.process(predictions)
        metrics = evaluator.evaluate()
        if imgsz is not None:
            metrics["inference"] = {"weights": str(args.weights), "imgsz": imgsz}
        written = save_evaluation(evaluator, metrics, args.out or Path("metrics.json"))
    if args.json:
        _print_json(metrics)
    else:
        print(format_metrics_table(metrics))
        print("wrote " + ", ".join(str(p) for p in written))
    return 0


# ----------------------------------------------------------------------------- errors
def _add_errors_command(sub: argparse._SubParsersAction) -> None:
    errors = sub.add_parser(
        "errors",
        help="TIDE error types (cls, loc, both, dupe, bkg, miss) with ΔAP per object size",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
TIDE's error taxonomy (Bolya et al., ECCV 2020) from SSABNet's matching (IoU 0.5, maxDets 500,
ignore regions), per size bucket and overall. dAP is the AP50 gained by fixing one error type
(TIDE's oracle, all scores); counts are shown at a confidence threshold (F1-optimal by default).
The table prints AP50 and dAP in %; the JSON keeps 0-1 units like metrics.json:
  {"AP": AP50, "buckets": {"all": {"cls": dAP, "loc": .., "both": .., "dupe": .., "bkg": ..,
  "miss": ..}, "very_tiny": {..}, ...}, "bucket_AP", "counts", "threshold",
  "counts_at_threshold", "settings"}
With --run, errors.json and errors.csv are saved beside the run's matching tables
(val/<split>/); definitions in docs/evaluation.md ("Error taxonomy").""",
        epilog="""\
examples:
  ssabnet errors --run runs/demo/ssabnet-n
  ssabnet errors --run runs/demo/ssabnet-n --json --threshold 0.25 --overwrite
  ssabnet errors --predictions preds.json --data visdrone-det-val --tide-compat""",
    )
    source = errors.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="run folder (reads val/<split>/matches_*)")
    source.add_argument("--predictions", type=Path, help="predictions file/folder (with --data)")
    errors.add_argument("--data", help="(--predictions) catalog name, YAML or dataset folder")
    errors.add_argument("--format", default="auto", choices=["auto", "visdrone", "uavdt", "coco"])
    errors.add_argument(
        "--pred-format", default="auto", help="(--predictions) auto, coco, ultralytics, visdrone"
    )
    errors.add_argument("--class-map", help="(--predictions) offset:K or a YAML/JSON mapping")
    errors.add_argument("--split", default="best", choices=["best", "last"], help="(--run)")
    errors.add_argument(
        "--threshold", type=float, help="confidence threshold for counts (default: F1-optimal)"
    )
    errors.add_argument(
        "--tide-compat",
        action="store_true",
        help="TIDE's own settings (its AP, maxDets 100, no ignore regions), to compare with "
        "tidecv; needs --predictions and --data",
    )
    errors.add_argument("--out", type=Path, help="folder for errors.json/errors.csv")
    errors.add_argument("--overwrite", action="store_true", help="replace existing errors.json")
    errors.add_argument("--json", action="store_true", help="print the JSON, not a table")
    errors.set_defaults(handler=_cmd_errors)


def _cmd_errors(args) -> int:
    from ssabnet.analysis import check_evidence, tide_compat_tables
    from ssabnet.analysis.report import error_summary, format_error_table, save_error_summary
    from ssabnet.errors import SsabnetError

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise SsabnetError(f"--threshold must be in [0, 1], got {args.threshold}")
    notes: list[str] = []
    if args.run is not None:
        from ssabnet.runs import RunError, load_run

        if args.tide_compat:
            raise SsabnetError("--tide-compat re-matches the predictions: use --predictions --data")
        run = load_run(args.run, split=args.split)
        notes.extend(run.notes)
        folder = run.path / "val" / run.split
        if run.matches is None:
            raise RunError(f"{folder}: no matching tables (matches_dets.parquet); run ssabnet val")
        tables = run.matches
        check_evidence(tables, str(folder / "matches_dets.parquet"))
        out_dir = args.out or folder
    else:
        from ssabnet.data import load_dataset
        from ssabnet.evaluation import Evaluator
        from ssabnet.evaluation.readers import load_predictions

        if not args.data:
            raise SsabnetError("--predictions needs --data (the ground truth to match against)")
        dataset = load_dataset(args.data, format=args.format)
        loaded = load_predictions(args.predictions, dataset, args.pred_format, args.class_map)
        notes.extend(loaded.decisions)
        if args.tide_compat:
            tables = tide_compat_tables(dataset.info, dataset.records, loaded.predictions)
        else:
            evaluator = Evaluator(dataset.info, dataset.records)
            evaluator.process(loaded.predictions)
            tables = evaluator.matches()
        out_dir = args.out
    doc = error_summary(tables, threshold=args.threshold, compat=args.tide_compat)
    written = []
    if out_dir is not None:
        written = save_error_summary(doc, out_dir, args.tide_compat, overwrite=args.overwrite)
    if args.json:
        _print_json(doc)
        return 0
    for note in notes:
        print(note)
    print(format_error_table(doc))
    if written:
        print("wrote " + ", ".join(str(p) for p in written))
    return 0


# ----------------------------------------------------------------------------- train / predict
def _add_engine_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a detector (DDP: torchrun ... -m ssabnet train)")
    train.add_argument(
        "--data",
        help="dataset NAME|PATH: a folder with train/ and val/, catalog "
        "names NAME-train/NAME-val, or one dataset used for both",
    )
    train.add_argument("--val-data", help="validation dataset (default: derived from --data)")
    train.add_argument("--model", help="model preset, e.g. ssabnet-s, baseline-n")
    train.add_argument(
        "--loss",
        choices=sorted(LOSS_RECIPES),
        help="loss recipe: baseline (YOLOv8: CIoU, the default) or sabl (the SABL box loss), "
        "both with the IoU-metric assigner and no balancing; sabl-paper: the literal first "
        "reading (fixed-C SABL, anchor balancing, SABL-metric assigner)",
    )
    train.add_argument(
        "--box-loss", help="box loss alone, on top of the recipe (e.g. ciou, nwd); loss.box=..."
    )
    train.add_argument("--epochs", type=int)
    train.add_argument("--imgsz", type=int, help="square input size (multiple of 32)")
    train.add_argument("--batch", type=int, help="global batch size (split across DDP ranks)")
    train.add_argument("--device", help="cpu | cuda | cuda:<index>")
    train.add_argument("--workers", type=int, help="data-loading worker processes")
    train.add_argument("--out", help="run folder, e.g. runs/NAME")
    train.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    train.add_argument("--config", help="experiment YAML listing only changes from the defaults")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.lr=0.005")
    train.set_defaults(handler=_train)

    predict = sub.add_parser("predict", help="run a checkpoint on images (optionally sliced)")
    predict.add_argument("--weights", required=True, help="checkpoint (.pt)")
    predict.add_argument("--source", required=True, help="image file, folder or glob pattern")
    predict.add_argument(
        "--out", required=True, help="preds.json (coco) or a folder of result txts (visdrone)"
    )
    predict.add_argument("--format", choices=["coco", "visdrone"], default="coco")
    predict.add_argument("--imgsz", type=int, default=None, help="default: the training imgsz")
    predict.add_argument("--slice", type=int, default=None, help="tile size for sliced inference")
    predict.add_argument("--overlap", type=float, default=0.2, help="tile overlap fraction")
    predict.add_argument("--merge", choices=["nms", "wbf"], default="nms")
    predict.add_argument("--conf", type=float, default=0.001)
    predict.add_argument("--iou", type=float, default=0.6)
    predict.add_argument("--max-det", type=int, default=MAX_DET, help="detections kept per image")
    predict.add_argument("--batch", type=int, default=8)
    predict.add_argument("--device", default="cpu")
    predict.add_argument("--overwrite", action="store_true", help="replace existing output files")
    predict.set_defaults(handler=_predict)

    export = sub.add_parser("export", help="export the inference graph (checked against eager)")
    export.add_argument("--weights", required=True, help="checkpoint (.pt)")
    export.add_argument("--format", choices=["torchscript", "onnx"], required=True)
    export.add_argument("--out", required=True, help="output file")
    export.add_argument("--imgsz", type=int, default=None, help="default: the training imgsz")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    export.set_defaults(handler=_export)


def _train_data_specs(data: str, val_data: str | None) -> dict[str, str]:
    """``--data`` -> data.train/data.val (folder with train/ val/, NAME-train/NAME-val, or X)."""
    folder = Path(data)
    if folder.is_dir() and (folder / "train").is_dir() and (folder / "val").is_dir():
        train, val = str(folder / "train"), str(folder / "val")
    elif _catalog_exists(f"{data}-train"):
        train, val = f"{data}-train", f"{data}-val"
    else:
        train, val = data, data
    return {"train": train, "val": val_data or val}


def _run_changes(args: argparse.Namespace, train_flags: tuple[str, ...]) -> dict:
    """Config changes from the flags ``train`` and ``ablate`` share: ``train.<flag>`` for each
    given flag, ``data.train``/``data.val`` from ``--data``/``--val-data``."""
    changes: dict = {"train": {}, "data": {}}
    for flag in train_flags:
        if getattr(args, flag) is not None:
            changes["train"][flag] = getattr(args, flag)
    if args.data:
        changes["data"] |= _train_data_specs(args.data, args.val_data)
    elif args.val_data:
        changes["data"]["val"] = args.val_data
    return changes


def _catalog_exists(name: str) -> bool:
    from ssabnet.data.catalog import list_cards

    return name in list_cards()


def _check_resume_flags(args: argparse.Namespace, cfg, changes: dict) -> None:
    """``--resume`` continues a run exactly: flags that would change it are an error, not
    silently ignored (only --device and --workers may differ)."""
    import yaml

    from ssabnet.config import config_differences, config_from_dict, merge, parse_overrides
    from ssabnet.engine.checkpoint import read_checkpoint

    last = Path(cfg.train.out) / "weights" / "last.pt"
    if not last.is_file():
        raise InputFileError(
            f"{last}: no run to resume (--resume continues a run of 'ssabnet train'; give its "
            "folder as --out)"
        )
    saved = config_from_dict(read_checkpoint(last)["config"])
    given = saved
    if args.config:  # load_config above has already validated the file
        given = merge(given, yaml.safe_load(Path(args.config).read_text()) or {})
    given = merge(merge(given, parse_overrides(args.overrides)), changes)
    differ = config_differences(saved, given, ignore=("train.device", "train.workers", "train.out"))
    if differ:
        raise UsageError(
            f"--resume continues {last.parent.parent} exactly as it was started; these flags "
            f"would change it: {'; '.join(differ)}. Drop them, or start a new run with "
            "another --out"
        )


def _train(args: argparse.Namespace) -> int:
    from ssabnet.config import load_config, merge
    from ssabnet.engine.train import NonFiniteLossError, fit

    cfg = load_config(args.config, args.overrides)
    changes = _run_changes(args, ("epochs", "imgsz", "batch", "device", "workers", "out"))
    changes |= {"model": {}, "loss": {}}
    if args.model:
        changes["model"]["name"] = args.model
    if args.loss:
        changes["loss"] |= LOSS_RECIPES[args.loss]
    if args.box_loss:
        changes["loss"]["box"] = args.box_loss
    cfg = merge(cfg, changes)
    run_dir = Path(cfg.train.out)
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputPathError(f"--out {run_dir} is a file; a run needs a folder")
    if args.resume:
        _check_resume_flags(args, cfg, changes)
    try:
        run_dir = fit(cfg, resume=args.resume, progress=not args.no_progress)
    except NonFiniteLossError as exc:
        print(f"ssabnet: error: {exc}", file=sys.stderr)
        return 3
    print(f"run saved to {run_dir}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ssabnet.atomic_io import check_output_file, check_output_files_in
    from ssabnet.data.visdrone import write_visdrone_results
    from ssabnet.engine.predict import (
        check_inference_params,
        list_sources,
        load_checkpoint,
        predict,
        source_records,
    )
    from ssabnet.evaluation.results_io import write_coco_results

    check_inference_params(
        imgsz=args.imgsz,
        conf=args.conf,
        iou=args.iou,
        max_det=args.max_det,
        slice_size=args.slice,
        overlap=args.overlap,
        merge=args.merge,
        batch=args.batch,
    )
    loaded = load_checkpoint(args.weights, args.device)
    files = list_sources(args.source)
    ids = [p.stem for p in files]
    imgsz = _inference_imgsz(args.imgsz, loaded)
    if args.format == "visdrone":  # before inference: never overwrite, e.g., ground truth
        check_output_files_in(args.out, [f"{i}.txt" for i in ids], overwrite=args.overwrite)
    else:
        check_output_file(args.out, overwrite=args.overwrite, example="predictions.json")
    predictions = predict(
        loaded,
        files,
        imgsz=imgsz,
        device=args.device,
        conf=args.conf,
        iou=args.iou,
        max_det=args.max_det,
        slice_size=args.slice,
        overlap=args.overlap,
        merge=args.merge,
        batch=args.batch,
        image_ids=ids,
    )
    if args.format == "visdrone":
        out = write_visdrone_results(predictions, args.out, loaded.info.native_ids, ids)
    else:
        out = write_coco_results(args.out, predictions, loaded.info, source_records(files, ids))
    total = sum(len(p["scores"]) for p in predictions.values())
    print(f"{total} detections on {len(files)} images at imgsz {imgsz} written to {out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ssabnet.atomic_io import atomic_path, check_output_file
    from ssabnet.engine.export import check_export, export_model
    from ssabnet.engine.predict import load_checkpoint

    out = check_output_file(args.out, overwrite=args.overwrite, example="model.onnx")
    loaded = load_checkpoint(args.weights)
    imgsz = args.imgsz or int(loaded.config["train"]["imgsz"])
    with atomic_path(out) as tmp:  # only a graph that passed the check replaces --out
        export_model(loaded.model, args.format, tmp, imgsz)
        diffs = check_export(loaded.model, tmp, imgsz)
    print(
        f"exported {args.format} to {out}; max |export - eager|: boxes "
        f"{diffs['max_box_diff']:.2e} px, scores {diffs['max_score_diff']:.2e}"
    )
    return 0


# ----------------------------------------------------------------------------- fiftyone
def _add_fiftyone_commands(sub: argparse._SubParsersAction) -> None:
    fo = sub.add_parser("fiftyone", help="browse ground truth, predictions and misses in FiftyOne")
    fsub = fo.add_subparsers(dest="fiftyone_command", required=True)

    index = fsub.add_parser(
        "index",
        help="index a dataset, predictions and our evaluator's verdicts into FiftyOne",
        description="Each predictions file becomes a field scored by SSABNet's evaluator (COCO "
        "rules at IoU 0.5, 500 detections per image, VisDrone ignore regions), written in "
        "FiftyOne's evaluation schema (eval_<field>, a registered evaluation run for the Model "
        "Evaluation panel) with saved views of the misses and false positives. The dataset is "
        "kept (use --temporary for a throw-away one); indexing other data into an existing name "
        "is refused unless --replace.",
    )
    index.add_argument("--data", required=True, help="catalog name, catalog YAML or folder")
    index.add_argument(
        "--pred",
        action="append",
        default=[],
        metavar="[FIELD=]PREDICTIONS",
        help="predictions (repeatable): COCO/Ultralytics JSON, VisDrone txt folder or run "
        "folder; field name from the run folder unless FIELD= given",
    )
    index.add_argument("--name", required=True, help="FiftyOne dataset name")
    index.add_argument(
        "--temporary",
        action="store_true",
        help="let FiftyOne delete the dataset when the last client exits",
    )
    index.add_argument(
        "--replace",
        action="store_true",
        help="delete an existing dataset of this name built from other data, then index",
    )
    index.add_argument(
        "--fiftyone-eval",
        action="store_true",
        help="also run FiftyOne's own evaluate_detections (key fiftyone_<field>; slow)",
    )
    index.add_argument(
        "--pred-format",
        default="auto",
        choices=["auto", "coco", "ultralytics", "visdrone"],
        help="how to read every --pred (see ssabnet val --help)",
    )
    index.add_argument("--class-map", help="offset:K or a YAML/JSON mapping, for every --pred")
    index.add_argument("--max-samples", type=int, help="index only the first N images")
    index.add_argument("--launch", action="store_true", help="then serve the App (blocks)")
    index.add_argument("--port", type=int, default=5151, help="App port (with --launch)")
    index.set_defaults(handler=_fiftyone_index)

    launch = fsub.add_parser("launch", help="serve the FiftyOne App on 127.0.0.1 (blocks)")
    launch.add_argument("--name", required=True, help="FiftyOne dataset name")
    launch.add_argument(
        "--view", help="saved view to open (default: 'overview', predictions above threshold)"
    )
    launch.add_argument("--port", type=int, default=5151, help="App port")
    launch.add_argument("--address", default="127.0.0.1", help="bind address")
    launch.set_defaults(handler=_fiftyone_launch)

    delete = fsub.add_parser("delete", help="delete a FiftyOne dataset")
    delete.add_argument("--name", required=True, help="FiftyOne dataset name")
    delete.set_defaults(handler=_fiftyone_delete)

    listing = fsub.add_parser("list", help="list FiftyOne datasets")
    listing.set_defaults(handler=_fiftyone_list)


def _fiftyone_index(args) -> int:
    from ssabnet.integrations import fiftyone as sfo

    if not args.pred:
        raise UsageError("give at least one --pred PREDICTIONS file")
    predictions: dict[str, str] = {}
    for spec in args.pred:
        field, sep, path = spec.partition("=")
        if not sep:
            field, path = sfo.prediction_field_name(spec), spec
        if field in predictions:
            raise UsageError(f"two --pred files map to field {field!r}; name them FIELD=path")
        predictions[field] = path
    dataset = sfo.index_dataset(
        args.data,
        predictions,
        args.name,
        persistent=not args.temporary,
        replace=args.replace,
        max_samples=args.max_samples,
        fiftyone_eval=args.fiftyone_eval,
        pred_format=args.pred_format,
        class_map=args.class_map,
    )
    meta = dataset.info.get("ssabnet", {})
    print(f"FiftyOne dataset {args.name!r}: {len(dataset)} samples, fields {list(predictions)}")
    for field in predictions:
        entry = meta.get("fields", {}).get(field, {})
        thr = entry.get("confidence_threshold")
        line = (
            f"  {field}: AP {_pct(entry.get('ssabnet_AP'))}, AP50 {_pct(entry.get('ssabnet_AP50'))}"
            f" (evaluation {entry.get('eval_key')}; F1-optimal confidence "
            f"{'-' if thr is None else f'{thr:.3f}'})"
        )
        if "fiftyone_mAP" in entry:
            line += f"; FiftyOne's own mAP {_pct(entry['fiftyone_mAP'])}"
        print(line)
    first = next(iter(predictions))
    print(f"saved views: {', '.join(meta.get('views', []))}")
    if args.launch:
        sfo.launch_app(args.name, port=args.port, view=f"{first}-missed")
    elif args.temporary:
        print("temporary: FiftyOne deletes the dataset when its last client exits")
    else:
        print(f"browse the misses: {sfo.launch_command(args.name, f'{first}-missed')}")
    return 0


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _fiftyone_launch(args) -> int:
    from ssabnet.integrations.fiftyone import launch_app

    launch_app(args.name, port=args.port, address=args.address, view=args.view)
    return 0


def _fiftyone_delete(args) -> int:
    from ssabnet.integrations.fiftyone import delete_dataset

    delete_dataset(args.name)
    print(f"deleted FiftyOne dataset {args.name!r}")
    return 0


def _fiftyone_list(args) -> int:
    from ssabnet.integrations.fiftyone import list_datasets

    for name in list_datasets():
        print(name)
    return 0


# ----------------------------------------------------------------------------- demo
def _add_demo_command(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo",
        help="the whole experience on synthetic data: train, evaluate, compare, FiftyOne, app",
        description="Generate the synthetic demo data, train baseline-n (CIoU) and ssabnet-n "
        "(SABL) with the same small budget, evaluate and compare them (per-scale AP, bootstrap "
        "CI), index everything into FiftyOne and start the app. A re-run skips finished steps.",
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    demo.add_argument(
        "--budget",
        choices=["default", "tiny"],
        default=None,
        help="data and training budget (default: $SSABNET_DEMO_BUDGET or 'default', < 10 min "
        "on 2 CPU cores; 'tiny' is for tests)",
    )
    demo.add_argument("--no-app", action="store_true", help="do everything but start the app")
    demo.add_argument("--no-fiftyone", action="store_true", help="skip the FiftyOne indexing")
    demo.add_argument("--port", type=int, default=8501, help="app port")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from ssabnet.demo import run_demo

    run_demo(
        args.out,
        args.budget,
        app=not args.no_app,
        fiftyone=not args.no_fiftyone,
        port=args.port,
        progress=not args.no_progress,
    )
    return 0


# ----------------------------------------------------------------------------- ablate
def _add_ablate_command(sub: argparse._SubParsersAction) -> None:
    ablate = sub.add_parser(
        "ablate",
        help="train baseline / SSA / SABL / SSA+SABL x seeds with one budget and compare them",
        description="Train every variant x seed with the same data, image size and budget "
        "(DDP: torchrun ... -m ssabnet ablate --epochs N), evaluate the final weights of each "
        "run on the same split, and write results.csv, gains.csv and results.md (mean +- std "
        "over seeds; paired bootstrap CI of each variant's AP50 gain over the baseline per size "
        "bucket). Finished runs are skipped, interrupted ones resumed. Peer runs written by "
        "benchmarks/ablation_peer.py into the same folder are reported too.",
    )
    ablate.add_argument("--data", help="dataset NAME|PATH, as for 'ssabnet train'")
    ablate.add_argument("--val-data", help="reported split (default: derived from --data)")
    ablate.add_argument(
        "--variants",
        default="baseline,ssa,sabl,ssa+sabl",
        help="comma list of baseline, ssa, sabl, ssa+sabl",
    )
    ablate.add_argument("--seeds", default="3", help="a count (0..N-1) or a comma list")
    ablate.add_argument("--scale", default="n", choices=["n", "s", "m"], help="model scale")
    budget = ablate.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, help="the same epochs for every run")
    budget.add_argument(
        "--budget-minutes", type=float, help="minutes per run, converted to epochs by a timed probe"
    )
    ablate.add_argument(
        "--equal",
        choices=["epochs", "time"],
        default="epochs",
        help="with --budget-minutes: every variant gets the slowest one's "
        "epochs (epochs) or its own (time)",
    )
    ablate.add_argument("--imgsz", type=int, help="square input size (multiple of 32)")
    ablate.add_argument("--batch", type=int, help="global batch size")
    ablate.add_argument("--device", help="cpu | cuda | cuda:<index>")
    ablate.add_argument("--workers", type=int, help="data-loading worker processes")
    ablate.add_argument("--out", type=Path, default=Path("runs/ablation"), help="output folder")
    ablate.add_argument("--config", help="base experiment YAML (changes from the defaults)")
    ablate.add_argument(
        "--report-only",
        action="store_true",
        help="only (re)write the report from the runs in --out",
    )
    ablate.add_argument(
        "--reference",
        help="comma list of variants the gains tables compare against "
        "(default: baseline and baseline-p2, where they ran)",
    )
    ablate.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    ablate.add_argument("--no-progress", action="store_true", help="no progress bars")
    ablate.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.lr=0.005")
    ablate.set_defaults(handler=_ablate)


def _ablate(args: argparse.Namespace) -> int:
    from ssabnet import ablation
    from ssabnet.config import load_config, merge
    from ssabnet.engine.distributed import launch_rank

    if not args.report_only:
        cfg = load_config(args.config, args.overrides)
        cfg = merge(cfg, _run_changes(args, ("imgsz", "batch", "device", "workers")))
        if args.epochs is None and args.budget_minutes is None:
            raise UsageError("give --epochs N or --budget-minutes M (the budget of every run)")
        plan = ablation.plan_ablation(
            cfg,
            args.out,
            ablation.parse_variants(args.variants),
            ablation.parse_seeds(args.seeds),
            args.scale,
            epochs=args.epochs,
            budget_minutes=args.budget_minutes,
            equal=args.equal,
        )
        print("epochs per run: " + ", ".join(f"{k} {v}" for k, v in plan.epochs.items()))
        ablation.run_ablation(plan, progress=not args.no_progress)
    if launch_rank() != 0:
        return 0
    references = None
    if args.reference:
        references = tuple(dict.fromkeys(r.strip() for r in args.reference.split(",") if r.strip()))
    paths = ablation.write_report(args.out, n_boot=args.n_boot, references=references)
    print(paths["report"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


# ----------------------------------------------------------------------------- runs
def _add_runs_commands(sub: argparse._SubParsersAction) -> None:
    runs = sub.add_parser("runs", help="run folders: list what the app will see")
    rsub = runs.add_subparsers(dest="runs_command", required=True)
    listing = rsub.add_parser(
        "list", help="trained and imported runs under a folder: name, kind, dataset, AP"
    )
    listing.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(handler=_runs_list)


def _runs_list(args) -> int:
    from ssabnet.runs import discover_runs

    infos = discover_runs(args.runs)
    rows = [
        {
            "name": i.name,
            "kind": i.kind,
            "model": i.model,
            "dataset": i.dataset,
            "AP": i.ap,
            "splits": list(i.splits),
            "weights": str(i.weights) if i.weights else None,
            "path": str(i.path),
            "problem": i.problem,
        }
        for i in infos
    ]
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print(f"no runs under {args.runs}")
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'run':<{width}}  {'kind':<8}  {'model':<14}  {'AP':>6}  dataset")
    for r in rows:
        ap = "-" if r["AP"] is None else f"{100 * r['AP']:.1f}"
        line = f"{r['name']:<{width}}  {r['kind']:<8}  {r['model']:<14}  {ap:>6}  {r['dataset']}"
        print(line + (f"  ({r['problem']})" if r["problem"] else ""))
    return 0


# ----------------------------------------------------------------------------- app
def _add_app_command(sub: argparse._SubParsersAction) -> None:
    app = sub.add_parser(
        "app",
        help="the Streamlit analysis app: per-scale AP, comparisons, feature maps, SABL curves",
        description="Start the analysis app on 127.0.0.1 (Streamlit). Paths typed in the app are "
        "confined to the runs folder and the data roots.",
    )
    app.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder to browse")
    app.add_argument(
        "--data",
        help="catalog name or dataset folder for images (default: each run's validation data)",
    )
    app.add_argument(
        "--data-root",
        type=Path,
        action="append",
        default=[],
        help="folder datasets may be read from (repeatable; default $SSABNET_DATA or data)",
    )
    app.add_argument("--port", type=int, default=8501, help="port on 127.0.0.1")
    app.add_argument("--compare", default="", help="runs preselected for comparison: A,B[,...]")
    app.add_argument("--headless", action="store_true", help="do not open a browser")
    app.set_defaults(handler=_app)


def _app(args: argparse.Namespace) -> int:
    from ssabnet.app_launcher import launch_app

    compare = [name.strip() for name in args.compare.split(",") if name.strip()]
    return launch_app(
        args.runs,
        args.data,
        port=args.port,
        compare=compare,
        data_roots=args.data_root,
        headless=args.headless,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssabnet",
        description="SSABNet: small-object detection in drone imagery (SSA neck + SABL loss).",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    _add_data_commands(sub)
    _add_model_commands(sub)
    _add_val_command(sub)
    _add_errors_command(sub)
    _add_engine_commands(sub)
    _add_demo_command(sub)
    _add_ablate_command(sub)
    _add_fiftyone_commands(sub)
    _add_runs_commands(sub)
    _add_app_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from ssabnet import __version__

        print(__version__)
        return 0
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe fails here, inside the handlers below
        return code
    except SsabnetError as exc:
        # Bad input is reported as one clear line (file and line are in the message); any other
        # exception is a bug and keeps its traceback.
        print(f"ssabnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C: one line, the shell's convention for SIGINT (128 + 2), no traceback.
        print("\nssabnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout was closed early (`ssabnet ... | head -1`): stop quietly, as `cat` does. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE
    except OSError as exc:
        if exc.filename is None:  # not about a file the user named
            raise
        print(f"ssabnet: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
