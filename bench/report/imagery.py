"""The images the report's figures must compute, remembered between reports: a run's latent
interpolation strip at a snapshot (building its generator costs seconds: torch, and its optimizers
import torch's compiler) and a fixed draw of a dataset's training images (loading the set imports torch).

Each is kept as one lossless PNG under the cache folder (:func:`bench.plan.names.cache_dir`,
``images/``) and read back exactly. A strip is keyed by its snapshot file (path, size, modification
time), the seed, the sources (:func:`bench.plan.names.sources_key`) and torch's version; a draw of
training images by the content hash of the set the runs recorded (``spec.json``: resolved.dataset.sha256),
the resolution, the count and torch's version (the draw is ``torch.randperm``). A missing, unreadable or
mis-shaped entry is computed again; a cache folder that cannot be written only costs time; entries older
than :data:`KEEP_DAYS` are removed when another is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import time
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image

from bench.errors import BenchError
from bench.files import FileReadError, read_capped, read_json
from bench.plan import names

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
STRIP_STEPS = 8  # images in a latent interpolation strip
STRIP_MAX_SIDE = 256  # px: larger generated images are reduced (antialiased) to this side
KEEP_DAYS = 30  # entries older than this are removed when another is written


class Generator(Protocol):
    """What an interpolation strip needs of a model (:class:`models.base.GANModel` has it)."""

    z_dim: int

    def generate(self, z: torch.Tensor, *, ema: bool = True) -> torch.Tensor: ...


def load_generator(run_dir: Path, snapshot: str) -> Generator:
    """The run's model with the weights of ``snapshot``, on the CPU (imported lazily: heavy)."""
    from bench.training.checkpoints import load_snapshot_model

    return load_snapshot_model(run_dir, snapshot, device="cpu")


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latents ``z0``, ``z1`` (D,) at fractions ``t`` (T,) → (T, D)."""
    import torch

    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1.0, 1.0)
    omega = torch.acos(cos)
    if omega.abs() < 1e-6:
        return z0[None] + t[:, None] * (z1 - z0)[None]
    w0, w1 = torch.sin((1 - t) * omega) / torch.sin(omega), torch.sin(t * omega) / torch.sin(omega)
    return w0[:, None] * z0[None] + w1[:, None] * z1[None]


def interpolation_images(model: Generator, *, seed: int = 0, steps: int = STRIP_STEPS) -> np.ndarray:
    """(steps, H, W, 3) uint8 images: ``model.generate`` (EMA, on the CPU) along a slerp of two seeded
    latents; what the generator draws itself (FastGAN's noise inputs) is drawn from ``seed`` too, so the
    strip depends on the weights and ``seed`` only (not on how the model was built or what ran before)."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    z0, z1 = torch.randn(2, model.z_dim, generator=gen)
    z = slerp(z0, z1, torch.linspace(0.0, 1.0, steps))
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x = model.generate(z, ema=True).float().cpu()  # (T, 3, R, R) in [-1, 1]
    if x.shape[-1] > STRIP_MAX_SIDE:
        side = (STRIP_MAX_SIDE, STRIP_MAX_SIDE)
        x = F.interpolate(x, size=side, mode="bilinear", antialias=True, align_corners=False)
    return (((x.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def strip_images(run_dir: Path, snapshot: str, *, seed: int = 0, model: Generator | None = None) -> np.ndarray:
    """:func:`interpolation_images` of the run's model at ``snapshot`` (a path under ``run_dir``),
    remembered per snapshot file. ``model``: one already holding the snapshot's weights on the CPU (the
    training process, right after writing it: the report then finds the strip without loading anything)."""
    st = (run_dir / snapshot).stat()
    what = ["strip", str((run_dir / snapshot).resolve()), st.st_size, st.st_mtime_ns, seed, STRIP_STEPS]
    path = _entry([*what, names.sources_key()])
    if (row := _read(path)) is not None and row.shape[1] == row.shape[0] * STRIP_STEPS:
        return np.stack(np.split(row, STRIP_STEPS, axis=1))
    images = interpolation_images(model if model is not None else load_generator(run_dir, snapshot), seed=seed)
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(list(images), axis=1)).save(buf, format="PNG")
    _write(path, buf.getvalue())
    return images


def training_images(dataset: str, resolution: int, count: int, recorded: set[str], load: Any) -> tuple[bytes, int]:
    """(PNG bytes of a grid (:func:`bench.report.draw.grid_png`) of ``count`` training images drawn with
    ``torch.randperm`` seeded 0, the set's size). ``recorded``: the content hashes the set's runs recorded
    (exactly one: the draw is remembered); ``load()``: the :class:`bench.data.store.Dataset`, called only
    when the draw is not remembered (it may raise a BenchError)."""
    path = _entry(["training", dataset, resolution, count, *sorted(recorded)])
    if len(recorded) == 1 and _read(path) is not None and (size := _size_of(path)) is not None:
        return read_capped(path), size
    import torch

    from bench.report.draw import grid_png

    data = load()
    n = min(count, len(data.images))
    pick = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(0))[:n]
    png = grid_png(data.images[pick].numpy())
    if recorded == {data.sha256}:
        _write(path, png, size=len(data.images))
    return png, len(data.images)


def _entry(what: list[Any]) -> Path:
    """The cache file of an image described by ``what`` (plus torch's version)."""
    key = hashlib.sha256(json.dumps([*what, version("torch")]).encode()).hexdigest()[:32]
    return names.cache_dir() / "images" / f"{key}.png"


def _read(path: Path) -> np.ndarray | None:
    try:
        with Image.open(io.BytesIO(read_capped(path))) as img:
            return np.asarray(img.convert("RGB"))
    except (FileReadError, OSError, ValueError, Image.DecompressionBombError):
        return None


def _size_of(path: Path) -> int | None:
    """The set size stored beside a draw of training images (its ``.json``), or None."""
    try:
        size = read_json(path.with_suffix(".json")).get("size")
    except (FileReadError, ValueError, AttributeError):
        return None
    return size if isinstance(size, int) and size > 0 else None


def prune_old(folder: Path, max_bytes: float = float("inf")) -> None:
    """Remove the cache entries in ``folder`` older than :data:`KEEP_DAYS`, then the oldest while the rest
    hold more than ``max_bytes`` (before another is written)."""
    found = []
    for old in folder.glob("*"):
        with contextlib.suppress(OSError):  # another report may be removing it too
            st = old.stat()
            if st.st_mtime < time.time() - KEEP_DAYS * 86400:
                old.unlink()
            else:
                found.append((st.st_mtime, st.st_size, old))
    total = sum(size for _, size, _ in found)
    for _, size, old in sorted(found):
        if total <= max_bytes:
            break
        with contextlib.suppress(OSError):
            old.unlink()
        total -= size


def _write(path: Path, png: bytes, **meta: int) -> None:
    """Store an entry (and ``meta`` beside it); entries older than :data:`KEEP_DAYS` go."""
    from bench.results.io import atomic_write_bytes, atomic_write_json

    prune_old(path.parent)
    try:
        if meta:
            atomic_write_json(path.with_suffix(".json"), meta)
        atomic_write_bytes(path, png)
    except (OSError, BenchError):
        log.debug("%s: not written (the cache folder cannot be written)", path)
