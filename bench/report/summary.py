"""The terminal's best-FID summary (``run``'s last table, ``status``), built as the report's table
(:func:`bench.report.tables.build_tables`: one protocol, the suite's labels, the step-0 check's ‡, the
digits its sample size supports)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from bench.errors import BenchError
from bench.plan.suites import Cell, Suite
from bench.report import gain
from bench.report.tables import CellResult, ReportTable, build_tables
from bench.report.words import fmt_number
from bench.results.collect import collect, unreadable_runs
from bench.results.runs import cell_state


def best_table(suite: Suite, cells: list[Cell], out: Path, *, detector: str | None = None) -> str:
    """Markdown table of the best FID per row (the suite's labels) × dataset over these cells' runs, within
    budget and after step 0, under the suite's own detector, with the protocol and the step-0 check's flags;
    other detectors' numbers are only named (``report`` tabulates them); ``detector``: that detector's numbers."""
    df = collect(out, suite.name)
    mine = dataclasses.replace(suite, cells=cells, datasets=[d for d in suite.datasets if any(
        c.spec.dataset == d for c in cells)])  # fmt: skip
    states = {c.spec.run_id: cell_state(out, c)["status"] for c in cells}
    fid = df[df["kind"] == "fid"] if "kind" in df.columns else df.iloc[:0]
    fid = fid[fid["run_id"].isin(states)]
    if fid.empty:
        return "(no FID evaluations yet)" + _unreadable_lines(df, states)
    metric = next((m for m in dict.fromkeys(p for c in cells for p in c.spec.protocols) if m in set(fid["metric"])),
                  str(fid["metric"].iloc[0]))  # fmt: skip
    try:
        tables = build_tables(mine, df, metric=metric, states=states, detector=detector)
    except BenchError as exc:
        return f"({exc})"
    text = _text(tables[0])
    others = [f"{t.key.detector_name} ({t.stem})" for t in tables[1:]]
    if others:
        text += f"\nalso scored with: {', '.join(others)}; `report` writes each its own table"
    return text + _unreadable_lines(df, states)


def _text(table: ReportTable) -> str:
    """The table as terminal Markdown: its notes' protocol, the non-standard warning and the ‡ legend."""
    head = ["model", *table.datasets]
    body = []
    for row in table.rows:
        label = f"{row.label} ({row.group})" if row.group else row.label
        body.append([label, *(_cell(c, table) for c in row.cells)])
    seeds = "mean over seeds" if table.seeds > 1 else "one seed"
    body_text = tabulate(body, head, tablefmt="github", disable_numparse=True)
    lines = [f"best {table.metric} within budget ({seeds})", "", body_text, "", f"protocol: {table.protocol}"]
    if table.nonstandard_detectors:
        lines.append(
            f"non-standard detector ({', '.join(table.nonstandard_detectors)}): not comparable to published FID"
        )
    apart = [row.label for row in table.rows if row.multiple != 1]
    if apart:
        lines.append(f"at other compute budgets, never ranked with the others: {', '.join(apart)}")
    return "\n".join(lines + ([gain.LEGEND] if table.any_flat else []))


def _cell(cell: CellResult, table: ReportTable) -> str:
    if cell.status == "absent":
        return "--"
    if cell.status != "done":
        return {"pending": "--", "mixed": "mixed protocol"}.get(cell.status, cell.status)
    value = fmt_number(cell.mean, table.kind, table.digits)
    return value + (f" {gain.MARK}" if cell.flat else "")


def _unreadable_lines(df: pd.DataFrame, states: dict[str, str]) -> str:
    bad = {r: why for r, why in unreadable_runs(df).items() if r in states}
    return "".join(f"\nunreadable: {why}" for why in bad.values())
