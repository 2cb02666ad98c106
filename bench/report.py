"""Collected results → paper-style tables (LaTeX booktabs, Markdown, CSV) and figures.

``python run_bench.py report --suite NAME`` ends in :func:`write_report`. The report reads only
the tidy table of :func:`bench.results.collect`, the runs' states and the files its rows name
(sample grids, snapshots); it never trains. Every number carries its selection rule and protocol
in the caption; numbers from a non-standard detector carry a † in every format; the published
numbers (``paper_tables.toml``, with their source) sit beside ours with the difference. All
formatting of results lives in this module; :mod:`bench.plots` only draws.
"""

from __future__ import annotations

import functools
import logging
import statistics
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from tabulate import tabulate

from bench import plots
from bench.datasets import get_dataset_info
from bench.errors import BenchError
from bench.io import atomic_write_text
from bench.results import RunPaths
from bench.specs import RunSpec

log = logging.getLogger(__name__)

PAPER_TABLES = "paper_tables.toml"  # package data of ``bench``
SELECTION_RULES = {
    "best": "best {name} within the training budget over evaluations (the paper's rule)",
    "last": "{name} at the last evaluation within the training budget",
}
UNALIGNED_TITLE = "paper (unaligned; column alignment unknown)"
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


# ----------------------------------------------------------------------------------------------
# The published numbers.


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

    def value(self, model: str, dataset: str, budget_hours: float | None) -> float | str | None:
        """The published value for our (model, dataset) at this budget; None when the paper has none."""
        if dataset not in self.datasets:
            return None
        j = self.columns.index(self.datasets[dataset])
        for row in self.rows:
            if row.aligned and row.model == model and row.budget_hours in (None, budget_hours):
                return row.values[j]
        return None

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
    text = resources.files("bench").joinpath(PAPER_TABLES).read_text(encoding="utf-8")
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


# ----------------------------------------------------------------------------------------------
# Metrics, selection and cell results.


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
    return CellResult("done", n, n, values, detectors, nonstandard_detectors(rows))


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


# ----------------------------------------------------------------------------------------------
# The table model.


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


# ----------------------------------------------------------------------------------------------
# What is shown, shared by the LaTeX and Markdown renderers.


@dataclass(frozen=True)
class Shown:
    """One printed cell: plain text, or a number with an optional ± part, bold and † marks."""

    text: str
    std: str | None = None
    number: bool = False
    bold: bool = False
    dagger: bool = False


@dataclass(frozen=True)
class Line:
    """One printed row of the main table."""

    role: str  # 'images', 'ours', 'paper' or 'delta'
    group: str  # printed only on a group's first row
    label: str
    cells: tuple[Shown, ...]
    rule: str = ""  # before the row: 'midrule', 'space' or ''


def caption_parts(table: ReportTable) -> list[tuple[str, bool]]:
    """The caption as (sentence, bold) pieces: measure, rule, protocol, comparison and markers."""
    name = metric_name(table.metric, table.kind)
    unit = " ×10³" if table.kind == "kid" else ""
    rule = SELECTION_RULES[table.selection].format(name=name)
    better = "lower" if table.lower_is_better else "higher"
    parts = [
        (f"{table.suite}: {name}{unit}, mean ± std over seeds (one seed: its value); {rule}.", False),
        (f"Protocol: {table.protocol}.", False),
        (f"Bold: best per column ({better} is better).", False),
    ]
    cite = f"{table.paper.cite}, Table {table.paper.key}" if table.paper is not None else ""
    if table.paper is not None and not table.compare:
        parts.append(("The paper reports FID only: no published numbers for this metric.", False))
    if table.aligned_paper:
        parts.append((f"Sub-rows: paper = published ({cite}); Δ = ours − paper; -- = not published.", False))
    if table.unaligned_paper:
        unaligned = f"Published numbers ({cite}) are unaligned in the source (six values for seven columns)"
        parts.append((f"{unaligned}: printed as given below the table, never placed into columns.", False))
    if table.nonstandard_detectors:
        parts.append(("Non-standard detector: not comparable to published numbers.", True))
        parts.append((legend(table.nonstandard_detectors) + ".", False))
    return parts


def legend(detectors: Sequence[str]) -> str:
    """The † legend naming the non-standard detectors."""
    return f"† non-standard detector ({', '.join(detectors)}): not comparable to published numbers"


def display_lines(table: ReportTable) -> list[Line]:
    """The main table's rows: image numbers, then each of our rows with its paper and Δ sub-rows."""
    images = tuple(Shown(str(n) if n is not None else "--") for n in table.image_numbers)
    lines = [Line("images", "", "Image number", images, "midrule")]
    best = [table.best_rows(j) for j in range(len(table.datasets))]
    previous: str | None = None
    for i, row in enumerate(table.rows):
        new_group = row.group != previous
        ours = tuple(_shown(c, table.kind, i in best[j]) for j, c in enumerate(row.cells))
        lines.append(Line("ours", row.group if new_group else "", row.label, ours, _rule(table, i, new_group)))
        previous = row.group
        if table.aligned_paper:
            lines.append(Line("paper", "", "paper", tuple(_paper_shown(v) for v in row.paper)))
            deltas = tuple(_delta_shown(c, v) for c, v in zip(row.cells, row.paper, strict=True))
            lines.append(Line("delta", "", "Δ (ours − paper)", deltas))
    return lines


def _rule(table: ReportTable, i: int, new_group: bool) -> str:
    """Before our row ``i``: a rule between groups, a little space between rows with sub-rows."""
    if i == 0 or (new_group and table.has_groups):
        return "midrule"
    return "space" if table.aligned_paper else ""


def _shown(cell: CellResult, kind: str, bold: bool) -> Shown:
    if cell.status == "absent":
        return Shown("--")
    if cell.status != "done":
        return Shown(cell.status + (f" ({cell.done}/{cell.runs} seeds done)" if cell.runs > 1 else ""))
    std = fmt_number(cell.std, kind) if cell.std is not None else None
    return Shown(fmt_number(cell.mean, kind), std, number=True, bold=bold, dagger=bool(cell.nonstandard))


def _paper_shown(value: float | str | None) -> Shown:
    if value is None:
        return Shown("--")
    return Shown(value) if isinstance(value, str) else Shown(f"{value:.2f}", number=True)


def _delta_shown(cell: CellResult, value: float | str | None) -> Shown:
    if cell.status != "done" or value is None or isinstance(value, str):
        return Shown("--")
    return Shown(fmt_delta(cell.mean - value), number=True, dagger=bool(cell.nonstandard))


# ----------------------------------------------------------------------------------------------
# LaTeX.

_LATEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}", "±": r"$\pm$", "Δ": r"$\Delta$", "−": r"$-$",
    "†": r"\dag{}", "×": r"$\times$", "³": r"$^3$",
}  # fmt: skip
_STANDALONE_HEAD = (
    r"\documentclass{article}",
    r"\usepackage[a4paper,landscape,margin=1.5cm]{geometry}",
    r"\usepackage{booktabs}",
    r"\pagestyle{empty}",
    r"\begin{document}",
)


def latex_escape(text: str) -> str:
    """Text safe in LaTeX (special characters and the few symbols the report uses)."""
    return "".join(_LATEX.get(ch, ch) for ch in text)


def _tex_cell(s: Shown) -> str:
    if not s.number:
        return latex_escape(s.text)
    body = s.text if s.std is None else f"{s.text} \\pm {s.std}"
    body = rf"\mathbf{{{body}}}" if s.bold else body
    return f"${body}$" + (r"\dag" if s.dagger else "")


def _tex_label(line: Line) -> str:
    return (r"\quad " if line.role in ("paper", "delta") else "") + latex_escape(line.label)


def _tex_row(cells: Sequence[str]) -> str:
    return " & ".join(cells) + r" \\"


def render_latex(table: ReportTable, *, standalone: bool = False) -> str:
    """A booktabs ``table`` float (or, ``standalone``, a whole document compiling with pdflatex)."""
    lead = 2 if table.has_groups else 1
    head = [""] * (lead - 1) + ["Model"] + [latex_escape(h) for h in table.headers]
    body = [r"\toprule", _tex_row(head)]
    for line in display_lines(table):
        body += {"midrule": [r"\midrule"], "space": [r"\addlinespace"]}.get(line.rule, [])
        cells = [latex_escape(line.group)] * (lead - 1) + [_tex_label(line)]
        body.append(_tex_row(cells + [_tex_cell(c) for c in line.cells]))
    body += _tex_unaligned(table, lead) + [r"\bottomrule"]
    caption = " ".join(
        rf"\textbf{{{latex_escape(t)}}}" if bold else latex_escape(t) for t, bold in caption_parts(table)
    )
    tex = [
        f"% {table.summary}",
        "% Generated by bench.report from the collected results; do not edit.",
        *([f"% Published numbers: {table.paper.source}"] if table.paper else []),
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\setlength{\tabcolsep}{4pt}",
        rf"\caption{{{caption}}}",
        rf"\label{{tab:{table.suite}-{table.metric}}}",
        rf"\begin{{tabular}}{{{'l' * lead}{'r' * len(table.datasets)}}}",
        *body,
        r"\end{tabular}",
        r"\end{table}",
    ]
    if standalone:
        tex = [*_STANDALONE_HEAD, *tex, r"\end{document}"]
    return "\n".join(tex) + "\n"


def _tex_unaligned(table: ReportTable, lead: int) -> list[str]:
    """Table B's published values, as given and flagged, spanning the columns (never in them)."""
    if not table.unaligned_paper:
        return []
    n = len(table.datasets)
    title = latex_escape(f"{UNALIGNED_TITLE}: values in the source's order")
    out = [r"\midrule", rf"\multicolumn{{{lead + n}}}{{l}}{{\textit{{{title}}}}} \\"]
    for row in table.unaligned_paper:
        values = latex_escape(", ".join(str(v) for v in row.values))
        out.append(_tex_row([""] * (lead - 1) + [latex_escape(row.label), rf"\multicolumn{{{n}}}{{l}}{{{values}}}"]))
    return out


# ----------------------------------------------------------------------------------------------
# Markdown and CSV.


def _md_cell(s: Shown) -> str:
    text = s.text if s.std is None else f"{s.text} ± {s.std}"
    text = f"**{text}**" if s.bold else text
    return (text + " †" if s.dagger else text).replace("|", "\\|")


def _md_unaligned_note(paper: PaperTable) -> str:
    return (
        f"**{UNALIGNED_TITLE}**: {paper.cite}, Table {paper.key}; the source gives six values per row for "
        "seven columns, printed as given, in its order (v1..v6 are positions, not columns):"
    )


def _md_unaligned(rows: Sequence[PaperRow]) -> str:
    width = max(len(r.values) for r in rows)
    head = ["paper row", *(f"v{k}" for k in range(1, width + 1))]
    values = [[r.label, *(str(v) for v in r.values)] for r in rows]
    return tabulate(values, head, tablefmt="github", disable_numparse=True)


def render_markdown(table: ReportTable) -> str:
    """The same table as GitHub Markdown (tabulate), with caption, flags and the summary line."""
    lead = ["Group"] if table.has_groups else []
    head = [*lead, "Model", *table.headers]
    rows = [[*([ln.group] if lead else []), ln.label, *(_md_cell(c) for c in ln.cells)] for ln in display_lines(table)]
    caption = " ".join(f"**{t}**" if bold else t for t, bold in caption_parts(table))
    out = [
        "<!-- Generated by bench.report from the collected results; do not edit. -->",
        f"### {table.suite}: {table.metric}",
        "",
        caption,
        "",
        tabulate(rows, head, tablefmt="github", disable_numparse=True),
    ]
    if table.unaligned_paper and table.paper is not None:
        out += ["", _md_unaligned_note(table.paper), "", _md_unaligned(table.unaligned_paper)]
    if table.nonstandard_detectors:
        out += ["", legend(table.nonstandard_detectors)]
    if table.paper is not None:
        out += ["", f"Published numbers: {table.paper.source}"]
    return "\n".join([*out, "", table.summary]) + "\n"


_CSV_COLUMNS = (
    "suite", "metric", "selection", "source", "group", "label", "model", "dataset", "position",
    "image_number", "status", "seeds", "seeds_done", "value", "std", "text", "paper", "delta", "best",
    "detector", "detector_standard",
)  # fmt: skip


def table_csv(table: ReportTable) -> str:
    """The table in long form: one line per (row, dataset), plus unaligned published values."""
    records = [_csv_ours(table, i, j) for i in range(len(table.rows)) for j in range(len(table.datasets))]
    for row in table.unaligned_paper:
        records += [
            {
                "source": UNALIGNED_TITLE,
                "group": row.group,
                "label": row.label,
                "model": row.model,
                "dataset": "?",
                "position": k,
                "text": str(v),
            }
            for k, v in enumerate(row.values, start=1)
        ]
    frame = pd.DataFrame(records, columns=list(_CSV_COLUMNS))
    frame[["suite", "metric", "selection"]] = [table.suite, table.metric, table.selection]
    return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def _csv_ours(table: ReportTable, i: int, j: int) -> dict[str, Any]:
    row, cell, paper = table.rows[i], table.rows[i].cells[j], table.rows[i].paper[j]
    done = cell.status == "done"
    return {
        "source": "ours", "group": row.group, "label": row.label, "model": row.model,
        "dataset": table.datasets[j], "image_number": table.image_numbers[j],
        "status": cell.status, "seeds": cell.runs, "seeds_done": cell.done,
        "value": cell.mean if done else None, "std": cell.std if done else None,
        "text": _md_cell(_shown(cell, table.kind, False)),
        "paper": "" if paper is None else _paper_shown(paper).text,
        "delta": cell.mean - paper if done and isinstance(paper, int | float) else None,
        "best": i in table.best_rows(j) if done else None,
        "detector": ", ".join(cell.detectors) if done else None,
        "detector_standard": not cell.nonstandard if done else None,
    }  # fmt: skip


def write_tables(table: ReportTable, out_dir: Path, *, standalone: bool = False) -> list[Path]:
    """``<suite>-<metric>[-last]`` .tex, .md and .csv under ``out_dir``."""
    stem = f"{table.suite}-{table.metric}" + ("" if table.selection == "best" else f"-{table.selection}")
    texts = {
        ".tex": render_latex(table, standalone=standalone),
        ".md": render_markdown(table),
        ".csv": table_csv(table),
    }
    paths = []
    for suffix, text in texts.items():
        path = Path(out_dir) / f"{stem}{suffix}"
        atomic_write_text(path, text)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------------------------
# Figures (data and titles here; drawing in bench.plots).


def load_generator(run_dir: Path, snapshot: str) -> plots.Generator:
    """The run's model with the weights of ``snapshot``, on the CPU (imported lazily: heavy)."""
    from bench.train import load_snapshot_model

    return load_snapshot_model(run_dir, snapshot, device="cpu")


def _row_name(key: tuple[str, str]) -> str:
    return f"{key[1]} ({key[0]})" if key[0] else key[1]


def _nonstandard_note(rows: pd.DataFrame) -> str:
    bad = nonstandard_detectors(rows)
    return f"\n[{legend(bad)}]" if bad else ""


def _budget_lines(suite: SuiteLike, dataset: str) -> list[tuple[float, str]]:
    specs = [c.spec for c in suite.cells if c.spec.dataset == dataset and c.spec.budget_hours is not None]
    budgets = sorted({(s.budget_hours, s.budget_scale) for s in specs})
    return [(h * k, f"budget {h:g} ref. GPU-h" + (f" × scale {k:g}" if k != 1 else "")) for h, k in budgets]


def _plot_over_time(
    suite: SuiteLike, rows: pd.DataFrame, table: ReportTable, dataset: str, out_dir: Path
) -> list[Path]:
    curves, used = [], []
    for key in row_keys(suite):
        ids = [c.spec.run_id for c in row_cells(suite, key, dataset)]
        sub = rows[rows["run_id"].isin(ids)]
        if sub.empty:
            continue
        mean = sub.groupby("eval_point")[["ref_gpu_hours", "value"]].mean().sort_index()
        scale = 1e3 if table.kind == "kid" else 1.0
        curves.append(plots.Curve(_row_name(key), mean["ref_gpu_hours"].tolist(), (mean["value"] * scale).tolist()))
        used.append(sub)
    if not curves:
        return []
    name = metric_name(table.metric, table.kind) + (" ×10³" if table.kind == "kid" else "")
    title = f"{suite.name}: {name} ({table.metric}) over training time on {dataset}, mean over seeds"
    fig = plots.curves_figure(
        curves,
        _budget_lines(suite, dataset),
        title=title + _nonstandard_note(pd.concat(used)),
        xlabel="training time (reference GPU-hours)",
        ylabel=f"{name} ({'lower' if table.lower_is_better else 'higher'} is better)",
    )
    return plots.save(fig, out_dir / f"{table.metric}_over_time_{dataset}")


def _panel(cell: CellLike, row: pd.Series, table: ReportTable, runs_root: Path) -> tuple[str, Path | None]:
    """(title, grid path or None) of one run's selected evaluation."""
    grid = row.get("grid")
    path = RunPaths.of(runs_root, cell.spec).root / grid if isinstance(grid, str) else None
    value = fmt_number(float(row["value"]), table.kind)
    where = f"{float(row['eval_point']):.0%} of budget" if pd.notna(row.get("eval_point")) else "eval"
    title = f"{_row_name((cell.group, cell.label))}\nseed {cell.spec.seed}: {table.metric} {value} at {where}"
    return title, path if path is not None and path.is_file() else None


def _plot_samples(
    suite: SuiteLike, selected: pd.DataFrame, table: ReportTable, dataset: str, out_dir: Path, runs_root: Path
) -> list[Path]:
    panels = []
    for key in row_keys(suite):
        cell = next((c for c in row_cells(suite, key, dataset) if c.spec.run_id in selected.index), None)
        if cell is not None:
            panels.append(_panel(cell, selected.loc[cell.spec.run_id], table, runs_root))
    if not any(path for _, path in panels):
        log.warning("%s: no sample grids for %s yet; side-by-side figure skipped", suite.name, dataset)
        return []
    title = f"{suite.name}: samples on {dataset}, each model's {table.selection} evaluation (lowest seed)"
    return plots.save(plots.panels_figure(panels, title=title), out_dir / f"samples_{dataset}")


def _plot_run(cell: CellLike, row: pd.Series, table: ReportTable, out_dir: Path, runs_root: Path) -> list[Path]:
    """The run's sample grid and latent interpolation strip at its selected evaluation."""
    spec, paths, name = cell.spec, [], _row_name((cell.group, cell.label))
    panel = _panel(cell, row, table, runs_root)
    if panel[1] is not None:
        title = f"{name} on {spec.dataset}, seed {spec.seed}: samples ({spec.run_id})"
        paths += plots.save(plots.panels_figure([panel], title=title), out_dir / f"samples_{spec.run_id}")
    run_dir = RunPaths.of(runs_root, spec).root
    snapshot = row.get("snapshot")
    if not isinstance(snapshot, str) or not (run_dir / snapshot).is_file():
        log.warning("%s: no snapshot at its %s evaluation; interpolation strip skipped", spec.run_id, table.selection)
        return paths
    try:
        model = load_generator(run_dir, snapshot)
    except BenchError as exc:
        log.warning("%s: interpolation strip skipped: %s", spec.run_id, exc)
        return paths
    title = (
        "Latent interpolation (slerp between two z of seed 0, EMA generator): "
        f"{name} on {spec.dataset}, seed {spec.seed}, {snapshot}"
    )
    strip = plots.strip_figure(plots.interpolation_images(model), title=title)
    return paths + plots.save(strip, out_dir / f"interp_{spec.run_id}")


def write_plots(suite: SuiteLike, df: pd.DataFrame, table: ReportTable, out_dir: Path, runs_root: Path) -> list[Path]:
    """Metric over time per dataset, side-by-side samples per dataset, and per run grid + strip."""
    rows = suite_rows(suite, df)
    rows = rows[rows["metric"] == table.metric]
    selected = select_runs(rows, table.metric, table.kind, table.selection)
    paths = []
    for dataset in table.datasets:
        paths += _plot_over_time(suite, rows, table, dataset, out_dir)
        paths += _plot_samples(suite, selected, table, dataset, out_dir, runs_root)
    for cell in suite.cells:
        if cell.spec.run_id in selected.index:
            paths += _plot_run(cell, selected.loc[cell.spec.run_id], table, out_dir, runs_root)
    return paths


def read_states(suite: SuiteLike, out: Path) -> dict[str, str]:
    """run_id -> status of each suite cell under the results folder ``out`` ('running' only while locked)."""
    from bench.sweep import cell_state

    return {c.spec.run_id: cell_state(out, c)["status"] for c in suite.cells}


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
) -> list[Path]:
    """Write ``out_dir/tables/<suite>-<metric>.{tex,md,csv}`` and ``out_dir/plots/<suite>/*``.

    Args:
        out: the results folder holding ``runs/`` (grids, snapshots, states); default ``out_dir``.
        selection: 'best' (best within budget, the paper's rule) or 'last' (last within budget).
        standalone: the .tex is a whole document (pdflatex compiles it on its own).
        metric: metric to tabulate; default the suite's first FID-kind metric present.
        states: run_id -> status; default read from the run folders under ``out``.
    """
    runs_root = Path(out if out is not None else out_dir)
    states = states if states is not None else read_states(suite, runs_root)
    table = build_table(suite, df, selection=selection, metric=metric, states=states)
    paths = write_tables(table, Path(out_dir) / "tables", standalone=standalone)
    log.info("%s", table.summary)
    if with_plots:
        paths += write_plots(suite, df, table, Path(out_dir) / "plots" / suite.name, runs_root)
    return paths
