"""Datasets as cached uint8 tensors: built-in (shapes, emoji), image folders and prepared paper sets.

A dataset is a name → ``cache_dir/{slug}-{R}.pt`` (uint8 [N, 3, R, R], ``torch.save``) plus a
same-stem ``.json`` manifest (source, count, resize filter, background, sha256 of the content...).
The tensor is written first and the manifest last, both atomically; a cache without a valid
manifest, or whose content hash does not match, is rebuilt.

Names: ``shapes`` (procedural, seeded), ``emoji-faces`` / ``emoji-animals`` (rendered from the Noto
Color Emoji font), ``folder:PATH`` (any image folder, searched recursively) and the paper's datasets
(registry and ``prepare`` in :mod:`bench.datasets`). Every image is converted to RGB (alpha
composited on :data:`BACKGROUND`, 16-bit scaled to 8 bits) and resized to R×R with LANCZOS without
keeping the aspect ratio, as the official FastGAN code does. EXIF orientation is ignored, as by
torchvision's image loader.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from bench.errors import DataError
from bench.io import atomic_torch_save, atomic_write_json

BUILTIN_DATASETS = ("shapes", "emoji-faces", "emoji-animals")
FOLDER_PREFIX = "folder:"
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
BACKGROUND = (255, 255, 255)  # white; alpha is composited on it
RESIZE_FILTER = "lanczos"
MAX_PIXELS = 100_000_000  # larger source images are refused (decompression bombs)
IN_RAM_BYTES = 8 * 2**30  # larger sets are built in a file-backed buffer (prepare)
FORMAT_VERSION = 1
SHAPES_COUNT = 256
SHAPES_SEED = 0

EMOJI_FONT_ENV = "NOTO_EMOJI_FONT"
DEBIAN_EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_FONT_SIZE = 109  # the font's only bitmap strike (glyphs about 136×128 px)
_FONT_HINT = (
    "Noto Color Emoji font not found; install it with `apt-get install fonts-noto-color-emoji` "
    f"or set {EMOJI_FONT_ENV}=/path/NotoColorEmoji.ttf"
)


def _codepoints(*spans: tuple[int, int]) -> tuple[int, ...]:
    return tuple(cp for lo, hi in spans for cp in range(lo, hi + 1))


# Faces (smileys, cat faces and other face emoji); glyphs the font lacks are skipped at build time.
EMOJI_FACES = _codepoints(
    (0x1F600, 0x1F644),
    (0x1F910, 0x1F917),
    (0x1F920, 0x1F925),
    (0x1F927, 0x1F92F),
    (0x1F970, 0x1F976),
    (0x1F978, 0x1F97A),
    (0x1F9D0, 0x1F9D0),
    (0x1FAE0, 0x1FAE8),
)
# Animals: U+1F400 block (without paw prints), U+1F980 block (without microbe) and later additions.
EMOJI_ANIMALS = _codepoints(
    (0x1F400, 0x1F43D),
    (0x1F43F, 0x1F43F),
    (0x1F54A, 0x1F54A),
    (0x1F577, 0x1F577),
    (0x1F980, 0x1F99F),
    (0x1F9A1, 0x1F9AE),
    (0x1FAB0, 0x1FAB3),
    (0x1FABC, 0x1FABC),
    (0x1FABF, 0x1FABF),
    (0x1FACE, 0x1FACF),
)
_EMOJI_SETS = {"emoji-faces": EMOJI_FACES, "emoji-animals": EMOJI_ANIMALS}


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


# --------------------------------------------------------------------------- names


def _paper() -> ModuleType:
    # bench.datasets imports this module, so it is imported on use.
    from bench import datasets

    return datasets


def list_datasets() -> list[str]:
    """Built-in dataset names, then the paper's datasets (``folder:PATH`` is accepted too)."""
    return [*BUILTIN_DATASETS, *_paper().PAPER_DATASETS]


def suggest(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'a' or 'b'?"`` for close names, else ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""


def check_dataset_name(name: str) -> None:
    """Raise :class:`DataError` (with close-name suggestions) unless ``name`` is a known dataset."""
    if name.startswith(FOLDER_PREFIX):
        if not name[len(FOLDER_PREFIX) :].strip():
            raise DataError(f"dataset {name!r} needs a path, e.g. folder:/data/my-images")
        return
    known = list_datasets()
    if name not in known:
        raise DataError(f"unknown dataset {name!r}{suggest(name, known)} (known: {', '.join(known)}; or folder:PATH)")


def _check_resolution(resolution: int) -> None:
    if not isinstance(resolution, int) or not 4 <= resolution <= 4096:
        raise DataError(f"dataset resolution must be an integer from 4 to 4096, got {resolution!r}")


# --------------------------------------------------------------------------- cache


def tensor_sha256(images: torch.Tensor) -> str:
    """sha256 of a uint8 tensor's shape and bytes."""
    arr = np.ascontiguousarray(images.numpy())
    digest = hashlib.sha256(f"uint8{tuple(arr.shape)}\n".encode())
    digest.update(memoryview(arr).cast("B"))
    return digest.hexdigest()


def cache_path(cache_dir: Path, slug: str, resolution: int) -> Path:
    """The cached tensor file of ``slug`` at ``resolution`` (the manifest is its ``.json`` sibling)."""
    return Path(cache_dir) / f"{slug}-{resolution}.pt"


def read_cache(path: Path, name: str, resolution: int) -> Dataset | None:
    """The cached dataset at ``path``, or None when missing, unreadable or not matching its manifest."""
    try:
        manifest = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        images = torch.load(path, weights_only=True, mmap=True)  # pages read on use: large sets need no RAM copy
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
    """The content hash matches the manifest's. Sets over :data:`IN_RAM_BYTES` whose file is unchanged
    since it was written (size and mtime as recorded) skip the re-hash: 220 GB at every load otherwise."""
    if images.numel() > IN_RAM_BYTES and manifest.get("file_stamp") == _file_stamp(path):
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
    name: str, slug: str, resolution: int, cache_dir: Path, build: Callable[[], tuple[torch.Tensor, dict]]
) -> Dataset:
    found = read_cache(cache_path(cache_dir, slug, resolution), name, resolution)
    if found is not None:
        return found
    images, manifest = build()
    return write_cache(cache_dir, slug, name, images, manifest)


def load_dataset(name: str, resolution: int, *, cache_dir: Path, skip_bad: bool = False) -> Dataset:
    """Load ``name`` at ``resolution`` from ``cache_dir``, building and caching it on first use.

    ``skip_bad`` (folders): skip unreadable or non-image files and list them in the manifest
    instead of raising. Paper datasets must have been prepared (:func:`bench.datasets.prepare_dataset`).
    """
    check_dataset_name(name)
    _check_resolution(resolution)
    cache_dir = Path(cache_dir)
    if name.startswith(FOLDER_PREFIX):
        return _load_folder(name, resolution, cache_dir, skip_bad)
    if name == "shapes":
        return _cached(name, name, resolution, cache_dir, lambda: build_shapes(resolution))
    if name in _EMOJI_SETS:
        return _cached(name, name, resolution, cache_dir, lambda: build_emoji(name, resolution))
    return _paper().load_prepared(name, resolution, cache_dir)


# --------------------------------------------------------------------------- images


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


def _resized_array(img: Image.Image, resolution: int) -> np.ndarray:
    """RGB image → uint8 [3, R, R] (LANCZOS, aspect not kept)."""
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.array(img, dtype=np.uint8).transpose(2, 0, 1)


def _read_image(path: Path, resolution: int) -> np.ndarray | str:
    """uint8 [3, R, R] for a readable image file, else the reason it cannot be used."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                return f"{width}x{height} exceeds the {MAX_PIXELS // 10**6} megapixel limit"
            img.load()
            return _resized_array(to_rgb(img), resolution)
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


def bad_files_error(where: str, skipped: list[dict]) -> DataError:
    """One-line error listing the first bad files and how to skip them."""
    shown = ", ".join(f"{s['file']} ({s['reason']})" for s in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return DataError(
        f"{len(skipped)} unreadable or non-image file(s) in {where}: {shown}{more}; fix or remove them, "
        "or skip them with skip_bad=True (prepare: --skip-bad)"
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
        for path, result in zip(files, pool.map(lambda p: _read_image(p, resolution), files), strict=True):
            if isinstance(result, str):
                skipped.append({"file": path.relative_to(root).as_posix(), "reason": result})
            else:
                out[count] = torch.from_numpy(result)
                count += 1
    if skipped and not skip_bad:
        raise bad_files_error(where, skipped)
    if count == 0:
        raise DataError(f"no readable images in {where} ({len(skipped)} file(s) skipped)")
    if skipped and out.untyped_storage().filename is not None:  # file-backed (image_buffer)
        return out[:count], skipped  # a view: saving it writes the unused tail too, rather than copy to RAM
    return (out[:count].clone() if skipped else out), skipped


def resize_images(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Resize uint8 [N, 3, r, r] images to [N, 3, R, R] with LANCZOS."""
    out = torch.empty((images.shape[0], 3, resolution, resolution), dtype=torch.uint8)
    for i, img in enumerate(images):
        pil = Image.fromarray(img.permute(1, 2, 0).numpy())
        out[i] = torch.from_numpy(_resized_array(pil, resolution))
    return out


# --------------------------------------------------------------------------- folders


def _folder_slug(root: Path, files: list[Path]) -> tuple[str, str]:
    """Cache slug and fingerprint of a folder's image files (names, sizes, mtimes)."""
    listing = hashlib.sha256(str(root).encode())
    for path in files:
        stat = path.stat()
        listing.update(f"\n{path.relative_to(root).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    fingerprint = listing.hexdigest()
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.name) or "root"
    return f"folder-{base}-{fingerprint[:16]}", fingerprint


def _load_folder(name: str, resolution: int, cache_dir: Path, skip_bad: bool) -> Dataset:
    root = Path(name[len(FOLDER_PREFIX) :]).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"dataset {name!r}: {root} is not a folder; fix the path after {FOLDER_PREFIX}")
    files = list_image_files(root)
    slug, fingerprint = _folder_slug(root, files)
    found = read_cache(cache_path(cache_dir, slug, resolution), name, resolution)
    if found is not None:
        if found.manifest.get("skipped") and not skip_bad:
            raise bad_files_error(str(root), found.manifest["skipped"])
        return found
    images, skipped = images_from_files(files, root, resolution, skip_bad=skip_bad)
    manifest = {"source": f"folder:{root}", "fingerprint": fingerprint, "skipped": skipped}
    return write_cache(cache_dir, slug, name, images, manifest)


# --------------------------------------------------------------------------- shapes


def _draw_shapes(rng: np.random.Generator, size: int) -> Image.Image:
    """One image: 1–3 coloured circles, squares or triangles on a coloured background."""
    img = Image.new("RGB", (size, size), tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 3))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = rng.uniform(0.2, 0.8, 2) * size
        radius = rng.uniform(0.12, 0.35) * size
        angle = rng.uniform(0, 2 * math.pi)
        if kind == 0:
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
            continue
        corners = 4 if kind == 1 else 3
        points = [
            (
                cx + radius * math.cos(angle + 2 * math.pi * k / corners),
                cy + radius * math.sin(angle + 2 * math.pi * k / corners),
            )
            for k in range(corners)
        ]
        draw.polygon(points, fill=colour)
    return img


def build_shapes(resolution: int, count: int = SHAPES_COUNT, seed: int = SHAPES_SEED) -> tuple[torch.Tensor, dict]:
    """Seeded coloured shapes, drawn supersampled and LANCZOS-resized; same images for the same R."""
    rng = np.random.default_rng(seed)
    supersample = max(1, min(4, 512 // resolution))
    out = torch.empty((count, 3, resolution, resolution), dtype=torch.uint8)
    for i in range(count):
        out[i] = torch.from_numpy(_resized_array(_draw_shapes(rng, resolution * supersample), resolution))
    return out, {"source": "procedural:shapes", "seed": seed, "supersample": supersample}


# --------------------------------------------------------------------------- emoji


def find_emoji_font() -> Path:
    """The Noto Color Emoji font: ``$NOTO_EMOJI_FONT``, then fontconfig, then the Debian path."""
    env = os.environ.get(EMOJI_FONT_ENV)
    if env:
        if not Path(env).is_file():
            raise DataError(f"{EMOJI_FONT_ENV}={env} is not a file; {_FONT_HINT}")
        return Path(env)
    if shutil.which("fc-match"):
        try:
            found = subprocess.run(
                ["fc-match", "-f", "%{file}", "Noto Color Emoji"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        # fc-match falls back to any font: accept only the emoji font itself.
        if found and Path(found).name.startswith("NotoColorEmoji") and Path(found).is_file():
            return Path(found)
    if DEBIAN_EMOJI_FONT.is_file():
        return DEBIAN_EMOJI_FONT
    raise DataError(_FONT_HINT)


def _render_glyph(font: ImageFont.FreeTypeFont, codepoint: int) -> Image.Image | None:
    """The glyph as RGBA cropped to its visible pixels, or None when it draws nothing."""
    char = chr(codepoint)
    _, _, right, bottom = font.getbbox(char)
    if right <= 0 or bottom <= 0:
        return None
    img = Image.new("RGBA", (right, bottom), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((0, 0), char, font=font, embedded_color=True)
    box = img.getchannel("A").getbbox()
    return img.crop(box) if box else None


def _square_on_background(glyph: Image.Image) -> Image.Image:
    """Centre an RGBA glyph on a square canvas and composite it on :data:`BACKGROUND`."""
    side = max(glyph.size)
    canvas = Image.new("RGBA", (side, side), (*BACKGROUND, 255))
    offset = ((side - glyph.width) // 2, (side - glyph.height) // 2)
    canvas.alpha_composite(glyph, offset)
    return canvas.convert("RGB")


def build_emoji(name: str, resolution: int) -> tuple[torch.Tensor, dict]:
    """Render the glyphs of ``name`` (skipping missing ones), centred, on white, LANCZOS-resized."""
    path = find_emoji_font()
    try:
        font = ImageFont.truetype(str(path), EMOJI_FONT_SIZE)
    except OSError as exc:
        raise DataError(f"cannot load emoji font {path}: {exc}; {_FONT_HINT}") from exc
    notdef = _render_glyph(font, 0x10FFFD)  # a private-use code point: what a missing glyph draws
    arrays, used = [], []
    for cp in _EMOJI_SETS[name]:
        glyph = _render_glyph(font, cp)
        if glyph is None or (notdef is not None and glyph.tobytes() == notdef.tobytes()):
            continue
        arrays.append(_resized_array(_square_on_background(glyph), resolution))
        used.append(f"U+{cp:04X}")
    if len(arrays) < 16:
        raise DataError(f"emoji font {path} renders only {len(arrays)} glyphs of {name}; {_FONT_HINT}")
    manifest = {
        "source": f"emoji:{path}",
        "font": str(path),
        "font_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "font_size": EMOJI_FONT_SIZE,
        "codepoints": used,
    }
    return torch.from_numpy(np.stack(arrays)), manifest
