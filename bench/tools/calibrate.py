"""Device calibration: training throughput per (model, resolution), and speed ratios between devices.

The paper's budgets are hours of a reference GPU (RTX 2080-Ti at 256, RTX TITAN at 1024). A
calibration file measured here, divided by one measured on (or for) the reference GPU, gives the
speed ratio that converts reference-GPU-hours into local training seconds for each model.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

import torch

import models
from bench.errors import BenchError
from bench.files import FileReadError, read_json
from bench.plan.specs import finite_positive
from bench.plan.suites import Cell
from bench.results.envinfo import environment
from bench.results.io import atomic_write_json
from bench.training.device import sync


def measure(name: str, resolution: int, kwargs: dict[str, Any], device: torch.device, steps: int) -> dict[str, Any]:
    """Median seconds per training step (after one warm-up step) of a model on random data."""
    torch.manual_seed(0)
    model = models.get_model(name, resolution=resolution, **kwargs).to(device)
    real = torch.rand(model.batch_size, 3, resolution, resolution, device=device) * 2 - 1
    model.train_step(real, 0)
    times = []
    for i in range(steps):
        sync(device)
        t0 = time.perf_counter()
        model.train_step(real, i + 1)
        sync(device)
        times.append(time.perf_counter() - t0)
    sec = statistics.median(times)
    return {
        "model": name, "resolution": resolution, "kwargs": kwargs, "batch": model.batch_size,
        "steps": steps, "sec_per_step": sec, "it_s": 1.0 / sec, "img_s": model.batch_size / sec,
    }  # fmt: skip


def calibrate(cells: list[Cell], device: torch.device, steps: int, reference: Path | None = None) -> dict[str, Any]:
    """Measure every distinct (model, kwargs, resolution) of ``cells``; add ratios to ``reference``."""
    ref = (
        {(e["model"], e["resolution"]): e for e in read_calibration(reference, "--reference")["entries"]}
        if reference
        else {}
    )
    seen: dict[str, tuple[str, int, dict[str, Any]]] = {}
    for c in cells:
        s = c.spec
        seen.setdefault(json.dumps([s.model, s.resolution, s.model_kwargs], sort_keys=True),
                        (s.model, s.resolution, s.model_kwargs))  # fmt: skip
    entries = [measure(m, r, kw, device, steps) for m, r, kw in seen.values()]
    doc = {"environment": environment(device), "created": time.time(), "entries": entries}
    if reference is not None:
        for e in entries:
            match = ref.get((e["model"], e["resolution"]))
            if match:
                e["speed_ratio"] = e["img_s"] / match["img_s"]
        doc["reference"] = str(reference)
    return doc


def calibration_path(out: Path, device: torch.device) -> Path:
    """``<out>/calibration/<device-name>.json``."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", environment(device)["device_name"]).strip("_")
    return Path(out) / "calibration" / f"{slug}.json"


def write_calibration(path: Path, doc: dict[str, Any]) -> None:
    """Atomic JSON write."""
    atomic_write_json(path, doc)


def read_calibration(path: Path, flag: str = "--calibration") -> dict[str, Any]:
    """A calibration file, every entry checked: model, resolution, and finite positive ``img_s`` and ``speed_ratio``."""
    fix = "create one with `run_bench.py calibrate`"
    try:
        doc = read_json(path)
    except FileReadError as exc:
        raise BenchError(f"{flag} {exc}; {fix}") from None
    entries = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise BenchError(f"{flag} {path}: not a calibration file (no 'entries' list); {fix}")
    for i, e in enumerate(entries):
        if (problem := _entry_problem(e)) is not None:
            raise BenchError(f"{flag} {path}: entries[{i}]: {problem}; fix the entry or {fix}")
    return doc


def _entry_problem(entry: Any) -> str | None:
    """What is wrong with one calibration entry, or None."""
    if not isinstance(entry, dict):
        return f"expected a table, got {entry!r:.40}"
    if not isinstance(entry.get("model"), str) or not isinstance(entry.get("resolution"), int):
        return "needs 'model' (a name) and 'resolution' (px)"
    for key in ("img_s", "speed_ratio"):
        if (key in entry or key == "img_s") and not finite_positive(entry.get(key)):
            return f"{key} must be a finite number > 0, got {entry.get(key)!r:.40}"
    return None


def speed_ratios(path: Path) -> dict[tuple[str, int], float]:
    """(model, resolution) → speed ratio, from a calibration made with ``--reference``."""
    ratios = {(e["model"], e["resolution"]): e["speed_ratio"] for e in read_calibration(path)["entries"]
              if "speed_ratio" in e}  # fmt: skip
    if not ratios:
        raise BenchError(
            f"--calibration {path}: has no speed ratios; run `run_bench.py calibrate --reference REF.json` "
            "with a calibration measured on the reference GPU"
        )
    return ratios
