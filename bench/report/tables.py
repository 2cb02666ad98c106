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
from bench.report import gain
from bench.report.budgets import compute_note
from bench.report.paper import PAPER_TABLES, PaperRow, PaperTable, load_paper_tables, printed_beside
from bench.report.structure import structure_note

SELECTION_RULES = {
    "best": "best {name} within the training budget over evaluations (the paper's rule)",
    "last": "{name} at the last evaluation within the training budget",
}
_NOT_DONE = ("unreadable", "diverged", "failed", "running", "pending", "missing")  # a cell shows the first present


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
    """One row per run (index ``run_id``): its best, or last, evaluation of ``metric`` within budget,
    after training began (the step-0 evaluation is the baseline of :mod:`bench.report.gain`, never picked)."""
    rows = df[(df["metric"] == metric) & df["value"].notna()]
    rows = rows[~(rows["eval_point"] > 1 + 1e-9) & ~gain.is_step0(rows["eval_point"])]
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
    unreadable = f", {n['unreadable']} unreadable" if n["unreadable"] else ""
    return (
        f"{name}: {n['done']}/{len(statuses)} cells done ({n['running']} running, {n['todo']} pending, "
        f"{n['failed']} failed, {n['diverged']} diverged{unreadable})"
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
    step0: float | None = None  # mean step-0 value over the seeds that have one (bench.report.gain)
    flat: bool = False  # some seed's value is not clearly better than its step-0 value

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds; None for a single seed."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None


def cell_result(
    run_ids: Sequence[str],
    statuses: dict[str, str],
    selected: pd.DataFrame,
    starts: dict[str, float] | None = None,  # run_id -> step-0 value (bench.report.gain.step0_of)
    flat: set[str] | frozenset[str] = frozenset(),  # runs not clearly better than their step 0
) -> CellResult:
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
    begun = [starts[r] for r in run_ids if starts and r in starts]
    step0 = statistics.fmean(begun) if begun else None
    judged = bool(flat.intersection(run_ids))
    return CellResult("done", n, n, values, detectors, nonstandard_detectors(rows), devices, step0, judged)


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
    paper: tuple[float | str | None, ...]  # published value, or why none, per column; None: not compared
    published: PaperRow | None = None  # the paper's row for this model and budget, comparable or not
    compared: bool = False  # its source's protocol and detector are this table's: values and Δ printed
    absent: str = ""  # why no published numbers are printed beside this row ("" when they are, or no paper)


@dataclass(frozen=True)
class ReportTable:
    """Everything the renderers print, already selected and aggregated."""

    suite: str
    metric: str
    kind: str
    selection: str
    datasets: tuple[str, ...]
    headers: tuple[str, ...]
    image_numbers: tuple[int | None, ...]  # of the prepared sets the runs used
    paper_image_numbers: tuple[int | None, ...]  # the paper's (registry's) counts; None: not a paper dataset
    rows: tuple[ReportRow, ...]
    paper: PaperTable | None  # the suite's published table
    detectors: tuple[str, ...]  # the detectors the suite's cells score this metric with
    unaligned_paper: tuple[PaperRow, ...]  # unaligned published rows of this protocol and detector (printed)
    protocol: str
    summary: str
    notes: tuple[str, ...] = ()  # caption sentences: the compute budget, modules the resolution changes

    @property
    def lower_is_better(self) -> bool:
        return self.kind != "pr"

    @property
    def has_groups(self) -> bool:
        return any(r.group for r in self.rows)

    @property
    def aligned_paper(self) -> bool:
        """Some row prints published values and differences beside ours."""
        return any(r.compared for r in self.rows)

    @property
    def paper_rows(self) -> tuple[PaperRow, ...]:
        """The published rows this table concerns (beside our rows, or unaligned), compared or not."""
        beside = [r.published for r in self.rows if r.published is not None]
        return tuple(dict.fromkeys([*beside, *(self.paper.unaligned if self.paper else ())]))

    @property
    def nonstandard_detectors(self) -> tuple[str, ...]:
        return tuple(sorted({d for r in self.rows for c in r.cells for d in c.nonstandard}))

    @property
    def any_flat(self) -> bool:
        """Some cell is not clearly better than its untrained generator (:mod:`bench.report.gain`)."""
        return any(c.flat for r in self.rows for c in r.cells)

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
        """Rows holding the best value of column ``j`` (ties by printed value); a cell flagged by the
        step-0 check is never the best."""
        shown = {
            i: fmt_number(r.cells[j].mean, self.kind)
            for i, r in enumerate(self.rows)
            if r.cells[j].status == "done" and not r.cells[j].flat
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


def image_number(dataset: str, rows: pd.DataFrame) -> int | None:
    """Images in the prepared set the runs used: the size of the full reference set of their
    evaluations (None before any evaluation)."""
    if {"dataset", "reference", "ref_count"} <= set(rows.columns):
        counts = rows.loc[(rows["dataset"] == dataset) & (rows["reference"] == "full"), "ref_count"].dropna()
        if len(counts):
            return int(counts.max())
    return None


def paper_image_number(dataset: str, paper: PaperTable | None) -> int | None:
    """Images the paper used: its table's image-number row, else the dataset registry's count."""
    if paper is not None and (count := paper.image_count(dataset)) is not None:
        return count
    try:
        return get_dataset_info(dataset).count
    except BenchError:
        return None


def protocol_text(rows: pd.DataFrame, metric: str) -> str:
    """Metric name plus detector, mode, generated images, reference (and its resize filter), weights
    and how each model was sampled (all values seen)."""
    parts = [metric]
    for column, template in (
        ("detector", "detector {}"), ("mode", "mode {}"), ("num_gen", "{} generated images"),
        ("reference", "reference {}"), ("ref_filter", "reference resized with {}"), ("weights", "{} weights"),
    ):  # fmt: skip
        values = sorted({_plain(v) for v in rows[column].dropna()}) if column in rows.columns else []
        if values:
            parts.append(template.format(" / ".join(values)))
    return ", ".join(parts + ([sampling_text(rows)] if "bn_mode" in rows.columns else []))


def sampling_text(rows: pd.DataFrame) -> str:
    """How the rows' generators were sampled, per model, e.g. 'sampling: BatchNorm batch (statistics:
    batch), generation batch 16 (fastgan); no BatchNorm, generation batch 32 (stylegan2-lite)'."""
    rows = rows.dropna(subset=["bn_mode"])
    models = rows["model"] if "model" in rows.columns else pd.Series("?", index=rows.index)
    stats = rows["bn_stats"] if "bn_stats" in rows.columns else rows["bn_mode"]
    batches = rows["gen_batch"] if "gen_batch" in rows.columns else pd.Series("?", index=rows.index)
    groups: dict[tuple[str, str, str], list[str]] = {}
    for model, bn, stat, batch in zip(models, rows["bn_mode"], stats, batches, strict=True):
        groups.setdefault((str(bn), str(stat), _plain(batch)), []).append(str(model))
    parts = []
    for (bn, stat, batch), names in sorted(groups.items()):
        how = "no BatchNorm" if bn == "none" else f"BatchNorm {bn} (statistics: {stat})"
        parts.append(f"{how}, generation batch {batch} ({', '.join(sorted(set(names)))})")
    return "sampling: " + "; ".join(parts)


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
            "loaded; pass the options used with `run` (--budget-scale, --speed-ratio, --calibration, --init-from, "
            "--detector)"
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
    """Select, aggregate over seeds, check against step 0 and pair with the published numbers of the
    same protocol and detector; nothing is formatted yet."""
    if selection not in SELECTION_RULES:
        raise BenchError(f"selection {selection!r}: choose one of {', '.join(SELECTION_RULES)}")
    rows = suite_rows(suite, df)
    metric = metric or default_metric(suite, rows)
    if metric not in set(rows["metric"]):
        have = ", ".join(sorted(set(rows["metric"].dropna())))
        raise BenchError(f"--metric {metric}: not in the results of suite {suite.name!r} (have: {have})")
    kind = metric_kind(rows, metric)
    selected = select_runs(rows, metric, kind, selection)
    starts, detectors, paper = gain.step0_of(selected, rows, metric), _suite_detectors(suite, kind), _paper_of(suite)
    ctx = _RowContext(
        run_statuses(suite, df, states), selected, starts, gain.flat_runs(selected, starts, kind), paper, metric,
        kind, set(detectors),
    )  # fmt: skip
    unaligned = tuple(r for r in paper.unaligned if printed_beside(r, metric, ctx.detectors)) if paper else ()
    return ReportTable(
        suite=suite.name,
        metric=metric,
        kind=kind,
        selection=selection,
        datasets=tuple(suite.datasets),
        headers=tuple(paper.datasets.get(d, d) if paper else d for d in suite.datasets),
        image_numbers=tuple(image_number(d, rows) for d in suite.datasets),
        paper_image_numbers=tuple(paper_image_number(d, paper) for d in suite.datasets),
        rows=tuple(_report_row(suite, k, ctx) for k in row_keys(suite)),
        paper=paper,
        detectors=detectors,
        unaligned_paper=unaligned,
        protocol=protocol_text(rows[rows["metric"] == metric], metric),
        summary=_summary(suite.name, ctx.statuses),
        notes=tuple(n for n in (compute_note(suite.cells), structure_note(suite)) if n),
    )


def _suite_detectors(suite: SuiteLike, kind: str) -> tuple[str, ...]:
    """The detectors the suite's cells score a metric of ``kind`` with (their specs say so before any result)."""
    return tuple(sorted({c.spec.pr_detector if kind == "pr" else c.spec.detector for c in suite.cells}))


@dataclass(frozen=True)
class _RowContext:
    """What every row of one table is built from."""

    statuses: dict[str, str]
    selected: pd.DataFrame
    starts: dict[str, float]  # run_id -> step-0 value
    flat: set[str]  # runs not clearly better than their step 0
    paper: PaperTable | None
    metric: str
    kind: str
    detectors: set[str]


def _report_row(suite: SuiteLike, key: tuple[str, str], ctx: _RowContext) -> ReportRow:
    cells = [c for c in suite.cells if (c.group, c.label) == key]
    models = {c.spec.model for c in cells}
    budgets = {c.spec.budget_hours for c in cells}
    model = models.pop() if len(models) == 1 else None
    budget = budgets.pop() if len(budgets) == 1 else None
    published = ctx.paper.row_for(model, budget) if ctx.paper and model else None
    compared = printed_beside(published, ctx.metric, ctx.detectors)
    results, values = [], []
    for dataset in suite.datasets:
        run_ids = [c.spec.run_id for c in row_cells(suite, key, dataset)]
        cell = cell_result(run_ids, ctx.statuses, ctx.selected, ctx.starts, ctx.flat)
        results.append(cell)
        values.append(_published(ctx.paper, model, dataset, budget, cell) if compared else None)
    absent = _absent_reason(ctx, published, model, budget) if not compared else ""
    return ReportRow(key[0], key[1], model, tuple(results), tuple(values), published, compared, absent)


def _published(paper: PaperTable, model: str, dataset: str, budget: float | None, cell: CellResult) -> float | str:
    """The published value beside a compared cell (its row has a paper row), or why there is none."""
    if cell.nonstandard:
        return "non-standard detector"  # a non-standard number never gets a published one beside it
    value = paper.value(model, dataset, budget)
    return value if value is not None else paper.absent_reason(model, dataset, budget)


def _absent_reason(ctx: _RowContext, published: PaperRow | None, model: str | None, budget: float | None) -> str:
    """Why a row gets no published numbers beside it: no such row in the paper, or another evaluation."""
    if ctx.paper is None or ctx.kind != "fid":
        return ""
    if published is None:
        return ctx.paper.absent_reason(model, None, budget)
    return f"published as {published.source.protocol} with {published.source.detector}"
