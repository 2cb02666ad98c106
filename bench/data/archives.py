"""Safe extraction (zip, tar, tar.gz, tar.bz2, tar.xz) and download of dataset archives."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.client
import lzma
import os
import re
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from bench.data.paper import DatasetOfflineError, get_dataset_info
from bench.errors import DataError

MAX_TOTAL_BYTES = 256 * 2**30  # uncompressed size of an archive
MAX_RATIO = 100  # uncompressed / compressed, checked for members (and archives) above RATIO_MIN_BYTES
RATIO_MIN_BYTES = 16 * 2**20
DIRECT_DOWNLOAD_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
MAX_NAME_BYTES = 255  # a file or folder name (NAME_MAX of Linux file systems)
MAX_DEPTH = 64  # path components of a member: datasets nest a few folders, not thousands


def _unsafe(archive: Path, member: str, why: str) -> DataError:
    return DataError(
        f"refusing archive {archive}: member {member!r} {why}; use a trusted copy, or a folder of its images as --src"
    )


def _member_path(name: str, archive: Path) -> PurePosixPath | None:
    """Relative path of a member inside the extraction folder (None for the root itself)."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"[A-Za-z]:", clean):
        raise _unsafe(archive, name, "has an absolute path")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _unsafe(archive, name, "points outside the extraction folder (..)")
    return PurePosixPath(*parts) if parts else None


def _check_layout(archive: Path, members: list[tuple[str, PurePosixPath]]) -> None:
    """Refuse a layout no folder can hold, before anything is written: a name longer than a file name can be,
    folders nested beyond :data:`MAX_DEPTH`, or one path that is a file and a folder (``x.png`` and
    ``x.png/y.png``)."""
    files = {}
    for name, rel in members:
        if (long := next((p for p in rel.parts if len(p.encode()) > MAX_NAME_BYTES), None)) is not None:
            raise _layout(archive, name, f"has a name of {len(long.encode())} bytes (at most {MAX_NAME_BYTES})")
        if len(rel.parts) > MAX_DEPTH:
            raise _layout(archive, name, f"lies {len(rel.parts) - 1} folders deep (at most {MAX_DEPTH - 1})")
        files[rel] = name
    for rel, name in files.items():
        if (folder := next((p for p in rel.parents if p in files), None)) is not None:
            raise _layout(archive, name, f"lies in {files[folder]!r}, which is a file of the archive too")


def _layout(archive: Path, member: str, why: str) -> DataError:
    return DataError(
        f"refusing archive {archive}: member {member[:80]!r} {why}; no folder can hold this layout: extract the "
        "archive yourself and pass the images' folder as --src"
    )


def _check_sizes(archive: Path, sizes: list[tuple[str, int, int]]) -> None:
    """Refuse archives whose uncompressed size or compression ratio is beyond reason (bombs)."""
    packed_total = max(archive.stat().st_size, 1)
    total = 0
    for name, size, packed in sizes:
        total += size
        if total > MAX_TOTAL_BYTES:
            raise _unsafe(archive, name, f"takes it past {MAX_TOTAL_BYTES // 2**30} GiB uncompressed")
        if size > RATIO_MIN_BYTES and size > MAX_RATIO * max(packed, 1):
            raise _unsafe(archive, name, f"expands {size // max(packed, 1)}x (a decompression bomb?)")
        if total > RATIO_MIN_BYTES and total > MAX_RATIO * packed_total:
            raise _unsafe(archive, name, f"takes it past {MAX_RATIO}x its size (a decompression bomb?)")


def _copy_member(src: IO[bytes], target: Path, size: int, archive: Path, name: str) -> None:
    """Copy at most ``size`` bytes (the declared size) of a member to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(target, "wb") as out:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > size:
                raise _unsafe(archive, name, "is larger than its header says")
            out.write(chunk)


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        plan = []
        for info in zf.infolist():
            rel = _member_path(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise _unsafe(archive, info.filename, "is a symbolic link")
            if rel is None or info.is_dir():
                continue
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode):  # type bits are often absent
                raise _unsafe(archive, info.filename, "is a device or special file")
            if info.flag_bits & 0x1:
                raise DataError(
                    f"{archive}: member {info.filename!r} is encrypted (password-protected); "
                    "extract the archive with its password and pass the folder as --src"
                )
            plan.append((info, rel))
        _check_layout(archive, [(i.filename, rel) for i, rel in plan])
        _check_sizes(archive, [(i.filename, i.file_size, i.compress_size) for i, _ in plan])
        for info, rel in plan:
            with zf.open(info) as src:
                _copy_member(src, dest / rel, info.file_size, archive, info.filename)


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        plan = []
        for member in tf.getmembers():
            rel = _member_path(member.name, archive)
            if member.issym() or member.islnk():
                raise _unsafe(archive, member.name, f"is a link (to {member.linkname!r})")
            if rel is None or member.isdir():
                continue
            if not member.isfile():
                raise _unsafe(archive, member.name, "is a device or special file")
            plan.append((member, rel))
        archive_size = archive.stat().st_size
        _check_layout(archive, [(m.name, rel) for m, rel in plan])
        _check_sizes(archive, [(m.name, m.size, archive_size) for m, _ in plan])
        for member, rel in plan:
            src = tf.extractfile(member)
            assert src is not None  # regular files always have data
            with src:
                _copy_member(src, dest / rel, member.size, archive, member.name)


_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x5d\x00\x00": "lzma"}
_OPENERS = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open, "lzma": lzma.open}
_STREAM_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)
_AGAIN = "download it again and compare its size or sha256 with the source's"


def _compression(archive: Path) -> str | None:
    """The compression a file's first bytes announce (gzip, bzip2, xz, lzma), or None."""
    with open(archive, "rb") as f:
        head = f.read(6)
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def _not_a_tar(archive: Path, kind: str) -> DataError:
    """Why a compressed file is no tar archive: a damaged stream, or something else compressed."""
    try:
        with _OPENERS[kind](archive) as f:
            head = f.read(tarfile.BLOCKSIZE)
        tarfile.TarInfo.frombuf(head, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:  # before the stream errors: it is a TarError too
        return DataError(
            f"{archive} is {kind}-compressed but holds no tar archive; decompress it, pass the images' folder"
        )
    except _STREAM_ERRORS as exc:
        return DataError(f"cannot extract {archive}: its {kind} stream is damaged or cut short ({exc}); {_AGAIN}")
    return DataError(f"cannot extract {archive}: a damaged tar archive inside its {kind} stream; {_AGAIN}")


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a zip or tar archive (plain, gzip, bzip2, xz, lzma) into ``dest``, refusing unsafe
    members before writing anything.

    Refused: absolute paths, ``..`` components, symbolic and hard links, devices and other special
    files, encrypted members and decompression bombs (see :data:`MAX_TOTAL_BYTES`, :data:`MAX_RATIO`).
    Damaged archives are one-line errors that say whether the compression or the archive is damaged.
    """
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, dest)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, dest)
        elif (kind := _compression(archive)) is not None:
            raise _not_a_tar(archive, kind)
        else:
            raise DataError(f"{archive} is not a folder, zip or tar archive; pass the downloaded archive or a folder")
    except _STREAM_ERRORS as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # the file system's (a full disk), not the data's
            raise
        kind = "zip" if zipfile.is_zipfile(archive) else _compression(archive) or "tar"
        raise DataError(f"cannot extract {archive}: damaged {kind} data ({exc}); {_AGAIN}") from exc


def _fetch(url: str, out: IO[bytes]) -> str:
    """Stream ``url`` into ``out``; its sha256."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise DataError(
            f"cannot download {url}: HTTP {exc.code} {exc.reason}; download it by hand and pass --src"
        ) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetOfflineError(
            f"cannot reach {url}: no network ({reason}); download it by hand and pass --src"
        ) from exc
    return digest.hexdigest()


def download_dataset(name: str, dest: Path) -> Path:
    """Download ``name``'s archive from its registry URL into folder ``dest`` (sha256 checked if known)."""
    info = get_dataset_info(name)
    if not info.url:
        raise DataError(f"dataset {name!r} has no published download ({info.notes}); get the images, pass --src")
    if not info.url.endswith(DIRECT_DOWNLOAD_SUFFIXES):
        raise DataError(f"{info.url} is a web page, not a file ({info.notes}); download it by hand, pass --src")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / info.url.rsplit("/", 1)[-1]
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(info.url, out)
        if info.sha256 and digest != info.sha256:
            raise DataError(f"{info.url} has sha256 {digest}, the registry says {info.sha256}; refusing it")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
