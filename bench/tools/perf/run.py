"""``run_bench.py perf``: every model measured in one process, written as JSON, printed as a table."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import models
from bench.data.catalog import load_dataset
from bench.data.sampler import Sampler
from bench.data.store import Dataset
from bench.errors import BenchError
from bench.results.envinfo import cpu_model, environment
from bench.results.io import atomic_write_json
from bench.results.runs import RunPaths, cache_dirs
from bench.tools.perf.busy import busy_fraction
from bench.tools.perf.datapath import time_data_paths
from bench.tools.perf.evalpath import measure_eval, measure_reference_cache
from bench.tools.perf.settings import PerfSettings, PrecisionCheck
from bench.tools.perf.steps import (
    perf_spec,
    time_harness,
    time_interleaved,
    timed_optimizers,
    timed_regions,
)
from bench.tools.perf.table import _fmt
from bench.tools.perf.timing import _reset_peak_memory, count_flops, peak_matmul, peak_memory, summarize
from bench.training.checkpoints import apply_speed_modes
from bench.training.device import autocast, resolve_device, training_device
from bench.training.options import LoopOptions


def build_perf_model(
    name: str, kwargs: dict[str, Any], settings: PerfSettings, device: torch.device
) -> models.GANModel:
    """The registered model, seeded, on ``device`` (channels_last when the settings ask)."""
    torch.manual_seed(settings.seed)
    model = models.get_model(name, resolution=settings.resolution, **kwargs).to(device)
    if settings.channels_last:
        model.use_channels_last()
    return model


def measure_model(
    entry: str, settings: PerfSettings, device: torch.device, dataset: Dataset, images: Tensor
) -> dict[str, Any]:
    """Every training and evaluation figure of one ``--models`` entry (see the module docstring).

    Step indices: the FLOP-counting step and the attribution step are index 1; the timed steps
    are ``warmup ..`` after ``0 .. warmup-1``, the same for the loop and the model alone, so that
    lazily regularised models (StyleGAN2: R1 every 16, path length every 4 steps) compare like
    with like.
    """
    name, kwargs = models.parse_entry(entry)
    kwargs = kwargs | ({"batch_size": settings.batch} if settings.batch is not None else {})
    model = build_perf_model(name, kwargs, settings, device)
    real = Sampler(images, model.reals_per_step, seed=settings.seed + 1).next()
    row: dict[str, Any] = {"model": entry, "name": name, "kwargs": kwargs, "batch": model.batch_size}
    row["params"] = model.parameter_counts()
    _reset_peak_memory(device)
    losses: dict[str, Tensor] = {}

    def step_at(index: int) -> None:
        with autocast(device, settings.precision):
            losses.update(model.train_step(real, index))

    def step_one() -> None:
        step_at(1)

    row["flops_per_step"] = count_flops(step_one)  # eager, before any speed mode
    for opt in model.optimizers().values():  # the speed modes start afresh: fused and capturable Adam
        opt.state.clear()  # keep their step counters on the device, the default one on the host
    spec = perf_spec(name, kwargs, settings, settings.warmup + settings.steps)
    apply_speed_modes(model, spec)
    if settings.compile:
        step_one()  # compiles; untimed
    with timed_regions(model) as extras, timed_optimizers(model) as optim:
        step_one()
    row["in_step"], row["optimizer_step_s"] = extras, optim["seconds"]
    peak = row["peak_matmul"] = peak_matmul(device, torch.bfloat16 if settings.precision == "bf16" else torch.float32)
    t = time_interleaved(model, spec, dataset, images, real, settings)
    row["peak_memory"] = peak_memory(device)
    first = settings.warmup + settings.steps  # the indices after the timed ones
    row["busy"] = busy_fraction(step_at, range(first, first + settings.busy_steps), device)
    harness_wall, harness_cpu = time_harness(
        spec, dataset, images, model.reals_per_step, sorted(losses), settings.harness_steps, settings.log_every
    )
    pairs = [(lw - mw) / lw for lw, mw in zip(t["loop_wall"], t["model_wall"], strict=True)]
    pairs_cpu = [(lc - mc) / lc for lc, mc in zip(t["loop_cpu"], t["model_cpu"], strict=True) if lc > 0]
    row |= {
        "loop_step_s": summarize(t["loop_wall"]), "model_step_s": summarize(t["model_wall"]),
        "harness_step_s": summarize(harness_wall), "loop_step_cpu_s": summarize(t["loop_cpu"]),
        "model_step_cpu_s": summarize(t["model_cpu"]), "harness_step_cpu_s": summarize(harness_cpu),
        "overhead_share_diff": summarize(pairs), "overhead_share_diff_cpu": summarize(pairs_cpu),
    }  # fmt: skip
    loop, mod, harness = (row[k]["median"] for k in ("loop_step_s", "model_step_s", "harness_step_s"))
    in_step = sum(v["seconds"] for v in extras.values())
    row |= {
        "images_per_s": model.batch_size / loop,
        "achieved_flops": row["flops_per_step"] / mod,
        "peak_fraction": row["flops_per_step"] / mod / peak["flops"],
        "overhead_share_direct": harness / loop,
        "in_step_share": in_step / loop,
        "outside_model_share": (harness + in_step) / loop,
        "optimizer_share": optim["seconds"] / loop,  # part of the model's step (Adam), not of the harness
    }
    if peak["flops_per_cpu_s"]:
        per_cpu = row["flops_per_step"] / row["model_step_cpu_s"]["median"]
        row |= {"achieved_flops_per_cpu_s": per_cpu, "peak_fraction_cpu": per_cpu / peak["flops_per_cpu_s"]}
    n_eval = settings.eval_images if settings.eval_images is not None else (5000 if device.type == "cuda" else 64)
    if n_eval > 0:
        try:
            row["eval"] = measure_eval(model, settings, device, n_eval)
        except Exception as exc:  # the benchmark reports what it could not measure and goes on
            row["eval"] = {"error": f"{type(exc).__name__}: {exc}"}
    return row


def _torch_settings(device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")},
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
    }
    if device.type == "cuda":
        out |= {
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        }
    return out


def check_perf_arguments(settings: PerfSettings) -> None:
    """Fail on a bad ``--models`` entry (names and keyword arguments, built on the meta device) or ``--detector``
    before anything is measured; what only fails at run time (weights offline) is reported per model."""
    from bench.metrics import check_detector

    if not settings.models:
        raise BenchError("--models: name at least one model, e.g. --models fastgan:recon=mse")
    for entry in settings.models:
        name, kwargs = models.parse_entry(entry)
        with torch.device("meta"):
            models.get_model(name, resolution=settings.resolution, **kwargs)
    check_detector(settings.detector)


def run_perf(settings: PerfSettings, log: Callable[[str], None] = print) -> tuple[dict[str, Any], Path]:
    """Measure every model of ``settings``; write and return the JSON document and its path."""
    device = training_device(settings.device)
    check_perf_arguments(settings)
    data_cache, _ = cache_dirs(settings.out)
    dataset = load_dataset(settings.dataset, settings.resolution, cache_dir=data_cache)
    images = dataset.images.to(device)
    if settings.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    doc: dict[str, Any] = {
        "kind": "perf",
        "created": time.time(),
        "settings": settings.to_dict(),
        "environment": environment(device),
        "torch_settings": _torch_settings(device),
        "models": [],
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(settings.out) / "perf" / f"perf-{device.type}-{settings.resolution}px-{stamp}.json"
    for entry in settings.models:
        log(f"measuring {entry} at {settings.resolution} px ...")
        try:
            doc["models"].append(measure_model(entry, settings, device, dataset, images))
        except Exception as exc:  # e.g. LPIPS weights missing offline: report it, measure the others
            doc["models"].append({"model": entry, "error": f"{type(exc).__name__}: {exc}"})
            log(f"  {entry}: not measured ({type(exc).__name__}: {exc})")
        atomic_write_json(path, doc | {"partial": True})  # what is measured so far survives a kill
    if settings.naive_data:
        batch = settings.batch or next((r["batch"] for r in doc["models"] if "batch" in r), 8)
        doc["data_path"] = time_data_paths(
            dataset.images, batch, device, max(settings.steps, 10), settings.naive_workers, settings.seed,
            settings.channels_last,
        )  # fmt: skip
    if settings.eval_images != 0:
        doc["reference_cache"] = measure_reference_cache(dataset, settings, device)
    doc["torch_settings"]["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    atomic_write_json(path, doc)
    return doc, path


def precision_fid_check(
    check: PrecisionCheck, out: Path = Path("results"), device: str = "auto"
) -> tuple[dict[str, Any], Path]:
    """Final FID of ``suite``'s ``model`` cell trained ``iters`` steps in fp32 and in bf16, per seed.

    Both precisions train the same number of steps (not the same seconds: their speeds differ),
    so only numerics differ. Pass: |mean bf16 - mean fp32| <= the fp32 seed-to-seed range.
    Runs live under ``<out>/runs/perf-<suite>-precision/`` and are skipped once done; their rows are read as
    the report reads them (a hand-edited row: :class:`~bench.results.runs.UnreadableRunError`), the last of
    the cell's own protocol (its detector: a snapshot re-scored with another is not its FID).
    """
    import dataclasses

    from bench.plan.suites import filter_cells, load_suite
    from bench.results.runs import checked_eval_rows
    from bench.training.cell import run_cell

    suite, model, seeds, iters = check.fid_suite, check.fid_model, check.fid_seeds, check.fid_iters
    loaded = load_suite(suite)
    cell = filter_cells(loaded, [model], None)[0]
    metric = next(p for p in cell.spec.protocols if p.startswith("fid"))
    rows = []
    for precision in ("fp32", "bf16"):
        for seed in seeds:
            spec = dataclasses.replace(
                cell.spec, suite=f"perf-{loaded.name}-precision", seed=seed, precision=precision,
                budget_hours=None, max_iters=iters, eval_fractions=(1.0,),
            )  # fmt: skip
            status = run_cell(spec, LoopOptions(out=out, device=device, progress=False))
            own = (metric, spec.detector)
            fids = [
                r["value"] for r in checked_eval_rows(RunPaths.of(out, spec)) if (r["metric"], r.get("detector")) == own
            ]
            rows.append({"precision": precision, "seed": seed, "status": status, "fid": fids[-1] if fids else None,
                         "run_id": spec.run_id})  # fmt: skip
    fid = {p: [r["fid"] for r in rows if r["precision"] == p and r["fid"] is not None] for p in ("fp32", "bf16")}
    summary: dict[str, Any] = {"metric": metric, "dataset": cell.spec.dataset, "resolution": cell.spec.resolution}
    if len(fid["fp32"]) == len(fid["bf16"]) == len(seeds):
        mean32, mean16 = statistics.fmean(fid["fp32"]), statistics.fmean(fid["bf16"])
        spread = max(fid["fp32"]) - min(fid["fp32"])
        summary |= {"fp32_mean": mean32, "bf16_mean": mean16, "fp32_range": spread,
                    "difference": mean16 - mean32, "within_spread": abs(mean16 - mean32) <= spread}  # fmt: skip
    dev = resolve_device(device)
    doc = {
        "kind": "precision-fid", "created": time.time(), "suite": suite, "model": model, "seeds": list(seeds),
        "iters": iters, "environment": environment(dev), "runs": rows, "summary": summary,
    }  # fmt: skip
    path = Path(out) / "perf" / f"precision-fid-{dev.type}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    atomic_write_json(path, doc)
    return doc, path


def format_precision_check(doc: dict[str, Any]) -> str:
    """The per-seed FIDs and the verdict, as Markdown."""
    s = doc["summary"]
    lines = [f"{s['metric']} of {doc['model']} on {s['dataset']} at {s['resolution']} px after {doc['iters']} steps",
             "", "| seed | fp32 | bf16 |", "|---|---|---|"]  # fmt: skip
    by = {(r["precision"], r["seed"]): r["fid"] for r in doc["runs"]}
    lines += [f"| {seed} | {_fmt(by[('fp32', seed)], digits=4)} | {_fmt(by[('bf16', seed)], digits=4)} |"
              for seed in doc["seeds"]]  # fmt: skip
    if "within_spread" in s:
        verdict = "within" if s["within_spread"] else "OUTSIDE"
        lines.append(
            f"\nmean fp32 {s['fp32_mean']:.4g}, bf16 {s['bf16_mean']:.4g}: difference {s['difference']:+.3g}, "
            f"{verdict} the fp32 seed-to-seed range {s['fp32_range']:.3g}"
        )
    return "\n".join(lines)
