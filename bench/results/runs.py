"""Per-run files: where a run lives, its state, events and evaluation rows.

Layout: ``<out>/runs/<suite>/<run_id>/`` holds ``spec.json`` (resolved spec and environment),
``state.json`` (status and progress), ``evals.jsonl`` (one row per metric per evaluation),
``events.jsonl``, ``samples/`` (grids), ``snapshots/`` (weights at each evaluation),
``checkpoints/`` (latest training state) and, for a study's evaluation spread, ``eval_noise.jsonl``
(one snapshot re-scored with other evaluation seeds: :mod:`bench.tools.evalnoise`); shared caches
live under ``<out>/cache/``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.files import FileReadError, read_json
from bench.plan.specs import RunSpec
from bench.plan.suites import Cell
from bench.results.io import NOT_AN_OBJECT, append_jsonl, atomic_write_json, numbered_jsonl, read_jsonl
from bench.results.lock import is_locked
from bench.results.rows import PROTOCOL_FIELDS, STATE_FIX, current_row, row_fix, row_problem, state_problem

STATES = (
    "todo",
    "running",
    "done",
    "failed",
    "diverged",
)  # what state.json holds ("unreadable" when it cannot be read)


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
    def eval_noise(self) -> Path:
        return self.root / "eval_noise.jsonl"

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
    """The run's state: ``{"status": "todo"}`` when it never started; ``{"status": "unreadable", "error": ...}``
    when state.json cannot be read or is not a run state (:func:`bench.results.rows.state_problem`; the run
    resumes from its checkpoints)."""
    try:
        state = read_json(paths.state)
    except FileReadError as exc:
        return {"status": "todo"} if exc.missing else {"status": "unreadable", "error": f"{exc}"}
    if not isinstance(state, dict) or state.get("status") not in STATES:
        return {"status": "unreadable", "error": f"{paths.state}: not a run state; {STATE_FIX}"}
    if problem := state_problem(state):
        return {"status": "unreadable", "error": f"{paths.state}: {problem}; {STATE_FIX}"}
    return state


def write_state(paths: RunPaths, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into state.json (atomically; an unreadable one is replaced) and return the new state."""
    old = read_state(paths)
    state = (old if old["status"] != "unreadable" else {}) | fields | {"updated": time.time()}
    atomic_write_json(paths.state, state)
    return state


def record_event(paths: RunPaths, kind: str, **fields: Any) -> None:
    """Append an event (resume, corrupt checkpoint, divergence, ...) to events.jsonl."""
    append_jsonl(paths.events, {"event": kind, "time": time.time(), **fields})


def eval_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies an evaluation row: its snapshot and its whole protocol
    (:data:`bench.results.rows.PROTOCOL_FIELDS`: metric, detector and checksum, mode, sampling and reference
    fields). A snapshot scored again under another protocol is another row, never a duplicate of the first."""
    return row.get("snapshot"), *(row.get(field) for field in PROTOCOL_FIELDS)


def eval_rows(paths: RunPaths) -> list[dict[str, Any]]:
    """The run's evaluation rows, de-duplicated on :func:`eval_key`, first kept."""
    return _unique(read_jsonl(paths.evals))


def checked_eval_rows(paths: RunPaths) -> list[dict[str, Any]]:
    """:func:`eval_rows` for a reader of results: every line a row that passes
    :func:`bench.results.rows.row_problem`, else :class:`UnreadableRunError` naming the line and the fix."""
    return _unique(checked_rows(paths.evals, row_fix()))


def checked_rows(path: Path, fix: str) -> list[dict[str, Any]]:
    """Every line of the JSONL file ``path`` (none when it is missing) as a checked evaluation row, else
    :class:`UnreadableRunError` naming the line and ``fix``."""
    rows = []
    for number, row in numbered_jsonl(path):
        problem = "not a JSON object" if row is NOT_AN_OBJECT else row_problem(row)
        if problem:
            raise UnreadableRunError(f"{path} line {number}: {problem}; {fix}")
        rows.append(row)
    return rows


def _unique(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows under their protocols' current names, the first of each :func:`eval_key` kept."""
    seen: set[tuple[Any, ...]] = set()
    kept = []
    for row in map(current_row, rows):
        key = eval_key(row)
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def eval_row(base: dict[str, Any], metric_row: dict[str, Any]) -> dict[str, Any]:
    """A stored evaluation row: the run's position (``base``) plus a metric row, whose latent seed is
    stored as ``eval_seed`` (``seed`` is the run's)."""
    return base | {("eval_seed" if k == "seed" else k): v for k, v in metric_row.items()}


def append_eval_row(paths: RunPaths, row: dict[str, Any]) -> None:
    """Append one evaluation row (atomic single-line append)."""
    append_jsonl(paths.evals, row)


def iter_run_dirs(out: Path, suite: str | None = None) -> list[Path]:
    """Run folders (those with a spec.json) under ``out``, optionally for one suite, sorted."""
    base = Path(out) / "runs"
    pattern = f"{suite}/*/spec.json" if suite else "*/*/spec.json"
    return sorted(p.parent for p in base.glob(pattern))


class UnreadableRunError(BenchError):
    """A run folder's spec.json cannot be read or does not hold a run spec."""


def load_spec(run_dir: Path) -> RunSpec:
    """The RunSpec recorded in a run folder; :class:`UnreadableRunError` naming spec.json when it cannot be used."""
    path = Path(run_dir) / "spec.json"
    fix = "restore the file, or move the run folder away and run its suite again"
    try:
        doc = read_json(path)
        return RunSpec.from_dict(doc["spec"])
    except FileReadError as exc:
        raise UnreadableRunError(f"{exc}; {fix}") from None
    except (TypeError, KeyError, ValueError, BenchError) as exc:
        raise UnreadableRunError(f"{path}: not a run's spec ({type(exc).__name__}: {exc}); {fix}") from None


def recorded_resolved(run_dir: Path) -> dict[str, Any]:
    """The ``resolved`` part of a run folder's spec.json (the model's hyper-parameters, its data...); empty
    when the file is missing or holds no such mapping (:func:`load_spec` names what is wrong)."""
    try:
        resolved = read_json(Path(run_dir) / "spec.json").get("resolved")
    except (FileReadError, ValueError, AttributeError):
        return {}
    return resolved if isinstance(resolved, dict) else {}


def cache_dirs(out: Path) -> tuple[Path, Path]:
    """(dataset cache, metric cache) under the results folder."""
    return Path(out) / "cache" / "datasets", Path(out) / "cache" / "metrics"


def cell_state(out: Path, cell: Cell) -> dict[str, Any]:
    """The cell's state; 'running' only while a live process holds its lock."""
    paths = RunPaths.of(out, cell.spec)
    state = read_state(paths)
    if state["status"] == "running" and not is_locked(paths.root):
        state = state | {"status": "todo", "interrupted": True}  # a crashed run: resumable
    elif state["status"] == "todo" and is_locked(paths.root):
        state = state | {"status": "running"}
    return state
