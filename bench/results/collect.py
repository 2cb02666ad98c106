"""Every run's evaluation rows as one tidy DataFrame (:func:`collect`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from bench.results.envinfo import device_type
from bench.results.runs import RunPaths, eval_rows, iter_run_dirs, load_spec, read_state

# Columns every collected row has, in this order (metric/protocol columns follow).
SPEC_COLUMNS = (
    "suite", "run_id", "model", "dataset", "resolution", "seed", "budget_hours", "speed_ratio",
    "budget_scale", "num_gpus", "max_iters", "precision", "status", "device",
)  # fmt: skip


def run_device(paths: RunPaths, state: dict[str, Any]) -> str:
    """The device type(s) a run trained on: its first start's (spec.json) and its latest's (state.json),
    joined by ' + ' when they differ; 'unknown' when neither says."""
    env = json.loads(paths.spec.read_text()).get("environment")
    types = [device_type(env)] if isinstance(env, dict) else []
    if isinstance(state.get("device"), dict):
        types.append(device_type({"device_info": state["device"]}))
    return " + ".join(dict.fromkeys(types)) or "unknown"


def collect(out: Path, suite: str | None = None) -> pd.DataFrame:
    """One tidy DataFrame: a row per (run, evaluation, metric), spec and protocol as columns."""
    rows = []
    for run_dir in iter_run_dirs(out, suite):
        spec = load_spec(run_dir)
        paths = RunPaths(run_dir)
        base = {k: v for k, v in spec.to_dict().items() if k in SPEC_COLUMNS}
        state = read_state(paths)
        base |= {"run_id": spec.run_id, "status": state["status"], "device": run_device(paths, state)}
        rows.extend(base | row for row in eval_rows(paths))
    if not rows:
        return pd.DataFrame(columns=list(SPEC_COLUMNS))
    df = pd.DataFrame(rows)
    lead = [c for c in SPEC_COLUMNS if c in df.columns]
    return df[lead + [c for c in df.columns if c not in lead]]
