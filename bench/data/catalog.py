"""Dataset names -> cached tensors: built-in sets, ``folder:PATH`` and prepared paper sets."""

from __future__ import annotations

import functools
from pathlib import Path

from bench.data.builtin import _EMOJI_SETS, build_emoji, build_shapes
from bench.data.folders import FOLDER_PREFIX, _load_folder
from bench.data.images import RESIZE_FILTER, check_resize_filter
from bench.data.paper import PAPER_DATASETS, load_prepared
from bench.data.store import Dataset, _cached, _check_resolution, suggest
from bench.errors import DataError

BUILTIN_DATASETS = ("shapes", "emoji-faces", "emoji-animals")


def list_datasets() -> list[str]:
    """Built-in dataset names, then the paper's datasets (``folder:PATH`` is accepted too)."""
    return [*BUILTIN_DATASETS, *PAPER_DATASETS]


def check_dataset_name(name: str) -> None:
    """Raise :class:`DataError` (with close-name suggestions) unless ``name`` is a known dataset."""
    if name.startswith(FOLDER_PREFIX):
        if not name[len(FOLDER_PREFIX) :].strip():
            raise DataError(f"dataset {name!r} needs a path, e.g. folder:/data/my-images")
        return
    known = list_datasets()
    if name not in known:
        raise DataError(f"unknown dataset {name!r}{suggest(name, known)} (known: {', '.join(known)}; or folder:PATH)")


def load_dataset(
    name: str, resolution: int, *, cache_dir: Path, skip_bad: bool = False, resize_filter: str = RESIZE_FILTER
) -> Dataset:
    """Load ``name`` at ``resolution`` from ``cache_dir``, building and caching it on first use.

    ``skip_bad`` (folders): skip unreadable or non-image files and list them in the manifest
    instead of raising. Paper datasets must have been prepared (:func:`bench.data.prepare.prepare_dataset`),
    with the same ``resize_filter`` (each filter has its own cache file).
    """
    check_dataset_name(name)
    _check_resolution(resolution)
    check_resize_filter(resize_filter)
    cache_dir = Path(cache_dir)
    if name.startswith(FOLDER_PREFIX):
        return _load_folder(name, resolution, cache_dir, skip_bad, resize_filter)
    if name == "shapes":
        build = functools.partial(build_shapes, resolution, resize_filter=resize_filter)
    elif name in _EMOJI_SETS:
        build = functools.partial(build_emoji, name, resolution, resize_filter)
    else:
        return load_prepared(name, resolution, cache_dir, resize_filter)
    return _cached(name, name, resolution, cache_dir, build, resize_filter)
