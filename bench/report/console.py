"""The terminal's plan table: cells with run ids, budgets and states (:mod:`bench.report.budgets`);
light to import (no pandas, no torch), for dry runs and ``status``. The best-FID summary is
:mod:`bench.report.summary`."""

from __future__ import annotations

from pathlib import Path

from bench.plan.suites import Cell, Suite
from bench.report.budgets import budget_text


def plan_table(suite: Suite, cells: list[Cell], out: Path, *, wide: bool = False) -> str:
    """The expanded grid by the suite's labels with budgets (with their conversion), states and progress, as a
    text table (with the device and time left of running cells when there are any); ``wide``: a row per cell
    with its run id."""
    ref = f"; budgets in hours of {suite.reference_gpu}" if suite.reference_gpu else ""
    rows = "a row per cell" if wide else "cells that differ only in their dataset share a row; --wide: one per cell"
    head = f"suite {suite.name} ({suite.path}): {len(cells)} cells on {len(suite.datasets)} dataset(s){ref} ({rows})"
    return head + "\n" + budget_text(cells, out, wide=wide)
