"""Launch settings (the suite's ``[slurm]`` block overridden by flags) and the sbatch parameters
they turn into; names and paths are sanitised before they reach a submission script.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.plan.specs import RunSpec

LAUNCHERS = ("local", "submitit-local", "slurm")


SIGNAL_DELAY_S = 120  # SLURM signals a task this long before its time limit (time to checkpoint)


MIN_TIME_LIMIT_MIN = 3  # a task must outlive the signal delay


EVAL_MINUTES_PER_POINT = 3.0  # default evaluation allowance per eval point


ITERS_ONLY_TRAIN_MINUTES = 60.0  # training allowance for cells with an iteration cap but no time budget


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
    root = str(_checked_path(Path(__file__).resolve().parents[2]))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return shlex.join(["/usr/bin/env", f"PYTHONPATH={path}", sys.executable])
