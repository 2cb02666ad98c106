"""Per-run files and the tidy results table.

Layout: ``<out>/runs/<suite>/<run_id>/`` holds ``spec.json`` (resolved spec and environment),
``state.json`` (status and progress), ``evals.jsonl`` (one row per metric per evaluation),
``samples/`` (grids), ``snapshots/`` (weights at each evaluation) and ``checkpoints/`` (latest
training state). :func:`collect` turns every run's rows into one tidy DataFrame.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.io import append_jsonl, atomic_write_json, read_jsonl
from bench.specs import RunSpec

STATES = ("todo", "running", "done", "failed", "diverged")
# Columns every collected row has, in this order (metric/protocol columns follow).
SPEC_COLUMNS = (
    "suite", "run_id", "model", "dataset", "resolution", "seed", "budget_hours", "speed_ratio",
    "budget_scale", "num_gpus", "max_iters", "precision", "status",
)  # fmt: skip


@dataclass(frozen=True)
class RunPaths:
    """Where one run's files live."""

    root: Path

    @classmethod
    def of(cls, out: Path, spec: RunSpec) -> RunPaths:
        """Paths of ``spec``'s run under the results folder ``out``."""
        return cls(Path(out) / "runs" / spec.suite / spec.run_id)

    @property
    def spec(self) -> Path:
        return self.root / "spec.json"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def evals(self) -> Path:
        return self.root / "evals.jsonl"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"


def read_state(paths: RunPaths) -> dict[str, Any]:
    """The run's state (``{"status": "todo"}`` when it never started or the file is unreadable)."""
    try:
        state = json.loads(paths.state.read_text())
    except (OSError, json.JSONDecodeError):
        return {"status": "todo"}
    return state if isinstance(state, dict) and state.get("status") in STATES else {"status": "todo"}


def write_state(paths: RunPaths, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into state.json (atomically) and return the new state."""
    state = read_state(paths) | fields | {"updated": time.time()}
    atomic_write_json(paths.state, state)
    return state


def record_event(paths: RunPaths, kind: str, **fields: Any) -> None:
    """Append an event (resume, corrupt checkpoint, divergence, ...) to events.jsonl."""
    append_jsonl(paths.events, {"event": kind, "time": time.time(), **fields})


def eval_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies an evaluation row: (snapshot, metric, detector weights hash, generator weights)."""
    return row.get("snapshot"), row.get("metric"), row.get("detector_sha256"), row.get("weights")


def eval_rows(paths: RunPaths) -> list[dict[str, Any]]:
    """The run's evaluation rows, de-duplicated on :func:`eval_key`, first kept."""
    seen: set[tuple[Any, ...]] = set()
    rows = []
    for row in read_jsonl(paths.evals):
        key = eval_key(row)
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


def append_eval_row(paths: RunPaths, row: dict[str, Any]) -> None:
    """Append one evaluation row (atomic single-line append)."""
    append_jsonl(paths.evals, row)


def iter_run_dirs(out: Path, suite: str | None = None) -> list[Path]:
    """Run folders (those with a spec.json) under ``out``, optionally for one suite, sorted."""
    base = Path(out) / "runs"
    pattern = f"{suite}/*/spec.json" if suite else "*/*/spec.json"
    return sorted(p.parent for p in base.glob(pattern))


def load_spec(run_dir: Path) -> RunSpec:
    """The RunSpec recorded in a run folder."""
    return RunSpec.from_dict(json.loads((Path(run_dir) / "spec.json").read_text())["spec"])


def collect(out: Path, suite: str | None = None) -> pd.DataFrame:
    """One tidy DataFrame: a row per (run, evaluation, metric), spec and protocol as columns."""
    rows = []
    for run_dir in iter_run_dirs(out, suite):
        spec = load_spec(run_dir)
        paths = RunPaths(run_dir)
        base = {k: v for k, v in spec.to_dict().items() if k in SPEC_COLUMNS}
        base |= {"run_id": spec.run_id, "status": read_state(paths)["status"]}
        rows.extend(base | row for row in eval_rows(paths))
    if not rows:
        return pd.DataFrame(columns=list(SPEC_COLUMNS))
    df = pd.DataFrame(rows)
    lead = [c for c in SPEC_COLUMNS if c in df.columns]
    return df[lead + [c for c in df.columns if c not in lead]]
