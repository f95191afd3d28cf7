"""SABL loss-design study: gradient curves of IoU, CIoU, NWD and both SABL variants.

Draws ``docs/figures/sabl_gradients.png`` (loss and |d loss / d cx| for 8, 16 and 32 px ground
truths, prediction of the same size moved along x, offsets up to 4 object sizes; bottom row:
|d loss / d w| for a centred prediction that is too large) and prints the tables of
docs/losses.md: SABL / CIoU centre-gradient ratios and the loss change per 10 % of object size
at a fixed relative error. Everything comes from ``ssabnet.loss_curves`` / ``box_loss`` in
float64; nothing is random.

Usage::

    .venv/bin/python benchmarks/sabl_gradients.py [--out docs/figures/sabl_gradients.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ssabnet.losses import loss_curves, sabl_loss  # noqa: E402

#: (label, box_loss kind, parameters); NWD with the project's C = 12 px.
CURVES = (
    ("IoU", "iou", {}),
    ("CIoU", "ciou", {}),
    ("NWD (C 12 px)", "nwd", {"C": 12.0}),
    ("SABL paper", "sabl", {"variant": "paper"}),
    ("SABL relative", "sabl", {"variant": "relative"}),
)
STYLES = {"IoU": ":", "CIoU": "k--", "NWD (C 12 px)": "-.", "SABL paper": "-", "SABL relative": "-"}
FIGURE_SIZES = (8, 16, 32)


def curve(kind, params, size, offsets, direction="x"):
    return loss_curves(kind, size, offsets, direction=direction, **params)


def draw(out: Path) -> None:
    fig, axes = plt.subplots(3, 3, figsize=(12, 9))
    for col, size in enumerate(FIGURE_SIZES):
        offsets = np.linspace(-4 * size, 4 * size, 321)
        growth = np.linspace(0, 4 * size, 161)
        for label, kind, params in CURVES:
            table = curve(kind, params, size, offsets)
            style = STYLES[label]
            axes[0, col].plot(table.offset, table.loss, style, label=label)
            axes[1, col].plot(table.offset, table.grad_cx.abs(), style, label=label)
            grown = curve(kind, params, size, growth, direction="size")
            axes[2, col].plot(grown.offset / size, grown.grad_w.abs(), style, label=label)
        axes[0, col].set(title=f"loss, {size} px GT, shifted in x", xlabel="offset (px)")
        axes[0, col].set_ylim(0, 3)
        axes[1, col].set(title=f"|d loss / d cx|, {size} px GT", xlabel="offset (px)", yscale="log")
        axes[1, col].set_ylim(1e-4, 1)
        axes[2, col].set(
            title=f"|d loss / d w|, {size} px GT, centred, too wide",
            xlabel="(pred side - GT side) / GT side",
            yscale="log",
        )
        axes[2, col].set_ylim(1e-5, 1)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=60)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)")


def ratio_table() -> None:
    print("\n### SABL / CIoU centre gradient |d loss / d cx| (same-size prediction moved in x)\n")
    fractions = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0)
    header = " | ".join(f"{f:g} s" for f in fractions)
    print(f"| GT size | variant | {header} | min over 0.01-4 s |")
    print("|---|---|" + "---|" * (len(fractions) + 1))
    dense = np.linspace(0.01, 4, 400)
    for size in (4, 8, 16, 32, 48):
        ciou = curve("ciou", {}, size, np.array(fractions) * size).grad_cx.to_numpy()
        ciou_dense = curve("ciou", {}, size, dense * size).grad_cx.to_numpy()
        for variant in ("paper", "relative"):
            params = {"variant": variant}
            sabl = curve("sabl", params, size, np.array(fractions) * size).grad_cx.to_numpy()
            dense_sabl = curve("sabl", params, size, dense * size).grad_cx.to_numpy()
            cells = " | ".join(f"{r:.2f}" for r in sabl / ciou)
            print(f"| {size} px | {variant} | {cells} | {(dense_sabl / ciou_dense).min():.2f} |")


def smoothness_table() -> None:
    print("\n### Largest loss change per 10 % of object size, same relative error, 2-128 px\n")
    sizes = torch.tensor(np.geomspace(2, 128, 45), dtype=torch.float64)
    gt = torch.stack([-sizes / 2, -sizes / 2, sizes / 2, sizes / 2], -1)
    errors = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
    print("| variant | " + " | ".join(f"offset {e:g} s" for e in errors) + " |")
    print("|---|" + "---|" * len(errors))
    for variant in ("paper", "relative"):
        cells = []
        for error in errors:
            shift = torch.stack([error * sizes, torch.zeros_like(sizes)] * 2, -1)
            loss = sabl_loss(gt + shift, gt, variant=variant)
            cells.append(f"{loss.diff().abs().max().item():.3f}")
        print(f"| {variant} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "docs" / "figures" / "sabl_gradients.png"
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args()
    draw(args.out)
    ratio_table()
    smoothness_table()


if __name__ == "__main__":
    main()
