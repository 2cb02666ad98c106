"""The one reader of every file the harness parses (suites, includes, calibration files, spec and
state JSON, manifests, job records): regular files only, opened without blocking (a FIFO or a
device is refused, never read), size-capped, decoded and parsed with one-line errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from bench.errors import BenchError

MAX_PARSED_BYTES = 16 * 2**20  # far above any real suite, calibration, spec, state or manifest
_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}  # fmt: skip


class FileReadError(BenchError):
    """A file the harness parses is missing, not a regular file, too large, not UTF-8 or malformed.

    ``str(exc)`` is ``"PATH: reason"``; callers add how to fix it.
    """

    def __init__(self, path: Path, reason: str, missing: bool = False) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason, self.missing = Path(path), reason, missing


def open_regular(path: Path) -> int:
    """A read-only descriptor of ``path``; a FIFO or device is refused without blocking or reading it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        missing = isinstance(exc, FileNotFoundError | NotADirectoryError)
        raise FileReadError(path, "does not exist" if missing else f"cannot read ({exc.strerror})", missing) from None
    kind = stat.S_IFMT(os.fstat(fd).st_mode)
    if kind != stat.S_IFREG:
        os.close(fd)
        raise FileReadError(path, f"is {_KINDS.get(kind, 'a special file')}, not a regular file")
    return fd


def regular_file(path: Path) -> Path:
    """``path``, checked to be a regular file (a FIFO or device would block or never end a load)."""
    os.close(open_regular(Path(path)))
    return Path(path)


def read_capped(path: Path, limit: int = MAX_PARSED_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes: the one reader of every file the harness parses."""
    path = Path(path)
    with os.fdopen(open_regular(path), "rb") as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise FileReadError(path, f"cannot read ({exc.strerror})") from None
    if len(data) > limit:
        raise FileReadError(path, f"is larger than {limit / 2**20:g} MiB, more than such a file can hold")
    return data


def read_text(path: Path, limit: int = MAX_PARSED_BYTES) -> str:
    """:func:`read_capped`, decoded as UTF-8."""
    try:
        return read_capped(path, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise FileReadError(path, "is not UTF-8 text") from None


def read_json(path: Path, limit: int = MAX_PARSED_BYTES) -> Any:
    """:func:`read_capped`, parsed as JSON (deep nesting is malformed, not a crash)."""
    text = read_text(path, limit)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FileReadError(path, f"is not valid JSON ({exc})") from None
    except RecursionError:
        raise FileReadError(path, "is not valid JSON (nested too deeply)") from None
