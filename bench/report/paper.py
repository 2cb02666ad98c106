"""The published numbers (``paper_tables.toml``, with their source) as typed tables."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from bench.errors import BenchError

PAPER_TABLES = "paper_tables.toml"  # package data of ``bench``


@dataclass(frozen=True)
class PaperRow:
    """A published row: values in the table's column order, or (unaligned) in the source's order."""

    label: str
    model: str  # our registered model name
    group: str
    budget_hours: float | None  # reference GPU-hours when the paper states them
    values: tuple[float | str, ...]  # a number, "N/A" (no number) or "?" (unreadable)
    aligned: bool  # False: `column = "?"` in the data, columns unknown


@dataclass(frozen=True)
class PaperTable:
    """A published table with the mapping of our dataset names to its columns."""

    key: str
    title: str
    columns: tuple[str, ...]
    image_number: tuple[int, ...]  # in column order; () when the paper gives none
    datasets: dict[str, str]  # our dataset name -> paper column
    rows: tuple[PaperRow, ...]
    cite: str
    source: str

    def value(self, model: str, dataset: str, budget_hours: float | None) -> float | str:
        """The published value for our (model, dataset) at this budget, or why the paper has none
        (e.g. ``"paper: 5 h budget"`` when it ran the model for another budget)."""
        if dataset not in self.datasets:
            return "dataset not in paper"
        rows = [r for r in self.rows if r.aligned and r.model == model]
        for row in rows:
            if row.budget_hours in (None, budget_hours):
                return row.values[self.columns.index(self.datasets[dataset])]
        if rows:
            return "paper: " + " / ".join(f"{r.budget_hours:g} h budget" for r in rows)
        return "model not in paper"

    def image_count(self, dataset: str) -> int | None:
        """The paper's image number for our dataset, if it gives one."""
        if dataset not in self.datasets or not self.image_number:
            return None
        return self.image_number[self.columns.index(self.datasets[dataset])]

    @property
    def aligned(self) -> bool:
        return any(r.aligned for r in self.rows)

    @property
    def unaligned(self) -> tuple[PaperRow, ...]:
        return tuple(r for r in self.rows if not r.aligned)


@functools.cache
def load_paper_tables() -> dict[str, PaperTable]:
    """The published tables by key ('A'..'D'), from the package data file ``paper_tables.toml``."""
    text = resources.files("bench.report").joinpath(PAPER_TABLES).read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return {key: _paper_table(key, t, data) for key, t in sorted(data["tables"].items())}


def _paper_table(key: str, t: dict[str, Any], data: dict[str, Any]) -> PaperTable:
    columns = tuple(t["columns"])
    rows = tuple(_paper_row(r) for r in t["rows"])
    bad = [r.label for r in rows if r.aligned and len(r.values) != len(columns)]
    bad += [c for c in t["datasets"].values() if c not in columns]
    bad += ["image_number"] if len(t.get("image_number", columns)) != len(columns) else []
    if bad:
        raise BenchError(f"{PAPER_TABLES}: tables.{key}: {', '.join(bad)} do not match its columns")
    images, datasets = tuple(t.get("image_number", ())), dict(t["datasets"])
    return PaperTable(key, t["title"], columns, images, datasets, rows, data["cite"], data["source"])


def _paper_row(r: dict[str, Any]) -> PaperRow:
    """One row of the data file; ``column = "?"`` marks a row whose columns are unknown."""
    values, budget = tuple(r["values"]), r.get("budget_hours")
    return PaperRow(r["label"], r["model"], r.get("group", ""), budget, values, r.get("column") != "?")
