"""Which stored numbers may stand together: one protocol per table, status line, curve and step-0 check.

A table's numbers share :data:`bench.results.rows.TABLE_FIELDS` (the metric, the detector and its
weights' sha256, clean-fid mode, generated images, reference, resize before the detector, generator
weights, truncation, KID subsets, precision/recall k): a :class:`ProtocolKey`. Within a table the
sampling fields differ by family (each sampled as its authors do) and the dataset fields by column,
but one run's numbers must share :data:`~bench.results.rows.RUN_FIELDS` too; a run whose rows of one
protocol do not is 'mixed' and gives no number. Rows scored later with another detector (``eval --detector``) form
another protocol and another table: never averaged, minimised or ranked with the first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.report.gain import is_step0
from bench.results.rows import RUN_FIELDS, TABLE_FIELDS

SELECTION_RULES = {  # which evaluation of a run a table shows, as its caption says it
    "best": "best evaluation within the budget (the paper's rule)",
    "last": "last evaluation within the budget",
}


def _text(value: Any) -> str:
    """A field's value as compared: '' for missing, integral floats as integers."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _keys(rows: pd.DataFrame, fields: tuple[str, ...]) -> pd.Series:
    """Each row's values of ``fields`` as one tuple of texts (a missing column counts as '')."""
    columns = [rows[f].map(_text) if f in rows.columns else pd.Series("", index=rows.index) for f in fields]
    if not columns or rows.empty:
        return pd.Series([()] * len(rows), index=rows.index, dtype=object)
    return pd.Series(list(zip(*columns, strict=True)), index=rows.index, dtype=object)


@dataclass(frozen=True, order=True)
class ProtocolKey:
    """What every number of one table shares (:data:`TABLE_FIELDS`, as texts)."""

    values: tuple[str, ...]

    @classmethod
    def of(cls, row: dict[str, Any]) -> ProtocolKey:
        """The protocol of one stored row (a dict of :func:`bench.results.runs.eval_rows`)."""
        return cls(tuple(_text(row.get(field)) for field in TABLE_FIELDS))

    def get(self, field: str) -> str:
        return self.values[TABLE_FIELDS.index(field)]

    @property
    def metric(self) -> str:
        return self.get("metric")

    @property
    def detector(self) -> str:
        return self.get("detector")

    @property
    def detector_name(self) -> str:
        """The detector as a caption names it: a TorchScript file by its file name, not its whole path."""
        kind, _, path = self.detector.partition(":")
        return f"{kind}:{path.rsplit('/', 1)[-1]}" if path else self.detector

    @property
    def digest(self) -> str:
        """8 hex digits naming the protocol in file names."""
        return hashlib.sha256("\x1f".join(self.values).encode()).hexdigest()[:8]

    @property
    def slug(self) -> str:
        """The detector's name (a TorchScript file's stem) and :attr:`digest`, as part of a file name."""
        name = self.detector_name.removesuffix(".pt")
        return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:40]}-{self.digest}"

    def rows(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The rows of this protocol."""
        return rows[_keys(rows, TABLE_FIELDS) == self.values] if len(rows) else rows


def protocols_of(rows: pd.DataFrame, metric: str, declared: Iterable[str] = ()) -> list[ProtocolKey]:
    """The protocols of ``metric`` among ``rows``: those scored with a ``declared`` detector (the suite's)
    first, genuine weights (``detector_standard``) before others, then by the number of runs scored, then
    by name."""
    mine = rows[rows["metric"] == metric] if len(rows) and "metric" in rows.columns else rows.iloc[:0]
    if mine.empty:
        return []
    keys = _keys(mine, TABLE_FIELDS)
    runs = mine.groupby(keys.map(ProtocolKey))["run_id"].nunique()
    wanted = set(declared)
    return sorted(runs.index, key=lambda p: (p.detector not in wanted, p.get("detector_standard") != "True",
                                             -int(runs[p]), p.values))  # fmt: skip


def mixed_runs(rows: pd.DataFrame) -> set[str]:
    """Runs whose rows (of one protocol) differ in :data:`RUN_FIELDS`: no number of theirs is selected."""
    if rows.empty:
        return set()
    variants = _keys(rows, RUN_FIELDS).groupby(rows["run_id"]).nunique()
    return {str(r) for r in variants[variants > 1].index}


def figure_selection(suite: object, selection: str) -> str:
    """Which evaluation's sample grids the report's figures show and name: a study suite's (its ``[study]``
    selection; 'last' for mean-last-K, the last of the evaluations it averages), else ``selection`` (the
    tables')."""
    study = getattr(suite, "study", None)
    if study is None:
        return selection
    return "best" if study.selection == "best" else "last"


def select_runs(rows: pd.DataFrame, kind: str, selection: str) -> pd.DataFrame:
    """One row per run (index ``run_id``) from the rows of one protocol: its best, or last, evaluation
    within budget after training began (step 0 is the baseline of :mod:`bench.report.gain`, never
    picked); 'mixed' runs (:func:`mixed_runs`) are left out."""
    rows = rows[rows["value"].notna() & ~rows["run_id"].isin(mixed_runs(rows))]
    points = rows["eval_point"] if "eval_point" in rows.columns else pd.Series(float("nan"), index=rows.index)
    rows = rows[~(points > 1 + 1e-9) & ~is_step0(points)]
    if selection == "best":
        keys, ascending = ["run_id", "value", "eval_point"], [True, kind != "pr", True]
    else:
        keys, ascending = ["run_id", "eval_point"], [True, False]
    rows = rows.assign(eval_point=rows.get("eval_point", float("nan")))
    return rows.sort_values(keys, ascending=ascending, kind="mergesort").drop_duplicates("run_id").set_index("run_id")
