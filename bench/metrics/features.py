"""Images -> detector features, exactly along clean-fid's resize path; cached reference features.

Every image reaches the detector as uint8 (the reference set is uint8; generated images are
quantized in memory as a PNG dump would be), then goes through clean-fid's per-image resizer for
the mode (``build_resizer``) and the tensor conversion of clean-fid's ``ResizeDataset``. Nothing
touches the disk except the reference-feature cache.

On CUDA, in ``clean`` mode, the images never leave the GPU: :func:`bench.metrics.resize.clean_resize`
(bitwise clean-fid's resize) and the detector run there, on a second stream that overlaps the
generation of the next batch (:func:`featurize_on_device`); the features are the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from cleanfid.resize import build_resizer
from PIL import Image
from torch import Tensor

from bench.errors import NonFiniteImages
from bench.metrics.detectors import Detector, checked_features
from bench.metrics.resize import clean_resize, device_resizable
from bench.results.io import atomic_write_bytes
from models.base import Sampling

DETECTOR_BATCH = 50  # images per detector call
RESIZE_THREADS = min(8, os.cpu_count() or 1)  # per-image resizes run in threads (PIL and torch drop the GIL)
CACHE_VERSION = 1  # bump when the featurization path changes
OVERLAP_FREE_BYTES = 8 * 2**30  # free CUDA memory under which generation and detection take turns
Transform = Callable[[np.ndarray], Tensor]


class EvalDataset(Protocol):
    """What evaluation reads from a prepared dataset (and ``manifest["resize_filter"]`` when present)."""

    name: str
    resolution: int
    images: Tensor  # (N, 3, R, R) uint8, CPU
    sha256: str  # content hash of the prepared images


class FeatureDetector(Protocol):
    """What featurization calls: a :class:`Detector` (or several side by side)."""

    def __call__(self, images: Tensor) -> np.ndarray: ...  # (B, D) features on the host

    def on_device(self, images: Tensor) -> Tensor: ...  # (B, D) features left on the device


class ImageGenerator(Protocol):
    """The part of ``models.base.GANModel`` evaluation uses: its sampling convention and sampler."""

    z_dim: int
    sampling: Sampling

    def sampler(
        self, *, ema: bool, bn: str | None, truncation: float, seed: int
    ) -> AbstractContextManager[Callable[[Tensor], Tensor]]: ...


def quantize(images: Tensor) -> Tensor:
    """[-1, 1] floats -> uint8, bit-identical to ``save_image(images.add(1).mul(0.5))`` then reading the PNG."""
    return images.add(1).mul(0.5).mul(255).add(0.5).clamp(0, 255).to(torch.uint8)


def pre_resizer(size: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """HWC uint8 -> HWC uint8 at ``size`` px, PIL bilinear (torchvision ``Resize`` on a PIL image); None: identity."""
    if size is None:
        return lambda img: img
    return lambda img: np.asarray(Image.fromarray(img).resize((size, size), resample=Image.BILINEAR))


def to_tensor(img: np.ndarray) -> Tensor:
    """HWC (or HW) array -> CHW tensor exactly as torchvision's ``ToTensor`` converts a numpy array: uint8
    to the default float dtype divided by 255, any other dtype unchanged (without importing torchvision:
    seconds per process)."""
    t = torch.from_numpy((img[:, :, None] if img.ndim == 2 else img).transpose((2, 0, 1))).contiguous()
    return t.to(dtype=torch.get_default_dtype()).div(255) if t.dtype == torch.uint8 else t


def image_transform(mode: str, pre_resize: int | None) -> Transform:
    """HWC uint8 -> CHW float32 in [0, 255] as clean-fid's ``ResizeDataset.__getitem__`` (``pre_resize``
    playing clean-fid's ``custom_image_tranform``)."""
    pre, resize = pre_resizer(pre_resize), build_resizer(mode)

    def apply(img: np.ndarray) -> Tensor:
        out = resize(pre(img))
        return to_tensor(np.array(out)) * 255 if out.dtype == np.uint8 else to_tensor(out)

    return apply


def featurize(batches: Iterable[Tensor], detector: Callable[[Tensor], np.ndarray], transform: Transform) -> np.ndarray:
    """(N, D) float32 features of uint8 (B, 3, H, W) batches (each image resized on its own, in threads).

    Pipelined: batch i is drawn (for generated images: the generator runs) and its resize starts in
    the background; the detector then runs on batch i - 1 while batch i is resized. Host-side
    resizing overlaps the networks, and the generator and the detector never run at the same time
    (their memory peaks do not add up). The features are the same, in the same order, as one
    batch after another.
    """
    with ThreadPoolExecutor(RESIZE_THREADS) as pool, ThreadPoolExecutor(1) as ahead:

        def resize(batch: Tensor) -> Tensor:
            hwc = batch.permute(0, 2, 3, 1).contiguous().numpy()
            return torch.stack(list(pool.map(transform, hwc)))

        feats, pending = [], None
        for batch in batches:
            resizing = ahead.submit(resize, batch)
            if pending is not None:
                feats.append(detector(pending.result()))
            pending = resizing
        if pending is not None:
            feats.append(detector(pending.result()))
    return np.concatenate(feats)


def featurize_on_device(batches: Iterable[Tensor], detector: Callable[[Tensor], Tensor]) -> np.ndarray:
    """(N, D) float32 features of uint8 (B, 3, H, W) batches on a device, in ``clean`` mode: resize
    (:func:`clean_resize`) and ``detector`` there too, one host read at the end.

    On CUDA, with :data:`OVERLAP_FREE_BYTES` free, each batch is resized and detected on a second
    stream, after its generation on the current stream and alongside the next one's (so their
    memory peaks add up); otherwise one after the other. The features equal :func:`featurize`'s.
    """
    it = iter(batches)
    first = next(it, None)
    if first is None:
        return np.zeros((0, 0), dtype=np.float32)
    side = _detection_stream(first.device)
    feats, total = [], 0
    for batch in itertools.chain([first], it):
        with _after_current(side):
            feats.append(detector(clean_resize(batch)))
        if side is not None:
            batch.record_stream(side)  # its memory waits for the detection, not only for generation
        total += len(batch)
    if side is not None:
        torch.cuda.current_stream(side.device).wait_stream(side)
    return checked_features(torch.cat(feats).cpu().numpy(), total, "the detector")


def _detection_stream(device: torch.device) -> torch.cuda.Stream | None:
    """A second CUDA stream where there is memory for generator and detector at once, else None."""
    if device.type != "cuda" or torch.cuda.mem_get_info(device)[0] < OVERLAP_FREE_BYTES:
        return None
    return torch.cuda.Stream(device)


@contextlib.contextmanager
def _after_current(side: torch.cuda.Stream | None) -> Iterator[None]:
    """Run the block on ``side``, after the work queued so far on the current stream (None: here)."""
    if side is None:
        yield
        return
    side.wait_stream(torch.cuda.current_stream(side.device))
    with torch.cuda.stream(side):
        yield


def featurize_generated(
    model: ImageGenerator,
    num: int,
    detector: FeatureDetector,
    mode: str,
    pre_resize: int | None,
    progress: Callable[[int], None] | None = None,
    **gen: Any,
) -> np.ndarray:
    """(num, D) features of ``num`` generated images (``gen``: :func:`generated_batches`' keywords,
    ``device`` among them): on the device where :func:`featurize_on_device` applies (CUDA, clean
    mode), else along the host path. ``progress`` is told each batch's size once it was drawn."""
    on_device = torch.device(gen["device"]).type == "cuda" and device_resizable(mode, pre_resize)
    batches = generated_batches(model, num, to_host=not on_device, **gen)
    if progress is not None:
        batches = _counted(batches, progress)
    if on_device:
        return featurize_on_device(batches, detector.on_device)
    return featurize(batches, detector, image_transform(mode, pre_resize))


def _counted(batches: Iterator[Tensor], progress: Callable[[int], None]) -> Iterator[Tensor]:
    """The batches, reporting each one's size to ``progress`` once it was drawn."""
    for batch in batches:
        progress(len(batch))
        yield batch


def chunks(images: Tensor, size: int = DETECTOR_BATCH) -> Iterator[Tensor]:
    """Consecutive slices of ``size`` images."""
    return iter(images.split(size))


def sample_latents(num: int, z_dim: int, seed: int) -> Tensor:
    """(num, z_dim) standard-normal latents on the CPU from a private generator seeded with ``seed``."""
    return torch.randn(num, z_dim, generator=torch.Generator().manual_seed(seed))


def generated_batches(
    model: ImageGenerator,
    num: int,
    *,
    seed: int,  # of the latents (and of standing statistics)
    device: torch.device,
    ema: bool,  # EMA generator (else raw)
    truncation: float,  # psi; 1.0 = none
    bn: str | None = None,  # BatchNorm mode (models.BN_MODES); None: the family's own convention
    batch: int | None = None,  # latents per generator call; None: the family's evaluation batch
    to_host: bool = True,  # False: the batches stay on the device
) -> Iterator[Tensor]:
    """Quantized uint8 (B, 3, R, R) CPU batches of ``num`` generated images, one generator call each,
    sampled through ``model.sampler`` (the family's convention unless ``bn`` overrides it).

    Randomness inside the generator (noise inputs) is seeded per batch from ``seed`` under a forked
    RNG, so the same snapshot always gives the same images and the caller's RNG never moves. With
    ``"batch"`` BatchNorm, ``batch`` latents are normalised together: it is part of the protocol.
    """
    devices = [device] if torch.device(device).type == "cuda" else []
    batch = batch or model.sampling.batch
    latents = sample_latents(num, model.z_dim, seed)
    with torch.random.fork_rng(devices=devices), model.sampler(ema=ema, bn=bn, truncation=truncation, seed=seed) as g:
        for i, z in enumerate(latents.split(batch)):
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed * 1_000_003 + i)
                images = g(z.to(device))
            if not bool(torch.isfinite(images).all()):  # quantized, NaN would pass as black pixels
                raise NonFiniteImages(
                    f"the generator returned NaN or infinite pixels (batch {i}); its weights are broken (a diverged "
                    "run or a bad import): score another snapshot"
                )
            yield quantize(images).cpu() if to_host else quantize(images)


def reference_features(
    dataset: EvalDataset, detector: Detector, mode: str, pre_resize: int | None, cache_dir: Path
) -> np.ndarray:
    """Features of every dataset image, cached under ``cache_dir`` by content, detector and resize path."""
    path = reference_cache_path(dataset, detector, mode, pre_resize, cache_dir)
    if path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            return saved["features"]
    if detector.device.type == "cuda" and device_resizable(mode, pre_resize):
        feats = featurize_on_device((c.to(detector.device) for c in chunks(dataset.images)), detector.on_device)
    else:
        feats = featurize(chunks(dataset.images), detector, image_transform(mode, pre_resize))
    buf = io.BytesIO()
    np.savez(buf, features=feats)
    atomic_write_bytes(path, buf.getvalue())
    return feats


def reference_cache_path(
    dataset: EvalDataset, detector: Detector, mode: str, pre_resize: int | None, cache_dir: Path
) -> Path:
    """``<cache_dir>/ref-<dataset>-<res>-<key>.npz``; the key hashes everything the features depend on."""
    key = {
        "version": CACHE_VERSION,
        "dataset_sha256": dataset.sha256,
        "count": len(dataset.images),
        "resolution": dataset.resolution,
        "filter": reference_filter(dataset),
        "detector": detector.name,
        "detector_sha256": detector.sha256,
        "mode": mode,
        "pre_resize": pre_resize,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset.name)[:60]
    return Path(cache_dir) / f"ref-{slug}-{dataset.resolution}-{digest}.npz"


_DETECTOR_RESIZE = {  # clean-fid's resize to the detector's input, per mode (build_resizer)
    "clean": "PIL bicubic 299 (float)",
    "legacy_pytorch": "torch bilinear 299 (float, align_corners=False)",
    "legacy_tensorflow": "299 inside the detector",
}


def resize_chain(mode: str, pre_resize: int | None, resolution: int, ref_filter: str) -> str:
    """How both image sets reach the detector, in one line (a column of every result row): the
    reference set's preparation, then the path generated (quantized to uint8) and reference images share."""
    steps = [f"uint8 {resolution} px"]
    if pre_resize is not None:
        steps.append(f"PIL bilinear {pre_resize} (uint8)")
    steps.append(_DETECTOR_RESIZE[mode])
    return f"reference {ref_filter} to {resolution} px; both sets: " + " → ".join(steps)


def reference_filter(dataset: EvalDataset) -> str:
    """The resize filter the dataset was prepared with (``bench.data`` manifest), or "unknown"."""
    return str(getattr(dataset, "manifest", {}).get("resize_filter", "unknown"))
