"""The terminal's plan table: cells with run ids, budgets and states (:mod:`bench.report.budgets`);
light to import (no pandas, no torch), for dry runs and ``status``. The best-FID summary is
:mod:`bench.report.summary`."""

from __future__ import annotations

from pathlib import Path

from bench.plan.suites import Cell, Suite
from bench.report.budgets import budget_text


def plan_table(suite: Suite, cells: list[Cell], out: Path) -> str:
    """The expanded grid with run ids, budgets (with their conversion), states and progress, as a text table
    (with the device and time left of running cells when there are any)."""
    ref = f"; budgets in hours of {suite.reference_gpu}" if suite.reference_gpu else ""
    return f"suite {suite.name} ({suite.path}): {len(cells)} cells{ref}\n" + budget_text(cells, out)
