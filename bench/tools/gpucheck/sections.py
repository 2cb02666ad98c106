"""The checks of ``gpu-check`` that run inside one process each (a child of the check, so that a
CUDA error in one cannot poison the others): the environment and matmul peaks, the CUDA-graph step
against its eager twin, the host-resident data path, peak memory per family and resolution.

Each returns a JSON-ready dict with ``status`` ("ok" or "failed") and ``checks`` (name -> bool).
"""

from __future__ import annotations

import gc
import math
import os
import shutil
import statistics
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import models
from bench.data.catalog import load_dataset
from bench.data.sampler import Sampler
from bench.plan.specs import RunSpec
from bench.results.envinfo import environment
from bench.results.runs import RunPaths, cache_dirs
from bench.tools.gpucheck.settings import DATASET, GpuCheckSettings, Plan
from bench.tools.perf.busy import busy_fraction
from bench.tools.perf.timing import _reset_peak_memory, peak_matmul, peak_memory
from bench.training.device import autocast, sync, training_device
from bench.training.loop import train_steps
from bench.training.options import LoopOptions
from bench.training.setup import open_run

Section = Callable[[GpuCheckSettings, Plan, Path], dict[str, Any]]


def with_status(out: dict[str, Any]) -> dict[str, Any]:
    """``out`` with ``status``: "ok" when every check holds, else "failed"."""
    return {"status": "ok" if all(out.get("checks", {}).values()) else "failed", **out}


def environment_section(settings: GpuCheckSettings, plan: Plan, work: Path) -> dict[str, Any]:
    """The device, its software and the measured bf16 and fp32 (tf32 where allowed) matmul peaks."""
    device = training_device(settings.device)
    out: dict[str, Any] = {"environment": environment(device), "torch": torch.__version__, "cpu_count": os.cpu_count()}
    out["loadavg"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out |= {
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "gpu": props.name,
            "gpu_memory_bytes": props.total_memory, "multiprocessors": props.multi_processor_count,
            "compute_capability": f"{props.major}.{props.minor}", "driver": _nvidia_smi("driver_version"),
        }  # fmt: skip
    dtypes = (("bf16", torch.bfloat16), ("fp32", torch.float32))
    out["peak_matmul"] = {name: peak_matmul(device, dtype, side=plan.peak_side) for name, dtype in dtypes}
    out["checks"] = {"matmul peaks measured": all(p["flops"] > 0 for p in out["peak_matmul"].values())}
    return with_status(out)


def _nvidia_smi(field: str) -> str | None:
    """One ``nvidia-smi --query-gpu`` field of the first GPU, or None where it cannot be read."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        res = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip().splitlines()[0] if res.returncode == 0 and res.stdout.strip() else None


# ----------------------------------------------------------------------------- CUDA graph vs eager


def graphs_section(settings: GpuCheckSettings, plan: Plan, work: Path) -> dict[str, Any]:
    """FastGAN's fp32 step as a CUDA graph against its eager twin (the same body, eagerly: the same
    kernels, so bitwise equal unless atomics reorder), a second twin (the noise floor) and the
    default eager step, on the same batches from the same seeds. The default step differs by its
    Adam (capturable on CUDA, fused elsewhere: rounding, amplified by training) and, off CUDA, by
    the order of its CPU random draws: its difference is reported, not checked. cuDNN runs its
    deterministic algorithms here (no autotuning), so that graph and twin can agree bit for bit."""
    device = training_device(settings.device)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    images = load_dataset(DATASET, plan.resolution, cache_dir=cache_dirs(work)[0]).images.to(device)
    kwargs = plan.models["fastgan"]
    batch = models.get_model("fastgan", resolution=plan.resolution, **kwargs).batch_size
    sampler = Sampler(images, batch, seed=1)
    reals = [sampler.next() for _ in range(plan.graph_steps)]
    variants = (("graph", "graph"), ("twin", "twin"), ("twin again", "twin"), ("eager", "eager"))
    runs = {name: _train(device, plan.resolution, kwargs, reals, mode) for name, mode in variants}
    noise = _max_rel_diff(runs["twin"]["state"], runs["twin again"]["state"])
    diff = {f"graph vs {k}": _max_rel_diff(runs["graph"]["state"], runs[k]["state"]) for k in ("twin", "eager")}
    timing = {name: {k: v for k, v in r.items() if k != "state"} for name, r in runs.items()}
    step = {name: r["step_s"] for name, r in timing.items()}
    out = {
        "steps": plan.graph_steps, "batch": batch, "runs": timing, "max_rel_diff": diff, "noise_floor": noise,
        "bitwise_equal_to_twin": diff["graph vs twin"] == 0.0,
        "eager_over_graph": step["eager"] / step["graph"] if step["graph"] else None,
    }  # fmt: skip
    out["checks"] = {
        "captured": runs["graph"]["captured"],
        "graph equals its eager twin (bitwise, or within twice the twins' noise)": diff["graph vs twin"] <= 2 * noise,
    }
    if device.type == "cuda":
        out["checks"]["a replay synchronises nothing (CUDA sync debug mode)"] = runs["graph"]["host_syncs"] == 0
    return with_status(out)


def _train(device: torch.device, res: int, kwargs: dict[str, Any], reals: list[Tensor], mode: str) -> dict[str, Any]:
    """One FastGAN trained on ``reals`` in ``mode`` (graph, twin: the graph's body eagerly, eager)."""
    torch.manual_seed(0)
    model = models.get_model("fastgan", resolution=res, **kwargs).to(device)
    if mode != "eager":
        model.use_cuda_graphs(capture=mode == "graph")
    torch.manual_seed(1)
    seconds = []
    for i, real in enumerate(reals):
        sync(device)
        t0 = time.perf_counter()
        model.train_step(real, i)
        sync(device)
        seconds.append(time.perf_counter() - t0)
    n = len(reals)
    busy = busy_fraction(lambda i: model.train_step(reals[-1], i), range(n, n + 2), device)
    syncs = _cuda_syncs(lambda: model.train_step(reals[-1], n + 2), device)
    timed = seconds[-max(1, len(seconds) // 2) :]  # after warm-up (and capture)
    captured = model.step_graph is not None and model.step_graph.captured
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {"step_s": statistics.median(timed), "busy": busy["busy"], "host_syncs": syncs, "captured": captured,
            "state": state}  # fmt: skip


def _cuda_syncs(fn: Callable[[], Any], device: torch.device) -> int | None:
    """How many host synchronisations ``fn`` makes, by CUDA's sync debug mode (None off CUDA)."""
    if device.type != "cuda":
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def _max_rel_diff(a: dict[str, Tensor], b: dict[str, Tensor]) -> float:
    """Largest |a - b| / max(|b|, 1) over every floating-point tensor (0.0: bitwise equal)."""
    worst = 0.0
    for key, x in a.items():
        if x.is_floating_point():
            worst = max(worst, ((x.double() - b[key].double()).abs() / b[key].double().abs().clamp(min=1)).max().item())
        elif not torch.equal(x, b[key]):
            return math.inf
    return worst


# ----------------------------------------------------------------------------- host-resident data


def host_data_section(settings: GpuCheckSettings, plan: Plan, work: Path) -> dict[str, Any]:
    """The real loop trained twice with deterministic kernels: the set on the device, then kept on the
    host by a 1-byte device capacity (each batch gathered there and copied over, pinned): same weights."""
    states, places = [], {}
    for name, capacity in (("device", None), ("host", 1)):
        spec = RunSpec(
            suite=f"gpu-check-data-{name}", model="fastgan", dataset=DATASET, resolution=plan.resolution,
            model_kwargs=plan.models["fastgan"], max_iters=plan.graph_steps, protocols=(), eval_fractions=(),
        )  # fmt: skip
        opts = LoopOptions(out=work, device=settings.device, progress=False, checkpoint_every_s=math.inf,
                           deterministic=True, data_capacity=capacity)  # fmt: skip
        run = open_run(spec, opts, RunPaths.of(work, spec))
        places[name] = str(run.sampler.images.device)
        outcome = train_steps(run, None)
        states.append({k: v.detach().cpu() for k, v in run.model.state_dict().items()})
        places[f"{name} outcome"] = outcome
    diff = _max_rel_diff(states[1], states[0])
    out = {"placement": places, "max_rel_diff": diff, "steps": plan.graph_steps}
    out["checks"] = {
        "capped set stays on the host": places["host"] == "cpu",
        "same weights either way (bitwise)": diff == 0.0,
        "both trained to the end": places["device outcome"] == places["host outcome"] == "done",
    }
    return with_status(out)


# ----------------------------------------------------------------------------- peak memory


def memory_section(settings: GpuCheckSettings, plan: Plan, work: Path) -> dict[str, Any]:
    """Peak memory of a training step (CUDA allocator peak; peak RSS on the CPU) per family,
    resolution and precision: step index 0 (StyleGAN2's R1 and path length included), measured on
    the second step after a first one (cuDNN autotuning's workspaces left out)."""
    device = training_device(settings.device)
    rows = []
    for family, kwargs in plan.models.items():
        for res in plan.memory_resolutions:
            for precision in plan.memory_precisions:
                rows.append({"model": family, "resolution": res, "precision": precision,
                             **_step_memory(family, kwargs, res, precision, device)})  # fmt: skip
    out = {"rows": rows, "kind": peak_memory(device)["kind"]}
    out["checks"] = {"every step measured or out of memory": all("bytes" in r or r.get("oom") for r in rows)}
    return with_status(out)


def _step_memory(name: str, kwargs: dict[str, Any], res: int, precision: str, device: torch.device) -> dict[str, Any]:
    """Peak bytes of step 0 of ``name`` at ``res`` px (after one untimed step 0), or ``oom``."""
    try:
        torch.manual_seed(0)
        model = models.get_model(name, resolution=res, **kwargs).to(device)
        real = torch.rand(model.reals_per_step, 3, res, res, device=device) * 2 - 1
        for first in (True, False):
            if not first:
                sync(device)
                _reset_peak_memory(device)
            with autocast(device, precision):
                model.train_step(real, 0)
        sync(device)
        return {"bytes": peak_memory(device)["bytes"], "batch": model.batch_size}
    except torch.cuda.OutOfMemoryError as exc:
        return {"oom": True, "error": str(exc).splitlines()[0]}
    finally:
        model = real = None
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


SECTIONS: dict[str, Section] = {
    "environment": environment_section,
    "graphs": graphs_section,
    "host-data": host_data_section,
    "memory": memory_section,
}
