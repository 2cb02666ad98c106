"""Every run's evaluation rows as one tidy DataFrame (:func:`collect`)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from bench.files import FileReadError
from bench.results.runs import RunPaths, UnreadableRunError, eval_rows, iter_run_dirs, load_spec, read_state

# Columns every collected row has, in this order (metric/protocol columns follow).
SPEC_COLUMNS = (
    "suite", "run_id", "model", "dataset", "resolution", "seed", "budget_hours", "speed_ratio",
    "budget_scale", "num_gpus", "max_iters", "precision", "status",
)  # fmt: skip


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
        base |= {"run_id": spec.run_id, "status": read_state(paths)["status"]}
        rows.extend(base | row for row in evals)
    if not rows:
        return pd.DataFrame(columns=list(SPEC_COLUMNS))
    df = pd.DataFrame(rows)
    lead = [c for c in SPEC_COLUMNS if c in df.columns]
    return df[lead + [c for c in df.columns if c not in lead]]
