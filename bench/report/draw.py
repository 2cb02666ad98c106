"""Matplotlib figures for the report, saved as PNG and PDF: curves, image panels, latent strips.

:mod:`bench.report` prepares the data and writes every title and label; this module draws (and
walks the latent space for interpolation strips). Figures are built on
:class:`matplotlib.figure.Figure` directly (Agg canvas for PNG), so no global pyplot state or
interactive backend is touched.
"""

from __future__ import annotations

import io
import itertools
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from PIL import Image

STRIP_STEPS = 8  # images in a latent interpolation strip
_PANEL_SIDE = 768  # px: sample grids are downscaled to at most this before drawing


class Generator(Protocol):
    """What an interpolation strip needs of a model (:class:`models.base.GANModel` has it)."""

    z_dim: int

    def generate(self, z: torch.Tensor, *, ema: bool = True) -> torch.Tensor: ...


@dataclass(frozen=True)
class Curve:
    """One line of a metric-over-time plot."""

    label: str
    x: Sequence[float]
    y: Sequence[float]


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf (no creation date: same input, same bytes)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"
    fig.savefig(png, dpi=110, metadata={"Software": None})
    fig.savefig(pdf, metadata={"CreationDate": None})
    return [png, pdf]


def curves_figure(
    curves: Sequence[Curve], budgets: Sequence[tuple[float, str]], *, title: str, xlabel: str, ylabel: str
) -> Figure:
    """One line per curve (markers at evaluations) and a dashed vertical line per budget."""
    fig = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for curve in curves:
        ax.plot(curve.x, curve.y, marker="o", label=curve.label)
    for (x, text), style in zip(budgets, itertools.cycle(("--", ":", "-.")), strict=False):
        ax.axvline(x, color="0.25", linestyle=style, linewidth=1.2, label=text)
    right = max([x for curve in curves for x in curve.x] + [x for x, _ in budgets] + [1e-9])
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1.06 * right))  # time starts at 0
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def grid_png(images: torch.Tensor) -> bytes:
    """uint8 images (N, 3, R, R) as the PNG bytes of one grid, laid out as the runs' sample grids
    (rows of sqrt(N), 2 px black padding)."""
    from torchvision.utils import make_grid

    grid = make_grid(images, nrow=max(1, int(len(images) ** 0.5)), padding=2)
    buf = io.BytesIO()
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    return buf.getvalue()


def _load_image(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((_PANEL_SIDE, _PANEL_SIDE))
        return np.asarray(img)


def panels_figure(panels: Sequence[tuple[str, Path | None]], *, title: str) -> Figure:
    """Images side by side, each with its title; a panel without an image says so."""
    cols = min(len(panels), 5)
    rows = -(-len(panels) // cols)
    width, height = max(3.4 * cols, 6.0), 3.8 * rows + 0.7
    fig = Figure(figsize=(width, height))
    margins = {"left": 0.02, "right": 0.98, "bottom": 0.02, "top": 1 - 1.1 / height}
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw=margins | {"hspace": 0.3}).ravel()
    for ax, (label, path) in zip(axes, panels, strict=False):
        if path is None:
            ax.text(0.5, 0.5, "no sample grid", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.imshow(_load_image(path))
        ax.set_title(label, fontsize=8)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(textwrap.fill(title, width=int(width * 11)), fontsize=10)
    return fig


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latents ``z0``, ``z1`` (D,) at fractions ``t`` (T,) → (T, D)."""
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1.0, 1.0)
    omega = torch.acos(cos)
    if omega.abs() < 1e-6:
        return z0[None] + t[:, None] * (z1 - z0)[None]
    w0, w1 = torch.sin((1 - t) * omega) / torch.sin(omega), torch.sin(t * omega) / torch.sin(omega)
    return w0[:, None] * z0[None] + w1[:, None] * z1[None]


def interpolation_images(model: Generator, *, seed: int = 0, steps: int = STRIP_STEPS, side: int = 256) -> np.ndarray:
    """(steps, H, W, 3) images in [0, 1]: ``model.generate`` (EMA) along a slerp of two seeded latents."""
    gen = torch.Generator().manual_seed(seed)
    z0, z1 = torch.randn(2, model.z_dim, generator=gen)
    z = slerp(z0, z1, torch.linspace(0.0, 1.0, steps))
    with torch.no_grad():
        x = model.generate(z, ema=True).float().cpu()  # (T, 3, R, R) in [-1, 1]; model on the CPU
    if x.shape[-1] > side:
        x = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    return ((x.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()


def strip_figure(images: np.ndarray, *, title: str) -> Figure:
    """Images (N, H, W, 3) in one row, each labelled with its interpolation fraction."""
    n, h, w, _ = images.shape
    gap = np.ones((h, max(w // 16, 1), 3))
    row = np.concatenate([part for img in images for part in (img, gap)][:-1], axis=1)
    fig = Figure(figsize=(1.6 * n, 2.3))
    ax = fig.add_axes((0.01, 0.14, 0.98, 0.66))
    ax.imshow(row)
    ax.set_xticks([(i + 0.5) * w + i * gap.shape[1] for i in range(n)])
    ax.set_xticklabels([f"t = {i / max(n - 1, 1):.2f}" for i in range(n)], fontsize=8)
    ax.set_yticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.suptitle(textwrap.fill(title, width=int(1.6 * n * 12)), fontsize=9)
    return fig
