"""Runs of a suite's cells made with other budget settings (speed ratio, budget scale, their source).

A cell's run id hashes its local budget, so the same cell run with ``--budget-scale 0.01``, another
``--speed-ratio`` or on another device lives in another folder. ``status`` and ``report`` find those
runs here (by the rest of the spec) and say which flags address them.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.plan.specs import RunSpec
from bench.plan.suites import Cell
from bench.results.runs import RunPaths, UnreadableRunError, iter_run_dirs, load_spec

BUDGET_ONLY = ("speed_ratio", "budget_scale", "budget_source")  # what the flags change, not the cell


def _identity(spec: RunSpec) -> str:
    d = spec.to_dict()
    for key in (*BUDGET_ONLY, "suite"):
        d.pop(key)
    return json.dumps(d, sort_keys=True)


def _updated(run_dir: Path) -> float:
    paths = RunPaths(run_dir)
    return max((p.stat().st_mtime for p in (paths.state, paths.spec) if p.exists()), default=0.0)


def budget_variants(out: Path, cells: list[Cell]) -> dict[str, RunSpec]:
    """Cell run id -> the spec of the run of that cell made with other budget settings (the one
    updated last), for the cells whose own run folder does not exist."""
    missing = {_identity(c.spec): c.spec for c in cells if not RunPaths.of(out, c.spec).spec.exists()}
    found: dict[str, tuple[float, RunSpec]] = {}
    for suite in sorted({s.suite for s in missing.values()}):
        for run_dir in iter_run_dirs(out, suite):
            try:
                spec = load_spec(run_dir)
            except UnreadableRunError:
                continue  # unreadable or from another version: not a match (status reports it)
            cell_spec = missing.get(_identity(spec))
            if cell_spec is not None and _updated(run_dir) >= found.get(cell_spec.run_id, (-1.0, spec))[0]:
                found[cell_spec.run_id] = (_updated(run_dir), spec)
    return {run_id: spec for run_id, (_, spec) in found.items()}
