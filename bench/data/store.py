"""The dataset cache: a name -> ``cache_dir/{slug}-{R}.pt`` (uint8 [N, 3, R, R], ``torch.save``)
plus a same-stem ``.json`` manifest (source, count, resize filter, background, sha256 of the
content...). A set resized with another filter than the default has its own slug
(``{name}.{filter}``, :func:`filtered_slug`), so the two never share a file. The tensor is written
first and the manifest last, both atomically; a cache without a valid manifest, or whose content
hash does not match, is rebuilt.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from bench.data import images as image_files
from bench.data.images import BACKGROUND, RESIZE_FILTER
from bench.errors import DataError
from bench.files import read_json, regular_file
from bench.results.io import atomic_torch_save, atomic_write_json

FORMAT_VERSION = 1
MIN_IMAGES = 2  # training images a run needs (one image has no distribution to learn or to score against)


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: uint8 images [N, 3, R, R] (CPU, contiguous) and their manifest."""

    name: str
    resolution: int
    images: torch.Tensor
    manifest: dict

    @property
    def sha256(self) -> str:
        """Content hash of ``images`` (as recorded in the manifest)."""
        return self.manifest["sha256"]


def suggest(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'a' or 'b'?"`` for close names, else ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""


def _check_resolution(resolution: int) -> None:
    if not isinstance(resolution, int) or not 4 <= resolution <= 4096:
        raise DataError(f"dataset resolution must be an integer from 4 to 4096, got {resolution!r}")


def tensor_sha256(images: torch.Tensor) -> str:
    """sha256 of a uint8 tensor's shape and bytes."""
    arr = np.ascontiguousarray(images.numpy())
    digest = hashlib.sha256(f"uint8{tuple(arr.shape)}\n".encode())
    digest.update(memoryview(arr).cast("B"))
    return digest.hexdigest()


def filtered_slug(slug: str, resize_filter: str) -> str:
    """``slug`` for the default resize filter, ``slug.<filter>`` for another: one cache file per filter."""
    return slug if resize_filter == RESIZE_FILTER else f"{slug}.{resize_filter}"


def cache_path(cache_dir: Path, slug: str, resolution: int) -> Path:
    """The cached tensor file of ``slug`` at ``resolution`` (the manifest is its ``.json`` sibling)."""
    return Path(cache_dir) / f"{slug}-{resolution}.pt"


def read_cache(path: Path, name: str, resolution: int) -> Dataset | None:
    """The cached dataset at ``path``, or None when missing, unreadable or not matching its manifest."""
    try:
        manifest = read_json(path.with_suffix(".json"))
        images = torch.load(
            regular_file(path), weights_only=True, mmap=True
        )  # pages read on use: large sets need no RAM copy
    except Exception:  # any unreadable cache is rebuilt
        return None
    shape_ok = (
        isinstance(images, torch.Tensor)
        and images.dtype == torch.uint8
        and images.dim() == 4
        and tuple(images.shape[1:]) == (3, resolution, resolution)
    )
    if not shape_ok or not isinstance(manifest, dict) or not _content_ok(path, images, manifest):
        return None
    return Dataset(name, resolution, images.contiguous(), manifest)


def _file_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _content_ok(path: Path, images: torch.Tensor, manifest: dict) -> bool:
    """The content hash matches the manifest's. Sets over :data:`bench.data.images.IN_RAM_BYTES` whose file is unchanged
    since it was written (size and mtime as recorded) skip the re-hash: 220 GB at every load otherwise."""
    if images.numel() > image_files.IN_RAM_BYTES and manifest.get("file_stamp") == _file_stamp(path):
        return True
    return manifest.get("sha256") == tensor_sha256(images)


def write_cache(cache_dir: Path, slug: str, name: str, images: torch.Tensor, manifest: dict) -> Dataset:
    """Write tensor then manifest atomically (the manifest gets count, sha256, created...)."""
    images = images.contiguous()
    resolution = images.shape[-1]
    full = {
        "name": name,
        "resolution": resolution,
        "count": images.shape[0],
        "shape": list(images.shape),
        "resize_filter": RESIZE_FILTER,
        "resize": "stretch",
        "background": list(BACKGROUND),
        "skipped": [],
        "format_version": FORMAT_VERSION,
        **manifest,
        "sha256": tensor_sha256(images),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = cache_path(cache_dir, slug, resolution)
    path.with_suffix(".json").unlink(missing_ok=True)
    try:
        atomic_torch_save(path, images)
        full["file_stamp"] = _file_stamp(path)  # size and mtime of the tensor file as written
        atomic_write_json(path.with_suffix(".json"), full)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Dataset(name, resolution, images, full)


def _cached(
    name: str,
    slug: str,
    resolution: int,
    cache_dir: Path,
    build: Callable[[], tuple[torch.Tensor, dict]],
    resize_filter: str = RESIZE_FILTER,
) -> Dataset:
    slug = filtered_slug(slug, resize_filter)
    found = read_cache(cache_path(cache_dir, slug, resolution), name, resolution)
    if found is not None:
        return found
    images, manifest = build()
    return write_cache(cache_dir, slug, name, images, manifest | {"resize_filter": resize_filter})
