"""The published numbers (``paper_tables.toml``, with their source) as typed tables; each row names
the evaluation its numbers came from (:class:`PaperSource`: our protocol and its detector)."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from bench.errors import BenchError

PAPER_TABLES = "paper_tables.toml"  # package data of ``bench``


@dataclass(frozen=True)
class PaperSource:
    """How published numbers were evaluated, as our protocol: comparable only with our numbers of
    ``protocol`` scored with ``detector``."""

    key: str
    protocol: str  # our metric name that reproduces the source's evaluation
    detector: str  # the detector it used (the protocol's standard one)
    text: str  # what the source ran
    verified: bool  # a stored source confirms these numbers came from this evaluation
    basis: str  # the evidence, or why it is an inference

    def describe(self) -> str:
        """E.g. 'fid2k_fastgan with inception-v3 (the FastGAN code's evaluation: ...; inferred: ...)'."""
        return f"{self.protocol} with {self.detector} ({self.text}; {self.basis})"


@dataclass(frozen=True)
class PaperRow:
    """A published row: values in the table's column order, or (unaligned) in the source's order."""

    label: str
    model: str  # our registered model name
    recipe: str  # the training recipe its source used: part of models.model_info(model).recipe
    source: PaperSource  # how its numbers were evaluated
    note: str  # what about this row is not verified ("" when nothing beyond its source)
    group: str
    budget_hours: float | None  # reference GPU-hours when the paper states them
    values: tuple[float | str, ...]  # a number, "N/A" (no number) or "?" (unreadable)
    aligned: bool  # False: `column = "?"` in the data, columns unknown
    kimg: tuple[tuple[str, float], ...] = ()  # (our dataset, kimg) of the runs behind the values, when stated

    def same_length(self, budget_hours: float | None, kimg: dict[str, float] | None) -> bool:
        """Our row trained as long as this row's numbers: the same stated hours, or pinned to exactly
        the kimg of the source's runs on each of our datasets."""
        if self.budget_hours in (None, budget_hours):
            return True
        stated = dict(self.kimg)
        return bool(kimg) and bool(stated) and all(stated.get(d) == k for d, k in kimg.items())


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

    def row_for(self, model: str, budget_hours: float | None, kimg: dict[str, float] | None = None) -> PaperRow | None:
        """The aligned published row our ``model`` at this budget (or pinned ``kimg`` per dataset) is
        printed beside, if any."""
        for row in self.rows:
            if row.aligned and row.model == model and row.same_length(budget_hours, kimg):
                return row
        return None

    def value(
        self, model: str, dataset: str, budget_hours: float | None, kimg: dict[str, float] | None = None
    ) -> float | str | None:
        """The published value for our (model, dataset) at this budget; None when the paper has none."""
        row = self.row_for(model, budget_hours, kimg)
        if dataset not in self.datasets or row is None:
            return None
        return row.values[self.columns.index(self.datasets[dataset])]

    def absent_reason(self, model: str | None, dataset: str | None, budget_hours: float | None) -> str:
        """Why the paper has no number for our (model, dataset) at this budget ("" when it has one),
        e.g. ``"paper: 5 h budget"`` when it ran the model for another budget; ``dataset`` None: for
        the model's whole row."""
        if model is None:
            return "row mixes models"
        if dataset is not None and dataset not in self.datasets:
            return "dataset not in paper"
        rows = [r for r in self.rows if r.aligned and r.model == model]
        if not rows:
            return "model not in paper"
        if self.row_for(model, budget_hours) is None:
            return "paper: " + " / ".join(f"{r.budget_hours:g} h budget" for r in rows)
        return ""

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
    sources = {key: PaperSource(key, **fields) for key, fields in data["sources"].items()}
    return {key: _paper_table(key, t, data, sources) for key, t in sorted(data["tables"].items())}


def _paper_table(key: str, t: dict[str, Any], data: dict[str, Any], sources: dict[str, PaperSource]) -> PaperTable:
    columns = tuple(t["columns"])
    unknown = [f"{r['label']} (source {r.get('source')!r})" for r in t["rows"] if r.get("source") not in sources]
    if unknown:
        raise BenchError(f"{PAPER_TABLES}: tables.{key}: {', '.join(unknown)}: name a [sources] key")
    rows = tuple(_paper_row(r, sources[r["source"]]) for r in t["rows"])
    bad = [r.label for r in rows if r.aligned and len(r.values) != len(columns)]
    bad += [c for c in t["datasets"].values() if c not in columns]
    bad += ["image_number"] if len(t.get("image_number", columns)) != len(columns) else []
    if bad:
        raise BenchError(f"{PAPER_TABLES}: tables.{key}: {', '.join(bad)} do not match its columns")
    images, datasets = tuple(t.get("image_number", ())), dict(t["datasets"])
    return PaperTable(key, t["title"], columns, images, datasets, rows, data["cite"], data["source"])


def _paper_row(r: dict[str, Any], source: PaperSource) -> PaperRow:
    """One row of the data file; ``column = "?"`` marks a row whose columns are unknown."""
    values, budget, aligned = tuple(r["values"]), r.get("budget_hours"), r.get("column") != "?"
    kimg = tuple((d, float(k)) for d, k in r.get("kimg", {}).items())
    return PaperRow(r["label"], r["model"], r["recipe"], source, r.get("note", ""), r.get("group", ""), budget,
                    values, aligned, kimg)  # fmt: skip


def printed_beside(row: PaperRow | None, metric: str, detectors: set[str]) -> bool:
    """Whether a published row's numbers are printed beside ours: only under the protocol its source
    used (``metric``) and scored with its detector (``detectors``: those our cells use)."""
    return row is not None and row.source.protocol == metric and detectors == {row.source.detector}
