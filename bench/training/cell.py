"""One cell under its run lock: skip it when finished, resume it when started, record failures."""

from __future__ import annotations

import traceback

from bench.plan.specs import RunSpec
from bench.results.io import atomic_write_bytes
from bench.results.lock import LockBusy, RunLock
from bench.results.runs import RunPaths, read_state, write_state
from bench.training.loop import train
from bench.training.options import LoopOptions
from models.plugins import load_plugins


def run_cell(spec: RunSpec, opts: LoopOptions) -> str:
    """Run one cell under its lock: skip if done/diverged, resume if started, record failures.

    Returns the cell's status afterwards ('done', 'diverged', 'todo' when interrupted, 'running'
    when another process holds the lock, 'failed' on an exception, which is recorded and re-raised).
    """
    load_plugins(opts.plugins)  # a launched job imports the plugins its model may come from
    paths = RunPaths.of(opts.out, spec)
    if read_state(paths)["status"] in ("done", "diverged"):
        return read_state(paths)["status"]
    try:
        lock = RunLock(paths.root).__enter__()
    except LockBusy:
        return "running"
    try:
        if read_state(paths)["status"] in ("done", "diverged"):
            return read_state(paths)["status"]
        return train(spec, opts, paths)
    except KeyboardInterrupt:
        write_state(paths, status="todo", interrupted=True)
        raise
    except BaseException as exc:
        write_state(paths, status="failed", error=f"{type(exc).__name__}: {exc}")
        atomic_write_bytes(paths.root / "error.txt", traceback.format_exc().encode())
        raise
    finally:
        lock.__exit__(None, None, None)
