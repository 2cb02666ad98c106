"""Submitted jobs: the job a task runs (:class:`CellJob`), each run's job records, their SLURM
states, errors, and cancelling.

Nothing here unpickles: a job's state comes from SLURM (``sacct``, else ``squeue``) and its error
from the run's own ``state.json``, where the task writes it as text (:meth:`CellJob.__call__`).
The pickles submitit keeps in the suite's ``.submitit`` folder are read only by the job itself.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
from submitit.core.utils import JobPaths
from tabulate import tabulate

from bench.errors import BenchError
from bench.files import FileReadError
from bench.launchers.settings import sanitize_job_name
from bench.plan.specs import RunSpec
from bench.plan.suites import Cell
from bench.results.io import append_jsonl, atomic_write_text, read_jsonl
from bench.results.lock import is_locked
from bench.results.runs import RunPaths, cell_state, read_state, write_state
from bench.training.allocator import keep_freed_memory
from bench.training.options import LoopOptions
from bench.training.threads import limit_threads

TERM_GRACE_S = 5.0  # after SIGTERM alone, how long to wait for the requeue signal that may follow
SLURM_TIMEOUT_S = 30.0  # sacct, squeue, scontrol and scancel give up after this (an unreachable controller)
JOB_ID_RE = re.compile(r"\d+(?:_\d+)?")  # '<job>' or '<array>_<task>': nothing else reaches a SLURM command


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
        keep_freed_memory()  # see bench.training.allocator
        try:
            status = run_cell(self.spec, dataclasses.replace(self.opts, should_stop=lambda: bool(self._signals)))
        except Exception as exc:
            self._report_failure(exc)
            raise
        if status == "todo" and self._signals and self._await_signal(usr) and callable(requeue):
            requeue(usr, None)  # pickles self.checkpoint(), requeues and exits
        return status

    def _report_failure(self, exc: Exception) -> None:
        """The error as text in the run's state.json (one line, with this job's id) and the trace beside it."""
        job_id = submitit.JobEnvironment().job_id
        paths = RunPaths.of(self.opts.out, self.spec)
        atomic_write_text(_jobs_dir(paths) / f"{sanitize_job_name(job_id)}.error.txt", traceback.format_exc())
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        write_state(paths, status="failed", error=f"{message} (job {job_id})", error_job=job_id)

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


def run_cell(spec: RunSpec, opts: LoopOptions) -> str:
    """:func:`bench.training.cell.run_cell`, imported when a job runs (it loads torch and the models)."""
    from bench.training.cell import run_cell as run

    return run(spec, opts)


def job_records(paths: RunPaths) -> list[JobRecord]:
    """Every submission of the run, oldest first (rows with another shape or job id are ignored)."""
    fields = {f.name for f in dataclasses.fields(JobRecord)}
    try:
        rows = list(read_jsonl(_jobs_dir(paths) / "jobs.jsonl"))
    except FileReadError:
        return []
    return [
        JobRecord(**{k: row[k] for k in fields}) for row in rows
        if fields <= row.keys() and isinstance(row["job_id"], str) and JOB_ID_RE.fullmatch(row["job_id"])
        and isinstance(row["folder"], str) and isinstance(row["submitted"], int | float)
    ]  # fmt: skip


def latest_job(paths: RunPaths) -> JobRecord | None:
    """The run's most recent submission, if any."""
    records = job_records(paths)
    return records[-1] if records else None


def _job_paths(record: JobRecord) -> JobPaths:
    """Where submitit keeps the job's files (names only: nothing there is read)."""
    return JobPaths(record.folder, job_id=record.job_id)


def record_job(paths: RunPaths, record: JobRecord) -> None:
    """Append the submission to the run's jobs.jsonl and link its logs under ``<run_dir>/jobs/logs``."""
    append_jsonl(_jobs_dir(paths) / "jobs.jsonl", dataclasses.asdict(record))
    logs = _jobs_dir(paths) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    job = _job_paths(record)
    for suffix, target in ((".out", job.stdout), (".err", job.stderr)):
        link = logs / f"{sanitize_job_name(record.job_id)}{suffix}"
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(target, logs))


def _slurm(*args: str) -> str | None:
    """A SLURM command's standard output, or None when it is missing, fails or does not answer in time."""
    if shutil.which(args[0]) is None:
        return None
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=SLURM_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _parse_states(text: str) -> dict[str, str]:
    """``ID|STATE`` lines (sacct -P, squeue) -> job id -> state; pending arrays (``12_[0-3,5%2]``) expanded."""
    states = {}
    for line in text.splitlines():
        job, _, state = line.strip().partition("|")
        word = (state.split() or ["UNKNOWN"])[0]
        array = re.fullmatch(r"(\d+)_\[([\d,-]+)(?:%\d+)?\]", job)
        if array is None:
            states[job] = word
            continue
        for part in array[2].split(","):
            lo, _, hi = part.partition("-")
            if lo.isdigit() and (hi or lo).isdigit() and int(hi or lo) - int(lo) < 100_000:
                states |= {f"{array[1]}_{i}": word for i in range(int(lo), int(hi or lo) + 1)}
    return states


def slurm_states(job_ids: Iterable[str]) -> dict[str, str]:
    """SLURM state of each job: ``sacct`` (accounting), else ``squeue`` (jobs still queued or running);
    'UNKNOWN' where neither lists it, '?' where neither answers."""
    ids = sorted({j for j in job_ids if JOB_ID_RE.fullmatch(j)})
    if not ids:
        return {}
    acct = _slurm("sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(ids))
    states = _parse_states(acct or "")
    missing = [j for j in ids if j not in states]
    queue = _slurm("squeue", "-h", "-r", "-o", "%i|%T") if missing else ""
    states |= {j: s for j, s in _parse_states(queue or "").items() if j in missing}
    unknown = "?" if acct is None and queue is None else "UNKNOWN"
    return {j: states.get(j, unknown) for j in ids}


def check_slurm() -> None:
    """Raise a one-line BenchError unless ``sbatch`` exists and a SLURM controller answers ``scontrol ping``."""
    if shutil.which("sbatch") is None:
        raise BenchError("--launcher slurm: sbatch not found; use --launcher submitit-local or local")
    if shutil.which("scontrol") is None:
        return  # nothing to ask: sbatch itself will answer
    try:
        proc = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=SLURM_TIMEOUT_S)
        answer = (proc.stdout.strip() or proc.stderr.strip() or f"exit code {proc.returncode}").splitlines()[0]
        down = proc.returncode != 0 or not answer.endswith(" is UP")
    except (OSError, subprocess.TimeoutExpired) as exc:
        answer, down = f"scontrol ping: {exc}", True
    if down:
        raise BenchError(
            f"--launcher slurm: no SLURM controller answers ({answer[:200]}); start slurmctld or fix SLURM_CONF, "
            "or use --launcher submitit-local"
        )


def is_active(record: JobRecord, state: str) -> bool:
    """True while the job may still run (just-submitted jobs unknown to sacct count as active)."""
    if state in ACTIVE_STATES:
        return True
    return state in ("UNKNOWN", "?") and time.time() - record.submitted < 300


def job_error(record: JobRecord, state: str) -> str | None:
    """How SLURM ended a job that died without reporting (killed, out of memory, node failure), or None."""
    if state in FAILED_STATES:
        return f"SLURM job {record.job_id} ended {state} before the task reported; see {_job_paths(record).stderr}"
    return None


def store_job_error(paths: RunPaths, record: JobRecord, text: str) -> None:
    """Mark the run failed with the job's error (one line in state.json)."""
    write_state(paths, status="failed", error=text, error_job=record.job_id)


def reconcile(out: Path, cells: list[Cell]) -> dict[str, tuple[JobRecord, str]]:
    """Each cell's latest job and its state; errors of finished jobs are stored in the run's state."""
    latest = {c.spec.run_id: (c, rec) for c in cells if (rec := latest_job(RunPaths.of(out, c.spec)))}
    states = slurm_states(rec.job_id for _, rec in latest.values() if rec.launcher == "slurm")
    result = {}
    for run_id, (cell, rec) in latest.items():
        state = states.get(rec.job_id, "-")
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
    cancelled = [rec.job_id for rec in records if _slurm("scancel", rec.job_id) is not None]
    if records and not cancelled:
        raise BenchError("cancel: scancel failed for every job (no SLURM controller answers?); check `scontrol ping`")
    return cancelled
