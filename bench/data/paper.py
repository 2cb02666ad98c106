"""The paper's datasets: registry (counts, resolutions, source URLs) and loading prepared sets.

No images are shipped or downloaded implicitly: names, counts, source URLs and archive checksums
only. A checksum is filled in only where it is known; "" means unknown. Loading a prepared
dataset at a lower resolution resizes the prepared tensor (LANCZOS) and caches the result
(recorded as ``derived_from`` in its manifest; redone when the source is re-prepared); a higher
one needs ``prepare --resolution R``. A set prepared with ``--resize-filter bilinear`` (the
official FastGAN code's resize) is never derived: the official code resizes each original image
once, so another resolution is prepared from the originals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bench.data.images import RESIZE_FILTER, resize_images
from bench.data.store import Dataset, cache_path, filtered_slug, read_cache, suggest, write_cache
from bench.errors import DataError, OfflineError, command_line
from bench.files import FileReadError, read_json


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


def prepare_command(name: str, resolution: int | None = None, resize_filter: str = RESIZE_FILTER) -> str:
    """The CLI command that prepares ``name``."""
    extra = f" --resolution {resolution}" if resolution else ""
    extra += f" --resize-filter {resize_filter}" if resize_filter != RESIZE_FILTER else ""
    return command_line(f"prepare --dataset {name} --src PATH_TO_DOWNLOAD{extra}")


def _where(info: DatasetInfo) -> str:
    return f"download it from {info.url} ({info.notes})" if info.url else f"get the images ({info.notes})"


def _prepared_resolutions(slug: str, cache_dir: Path) -> list[int]:
    """Resolutions at which the set cached as ``slug`` was prepared (not derived), by manifest file name."""
    pattern = re.compile(rf"{re.escape(slug)}-(\d+)\.json")
    found = []
    for path in Path(cache_dir).glob(f"{slug}-*.json"):
        match = pattern.fullmatch(path.name)
        manifest = _read_json(path) if match else {}
        if manifest and "derived_from" not in manifest:
            found.append(int(match.group(1)))
    return sorted(found)


def _read_json(path: Path) -> dict:
    try:
        loaded = read_json(path)
    except FileReadError:
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


def check_prepared(name: str, resolution: int, cache_dir: Path, resize_filter: str = RESIZE_FILTER) -> int:
    """The image count of prepared set ``name`` (from its manifest, loading nothing); the same DataError as
    :func:`load_prepared` when it cannot be loaded."""
    slug = filtered_slug(name, resize_filter)
    derivable = resize_filter == RESIZE_FILTER  # other filters: one resize from the originals, never two
    larger = [r for r in _prepared_resolutions(slug, cache_dir) if r > resolution and derivable]
    for res in (resolution, *larger):
        count = _read_json(cache_path(cache_dir, slug, res).with_suffix(".json")).get("count")
        if isinstance(count, int):
            return count
    return len(load_prepared(name, resolution, cache_dir, resize_filter).images)  # or raises the explanatory error


def load_prepared(name: str, resolution: int, cache_dir: Path, resize_filter: str = RESIZE_FILTER) -> Dataset:
    """A prepared paper dataset at ``resolution`` (with the default filter, derived from a larger
    prepared one if needed)."""
    info = get_dataset_info(name)
    slug = filtered_slug(name, resize_filter)
    found = read_cache(cache_path(cache_dir, slug, resolution), name, resolution)
    if found is not None and _derivation_current(found, cache_dir):
        return found
    prepared = _prepared_resolutions(slug, cache_dir)
    derivable = resize_filter == RESIZE_FILTER  # other filters: one resize from the originals, never two
    for res in (r for r in prepared if r > resolution and derivable):
        source = read_cache(cache_path(cache_dir, name, res), name, res)
        if source is not None:
            return _derive(source, resolution, cache_dir)
    how = "" if derivable else f" with resize filter {resize_filter}"
    if prepared:
        raise DataError(
            f"dataset {name!r} is prepared{how} at {', '.join(map(str, prepared))} px only, not {resolution}; "
            f"run: {prepare_command(name, resolution, resize_filter)}"
        )
    command = prepare_command(name, None if derivable else resolution, resize_filter)
    raise DataError(f"dataset {name!r} is not prepared{how} in {cache_dir}; {_where(info)} and run: {command}")
