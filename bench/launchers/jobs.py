"""Submitted jobs: the job a task runs (:class:`CellJob`), each run's job records, their SLURM
states, errors, and cancelling.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
from tabulate import tabulate

from bench.errors import BenchError
from bench.launchers.settings import sanitize_job_name
from bench.plan.specs import RunSpec
from bench.plan.suites import Cell
from bench.results.io import append_jsonl, atomic_write_text, read_jsonl
from bench.results.lock import is_locked
from bench.results.runs import RunPaths, cell_state, read_state, write_state
from bench.training.cell import run_cell
from bench.training.options import LoopOptions
from bench.training.threads import limit_threads

TERM_GRACE_S = 5.0  # after SIGTERM alone, how long to wait for the requeue signal that may follow


# SLURM states in which a job may still run (it blocks re-submission of its cell).
ACTIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED",
                 "CONFIGURING", "COMPLETING", "PREEMPTED", "SIGNALING", "STAGE_OUT"}  # fmt: skip


# Terminal states that mean the task died without Python reporting it.
FAILED_STATES = {"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"}


@dataclass(frozen=True)
class JobRecord:
    """One submission of a cell (a row of ``<run_dir>/jobs/jobs.jsonl``)."""

    launcher: str  # 'slurm' or 'submitit-local'
    job_id: str  # SLURM '<array>_<index>' (or a plain id); submitit-local: the controller's pid
    folder: str  # submitit folder holding the job's pickles and logs
    submitted: float  # epoch seconds


class CellJob(submitit.helpers.Checkpointable):
    """One array task: train one cell; on preemption/timeout checkpoint at a step and requeue."""

    def __init__(self, spec: RunSpec, opts: LoopOptions, cpus: int | None = None) -> None:
        self.spec = spec
        self.opts = opts
        self.cpus = cpus  # torch threads (the task's CPUs); None = every CPU the task may use
        self._signals: list[int] = []

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_signals": []}  # a requeued attempt starts without pending signals

    def __call__(self) -> str:
        """Train (or resume) the cell; returns its status ('done', 'diverged', 'todo', 'running')."""
        usr = signal.Signals["SIG" + submitit.JobEnvironment.USR_SIG]
        requeue = signal.getsignal(usr)  # submitit's checkpoint-and-requeue handler
        for sig in (usr, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        limit_threads(self.cpus)  # more threads than CPUs is many times slower
        status = run_cell(self.spec, dataclasses.replace(self.opts, should_stop=lambda: bool(self._signals)))
        if status == "todo" and self._signals and self._await_signal(usr) and callable(requeue):
            requeue(usr, None)  # pickles self.checkpoint(), requeues and exits
        return status

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals.append(signum)

    def _await_signal(self, usr: signal.Signals) -> bool:
        """True once the requeue signal came; a lone SIGTERM (cancel) waits briefly for it."""
        deadline = time.monotonic() + TERM_GRACE_S
        while usr not in self._signals and time.monotonic() < deadline:
            time.sleep(0.05)
        return usr in self._signals


def _jobs_dir(paths: RunPaths) -> Path:
    return paths.root / "jobs"


def job_records(paths: RunPaths) -> list[JobRecord]:
    """Every submission of the run, oldest first."""
    fields = {f.name for f in dataclasses.fields(JobRecord)}
    rows = read_jsonl(_jobs_dir(paths) / "jobs.jsonl")
    return [JobRecord(**{k: row[k] for k in fields}) for row in rows if fields <= row.keys()]


def latest_job(paths: RunPaths) -> JobRecord | None:
    """The run's most recent submission, if any."""
    records = job_records(paths)
    return records[-1] if records else None


def _job(record: JobRecord) -> submitit.Job[Any]:
    cls = submitit.SlurmJob if record.launcher == "slurm" else submitit.LocalJob
    return cls(folder=record.folder, job_id=record.job_id)


def record_job(paths: RunPaths, record: JobRecord) -> None:
    """Append the submission to the run's jobs.jsonl and link its logs under ``<run_dir>/jobs/logs``."""
    append_jsonl(_jobs_dir(paths) / "jobs.jsonl", dataclasses.asdict(record))
    logs = _jobs_dir(paths) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    job = _job(record)
    for suffix, target in ((".out", job.paths.stdout), (".err", job.paths.stderr)):
        link = logs / f"{sanitize_job_name(record.job_id)}{suffix}"
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(target, logs))


def slurm_states(job_ids: Iterable[str]) -> dict[str, str]:
    """SLURM state of each job (sacct through submitit's watcher); '?' where sacct is unavailable."""
    ids = sorted(set(job_ids))
    if not ids or shutil.which("sacct") is None:
        return {j: "?" for j in ids}
    watcher = submitit.SlurmJob.watcher
    for j in ids:
        watcher.register_job(j)
    watcher.update()
    return {j: (watcher.get_state(j, mode="cache").split() or ["UNKNOWN"])[0] for j in ids}


def is_active(record: JobRecord, state: str) -> bool:
    """True while the job may still run (just-submitted jobs unknown to sacct count as active)."""
    if state in ACTIVE_STATES:
        return True
    return state in ("UNKNOWN", "?") and time.time() - record.submitted < 300


def _trace_summary(text: str) -> str:
    """The last line of the traceback inside a submitit error message (the exception itself)."""
    match = re.search(r"-{10,}\n(.*?)\n-{10,}", text, re.DOTALL)
    lines = [x.strip() for x in (match[1] if match else text).splitlines() if x.strip()]
    return lines[-1] if lines else text.strip()


def job_error(record: JobRecord, state: str) -> str | None:
    """The finished job's error: the exception submitit returns, or how SLURM ended it; None if fine."""
    job = _job(record)
    if job.paths.result_pickle.exists():
        exc = job.exception()
        return None if exc is None else str(exc)
    if state in FAILED_STATES:
        return f"SLURM job {record.job_id} ended {state} without a Python result; see {job.paths.stderr}"
    return None


def store_job_error(paths: RunPaths, record: JobRecord, text: str) -> None:
    """Mark the run failed with the job's error (one line in state.json, full text beside)."""
    atomic_write_text(_jobs_dir(paths) / f"{sanitize_job_name(record.job_id)}.error.txt", text)
    write_state(paths, status="failed", error=f"{_trace_summary(text)} (job {record.job_id})", error_job=record.job_id)


def reconcile(out: Path, cells: list[Cell]) -> dict[str, tuple[JobRecord, str]]:
    """Each cell's latest job and its state; errors of finished jobs are stored in the run's state."""
    latest = {c.spec.run_id: (c, rec) for c in cells if (rec := latest_job(RunPaths.of(out, c.spec)))}
    states = slurm_states(rec.job_id for _, rec in latest.values() if rec.launcher == "slurm")
    result = {}
    for run_id, (cell, rec) in latest.items():
        state = states.get(rec.job_id) or ("FINISHED" if _job(rec).paths.result_pickle.exists() else "-")
        result[run_id] = (rec, state)
        paths = RunPaths.of(out, cell.spec)
        st = read_state(paths)
        settled = st["status"] in ("done", "diverged") or st.get("error_job") == rec.job_id
        if rec.launcher != "slurm" or settled or is_active(rec, state) or is_locked(paths.root):
            continue
        if (error := job_error(rec, state)) is not None:
            store_job_error(paths, rec, error)
    return result


def jobs_table(cells: list[Cell], out: Path) -> str | None:
    """Cells with their state, latest job, its state and the error; None when no cell has any."""
    jobs = reconcile(out, cells)
    rows = []
    for c in cells:
        st = cell_state(out, c)
        rec, state = jobs.get(c.spec.run_id, (None, ""))
        if rec is None and not st.get("error"):
            continue
        error = (st.get("error") or "") if st["status"] == "failed" else ""
        job = f"{rec.job_id} ({rec.launcher})" if rec else ""
        rows.append([c.spec.run_id, st["status"], job, state, error[:160]])
    if not rows:
        return None
    return tabulate(rows, ["run_id", "state", "job", "job state", "error"], tablefmt="github")


def cancel(cells: list[Cell], out: Path) -> list[str]:
    """``scancel`` every cell's latest SLURM job that may still run; returns the cancelled job ids."""
    jobs = reconcile(out, cells)
    records = [rec for rec, state in jobs.values() if rec.launcher == "slurm" and is_active(rec, state)]
    if records and shutil.which("scancel") is None:
        raise BenchError("cancel: scancel not found on this machine; run it where the jobs were submitted")
    for rec in records:
        _job(rec).cancel(check=True)
    return [rec.job_id for rec in records]
