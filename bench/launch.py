"""Launchers: run a suite's cells in this process (``local``), in submitit subprocesses
(``submitit-local``) or as SLURM job arrays (``slurm``), with requeue on preemption and timeout.

Each cell is one array task running :class:`CellJob`, a ``submitit.helpers.Checkpointable``. On
the preemption/timeout signal it stops training at a step boundary through the loop's
``should_stop`` hook (a consistent checkpoint: model, optimizers, RNG, budget clock), then hands
over to submitit's own handler, which pickles the job again and requeues it; the next attempt
resumes from the checkpoint with the budget already used.

Files: submitit's folder for a suite is ``<out>/runs/<suite>/.submitit/<launcher>/``, flat (one
array's tasks share it, so it exists before any task starts): submission scripts, pickles,
results and logs of every job. Each run records its jobs in ``<run_dir>/jobs/jobs.jsonl`` (one
row per submission) and links their logs as ``<run_dir>/jobs/logs/<job_id>.out|.err`` (relative
symlinks), so a run's logs are found under its own folder. A job's error goes to the run's
``state.json`` (``error``) with the full trace in ``<run_dir>/jobs/<job_id>.error.txt``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
import torch
from tabulate import tabulate

from bench.errors import BenchError
from bench.io import append_jsonl, atomic_write_text, read_jsonl
from bench.lock import is_locked
from bench.results import RunPaths, read_state, write_state
from bench.specs import RunSpec
from bench.suites import Cell
from bench.sweep import cell_state
from bench.train import LoopOptions, run_cell

LAUNCHERS = ("local", "submitit-local", "slurm")
SIGNAL_DELAY_S = 120  # SLURM signals a task this long before its time limit (time to checkpoint)
MIN_TIME_LIMIT_MIN = 3  # a task must outlive the signal delay
EVAL_MINUTES_PER_POINT = 3.0  # default evaluation allowance per eval point
ITERS_ONLY_TRAIN_MINUTES = 60.0  # training allowance for cells with an iteration cap but no time budget
TERM_GRACE_S = 5.0  # after SIGTERM alone, how long to wait for the requeue signal that may follow
POLL_S = 0.5  # submitit-local: how often running jobs are polled
# SLURM states in which a job may still run (it blocks re-submission of its cell).
ACTIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED",
                 "CONFIGURING", "COMPLETING", "PREEMPTED", "SIGNALING", "STAGE_OUT"}  # fmt: skip
# Terminal states that mean the task died without Python reporting it.
FAILED_STATES = {"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"}
# sbatch options the launcher sets itself (through flags or submitit); not accepted as extra lines.
_RESERVED = {"array", "output", "error", "open-mode", "signal", "wrap", "job-name", "time", "partition",
             "account", "qos", "gpus-per-node", "cpus-per-task", "mem", "chdir", "parsable"}  # fmt: skip
_PLAN_HIDDEN = ("time", "job_name", "signal_delay_s", "array_parallelism", "additional_parameters")
_NAME_RE = re.compile(r"[A-Za-z0-9_.,:+-]+")  # partition, account, QoS
_OPTION_RE = re.compile(r"(?:--)?(?P<key>[a-z][a-z0-9-]*)(?:[= ](?P<value>.+))?")


@dataclass(frozen=True)
class LaunchSettings:
    """How cells are launched: the suite's ``[slurm]`` block, overridden by command-line flags."""

    launcher: str = "local"  # one of LAUNCHERS
    partition: str | None = None  # SLURM partition; None = the cluster's default
    gpus_per_node: int | None = None  # None = ask for no GPUs
    cpus_per_task: int | None = None  # None = the partition's default
    mem_gb: float | None = None  # memory per task in GB; None = the partition's default
    time_limit_min: int | None = None  # per task; None = derived from each cell (see time_limit_min())
    time_margin_min: float = 10.0  # minutes added to training + evaluation
    eval_minutes: float | None = None  # evaluation minutes per cell; None = EVAL_MINUTES_PER_POINT x points
    account: str | None = None  # SLURM account
    qos: str | None = None  # SLURM quality of service
    array_parallelism: int | None = None  # tasks running at once; None = 256 on SLURM, 1 locally
    extra_sbatch: tuple[str, ...] = ()  # extra options: '--key=value', '--flag' (an '#SBATCH ' prefix is ok)
    max_num_timeout: int = 3  # requeues after time-outs (preemptions requeue without limit)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_sbatch", tuple(self.extra_sbatch))
        if self.launcher not in LAUNCHERS:
            raise BenchError(f"--launcher {self.launcher!r}: expected one of {', '.join(LAUNCHERS)}")
        for key in ("partition", "account", "qos"):
            value = getattr(self, key)
            if value is not None and not _NAME_RE.fullmatch(value):
                raise BenchError(f"{key} {value!r}: only letters, digits and _.,:+- are allowed")
        for key in ("gpus_per_node", "cpus_per_task", "mem_gb", "array_parallelism", "time_limit_min"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise BenchError(f"{key} must be > 0, got {value}")
        if self.time_limit_min is not None and self.time_limit_min < MIN_TIME_LIMIT_MIN:
            msg = f"time limit {self.time_limit_min} min: must be >= {MIN_TIME_LIMIT_MIN}"
            raise BenchError(f"{msg} (tasks are signalled {SIGNAL_DELAY_S} s before it to checkpoint)")
        for line in self.extra_sbatch:
            parse_sbatch_option(line)

    @classmethod
    def merged(cls, block: dict[str, Any], **flags: Any) -> LaunchSettings:
        """The suite's ``[slurm]`` block, then every flag that is not None; extra sbatch lines add up."""
        values = {k: v for k, v in block.items() if k != "extra_sbatch"}
        values |= {k: v for k, v in flags.items() if v is not None and k != "extra_sbatch"}
        extra = (*block.get("extra_sbatch", ()), *(flags.get("extra_sbatch") or ()))
        return cls(**values, extra_sbatch=tuple(str(x) for x in extra))


@dataclass(frozen=True)
class JobRecord:
    """One submission of a cell (a row of ``<run_dir>/jobs/jobs.jsonl``)."""

    launcher: str  # 'slurm' or 'submitit-local'
    job_id: str  # SLURM '<array>_<index>' (or a plain id); submitit-local: the controller's pid
    folder: str  # submitit folder holding the job's pickles and logs
    submitted: float  # epoch seconds


@dataclass(frozen=True)
class PlannedCell:
    """A cell and what a launch does with it."""

    cell: Cell
    time_limit_min: int
    skip: str | None  # why it is not submitted; None = submit it


# ----------------------------------------------------------------------------------------------
# Parameters and sanitization.


def parse_sbatch_option(line: str) -> tuple[str, str | bool]:
    """``'--constraint=a100'`` → ``('constraint', 'a100')``; ``'--exclusive'`` → ``('exclusive', True)``.

    Raises BenchError for anything that is not one long option on one printable line.
    """
    text = line.strip()
    text = text[len("#SBATCH") :].strip() if text.startswith("#SBATCH") else text
    match = _OPTION_RE.fullmatch(text)
    if not line.isprintable() or match is None:
        raise BenchError(f"extra sbatch line {line!r}: expected one '--key=value' or '--flag' on one line")
    key, value = match["key"], match["value"]
    if key in _RESERVED:
        raise BenchError(f"extra sbatch line {line!r}: --{key} is set by the launcher; use its own flag")
    return key, value.strip() if value else True


def sanitize_job_name(name: str) -> str:
    """Letters, digits and ``_.-`` only (others become '_'), at most 64 characters."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:64] or "job"


def _checked_path(path: Path) -> Path:
    """Absolute ``path``, refused when SLURM or a script line could misread it."""
    path = Path(path).resolve()
    text = str(path)
    if not text.isprintable() or "%" in text:
        raise BenchError(f"path {text!r}: control characters and '%' are not allowed for job folders")
    return path


def time_limit_min(spec: RunSpec, settings: LaunchSettings) -> int:
    """Minutes per task: training budget + evaluation + margin, rounded up (or the override)."""
    if settings.time_limit_min is not None:
        return settings.time_limit_min
    train = spec.budget_seconds / 60.0 if spec.budget_seconds is not None else ITERS_ONLY_TRAIN_MINUTES
    evals = settings.eval_minutes
    if evals is None:
        evals = EVAL_MINUTES_PER_POINT * len(spec.eval_fractions)
    return max(MIN_TIME_LIMIT_MIN, math.ceil(train + evals + settings.time_margin_min))


def sbatch_parameters(settings: LaunchSettings, time_min: int, job_name: str) -> dict[str, Any]:
    """Keyword arguments for ``submitit.SlurmExecutor.update_parameters`` (no shell involved)."""
    params: dict[str, Any] = {
        "job_name": sanitize_job_name(job_name),
        "time": time_min,
        "signal_delay_s": SIGNAL_DELAY_S,
        "array_parallelism": settings.array_parallelism or 256,
        "additional_parameters": dict(parse_sbatch_option(x) for x in settings.extra_sbatch),
    }
    optional = {
        "partition": settings.partition,
        "gpus_per_node": settings.gpus_per_node,
        "cpus_per_task": settings.cpus_per_task,
        "mem": f"{math.ceil(settings.mem_gb * 1024)}M" if settings.mem_gb else None,
        "account": settings.account,
        "qos": settings.qos,
    }
    return params | {k: v for k, v in optional.items() if v is not None}


def _python_command() -> str:
    """This interpreter, with the project importable whatever the job's working directory."""
    root = str(_checked_path(Path(__file__).resolve().parent.parent))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return shlex.join(["/usr/bin/env", f"PYTHONPATH={path}", sys.executable])


# ----------------------------------------------------------------------------------------------
# The job.


class CellJob(submitit.helpers.Checkpointable):
    """One array task: train one cell; on preemption/timeout checkpoint at a step and requeue."""

    def __init__(self, spec: RunSpec, opts: LoopOptions, cpus: int | None = None) -> None:
        self.spec = spec
        self.opts = opts
        self.cpus = cpus  # torch threads (the task's CPUs); None = torch's default (every core)
        self._signals: list[int] = []

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_signals": []}  # a requeued attempt starts without pending signals

    def __call__(self) -> str:
        """Train (or resume) the cell; returns its status ('done', 'diverged', 'todo', 'running')."""
        usr = signal.Signals["SIG" + submitit.JobEnvironment.USR_SIG]
        requeue = signal.getsignal(usr)  # submitit's checkpoint-and-requeue handler
        for sig in (usr, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        if self.cpus:
            torch.set_num_threads(self.cpus)  # more threads than CPUs is many times slower
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


# ----------------------------------------------------------------------------------------------
# Job records, states and errors.


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


# ----------------------------------------------------------------------------------------------
# Planning, submission, status and cancel.


def plan_launch(cells: list[Cell], out: Path, settings: LaunchSettings) -> list[PlannedCell]:
    """Each cell's time limit and whether it is submitted (done, running or queued cells are not)."""
    jobs = reconcile(out, cells) if settings.launcher == "slurm" else {}
    plans = []
    for c in cells:
        status = cell_state(out, c)["status"]
        skip = status if status in ("done", "diverged", "running") else None
        rec, state = jobs.get(c.spec.run_id, (None, ""))
        if skip is None and rec is not None and is_active(rec, state):
            skip = f"queued as job {rec.job_id} ({state})"
        plans.append(PlannedCell(c, time_limit_min(c.spec, settings), skip))
    return plans


def plan_text(plans: list[PlannedCell], settings: LaunchSettings) -> str:
    """The launch plan: per cell its time limit and action, plus the sbatch options in effect."""
    rows = [[p.cell.spec.run_id, f"{p.time_limit_min} min", p.skip and f"skip: {p.skip}" or "submit"]
            for p in plans]  # fmt: skip
    table = tabulate(rows, ["run_id", "time limit", "action"], tablefmt="github")
    head = f"launcher {settings.launcher}: {sum(p.skip is None for p in plans)} of {len(plans)} cells to submit"
    if settings.launcher == "slurm":
        params = sbatch_parameters(settings, 0, "x")
        options = {k: v for k, v in params.items() if k not in _PLAN_HIDDEN} | params["additional_parameters"]
        flags = " ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}") for k, v in options.items())
        head += f"\nsbatch options: {flags} (array parallelism {params['array_parallelism']})"
    return f"{head}\n{table}"


def _folder(out: Path, suite: str, launcher: str) -> Path:
    return _checked_path(Path(out) / "runs" / suite / ".submitit" / launcher)


def _job_options(opts: LoopOptions) -> LoopOptions:
    """Options as a job sees them: absolute results folder, no progress bar, no stop hook."""
    return dataclasses.replace(opts, out=_checked_path(opts.out), progress=False, should_stop=None)


def launch(cells: list[Cell], opts: LoopOptions, settings: LaunchSettings) -> dict[str, str]:
    """Launch the cells that need it; returns ``run_id → outcome`` (slurm: submitted job or skip reason).

    ``slurm`` returns once the arrays are submitted; ``submitit-local`` waits for its subprocesses.
    """
    plans = plan_launch(cells, opts.out, settings)
    outcome = {p.cell.spec.run_id: f"skipped ({p.skip})" for p in plans if p.skip}
    todo = [p for p in plans if p.skip is None]
    if not todo:
        return outcome
    job_opts = _job_options(opts)
    if settings.launcher == "slurm":
        return outcome | _submit_slurm(todo, job_opts, settings)
    return outcome | _run_submitit_local(todo, job_opts, settings)


def _submit_slurm(todo: list[PlannedCell], opts: LoopOptions, settings: LaunchSettings) -> dict[str, str]:
    """One array per distinct time limit; records every task under its run."""
    if shutil.which("sbatch") is None:
        raise BenchError("--launcher slurm: sbatch not found; use --launcher submitit-local or local")
    suite = todo[0].cell.spec.suite
    folder = _folder(opts.out, suite, "slurm")
    executor = submitit.SlurmExecutor(folder, max_num_timeout=settings.max_num_timeout, python=_python_command())
    outcome = {}
    for limit in sorted({p.time_limit_min for p in todo}):
        group = [p for p in todo if p.time_limit_min == limit]
        executor.update_parameters(**sbatch_parameters(settings, limit, f"fsgb-{suite}"))
        with executor.batch():
            jobs = [executor.submit(CellJob(p.cell.spec, opts, settings.cpus_per_task)) for p in group]
        for p, job in zip(group, jobs, strict=True):
            record_job(RunPaths.of(opts.out, p.cell.spec), JobRecord("slurm", job.job_id, str(folder), time.time()))
            outcome[p.cell.spec.run_id] = f"submitted as job {job.job_id}"
    return outcome


def _run_submitit_local(todo: list[PlannedCell], opts: LoopOptions, settings: LaunchSettings) -> dict[str, str]:
    """Run the cells as submitit subprocesses, ``array_parallelism`` (default 1) at a time; wait."""
    folder = _folder(opts.out, todo[0].cell.spec.suite, "submitit-local")
    executor = submitit.LocalExecutor(folder, max_num_timeout=settings.max_num_timeout, python=_python_command())
    queue, running, outcome = list(todo), [], {}
    while queue or running:
        while queue and len(running) < (settings.array_parallelism or 1):
            p = queue.pop(0)
            executor.update_parameters(timeout_min=p.time_limit_min, signal_delay_s=SIGNAL_DELAY_S)
            job = executor.submit(CellJob(p.cell.spec, opts, settings.cpus_per_task))
            record = JobRecord("submitit-local", job.job_id, str(folder), time.time())
            record_job(RunPaths.of(opts.out, p.cell.spec), record)
            running.append((p, record, job))
        time.sleep(POLL_S)
        for item in [r for r in running if r[2].done()]:
            running.remove(item)
            outcome[item[0].cell.spec.run_id] = _local_outcome(opts.out, *item)
    return outcome


def _local_outcome(out: Path, plan: PlannedCell, record: JobRecord, job: submitit.Job[Any]) -> str:
    paths = RunPaths.of(out, plan.cell.spec)
    error = job_error(record, "")
    if error is None and job.paths.result_pickle.exists():
        return str(job.result())
    store_job_error(paths, record, error or f"job {record.job_id} ended without a result; see {job.paths.stderr}")
    return "failed"


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
