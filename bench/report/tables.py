"""Collected results -> a :class:`ReportTable` per protocol: selection within budget (through
:mod:`bench.report.selection`: one protocol per table), aggregation over seeds, the step-0 check, the
digits the sample size supports, and the published numbers beside ours. Nothing is formatted here
(see :mod:`bench.report.render`).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from bench.errors import BenchError
from bench.plan import names
from bench.plan.compute import budget_multiple
from bench.plan.specs import RunSpec
from bench.report import gain
from bench.report.budgets import compute_note
from bench.report.paper import PAPER_TABLES, PaperRow, PaperTable, load_paper_tables, printed_beside
from bench.report.recipes import grouped, recipe_text, row_length
from bench.report.selection import SELECTION_RULES, ProtocolKey, mixed_runs, protocols_of, select_runs
from bench.report.structure import structure_note
from bench.report.words import budget_words, digits_for, fmt_number, protocol_text
from bench.results.collect import unreadable_runs
from bench.results.rows import kind_of

# a cell shows the first present; 'mixed': a run's rows of this protocol were sampled or referenced differently
_NOT_DONE = ("unreadable", "mixed", "diverged", "failed", "running", "pending", "missing")


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
    reference_gpu: str | None
    reading: str  # how the rows read the paper where it is silent ("" when the suite says nothing)


def metric_kind(df: pd.DataFrame, metric: str) -> str:
    """'fid', 'kid' or 'pr' (from the ``kind`` column, else from the metric's name)."""
    kinds = df.loc[df["metric"] == metric, "kind"].dropna() if "kind" in df.columns else []
    return str(kinds.iloc[0]) if len(kinds) else kind_of({"metric": metric})


def run_statuses(suite: SuiteLike, df: pd.DataFrame, states: dict[str, str] | None = None) -> dict[str, str]:
    """Status of each suite cell's run: 'unreadable' when collect could not use it, else ``states``, then the
    results table, else 'todo'."""
    known = dict(zip(df["run_id"], df["status"], strict=True)) if "status" in df.columns else {}
    known |= (states or {}) | {r: "unreadable" for r in unreadable_runs(df)}
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
    stale: str = ""  # what changed in the model since some seed's run was built (bench.report.stale.mark_stale)

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
    multiple: float = 1.0  # its budget in multiples of the suite's compute budget: ranked only at 1


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
    protocol: str  # the protocol in words (protocol_text)
    summary: str
    key: ProtocolKey  # what every number of the table shares
    main: bool  # scored with the suite's own detector (the table named <suite>-<metric>); else another table
    digits: int  # decimals printed (digits_for)
    num_gen: int | None  # generated images per evaluation
    budget: str  # the cells' training budgets in words (budget_words)
    seeds: int  # runs per cell (the most of any cell)
    mixed: tuple[str, ...] = ()  # runs left out: their rows of this protocol differ in sampling or reference
    lengths: str = ""  # how long each row trained: 'label: 20 h; label: 300 kimg (pinned)' (bench.report.recipes)
    recipes: str = ""  # each comparison row's source per setting group, in one line per row
    reading: str = ""  # the suite's reading of the paper where it is silent
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

    @property
    def stem(self) -> str:
        """File name stem: ``<suite>-<metric>[-last]``, plus the detector and the protocol's digest for a
        table of another detector than the suite's."""
        stem = f"{self.suite}-{self.metric}" + ("" if self.selection == "best" else f"-{self.selection}")
        return stem if self.main else f"{stem}-{self.key.slug}"

    def best_rows(self, j: int) -> set[int]:
        """Rows holding the best value of column ``j`` (ties by printed value); a cell flagged by the step-0
        check, a stale one, or one of a row at a multiple of the suite's budget is never the best, and a
        column with one number at the suite's budget (the others missing) has none: compared with nothing."""
        if sum(r.cells[j].status == "done" and r.multiple == 1 for r in self.rows) < 2:
            return set()
        shown = {
            i: fmt_number(r.cells[j].mean, self.kind, self.digits)
            for i, r in enumerate(self.rows)
            if r.cells[j].status == "done" and not r.cells[j].flat and not r.cells[j].stale and r.multiple == 1
        }
        if not shown:
            return set()
        pick = min if self.lower_is_better else max
        best = pick(shown.values(), key=float)
        return {i for i, text in shown.items() if text == best}


def row_keys(suite: SuiteLike) -> list[tuple[str, str]]:
    """(group, label) of the rows, in order of first appearance in the suite, the rows at a multiple of its
    compute budget last (set apart: never ranked with the others)."""
    apart = {(c.group, c.label) for c in suite.cells if budget_multiple(c.spec) != 1}
    return sorted(dict.fromkeys((c.group, c.label) for c in suite.cells), key=lambda k: k in apart)


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
    return names.registry()["paper_counts"].get(dataset)


def suite_rows(suite: SuiteLike, df: pd.DataFrame) -> pd.DataFrame:
    """The results rows of the suite's runs; BenchError when there are none, or none readable."""
    if df.empty or "run_id" not in df.columns:
        run = f"python run_bench.py run --suite {suite.name}"
        raise BenchError(f"no results for suite {suite.name!r} yet; run `{run}` first")
    mine = df[df["run_id"].isin({c.spec.run_id for c in suite.cells})]
    if mine.empty:
        raise BenchError(
            f"none of the {df['run_id'].nunique()} runs in the results belong to suite {suite.name!r} as "
            "loaded; pass the options used with `run` (--budget-scale, --speed-ratio, --calibration, --init-from, "
            "--detector)"
        )
    if "metric" not in mine.columns or mine["metric"].isna().all():
        why = list(unreadable_runs(mine).values())
        if why:
            raise BenchError(
                f"suite {suite.name!r}: no readable evaluation row; {len(why)} run(s) unreadable: {why[0]}"
            )
        raise BenchError(f"suite {suite.name!r}: no evaluation row yet; its runs evaluate at the end of their budget")
    if "value" not in mine.columns:
        raise BenchError("results table lacks the column value; collect it with bench.results")
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


def build_tables(
    suite: SuiteLike,
    df: pd.DataFrame,
    *,
    selection: str = "best",
    metric: str | None = None,
    states: dict[str, str] | None = None,
    detector: str | None = None,
) -> list[ReportTable]:
    """One table per protocol of ``metric`` in the suite's results (:func:`bench.report.selection.protocols_of`):
    the suite's own detector's first; ``detector``: only the tables of rows scored with it."""
    if selection not in SELECTION_RULES:
        raise BenchError(f"selection {selection!r}: choose one of {', '.join(SELECTION_RULES)}")
    rows = suite_rows(suite, df)  # some evaluation row of the suite's runs is readable
    metric = metric or default_metric(suite, rows)
    if metric not in set(rows["metric"].dropna()):
        have = ", ".join(sorted(set(rows["metric"].dropna())))
        raise BenchError(f"--metric {metric}: not in the results of suite {suite.name!r} (have: {have})")
    declared = suite_detectors(suite, metric_kind(rows, metric))
    found = [p for p in protocols_of(rows, metric, declared) if detector is None or p.detector == detector]
    if not found:
        raise BenchError(f"--detector {detector}: no {metric} row of suite {suite.name!r} was scored with it; "
                         "score the runs with `run_bench.py eval --run RUN --detector ...`")  # fmt: skip
    return [_build(suite, df, rows, p, selection, states, main=i == 0 and p.detector in declared)
            for i, p in enumerate(found)]  # fmt: skip


def build_table(
    suite: SuiteLike,
    df: pd.DataFrame,
    *,
    selection: str = "best",
    metric: str | None = None,
    states: dict[str, str] | None = None,
) -> ReportTable:
    """The table of the suite's own detector (else the first protocol found): :func:`build_tables`' first."""
    return build_tables(suite, df, selection=selection, metric=metric, states=states)[0]


def _build(
    suite: SuiteLike, df: pd.DataFrame, rows: pd.DataFrame, key: ProtocolKey, selection: str,
    states: dict[str, str] | None, *, main: bool,
) -> ReportTable:  # fmt: skip
    """Select, aggregate over seeds, check against step 0 and pair with the published numbers of the
    same protocol; nothing is formatted yet."""
    mine = key.rows(rows)
    kind, metric, paper = metric_kind(mine, key.metric), key.metric, _paper_of(suite)
    selected = select_runs(mine, kind, selection)
    starts = gain.step0_of(selected, mine)
    mixed = tuple(sorted(mixed_runs(mine) & {c.spec.run_id for c in suite.cells}))
    statuses = run_statuses(suite, df, states) | dict.fromkeys(mixed, "mixed")
    ctx = _RowContext(statuses, selected, starts, gain.flat_runs(selected, starts, kind), paper, metric, kind,
                      {key.detector})  # fmt: skip
    unaligned = tuple(r for r in paper.unaligned if printed_beside(r, metric, ctx.detectors)) if paper else ()
    num_gen = num_gen_of(key)
    spread = (
        float(selected["std"].max()) if kind == "kid" and "std" in selected and selected["std"].notna().any() else None
    )
    keys = row_keys(suite)
    table_rows = tuple(_report_row(suite, k, ctx) for k in keys)
    return ReportTable(
        suite=suite.name,
        metric=metric,
        kind=kind,
        selection=selection,
        datasets=tuple(suite.datasets),
        headers=tuple(paper.datasets.get(d, d) if paper else d for d in suite.datasets),
        image_numbers=tuple(image_number(d, mine) for d in suite.datasets),
        paper_image_numbers=tuple(paper_image_number(d, paper) for d in suite.datasets),
        rows=table_rows,
        paper=paper,
        detectors=(key.detector,),
        unaligned_paper=unaligned,
        protocol=protocol_text(mine, metric),
        summary=_summary(suite.name, statuses),
        key=key,
        main=main,
        digits=digits_for(kind, num_gen, spread=spread, best=_best(selected, kind)),
        num_gen=num_gen,
        budget=budget_words(suite.cells, suite.reference_gpu),
        seeds=max((c.runs for r in table_rows for c in r.cells), default=1),
        mixed=mixed,
        lengths=grouped({k[1]: row_length([c.spec for c in suite.cells if (c.group, c.label) == k]) for k in keys}),
        recipes=grouped({k[1]: recipe_text(_row_model(suite, k)) for k in keys}),
        reading=suite.reading,
        notes=tuple(n for n in (compute_note(suite.cells), structure_note(suite)) if n),
    )


def _best(selected: pd.DataFrame, kind: str) -> float | None:
    """The best selected value (the smallest FID or KID): the digits are sized by its noise."""
    values = selected["value"].dropna()
    return None if values.empty or kind == "pr" else float(values.abs().min())


def num_gen_of(key: ProtocolKey) -> int | None:
    """Generated images per evaluation: the rows', else (rows written before they said) the protocol's."""
    if key.get("num_gen"):
        return int(key.get("num_gen"))
    from bench.metrics.protocols import PROTOCOLS

    protocol = PROTOCOLS.get(key.metric.removesuffix("_precision").removesuffix("_recall"))
    return protocol.num_gen if protocol is not None else None


def suite_detectors(suite: SuiteLike, kind: str) -> tuple[str, ...]:
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


def _row_model(suite: SuiteLike, key: tuple[str, str]) -> str | None:
    """The one model of row ``key`` (None when the row mixes models)."""
    models = {c.spec.model for c in suite.cells if (c.group, c.label) == key}
    return models.pop() if len(models) == 1 else None


def _report_row(suite: SuiteLike, key: tuple[str, str], ctx: _RowContext) -> ReportRow:
    cells = [c for c in suite.cells if (c.group, c.label) == key]
    budgets = {c.spec.budget_hours for c in cells}
    model = _row_model(suite, key)
    budget = budgets.pop() if len(budgets) == 1 else None
    kimg = _pinned_kimg(cells)
    published = ctx.paper.row_for(model, budget, kimg) if ctx.paper and model else None
    compared = printed_beside(published, ctx.metric, ctx.detectors)
    results, values = [], []
    for dataset in suite.datasets:
        run_ids = [c.spec.run_id for c in row_cells(suite, key, dataset)]
        cell = cell_result(run_ids, ctx.statuses, ctx.selected, ctx.starts, ctx.flat)
        results.append(cell)
        values.append(_published(ctx.paper, model, dataset, budget, cell, kimg) if compared else None)
    absent = _absent_reason(ctx, published, model, budget) if not compared else ""
    multiple = budget_multiple(cells[0].spec)  # a row's cells share it (one suite table)
    return ReportRow(key[0], key[1], model, tuple(results), tuple(values), published, compared, absent, multiple)


def _pinned_kimg(cells: Sequence[CellLike]) -> dict[str, float] | None:
    """{dataset: kimg} when every cell of a row is pinned to a length in kimg (budget scale applied), else None."""
    if not cells or any(c.spec.budget_pin != "kimg" or c.spec.max_kimg is None for c in cells):
        return None
    return {c.spec.dataset: c.spec.max_kimg * c.spec.budget_scale for c in cells}


def _published(
    paper: PaperTable, model: str, dataset: str, budget: float | None, cell: CellResult, kimg: dict[str, float] | None
) -> float | str:
    """The published value beside a compared cell (its row has a paper row), or why there is none."""
    if cell.nonstandard:
        return "non-standard detector"  # a non-standard number never gets a published one beside it
    value = paper.value(model, dataset, budget, kimg)
    return value if value is not None else paper.absent_reason(model, dataset, budget)


def _absent_reason(ctx: _RowContext, published: PaperRow | None, model: str | None, budget: float | None) -> str:
    """Why a row gets no published numbers beside it: no such row in the paper, or another evaluation."""
    if ctx.paper is None or ctx.kind != "fid":
        return ""
    if published is None:
        return ctx.paper.absent_reason(model, None, budget)
    return f"published as {published.source.protocol} with {published.source.detector}"
