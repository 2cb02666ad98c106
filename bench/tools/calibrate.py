"""``calibrate``: measure each configuration's training step here and convert it to the reference GPU.

Per distinct (model, resolution, kwargs, precision) of a suite: the step is timed on random data
(median of ``steps`` after one warm-up, each lazy-regularisation pattern of the model timed and
weighted by its share: ``GANModel.cost_steps``), and its work counted (:mod:`bench.tools.stepcost`).
The reference GPU's step time is estimated from its profile (:mod:`bench.plan.roofline`), or read
from a calibration measured on it (``--reference``); the speed ratio is reference time / time here.
The file records the assumptions, both profiles and the stated-throughput checks
(:mod:`bench.tools.throughputs`).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

import models
from bench.errors import BenchError
from bench.plan.devices import DeviceProfile
from bench.plan.roofline import ideal_seconds, step_seconds
from bench.plan.suites import Cell
from bench.results.envinfo import device_description, environment
from bench.results.io import atomic_write_text
from bench.tools.conversion import (
    REFERENCE_PRECISION,
    entry_key,
    entry_problem,
    entry_seconds,
    read_calibration,
    round_ratio,
)
from bench.tools.stepcost import step_cost
from bench.tools.throughputs import check_rows
from bench.training.device import autocast, sync
from bench.training.modelsize import check_fits

ASSUMPTIONS = (
    "speed ratio = the reference GPU's step time / this device's measured step time, per configuration",
    "the reference step time is estimated (unless --reference measured it): sum over the step's ops of "
    "max(FLOPs / peak, bytes / bandwidth, op overhead), divided by an efficiency (bench/plan/roofline.py)",
    "peaks and bandwidths are vendors' public figures (bench/plan/devices.toml): estimates, not measurements",
    "the reference trains in fp32 as the paper's code did (the 2080 Ti and TITAN RTX have no TF32); fp32 "
    "convolutions run as TF32 where PyTorch does so by default (Ampere and newer)",
    "ops are counted on the meta device on the CPU code path: single-tensor Adam, no kernel fusion; bytes are "
    "each op's inputs and outputs (no cache reuse)",
    "efficiency per device kind is fitted to stated throughputs (bench/plan/throughputs.toml, 'checks' below)",
    "the step time here is measured on random data; data loading, evaluation and checkpoints are not charged",
)


def _time_step(model: models.GANModel, real: torch.Tensor, step: int, device: torch.device, precision: str) -> float:
    sync(device)
    t0 = time.perf_counter()
    with autocast(device, precision):
        model.train_step(real, step)
    sync(device)
    return time.perf_counter() - t0


def measure(
    name: str, resolution: int, kwargs: dict[str, Any], precision: str, device: torch.device, steps: int
) -> dict[str, Any]:
    """Seconds per mean training step of one configuration (see the module docstring)."""
    check_fits(name, resolution, kwargs, device, training=True)
    torch.manual_seed(0)
    model = models.get_model(name, resolution=resolution, **kwargs).to(device)
    real = torch.rand(model.reals_per_step, 3, resolution, resolution, device=device) * 2 - 1
    pattern = model.cost_steps()
    _time_step(model, real, max(pattern), device, precision)  # warm-up
    reps = max(1, steps // len(pattern))
    sec = sum(w * statistics.median(_time_step(model, real, i, device, precision) for _ in range(reps))
              for i, w in pattern.items())  # fmt: skip
    return {
        "model": name, "resolution": resolution, "kwargs": kwargs, "precision": precision, "batch": model.batch_size,
        "steps": reps * len(pattern), "sec_per_step": sec, "it_s": 1.0 / sec, "img_s": model.batch_size / sec,
    }  # fmt: skip


def _configs(cells: list[Cell]) -> list[tuple[str, int, dict[str, Any], str]]:
    seen: dict[str, tuple[str, int, dict[str, Any], str]] = {}
    for c in cells:
        s = c.spec
        kwargs = {k: v for k, v in s.model_kwargs.items() if k != "init_from"}
        config = (s.model, s.resolution, kwargs, s.precision)
        seen.setdefault(entry_key(*config), config)
    return list(seen.values())


def _convert(
    entry: dict[str, Any], local: DeviceProfile | None, reference: DeviceProfile | None, cache: Path, measured_ref: dict
) -> None:
    """Add the step's work, both roofline times, the efficiency here and the speed ratio to ``entry``."""
    cost = step_cost(entry["model"], entry["resolution"], entry["kwargs"], cache)
    entry |= {"flops_per_step": cost.flops, "bytes_per_step": cost.bytes, "ops_per_step": cost.ops}
    if local is not None:
        entry["local_roofline_s"] = ideal_seconds(cost, local, entry["precision"])
        entry["local_efficiency"] = entry["local_roofline_s"] / entry["sec_per_step"]
    key = entry_key(entry["model"], entry["resolution"], entry["kwargs"], entry["precision"])
    if key in measured_ref:
        entry |= {"reference_sec_per_step": measured_ref[key], "reference_basis": "measured (--reference)"}
    elif reference is not None:
        ref_s = step_seconds(cost, reference, REFERENCE_PRECISION)
        entry |= {"reference_sec_per_step": ref_s, "reference_basis": f"estimated from profile {reference.name}"}
    if "reference_sec_per_step" in entry:
        entry["speed_ratio"] = round_ratio(entry["reference_sec_per_step"] / entry["sec_per_step"])


def calibrate(
    cells: list[Cell],
    device: torch.device,
    steps: int,
    *,
    local: DeviceProfile | None,
    reference: DeviceProfile | None,
    reference_file: Path | None = None,
    cache: Path,
    checks: bool = True,
) -> dict[str, Any]:
    """Measure every distinct configuration of ``cells`` and convert it to ``reference`` (module docstring)."""
    measured_ref: dict[str, float] = {}
    if reference_file is not None:
        for e in read_calibration(reference_file, "--reference")["entries"]:
            key = entry_key(e["model"], e["resolution"], e.get("kwargs", {}), e.get("precision", "fp32"))
            measured_ref[key] = entry_seconds(e)
    entries = []
    for name, res, kwargs, precision in _configs(cells):
        entry = measure(name, res, kwargs, precision, device, steps)
        _convert(entry, local, reference, cache, measured_ref)
        entries.append(entry)
    return {
        "environment": environment(device), "device_description": device_description(device),
        "created": time.time(), "load_average": list(os.getloadavg()), "threads": torch.get_num_threads(),
        "local_profile": local.summary() if local else None,
        "reference_profile": reference.name if reference else None,
        "reference": reference.summary() if reference else None, "reference_file": str(reference_file or "") or None,
        "conversion_model": "per-op roofline over an efficiency (bench/plan/roofline.py)",
        "assumptions": list(ASSUMPTIONS), "entries": entries, "checks": check_rows(cache) if checks else [],
    }  # fmt: skip


def write_calibration(path: Path, doc: dict[str, Any]) -> None:
    """Atomic, strict JSON write (no NaN or Infinity) of a calibration whose every entry ``run`` would accept:
    a ratio of 0 or infinity (from an implausible ``--reference``) is refused and the file in place kept."""
    for e in doc["entries"]:
        if (problem := entry_problem(e)) is not None:
            raise BenchError(
                f"calibrate: {e['model']} at {e['resolution']} px: {problem}; nothing was written ({path} is kept): "
                "check the --reference file's entry for it"
            )
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n")


def calibration_table(doc: dict[str, Any]) -> str:
    """What ``calibrate`` prints: per configuration the step here, the reference's and the ratio; then the
    stated throughputs beside the model's prediction."""
    from tabulate import tabulate

    rows = [[e["model"], e["resolution"], e["precision"], e["batch"], f"{e['sec_per_step']:.3g}",
             f"{e.get('local_efficiency', float('nan')):.2f}", f"{e.get('reference_sec_per_step', float('nan')):.3g}",
             e.get("reference_basis", "--"), f"{e['speed_ratio']:.3g}" if "speed_ratio" in e else "--"]
            for e in doc["entries"]]  # fmt: skip
    head = ["model", "res", "precision", "batch", "s/step here", "roofline/measured", "ref s/step", "ref basis",
            "speed ratio"]  # fmt: skip
    checks = [[c["what"], c["device"], c["use"], "-".join(dict.fromkeys(f"{v:g}" for v in c["stated"])),
               f"{c['predicted']:.3g} {c['unit']}", f"{c['predicted_over_stated']:.2f}"]
              for c in doc["checks"]]  # fmt: skip
    where = doc["local_profile"]["profile"] if doc["local_profile"] else "none (no profile matches this device)"
    text = f"{doc['device_description']}; profile {where}; reference {doc['reference_profile'] or '--'}\n"
    text += tabulate(rows, head, tablefmt="github", disable_numparse=True)
    if checks:
        text += "\n\nstated throughputs vs this model's prediction (fit: sets the efficiency; check: tests the model)\n"
        text += tabulate(checks, ["what", "device", "use", "stated", "predicted", "predicted/stated"],
                         tablefmt="github", disable_numparse=True)  # fmt: skip
    return text
