"""Stated throughputs (``bench/plan/throughputs.toml``) against the conversion model's prediction.

Each entry is a model configuration, a device profile and a stated time (per kimg or per step).
``fit`` entries give their device kind's efficiency (the geometric mean of roofline time / stated
time); ``check`` entries test the model. ``calibrate`` prints every entry's prediction beside the
statement; a test keeps devices.toml's efficiencies equal to the fit.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.plan.devices import DEVICES_FILE, DeviceProfile, get_profile
from bench.plan.roofline import ideal_seconds, step_seconds
from bench.tools.stepcost import step_cost

THROUGHPUTS_FILE = DEVICES_FILE.with_name("throughputs.toml")


@dataclass(frozen=True)
class Throughput:
    """One stated throughput: seconds per step (converted from per-kimg at the batch) on a device."""

    what: str
    model: str
    resolution: int
    kwargs: dict[str, Any]
    precision: str
    device: DeviceProfile
    stated: tuple[float, float]  # as stated: seconds per kimg, or per step
    per: str  # 'kimg' or 'step'
    use: str  # 'fit' or 'check'
    source: str


def load_throughputs(path: Path = THROUGHPUTS_FILE) -> list[Throughput]:
    """Every entry of the throughputs file."""
    out = []
    for t in tomllib.loads(path.read_text(encoding="utf-8"))["throughput"]:
        per = "kimg" if "sec_per_kimg" in t else "step"
        device = get_profile(t["device"]).for_cores(int(t.get("cores", 1)))
        out.append(Throughput(
            t["what"], t["model"], int(t["resolution"]), dict(t["kwargs"]), t["precision"], device,
            tuple(float(v) for v in t[f"sec_per_{per}"]), per, t["use"], t["source"],
        ))  # fmt: skip
    return out


def _per_step(t: Throughput, seconds_per_kimg_or_step: float, batch: int) -> float:
    return seconds_per_kimg_or_step * batch / 1000.0 if t.per == "kimg" else seconds_per_kimg_or_step


def check_rows(cache_dir: Path | None = None, uses: tuple[str, ...] = ("fit", "check")) -> list[dict[str, Any]]:
    """Per entry (of those whose ``use`` is in ``uses``): stated vs predicted (in the entry's unit), and
    the roofline efficiency it implies."""
    rows = []
    for t in (t for t in load_throughputs() if t.use in uses):
        cost = step_cost(t.model, t.resolution, t.kwargs, cache_dir)
        stated_step = _per_step(t, math.sqrt(t.stated[0] * t.stated[1]), cost.batch)
        predicted_step = step_seconds(cost, t.device, t.precision)
        predicted = predicted_step * 1000.0 / cost.batch if t.per == "kimg" else predicted_step
        rows.append({
            "what": t.what, "device": t.device.label, "use": t.use, "unit": f"s/{t.per}", "stated": list(t.stated),
            "predicted": predicted, "predicted_over_stated": predicted_step / stated_step,
            "implied_efficiency": ideal_seconds(cost, t.device, t.precision) / stated_step, "source": t.source,
        })  # fmt: skip
    return rows


def fitted_efficiency(kind: str, rows: list[dict[str, Any]]) -> float:
    """The geometric mean of the implied efficiencies of the ``fit`` rows on devices of ``kind``."""
    kinds = {t.what: t.device.kind for t in load_throughputs()}
    fits = [r["implied_efficiency"] for r in rows if r["use"] == "fit" and kinds[r["what"]] == kind]
    if not fits:
        raise ValueError(f"no 'fit' throughput for device kind {kind!r} in {THROUGHPUTS_FILE}")
    return math.exp(sum(map(math.log, fits)) / len(fits))
