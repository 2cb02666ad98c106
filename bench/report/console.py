"""Terminal tables: the plan (cells with run ids, budgets and states: bench.report.budgets) and the
best-FID summary, which names its protocol and flags models not clearly better than their untrained
generator (step 0)."""

from __future__ import annotations

import math
from pathlib import Path

from tabulate import tabulate

from bench.plan.suites import Cell, Suite
from bench.report import gain
from bench.report.budgets import budget_text
from bench.report.tables import protocol_text, select_runs
from bench.results.collect import collect
from bench.results.runs import cell_state


def plan_table(suite: Suite, cells: list[Cell], out: Path) -> str:
    """The expanded grid with run ids, budgets (with their conversion), states and progress, as a text table
    (with the device of running cells when there are any)."""
    ref = f"; budgets in hours of {suite.reference_gpu}" if suite.reference_gpu else ""
    return f"suite {suite.name} ({suite.path}): {len(cells)} cells{ref}\n" + budget_text(cells, out)


def best_table(suite: Suite, cells: list[Cell], out: Path) -> str:
    """Markdown table of the best (lowest) FID per model × dataset over this suite's runs, within budget and
    after step 0, with its protocol (detector, BatchNorm, generation batch) and the step-0 check's flags."""
    df = collect(out, suite.name)
    ids = {c.spec.run_id for c in cells}
    df = df[df["run_id"].isin(ids)] if len(df) else df
    if "kind" not in df.columns or not (df["kind"] == "fid").any():
        return "(no FID evaluations yet)"
    fid = df[df["kind"] == "fid"]
    metric = fid["metric"].iloc[0]
    fid = fid[fid["metric"] == metric].assign(eval_point=fid.get("eval_point", math.nan))
    best = select_runs(fid, metric, "fid", "best")
    flat = gain.flat_runs(best, gain.step0_of(best, fid, metric), "fid")
    table = best.groupby(["model", "dataset"])["value"].mean().unstack("dataset").astype(object).map(_fmt_value)
    for model, dataset in {(best.loc[r, "model"], best.loc[r, "dataset"]) for r in flat}:
        table.loc[model, dataset] += f" {gain.MARK}"  # some seed not clearly better than its untrained generator
    for c in cells:  # a diverged run shows as such, never as its last number
        if cell_state(out, c)["status"] == "diverged":
            table.loc[c.spec.model, c.spec.dataset] = "diverged"
    order = list(dict.fromkeys(c.spec.model for c in cells))
    table = table.reindex([m for m in order if m in table.index]).fillna("--")
    notes = [f"protocol: {protocol_text(fid, metric)}"]
    if "detector_standard" in fid.columns and not fid["detector_standard"].astype(bool).all():
        names = ", ".join(sorted(set(fid["detector"])))
        notes.append(f"non-standard detector ({names}): not comparable to published FID")
    notes += [gain.LEGEND] if flat else []
    body = tabulate(table, headers="keys", tablefmt="github")
    return f"best {metric} within budget (mean over seeds)\n\n{body}\n\n" + "\n".join(notes)


def _fmt_value(v: object) -> str:
    if isinstance(v, str):
        return v
    return "--" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"
