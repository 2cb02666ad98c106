"""``folder:PATH`` datasets: any image folder, searched recursively."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from bench.data.images import bad_files_error, images_from_files, list_image_files
from bench.data.store import Dataset, cache_path, filtered_slug, read_cache, write_cache
from bench.errors import DataError

FOLDER_PREFIX = "folder:"
FINGERPRINT_DIGITS = 16  # of a folder's listing hash in cache names and run specs


def _folder_slug(root: Path, files: list[Path]) -> tuple[str, str]:
    """Cache slug and fingerprint of a folder's image files (names, sizes, mtimes)."""
    listing = hashlib.sha256(str(root).encode())
    for path in files:
        stat = path.stat()
        listing.update(f"\n{path.relative_to(root).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    fingerprint = listing.hexdigest()
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.name) or "root"
    return f"folder-{base}-{fingerprint[:FINGERPRINT_DIGITS]}", fingerprint


def folder_root(name: str) -> Path:
    """The folder of the dataset ``folder:PATH``; DataError when it is not a folder."""
    root = Path(name[len(FOLDER_PREFIX) :]).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"dataset {name!r}: {root} is not a folder; fix the path after {FOLDER_PREFIX}")
    return root


def folder_fingerprint(name: str) -> str:
    """16 hex digits of the image listing of ``folder:PATH`` (relative names, sizes, mtimes): they change
    when an image is added, removed or rewritten. Run specs carry them, so a changed folder is a new run."""
    root = folder_root(name)
    return _folder_slug(root, list_image_files(root))[1][:FINGERPRINT_DIGITS]


def _load_folder(name: str, resolution: int, cache_dir: Path, skip_bad: bool, resize_filter: str) -> Dataset:
    root = folder_root(name)
    files = list_image_files(root)
    slug, fingerprint = _folder_slug(root, files)
    slug = filtered_slug(slug, resize_filter)
    found = read_cache(cache_path(cache_dir, slug, resolution), name, resolution)
    if found is not None:
        if found.manifest.get("skipped") and not skip_bad:
            raise bad_files_error(str(root), found.manifest["skipped"])
        return found
    images, skipped = images_from_files(files, root, resolution, skip_bad=skip_bad, resize_filter=resize_filter)
    manifest = {
        "source": f"folder:{root}",
        "fingerprint": fingerprint,
        "skipped": skipped,
        "resize_filter": resize_filter,
    }
    return write_cache(cache_dir, slug, name, images, manifest)
