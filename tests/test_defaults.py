"""Defaults are defined once: the configs, the assigner, the criterion, the augmentation and the
detection cap agree by construction; runs record the resolved model config."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import yaml

from ssabnet.assign import TaskAlignedAssigner
from ssabnet.config import Config, TrainConfig, config_to_dict, merge
from ssabnet.data.transforms import AugmentConfig
from ssabnet.engine.train import resolve_model
from ssabnet.errors import ConfigError
from ssabnet.evaluation import Evaluator
from ssabnet.losses import LossConfig, build_criterion
from ssabnet.model.build import PRESETS
from ssabnet.postprocess import postprocess
from ssabnet.protocol import MAX_DET
from ssabnet.runs import RunError, check_same_recipe


def test_loss_config_builds_the_default_assigner():
    built = build_criterion(LossConfig(), num_classes=10, reg_max=16).assigner
    assert built == TaskAlignedAssigner(num_classes=10)  # the same recipe, one definition
    assert built.metric == LossConfig().assigner_metric == "ciou"
    assert built.widen_tiny and LossConfig().assigner_widen_tiny  # the tuning-split parity recipe


def test_criterion_has_no_defaults_of_its_own():
    from ssabnet.losses.criterion import Criterion

    recipe = {
        "box",
        "cls",
        "cls_weight",
        "box_weight",
        "dfl_weight",
        "normalize",
        "balance",
        "balance_unit",
        "balance_gamma",
    }
    fields = {f.name: f for f in dataclasses.fields(Criterion)}
    assert all(fields[name].default is dataclasses.MISSING for name in recipe)


def test_augmentation_fields_are_train_config_fields():
    train_fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for field in dataclasses.fields(AugmentConfig):
        assert field.name in train_fields
        assert field.default is dataclasses.MISSING  # the default lives in TrainConfig only


def test_one_detection_cap():
    assert TrainConfig().max_det == MAX_DET
    assert inspect.signature(postprocess).parameters["max_det"].default == MAX_DET
    assert inspect.signature(Evaluator).parameters["max_dets"].default == MAX_DET


def test_fit_resolves_the_model_and_never_overrides_num_classes():
    cfg = merge(Config(), {"model": {"name": "ssabnet-n"}})
    resolved = resolve_model(cfg, 10)
    assert resolved.model == dataclasses.replace(PRESETS["ssabnet-n"], name="ssabnet-n")
    assert resolved.model.width is not None and resolved.model.upsampler is not None
    with pytest.raises(ConfigError, match="model.num_classes=10 but .* has 3 classes"):
        resolve_model(cfg, 3)
    assert resolve_model(merge(cfg, {"model": {"num_classes": 3}}), 3).model.num_classes == 3


def test_same_recipe_check_reads_preset_values_as_resolved(tmp_path):
    planned = merge(Config(), {"model": {"name": "ssabnet-n"}})
    saved = resolve_model(planned, 10)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config_to_dict(saved)))
    check_same_recipe(tmp_path, config_to_dict(planned))  # None == the preset's value
    other = merge(planned, {"model": {"upsampler": "carafe"}})
    with pytest.raises(RunError, match="model.upsampler"):
        check_same_recipe(tmp_path, config_to_dict(other))
