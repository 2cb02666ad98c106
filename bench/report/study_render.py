"""A :class:`~bench.report.study.StudyResult` as Markdown, LaTeX (booktabs) and CSV, and its verdict lines.

Each metric's table has the paper's Table 1 layout (rows = the suite's models, columns = datasets);
a cell reads ``mean ± std [lo, hi] n=3``: the sample standard deviation over seeds and the 95 % (1 −
alpha) Student-t interval of the mean. Nothing is bold that the seeds do not support: a column's best
mean is bold only when it is significantly better than every other row; otherwise the best and the
rows that cannot be told apart from it carry ≈ (a tie). The comparison table gives each compared
pair's difference with its interval, test and p; the verdict lines answer the study's claims.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd
from tabulate import tabulate

from bench.plan.studies import TESTS, Claim
from bench.report import gain
from bench.report import stale as stale_marks
from bench.report.render import _STANDALONE_HEAD as STANDALONE_HEAD
from bench.report.render import latex_escape
from bench.report.stats import INCONCLUSIVE, Comparison, Summary
from bench.report.study import (
    ClaimResult,
    PairResult,
    StudyCell,
    StudyResult,
    StudySuite,
    StudyTable,
    build_study,
)
from bench.report.study_figure import study_figure_files
from bench.report.study_notes import (
    TIE,
    caption,
    notes,
    seeds_text,
    spread_caption,
    spread_cells,
    spread_head,
    tuning_text,
)
from bench.report.words import fmt_number, fmt_signed

if TYPE_CHECKING:
    from bench.report.figures import Axis


def _num(value: float, table: StudyTable, tex: bool = False) -> str:
    """``value`` at the table's digits; ``tex``: for LaTeX text mode, a negative one with the minus sign '−'
    (which :func:`latex_escape` writes ``$-$``; a hyphen there would print as a hyphen)."""
    return _minus(fmt_number(value, table.kind, table.digits), tex)


def _minus(text: str, tex: bool) -> str:
    return "−" + text[1:] if tex and text.startswith("-") else text


def _signed(value: float, table: StudyTable, tex: bool = False) -> str:
    return _minus(fmt_signed(value, table.kind, table.digits), tex)


def _interval(lo: float | None, hi: float | None, table: StudyTable, tex: bool = False) -> str:
    return "--" if lo is None or hi is None else f"[{_num(lo, table, tex)}, {_num(hi, table, tex)}]"


def _seeds_note(cell: StudyCell) -> str:
    """'n=3', 'n=2/3', 'n=2/3, 1 diverged', 'n=0/3, 3 done without a value'."""
    text = f"n={cell.n}" + (f"/{cell.planned}" if cell.n < cell.planned else "")
    text += f", {cell.diverged} diverged" if cell.diverged else ""
    return text + (f", {cell.unscored} done without a value" if cell.unscored else "")


def _marks(table: StudyTable, j: int, model: str) -> tuple[bool, bool]:
    """(bold, tie mark) of ``model``'s cell in column ``j``."""
    group = table.best[j]
    if model not in group.tied:
        return False, False
    return group.clear, not group.clear


def _cell_parts(
    table: StudyTable, j: int, model: str, cell: StudyCell, alpha: float, tex: bool = False
) -> tuple[str, str, str]:
    """(number, interval, note) of one cell; number '' when the cell has no value (``tex``: the interval for
    LaTeX text mode; the number goes into math mode, where '-' is a minus, in either case)."""
    s: Summary | None = cell.summary(alpha)
    if s is None:
        return "", "", "--" if not cell.planned else f"no value ({_seeds_note(cell)})"
    number = _num(s.mean, table) + (f" ± {_num(s.std, table)}" if s.std is not None else "")
    if s.half is None:
        return number, "", "1 seed: no interval" + (f"; {_seeds_note(cell)}" if cell.planned > 1 else "")
    return number, _interval(s.lo, s.hi, table, tex), _seeds_note(cell)


def md_cell(table: StudyTable, j: int, model: str, cell: StudyCell, alpha: float) -> str:
    """One Markdown cell: ``**mean ± std**`` or ``mean ± std ≈``, interval, seeds, flags."""
    number, interval, note = _cell_parts(table, j, model, cell, alpha)
    if not number:
        return note
    bold, tie = _marks(table, j, model)
    number = f"**{number}**" if bold else number
    marks = (TIE if tie else "", gain.MARK if cell.flat else "", stale_marks.MARK if cell.stale else "")
    return " ".join(p for p in (number, interval, note, *marks) if p)


def _tex_cell(table: StudyTable, j: int, model: str, cell: StudyCell, alpha: float) -> str:
    number, interval, note = _cell_parts(table, j, model, cell, alpha, tex=True)
    if not number:
        return latex_escape(note)
    bold, tie = _marks(table, j, model)
    body = number.replace(" ± ", r" \pm ")
    body = rf"\mathbf{{{body}}}" if bold else body
    small = ", ".join(p for p in (interval, note, TIE if tie else "") if p)
    marks = (r"\ddag" if cell.flat else "") + (r"\S" if cell.stale else "")
    return f"${body}$ {{\\scriptsize {latex_escape(small)}}}" + marks


def _label(result: StudyResult, model: str) -> str:
    return result.labels.get(model, model)


def _pair_cells(result: StudyResult, pair: PairResult, tex: bool = False) -> list[str]:
    c = pair.comparison
    name = f"{_label(result, pair.a)} − {_label(result, pair.b)}"
    diff = "--" if c.diff is None else _signed(c.diff, result.main, tex)
    test = f"{TESTS[c.test]}, df {c.df:.1f}" if c.tested else f"no test: {c.why}"
    p = "--" if c.p is None else p_text(c.p)
    return [name, pair.dataset, diff, _interval(c.lo, c.hi, result.main, tex), test, p, _seed_counts(pair)]


def _seed_counts(pair: PairResult) -> str:
    """'3 vs 3 seeds', '2 of 3 vs 3 seeds (1 diverged)', '3 paired seeds'."""
    c = pair.comparison
    div = sum(pair.diverged)
    div = f" ({div} diverged)" if div else ""
    if c.test == "paired":
        return f"{c.n_a} paired seed{'s' * (c.n_a != 1)}{div}"
    counts = zip((c.n_a, c.n_b), pair.planned, strict=True)
    sides = [f"{n}" + (f" of {planned}" if n < planned else "") for n, planned in counts]
    return f"{' vs '.join(sides)} seeds{div}"


def p_text(p: float) -> str:
    """'0.012', '< 0.001'."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_is(name: str, p: float) -> str:
    """'p = 0.012', 'p < 0.001'."""
    return f"{name} < 0.001" if p < 0.001 else f"{name} = {p:.3f}"


_PAIR_HEAD = ("Comparison (A − B)", "Dataset", "Δ", "CI", "Test", "p", "Seeds (A vs B)")


def _pair_head(result: StudyResult) -> list[str]:
    level = f"{1 - result.study.alpha:.0%}"
    head = list(_PAIR_HEAD)
    head[2], head[3] = f"Δ {result.main.unit}", f"{level} CI"
    return head


def verdict_line(result: StudyResult, claim: ClaimResult, tex: bool = False) -> str:
    """One claim on one dataset: verdict, effect with its interval, test, p (raw and Holm), seeds (``tex``:
    negative numbers with the minus sign '−', for :func:`latex_escape`)."""
    table, pair, c = result.main, claim.pair, claim.pair.comparison
    a, b = _label(result, claim.claim.better), _label(result, claim.claim.than)
    head = f"{claim.claim.name} ({a} better than {b}) on {pair.dataset}: {claim.verdict}"
    if c.diff is None:
        return f"{head}; {c.why} ({_seed_counts(pair)})."
    effect = f"Δ {result.main.unit} ({a} − {b}) = {_signed(c.diff, table, tex)}"
    if not c.tested:
        return f"{head}; {effect}, {c.why}; rests on {_seed_counts(pair)}."
    level = f"{1 - result.study.alpha:.0%}"
    holm = f", {p_is('Holm-adjusted p', claim.adjusted_p)} over {claim.family} tests" if claim.family > 1 else ""
    if claim.verdict == INCONCLUSIVE and c.excludes_zero():
        head += f" (the {level} interval excludes 0, but not after Holm's correction)"
    return (
        f"{head}; {effect} [{level} CI {_num(c.lo, table, tex)}, {_num(c.hi, table, tex)}], {TESTS[c.test]} "
        f"(df {c.df:.1f}), {p_is('p', c.p)}{holm}; rests on {_seed_counts(pair)}."
    )


def verdict_lines(result: StudyResult, tex: bool = False) -> list[str]:
    """One line per claim and dataset (the end of `run` and of the report print these; ``tex``: for LaTeX)."""
    return [verdict_line(result, c, tex) for c in result.claims]


def render_markdown(result: StudyResult) -> str:
    """The study's tables, comparisons and verdicts as GitHub Markdown."""
    alpha = result.study.alpha
    out = ["<!-- Generated by bench.report from the collected results; do not edit. -->", f"## {result.suite}: study"]
    for table in result.tables:
        rows = [[r.label, *(md_cell(table, j, r.model, c, alpha) for j, c in enumerate(r.cells))] for r in table.rows]
        rows = [[text.replace("|", "\\|") for text in row] for row in rows]
        md = tabulate(rows, ["Model", *table.datasets], tablefmt="github", disable_numparse=True)
        out += ["", f"### {table.unit} ({table.metric})", "", caption(result, table), "", md, ""]
        out += [f"- {f'**{lead}** ' if lead else ''}{text}" for lead, text in notes(result, table)]
        if table is result.main and result.spread:
            out += ["", f"### Evaluation against training spread ({table.metric})", "", spread_caption(result), ""]
            cells = [spread_cells(result, x) for x in result.spread]
            out.append(tabulate(cells, spread_head(result), tablefmt="github", disable_numparse=True))
    if result.pairs:
        rows = [_pair_cells(result, p) for p in result.pairs]
        out += ["", f"### Comparisons ({result.main.metric})", "", _pairs_caption(result), ""]
        out.append(tabulate(rows, _pair_head(result), tablefmt="github", disable_numparse=True))
    if result.claims:
        out += ["", "### Verdicts", "", _verdicts_caption(result), ""]
        out += [f"- {line}" for line in verdict_lines(result)]
        out += ["", "Claims: " + "; ".join(_claim_source(c) for c in result.study.claims) + "."]
    return "\n".join([*out, "", result.summary]) + "\n"


def _pairs_caption(result: StudyResult) -> str:
    return (
        f"Δ = mean(A) − mean(B) over finished seeds, with its {1 - result.study.alpha:.0%} interval "
        f"({TESTS[result.study.test]}; Welch–Satterthwaite df for the unpaired test); p two-sided, not corrected "
        "for multiple comparisons. Adjacent rows of the ladder and every claim's pair."
    )


def _claim_source(claim: Claim) -> str:
    return f"{claim.name}: {claim.source}" if claim.source else claim.name


def _verdicts_caption(result: StudyResult) -> str:
    return (
        "Computed from the numbers: supported when the Holm-adjusted p (over every claim on every dataset) is "
        f"below {result.study.alpha:g} with the claimed row better, contradicted when below it the other way, "
        f"inconclusive at this scale otherwise; a verdict says how many seeds it rests on. Study over "
        f"{seeds_text(result.main.seeds)}; tuning: {tuning_text(result.study)}."
    )


def _tex_table(result: StudyResult, table: StudyTable) -> list[str]:
    alpha = result.study.alpha
    head = ["Model", *(latex_escape(d) for d in table.datasets)]
    body = [" & ".join(head) + r" \\", r"\midrule"]
    for r in table.rows:
        cells = [latex_escape(r.label), *(_tex_cell(table, j, r.model, c, alpha) for j, c in enumerate(r.cells))]
        body.append(" & ".join(cells) + r" \\")
    return [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{latex_escape(caption(result, table))}}}",
        rf"\label{{tab:{result.suite}-study-{table.metric}}}",
        rf"\begin{{tabular}}{{l{'r' * len(table.datasets)}}}",
        r"\toprule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
        r"\par\smallskip",
        r"\begin{minipage}{\linewidth}\footnotesize\raggedright",
        *(rf"{_tex_lead(lead)}{tex_text(text)}\par" for lead, text in notes(result, table)),
        r"\end{minipage}",
        r"\end{table}",
    ]


def tex_text(text: str) -> str:
    """:func:`latex_escape` with Markdown code spans (```--seeds```) as ``\\texttt`` (no en dash from ``--``)."""
    parts = [latex_escape(part) for part in text.split("`")]
    code = (r"\texttt{" + part.replace("-", "-{}") + "}" for part in parts[1::2])
    return "".join(p for pair in zip(parts[::2], [*code, ""], strict=False) for p in pair)


def _tex_lead(lead: str) -> str:
    return rf"\textbf{{{latex_escape(lead)}}} " if lead else ""


def _tex_simple(caption_text: str, columns: str, head: list[str], rows: list[list[str]]) -> list[str]:
    """A booktabs table of plain text cells (escaped here) under ``caption_text``."""
    lines = [" & ".join(latex_escape(x) for x in row) + r" \\" for row in (head, *rows)]
    return [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{latex_escape(caption_text)}}}",
        rf"\begin{{tabular}}{{{columns}}}",
        r"\toprule",
        lines[0],
        r"\midrule",
        *lines[1:],
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]


def _tex_spread(result: StudyResult) -> list[str]:
    rows = [list(spread_cells(result, s)) for s in result.spread]
    return _tex_simple(spread_caption(result), "llrrrl", list(spread_head(result)), rows)


def _tex_pairs(result: StudyResult) -> list[str]:
    rows = [_pair_cells(result, p, tex=True) for p in result.pairs]
    return _tex_simple(_pairs_caption(result), "llrrlrl", list(_pair_head(result)), rows)


def render_latex(result: StudyResult, *, standalone: bool = False) -> str:
    """The study's tables (booktabs floats), comparisons and verdicts (an itemize) as LaTeX (``standalone``:
    a whole document, as :func:`bench.report.render.render_latex` writes one)."""
    tex = [f"% {result.summary}", "% Generated by bench.report from the collected results; do not edit."]
    for table in result.tables:
        tex += _tex_table(result, table)
    if result.spread:
        tex += _tex_spread(result)
    if result.pairs:
        tex += _tex_pairs(result)
    if result.claims:
        tex += [latex_escape(_verdicts_caption(result)), r"\begin{itemize}"]
        tex += [rf"\item {latex_escape(line)}" for line in verdict_lines(result, tex=True)]
        tex += [r"\end{itemize}", latex_escape("Claims: " + "; ".join(map(_claim_source, result.study.claims)) + ".")]
    if standalone:
        tex = [*STANDALONE_HEAD, *tex, r"\end{document}"]
    return "\n".join(tex) + "\n"


def _summary_record(s: Summary | None) -> dict[str, Any]:
    if s is None:
        return {}
    return {"mean": s.mean, "std": s.std, "ci_lo": s.lo, "ci_hi": s.hi}


def _comparison_record(c: Comparison) -> dict[str, Any]:
    return {"diff": c.diff, "ci_lo": c.lo, "ci_hi": c.hi, "test": c.test, "df": c.df, "t": c.t, "p": c.p,
            "n_a": c.n_a, "n_b": c.n_b, "why": c.why}  # fmt: skip


def study_csv(result: StudyResult) -> str:
    """Long form: a line per (metric, model, dataset) cell, per compared pair and per claim verdict."""
    records: list[dict[str, Any]] = []
    alpha = result.study.alpha
    for table in result.tables:
        for r in table.rows:
            for j, cell in enumerate(r.cells):
                bold, tie = _marks(table, j, r.model)
                records.append({
                    "section": "cell", "metric": table.metric, "model": r.model, "label": r.label,
                    "dataset": table.datasets[j], "n": cell.n, "planned": cell.planned, "diverged": cell.diverged,
                    "unscored": cell.unscored, "stale": cell.stale,
                    **_summary_record(cell.summary(alpha)), "best": bold, "tied": tie, "clearly_better": not cell.flat,
                })  # fmt: skip
    metric = result.main.metric
    for p in result.pairs:
        records.append({"section": "pair", "metric": metric, "model": p.a, "than": p.b, "dataset": p.dataset,
                        **_comparison_record(p.comparison)})  # fmt: skip
    for x in result.spread:
        records.append({"section": "spread", "metric": metric, "model": x.model, "dataset": x.dataset,
                        "run_id": x.run_id, "n": len(x.evaluations), "eval_std": x.eval_std, "std": x.seed_std,
                        "n_seeds": x.seeds, "training_std": x.training_std})  # fmt: skip
    for c in result.claims:
        records.append({"section": "claim", "metric": metric, "claim": c.claim.name, "model": c.pair.a,
                        "than": c.pair.b, "dataset": c.pair.dataset, **_comparison_record(c.pair.comparison),
                        "adjusted_p": c.adjusted_p, "family": c.family, "verdict": c.verdict})  # fmt: skip
    return pd.DataFrame(records).to_csv(index=False, float_format="%.6g", lineterminator="\n")


def study_files(
    suite: StudySuite,
    df: pd.DataFrame,
    *,
    states: dict[str, str] | None = None,
    figures: bool = True,
    standalone: bool = False,
    axis: Axis | None = None,
    noise: pd.DataFrame | None = None,
    stale: dict[str, str] | None = None,
) -> dict[str, bytes]:
    """The study of ``suite`` as relative path -> bytes: ``tables/<suite>-study.{md,tex,csv}`` and, with
    ``figures``, ``plots/<suite>/study_<metric>_<dataset>.{png,pdf}`` (``axis``: the figures' x axis;
    default: :func:`bench.report.figures.x_axis`; ``noise``: re-scored snapshots for the spread table; ``stale``:
    run_id -> what changed in its model since it ran, :func:`bench.report.stale.stale_runs`, marked in the cells)."""
    from bench.report.budgets import compute_note
    from bench.report.structure import structure_note

    result = build_study(suite, df, states=states, noise=noise)
    result = replace(result, notes=tuple(n for n in (compute_note(suite.cells), structure_note(suite)) if n))
    result = stale_marks.mark_study_stale(result, suite, stale) if stale else result
    texts = {".md": render_markdown(result), ".tex": render_latex(result, standalone=standalone),
             ".csv": study_csv(result)}  # fmt: skip
    files = {f"tables/{result.suite}-study{suffix}": text.encode() for suffix, text in texts.items()}
    if figures:
        files |= {
            f"plots/{suite.name}/{name}": data for name, data in study_figure_files(result, suite, df, axis).items()
        }
    return files


def verdict_text(suite: StudySuite, df: pd.DataFrame, *, states: dict[str, str] | None = None) -> str:
    """The study's verdict lines as a block for the terminal ("" when the suite declares no claims)."""
    if suite.study is None or not suite.study.claims:
        return ""
    result = build_study(suite, df, states=states)
    head = f"verdicts ({suite.name}, computed from the numbers over {seeds_text(result.main.seeds)}):"
    return "\n".join([head, *(f"  {line}" for line in verdict_lines(result)), f"  tuning: {tuning_text(suite.study)}."])
