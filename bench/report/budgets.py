"""Budgets per cell, as ``--dry-run``, ``status`` and ``report`` show them.

A row says the suite's label of the cell, the reference-GPU-hours (scaled), the local seconds they
convert to, the iteration or kimg cap, the speed ratio and where it came from
(:mod:`bench.plan.sources`), a compute budget with the iterations, kimg and images it buys
(:mod:`bench.plan.compute`), and once a run has trained the iterations, kimg and images it reached
and which limit ended it (a running cell: its device and the training time left). Cells that differ
only in their dataset share one printed row unless ``wide`` (then each shows its run id); columns
that are empty for every row are left out; the notes end with the cells' total budget. A cell whose
own run folder is missing but which was run with other budget settings
(:mod:`bench.results.variants`) shows that run, marked, with the flags that address it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.plan.compute import compute_fields
from bench.plan.sources import describe_source, source_flags, source_label
from bench.plan.specs import RunSpec
from bench.plan.suites import Cell
from bench.results.envinfo import device_summary
from bench.results.io import atomic_write_text
from bench.results.runs import cell_state
from bench.results.variants import budget_variants


def budget_row(
    spec: RunSpec, state: dict[str, Any], cell_spec: RunSpec | None = None, label: str = ""
) -> dict[str, Any]:
    """One cell's budget and progress as a tidy row (numbers unformatted); ``cell_spec``: the cell's
    own spec when ``spec`` is a run of it made with other budget settings; ``label``: its row's name."""
    kimg = state.get("kimg")
    running = state["status"] == "running" and isinstance(state.get("device"), dict)
    return {
        "run_id": spec.run_id, "label": label or spec.model, "model": spec.model, "dataset": spec.dataset,
        "resolution": spec.resolution,
        "seed": spec.seed, "budget_hours": spec.budget_hours, "budget_scale": spec.budget_scale,
        "ref_hours": None if spec.budget_hours is None else spec.budget_hours * spec.budget_scale,
        "local_seconds": spec.converted_seconds, "time_charged": spec.budget_seconds is not None,
        "max_iters": spec.max_iters, "max_kimg": spec.max_kimg, "budget_pin": spec.budget_pin,
        "speed_ratio": spec.speed_ratio, "budget_source": spec.budget_source,
        "status": state["status"], "iterations": state.get("step"), "kimg": kimg,
        "images": None if kimg is None else round(kimg * 1000), "train_seconds": state.get("train_seconds"),
        "budget_applied": state.get("budget_applied"), "other_budget": cell_spec is not None,
        "flags": source_flags(spec, cell_spec), "device": device_summary(state["device"]) if running else "",
        "left_seconds": _left(state) if state["status"] == "running" else None,
        **compute_fields(spec),
    }  # fmt: skip


def _left(state: dict[str, Any]) -> float | None:
    """Training seconds left: those trained so far times the share of the budget still to go."""
    used, seconds = state.get("budget_fraction"), state.get("train_seconds")
    if not isinstance(used, int | float) or not isinstance(seconds, int | float) or not 0 < used <= 1:
        return None
    return seconds * (1 - used) / used


def budget_rows(cells: list[Cell], out: Path) -> list[dict[str, Any]]:
    """:func:`budget_row` per cell; a cell run only with other budget settings shows that run."""
    variants = budget_variants(out, cells)
    rows = []
    for c in cells:
        spec = variants.get(c.spec.run_id, c.spec)
        state = cell_state(out, Cell(spec, c.label, c.group))
        label = f"{c.label} ({c.group})" if c.group else c.label
        rows.append(budget_row(spec, state, c.spec if spec is not c.spec else None, label))
    return rows


def _num(v: float | None, fmt: str = ",.0f") -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _hours(r: dict[str, Any]) -> str:
    if r["ref_hours"] is None:
        return "--"
    scaled = f"{r['ref_hours']:.4g}"
    return scaled if r["budget_scale"] == 1 else f"{scaled} ({r['budget_hours']:g} x {r['budget_scale']:g})"


def _caps(r: dict[str, Any]) -> str:
    caps = [f"{math.ceil(r['max_iters'] * r['budget_scale']):,} it" if r["max_iters"] and r["budget_pin"] != "kimg"
            else "", f"{r['max_kimg'] * r['budget_scale']:g} kimg" if r["max_kimg"] and r["budget_pin"] != "iters"
            else ""]  # fmt: skip
    text = ", ".join(c for c in caps if c)
    return f"pinned: {text}" if r["budget_pin"] else text


def _local(r: dict[str, Any]) -> str:
    secs = r["local_seconds"]
    if secs is None:
        return ""
    s = _num(secs) + (f" ({secs / 3600:.3g} h)" if secs >= 3600 else "")
    return s if r["time_charged"] else f"({s}, not charged)"


def _ratio(r: dict[str, Any]) -> str:
    """The speed ratio and its source; "--" for a cell without hours (an iteration or kimg budget only)."""
    return "--" if r["ref_hours"] is None else f"{r['speed_ratio']:.3g} {source_label(r['budget_source'])}"


def _compute(r: dict[str, Any]) -> str:
    """'60 s of cpu-epyc-zen4 x2 / 0.0602 s per it = 997 it, 7.98 kimg, 7,976 images' (empty without one)."""
    if not r["compute_budget_s"]:
        return ""
    per_it = f"{r['compute_budget_s']:g} s of {r['compute_device']} / {r['compute_step_s']:.3g} s per it"
    return f"{per_it} = {r['planned_iterations']:,} it, {r['planned_kimg']:.3g} kimg, {r['planned_images']:,} images"


def compute_note(cells: list[Cell]) -> str:
    """'Compute budget, the same for every row: 22 s of rtx-2080-ti (step-cost model): Baseline 798 it
    (6.38 kimg), ...' for the cells with a compute budget ('' when none has one)."""
    rows = {(c.group, c.label): compute_fields(c.spec) for c in cells if c.spec.compute}
    if not rows:
        return ""
    budgets = sorted({f"{r['compute_budget_s']:g} s of {r['compute_device']}" for r in rows.values()})
    each = [f"{label} {r['planned_iterations']:,} it ({r['planned_kimg']:.3g} kimg)" for (_, label), r in rows.items()]
    return f"Compute budget per row: {' / '.join(budgets)} (step-cost model), i.e. {', '.join(each)}."


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 90:
        return f"~{seconds:.0f} s"
    return f"~{seconds / 60:.0f} min" if seconds < 5400 else f"~{seconds / 3600:.1f} h"


def _cells(r: dict[str, Any]) -> dict[str, str]:
    """One row's printed cells, by column."""
    return {
        "run_id": ("* " if r["other_budget"] else "") + r["run_id"],
        "row": ("* " if r["other_budget"] else "") + r["label"], "model": r["model"],
        "dataset": r["dataset"], "res": str(r["resolution"]), "seed": str(r["seed"]), "ref h": _hours(r),
        "local s": _local(r), "cap": _caps(r), "speed ratio": _ratio(r), "state": r["status"],
        "it": _num(r["iterations"]), "kimg": _num(r["kimg"], ".3g") if r["kimg"] else "", "images": _num(r["images"]),
        "stopped by": r["budget_applied"] or "", "compute budget (planned)": _compute(r), "device": r["device"],
        "left": _duration(r["left_seconds"]),
    }  # fmt: skip


def _collapsed(shown: list[dict[str, str]], datasets: list[str]) -> list[dict[str, str]]:
    """Rows equal but for their dataset (and run id) as one, naming its datasets ('all N' for every one);
    when no two rows are alike, the rows as they are (run ids kept)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for cells in shown:
        groups.setdefault(tuple(v for k, v in cells.items() if k not in ("run_id", "dataset")), []).append(
            cells["dataset"])  # fmt: skip
    if len(groups) == len(shown):
        return shown
    out = []
    for cells in shown:
        key = tuple(v for k, v in cells.items() if k not in ("run_id", "dataset"))
        if key in groups:
            names = groups.pop(key)
            every = len(names) > 1 and set(names) == set(datasets)
            out.append({k: v for k, v in cells.items() if k != "run_id"} | {
                "dataset": f"all {len(names)}" if every else ", ".join(names)})  # fmt: skip
    return out


def table_text(rows: list[dict[str, Any]], *, wide: bool = False) -> str:
    """The rows as a terminal table (github style): one per cell with its run id when ``wide`` (or when no
    two cells differ only in their dataset), else those cells as one row; columns empty in every row left
    out."""
    shown = [_cells(r) for r in rows]
    if not wide:
        shown = _collapsed(shown, list(dict.fromkeys(r["dataset"] for r in rows)))
    if all(c["model"] == c["row"] for c in shown):
        shown = [{k: v for k, v in c.items() if k != "model"} for c in shown]
    columns = [k for k in (shown[0] if shown else {}) if any(c[k] not in ("", "--") for c in shown)]
    head = ["datasets" if k == "dataset" and "run_id" not in columns else k for k in columns]
    return tabulate([[c[k] for k in columns] for c in shown], head, tablefmt="github", disable_numparse=True)


def notes(rows: list[dict[str, Any]]) -> list[str]:
    """Lines under the table: every conversion source in words, the scale, and runs made otherwise."""
    timed = [r for r in rows if r["ref_hours"] is not None]
    lines = [f"speed ratio, {source_label(code)}: {describe_source(code)}"
             for code in dict.fromkeys(r["budget_source"] for r in timed)]  # fmt: skip
    if timed:
        lines.append("local s = ref h x 3600 / speed ratio x GPUs (reference-GPU-hours of the suite's reference_gpu)")
    if any(r["compute_budget_s"] for r in rows):
        lines.append("compute budget: seconds of the named device per row, converted to each model's iterations by "
                     "the step-cost model (its step counted on the meta device, timed by the device's roofline; "
                     "bench/plan/compute.py): the same iterations on any machine")  # fmt: skip
    if any(r["ref_hours"] is None and not r["compute_budget_s"] for r in rows):
        lines.append("cells without ref h: budgets in iterations or kimg only (the same run on any device)")
    scales = sorted({r["budget_scale"] for r in rows})
    if scales and scales != [1.0]:
        lines.append(f"budget scale {', '.join(f'{s:g}' for s in scales)}: every limit (hours, iterations, kimg) "
                     "scaled; ref h shows the scaled hours")  # fmt: skip
    if timed:
        ref = sum(r["ref_hours"] for r in timed)
        local = sum(r["local_seconds"] for r in timed if r["time_charged"]) / 3600
        lines.append(f"total: {len(rows)} cells, {ref:.4g} reference GPU-hours = {local:.4g} h of training here at "
                     "these speed ratios (evaluations and checkpoints extra)")  # fmt: skip
    others = [r["flags"] for r in rows if r["other_budget"]]
    for flags in dict.fromkeys(others):
        lines.append(f"* {others.count(flags)} cell(s) shown as run with other budget settings; pass "
                     f"`{flags or '(no flags)'}` to address them")  # fmt: skip
    return lines


def budget_text(cells: list[Cell], out: Path, *, wide: bool = False) -> str:
    """The budget table with its notes (``wide``: a row per cell, with its run id)."""
    rows = budget_rows(cells, out)
    return table_text(rows, wide=wide) + "\n" + "\n".join(notes(rows))


def write_budget_table(suite_name: str, cells: list[Cell], out: Path, out_dir: Path) -> list[Path]:
    """``<out_dir>/tables/<suite>-budgets.{md,csv}``: the budget rows (Markdown with notes, tidy CSV)."""
    import pandas as pd

    rows = budget_rows(cells, out)
    base = Path(out_dir) / "tables" / f"{suite_name}-budgets"
    md = f"Budgets of suite {suite_name}\n\n{table_text(rows, wide=True)}\n\n" + "\n".join(
        f"- {n}" for n in notes(rows)
    )
    atomic_write_text(base.with_suffix(".md"), md + "\n")
    atomic_write_text(base.with_suffix(".csv"), pd.DataFrame(rows).to_csv(index=False))
    return [base.with_suffix(".md"), base.with_suffix(".csv")]


def other_budget_note(cells: list[Cell], out: Path) -> str | None:
    """Which flags address the runs of ``cells`` made with other budget settings (None when none were)."""
    by_id = {c.spec.run_id: c.spec for c in cells}
    flags = [source_flags(s, by_id[run_id]) for run_id, s in budget_variants(out, cells).items()]
    if not flags:
        return None
    parts = [f"`{f or '(no flags)'}` ({flags.count(f)} cell(s))" for f in dict.fromkeys(flags)]
    return f"{len(flags)} cell(s) were run with other budget settings; pass " + " or ".join(parts)
