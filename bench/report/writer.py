"""The report's entry point: :func:`write_report` builds a suite's tables, figures and study from the tidy
table of :func:`bench.results.collect.collect` and writes them (every file built before any is written);
:func:`read_states` reads the cells' states."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas: only when a table is built
    import pandas as pd

    from bench.plan.suites import Cell
    from bench.report.tables import SuiteLike

log = logging.getLogger(__name__)


def read_states(cells: Iterable[Cell], out: Path) -> dict[str, str]:
    """run_id -> status of each of ``cells`` under the results folder ``out`` ('running' only while locked)."""
    from bench.results.runs import cell_state

    return {c.spec.run_id: cell_state(out, c)["status"] for c in cells}


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
    detector: str | None = None,
    stale: dict[str, str] | None = None,
) -> list[Path]:
    """Write ``out_dir/tables/<suite>-<metric>.{tex,md,csv}`` (the suite's detector), one more such set per
    other protocol the runs were scored with (``<suite>-<metric>-<detector>-<digest>``),
    ``out_dir/plots/<suite>/*`` and, for a suite with a ``[study]``, its study
    (:func:`bench.report.study_render.study_files`). Everything is built and rendered first, then written
    (each file atomically; one that holds these bytes already is left as it is).

    Args:
        out: the results folder holding ``runs/`` (grids, snapshots, states); default ``out_dir``.
        selection: 'best' (best within budget, the paper's rule) or 'last' (last within budget).
        standalone: the .tex is a whole document (pdflatex compiles it on its own).
        metric: metric to tabulate; default the suite's first FID-kind metric present.
        states: run_id -> status; default read from the run folders under ``out``.
        detector: only the tables of rows scored with this detector (default: every protocol found).
        stale: run_id -> what changed in its model since it ran (:func:`bench.report.stale.stale_runs`; default
            read from the run folders under ``out``).
    """
    from bench.report.figures import render_plots  # matplotlib and torch: only when writing a report
    from bench.report.render import table_files
    from bench.report.stale import mark_stale, stale_runs
    from bench.report.tables import build_tables
    from bench.results.io import write_if_changed

    runs_root = Path(out if out is not None else out_dir)
    states = states if states is not None else read_states(suite.cells, runs_root)
    tables = build_tables(suite, df, selection=selection, metric=metric, states=states, detector=detector)
    if stale is None:  # runs built with other model settings than the model's now
        stale = stale_runs(suite.cells, runs_root)
    tables = [mark_stale(t, suite, stale) for t in tables]
    files = {Path(out_dir) / "tables" / name: text.encode() for t in tables for name, text in table_files(
        t, standalone=standalone).items()}  # fmt: skip
    if with_plots:
        plots = Path(out_dir) / "plots" / suite.name
        files |= {plots / name: data for name, data in render_plots(suite, df, tables, runs_root).items()}
    if getattr(suite, "study", None) is not None:
        from bench.report.study_render import study_files
        from bench.results.collect import collect_eval_noise

        noise = collect_eval_noise(runs_root, suite.name)
        study = study_files(suite, df, states=states, figures=with_plots, standalone=standalone, noise=noise,
                            stale=stale)  # fmt: skip
        files |= {Path(out_dir) / name: data for name, data in study.items()}
    for path, data in files.items():
        write_if_changed(path, data)
    log.info("%s", tables[0].summary)
    return list(files)
