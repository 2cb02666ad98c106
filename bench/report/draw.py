"""Matplotlib figures for the report, rendered to PNG and PDF bytes: curves, image panels, latent strips.

:mod:`bench.report` prepares the data and writes every title and label; this module draws (the images
of strips and training panels come from :mod:`bench.report.imagery`; no torch here). Image figures are
laid out in pixels around their images, so no band is left empty and every title fits its figure
(titles are measured, never wrapped); small images are enlarged by a whole factor with
nearest-neighbour sampling (a 32 px face stays sharp), large ones reduced with antialiasing. Curves
mark the measured points only. Figures are built on :class:`matplotlib.figure.Figure` directly (Agg
canvas), so no global pyplot state or interactive backend is touched.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # matplotlib: imported when a figure is drawn (a remembered one is not: bench.report.figure_cache)
    from matplotlib.figure import Figure

DPI = 110  # of the PNGs
PANEL_SIDE = 420  # px: a panel's image is scaled (by a whole factor when enlarged) to about this side
STRIP_SIDE = 112  # px: each image of an interpolation strip, about
_PAD = 14  # px between and around panels
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class Curve:
    """One row's measured points on a metric-over-training plot (``err``: spread over seeds, or None)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    err: Sequence[float] | None = None


def render(fig: Figure) -> dict[str, bytes]:
    """'.png' and '.pdf' bytes of ``fig`` (no creation date: same input, same bytes)."""
    out = {}
    for suffix, meta in ((".png", {"Software": None}), (".pdf", {"CreationDate": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=suffix[1:], dpi=DPI, metadata=meta)
        out[suffix] = buf.getvalue()
    return out


def _figure(**kwargs: object) -> Figure:
    """A new :class:`~matplotlib.figure.Figure` (matplotlib imported here: only when a figure is drawn)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _text_px(text: str, size: float) -> tuple[float, float]:
    """(width, height) in px of ``text`` (lines) at ``size`` points."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    lines = text.split("\n")
    widths = [TextToPath().get_text_width_height_descent(ln, FontProperties(size=size), ismath=False)[0]
              for ln in lines]  # fmt: skip
    return max(widths) * DPI / 72, len(lines) * size * 1.35 * DPI / 72


def curves_figure(curves: Sequence[Curve], *, title: str, note: str, xlabel: str, ylabel: str) -> Figure:
    """A marker at each measured point of each curve (error bars: the spread over seeds) and no line
    between them (a line would show values that were not measured); ``note``: small lines under the
    title, broken at '; ' where one line would be wider than the axes."""
    fig = _figure(figsize=(7.0, 4.4), layout="constrained")
    ax = fig.add_subplot()
    for curve, marker in zip(curves, itertools.cycle(_MARKERS), strict=False):
        ax.errorbar(curve.x, curve.y, yerr=curve.err, fmt=marker, markersize=7, capsize=3, label=curve.label)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.set_title(_fit(note, 8, 0.82 * 7.0 * DPI), fontsize=8, color="0.3")
    fig.suptitle(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _fit(text: str, size: float, width_px: float) -> str:
    """``text`` with its '; ' turned into line breaks where a line would be wider than ``width_px``."""
    lines: list[str] = []
    for part in text.split("; "):
        if lines and _text_px(f"{lines[-1]}; {part}", size)[0] <= width_px:
            lines[-1] = f"{lines[-1]}; {part}"
        else:
            lines.append(part)
    return "\n".join(lines)


def grid_png(images: np.ndarray) -> bytes:
    """uint8 images (N, 3, R, R) as the PNG bytes of one grid, laid out as the runs' sample grids
    (torchvision's ``make_grid``: rows of sqrt(N), 2 px black padding), without importing torchvision
    (seconds)."""
    n, _, h, w = images.shape
    cols = min(max(1, int(n**0.5)), n)
    rows, pad = -(-n // cols), 2 if n > 1 else 0  # one image: itself (as make_grid)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), dtype=np.uint8)
    for i, img in enumerate(images.transpose(0, 2, 3, 1)):
        r, c = divmod(i, cols)
        grid[r * (h + pad) + pad : r * (h + pad) + pad + h, c * (w + pad) + pad : c * (w + pad) + pad + w] = img
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    return buf.getvalue()


def scaled(image: np.ndarray, side: int) -> np.ndarray:
    """(H, W, 3) image at about ``side`` px: enlarged by a whole factor (nearest neighbour) or reduced
    (antialiased), never stretched by a fraction."""
    h, w = image.shape[:2]
    if max(h, w) <= side:
        k = max(1, side // max(h, w))
        return image.repeat(k, axis=0).repeat(k, axis=1)
    img = Image.fromarray(image)
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(img)


def load_image(source: Path | bytes) -> np.ndarray:
    """An image file (or its bytes) as (H, W, 3) uint8."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        return np.asarray(img.convert("RGB"))


def panels_figure(panels: Sequence[tuple[str, np.ndarray | None]], *, title: str, cols: int = 5) -> Figure:
    """Images (uint8 (H, W, 3), scaled by :func:`scaled`) side by side, each under its title; a panel
    without an image says so. The figure is as large as its images and titles, no larger."""
    shown = [(label, None if img is None else scaled(img, PANEL_SIDE)) for label, img in panels]
    side = max([max(img.shape[:2]) for _, img in shown if img is not None] + [120])
    cols = min(len(shown), cols)
    rows = -(-len(shown) // cols)
    label_h = max(_text_px(label, 8)[1] for label, _ in shown)
    cell_w = max([side] + [_text_px(label, 8)[0] for label, _ in shown]) + _PAD
    title_w, title_h = _text_px(title, 10)
    width = max(cols * cell_w + _PAD, title_w + 2 * _PAD)
    height = _PAD + title_h + rows * (label_h + side + _PAD) + _PAD / 2
    fig = _figure(figsize=(width / DPI, height / DPI))
    fig.text(0.5, 1 - _PAD / height, title, ha="center", va="top", fontsize=10)
    left0 = (width - cols * cell_w) / 2 + _PAD / 2
    for i, (label, img) in enumerate(shown):
        r, c = divmod(i, cols)
        top = _PAD + title_h + r * (label_h + side + _PAD) + _PAD / 2
        x = left0 + c * cell_w + (cell_w - _PAD - side) / 2
        ax = fig.add_axes((x / width, 1 - (top + label_h + side) / height, side / width, side / height))
        ax.set_axis_off()
        if img is None:
            ax.text(0.5, 0.5, "no sample grid", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        else:
            ax.imshow(img, interpolation="nearest", extent=(0, img.shape[1], img.shape[0], 0))
            ax.set_xlim(-(side - img.shape[1]) / 2, img.shape[1] + (side - img.shape[1]) / 2)
            ax.set_ylim(img.shape[0] + (side - img.shape[0]) / 2, -(side - img.shape[0]) / 2)
        fig.text((x + side / 2) / width, 1 - top / height, label, ha="center", va="top", fontsize=8)
    return fig


def strip_figure(images: np.ndarray, *, title: str) -> Figure:
    """uint8 images (N, H, W, 3) in one row (enlarged by a whole factor, nearest neighbour), each
    labelled with its interpolation fraction; the figure as large as the strip and its title."""
    tiles = [scaled(img, STRIP_SIDE) for img in images]
    h, w = tiles[0].shape[:2]
    gap = max(w // 16, 2)
    row = np.concatenate([part for t in tiles for part in (t, np.full((h, gap, 3), 255, np.uint8))][:-1], axis=1)
    title_w, title_h = _text_px(title, 9)
    tick_h = _text_px("t = 1.00", 8)[1] + 4
    width = max(row.shape[1], title_w) + 2 * _PAD
    height = _PAD + title_h + h + tick_h + _PAD / 2
    fig = _figure(figsize=(width / DPI, height / DPI))
    fig.text(0.5, 1 - _PAD / height, title, ha="center", va="top", fontsize=9)
    left = (width - row.shape[1]) / 2
    ax = fig.add_axes((left / width, 1 - (_PAD + title_h + h) / height, row.shape[1] / width, h / height))
    ax.imshow(row, interpolation="nearest")
    ax.set_xticks([(i + 0.5) * w + i * gap - 0.5 for i in range(len(tiles))])
    ax.set_xticklabels([f"t = {i / max(len(tiles) - 1, 1):.2f}" for i in range(len(tiles))], fontsize=8)
    ax.set_yticks([])
    ax.tick_params(length=0, pad=2)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig
