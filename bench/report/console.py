"""Terminal tables: the plan (cells with run ids, budgets and states) and the best-FID summary."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from bench.plan.suites import Cell, Suite
from bench.results.collect import collect
from bench.results.envinfo import device_summary
from bench.results.runs import cell_state


def _fmt_budget(cell: Cell) -> str:
    s = cell.spec
    parts = []
    if s.budget_hours is not None:
        parts.append(f"{s.budget_hours:g} h ref (local {s.budget_seconds:.0f} s)")
    if s.max_iters is not None:
        parts.append(f"{s.max_iters} it")
    return ", ".join(parts)


def plan_table(suite: Suite, cells: list[Cell], out: Path) -> str:
    """The expanded grid with run ids, budgets and states, as a text table (with the device of
    running cells when there are any)."""
    rows, devices = [], []
    for c in cells:
        st = cell_state(out, c)
        progress = f"{st.get('step', 0)} it" if st.get("step") else ""
        row = [c.spec.run_id, c.spec.model, c.spec.dataset, c.spec.resolution, c.spec.seed]
        rows.append(row + [_fmt_budget(c), st["status"], progress])
        running = st["status"] == "running" and isinstance(st.get("device"), dict)
        devices.append(device_summary(st["device"]) if running else "")
    head = ["run_id", "model", "dataset", "res", "seed", "budget", "state", "progress"]
    if any(devices):
        rows, head = [[*r, d] for r, d in zip(rows, devices, strict=True)], [*head, "device"]
    return f"suite {suite.name} ({suite.path}): {len(cells)} cells\n" + tabulate(rows, head, tablefmt="github")


def best_table(suite: Suite, cells: list[Cell], out: Path) -> str:
    """Markdown table of the best (lowest) FID per model × dataset over this suite's runs."""
    df = collect(out, suite.name)
    ids = {c.spec.run_id for c in cells}
    df = df[df["run_id"].isin(ids)] if len(df) else df
    if "kind" not in df.columns or not (df["kind"] == "fid").any():
        return "(no FID evaluations yet)"
    fid = df[df["kind"] == "fid"]
    metric = fid["metric"].iloc[0]
    fid = fid[fid["metric"] == metric]
    best = fid.groupby(["model", "dataset", "seed"])["value"].min().groupby(["model", "dataset"]).mean()
    table = best.unstack("dataset").astype(object)
    for c in cells:  # a diverged run shows as such, never as its last number
        if cell_state(out, c)["status"] == "diverged":
            table.loc[c.spec.model, c.spec.dataset] = "diverged"
    order = list(dict.fromkeys(c.spec.model for c in cells))
    table = table.reindex([m for m in order if m in table.index])
    note = ""
    if "detector_standard" in fid.columns and not fid["detector_standard"].astype(bool).all():
        note = f"\n\nnon-standard detector ({', '.join(sorted(set(fid['detector'])))}): not comparable to published FID"
    body = tabulate(_fmt(table), headers="keys", tablefmt="github")
    return f"best {metric} within budget (mean over seeds)\n\n{body}{note}"


def _fmt(table: pd.DataFrame) -> pd.DataFrame:
    def cell(v: object) -> str:
        if isinstance(v, str):
            return v
        return "--" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"

    return table.map(cell)
