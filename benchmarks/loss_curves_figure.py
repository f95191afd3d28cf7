"""Draw docs/figures/loss_curves.png from ``ssabnet.loss_curves`` (the figure in docs/losses.md).

SABL is drawn in its literal ``"paper"`` reading; ``benchmarks/sabl_gradients.py`` draws both
readings side by side.

Usage::

    .venv/bin/python benchmarks/loss_curves_figure.py [--out docs/figures/loss_curves.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ssabnet.losses import loss_curves, modulation_curve  # noqa: E402

KINDS = ("iou", "giou", "ciou", "nwd", "sabl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "docs" / "figures" / "loss_curves.png"
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args()

    offsets = torch.linspace(-40, 40, 401)
    small = loss_curves(list(KINDS), gt_size=8, offsets=offsets, C=12.0, variant="paper")
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for kind in KINDS:
        rows = small[small.kind == kind]
        axes[0, 0].plot(rows.offset, rows.loss, label=kind.replace("sabl", "sabl (paper)"))
        axes[0, 1].plot(rows.offset, rows.grad_cx.abs(), label=kind)
    axes[0, 0].set(title="loss, 8 px GT, prediction shifted in x", xlabel="offset (px)")
    axes[0, 1].set(title="|d loss / d cx|, 8 px GT", xlabel="offset (px)", yscale="log")
    axes[0, 1].set_ylim(1e-4, 1)
    axes[0, 0].legend()

    sizes = np.linspace(0, 96, 385)
    for modulation in ("exp", "logistic"):
        table = modulation_curve(sizes, modulation=modulation)
        axes[1, 0].plot(table["size"], table["mu"], label=f"{modulation}")
    axes[1, 0].axvline(32, color="grey", lw=0.5)
    axes[1, 0].set(title="SABL modulation mu(s), kappa 32, beta 6", xlabel="GT size sqrt(wh) (px)")
    axes[1, 0].legend()

    for size in (8, 16, 32, 48, 96):
        table = loss_curves(["sabl", "ciou"], gt_size=size, offsets=offsets, variant="paper")
        sabl = table[table.kind == "sabl"]
        axes[1, 1].plot(sabl.offset, sabl.grad_cx.abs(), label=f"sabl {size} px")
    ciou = loss_curves("ciou", gt_size=96, offsets=offsets)
    axes[1, 1].plot(ciou.offset, ciou.grad_cx.abs(), "k--", lw=1, label="ciou 96 px")
    axes[1, 1].set(
        title="SABL (paper) |d loss / d cx| hands over to CIoU", xlabel="offset (px)", yscale="log"
    )
    axes[1, 1].set_ylim(1e-4, 1)
    axes[1, 1].legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=72)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
