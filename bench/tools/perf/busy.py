"""How busy the device is during a training step: the time covered by its kernels over the wall
time of the steps, from ``torch.profiler``.

On CUDA the intervals are the GPU kernels (and memory copies and sets) the profiler's CUPTI trace
records; on the CPU they are the aten operators, so that the figure there is the share of the
step spent inside operators rather than in Python between them (the CPU's "launch gaps").
Overlapping intervals (nested operators, kernels on several streams) count once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from bench.training.device import sync

_DEVICE_KINDS = {"cuda": ("CUDA",), "cpu": ("CPU",)}  # profiler device types counted, by torch device type


def covered(intervals: Iterable[tuple[int, int]]) -> int:
    """Total length of the union of half-open ``(start, end)`` intervals."""
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start >= reach:
            total, reach = total + end - start, end
        elif end > reach:
            total, reach = total + end - reach, end
    return total


def _intervals(prof: profile, device: torch.device) -> list[tuple[int, int]]:
    """(start, end) in ns of the profiled events that ran on ``device``'s kind (zero-length ones dropped)."""
    kinds = _DEVICE_KINDS.get(device.type, ())
    out = []
    for event in prof.profiler.kineto_results.events():
        if event.device_type().name in kinds and event.duration_ns() > 0:
            out.append((event.start_ns(), event.start_ns() + event.duration_ns()))
    return out


def busy_fraction(step: Callable[[int], Any], indices: range, device: torch.device) -> dict[str, Any]:
    """Kernel (CUDA) or operator (CPU) time over wall time of ``step(i)`` for ``i`` in ``indices``.

    ``busy`` divides by the synchronised wall clock of all the steps (what a step costs, gaps
    included); ``busy_span`` by the span from the first interval's start to the last one's end
    (the device's own view, leaving out the host's time before the first launch).
    """
    activity = ProfilerActivity.CUDA if device.type == "cuda" else ProfilerActivity.CPU
    sync(device)
    with profile(activities=[activity]) as prof:
        t0 = time.perf_counter()
        for i in indices:
            step(i)
        sync(device)
        wall = time.perf_counter() - t0
    spans = _intervals(prof, device)
    busy_ns = covered(spans)
    span_ns = max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0
    return {
        "steps": len(indices),
        "wall_s": wall,
        "kernel_s": busy_ns / 1e9,
        "intervals": len(spans),
        "busy": busy_ns / 1e9 / wall if spans else None,
        "busy_span": busy_ns / span_ns if span_ns else None,
        "source": f"torch.profiler {activity.name} events",
    }
