"""Every run's evaluation rows as one tidy DataFrame (:func:`collect`)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from bench.files import FileReadError, read_json
from bench.results.envinfo import device_type
from bench.results.runs import RunPaths, UnreadableRunError, eval_rows, iter_run_dirs, load_spec, read_state

# Columns every collected row has, in this order (metric/protocol columns follow).
SPEC_COLUMNS = (
    "suite", "run_id", "model", "dataset", "resolution", "seed", "budget_hours", "speed_ratio", "budget_source",
    "budget_scale", "num_gpus", "max_iters", "max_kimg", "budget_pin", "precision", "status", "device",
)  # fmt: skip


def run_device(paths: RunPaths, state: dict[str, Any]) -> str:
    """The device type(s) a run trained on: its first start's (spec.json) and its latest's (state.json),
    joined by ' + ' when they differ; 'unknown' when neither says."""
    env = read_json(paths.spec).get("environment")  # readable: load_spec read it
    types = [device_type(env)] if isinstance(env, dict) else []
    if isinstance(state.get("device"), dict):
        types.append(device_type({"device_info": state["device"]}))
    return " + ".join(dict.fromkeys(types)) or "unknown"


def collect(out: Path, suite: str | None = None) -> pd.DataFrame:
    """One tidy DataFrame: a row per (run, evaluation, metric), spec and protocol as columns."""
    rows = []
    for run_dir in iter_run_dirs(out, suite):
        paths = RunPaths(run_dir)
        try:
            spec = load_spec(run_dir)
            evals = eval_rows(paths)
        except (UnreadableRunError, FileReadError) as exc:  # one broken run folder does not hide the others
            warnings.warn(f"run skipped: {exc}", stacklevel=2)
            continue
        base = {k: v for k, v in spec.to_dict().items() if k in SPEC_COLUMNS}
        state = read_state(paths)
        base |= {"run_id": spec.run_id, "status": state["status"], "device": run_device(paths, state)}
        rows.extend(base | row for row in evals)
    if not rows:
        return pd.DataFrame(columns=list(SPEC_COLUMNS))
    df = pd.DataFrame(rows)
    lead = [c for c in SPEC_COLUMNS if c in df.columns]
    return df[lead + [c for c in df.columns if c not in lead]]
