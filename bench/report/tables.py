"""Collected results -> a :class:`ReportTable`: selection within budget, aggregation over seeds,
and the published numbers beside ours. Nothing is formatted here (see :mod:`bench.report.render`).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from bench.data.paper import get_dataset_info
from bench.errors import BenchError
from bench.plan.specs import RunSpec
from bench.report.paper import PAPER_TABLES, PaperRow, PaperTable, load_paper_tables

SELECTION_RULES = {
    "best": "best {name} within the training budget over evaluations (the paper's rule)",
    "last": "{name} at the last evaluation within the training budget",
}
_NOT_DONE = ("diverged", "failed", "running", "pending", "missing")  # a cell shows the first present


class CellLike(Protocol):
    """What the report reads of a suite cell (:class:`bench.suites.Cell`)."""

    spec: RunSpec
    label: str
    group: str


class SuiteLike(Protocol):
    """What the report reads of a suite (:class:`bench.suites.Suite`)."""

    name: str
    paper_table: str | None
    datasets: list[str]
    cells: Sequence[CellLike]


def metric_kind(df: pd.DataFrame, metric: str) -> str:
    """'fid', 'kid' or 'pr' (from the ``kind`` column, else from the metric's name)."""
    kinds = df.loc[df["metric"] == metric, "kind"].dropna() if "kind" in df.columns else []
    if len(kinds):
        return str(kinds.iloc[0])
    if metric.endswith(("_precision", "_recall")):
        return "pr"
    return "kid" if metric.startswith("kid") else "fid"


def metric_name(metric: str, kind: str) -> str:
    """Display name: FID, KID, precision or recall."""
    if kind == "pr":
        return "recall" if metric.endswith("_recall") else "precision"
    return kind.upper()


def fmt_number(value: float, kind: str) -> str:
    """Fixed format: FID 2 decimals, KID ×10³ with 2 decimals, precision/recall 3 decimals."""
    digits = 3 if kind == "pr" else 2
    scaled = value * (1e3 if kind == "kid" else 1.0)
    return f"{round(scaled, digits) + 0.0:.{digits}f}"


def fmt_delta(value: float) -> str:
    """Signed, 2 decimals (ours − paper)."""
    return f"{round(value, 2) + 0.0:+.2f}"


def select_runs(df: pd.DataFrame, metric: str, kind: str, selection: str) -> pd.DataFrame:
    """One row per run (index ``run_id``): its best, or last, evaluation of ``metric`` within budget."""
    rows = df[(df["metric"] == metric) & df["value"].notna()]
    rows = rows[~(rows["eval_point"] > 1 + 1e-9)]
    if selection == "best":
        keys, ascending = ["run_id", "value", "eval_point"], [True, kind != "pr", True]
    else:
        keys, ascending = ["run_id", "eval_point"], [True, False]
    return rows.sort_values(keys, ascending=ascending, kind="mergesort").drop_duplicates("run_id").set_index("run_id")


def run_statuses(suite: SuiteLike, df: pd.DataFrame, states: dict[str, str] | None = None) -> dict[str, str]:
    """Status of each suite cell's run: ``states`` first, then the results table, else 'todo'."""
    known = dict(zip(df["run_id"], df["status"], strict=True)) if "status" in df.columns else {}
    known |= states or {}
    return {c.spec.run_id: str(known.get(c.spec.run_id, "todo")) for c in suite.cells}


def summary_line(suite: SuiteLike, df: pd.DataFrame, states: dict[str, str] | None = None) -> str:
    """E.g. 'smoke: 2/2 cells done (0 running, 0 pending, 0 failed, 0 diverged)'."""
    return _summary(suite.name, run_statuses(suite, df, states))


def _summary(name: str, statuses: dict[str, str]) -> str:
    n = Counter(statuses.values())
    return (
        f"{name}: {n['done']}/{len(statuses)} cells done ({n['running']} running, {n['todo']} pending, "
        f"{n['failed']} failed, {n['diverged']} diverged)"
    )


@dataclass(frozen=True)
class CellResult:
    """Our result in one table cell: the selected value of each seed's run, or why there is none."""

    status: str  # 'done', one of _NOT_DONE, or 'absent' (the suite has no run here)
    runs: int = 0
    done: int = 0
    values: tuple[float, ...] = ()  # one per seed, when done
    detectors: tuple[str, ...] = ()  # detectors of the selected evaluations
    nonstandard: tuple[str, ...] = ()  # those of them not flagged standard
    devices: tuple[str, ...] = ()  # device types the runs trained on (collect's ``device`` column)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds; None for a single seed."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None


def cell_result(run_ids: Sequence[str], statuses: dict[str, str], selected: pd.DataFrame) -> CellResult:
    """Combine the runs (seeds) of one cell: a number only when every run is done and scored."""
    if not run_ids:
        return CellResult("absent")
    words = [_run_word(r, statuses, selected) for r in run_ids]
    status = next((w for w in _NOT_DONE if w in words), "done")
    if status != "done":
        return CellResult(status, len(words), words.count("done"))
    rows = selected.loc[list(run_ids)]
    detectors = tuple(sorted({str(d) for d in rows.get("detector", ["unknown"] * len(rows))}))
    n, values = len(words), tuple(float(v) for v in rows["value"])
    devices = tuple(sorted({str(d) for d in rows["device"].dropna()})) if "device" in rows.columns else ()
    return CellResult("done", n, n, values, detectors, nonstandard_detectors(rows), devices)


def nonstandard_detectors(rows: pd.DataFrame) -> tuple[str, ...]:
    """Detectors of ``rows`` not flagged standard (a missing flag counts as non-standard)."""
    detectors = rows.get("detector", pd.Series("unknown", index=rows.index))
    flags = rows.get("detector_standard", pd.Series(None, index=rows.index, dtype=object))
    return tuple(sorted({str(d) for d, ok in zip(detectors, flags, strict=True) if not (pd.notna(ok) and ok)}))


def _run_word(run_id: str, statuses: dict[str, str], selected: pd.DataFrame) -> str:
    status = statuses.get(run_id, "todo")
    if status == "done" and run_id not in selected.index:
        return "missing"  # finished, but no evaluation of this metric within the budget
    return "pending" if status == "todo" else status


@dataclass(frozen=True)
class ReportRow:
    """One of our rows: a (group, label) of the suite, with a result and a published value per column."""

    group: str
    label: str
    model: str | None  # None when the row mixes models
    cells: tuple[CellResult, ...]  # in the suite's dataset order
    paper: tuple[float | str | None, ...]  # published value per column; None: the paper has none


@dataclass(frozen=True)
class ReportTable:
    """Everything the renderers print, already selected and aggregated."""

    suite: str
    metric: str
    kind: str
    selection: str
    datasets: tuple[str, ...]
    headers: tuple[str, ...]
    image_numbers: tuple[int | None, ...]
    rows: tuple[ReportRow, ...]
    paper: PaperTable | None  # the suite's published table
    compare: bool  # published values are comparable (same metric kind: FID)
    protocol: str
    summary: str

    @property
    def lower_is_better(self) -> bool:
        return self.kind != "pr"

    @property
    def has_groups(self) -> bool:
        return any(r.group for r in self.rows)

    @property
    def aligned_paper(self) -> bool:
        return self.compare and self.paper is not None and self.paper.aligned

    @property
    def unaligned_paper(self) -> tuple[PaperRow, ...]:
        return self.paper.unaligned if self.compare and self.paper is not None else ()

    @property
    def nonstandard_detectors(self) -> tuple[str, ...]:
        return tuple(sorted({d for r in self.rows for c in r.cells for d in c.nonstandard}))

    @property
    def device_mix(self) -> dict[str, list[str]]:
        """Device type -> its cells ('label / dataset'), most cells first, when the table's numbers come
        from more than one device type; else empty."""
        cells: dict[str, list[str]] = {}
        for row in self.rows:
            for dataset, cell in zip(self.datasets, row.cells, strict=True):
                for device in cell.devices:
                    cells.setdefault(device, []).append(f"{row.label} / {dataset}")
        return dict(sorted(cells.items(), key=lambda kv: -len(kv[1]))) if len(cells) > 1 else {}

    def best_rows(self, j: int) -> set[int]:
        """Rows holding the best value of column ``j`` (ties by printed value)."""
        shown = {
            i: fmt_number(r.cells[j].mean, self.kind) for i, r in enumerate(self.rows) if r.cells[j].status == "done"
        }
        if not shown:
            return set()
        pick = min if self.lower_is_better else max
        best = pick(shown.values(), key=float)
        return {i for i, text in shown.items() if text == best}


def row_keys(suite: SuiteLike) -> list[tuple[str, str]]:
    """(group, label) of the rows, in order of first appearance in the suite."""
    return list(dict.fromkeys((c.group, c.label) for c in suite.cells))


def row_cells(suite: SuiteLike, key: tuple[str, str], dataset: str) -> list[CellLike]:
    """The cells (one per seed, by seed) of row ``key`` on ``dataset``."""
    cells = [c for c in suite.cells if (c.group, c.label) == key and c.spec.dataset == dataset]
    return sorted(cells, key=lambda c: c.spec.seed)


def image_number(dataset: str, paper: PaperTable | None, rows: pd.DataFrame) -> int | None:
    """Images in the dataset: the registry's count, else the size of the full reference set the
    evaluations used (built-in datasets), else the paper's image-number row."""
    try:
        return get_dataset_info(dataset).count
    except BenchError:
        pass
    if {"dataset", "reference", "ref_count"} <= set(rows.columns):
        counts = rows.loc[(rows["dataset"] == dataset) & (rows["reference"] == "full"), "ref_count"].dropna()
        if len(counts):
            return int(counts.max())
    return paper.image_count(dataset) if paper else None


def protocol_text(rows: pd.DataFrame, metric: str) -> str:
    """Metric name plus detector, mode, generated images, reference and weights (all values seen)."""
    parts = [metric]
    for column, template in (
        ("detector", "detector {}"), ("mode", "mode {}"), ("num_gen", "{} generated images"),
        ("reference", "reference {}"), ("weights", "{} weights"),
    ):  # fmt: skip
        values = sorted({_plain(v) for v in rows[column].dropna()}) if column in rows.columns else []
        if values:
            parts.append(template.format(" / ".join(values)))
    return ", ".join(parts)


def _plain(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def suite_rows(suite: SuiteLike, df: pd.DataFrame) -> pd.DataFrame:
    """The results rows of the suite's runs; BenchError when there are none."""
    if df.empty or "run_id" not in df.columns:
        run = f"python run_bench.py run --suite {suite.name}"
        raise BenchError(f"no results for suite {suite.name!r} yet; run `{run}` first")
    missing = sorted({"metric", "value", "eval_point"} - set(df.columns))
    if missing:
        raise BenchError(f"results table lacks the columns {', '.join(missing)}; collect it with bench.results")
    mine = df[df["run_id"].isin({c.spec.run_id for c in suite.cells})]
    if mine.empty:
        raise BenchError(
            f"none of the {df['run_id'].nunique()} runs in the results belong to suite {suite.name!r} as "
            "loaded; pass the options used with `run` (--budget-scale, --speed-ratio, --init-from)"
        )
    return mine


def default_metric(suite: SuiteLike, df: pd.DataFrame) -> str:
    """The suite's first FID-kind metric present in ``df`` (else its first metric present)."""
    present = set(df["metric"].dropna())
    order = [m for m in dict.fromkeys(p for c in suite.cells for p in c.spec.protocols) if m in present]
    order += sorted(present - set(order))
    return next((m for m in order if metric_kind(df, m) == "fid"), order[0])


def _paper_of(suite: SuiteLike) -> PaperTable | None:
    if not suite.paper_table:
        return None
    tables = load_paper_tables()
    if suite.paper_table not in tables:
        raise BenchError(
            f"suite {suite.name!r}: paper_table {suite.paper_table!r} is not in bench/{PAPER_TABLES} "
            f"(has {', '.join(tables)})"
        )
    return tables[suite.paper_table]


def build_table(
    suite: SuiteLike,
    df: pd.DataFrame,
    *,
    selection: str = "best",
    metric: str | None = None,
    states: dict[str, str] | None = None,
) -> ReportTable:
    """Select, aggregate over seeds and pair with the published numbers; nothing is formatted yet."""
    if selection not in SELECTION_RULES:
        raise BenchError(f"selection {selection!r}: choose one of {', '.join(SELECTION_RULES)}")
    rows = suite_rows(suite, df)
    metric = metric or default_metric(suite, rows)
    if metric not in set(rows["metric"]):
        have = ", ".join(sorted(set(rows["metric"].dropna())))
        raise BenchError(f"--metric {metric}: not in the results of suite {suite.name!r} (have: {have})")
    kind = metric_kind(rows, metric)
    selected = select_runs(rows, metric, kind, selection)
    statuses = run_statuses(suite, df, states)
    paper = _paper_of(suite)
    compare = paper is not None and kind == "fid"
    report_rows = tuple(_report_row(suite, k, statuses, selected, paper if compare else None) for k in row_keys(suite))
    return ReportTable(
        suite=suite.name,
        metric=metric,
        kind=kind,
        selection=selection,
        datasets=tuple(suite.datasets),
        headers=tuple(paper.datasets.get(d, d) if paper else d for d in suite.datasets),
        image_numbers=tuple(image_number(d, paper, rows) for d in suite.datasets),
        rows=report_rows,
        paper=paper,
        compare=compare,
        protocol=protocol_text(rows[rows["metric"] == metric], metric),
        summary=_summary(suite.name, statuses),
    )


def _report_row(
    suite: SuiteLike,
    key: tuple[str, str],
    statuses: dict[str, str],
    selected: pd.DataFrame,
    paper: PaperTable | None,
) -> ReportRow:
    cells = [c for c in suite.cells if (c.group, c.label) == key]
    models = {c.spec.model for c in cells}
    budgets = {c.spec.budget_hours for c in cells}
    model = models.pop() if len(models) == 1 else None
    budget = budgets.pop() if len(budgets) == 1 else None
    results, published = [], []
    for dataset in suite.datasets:
        results.append(cell_result([c.spec.run_id for c in row_cells(suite, key, dataset)], statuses, selected))
        published.append(paper.value(model, dataset, budget) if paper and model else None)
    return ReportRow(key[0], key[1], model, tuple(results), tuple(published))
