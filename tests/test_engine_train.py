"""End to end: train on synthetic drone scenes, validate on held-out ones, beat an untrained net."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch


def _cars_only(root: Path) -> None:
    """Keep cars (VisDrone 4) and ignored regions; every other object becomes "others".

    One frequent class makes a 1-minute CPU training informative: ten classes of 4-30 px objects
    need far more steps before AP moves. "Others" are ignored objects, so they neither help nor
    hurt (the loader turns them into ignore regions).
    """
    for path in (root / "annotations").glob("*.txt"):
        rows = []
        for line in path.read_text().splitlines():
            fields = line.split(",")
            if fields[5] not in ("0", "4"):
                fields[4], fields[5] = "0", "11"
            rows.append(",".join(fields))
        path.write_text("\r\n".join(rows) + "\r\n")


@pytest.mark.slow
def test_train_then_val_beats_untrained_model(tmp_path):
    from ssabnet.config import Config, merge
    from ssabnet.data.loader import DetectionSamples, build_loader
    from ssabnet.data.synthetic import generate_dataset
    from ssabnet.data.visdrone import read_visdrone
    from ssabnet.engine.distributed import DistEnv
    from ssabnet.engine.train import evaluate, fit
    from ssabnet.evaluation import Evaluator
    from ssabnet.model.build import build_model

    generate_dataset(tmp_path / "train", 48, seed=11, size=(160, 160))
    generate_dataset(tmp_path / "val", 16, seed=12, size=(160, 160))  # held out: other seed
    _cars_only(tmp_path / "train")
    _cars_only(tmp_path / "val")
    cfg = merge(
        Config(),
        {
            "data": {"train": str(tmp_path / "train"), "val": str(tmp_path / "val")},
            "model": {"name": "baseline-n"},
            "train": {
                "epochs": 20,
                "batch": 8,
                "imgsz": 160,
                "workers": 1,
                "out": str(tmp_path / "run"),
                "warmup_epochs": 1.0,
                "mosaic": 0.0,
                "close_mosaic": 0,
                "ema": False,
                "optimizer": "sgd",  # the recipe this test was measured with
                "lr": 0.01,
                "val_interval": 20,
                "seed": 0,
            },
        },
    )
    run = fit(cfg, progress=False)
    with (run / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20
    first, last = float(rows[0]["loss"]), float(rows[-1]["loss"])
    assert last < 0.75 * first, (first, last)  # measured: 18.6 -> 10.8

    val = read_visdrone(tmp_path / "val")
    torch.manual_seed(0)
    untrained = build_model("baseline-n", num_classes=10)
    loader = build_loader(DetectionSamples(val.records, 160), 8, 0, shuffle=False)
    base = evaluate(
        untrained,
        loader,
        Evaluator(val.info, val.records),
        env=DistEnv(0, 1, 0, torch.device("cpu")),
    )
    trained_ap50 = float(rows[-1]["AP50"])
    # Measured on the 2-core VM: untrained 0.0066; trained 0.10-0.18 (the value moved as the
    # model and loss code evolved). Thresholds keep a 2.5x margin on the trained value.
    assert trained_ap50 > 0.04 and trained_ap50 > 4 * base["AP50"], (base["AP50"], trained_ap50)


def _one_step_update(loss_scale: float, grad_clip: float) -> torch.Tensor:
    """Weight change of one SGD step (lr 1) of a 1x1 conv under ``train_one_epoch``."""
    from types import SimpleNamespace

    from torch.utils.data import DataLoader

    from ssabnet.engine.distributed import DistEnv
    from ssabnet.engine.train import Optimization, train_one_epoch

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 1, 1, bias=False)
    start = conv.weight.detach().clone()

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = conv

        def forward(self, images):
            return {"y": self.conv(images)}

    images = torch.full((2, 1, 2, 2), 255, dtype=torch.uint8)
    metas = [SimpleNamespace(num_dropped=0, image_id=str(i)) for i in range(2)]
    loader = DataLoader([0], batch_size=1, collate_fn=lambda _: (images, [{}, {}], metas))
    optimizer = torch.optim.SGD(conv.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    env = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    opt = Optimization(
        Net(),
        lambda out, t: {"loss": out["y"].mean()},
        optimizer,
        scheduler,
        scaler,
        grad_clip=grad_clip,
        loss_scale=loss_scale,
    )
    terms = train_one_epoch(opt, loader, 0, env, progress=False)
    assert terms["loss"] == pytest.approx(float(start.item()))  # logged loss is not scaled
    return conv.weight.detach() - start


def test_loss_scale_multiplies_the_gradient_before_clipping():
    # d mean(w * 1) / dw = 1: the step is -loss_scale without clipping ...
    torch.testing.assert_close(_one_step_update(1.0, 0.0), torch.full((1, 1, 1, 1), -1.0))
    torch.testing.assert_close(_one_step_update(8.0, 0.0), torch.full((1, 1, 1, 1), -8.0))
    # ... and the clip bounds the scaled gradient: a clip of 4 cuts 8 to 4 but leaves 1 alone
    torch.testing.assert_close(_one_step_update(8.0, 4.0), torch.full((1, 1, 1, 1), -4.0))
    torch.testing.assert_close(_one_step_update(1.0, 4.0), torch.full((1, 1, 1, 1), -1.0))
