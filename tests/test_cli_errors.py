"""cli.main: user errors print one line and exit 2; bugs keep their traceback. The --loss recipes,
--box-loss and the one --max-det spelling."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import ssabnet.cli as cli
import ssabnet.engine.train as engine_train
from ssabnet.errors import (
    ConfigError,
    InputFileError,
    MissingInputError,
    OverwriteError,
    SsabnetError,
    UsageError,
)
from ssabnet.losses.config import BASELINE_LOSS, SABL_LOSS


def _raising(exc: BaseException):
    def handler(args):
        raise exc

    return handler


@pytest.mark.parametrize(
    "exc",
    [
        UsageError("give --data or --root"),
        ConfigError("train.lr: expected a float"),
        InputFileError("a.txt:3: expected 8 fields"),
        MissingInputError("dataset path not found: /nope"),
        OverwriteError("runs/x already holds a run"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(monkeypatch, capsys, exc):
    monkeypatch.setattr(cli, "_model_info", _raising(exc))
    assert cli.main(["model", "info", "ssabnet-n"]) == 2
    err = capsys.readouterr().err
    assert err == f"ssabnet: error: {exc}\n"


def test_programming_errors_keep_their_traceback(monkeypatch):
    # a plain ValueError/TypeError is a bug, not bad input: it must not be swallowed
    monkeypatch.setattr(cli, "_model_info", _raising(ValueError("shape mismatch in a kernel")))
    with pytest.raises(ValueError, match="shape mismatch"):
        cli.main(["model", "info", "ssabnet-n"])
    monkeypatch.setattr(cli, "_model_info", _raising(TypeError("bad argument")))
    with pytest.raises(TypeError):
        cli.main(["model", "info", "ssabnet-n"])
    monkeypatch.setattr(cli, "_model_info", _raising(OSError("disk on fire")))
    with pytest.raises(OSError, match="disk on fire"):  # an OSError without a file name
        cli.main(["model", "info", "ssabnet-n"])


def test_os_error_naming_a_file_is_one_line(monkeypatch, capsys, tmp_path):
    missing = tmp_path / "nope.json"

    def handler(args):
        return missing.read_text()  # FileNotFoundError with filename set

    monkeypatch.setattr(cli, "_model_info", handler)
    assert cli.main(["model", "info", "ssabnet-n"]) == 2
    assert capsys.readouterr().err == f"ssabnet: error: {missing}: No such file or directory\n"


def test_user_error_classes_form_one_hierarchy():
    from ssabnet.config import ConfigError as ConfigErrorFromConfig
    from ssabnet.data.record import AnnotationError
    from ssabnet.engine.checkpoint import CheckpointError
    from ssabnet.paths import UnsafePathError
    from ssabnet.runs import RunError

    assert ConfigErrorFromConfig is ConfigError
    for cls in (AnnotationError, CheckpointError, RunError, MissingInputError):
        assert issubclass(cls, InputFileError)
    for cls in (InputFileError, ConfigError, UsageError, OverwriteError, UnsafePathError):
        assert issubclass(cls, SsabnetError) and issubclass(cls, ValueError)
    assert issubclass(MissingInputError, FileNotFoundError)  # callers catching it keep working


def _train_config(monkeypatch, argv: list[str]):
    seen = {}

    def fake_fit(cfg, resume=False, progress=True):
        seen["cfg"] = cfg
        return Path(cfg.train.out)

    monkeypatch.setattr(engine_train, "fit", fake_fit)
    assert cli.main(["train", "--out", "runs/x", *argv]) == 0
    return seen["cfg"]


def test_loss_flag_sets_the_whole_recipe(monkeypatch, tmp_path):
    default = _train_config(monkeypatch, [])
    baseline = _train_config(monkeypatch, ["--loss", "baseline"])
    experiment = tmp_path / "baseline.yaml"
    experiment.write_text(yaml.safe_dump({"loss": dict(BASELINE_LOSS)}))
    sabl = _train_config(monkeypatch, ["--config", str(experiment), "--loss", "sabl"])
    for key, value in BASELINE_LOSS.items():
        assert getattr(baseline.loss, key) == value
    for key, value in SABL_LOSS.items():
        assert getattr(sabl.loss, key) == value
    for key, value in BASELINE_LOSS.items():  # the default is CIoU (docs/results.md section 5)
        assert getattr(default.loss, key) == value


def test_box_loss_flag_sets_only_the_box_loss(monkeypatch):
    cfg = _train_config(monkeypatch, ["--loss", "baseline", "--box-loss", "nwd"])
    assert (cfg.loss.box, cfg.loss.balance, cfg.loss.assigner_metric) == ("nwd", False, "ciou")


def test_loss_flag_rejects_a_box_loss_name(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--loss", "ciou"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'ciou'" in capsys.readouterr().err


def test_one_max_det_spelling():
    parser = cli.build_parser()
    for command in (
        ["val", "--data", "d", "--weights", "w"],
        ["predict", "--weights", "w", "--source", "s", "--out", "o"],
    ):
        assert parser.parse_args([*command, "--max-det", "7"]).max_det == 7
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--max-dets", "7"])
