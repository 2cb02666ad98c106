"""``prepare``: a downloaded archive (zip, tar, tar.gz...) or folder of a paper dataset -> the cached
tensor that :func:`bench.data.catalog.load_dataset` finds, at the registry's resolution unless
another is given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

from bench.data.archives import download_dataset, safe_extract
from bench.data.images import RESIZE_FILTER, check_resize_filter, images_from_files, list_image_files
from bench.data.paper import DatasetInfo, _where, get_dataset_info, prepare_command
from bench.data.store import MIN_IMAGES, Dataset, filtered_slug, write_cache
from bench.errors import DataError
from bench.results.io import file_sha256, new_folders


def _source(info: DatasetInfo, src: Path | None, cache_dir: Path, download: bool) -> Path:
    if download:
        if src is not None:
            raise DataError("pass either --src or --download, not both")
        return download_dataset(info.name, cache_dir / "downloads")
    if src is None:
        raise DataError(f"no --src given for {info.name!r}; {_where(info)} and run: {prepare_command(info.name)}")
    path = Path(src).expanduser()
    if not os.path.lexists(path):
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
    resize_filter: str = RESIZE_FILTER,
) -> Dataset:
    """Build the cached tensor of paper dataset ``name`` from a downloaded archive or folder.

    ``resolution`` defaults to the registry's. ``resize_filter`` ``bilinear`` resizes as the official
    FastGAN code (torchvision ``Resize`` on PIL images, in training and in its FID script), into a
    cache of its own (the manifest records the filter). Archives are extracted into a temporary folder
    inside ``cache_dir`` that is removed afterwards, also on failure; the cache is written
    atomically, so an interrupted preparation leaves nothing behind.
    """
    info = get_dataset_info(name)
    check_resize_filter(resize_filter)
    resolution = resolution or info.resolution
    cache_dir = Path(cache_dir)
    with new_folders(cache_dir):
        source = _source(info, src, cache_dir, download)
        return _prepare(info, source, cache_dir, resolution, skip_bad, resize_filter)


def _prepare(
    info: DatasetInfo, source: Path, cache_dir: Path, resolution: int, skip_bad: bool, resize_filter: str
) -> Dataset:
    """Extract (into a temporary folder, removed afterwards), decode, check and cache."""
    name = info.name
    work = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".prepare-{name}-"))
    try:
        root = source
        if source.is_file():
            root = work
            safe_extract(source, work)
        files = list_image_files(root)
        images, skipped = images_from_files(
            files, root, resolution, skip_bad=skip_bad, where=str(source), spill_dir=work, resize_filter=resize_filter,
            skip_flag="--skip-bad",
        )  # fmt: skip
        manifest = {"source": f"prepare:{source}", "skipped": skipped, "resize_filter": resize_filter}
        manifest |= _count_check(info, images.shape[0])
        if images.shape[0] < MIN_IMAGES:
            raise DataError(
                f"{source} holds {images.shape[0]} usable image(s); a GAN needs at least {MIN_IMAGES}: "
                f"pass the whole {info.name} download"
            )
        if source.is_file():
            manifest["archive_sha256"] = file_sha256(source)
        return write_cache(cache_dir, filtered_slug(name, resize_filter), name, images, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
