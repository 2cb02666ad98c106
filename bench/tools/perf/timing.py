"""Timing primitives of ``perf``: synchronised clocks, summaries, the matmul peak, FLOP counts, memory."""

from __future__ import annotations

import contextlib
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from bench.training.device import sync

# Matmul side for the peak-FLOP/s probe, by device type (big enough to saturate, quick enough here).
PEAK_SIDE = {"cpu": 2048, "cuda": 8192}
CPU_PROBE_START, CPU_PROBE_S = 256, 0.1  # CPU: sides tried from 256 up, until one product takes 0.1 s


def summarize(values: list[float]) -> dict[str, float | int | None]:
    """Median, mean, min, max and count of a list of timings (None when empty)."""
    if not values:
        return {"median": None, "mean": None, "min": None, "max": None, "n": 0}
    return {
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def clocks(device: torch.device) -> tuple[float, float]:
    """(wall, process CPU) seconds now, after the device's queued work."""
    sync(device)
    return time.perf_counter(), time.process_time()


def time_calls(fn: Callable[[int], Any], n: int, warmup: int, device: torch.device) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds of ``fn(i)`` for i = warmup .. warmup+n-1, each synchronised; 0..warmup-1 untimed."""
    wall, cpu = [], []
    for i in range(warmup + n):
        w0, c0 = clocks(device)
        fn(i)
        w1, c1 = clocks(device)
        if i >= warmup:
            wall.append(w1 - w0)
            cpu.append(c1 - c0)
    return wall, cpu


def peak_matmul(device: torch.device, dtype: torch.dtype, side: int | None = None, reps: int = 5) -> dict[str, Any]:
    """Peak FLOP/s of a square (side^3) matmul of ``dtype``: the best of ``reps`` (the least disturbed).

    The same GEMM runs twice: as ``torch.mm`` (the BLAS: MKL on the CPU, cuBLAS) and as a 1x1
    convolution (oneDNN / cuDNN), since the two libraries reach different speeds on some CPUs
    (MKL's matmul on AMD runs at about half of oneDNN's); the peak is the faster one. ``flops`` is
    by wall clock; on the CPU ``flops_per_cpu_s`` divides by process CPU time instead (FLOPs per
    CPU-second: what the cores do while they run this process, whatever else the machine runs).
    """
    side = side or PEAK_SIDE.get(device.type, 2048)
    if device.type == "cpu":
        side = cpu_peak_side(dtype, side)
    a = torch.randn(side, side, device=device).to(dtype)
    b = torch.randn(side, side, device=device).to(dtype)
    x = a.view(1, side, 32, side // 32)  # side positions, side channels
    w = b.view(side, side, 1, 1)
    flop = 2.0 * side**3
    out: dict[str, Any] = {"dtype": str(dtype), "side": side}
    for name, fn in (("mm", lambda _: torch.mm(a, b)), ("conv1x1", lambda _: torch.nn.functional.conv2d(x, w))):
        wall, cpu = time_calls(fn, reps, warmup=1, device=device)
        per_cpu = flop / min(cpu) if device.type == "cpu" and min(cpu) > 0 else None
        out[name] = {"flops": flop / min(wall), "flops_per_cpu_s": per_cpu}
    best = max(("mm", "conv1x1"), key=lambda k: out[k]["flops_per_cpu_s"] or out[k]["flops"])
    peak = {"flops": out[best]["flops"], "flops_per_cpu_s": out[best]["flops_per_cpu_s"]}
    return out | peak | {"best": best, "math": matmul_math(device, dtype, best)}


def cpu_peak_side(dtype: torch.dtype, cap: int) -> int:
    """The CPU probe's side: doubled from 256 up to ``cap`` until one product takes :data:`CPU_PROBE_S`. A
    dtype without fast kernels on this CPU (bf16 without AVX-512 BF16: 13 s a 2048-side product on a 2-core
    EPYC) is then probed at a size that takes seconds, not minutes."""
    side = min(CPU_PROBE_START, cap)
    while side < cap:
        a = torch.randn(side, side).to(dtype)
        t0 = time.perf_counter()
        torch.mm(a, a)
        if time.perf_counter() - t0 >= CPU_PROBE_S:
            break
        side *= 2
    return side


def matmul_math(device: torch.device, dtype: torch.dtype, path: str) -> str:
    """The arithmetic a float GEMM runs in: 'tf32' where CUDA's library for ``path`` (cuBLAS for mm,
    cuDNN for conv1x1) may use TensorFloat-32 for fp32 (cuDNN's default), else the dtype's name."""
    if device.type == "cuda" and dtype == torch.float32:
        tf32 = torch.backends.cuda.matmul.allow_tf32 if path == "mm" else torch.backends.cudnn.allow_tf32
        return "tf32" if tf32 else "fp32"
    return str(dtype).removeprefix("torch.").replace("float32", "fp32").replace("bfloat16", "bf16")


class _FlopCount(TorchDispatchMode):
    """Sums ``torch.utils.flop_counter``'s per-op FLOP formulas over the ops it sees.

    ``FlopCounterMode`` itself also tracks modules, and its tracker fails on some models
    (a module called under ``no_grad`` with a view of a parameter); the totals are the same.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        rule = flop_registry.get(func._overloadpacket)
        if rule is not None:
            self.total += int(rule(*args, **kwargs, out_val=out))
        return out


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs (multiply-add = 2) of the matmuls and convolutions ``fn`` runs, forward and backward."""
    with _FlopCount() as counter:
        fn()
    return counter.total


def _reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # Linux: "5" resets the process's peak RSS (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory(device: torch.device) -> dict[str, Any]:
    """Peak bytes since the last reset: CUDA allocator peak, or the process's peak RSS on the CPU."""
    if device.type == "cuda":
        return {"bytes": int(torch.cuda.max_memory_allocated(device)), "kind": "cuda_max_allocated"}
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return {"bytes": int(line.split()[1]) * 1024, "kind": "process_peak_rss"}
    return {"bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "kind": "process_max_rss"}
