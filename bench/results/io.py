"""Atomic file writes and crash-tolerant JSON-lines appends."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import torch

from bench.errors import BenchError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(BenchError):
    """A write failed because the disk (or quota) is full; the temporary file is already removed."""


def disk_full_error(path: Path | str | None) -> DiskFullError:
    """The one-line error for a full disk while writing ``path``."""
    return DiskFullError(f"disk full while writing {path or 'a file'}; free space and rerun (the run resumes)")


@contextlib.contextmanager
def _disk_full_as_error(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise disk_full_error(path) from exc
        raise


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    with _disk_full_as_error(path):
        _atomic_write(path, lambda f: f.write(data))


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Atomic text write (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write, keys sorted, indented."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(path: Path, obj: Any) -> None:
    """``torch.save`` to a temporary file, fsync, then rename over ``path``."""
    path = Path(path)
    with _disk_full_as_error(path):
        _atomic_write(path, lambda f: torch.save(obj, f))


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON row as a single ``write`` of a full line (O_APPEND), then fsync.

    A crash can leave at most one torn last line, which :func:`read_jsonl` skips.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(row, sort_keys=True, default=str) + "\n").encode("utf-8")
    with _disk_full_as_error(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # A torn previous line (no trailing newline) must not swallow this row.
            if os.fstat(fd).st_size and not _ends_with_newline(path):
                line = b"\n" + line
            size = os.fstat(fd).st_size
            if os.write(fd, line) != len(line):  # a short write: the disk filled up mid-line
                os.ftruncate(fd, size)  # leave no torn line behind
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        finally:
            os.close(fd)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSON-lines file; torn or invalid lines (from a crash mid-append) are skipped."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                yield row


STALE_TEMP_S = 24 * 3600.0  # a temporary file this old in a shared folder is left by a crash


def remove_stale_temps(folder: Path, older_than_s: float = STALE_TEMP_S) -> int:
    """Delete ``.*.tmp`` files of atomic writes cut short by a crash, in a folder other processes may be
    writing to: only those untouched for ``older_than_s`` seconds; returns how many."""
    cutoff, count = time.time() - older_than_s, 0
    for tmp in Path(folder).glob(".*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                count += 1
        except FileNotFoundError:  # another process finished or removed it
            continue
    return count


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
