"""Runs trained with other model settings than the code's current defaults: 'stale'.

A cell's run id hashes its spec (the suite's overrides, not the model's defaults), so a run made before
a family's default changed (say FastGAN's EMA decay) still counts as the cell's run. Its ``spec.json``
records the hyper-parameters it was built with (``resolved.model_hparams``); :func:`stale_changes`
compares them with those the model has now (:func:`bench.report.structure.built_facts`, remembered:
no torch on a warm call). ``status``, the dry run and the report's budget table mark such runs and
name what changed, with the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.plan.specs import RunSpec
from bench.plan.suites import Cell
from bench.report.structure import built_facts
from bench.results.runs import RunPaths, recorded_resolved

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


def stale_lines(cells: list[Cell], out: Path) -> list[str]:
    """:func:`stale_notes` of the runs of ``cells`` under ``out`` (for ``report``'s closing lines)."""
    return stale_notes([{"model": c.spec.model, "stale": stale_changes(c.spec, out)} for c in cells])
