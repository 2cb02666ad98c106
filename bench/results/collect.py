"""Every run's evaluation rows as one tidy DataFrame (:func:`collect`): the one reader of stored results.

Each row is checked once, here (:mod:`bench.results.rows`), before any table, status line, curve or
step-0 check sees it. A run whose spec.json, state.json or a row of evals.jsonl is unusable gives one
row with ``status`` 'unreadable' and the reason with its fix in ``error`` (and a warning); the other
runs are collected as usual.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from bench.files import FileReadError, read_json
from bench.results.envinfo import device_type
from bench.results.runs import (
    RunPaths,
    UnreadableRunError,
    checked_eval_rows,
    checked_rows,
    iter_run_dirs,
    load_spec,
    read_state,
)

# Columns every collected row has, in this order (metric/protocol columns follow).
SPEC_COLUMNS = (
    "suite", "run_id", "model", "dataset", "resolution", "seed", "budget_hours", "speed_ratio", "budget_source",
    "budget_scale", "num_gpus", "max_iters", "max_kimg", "budget_pin", "precision", "status", "device",
)  # fmt: skip
NOISE_FIX = "delete the file (`run` of the suite measures the evaluation spread again)"
UNREADABLE = "unreadable"  # the status of a run whose files cannot be used (its row's ``error`` says why)


def run_device(paths: RunPaths, state: dict[str, Any]) -> str:
    """The device type(s) a run trained on: its first start's (spec.json) and its latest's (state.json),
    joined by ' + ' when they differ; 'unknown' when neither says."""
    env = read_json(paths.spec).get("environment")  # readable: load_spec read it
    types = [device_type(env)] if isinstance(env, dict) else []
    if isinstance(state.get("device"), dict):
        types.append(device_type({"device_info": state["device"]}))
    return " + ".join(dict.fromkeys(types)) or "unknown"


def collect(out: Path, suite: str | None = None) -> pd.DataFrame:
    """One tidy DataFrame: a row per (run, evaluation, metric), spec and protocol as columns; an unusable
    run gives one row (run_id = its folder's name, status 'unreadable', ``error``: why and the fix)."""
    rows = []
    for run_dir in iter_run_dirs(out, suite):
        paths = RunPaths(run_dir)
        try:
            spec = load_spec(run_dir)
            evals = checked_eval_rows(paths)
        except (UnreadableRunError, FileReadError) as exc:  # one broken run folder does not hide the others
            warnings.warn(f"run skipped: {exc}", stacklevel=2)
            rows.append({"suite": run_dir.parent.name, "run_id": run_dir.name, "status": UNREADABLE, "error": str(exc)})
            continue
        base = {k: v for k, v in spec.to_dict().items() if k in SPEC_COLUMNS}
        state = read_state(paths)
        base |= {"run_id": spec.run_id, "status": state["status"], "device": run_device(paths, state)}
        if state["status"] == UNREADABLE:  # its numbers are kept; its cells show the reason
            warnings.warn(f"run state unreadable: {state['error']}", stacklevel=2)
            base["error"] = state["error"]
        rows.extend(base | row for row in evals)
    if not rows:
        return pd.DataFrame(columns=list(SPEC_COLUMNS))
    df = pd.DataFrame(rows)
    lead = [c for c in SPEC_COLUMNS if c in df.columns]
    return df[lead + [c for c in df.columns if c not in lead]]


def collect_eval_noise(out: Path, suite: str) -> pd.DataFrame:
    """The rows of the suite's runs' ``eval_noise.jsonl`` files (a snapshot re-scored with other evaluation
    seeds: :mod:`bench.tools.evalnoise`), with the run's ``run_id``, ``model``, ``dataset`` and ``seed``; a
    run whose file or spec cannot be used is left out with a warning."""
    rows = []
    for run_dir in iter_run_dirs(out, suite):
        paths = RunPaths(run_dir)
        if not paths.eval_noise.exists():
            continue
        try:
            spec = load_spec(run_dir)
            noise = checked_rows(paths.eval_noise, NOISE_FIX)
        except (UnreadableRunError, FileReadError) as exc:
            warnings.warn(f"evaluation spread skipped: {exc}", stacklevel=2)
            continue
        base = {"run_id": spec.run_id, "model": spec.model, "dataset": spec.dataset, "seed": spec.seed}
        rows.extend(base | row for row in noise)
    return pd.DataFrame(rows, columns=None if rows else ["run_id", "model", "dataset", "seed"])


def unreadable_runs(df: pd.DataFrame) -> dict[str, str]:
    """run_id -> why (with the fix), for the runs :func:`collect` could not use."""
    if "status" not in df.columns or "error" not in df.columns:
        return {}
    bad = df[(df["status"] == UNREADABLE) & df["error"].notna()]
    return dict(zip(bad["run_id"].astype(str), bad["error"].astype(str), strict=True))
