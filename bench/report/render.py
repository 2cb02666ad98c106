"""A :class:`~bench.report.tables.ReportTable` as LaTeX (booktabs), Markdown and CSV. Every
number carries its selection rule and protocol (detector, BatchNorm mode and statistics, generation
batch) in the caption, which also says which evaluation each published number came from; numbers
from a non-standard detector carry a dagger, and numbers not clearly better than their run's
untrained generator (:mod:`bench.report.gain`) a double dagger, in every format; a table whose
cells trained on different device types says so, naming them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from bench.report import gain
from bench.report.paper import PaperRow, PaperSource, PaperTable
from bench.report.tables import SELECTION_RULES, CellResult, ReportTable, fmt_delta, fmt_number, metric_name
from bench.results.io import atomic_write_text

UNALIGNED_TITLE = "paper (unaligned; column alignment unknown)"


@dataclass(frozen=True)
class Shown:
    """One printed cell: plain text, or a number with an optional ± part, bold and † marks."""

    text: str
    std: str | None = None
    number: bool = False
    bold: bool = False
    dagger: bool = False
    flat: bool = False  # not clearly better than step 0 (‡)


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
    bold = f"Bold: best per column ({better} is better)"
    bold += " among the values that pass the step-0 check" if table.any_flat else ""
    if table.nonstandard_detectors:
        bold += f"; a ranking under the non-standard detector {', '.join(table.nonstandard_detectors)}"
    parts = [
        (f"{table.suite}: {name}{unit}, mean ± std over seeds (one seed: its value); {rule}.", False),
        (f"Protocol: {table.protocol}.", False),
        (f"{bold}.", False),
        *_paper_parts(table),
    ]
    parts += [(note, False) for note in table.notes]
    if table.any_flat:
        parts.append((f"{gain.LEGEND}.", False))
    if table.nonstandard_detectors:
        parts.append(("Non-standard detector: not comparable to published numbers.", True))
        parts.append((legend(table.nonstandard_detectors) + ".", False))
    if table.device_mix:
        parts.append(("Cells trained on different device types:", True))
        parts.append((device_mix_text(table.device_mix) + ".", False))
    return parts


def _paper_parts(table: ReportTable) -> list[tuple[str, bool]]:
    """Which evaluation each published number came from, and where they are printed (or why not)."""
    if table.paper is None:
        return []
    if table.kind != "fid":
        return [("The paper reports FID only: no published numbers for this metric.", False)]
    cite = f"{table.paper.cite}, Table {table.paper.key}"
    by_source: dict[PaperSource, list[str]] = {}
    for row in table.paper_rows:
        by_source.setdefault(row.source, []).append(row.label)
    sources = "; ".join(f"{', '.join(labels)}: {source.describe()}" for source, labels in by_source.items())
    notes = "".join(f" {r.label}: {r.note}." for r in table.paper_rows if r.note)
    parts = [(f"Published numbers ({cite}) by the evaluation they came from: {sources}.{notes}", False)]
    if table.aligned_paper:
        sub = "Sub-rows: paper = published; Δ = ours − paper; only beside rows whose numbers share the source's"
        parts.append((f"{sub} protocol and detector; a cell without a published number says why.", False))
    elif not table.unaligned_paper:
        ours = f"{table.metric} with {' / '.join(table.detectors)}"
        parts.append((f"No published number is printed: none came from this table's protocol ({ours}).", False))
    if table.unaligned_paper:
        unaligned = f"Published numbers ({cite}) are unaligned in the source (six values for seven columns)"
        parts.append((f"{unaligned}: printed as given below the table, never placed into columns.", False))
    absent = "; ".join(f"{r.label} ({r.absent})" for r in table.rows if r.absent)
    if absent:
        parts.append((f"No published number beside: {absent}.", False))
    return parts


def device_mix_text(mix: dict[str, list[str]]) -> str:
    """'NVIDIA H200 (9 cells); cpu: FastGAN / obama': the commonest type counted, the others' cells named."""
    (common, cells), *others = mix.items()
    counted = f"{common} ({len(cells)} cell{'s' if len(cells) > 1 else ''})"
    return "; ".join([counted, *(f"{d}: {', '.join(c)}" for d, c in others)])


def legend(detectors: Sequence[str]) -> str:
    """The † legend naming the non-standard detectors."""
    return f"† non-standard detector ({', '.join(detectors)}): not comparable to published numbers"


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
        ours = tuple(_shown(c, table.kind, i in best[j]) for j, c in enumerate(row.cells))
        lines.append(Line("ours", row.group if new_group else "", row.label, ours, _rule(table, i, new_group)))
        previous = row.group
        if row.compared:
            lines.append(Line("paper", "", "paper", tuple(_paper_shown(v) for v in row.paper)))
            deltas = tuple(_delta_shown(c, v) for c, v in zip(row.cells, row.paper, strict=True))
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


def _shown(cell: CellResult, kind: str, bold: bool) -> Shown:
    if cell.status == "absent":
        return Shown("--")
    if cell.status != "done":
        return Shown(cell.status + (f" ({cell.done}/{cell.runs} seeds done)" if cell.runs > 1 else ""))
    std = fmt_number(cell.std, kind) if cell.std is not None else None
    text = fmt_number(cell.mean, kind)
    return Shown(text, std, number=True, bold=bold, dagger=bool(cell.nonstandard), flat=cell.flat)


def _paper_shown(value: float | str | None) -> Shown:
    if value is None:
        return Shown("--")
    return Shown(value) if isinstance(value, str) else Shown(f"{value:.2f}", number=True)


def _delta_shown(cell: CellResult, value: float | str | None) -> Shown:
    if cell.status != "done" or value is None or isinstance(value, str):
        return Shown("--")
    return Shown(fmt_delta(cell.mean - value), number=True, dagger=bool(cell.nonstandard))


_LATEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}", "±": r"$\pm$", "Δ": r"$\Delta$", "−": r"$-$",
    "†": r"\dag{}", "‡": r"\ddag{}", "×": r"$\times$", "³": r"$^3$", "→": r"$\rightarrow$",
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
    return f"${body}$" + (r"\dag" if s.dagger else "") + (r"\ddag" if s.flat else "")


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


def _md_cell(s: Shown) -> str:
    text = s.text if s.std is None else f"{s.text} ± {s.std}"
    text = f"**{text}**" if s.bold else text
    text += " †" if s.dagger else ""
    return (text + f" {gain.MARK}" if s.flat else text).replace("|", "\\|")


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
    "image_number", "paper_image_number", "status", "seeds", "seeds_done", "value", "std", "text", "paper",
    "paper_protocol", "delta", "best", "detector", "detector_standard", "device", "step0", "clearly_better",
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
        "text": _md_cell(_shown(cell, table.kind, False)),
        "paper": "" if paper is None else _paper_shown(paper).text,
        "paper_protocol": row.published.source.describe() if row.published is not None else None,
        "delta": cell.mean - paper if done and isinstance(paper, int | float) else None,
        "best": i in table.best_rows(j) if done else None,
        "detector": ", ".join(cell.detectors) if done else None,
        "detector_standard": not cell.nonstandard if done else None,
        "device": ", ".join(cell.devices) if done else None,
        "step0": cell.step0 if done else None,
        "clearly_better": not cell.flat if done and cell.step0 is not None else None,
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
