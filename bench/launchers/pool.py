"""A device pool (``run --devices 0,1,2``): one worker process per CUDA device on the same suite;
run locks spread the cells among them, so each cell runs once. ``cpu`` entries are workers on the
CPU that share its cores (``--devices cpu,cpu`` on 2 cores: two workers of one thread each, which
small models train faster than one worker of two threads). Every worker takes the cells longest
first (:func:`longest_first`), so a long row starts at once instead of after the short ones."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.plan.compute import compute_fields
from bench.plan.launching import LaunchSettings
from bench.plan.suites import Cell
from bench.training.options import LoopOptions
from bench.training.threads import usable_cpus

RUN_BENCH = Path(__file__).resolve().parents[2] / "run_bench.py"
POLL_S = 0.5  # how often the pool looks whether a worker has exited
WORKER_FLAG = "--pool-worker"  # a hidden flag of `run`: a worker leaves the closing results to the pool


def parse_devices(text: str) -> tuple[str, ...]:
    """``'0,1,2'`` -> ``('0', '1', '2')``: CUDA indices, or ``cpu`` for a worker on the CPU."""
    devices = tuple(d.strip() for d in text.split(","))
    if not all(d.isdigit() or d == "cpu" for d in devices):  # an empty entry too ('' or 'cpu,,cpu')
        raise BenchError(f"--devices {text!r}: expected CUDA indices like 0,1,2 (or cpu), no empty entry")
    return devices


def planned_cost(cell: Cell) -> float:
    """Reference seconds a cell's budget stands for: its compute budget (times its row's multiple),
    else its budget hours; 0 when it has only an iteration or kimg cap (unknown)."""
    spec = cell.spec
    compute_s = compute_fields(spec)["compute_budget_s"]
    return compute_s if compute_s is not None else (spec.budget_hours or 0.0) * 3600 * spec.budget_scale


def longest_first(cells: list[Cell]) -> list[Cell]:
    """The order a pool worker takes cells in: the largest planned budget first (ties keep the
    suite's order), so the pool's wall time is not one long row started last."""
    return sorted(cells, key=lambda c: -planned_cost(c))


def worker_device(entry: str) -> str:
    """The ``--device`` of a pool entry: ``cuda:<index>``, or ``cpu``."""
    return entry if entry == "cpu" else f"cuda:{entry}"


def check_devices(devices: tuple[str, ...]) -> None:
    """Fail, before any worker starts, when a device of ``--devices`` is not on this machine."""
    import torch

    from bench.results.envinfo import cuda_absence

    cuda = [d for d in devices if d != "cpu"]  # cpu workers need nothing
    if not cuda:
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    wanted = f"--devices {','.join(devices)}"
    if count == 0:
        raise BenchError(f"{wanted}: found {cuda_absence()}; run without --devices to train here")
    if missing := [d for d in cuda if int(d) >= count]:
        raise BenchError(f"{wanted}: no cuda:{missing[0]} on this machine (it has {count}); pass indices below {count}")


def worker_env(devices: tuple[str, ...], entry: str) -> dict[str, str]:
    """The environment of ``entry``'s worker: a CPU worker gets its share of the usable CPUs as
    ``OMP_NUM_THREADS`` (at least 1; more threads than CPUs is many times slower)."""
    env = dict(os.environ)
    if entry == "cpu":
        env["OMP_NUM_THREADS"] = str(max(1, usable_cpus() // devices.count("cpu")))
    return env


def worker_argv(argv: list[str]) -> list[str]:
    """The same command without ``--devices``/``--device`` (each worker gets its own device), as a
    pool worker (:data:`WORKER_FLAG`: the pool prints the results once, when every worker is done)."""
    base, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--devices", "--device"):
            skip = True
        elif not a.startswith(("--devices=", "--device=")):
            base.append(a)
    return [*base, WORKER_FLAG]


@dataclass(frozen=True)
class DevicePool:
    """One worker per device, each running ``argv`` (the user's command) on ``cuda:<index>`` (or the CPU)."""

    devices: tuple[str, ...]
    argv: tuple[str, ...]
    name: str = "device-pool"
    # called once, when the first worker has exited: while the others finish, its CPU is free (the run
    # computes there what the report will need)
    on_first_exit: Callable[[], None] | None = None

    @property
    def checked_device(self) -> str | None:
        """The ``--device`` the pool's pre-run checks stand for: ``cpu`` when every worker is a CPU worker (they
        share this machine's CPU and memory, so the parent's checks, remembered, are theirs and no worker builds
        the models on the meta device again); None with CUDA workers (each checks its own device)."""
        return "cpu" if set(self.devices) == {"cpu"} else None

    def run(self, cells: list[Cell], opts: LoopOptions, settings: LaunchSettings) -> dict[str, str]:
        """Start every worker, wait for all; returns ``worker -> 'exit N'``."""
        cmd = [sys.executable, str(RUN_BENCH), *worker_argv(list(self.argv)), "--no-progress"]
        procs = {f"{i}:{worker_device(d)}": subprocess.Popen([*cmd, "--device", worker_device(d)],
                                                             env=worker_env(self.devices, d))
                 for i, d in enumerate(self.devices)}  # fmt: skip
        if self.on_first_exit is not None:
            while all(p.poll() is None for p in procs.values()):
                time.sleep(POLL_S)
            self.on_first_exit()
        return {name: f"exit {p.wait()}" for name, p in procs.items()}
