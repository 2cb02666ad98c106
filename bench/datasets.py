"""The paper's datasets: registry, safe extraction, download and ``prepare`` into the tensor cache.

``prepare_dataset`` turns a downloaded archive (zip, tar, tar.gz...) or folder into the cached
tensor that :func:`bench.data.load_dataset` finds, at the registry's resolution unless another is
given. Loading a prepared dataset at a lower resolution resizes the prepared tensor (LANCZOS) and
caches the result (recorded as ``derived_from`` in its manifest; redone when the source is
re-prepared); a higher one needs ``prepare --resolution R``.

No images are shipped or downloaded implicitly: names, counts, source URLs and archive checksums
only. A checksum is filled in only where it is known; "" means unknown.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from bench.data import (
    Dataset,
    cache_path,
    images_from_files,
    list_image_files,
    read_cache,
    resize_images,
    suggest,
    write_cache,
)
from bench.errors import DataError, OfflineError
from bench.io import file_sha256

MAX_TOTAL_BYTES = 256 * 2**30  # uncompressed size of an archive
MAX_RATIO = 100  # uncompressed / compressed, checked for members (and archives) above RATIO_MIN_BYTES
RATIO_MIN_BYTES = 16 * 2**20
DIRECT_DOWNLOAD_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


class DatasetOfflineError(DataError, OfflineError):
    """A dataset download failed because the network is unreachable."""


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset named by the paper: expected image count, native resolution and where it was published."""

    name: str
    count: int  # images the paper reports
    resolution: int  # px, as trained in the paper
    url: str  # where the authors published it; "" = not published
    sha256: str = ""  # of the file at ``url``; "" = unknown (never guessed)
    notes: str = ""


_DIFFAUGMENT = "https://data-efficient-gans.mit.edu/datasets/"
_FEW_SHOT_BUNDLE = "https://drive.google.com/file/d/1aAJCZbXNHyraJ6Mi13dSbe7pTyfPXha0/view"
_BUNDLE_NOTE = "in the FastGAN authors' few-shot-images bundle (Google Drive): use its {} folder"
_FFHQ = "https://github.com/NVlabs/ffhq-dataset"
_FFHQ_NOTE = "{} images of FFHQ at 1024 px; the paper does not publish which ones"
_UNPUBLISHED = "source not published with the paper"


def _bundle(name: str, count: int, folder: str, extra: str = "") -> DatasetInfo:
    return DatasetInfo(name, count, 1024, _FEW_SHOT_BUNDLE, notes=_BUNDLE_NOTE.format(folder) + extra)


PAPER_DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("animalface-dog", 389, 256, _DIFFAUGMENT + "AnimalFace-dog.zip", notes="AnimalFace dog"),
        DatasetInfo("animalface-cat", 160, 256, _DIFFAUGMENT + "AnimalFace-cat.zip", notes="AnimalFace cat"),
        DatasetInfo("obama", 100, 256, _DIFFAUGMENT + "100-shot-obama.zip", notes="100-shot Obama"),
        DatasetInfo("panda", 100, 256, _DIFFAUGMENT + "100-shot-panda.zip", notes="100-shot Panda"),
        DatasetInfo("grumpy-cat", 100, 256, _DIFFAUGMENT + "100-shot-grumpy_cat.zip", notes="100-shot Grumpy"),
        _bundle("art-paintings", 1000, "art paintings"),
        DatasetInfo("ffhq-1k", 1000, 1024, _FFHQ, notes=_FFHQ_NOTE.format("1,000")),
        _bundle("flower", 1000, "flower"),
        _bundle("pokemon", 800, "pokemon", "; public mirrors hold 833"),
        _bundle("anime-face", 120, "anime face"),
        _bundle("skull", 100, "skull", "; public mirrors hold 97"),
        _bundle("shell", 60, "shell", "; public mirrors hold 64"),
        DatasetInfo("art-2k", 2000, 1024, "", notes=f"art paintings (Table C); {_UNPUBLISHED}"),
        DatasetInfo("art-5k", 5000, 1024, "", notes=f"art paintings (Table C); {_UNPUBLISHED}"),
        DatasetInfo("art-10k", 10000, 1024, "", notes=f"art paintings (Table C); {_UNPUBLISHED}"),
        DatasetInfo("ffhq-2k", 2000, 1024, _FFHQ, notes=_FFHQ_NOTE.format("2,000")),
        DatasetInfo("ffhq-5k", 5000, 1024, _FFHQ, notes=_FFHQ_NOTE.format("5,000")),
        DatasetInfo("ffhq-10k", 10000, 1024, _FFHQ, notes=_FFHQ_NOTE.format("10,000")),
        DatasetInfo(
            "ffhq-70k",
            70000,
            1024,
            _FFHQ,
            notes="all of FFHQ; 70k images at 1024 px are 220 GB as uint8: prepare at a lower --resolution",
        ),
        DatasetInfo("nature-2k", 2000, 1024, "", notes=f"nature photographs (Table C); {_UNPUBLISHED}"),
        DatasetInfo("nature-5k", 5000, 1024, "", notes=f"nature photographs (Table C); {_UNPUBLISHED}"),
        DatasetInfo("nature-10k", 10000, 1024, "", notes=f"nature photographs (Table C); {_UNPUBLISHED}"),
    )
}


def get_dataset_info(name: str) -> DatasetInfo:
    """Registry entry of a paper dataset; :class:`DataError` with close names when unknown."""
    if name not in PAPER_DATASETS:
        raise DataError(
            f"unknown paper dataset {name!r}{suggest(name, PAPER_DATASETS)} (known: {', '.join(PAPER_DATASETS)})"
        )
    return PAPER_DATASETS[name]


def prepare_command(name: str, resolution: int | None = None) -> str:
    """The CLI command that prepares ``name``."""
    extra = f" --resolution {resolution}" if resolution else ""
    return f"python run_bench.py prepare --dataset {name} --src PATH_TO_DOWNLOAD{extra}"


def _where(info: DatasetInfo) -> str:
    return f"download it from {info.url} ({info.notes})" if info.url else f"get the images ({info.notes})"


# --------------------------------------------------------------------------- loading


def _prepared_resolutions(name: str, cache_dir: Path) -> list[int]:
    """Resolutions at which ``name`` was prepared (not derived), by manifest file name."""
    pattern = re.compile(rf"{re.escape(name)}-(\d+)\.json")
    found = []
    for path in Path(cache_dir).glob(f"{name}-*.json"):
        match = pattern.fullmatch(path.name)
        manifest = _read_json(path) if match else {}
        if manifest and "derived_from" not in manifest:
            found.append(int(match.group(1)))
    return sorted(found)


def _read_json(path: Path) -> dict:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _derivation_current(dataset: Dataset, cache_dir: Path) -> bool:
    """False when a derived cache's source was re-prepared with other content since."""
    origin = dataset.manifest.get("derived_from")
    if not origin:
        return True
    res = origin["resolution"]
    source = read_cache(cache_path(cache_dir, dataset.name, res), dataset.name, res)
    return source is None or source.sha256 == origin["sha256"]


def _derive(source: Dataset, resolution: int, cache_dir: Path) -> Dataset:
    kept = {k: v for k, v in source.manifest.items() if k not in ("sha256", "created", "shape", "count")}
    kept["derived_from"] = {"resolution": source.resolution, "sha256": source.sha256}
    return write_cache(cache_dir, source.name, source.name, resize_images(source.images, resolution), kept)


def check_prepared(name: str, resolution: int, cache_dir: Path) -> None:
    """Raise the same DataError as :func:`load_prepared` when ``name`` cannot be loaded, without loading it."""
    if cache_path(cache_dir, name, resolution).with_suffix(".json").exists():
        return
    if any(r > resolution for r in _prepared_resolutions(name, cache_dir)):
        return
    load_prepared(name, resolution, cache_dir)  # raises the explanatory error


def load_prepared(name: str, resolution: int, cache_dir: Path) -> Dataset:
    """A prepared paper dataset at ``resolution`` (derived from a larger prepared one if needed)."""
    info = get_dataset_info(name)
    found = read_cache(cache_path(cache_dir, name, resolution), name, resolution)
    if found is not None and _derivation_current(found, cache_dir):
        return found
    prepared = _prepared_resolutions(name, cache_dir)
    for res in (r for r in prepared if r > resolution):
        source = read_cache(cache_path(cache_dir, name, res), name, res)
        if source is not None:
            return _derive(source, resolution, cache_dir)
    if prepared:
        raise DataError(
            f"dataset {name!r} is prepared at {', '.join(map(str, prepared))} px only, not {resolution}; "
            f"run: {prepare_command(name, resolution)}"
        )
    raise DataError(f"dataset {name!r} is not prepared in {cache_dir}; {_where(info)} and run: {prepare_command(name)}")


# --------------------------------------------------------------------------- extraction


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
            plan.append((info, rel))
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
        _check_sizes(archive, [(m.name, m.size, archive_size) for m, _ in plan])
        for member, rel in plan:
            src = tf.extractfile(member)
            assert src is not None  # regular files always have data
            with src:
                _copy_member(src, dest / rel, member.size, archive, member.name)


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a zip or tar archive into ``dest``, refusing unsafe members before writing anything.

    Refused: absolute paths, ``..`` components, symbolic and hard links, devices and other special
    files, and decompression bombs (see :data:`MAX_TOTAL_BYTES`, :data:`MAX_RATIO`).
    """
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, dest)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, dest)
        else:
            raise DataError(f"{archive} is not a folder, zip or tar archive; pass the downloaded archive or a folder")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, RuntimeError, OSError) as exc:
        raise DataError(f"cannot extract {archive}: {exc}; download it again (it may be truncated)") from exc


# --------------------------------------------------------------------------- download


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


# --------------------------------------------------------------------------- prepare


def _source(info: DatasetInfo, src: Path | None, cache_dir: Path, download: bool) -> Path:
    if download:
        if src is not None:
            raise DataError("pass either --src or --download, not both")
        return download_dataset(info.name, cache_dir / "downloads")
    if src is None:
        raise DataError(f"no --src given for {info.name!r}; {_where(info)} and run: {prepare_command(info.name)}")
    path = Path(src).expanduser()
    if not path.exists():
        raise DataError(f"--src {path} does not exist; {_where(info)} and pass its path")
    return path.resolve()


def _count_check(info: DatasetInfo, count: int) -> dict:
    """Manifest fields for the image count; a mismatch with the registry warns and is recorded."""
    if count == info.count:
        return {"count_expected": info.count}
    message = (
        f"{info.name}: found {count} images, the registry expects {info.count} "
        "(public mirrors differ); recorded in the manifest"
    )
    warnings.warn(message, stacklevel=3)
    return {"count_expected": info.count, "count_warning": message}


def prepare_dataset(
    name: str,
    src: Path | None,
    *,
    cache_dir: Path,
    skip_bad: bool = False,
    download: bool = False,
    resolution: int | None = None,
) -> Dataset:
    """Build the cached tensor of paper dataset ``name`` from a downloaded archive or folder.

    ``resolution`` defaults to the registry's. Archives are extracted into a temporary folder
    inside ``cache_dir`` that is removed afterwards, also on failure; the cache is written
    atomically, so an interrupted preparation leaves nothing behind.
    """
    info = get_dataset_info(name)
    resolution = resolution or info.resolution
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    source = _source(info, src, cache_dir, download)
    work = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".prepare-{name}-"))
    try:
        root = source
        if source.is_file():
            root = work
            safe_extract(source, work)
        files = list_image_files(root)
        images, skipped = images_from_files(
            files, root, resolution, skip_bad=skip_bad, where=str(source), spill_dir=work
        )  # fmt: skip
        manifest = {"source": f"prepare:{source}", "skipped": skipped, **_count_check(info, images.shape[0])}
        if source.is_file():
            manifest["archive_sha256"] = file_sha256(source)
        return write_cache(cache_dir, name, name, images, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
