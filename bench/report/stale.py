"""Runs trained with other model settings than the code's current defaults: 'stale'.

A cell's run id hashes its spec (the suite's overrides, not the model's defaults), so a run made before
a family's default changed (say FastGAN's EMA decay) still counts as the cell's run. Its ``spec.json``
records the hyper-parameters it was built with (``resolved.model_hparams``); :func:`stale_changes`
compares them with those the model has now (:func:`bench.report.structure.built_facts`, remembered:
no torch on a warm call). ``status``, the dry run and the report's budget table mark such runs and
name what changed, with the fix; the report's tables mark their cells with :data:`MARK` and say the same
under the table (:func:`mark_stale`, :func:`mark_study_stale`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.plan.specs import RunSpec
from bench.plan.suites import Cell
from bench.report.structure import built_facts
from bench.results.runs import RunPaths, recorded_resolved

if TYPE_CHECKING:
    from bench.report.study import StudyResult
    from bench.report.tables import CellLike, ReportTable, SuiteLike

MARK = "§"  # beside a table cell whose runs include a stale one
FIX = "not the current model's numbers; move their run folders away and run the suite again"
_IGNORED = ("init_from",)  # a checkpoint's path, not a hyper-parameter of the modules or the training


def stale_changes(spec: RunSpec, out: Path) -> str:
    """'ema_decay 0.98 → 0.999, ...': the hyper-parameters the run of ``spec`` under ``out`` was built with
    that differ from the model's now; '' when none do, when no run (or no record) exists, or when the
    model cannot be built now (its own error says why where it matters)."""
    recorded = recorded_resolved(RunPaths.of(out, spec).root).get("model_hparams")
    if not isinstance(recorded, dict):
        return ""
    kwargs = {k: v for k, v in spec.model_kwargs.items() if k not in _IGNORED}
    facts = built_facts(spec.model, spec.resolution, kwargs)
    if facts is None:
        return ""
    now = facts["hparams"]
    changed = [k for k in sorted(set(recorded) | set(now)) if k not in _IGNORED and recorded.get(k) != now.get(k)]
    return ", ".join(f"{k} {_shown(recorded, k)} → {_shown(now, k)}" for k in changed)


def _shown(hparams: dict[str, Any], key: str) -> str:
    return repr(hparams[key]) if key in hparams else "(none)"


def stale_notes(rows: list[dict[str, Any]]) -> list[str]:
    """One line per model and change among budget rows (their ``stale``), with the fix."""
    found: dict[tuple[str, str], int] = {}
    for r in rows:
        if r.get("stale"):
            found[(r["model"], r["stale"])] = found.get((r["model"], r["stale"]), 0) + 1
    return [f"stale: {n} run(s) of {model} built with other settings than {model}'s now ({changes}): {FIX}"
            for (model, changes), n in found.items()]  # fmt: skip


def stale_lines(cells: list[Cell], stale: dict[str, str]) -> list[str]:
    """:func:`stale_notes` of the ``stale`` runs (:func:`stale_runs`) among ``cells`` (``report``'s closing lines)."""
    return stale_notes([{"model": c.spec.model, "stale": stale.get(c.spec.run_id, "")} for c in cells])


def stale_runs(cells: Iterable[CellLike], out: Path) -> dict[str, str]:
    """run_id -> :func:`stale_changes` of each stale run of ``cells`` under ``out`` (read once per report)."""
    return {c.spec.run_id: changes for c in cells if (changes := stale_changes(c.spec, out))}


def mark_stale(table: ReportTable, suite: SuiteLike, stale: dict[str, str]) -> ReportTable:
    """``table`` with each number whose runs include a ``stale`` one (:func:`stale_runs`) marked (its cell's
    ``stale``: what changed) and, under the table, the note ``status`` prints for them after :data:`MARK`."""
    from bench.report.tables import row_cells  # the tables import the budget table, which imports this module

    rows, found = [], []
    for row in table.rows:
        cells = []
        for dataset, cell in zip(table.datasets, row.cells, strict=True):
            runs = [(c.spec.model, stale[c.spec.run_id]) for c in row_cells(suite, (row.group, row.label), dataset)
                    if c.spec.run_id in stale and cell.status == "done"]  # fmt: skip
            found += [{"model": model, "stale": changes} for model, changes in runs]
            cells.append(replace(cell, stale="; ".join(dict.fromkeys(c for _, c in runs))) if runs else cell)
        rows.append(replace(row, cells=tuple(cells)))
    notes = tuple(f"{MARK} {line}." for line in stale_notes(found))
    return replace(table, rows=tuple(rows), notes=table.notes + notes) if found else table


def mark_study_stale(result: StudyResult, suite: SuiteLike, stale: dict[str, str]) -> StudyResult:
    """:func:`mark_stale` for a study: a cell whose seeds with a value include a stale run is marked."""
    runs = {(c.spec.model, c.spec.dataset, c.spec.seed): c.spec.run_id for c in suite.cells}
    stale = {k: stale[run_id] for k, run_id in runs.items() if run_id in stale}  # (model, dataset, seed) -> changes
    used: dict[tuple[str, str, int], str] = {}  # the stale runs behind some number (each counted once)
    tables = []
    for table in result.tables:
        rows = []
        for row in table.rows:
            cells = []
            for dataset, cell in zip(table.datasets, row.cells, strict=True):
                runs = {k: stale[k] for seed in cell.values if (k := (row.model, dataset, seed)) in stale}
                used |= runs
                cells.append(replace(cell, stale="; ".join(dict.fromkeys(runs.values()))) if runs else cell)
            rows.append(replace(row, cells=tuple(cells)))
        tables.append(replace(table, rows=tuple(rows)))
    notes = tuple(f"{MARK} {line}." for line in stale_notes([{"model": k[0], "stale": v} for k, v in used.items()]))
    return replace(result, tables=tuple(tables), notes=result.notes + notes) if used else result
