"""Launchers: run a suite's cells in submitit subprocesses (``submitit-local``) or as SLURM job
arrays (``slurm``), with requeue on preemption and timeout.

Each cell is one array task running :class:`bench.launchers.jobs.CellJob`, a
``submitit.helpers.Checkpointable``. On the preemption/timeout signal it stops training at a step
boundary through the loop's ``should_stop`` hook (a consistent checkpoint: model, optimizers, RNG,
budget clock), then hands over to submitit's own handler, which pickles the job again and
requeues it; the next attempt resumes from the checkpoint with the budget already used.

Files: submitit's folder for a suite is ``<out>/runs/<suite>/.submitit/<launcher>/``, flat (one
array's tasks share it, so it exists before any task starts): submission scripts, pickles,
results and logs of every job. Each run records its jobs in ``<run_dir>/jobs/jobs.jsonl`` (one
row per submission) and links their logs as ``<run_dir>/jobs/logs/<job_id>.out|.err`` (relative
symlinks), so a run's logs are found under its own folder. A job's error goes to the run's
``state.json`` (``error``) with the full trace in ``<run_dir>/jobs/<job_id>.error.txt``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
from tabulate import tabulate

from bench.errors import BenchError
from bench.launchers.jobs import CellJob, JobRecord, is_active, job_error, reconcile, record_job, store_job_error
from bench.launchers.settings import _PLAN_HIDDEN, _checked_path, _python_command, sbatch_parameters, time_limit_min
from bench.plan.launching import SIGNAL_DELAY_S, LaunchSettings
from bench.plan.suites import Cell
from bench.results.runs import RunPaths, cell_state
from bench.training.options import LoopOptions

POLL_S = 0.5  # submitit-local: how often running jobs are polled


@dataclass(frozen=True)
class PlannedCell:
    """A cell and what a launch does with it."""

    cell: Cell
    time_limit_min: int
    skip: str | None  # why it is not submitted; None = submit it


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


def assumed_gpus(cells: list[Cell]) -> int:
    """GPUs per task the cells' budgets assume (``budget.accelerator = 'gpu'``: ``num_gpus``); 0: none."""
    return max((c.spec.num_gpus for c in cells if c.spec.accelerator == "gpu"), default=0)


def _accelerator_line(cells: list[Cell], settings: LaunchSettings) -> str:
    """What the cells' budgets assume and what is requested (a warning when a GPU suite requests none)."""
    if not (gpus := assumed_gpus(cells)):
        return "accelerator: none assumed (budget.accelerator = 'none')"
    if settings.gres:
        requested = f"--gres={settings.gres}"
    else:
        requested = f"--gpus-per-node={settings.gpus_per_node}" if settings.gpus_per_node else "no GPU"
    line = f"accelerator: {gpus} GPU(s) per cell assumed (budget.accelerator = 'gpu'); requested: {requested}"
    if requested == "no GPU":
        line += "; warning: such tasks refuse to train unless run with --device cpu"
    return line


def plan_text(plans: list[PlannedCell], settings: LaunchSettings) -> str:
    """The launch plan: per cell its time limit and action, plus the accelerator and sbatch options in effect."""
    settings = settings.requesting(assumed_gpus([p.cell for p in plans]))
    rows = [[p.cell.spec.run_id, f"{p.time_limit_min} min", p.skip and f"skip: {p.skip}" or "submit"]
            for p in plans]  # fmt: skip
    table = tabulate(rows, ["run_id", "time limit", "action"], tablefmt="github")
    head = f"launcher {settings.launcher}: {sum(p.skip is None for p in plans)} of {len(plans)} cells to submit"
    if settings.launcher == "slurm":
        params = sbatch_parameters(settings, 0, "x")
        options = {k: v for k, v in params.items() if k not in _PLAN_HIDDEN} | params["additional_parameters"]
        flags = " ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}") for k, v in options.items())
        head += f"\n{_accelerator_line([p.cell for p in plans], settings)}"
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
    settings = settings.requesting(assumed_gpus(cells))
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


class SubmititLocalLauncher:
    """``submitit-local``: submitit subprocesses on this machine, ``array_parallelism`` at a time; waits."""

    name = "submitit-local"

    def run(self, cells: list[Cell], opts: LoopOptions, settings: LaunchSettings) -> dict[str, str]:
        """Run the cells that need it; returns ``run_id -> outcome``."""
        return launch(cells, opts, settings)


class SlurmLauncher:
    """``slurm``: one job array per distinct time limit; returns once submitted."""

    name = "slurm"

    def run(self, cells: list[Cell], opts: LoopOptions, settings: LaunchSettings) -> dict[str, str]:
        """Submit the cells that need it; returns ``run_id -> submitted job or skip reason``."""
        return launch(cells, opts, settings)
