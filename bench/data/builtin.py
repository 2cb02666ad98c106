"""Built-in datasets, nothing to download: ``shapes`` (procedural, seeded) and ``emoji-faces`` /
``emoji-animals`` (glyphs of the Noto Color Emoji font, alpha composited on white).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from bench.data.images import BACKGROUND, RESIZE_FILTER, _resized_array
from bench.errors import DataError

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


def build_shapes(
    resolution: int, count: int = SHAPES_COUNT, seed: int = SHAPES_SEED, resize_filter: str = RESIZE_FILTER
) -> tuple[torch.Tensor, dict]:
    """Seeded coloured shapes, drawn supersampled and resized (LANCZOS by default); same images for the same R."""
    rng = np.random.default_rng(seed)
    supersample = max(1, min(4, 512 // resolution))
    out = torch.empty((count, 3, resolution, resolution), dtype=torch.uint8)
    for i in range(count):
        out[i] = torch.from_numpy(
            _resized_array(_draw_shapes(rng, resolution * supersample), resolution, resize_filter)
        )
    return out, {"source": "procedural:shapes", "seed": seed, "supersample": supersample}


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


def build_emoji(name: str, resolution: int, resize_filter: str = RESIZE_FILTER) -> tuple[torch.Tensor, dict]:
    """Render the glyphs of ``name`` (skipping missing ones), centred, on white, resized (LANCZOS by default)."""
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
        arrays.append(_resized_array(_square_on_background(glyph), resolution, resize_filter))
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
