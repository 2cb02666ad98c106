"""A device pool (``run --devices 0,1,2``): one worker process per CUDA device on the same suite;
run locks spread the cells among them, so each cell runs once. CPU workers (``--devices cpu,cpu``) share
this process's CPUs: each gets an equal part of them as its torch threads. The pool prints the results
table once, after every worker ended."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.plan.launching import LaunchSettings
from bench.plan.suites import Cell
from bench.training.options import LoopOptions

RUN_BENCH = Path(__file__).resolve().parents[2] / "run_bench.py"


def parse_devices(text: str) -> tuple[str, ...]:
    """``'0,1,2'`` -> ``('0', '1', '2')``: CUDA indices, or ``cpu`` for a worker on the CPU."""
    devices = tuple(d.strip() for d in text.split(","))
    if not all(d.isdigit() or d == "cpu" for d in devices):  # an empty entry too ('' or 'cpu,,cpu')
        raise BenchError(f"--devices {text!r}: expected CUDA indices like 0,1,2 (or cpu), no empty entry")
    return devices


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


def worker_argv(argv: list[str]) -> list[str]:
    """The same command without ``--devices``/``--device`` (each worker gets its own device)."""
    base, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--devices", "--device"):
            skip = True
        elif not a.startswith(("--devices=", "--device=")):
            base.append(a)
    return base


def worker_env(devices: tuple[str, ...], entry: str) -> dict[str, str] | None:
    """The environment of the worker of ``entry``: a CPU worker's threads (``OMP_NUM_THREADS``) are the usable
    CPUs split among the pool's CPU workers (at least 1; a user's smaller value is kept); None: inherited."""
    if entry != "cpu":
        return None
    from bench.training.threads import usable_cpus

    share = max(1, usable_cpus() // devices.count("cpu"))
    given = os.environ.get("OMP_NUM_THREADS", "")
    threads = min(share, int(given)) if given.isdigit() and int(given) > 0 else share
    return os.environ | {"OMP_NUM_THREADS": str(threads)}


@dataclass(frozen=True)
class DevicePool:
    """One worker per device, each running ``argv`` (the user's command) on ``cuda:<index>`` (or the CPU)."""

    devices: tuple[str, ...]
    argv: tuple[str, ...]
    name: str = "device-pool"

    def run(self, cells: list[Cell], opts: LoopOptions, settings: LaunchSettings) -> dict[str, str]:
        """Start every worker, wait for all; returns ``worker -> 'exit N'``."""
        cmd = [sys.executable, str(RUN_BENCH), *worker_argv(list(self.argv)), "--no-progress", "--pool-worker"]
        procs = {f"{i}:{worker_device(d)}": subprocess.Popen([*cmd, "--device", worker_device(d)],
                                                             env=worker_env(self.devices, d))
                 for i, d in enumerate(self.devices)}  # fmt: skip
        return {name: f"exit {p.wait()}" for name, p in procs.items()}
