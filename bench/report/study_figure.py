"""The study's figure: the metric against compute per row, mean over seeds with a band over seeds.

One figure per dataset. Each row of the study is a line through the mean over its finished seeds at
each evaluation (markers where it was measured, the step-0 point included), with a band of the 95 %
(1 − alpha) Student-t interval of that mean where at least two seeds were measured, and each seed's
own value as a faint dot. The x axis is one column of the result rows, the same for every row
(:func:`bench.report.figures.x_axis`: the compute used when every cell of the dataset has the suite's
compute budget, so that rows of equal compute end at the same x; else thousands of real images shown).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bench.report.figure_cache import rendered
from bench.report.figures import Axis, x_axis
from bench.report.stats import summarize
from bench.report.study import StudyResult, StudySuite
from bench.report.tables import suite_rows

if TYPE_CHECKING:  # matplotlib: only when a figure is drawn (not when it is remembered)
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _curve(sub: pd.DataFrame, x: str, alpha: float, scale: float) -> pd.DataFrame:
    """Per evaluation point: mean x, mean value, band (NaN with fewer than two seeds), sorted by x."""
    records = []
    for _, at in sub.groupby("eval_point"):
        s = summarize([float(v) * scale for v in at["value"]], alpha)
        lo, hi = (s.lo, s.hi) if s.half is not None else (np.nan, np.nan)
        records.append({"x": float(at[x].mean()), "mean": s.mean, "lo": lo, "hi": hi})
    return pd.DataFrame(records).sort_values("x")


def _panels(result: StudyResult) -> list[tuple[str, list[str]]]:
    """(title, models) per panel: the ladder, then its top rung against the other rows; one panel
    holding every row when the study has no ladder or no other row."""
    models = [r.model for r in result.main.rows]
    ladder = [m for m in result.study.ladder if m in models]
    others = [m for m in models if m not in ladder]
    if not ladder or not others:
        return [("", models)]
    return [("ablation ladder", ladder), (f"{result.labels[ladder[-1]]} against the other rows", [ladder[-1], *others])]


def _draw_row(ax: Axes, sub: pd.DataFrame, x: str, label: str, color: str, alpha: float, scale: float) -> None:
    curve = _curve(sub, x, alpha, scale)
    ax.plot(curve["x"], curve["mean"], marker="o", markersize=4, color=color, label=label)
    ax.fill_between(curve["x"], curve["lo"], curve["hi"], color=color, alpha=0.15, linewidth=0)
    ax.scatter(sub[x], sub["value"] * scale, s=6, color=color, alpha=0.4, linewidths=0)


def study_figure(result: StudyResult, rows: pd.DataFrame, dataset: str, suite: StudySuite, axis: Axis) -> Figure | None:
    """The figure of one dataset against ``axis`` (None when no finished run of the study has a measured point)."""
    table, alpha, x = result.main, result.study.alpha, axis.column
    scale = 1e3 if table.kind == "kid" else 1.0
    j = table.datasets.index(dataset)
    measured = {}
    for row in table.rows:
        seeds = set(row.cells[j].values)
        ids = [c.spec.run_id for c in suite.cells
               if c.spec.model == row.model and c.spec.dataset == dataset and c.spec.seed in seeds]  # fmt: skip
        sub = rows[rows["run_id"].isin(ids) & (rows["metric"] == table.metric) & rows["value"].notna()]
        sub = sub[~(sub["eval_point"] > 1 + 1e-9)]
        if not sub.empty and x in sub.columns and sub[x].notna().all():
            measured[row.model] = (sub, f"{row.label} (n={len(seeds)})", f"C{len(measured) % 10}")
    if not measured:
        return None
    panels = [(t, [m for m in models if m in measured]) for t, models in _panels(result)]
    panels = [(t, models) for t, models in panels if models]
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2 * len(panels) + 1.0, 4.8), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    better = "lower" if table.lower_is_better else "higher"
    for ax, (title, models) in zip(axes, panels, strict=True):
        for model in models:
            sub, label, color = measured[model]
            _draw_row(ax, sub, x, label, color, alpha, scale)
        ax.set(title=title, xlabel=axis.label)
        ax.title.set_fontsize(9)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel(f"{table.unit} ({better} is better)")
    note = f"\nnon-standard detector {', '.join(table.nonstandard)}: not comparable to published numbers"
    note = note if table.nonstandard else ""
    fig.suptitle(
        f"{result.suite}: {table.unit} ({table.metric}) against compute on {dataset}\n"
        f"line: mean over seeds; band: {1 - alpha:.0%} t-interval of the mean (n ≥ 2); dots: single seeds{note}",
        fontsize=9,
    )
    return fig


def study_figure_files(
    result: StudyResult, suite: StudySuite, df: pd.DataFrame, axis: Axis | None = None
) -> dict[str, bytes]:
    """File name -> bytes: ``study_<metric>_<dataset>.{png,pdf}``, one per dataset with a measured point,
    against ``axis`` (default: each dataset's :func:`~bench.report.figures.x_axis`)."""
    rows = suite_rows(suite, df)
    files: dict[str, bytes] = {}
    for dataset in result.main.datasets:
        drawn = rendered(study_figure, result, rows, dataset, suite, axis or x_axis(suite, dataset))
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset)
        files |= {f"study_{result.main.metric}_{slug}{suffix}": data for suffix, data in drawn.items()}
    return files
