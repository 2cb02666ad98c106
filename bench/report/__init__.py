"""Collected results -> paper-style tables (LaTeX booktabs, Markdown, CSV) and figures.

``python run_bench.py report --suite NAME`` ends in :func:`write_report`. The report reads only
the tidy table of :func:`bench.results.collect.collect`, the runs' states and the files its rows
name (sample grids, snapshots); it never trains. The published numbers sit beside ours with the
difference, only where the protocol matches.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from bench.report.figures import write_plots
from bench.report.render import write_tables
from bench.report.study_render import study_report
from bench.report.tables import SuiteLike, build_table

log = logging.getLogger(__name__)


def read_states(suite: SuiteLike, out: Path) -> dict[str, str]:
    """run_id -> status of each suite cell under the results folder ``out`` ('running' only while locked)."""
    from bench.results.runs import cell_state

    return {c.spec.run_id: cell_state(out, c)["status"] for c in suite.cells}


def write_report(
    suite: SuiteLike,
    df: pd.DataFrame,
    out_dir: Path,
    *,
    out: Path | None = None,
    selection: str = "best",
    standalone: bool = False,
    metric: str | None = None,
    states: dict[str, str] | None = None,
    with_plots: bool = True,
) -> list[Path]:
    """Write ``out_dir/tables/<suite>-<metric>.{tex,md,csv}`` and ``out_dir/plots/<suite>/*``, and a suite
    with a ``[study]`` its study (:func:`bench.report.study_render.study_report`).

    Args:
        out: the results folder holding ``runs/`` (grids, snapshots, states); default ``out_dir``.
        selection: 'best' (best within budget, the paper's rule) or 'last' (last within budget).
        standalone: the .tex is a whole document (pdflatex compiles it on its own).
        metric: metric to tabulate; default the suite's first FID-kind metric present.
        states: run_id -> status; default read from the run folders under ``out``.
    """
    runs_root = Path(out if out is not None else out_dir)
    states = states if states is not None else read_states(suite, runs_root)
    table = build_table(suite, df, selection=selection, metric=metric, states=states)
    paths = write_tables(table, Path(out_dir) / "tables", standalone=standalone)
    log.info("%s", table.summary)
    if with_plots:
        paths += write_plots(suite, df, table, Path(out_dir) / "plots" / suite.name, runs_root)
    if getattr(suite, "study", None) is not None:
        paths += study_report(suite, df, out_dir, states=states, figures=with_plots, standalone=standalone)
    return paths
