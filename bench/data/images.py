"""Image files -> uint8 arrays: RGB conversion (alpha composited on :data:`BACKGROUND`, 16-bit
scaled to 8 bits), resize to R x R without keeping the aspect ratio (as the official FastGAN code
does) with a named filter (:data:`bench.plan.specs.RESIZE_FILTERS`: LANCZOS by default, or PIL
bilinear, the official code's ``transforms.Resize``), recursive folder listing, parallel decoding
into one tensor. EXIF orientation is ignored, as by torchvision's image loader.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.errors import DataError
from bench.plan.specs import RESIZE_FILTERS

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
BACKGROUND = (255, 255, 255)  # white; alpha is composited on it
RESIZE_FILTER = RESIZE_FILTERS[0]  # the default: lanczos
_PIL_FILTERS = {name: getattr(Image.Resampling, name.upper()) for name in RESIZE_FILTERS}
MAX_PIXELS = 100_000_000  # larger source images are refused (decompression bombs)
IN_RAM_BYTES = 8 * 2**30  # larger sets are built in a file-backed buffer (prepare)


def to_rgb(img: Image.Image, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """Any PIL mode → RGB: alpha composited on ``background``, 16-bit values scaled to 8 bits."""
    if img.mode == "I" or img.mode.startswith("I;16"):
        scaled = np.rint(np.asarray(img, dtype=np.float64) / 257.0)  # 0..65535 → 0..255
        img = Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), "L")
    if img.mode == "RGB" and "transparency" not in img.info:
        return img
    if img.mode in ("RGBA", "RGBa", "LA", "PA") or "transparency" in img.info:
        canvas = Image.new("RGBA", img.size, (*background, 255))
        return Image.alpha_composite(canvas, img.convert("RGBA")).convert("RGB")
    return img.convert("RGB")


def check_resize_filter(name: str) -> None:
    """Raise :class:`DataError` unless ``name`` is one of :data:`RESIZE_FILTERS`."""
    if name not in _PIL_FILTERS:
        raise DataError(f"resize filter {name!r} unknown; choose one of {', '.join(RESIZE_FILTERS)}")


def _resized_array(img: Image.Image, resolution: int, resize_filter: str = RESIZE_FILTER) -> np.ndarray:
    """RGB image → uint8 [3, R, R] (``resize_filter``, aspect not kept; an image already R x R is kept)."""
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), _PIL_FILTERS[resize_filter])
    return np.array(img, dtype=np.uint8).transpose(2, 0, 1)


def _read_image(path: Path, resolution: int, resize_filter: str) -> np.ndarray | str:
    """uint8 [3, R, R] for a readable image file, else the reason it cannot be used."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                return f"{width}x{height} exceeds the {MAX_PIXELS // 10**6} megapixel limit"
            img.load()
            return _resized_array(to_rgb(img), resolution, resize_filter)
    except Image.DecompressionBombError:
        return f"exceeds the {MAX_PIXELS // 10**6} megapixel limit"
    except (OSError, SyntaxError, ValueError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def list_image_files(root: Path) -> list[Path]:
    """Image files (by extension) under ``root``, recursively, sorted; hidden files and folders skipped."""
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def bad_files_error(where: str, skipped: list[dict], skip_flag: str | None = None) -> DataError:
    """One-line error listing the first bad files and how to fix them (``skip_flag``: the caller's setting
    that skips them, e.g. prepare's ``--skip-bad``; a ``folder:`` dataset in a suite has none)."""
    shown = ", ".join(f"{s['file']} ({s['reason']})" for s in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    skip = f", or skip them with {skip_flag}" if skip_flag else ""
    return DataError(
        f"{len(skipped)} unreadable or non-image file(s) in {where}: {shown}{more}; fix or remove them{skip}"
    )


def image_buffer(count: int, resolution: int, spill_dir: Path | None) -> torch.Tensor:
    """Uninitialised uint8 [count, 3, R, R]: in RAM, or (above :data:`IN_RAM_BYTES`, with ``spill_dir``)
    backed by a file there, so that sets larger than RAM (FFHQ-70k at 1024 px: 220 GB) can be built."""
    shape = (count, 3, resolution, resolution)
    if spill_dir is None or math.prod(shape) <= IN_RAM_BYTES:
        return torch.empty(shape, dtype=torch.uint8)
    backing = Path(tempfile.mkstemp(dir=spill_dir, prefix=".images-", suffix=".u8")[1])
    return torch.from_file(str(backing), shared=True, size=math.prod(shape), dtype=torch.uint8).view(shape)


def images_from_files(
    files: list[Path],
    root: Path,
    resolution: int,
    *,
    skip_bad: bool,
    where: str | None = None,
    spill_dir: Path | None = None,  # a folder for a file-backed buffer when the set is large (see image_buffer)
    resize_filter: str = RESIZE_FILTER,
    skip_flag: str | None = None,  # the caller's setting that sets ``skip_bad``, named in the error
) -> tuple[torch.Tensor, list[dict]]:
    """Decode, convert and resize ``files`` into uint8 [N, 3, R, R]; also the skipped files' list.

    Bad files raise :class:`DataError` listing them unless ``skip_bad``; no readable image raises too.
    Errors name ``where`` (default: ``root``); skipped files are listed relative to ``root``.
    """
    where = where or str(root)
    if not files:
        raise DataError(
            f"no image files in {where} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}); add images or fix the path"
        )
    out = image_buffer(len(files), resolution, spill_dir)
    skipped: list[dict] = []
    count = 0
    with warnings.catch_warnings(), ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS is checked instead
        for path, result in zip(
            files, pool.map(lambda p: _read_image(p, resolution, resize_filter), files), strict=True
        ):
            if isinstance(result, str):
                skipped.append({"file": path.relative_to(root).as_posix(), "reason": result})
            else:
                out[count] = torch.from_numpy(result)
                count += 1
    if skipped and not skip_bad:
        raise bad_files_error(where, skipped, skip_flag)
    if count == 0:
        raise DataError(f"no readable images in {where} ({len(skipped)} file(s) skipped)")
    if skipped and out.untyped_storage().filename is not None:  # file-backed (image_buffer)
        return out[:count], skipped  # a view: saving it writes the unused tail too, rather than copy to RAM
    return (out[:count].clone() if skipped else out), skipped


def resize_images(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Resize uint8 [N, 3, r, r] images to [N, 3, R, R] with LANCZOS (the default filter)."""
    out = torch.empty((images.shape[0], 3, resolution, resolution), dtype=torch.uint8)
    for i, img in enumerate(images):
        pil = Image.fromarray(img.permute(1, 2, 0).numpy())
        out[i] = torch.from_numpy(_resized_array(pil, resolution))
    return out
