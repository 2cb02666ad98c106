"""How cells are launched, as a suite's ``[slurm]`` block and ``run``'s flags state it
(:class:`LaunchSettings`: one field per setting; the flags and the suite keys are generated from
it), validated before anything is submitted."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from bench.errors import BenchError
from bench.plan.specs import number_problem

LAUNCHERS = ("local", "submitit-local", "slurm")
SIGNAL_DELAY_S = 120  # SLURM signals a task this long before its time limit (time to checkpoint)
MIN_TIME_LIMIT_MIN = 3  # a task must outlive the signal delay
MAX_TIME_LIMIT_MIN = 366 * 24 * 60  # a year: longer limits are typos or overflows
MAX_SETTING = 2**31 - 1  # SLURM's counts are 32-bit

# sbatch options the launcher sets itself (through flags or submitit); not accepted as extra lines.
_RESERVED = {"array", "output", "error", "open-mode", "signal", "wrap", "job-name", "time", "partition",
             "account", "qos", "gpus-per-node", "gres", "cpus-per-task", "mem", "chdir", "parsable"}  # fmt: skip
_GPU_OPTIONS = {"gpus", "gpus-per-task", "gpus-per-socket"}  # other spellings of a GPU request: refused
_NAME_RE = re.compile(r"[A-Za-z0-9_.,:+-]+")  # partition, account, QoS, gres
_GPU_KEYS = {"gpus_per_node", "gres"}  # LaunchSettings fields that request GPUs (one request per task)
_OPTION_RE = re.compile(r"(?:--)?(?P<key>[a-z][a-z0-9-]*)(?:[= ](?P<value>.+))?")


def _opt(default: Any, help: str, **meta: Any) -> Any:
    """A settings field with its flag's help (``run``'s flags and the suite's ``[slurm]`` keys come from these)."""
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class LaunchSettings:
    """How cells are launched: the suite's ``[slurm]`` block, overridden by command-line flags."""

    launcher: str = _opt("local", "local: this process (default); submitit-local: subprocesses; slurm: a job array",
                         choices=LAUNCHERS, suite=False)  # fmt: skip
    partition: str | None = _opt(None, "SLURM partition (default: the cluster's)")
    gpus_per_node: int | None = _opt(
        None, "GPUs per task (default: the suite's budget.num_gpus when its budget.accelerator is 'gpu', else none; "
        "0 requests none)", parse="nonnegative", zero_ok=True,
    )  # fmt: skip
    gres: str | None = _opt(None, "the site's form of the GPU request, e.g. gpu:a100:1 (sbatch --gres; "
                            "replaces --gpus-per-node)")  # fmt: skip
    cpus_per_task: int | None = _opt(None, "CPUs per task (default: the partition's)")
    mem_gb: float | None = _opt(None, "memory per task in GB (default: the partition's)")
    time_limit_min: int | None = _opt(None, "time limit per task in minutes (default: budget + eval + margin)")
    time_margin_min: float = _opt(
        10.0, "minutes added to training + evaluation in the derived time limit", zero_ok=True
    )
    eval_minutes: float | None = _opt(
        None, "evaluation minutes per cell (default: 3 per evaluation point)", zero_ok=True
    )
    account: str | None = _opt(None, "SLURM account")
    qos: str | None = _opt(None, "SLURM quality of service")
    array_parallelism: int | None = _opt(None, "tasks running at once (slurm default 256, local 1)")
    extra_sbatch: tuple[str, ...] = _opt(
        (), "extra sbatch option, e.g. --sbatch-extra=--constraint=a100 (repeatable; '#SBATCH ' prefix ok)",
        flag="--sbatch-extra",
    )  # fmt: skip
    max_num_timeout: int = _opt(
        3, "requeues after time-outs (preemptions requeue without limit)", parse="nonnegative", zero_ok=True
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_sbatch", tuple(self.extra_sbatch))
        if self.launcher not in LAUNCHERS:
            raise BenchError(f"--launcher {self.launcher!r}: expected one of {', '.join(LAUNCHERS)}")
        for key in ("partition", "account", "qos", "gres"):
            value = getattr(self, key)
            if value is not None and not _NAME_RE.fullmatch(value):
                raise BenchError(f"{key} {value!r}: only letters, digits and _.,:+- are allowed")
        if self.gpus_per_node is not None and self.gres is not None:
            raise BenchError(f"gpus_per_node {self.gpus_per_node} and gres {self.gres!r}: pass one GPU request")
        if self.gpus_per_node is not None and self.gpus_per_node < 0:
            raise BenchError(f"gpus_per_node must be >= 0 (0: no GPU), got {self.gpus_per_node}")
        for f in dataclasses.fields(self):  # every number: finite and in range
            _check_number(f.name, getattr(self, f.name), zero_ok=f.metadata.get("zero_ok", False))
        if self.time_limit_min is not None and self.time_limit_min < MIN_TIME_LIMIT_MIN:
            msg = f"time limit {self.time_limit_min} min: must be >= {MIN_TIME_LIMIT_MIN}"
            raise BenchError(f"{msg} (tasks are signalled {SIGNAL_DELAY_S} s before it to checkpoint)")
        for line in self.extra_sbatch:
            parse_sbatch_option(line)

    @classmethod
    def merged(cls, block: dict[str, Any], **flags: Any) -> LaunchSettings:
        """The suite's ``[slurm]`` block, then every flag that is not None; extra sbatch lines add up; a GPU
        request among the flags (``--gpus-per-node`` or ``--gres``) replaces the block's."""
        given = {k: v for k, v in flags.items() if v is not None and k != "extra_sbatch"}
        drop = {"extra_sbatch", *(_GPU_KEYS if _GPU_KEYS & given.keys() else ())}
        values = {k: v for k, v in block.items() if k not in drop} | given
        extra = (*block.get("extra_sbatch", ()), *(flags.get("extra_sbatch") or ()))
        return cls(**values, extra_sbatch=tuple(str(x) for x in extra))

    def requesting(self, gpus: int) -> LaunchSettings:
        """These settings with ``gpus`` GPUs per task (what a suite's budget assumes; 0: none), unless
        ``gpus_per_node`` or ``gres`` was given."""
        if not gpus or self.gpus_per_node is not None or self.gres is not None:
            return self
        return dataclasses.replace(self, gpus_per_node=gpus)


def _check_number(key: str, value: Any, zero_ok: bool) -> None:
    """A numeric setting: finite, > 0 (or >= 0) and at most :data:`MAX_SETTING` (minutes: at most
    :data:`MAX_TIME_LIMIT_MIN`); None and non-numbers pass."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    high = MAX_TIME_LIMIT_MIN if key.endswith(("_min", "_minutes")) else MAX_SETTING
    if (problem := number_problem(value, high=high, zero_ok=zero_ok)) is not None:
        raise BenchError(f"{key} {problem}")


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
    if key in _GPU_OPTIONS:
        raise BenchError(f"extra sbatch line {line!r}: request GPUs with --gpus-per-node N or --gres SPEC")
    if key in _RESERVED:
        raise BenchError(f"extra sbatch line {line!r}: --{key} is set by the launcher; use its own flag")
    return key, value.strip() if value else True
