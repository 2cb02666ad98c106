"""``run_bench.py gpu-check``: every section in order under one time budget, each in its own process,
the summary rewritten after each (a check cut short still leaves what it measured)."""

from __future__ import annotations

import json
import multiprocessing
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.data.catalog import load_dataset
from bench.results.io import atomic_write_json, atomic_write_text
from bench.results.runs import cache_dirs
from bench.tools.gpucheck import sections as child_sections
from bench.tools.gpucheck.perf_modes import perf_section
from bench.tools.gpucheck.settings import DATASET, GpuCheckSettings, Plan, make_plan
from bench.tools.gpucheck.suite_check import pool_section, suite_section
from bench.tools.gpucheck.summary import render
from bench.training.device import resolve_device

Runner = Callable[[float], dict[str, Any]]


def steps(settings: GpuCheckSettings, plan: Plan, work: Path) -> list[tuple[str, Runner]]:
    """(name, run(seconds left)) of each selected section, in order; compiled perf modes last."""

    def child(name: str) -> Runner:
        return lambda left: in_child(name, settings, plan, work, left)

    def perf(mode: str, first: bool) -> Runner:
        return lambda left: perf_section(settings, plan, work, left, mode, first)

    chosen = set(settings.sections)
    quick = [m for m in plan.modes if "compile" not in m]
    compiled = [m for m in plan.modes if "compile" in m]
    out: list[tuple[str, Runner]] = [(n, child(n)) for n in ("environment", "graphs", "host-data") if n in chosen]
    if "suite" in chosen:
        out.append(("suite", lambda left: suite_section(settings, plan, work, left)))
    if "perf" in chosen:
        out += [(f"perf {m}", perf(m, i == 0)) for i, m in enumerate(quick)]
    if "pool" in chosen:
        out.append(("pool", lambda left: pool_section(settings, plan, work, left)))
    if "memory" in chosen:
        out.append(("memory", child("memory")))
    if "perf" in chosen:
        out += [(f"perf {m}", perf(m, not quick and i == 0)) for i, m in enumerate(compiled)]
    return out


def run_gpu_check(settings: GpuCheckSettings, log: Callable[[str], None] = print) -> tuple[dict[str, Any], Path]:
    """Run the check; returns the summary document and the path of its JSON (the Markdown beside it)."""
    device = resolve_device(settings.device)
    plan = make_plan(settings, device.type)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = settings.out / f"work-{device.type}-{stamp}"
    path = settings.out / f"gpu-check-{device.type}-{stamp}.json"
    start = time.monotonic()
    load_dataset(DATASET, plan.resolution, cache_dir=cache_dirs(work)[0])  # built once, before any process reads it
    doc: dict[str, Any] = {
        "kind": "gpu-check", "device": str(device), "device_name": str(device), "date": time.strftime("%Y-%m-%d %H:%M"),
        "settings": settings.to_dict(), "plan": plan.__dict__, "work": str(work), "sections": {}, "elapsed_s": 0.0,
        "verdict": "running",
    }  # fmt: skip
    for name, runner in steps(settings, plan, work):
        left = settings.budget_s - (time.monotonic() - start)
        if left < plan.min_left_s:
            result = {"status": "skipped", "reason": f"{max(left, 0):.0f} s of the budget left"}
        else:
            log(f"gpu-check: {name} ({left:.0f} s of the budget left) ...")
            t0 = time.monotonic()
            result = runner(left - plan.reserve_s) | {"seconds": time.monotonic() - t0}
            log(f"gpu-check: {name}: {result['status']} in {result['seconds']:.1f} s")
        doc["sections"][name] = result
        if name == "environment" and "gpu" in result:
            doc["device_name"] = result["gpu"]
        doc["elapsed_s"] = time.monotonic() - start
        doc["verdict"] = verdict(doc["sections"])
        write_summary(doc, path)
    return doc, path


def verdict(sections: dict[str, dict[str, Any]]) -> str:
    """'passed', or what failed, or what did not run to the end."""
    failed = [n for n, s in sections.items() if s["status"] == "failed"]
    short = [n for n, s in sections.items() if s["status"] in ("skipped", "timed out")]
    if failed:
        return "FAILED: " + ", ".join(failed)
    return "passed" + (f" (not run to the end: {', '.join(short)})" if short else "")


def write_summary(doc: dict[str, Any], path: Path) -> None:
    """The JSON and, beside it, the Markdown (both atomic)."""
    atomic_write_json(path, doc)
    atomic_write_text(path.with_suffix(".md"), render(doc))


def in_child(name: str, settings: GpuCheckSettings, plan: Plan, work: Path, timeout: float) -> dict[str, Any]:
    """Section ``name`` of :mod:`.sections` in a fresh process (spawned), killed after ``timeout`` s."""
    result = work / "sections" / f"{name}.json"
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=child_main, args=(name, settings, plan, work, result), name=f"gpu-check {name}")
    proc.start()
    proc.join(max(1.0, timeout))
    if proc.is_alive():
        proc.kill()
        proc.join()
        return {"status": "timed out", "error": f"still running after {timeout:.0f} s"}
    if not result.exists():
        return {"status": "failed", "error": f"the section's process exited {proc.exitcode} without a result"}
    return json.loads(result.read_text())


def child_main(name: str, settings: GpuCheckSettings, plan: Plan, work: Path, result: Path) -> None:
    """In the child: run the section, write its result (or the error) as JSON."""
    try:
        out = child_sections.SECTIONS[name](settings, plan, work)
    except Exception as exc:  # reported in the summary; the other sections go on
        out = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "log": traceback.format_exc()[-3000:]}
    atomic_write_json(result, out)
