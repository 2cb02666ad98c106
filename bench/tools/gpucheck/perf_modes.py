"""The ``perf`` part of ``gpu-check``: one ``run_bench.py perf`` process per speed mode (fp32, bf16,
bf16 + CUDA graphs + fused Adam, + channels_last, + compile, ...), its figures gathered as rows."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import models
from bench.tools.gpucheck.settings import DATASET, DETECTOR, GpuCheckSettings, Plan, mode_flags
from bench.tools.gpucheck.suite_check import bench_cmd, run_logged, tail

GRAPH_FAMILIES = ("fastgan",)  # families whose step is offered as a CUDA graph


def mode_models(plan: Plan, mode: str) -> tuple[str, ...]:
    """The perf entries measured in ``mode``: with CUDA graphs only the families that offer them."""
    if "graphs" not in mode.split("+"):
        return plan.perf_models
    return tuple(e for e in plan.perf_models if models.model_info(models.parse_entry(e)[0]).family in GRAPH_FAMILIES)


def perf_section(
    settings: GpuCheckSettings, plan: Plan, work: Path, left: float, mode: str, first: bool
) -> dict[str, Any]:
    """``perf`` in ``mode`` for the plan's models (evaluation throughput in the first mode only)."""
    before = set(work.glob("perf/*.json"))
    cmd = bench_cmd(
        "perf", "--models", ",".join(mode_models(plan, mode)), "--resolution", str(plan.resolution),
        "--device", settings.device, "--steps", str(plan.perf_steps), "--warmup", str(plan.perf_warmup),
        "--harness-steps", str(plan.harness_steps), "--eval-images", str(plan.eval_images if first else 0),
        "--detector", DETECTOR, "--dataset", DATASET, "--out", str(work), *mode_flags(mode),
    )  # fmt: skip
    log = work / "logs" / f"perf-{mode}.log"
    t0 = time.monotonic()
    rc = run_logged(cmd, log, left)
    new = sorted(set(work.glob("perf/*.json")) - before)
    doc = json.loads(new[-1].read_text()) if new else {"models": []}
    rows = [perf_row(mode, r) for r in doc["models"]]
    out: dict[str, Any] = {"mode": mode, "exit": rc, "rows": rows, "json": str(new[-1]) if new else None,
                           "peak_matmul": next((r["peak_matmul"] for r in doc["models"] if "peak_matmul" in r), None),
                           "wall_s": time.monotonic() - t0}  # fmt: skip
    if rc == -9:
        return {"status": "timed out", **out, "log": tail(log)}
    out["checks"] = {
        "perf exited 0": rc == 0,
        "every model measured": bool(rows) and all("error" not in r for r in rows),
    }
    if not all(out["checks"].values()):
        out["log"] = tail(log)
    return {"status": "ok" if all(out["checks"].values()) else "failed", **out}


def perf_row(mode: str, r: dict[str, Any]) -> dict[str, Any]:
    """One model's figures in one mode (the perf JSON has them all)."""
    if "error" in r:
        return {"mode": mode, "model": r["model"], "error": r["error"]}
    row = {
        "mode": mode, "model": r["model"], "batch": r["batch"], "loop_s": r["loop_step_s"]["median"],
        "model_s": r["model_step_s"]["median"], "images_per_s": r["images_per_s"], "gflop_per_step":
        r["flops_per_step"] / 1e9, "gflop_per_s": r["achieved_flops"] / 1e9, "peak_gflop_per_s":
        r["peak_matmul"]["flops"] / 1e9, "peak_math": r["peak_matmul"].get("math"), "peak_fraction": r["peak_fraction"],
        "busy": r.get("busy", {}).get("busy"), "peak_memory_bytes": r["peak_memory"]["bytes"],
        "peak_memory_kind": r["peak_memory"]["kind"], "harness_share": r["overhead_share_direct"],
    }  # fmt: skip
    if "eval" in r:
        row["eval"] = r["eval"]
    return row
