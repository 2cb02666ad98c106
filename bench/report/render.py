"""A :class:`~bench.report.tables.ReportTable` as LaTeX (booktabs), Markdown and CSV.

The caption says what is measured, the selection rule and the budget in about 40 words; the notes
under the table give the whole protocol in one line (detector with its weights' sha256, BatchNorm
mode and statistics, generation batch), the rule behind the printed digits, one warning when the
detector is non-standard, the ‡ legend of the step-0 check (numbers not clearly better than their
run's untrained generator: :mod:`bench.report.gain`), which evaluation each published number came
from, and which device types the cells trained on when they differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from bench.report import gain, stale
from bench.report.paper import PaperRow, PaperSource, PaperTable
from bench.report.selection import SELECTION_RULES
from bench.report.tables import CellResult, ReportTable
from bench.report.words import DIGITS_RULE, SIGN_RULE, fmt_number, fmt_signed, metric_name
from bench.results.io import atomic_write_text

UNALIGNED_TITLE = "paper (unaligned; column alignment unknown)"
APART_TITLE = "at other compute budgets (not ranked with the rows above)"


@dataclass(frozen=True)
class Shown:
    """One printed cell: plain text, or a number with an optional ± part, bold and ‡ marks."""

    text: str
    std: str | None = None
    number: bool = False
    bold: bool = False
    flat: bool = False  # not clearly better than step 0 (‡)
    stale: bool = False  # some run built with other model settings than the model's now (§)


@dataclass(frozen=True)
class Line:
    """One printed row of the main table."""

    role: str  # 'images', 'ours', 'paper', 'delta' or 'apart' (heads the rows at another compute budget)
    group: str  # printed only on a group's first row
    label: str
    cells: tuple[Shown, ...]
    rule: str = ""  # before the row: 'midrule', 'space' or ''


def caption(table: ReportTable) -> str:
    """What is measured, the selection rule and the budget (about 40 words)."""
    name = metric_name(table.metric, table.kind) + (" ×10³" if table.kind == "kid" else "")
    images = f"{table.num_gen:,} generated images" if table.num_gen else "generated images"
    seeds = "one seed" if table.seeds <= 1 else f"mean ± std over {table.seeds} seeds"
    better = "Lower" if table.lower_is_better else "Higher"
    return (
        f"{table.suite}: {name} ({table.metric} with {table.key.detector_name}, {images} against each training "
        f"set), {SELECTION_RULES[table.selection]}; {table.budget}; {seeds}. {better} is better; bold: best per column"
        + (" among the rows at the suite's budget." if any(r.multiple != 1 for r in table.rows) else ".")
    )


def digits_note(table: ReportTable) -> str:
    """The rule behind the printed decimals (and the differences' signs, where Δ sub-rows are printed)."""
    places = {0: "no decimals", 1: "one decimal"}.get(table.digits, f"{table.digits} decimals")
    n = f" (n = {table.num_gen:,} generated images)" if table.num_gen else ""
    return f"Digits: {places}, {DIGITS_RULE[table.kind]}{n}" + (f"; {SIGN_RULE}." if table.aligned_paper else ".")


def notes(table: ReportTable) -> list[tuple[str, str]]:
    """The lines under the table as (bold lead, text): protocol, digits, warnings, legends, sources."""
    out = [("Protocol:", f"{table.protocol}."), ("", digits_note(table))]
    out += [(f"{head}:", f"{text}.") for head, text in _row_notes(table) if text]
    if table.nonstandard_detectors:
        out.append(("Non-standard detector", nonstandard_warning(table)))
    out += [("", note) for note in table.notes]
    if table.any_flat:
        out.append(("", f"{gain.LEGEND}; never bold."))
    out += [("", text) for text in _paper_notes(table)]
    if table.mixed:
        out.append(
            ("", f"Left out (their rows of this protocol differ in sampling or reference): {', '.join(table.mixed)}.")
        )
    if table.device_mix:
        out.append(("Cells trained on different device types:", device_mix_text(table.device_mix) + "."))
    return out


def nonstandard_warning(table: ReportTable) -> str:
    """The one warning of a table scored with a non-standard detector."""
    name = metric_name(table.metric, table.kind)
    return (
        f"({', '.join(table.nonstandard_detectors)}): these numbers rank this table's rows against each other only; "
        f"they are not comparable to published {name} values."
    )


def _row_notes(table: ReportTable) -> list[tuple[str, str]]:
    """What the rows trained under: length, recipe sources (``run_bench.py list``) and the suite's reading."""
    recipes = "Recipe sources (per setting group: run_bench.py list)"
    return [("Training length", table.lengths), (recipes, table.recipes), ("Reading", table.reading)]


def _paper_notes(table: ReportTable) -> list[str]:
    """Which evaluation each published number came from, and where they are printed (or why not)."""
    if table.paper is None:
        return []
    if table.kind != "fid":
        return ["The paper reports FID only: no published numbers for this metric."]
    cite = f"{table.paper.cite}, Table {table.paper.key}"
    by_source: dict[PaperSource, list[str]] = {}
    for row in table.paper_rows:
        by_source.setdefault(row.source, []).append(row.label)
    sources = "; ".join(f"{', '.join(labels)}: {source.describe()}" for source, labels in by_source.items())
    notes_ = "".join(f" {r.label}: {r.note}." for r in table.paper_rows if r.note)
    out = [f"Published numbers ({cite}) by the evaluation they came from: {sources}.{notes_}"]
    if table.aligned_paper:
        out.append("Sub-rows: paper = published; Δ = ours − paper; only beside rows whose numbers share the "
                   "source's protocol and detector; a cell without a published number says why.")  # fmt: skip
    elif not table.unaligned_paper:
        ours = f"{table.metric} with {' / '.join(table.detectors)}"
        out.append(f"No published number is printed: none came from this table's protocol ({ours}).")
    if table.unaligned_paper:
        out.append(f"Published numbers ({cite}) are unaligned in the source (six values for seven columns): "
                   "printed as given below the table, never placed into columns.")  # fmt: skip
    absent = "; ".join(f"{r.label} ({r.absent})" for r in table.rows if r.absent)
    if absent:
        out.append(f"No published number beside: {absent}.")
    return out


def device_mix_text(mix: dict[str, list[str]]) -> str:
    """'NVIDIA H200 (9 cells); cpu: FastGAN / obama': the commonest type counted, the others' cells named."""
    (common, cells), *others = mix.items()
    counted = f"{common} ({len(cells)} cell{'s' if len(cells) > 1 else ''})"
    return "; ".join([counted, *(f"{d}: {', '.join(c)}" for d, c in others)])


def display_lines(table: ReportTable) -> list[Line]:
    """The main table's rows: image numbers, then each of our rows with its paper and Δ sub-rows."""
    images = tuple(
        Shown(_image_text(n, p)) for n, p in zip(table.image_numbers, table.paper_image_numbers, strict=True)
    )
    lines = [Line("images", "", "Image number", images, "midrule")]
    best = [table.best_rows(j) for j in range(len(table.datasets))]
    previous: str | None = None
    for i, row in enumerate(table.rows):
        new_group = row.group != previous
        if row.multiple != 1 and (i == 0 or table.rows[i - 1].multiple == 1):
            lines.append(Line("apart", "", APART_TITLE, tuple(Shown("") for _ in row.cells), "midrule"))
        ours = tuple(_shown(c, table, i in best[j]) for j, c in enumerate(row.cells))
        rule = "" if lines[-1].role == "apart" else _rule(table, i, new_group)
        lines.append(Line("ours", row.group if new_group else "", row.label, ours, rule))
        previous = row.group
        if row.compared:
            lines.append(Line("paper", "", "paper", tuple(_paper_shown(v) for v in row.paper)))
            deltas = tuple(_delta_shown(c, v, table) for c, v in zip(row.cells, row.paper, strict=True))
            lines.append(Line("delta", "", "Δ (ours − paper)", deltas))
    return lines


def _image_text(ours: int | None, paper: int | None) -> str:
    """The prepared set's image count, with the paper's beside it when they differ."""
    text = str(ours) if ours is not None else "--"
    return text if paper is None or paper == ours else f"{text} (paper {paper})"


def _rule(table: ReportTable, i: int, new_group: bool) -> str:
    """Before our row ``i``: a rule between groups, a little space between rows with sub-rows."""
    if i == 0 or (new_group and table.has_groups):
        return "midrule"
    return "space" if table.aligned_paper else ""


def _shown(cell: CellResult, table: ReportTable, bold: bool) -> Shown:
    if cell.status == "absent":
        return Shown("--")
    if cell.status != "done":
        word = "mixed protocol" if cell.status == "mixed" else cell.status
        return Shown(word + (f" ({cell.done}/{cell.runs} seeds done)" if cell.runs > 1 else ""))
    std = fmt_number(cell.std, table.kind, table.digits) if cell.std is not None else None
    text = fmt_number(cell.mean, table.kind, table.digits)
    return Shown(text, std, number=True, bold=bold, flat=cell.flat, stale=bool(cell.stale))


def _paper_shown(value: float | str | None) -> Shown:
    if value is None:
        return Shown("--")
    return Shown(value) if isinstance(value, str) else Shown(f"{value:.2f}", number=True)


def _delta_shown(cell: CellResult, value: float | str | None, table: ReportTable) -> Shown:
    if cell.status != "done" or value is None or isinstance(value, str):
        return Shown("--")
    return Shown(fmt_signed(cell.mean - value, table.kind, table.digits), number=True)


_LATEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}", "±": r"$\pm$", "Δ": r"$\Delta$", "−": r"$-$",
    "†": r"\dag{}", "‡": r"\ddag{}", "§": r"\S{}", "×": r"$\times$", "³": r"$^3$", "→": r"$\rightarrow$",
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
    return f"${body}$" + (r"\ddag" if s.flat else "") + (r"\S" if s.stale else "")


def _tex_label(line: Line) -> str:
    if line.role == "apart":
        return rf"\textit{{{latex_escape(line.label)}}}"
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
    lines = [(rf"\textbf{{{latex_escape(lead_)}}} " if lead_ else "") + latex_escape(t) for lead_, t in notes(table)]
    tex = [
        f"% {table.summary}",
        "% Generated by bench.report from the collected results; do not edit.",
        *([f"% Published numbers: {table.paper.source}"] if table.paper else []),
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\setlength{\tabcolsep}{4pt}",
        rf"\caption{{{latex_escape(caption(table))}}}",
        rf"\label{{tab:{table.stem}}}",
        rf"\begin{{tabular}}{{{'l' * lead}{'r' * len(table.datasets)}}}",
        *body,
        r"\end{tabular}",
        r"\par\smallskip",
        r"\begin{minipage}{\linewidth}\footnotesize\raggedright",
        *(f"{line}\\par" for line in lines),
        r"\end{minipage}",
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


def _md_cell(s: Shown) -> str:
    text = s.text if s.std is None else f"{s.text} ± {s.std}"
    text = f"**{text}**" if s.bold else text
    marks = "".join(f" {mark}" for mark, on in ((gain.MARK, s.flat), (stale.MARK, s.stale)) if on)
    return (text + marks).replace("|", "\\|")


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
    rows = [[*([ln.group] if lead else []), f"*{ln.label}*" if ln.role == "apart" else ln.label,
             *(_md_cell(c) for c in ln.cells)] for ln in display_lines(table)]  # fmt: skip
    out = [
        "<!-- Generated by bench.report from the collected results; do not edit. -->",
        f"### {table.suite}: {table.metric} ({table.key.detector_name})",
        "",
        caption(table),
        "",
        tabulate(rows, head, tablefmt="github", disable_numparse=True),
        "",
        *(f"- {f'**{lead}** ' if lead else ''}{text}" for lead, text in notes(table)),
    ]
    if table.unaligned_paper and table.paper is not None:
        out += ["", _md_unaligned_note(table.paper), "", _md_unaligned(table.unaligned_paper)]
    if table.paper is not None:
        out += ["", f"Published numbers: {table.paper.source}"]
    return "\n".join([*out, "", table.summary]) + "\n"


_CSV_COLUMNS = (
    "suite", "metric", "selection", "source", "group", "label", "model", "dataset", "position",
    "image_number", "paper_image_number", "status", "seeds", "seeds_done", "value", "std", "text", "paper",
    "paper_protocol", "delta", "best", "detector", "detector_standard", "device", "step0", "clearly_better",
    "budget_multiple", "stale",
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
        "paper_image_number": table.paper_image_numbers[j],
        "status": cell.status, "seeds": cell.runs, "seeds_done": cell.done,
        "value": cell.mean if done else None, "std": cell.std if done else None,
        "text": _md_cell(_shown(cell, table, False)),
        "paper": "" if paper is None else _paper_shown(paper).text,
        "paper_protocol": row.published.source.describe() if row.published is not None else None,
        "delta": cell.mean - paper if done and isinstance(paper, int | float) else None,
        "best": i in table.best_rows(j) if done else None,
        "detector": ", ".join(cell.detectors) if done else None,
        "detector_standard": not cell.nonstandard if done else None,
        "device": ", ".join(cell.devices) if done else None,
        "step0": cell.step0 if done else None,
        "clearly_better": not cell.flat if done and cell.step0 is not None else None,
        "budget_multiple": row.multiple,
        "stale": cell.stale if done else None,
    }  # fmt: skip


def table_files(table: ReportTable, *, standalone: bool = False) -> dict[str, str]:
    """File name -> text: ``<stem>`` .tex, .md and .csv (:attr:`ReportTable.stem`)."""
    return {
        f"{table.stem}.tex": render_latex(table, standalone=standalone),
        f"{table.stem}.md": render_markdown(table),
        f"{table.stem}.csv": table_csv(table),
    }


def write_tables(table: ReportTable, out_dir: Path, *, standalone: bool = False) -> list[Path]:
    """The table's files (:func:`table_files`) under ``out_dir``, each written atomically."""
    paths = []
    for name, text in table_files(table, standalone=standalone).items():
        atomic_write_text(Path(out_dir) / name, text)
        paths.append(Path(out_dir) / name)
    return paths
