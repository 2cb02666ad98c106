"""A suite's study over seeds (:class:`bench.plan.studies.Study`): per-row statistics, the rows tied
with the best, comparisons of row pairs and a verdict per claim, all computed from the collected
results (formatted by :mod:`bench.report.study_render`).

**Which value of a run.** ``selection = "last"`` (the default) takes each run's last evaluation
within its budget: the number the budget buys. The paper's rule, the best of a run's evaluations
(``"best"``), picks the minimum of several noisy measurements and so is biased low, the more the
more evaluations a run has (a row evaluated more often looks better); a study may still ask for it,
and its outputs then say so. ``"mean-last-K"`` averages the last K evaluations, which halves part of
the evaluation noise at the cost of mixing in slightly earlier snapshots.

**Which runs count.** Only finished runs (status ``done``) give a value. A diverged run is not
averaged in (it has no final value) but is counted and named beside its cell and in the verdicts;
pending, running or failed runs are missing seeds: every cell and verdict says how many seeds it
rests on out of how many the suite plans.

**Multiple claims.** The claims' tests on every dataset form one family corrected with Holm–Bonferroni
(:func:`bench.report.stats.holm`); a verdict is "supported" or "contradicted" only when its adjusted p
is below alpha. The comparison table and the ties with the best are not corrected (they describe;
leaving them uncorrected shows more ties, never fewer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from bench.errors import BenchError
from bench.plan.studies import Claim, Study
from bench.report import gain
from bench.report.selection import ProtocolKey, protocols_of, select_runs
from bench.report.stats import BestGroup, Comparison, Summary, best_group, compare, holm, summarize, verdict
from bench.report.study_spread import Spread, spreads
from bench.report.tables import (
    SuiteLike,
    default_metric,
    metric_kind,
    nonstandard_detectors,
    num_gen_of,
    run_statuses,
    suite_detectors,
    suite_rows,
)
from bench.report.words import digits_for, metric_name, protocol_text


class StudySuite(SuiteLike, Protocol):
    """What the study reads of a suite (:class:`bench.plan.suites.Suite`)."""

    study: Study | None


@dataclass(frozen=True)
class StudyCell:
    """One row on one dataset: the selected value of each finished seed."""

    values: dict[int, float]  # seed -> value
    planned: int  # seeds the suite runs in this cell
    diverged: int = 0  # seeds whose run diverged (no value)
    unscored: int = 0  # seeds whose run finished without an evaluation of this metric within its budget
    flat: bool = False  # some seed's value is not clearly better than its step-0 value (bench.report.gain)
    stale: str = ""  # what changed in the model since some seed's run was built (bench.report.stale)

    @property
    def n(self) -> int:
        return len(self.values)

    def summary(self, alpha: float) -> Summary | None:
        """Mean, std and t-interval over the finished seeds (None without any)."""
        return summarize(list(self.values.values()), alpha) if self.values else None


@dataclass(frozen=True)
class StudyRow:
    """One model of the suite (a row of the paper's Table 1 layout)."""

    model: str
    label: str
    cells: tuple[StudyCell, ...]  # in the suite's dataset order


@dataclass(frozen=True)
class StudyTable:
    """One metric over rows x datasets, with the group tied with the best per dataset."""

    metric: str
    kind: str  # 'fid', 'kid' or 'pr'
    datasets: tuple[str, ...]
    rows: tuple[StudyRow, ...]
    best: tuple[BestGroup, ...]  # per dataset; keys are model names
    detectors: tuple[str, ...]
    nonstandard: tuple[str, ...]  # detectors among them not standard for this metric
    protocol: str
    digits: int  # decimals printed (bench.report.words.digits_for at the best mean)
    key: ProtocolKey | None = None  # the protocol of every number in the table
    seeds: tuple[int, ...] = ()  # the seeds the suite plans

    @property
    def lower_is_better(self) -> bool:
        return self.kind != "pr"

    @property
    def unit(self) -> str:
        """'FID', 'KID ×10³', 'precision' or 'recall'."""
        return metric_name(self.metric, self.kind) + (" ×10³" if self.kind == "kid" else "")


@dataclass(frozen=True)
class PairResult:
    """Row ``a`` against row ``b`` on one dataset: ``a − b`` (a is the row claimed or expected better)."""

    a: str
    b: str
    dataset: str
    comparison: Comparison
    diverged: tuple[int, int] = (0, 0)  # diverged seeds of a and of b
    planned: tuple[int, int] = (0, 0)  # seeds the suite plans for a and for b


@dataclass(frozen=True)
class ClaimResult:
    """A claim's verdict on one dataset."""

    claim: Claim
    pair: PairResult
    adjusted_p: float | None  # Holm over the family of claim tests (None: not tested)
    family: int  # tests in that family
    verdict: str


@dataclass(frozen=True)
class StudyResult:
    """Everything the study's outputs print."""

    suite: str
    study: Study
    labels: dict[str, str]  # model -> row label
    tables: tuple[StudyTable, ...]  # the study's metric first
    pairs: tuple[PairResult, ...]
    claims: tuple[ClaimResult, ...]
    summary: str  # cells done / planned
    spread: tuple[Spread, ...] = ()  # the evaluation's spread beside the one over seeds (main metric)
    notes: tuple[str, ...] = ()  # sentences under every table: the compute budget, modules the resolution changes

    @property
    def selection_short(self) -> str:
        """Which evaluation of each run the numbers are, in a few words (captions)."""
        if self.study.selection == "best":
            return "each run's best evaluation (biased low)"
        if self.study.last_k:
            return f"mean of each run's last {self.study.last_k} evaluations"
        return "each run's last evaluation"

    @property
    def selection_text(self) -> str:
        """Which evaluation of each run the numbers are, in words."""
        if self.study.selection == "best":
            return (
                "the best of each run's evaluations within its budget (biased low: the minimum of noisy measurements)"
            )
        if self.study.last_k:
            return f"the mean of each run's last {self.study.last_k} evaluations within its budget"
        return "each run's last evaluation within its budget"

    @property
    def main(self) -> StudyTable:
        """The table of the metric comparisons and verdicts use."""
        return self.tables[0]


def run_values(rows: pd.DataFrame, kind: str, study: Study) -> pd.DataFrame:
    """One row per run (index ``run_id``) from the rows of one protocol, with the study's value in
    ``value`` (see the module docstring) and the columns of the run's selected evaluation."""
    if study.selection == "best" or not study.last_k:
        return select_runs(rows, kind, study.selection)
    last = select_runs(rows, kind, "last")
    within = rows[rows["run_id"].isin(last.index) & rows["value"].notna()]
    within = within[~(within["eval_point"] > 1 + 1e-9) & ~gain.is_step0(within["eval_point"])]
    ordered = within.sort_values(["run_id", "eval_point"], kind="mergesort")
    last["value"] = ordered.groupby("run_id").tail(study.last_k).groupby("run_id")["value"].mean()
    return last


def _metrics(suite: SuiteLike, rows: pd.DataFrame, first: str) -> list[str]:
    """``first``, then the other metrics present, in the order of the suite's protocols."""
    order = list(dict.fromkeys(p for c in suite.cells for p in c.spec.protocols))
    present = sorted(set(rows["metric"].dropna()) - {first})

    def rank(metric: str) -> int:
        return next((i for i, p in enumerate(order) if metric == p or metric.startswith(p + "_")), len(order))

    return [first, *sorted(present, key=rank)]


def _cell(suite: SuiteLike, model: str, dataset: str, selected: pd.DataFrame, ctx: _Context) -> StudyCell:
    cells = [c for c in suite.cells if c.spec.model == model and c.spec.dataset == dataset]
    values, diverged, unscored = {}, 0, 0
    for c in cells:
        rid = c.spec.run_id
        status = ctx.statuses.get(rid, "todo")
        diverged += status == "diverged"
        if status == "done" and rid in selected.index:
            values[c.spec.seed] = float(selected.loc[rid, "value"])
        unscored += status == "done" and rid not in selected.index
    flat = any(c.spec.run_id in ctx.flat for c in cells if c.spec.seed in values)
    return StudyCell(values, len(cells), diverged, unscored, flat)


@dataclass(frozen=True)
class _Context:
    statuses: dict[str, str]
    flat: set[str]


def own_protocol(suite: SuiteLike, rows: pd.DataFrame, metric: str) -> ProtocolKey | None:
    """The protocol of ``metric`` scored with the suite's own detector (``eval.detector`` / ``pr_detector``,
    or the ``--detector`` flags), never another one re-scoring added; None when there is none."""
    declared = suite_detectors(suite, metric_kind(rows, metric))
    return next((k for k in protocols_of(rows, metric, declared) if k.detector in declared), None)


def _table(
    suite: StudySuite, rows: pd.DataFrame, key: ProtocolKey, study: Study, statuses: dict[str, str]
) -> StudyTable:
    metric = str(key.metric)
    kind = metric_kind(rows, metric)
    mine = key.rows(rows)
    selected = run_values(mine, kind, study)
    selected = selected[selected.index.isin([r for r, s in statuses.items() if s == "done"])]
    detectors = (key.detector,)
    flat = gain.flat_runs(selected, gain.step0_of(selected, mine), kind)
    ctx = _Context(statuses, flat)
    models = list(dict.fromkeys(c.spec.model for c in suite.cells))
    labels = {c.spec.model: c.label for c in suite.cells}
    out = tuple(
        StudyRow(m, labels[m], tuple(_cell(suite, m, d, selected, ctx) for d in suite.datasets)) for m in models
    )
    best = tuple(
        best_group({r.model: r.cells[j].values for r in out}, lower_is_better=kind != "pr", test=study.test,
                   alpha=study.alpha, never_best=frozenset(r.model for r in out if r.cells[j].flat))
        for j in range(len(suite.datasets))
    )  # fmt: skip
    means = [s.mean for r in out for c in r.cells if (s := c.summary(study.alpha)) is not None]
    top = (max if kind == "pr" else min)(means, default=None)
    return StudyTable(
        metric, kind, tuple(suite.datasets), out, best, detectors, nonstandard_detectors(selected),
        protocol_text(mine, metric), digits_for(kind, num_gen_of(key), best=top), key,
        tuple(sorted({c.spec.seed for c in suite.cells})),
    )  # fmt: skip


def _pair(table: StudyTable, a: str, b: str, dataset: str, study: Study) -> PairResult:
    j = table.datasets.index(dataset)
    rows = {r.model: r.cells[j] for r in table.rows}
    none = StudyCell({}, 0)
    ca, cb = rows.get(a, none), rows.get(b, none)
    comparison = compare(ca.values, cb.values, study.test, study.alpha)
    return PairResult(a, b, dataset, comparison, (ca.diverged, cb.diverged), (ca.planned, cb.planned))


def _claims(table: StudyTable, study: Study) -> tuple[ClaimResult, ...]:
    """Every claim on every dataset; Holm over the tests that could be made."""
    pairs = [(c, _pair(table, c.better, c.than, d, study)) for c in study.claims for d in table.datasets]
    tested = {i: p.comparison.p for i, (_, p) in enumerate(pairs) if p.comparison.p is not None}
    adjusted = dict(zip(tested, holm(list(tested.values())), strict=True))
    out = []
    for i, (claim, pair) in enumerate(pairs):
        adj = adjusted.get(i)
        word = verdict(pair.comparison, adj, lower_is_better=table.lower_is_better, alpha=study.alpha)
        out.append(ClaimResult(claim, pair, adj, len(tested), word))
    return tuple(out)


def build_study(
    suite: StudySuite, df: pd.DataFrame, *, states: dict[str, str] | None = None, noise: pd.DataFrame | None = None
) -> StudyResult:
    """The study of ``suite`` from the collected results ``df`` (states: run_id -> status, else the
    table's ``status`` column; ``noise``: re-scored snapshots, :func:`bench.results.collect.collect_eval_noise`);
    BenchError when the suite declares no study or has no results."""
    study = suite.study
    if study is None:
        raise BenchError(f"suite {suite.name!r} declares no [study]; add one (see bench/plan/studies.py)")
    rows = suite_rows(suite, df)
    metric = study.metric or default_metric(suite, rows)
    if metric not in set(rows["metric"]):
        have = ", ".join(sorted(set(rows["metric"].dropna())))
        raise BenchError(f"suite {suite.name!r}: study.metric {metric} is not in its results yet (have: {have})")
    statuses = run_statuses(suite, df, states)
    keys = {m: own_protocol(suite, rows, m) for m in _metrics(suite, rows, metric)}
    if keys[metric] is None:
        detectors = ", ".join(suite_detectors(suite, metric_kind(rows, metric)))
        raise BenchError(
            f"suite {suite.name!r}: no {metric} scored with its detector {detectors} yet (other detectors' "
            "numbers are another protocol); pass --detector NAME to study the runs re-scored with NAME"
        )
    tables = tuple(_table(suite, rows, k, study, statuses) for k in keys.values() if k is not None)
    main = tables[0]
    pairs = tuple(_pair(main, a, b, d, study) for a, b in study.pairs() for d in main.datasets)
    done = sum(s == "done" for s in statuses.values())
    return StudyResult(
        suite=suite.name,
        study=study,
        labels={c.spec.model: c.label for c in suite.cells},
        tables=tables,
        pairs=pairs,
        claims=_claims(main, study),
        summary=f"{suite.name}: {done}/{len(statuses)} runs done",
        spread=_spread(main, rows, noise, study.alpha),
    )


def _spread(table: StudyTable, rows: pd.DataFrame, noise: pd.DataFrame | None, alpha: float) -> tuple[Spread, ...]:
    """The evaluation's spread beside the one over seeds, per re-scored run of the main table's rows."""
    if noise is None or table.key is None:
        return ()
    stds = {}
    for r in table.rows:
        for dataset, cell in zip(table.datasets, r.cells, strict=True):
            s = cell.summary(alpha)
            if s is not None:
                stds[(r.model, dataset)] = (s.std, s.n)
    return spreads(table.key, rows, noise, stds)
