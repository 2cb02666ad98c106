"""Atomic file writes (their files follow the umask), crash-tolerant JSON-lines appends and reads,
and the writability check every writing command runs first."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from bench.errors import BenchError
from bench.files import FileReadError, open_regular, read_capped

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
MAX_JSONL_LINE = 2**20  # one row of evals/events/jobs .jsonl; longer lines are skipped like torn ones


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


def write_if_changed(path: Path, data: bytes) -> bool:
    """:func:`atomic_write_bytes`, unless ``path`` is a regular file holding ``data`` already (then nothing
    is written and its modification time stays); whether it wrote."""
    try:
        if read_capped(path, len(data)) == data:
            return False
    except FileReadError:  # missing, longer, not a regular file or unreadable: written anew
        pass
    atomic_write_bytes(path, data)
    return True


def umask() -> int:
    """The process's umask now (from /proc, which changes nothing; else set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def follow_umask(fd_or_path: int | Path, folder: bool = False) -> None:
    """Give a file made by ``mkstemp`` (0600) or a folder made by ``mkdtemp`` (0700) the mode a plain
    ``open``/``mkdir`` would: 0666/0777 less the umask, so a group can read shared results."""
    mode = (0o777 if folder else 0o666) & ~umask()
    if isinstance(fd_or_path, int):
        os.fchmod(fd_or_path, mode)
    else:
        os.chmod(fd_or_path, mode)


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        follow_umask(fd)
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
    import torch

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
        fd = _open_append(path)
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


def _open_append(path: Path) -> int:
    """An appending descriptor of ``path``, a regular file: a FIFO in its place would block the open or
    the writes (non-blocking, the open fails at once when no reader waits), so it is refused."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # ENXIO: a FIFO without a reader
            raise
        fd = None
    if fd is None or not stat.S_ISREG(os.fstat(fd).st_mode):
        if fd is not None:
            os.close(fd)
        raise BenchError(f"{path}: is not a regular file, so nothing can be appended to it; move it away")
    os.set_blocking(fd, True)
    return fd


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


NOT_AN_OBJECT = object()  # numbered_jsonl's value for a complete line that is not a JSON object


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSON-lines file (none when it is missing); torn, invalid or overlong lines are skipped.

    Raises :class:`FileReadError` when ``path`` is not a regular file.
    """
    return (row for _, row in numbered_jsonl(path) if row is not NOT_AN_OBJECT)


def numbered_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, row) of each complete line (ending in a newline: a torn last line is skipped); a line
    that is invalid, overlong or not a JSON object gives :data:`NOT_AN_OBJECT`."""
    try:
        fd = open_regular(Path(path))
    except FileReadError as exc:
        if exc.missing:
            return
        raise FileReadError(exc.path, f"{exc.reason}; move it away") from None
    with os.fdopen(fd, "rb") as f:
        number = 0
        while line := f.readline(MAX_JSONL_LINE + 1):
            number += 1
            if not line.endswith(b"\n"):
                overlong = len(line) > MAX_JSONL_LINE
                while len(line) > MAX_JSONL_LINE and (line := f.readline(MAX_JSONL_LINE + 1)):
                    pass  # the rest of an overlong line
                if overlong:
                    yield number, NOT_AN_OBJECT
                continue
            try:
                row = json.loads(line.decode("utf-8", errors="replace"))
            except (ValueError, RecursionError):
                row = NOT_AN_OBJECT
            yield number, row if isinstance(row, dict) else NOT_AN_OBJECT


def check_writable_dir(
    path: Path, flag: str, folders: Iterable[Path | str] = (), files: Iterable[Path | str] = ()
) -> None:
    """Raise a one-line BenchError unless ``path`` is a writable folder or can be made one below its
    nearest existing folder (nothing is created): every writing command checks before it works.

    ``folders`` and ``files`` (relative to ``path``) are the places inside it the command writes: each
    folder must be a folder or creatable, each file absent or a regular file, so a stray file
    (``OUT/calibration`` a file) stops the command before it measures anything."""
    path, files = Path(path), list(files)
    _check_folder(path, flag)
    for place in [*folders, *(Path(f).parent for f in files)]:
        _check_folder(path / place, flag, root=path)
    for name in files:
        target = path / name
        if target.exists() and not target.is_file():
            raise BenchError(f"{flag} {path}: {target} is not a regular file; move it away or pass another {flag}")


def _check_folder(path: Path, flag: str, root: Path | None = None) -> None:
    """:func:`check_writable_dir` for one folder; ``root``: the flag's own folder, which ``path`` lies in."""
    for folder in (path, *path.parents):
        try:
            kind = stat.S_IFMT(os.stat(folder).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise BenchError(f"{flag} {path}: {exc.strerror}; pass a writable folder for {flag}") from None
        inside = root is not None and folder != root and root in folder.parents
        if kind != stat.S_IFDIR and inside:
            raise BenchError(f"{flag} {root}: {folder} is a file, not a folder; move it away or pass another {flag}")
        where = "" if folder == path else f"{folder} "
        if kind != stat.S_IFDIR:
            raise BenchError(f"{flag} {path}: {where}is a file, not a folder; pass a folder for {flag}")
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            why = f"{where}folder is not writable ({exc.strerror})"
            raise BenchError(f"{flag} {path}: {why}; pass a writable {flag}") from None
        return


@contextlib.contextmanager
def new_folders(path: Path) -> Iterator[Path]:
    """Create ``path`` with its missing parents; if the block raises, remove the ones it created that
    are still empty, so a failed command leaves no trace."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        for folder in missing:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


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
