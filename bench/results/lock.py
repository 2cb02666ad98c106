"""Per-run exclusive locks (``fcntl.flock``): released by the kernel when a holder dies.

A crashed process therefore never leaves a stale lock; the lock file itself keeps the holder's
host and pid for ``status``.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from bench.files import FileReadError, read_json


class LockBusy(Exception):
    """Another live process holds the lock."""


class RunLock:
    """Exclusive, non-blocking lock on ``<run_dir>/lock`` for the lifetime of a ``with`` block."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "lock"
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            msg = f"{self.path.parent} is being trained by another process ({holder(self.path)})"
            raise LockBusy(msg) from None
        info = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holder(path: Path) -> str:
    """``host:pid`` recorded in a lock file, or 'unknown'."""
    try:
        info = read_json(Path(path), limit=4096)
        return f"{info.get('host', '?')}:{info.get('pid', '?')}"
    except (FileReadError, AttributeError):
        return "unknown"


def is_locked(run_dir: Path) -> bool:
    """True when a live process holds the run's lock (probes without taking it for long)."""
    path = Path(run_dir) / "lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO in its place must not block the probe
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
