"""Launch settings turned into job parameters: time limits and the sbatch parameters, with names
and paths sanitised before they reach a submission script."""

from __future__ import annotations

import math
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.plan.launching import MIN_TIME_LIMIT_MIN, SIGNAL_DELAY_S, LaunchSettings, parse_sbatch_option
from bench.plan.specs import RunSpec

EVAL_MINUTES_PER_POINT = 3.0  # default evaluation allowance per eval point
ITERS_ONLY_TRAIN_MINUTES = 60.0  # training allowance for cells with an iteration cap but no time budget
_PLAN_HIDDEN = ("time", "job_name", "signal_delay_s", "array_parallelism", "additional_parameters")


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
        "gpus_per_node": settings.gpus_per_node or None,  # 0: no GPU requested
        "gres": settings.gres,
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
