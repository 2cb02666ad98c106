"""Reference-GPU-hours -> local training seconds: which speed ratio each cell gets, and from where.

A suite's hours are hours of its ``reference_gpu``; a cell's speed ratio is this device's speed over
that device's for the cell's configuration (model, resolution, kwargs, precision). In order:

1. ``--speed-ratio R``: one number for every cell;
2. ``--calibration FILE``: the ratios ``calibrate`` wrote (its reference must be the suite's);
3. the suite's ``budget.speed_ratio``;
4. automatically, when the suite names ``reference_gpu``: this device's calibration file
   (``<out>/calibration/<device>.json``) for the configurations it covers, else the estimate from
   the device profiles (:mod:`bench.plan.roofline`): reference step time / local step time, the
   local device matched by name or named with ``--device-profile``;
5. otherwise 1 (the hours are local hours).

Ratios are rounded to 3 significant digits, so run ids do not move with noise below that.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError, prog_name
from bench.files import FileReadError, read_json
from bench.plan.devices import DeviceProfile, get_profile, load_profiles
from bench.plan.roofline import step_seconds
from bench.plan.specs import PRECISIONS, number_problem
from bench.plan.suites import Converter, SpeedRatio, suite_budget_basis
from bench.results.envinfo import device_description, device_name, matched_profile

if TYPE_CHECKING:  # torch, the step counter and the device helpers load when a suite converts hours
    import torch

REFERENCE_PRECISION = "fp32"  # the paper's code trained in fp32 on the reference GPUs
MIN_STEP_SECONDS, MAX_STEP_SECONDS = 1e-9, 86400.0  # a calibration entry's step time: outside is no measurement


def round_ratio(ratio: float) -> float:
    """3 significant digits: what enters the run spec (and its id)."""
    return float(f"{ratio:.3g}")


def local_profile(device: torch.device, name: str | None = None) -> DeviceProfile | None:
    """The profile of ``device`` (``name`` when given, else matched by SKU: name and memory; None when
    none matches); a per-core CPU profile is scaled to the threads torch uses."""
    import torch

    profile = get_profile(name) if name else matched_profile(device)
    return profile.for_cores(torch.get_num_threads()) if profile is not None else None


def calibration_path(out: Path, device: torch.device) -> Path:
    """``<out>/calibration/<device-name>.json``: where ``calibrate`` writes and ``run`` looks."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", device_name(device)).strip("_")
    return Path(out) / "calibration" / f"{slug}.json"


def entry_key(model: str, resolution: int, kwargs: Mapping[str, Any], precision: str) -> str:
    """What a calibration entry is looked up by (``init_from`` does not change the work)."""
    kw = {k: v for k, v in kwargs.items() if k != "init_from"}
    return json.dumps([model, int(resolution), kw, precision], sort_keys=True, default=str)


@dataclass
class ProfileEstimate:
    """Ratio = the reference's estimated step time / this device's, from the profiles."""

    local: DeviceProfile
    reference: DeviceProfile
    cache_dir: Path | None = None

    def __call__(self, model: str, resolution: int, kwargs: Mapping[str, Any], precision: str) -> tuple[float, str]:
        """(ratio, 'profile:LOCAL:REFERENCE') for one configuration."""
        from bench.tools.stepcost import step_cost

        cost = step_cost(model, resolution, dict(kwargs), self.cache_dir)
        ratio = step_seconds(cost, self.reference, REFERENCE_PRECISION) / step_seconds(cost, self.local, precision)
        return round_ratio(ratio), f"profile:{self.local.label}:{self.reference.name}"


@dataclass
class CalibrationRatios:
    """The ratios of a calibration file, by configuration; ``fallback`` for those it lacks."""

    path: Path
    ratios: dict[str, float]
    fallback: Converter | None = None

    def __call__(self, model: str, resolution: int, kwargs: Mapping[str, Any], precision: str) -> tuple[float, str]:
        """(ratio, 'calibration:FILE') when the file has the configuration, else the fallback's."""
        key = entry_key(model, resolution, kwargs, precision)
        if key in self.ratios:
            return self.ratios[key], f"calibration:{self.path}"
        if self.fallback is not None:
            return self.fallback(model, resolution, kwargs, precision)
        raise BenchError(
            f"--calibration {self.path}: no speed ratio for {model} at {resolution} px ({precision}, kwargs "
            f"{dict(kwargs)}); run `{prog_name()} calibrate` with this suite to measure it"
        )


def read_calibration(path: Path, flag: str = "--calibration") -> dict[str, Any]:
    """A calibration file, every entry checked: model, resolution, and finite positive ``img_s`` and
    ``speed_ratio`` (a NaN, zero or string would reach a budget)."""
    fix = f"create one with `{prog_name()} calibrate`"
    try:
        doc = read_json(path)
    except FileReadError as exc:
        raise BenchError(f"{flag} {exc}; {fix}") from None
    entries = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise BenchError(f"{flag} {path}: not a calibration file (no 'entries' list); {fix}")
    for i, e in enumerate(entries):
        if (problem := entry_problem(e)) is not None:
            raise BenchError(f"{flag} {path}: entries[{i}]: {problem}; fix the entry or {fix}")
    return doc


def entry_problem(entry: Any) -> str | None:
    """What is wrong with one calibration entry, or None."""
    if not isinstance(entry, dict):
        return f"expected a table, got {entry!r:.40}"
    if not isinstance(entry.get("model"), str) or not isinstance(entry.get("resolution"), int):
        return "needs 'model' (a name) and 'resolution' (px)"
    if not isinstance(entry.get("kwargs", {}), dict) or entry.get("precision", "fp32") not in PRECISIONS:
        return "'kwargs' must be a table and 'precision' one of " + ", ".join(PRECISIONS)
    for key in ("img_s", "speed_ratio", "sec_per_step", "batch"):
        if (key in entry or key == "img_s") and (problem := number_problem(entry.get(key))) is not None:
            return f"{key} {problem}"
    if not MIN_STEP_SECONDS <= entry_seconds(entry) <= MAX_STEP_SECONDS:
        return (
            f"its step time (sec_per_step, else batch / img_s) is {entry_seconds(entry):.3g} s, no measurement "
            f"(from {MIN_STEP_SECONDS:g} s to a day)"
        )
    return None


def entry_seconds(entry: Mapping[str, Any]) -> float:
    """Seconds per training step of a checked calibration entry: ``sec_per_step``, else ``batch / img_s``."""
    return float(entry.get("sec_per_step", entry.get("batch", 1) / entry["img_s"]))


class OtherReference(BenchError):
    """A calibration file whose ratios are against another reference device (or none)."""


def calibration_ratios(
    path: Path, reference: DeviceProfile | None, fallback: Converter | None = None
) -> CalibrationRatios:
    """The speed ratios of the calibration at ``path``, checked against the suite's reference device."""
    doc = read_calibration(path)
    made_for = doc.get("reference_profile")
    if reference is not None and made_for is not None and made_for != reference.name:
        raise OtherReference(
            f"--calibration {path}: its ratios are against {made_for}, the suite's reference is {reference.name}; "
            f"run `{prog_name()} calibrate` with this suite"
        )
    ratios = {
        entry_key(e["model"], e["resolution"], e.get("kwargs", {}), e.get("precision", "fp32")): float(e["speed_ratio"])
        for e in doc["entries"]
        if "speed_ratio" in e
    }
    if not ratios and fallback is None:
        raise OtherReference(
            f"--calibration {path}: has no speed ratios (no reference device); run `{prog_name()} calibrate` with a "
            "suite that names reference_gpu, or with --reference REF.json measured on the reference GPU"
        )
    return CalibrationRatios(Path(path), ratios, fallback)


class NoDeviceProfile(BenchError):
    """No device profile, calibration or speed ratio tells this device's speed (hour budgets need one)."""


def _no_profile(device: torch.device, suite: str) -> NoDeviceProfile:
    names = ", ".join(load_profiles())
    return NoDeviceProfile(
        f"no device profile matches this device ({device_description(device)}); pass --device-profile NAME "
        f"({names}), --calibration FILE (`{prog_name()} calibrate --suite {suite}` measures this device) or "
        "--speed-ratio R"
    )


def budget_conversion(
    suite: str,
    out: Path,
    *,
    speed_ratio: float | None = None,
    calibration: Path | None = None,
    device_profile: str | None = None,
    device: str = "auto",
) -> SpeedRatio:
    """What ``load_suite`` gets as ``speed_ratio`` for these flags (module docstring: the order)."""
    if speed_ratio is not None and calibration is not None:
        raise BenchError("--speed-ratio and --calibration both given; pass one of them")
    if speed_ratio is not None:
        return speed_ratio
    ref_name, pinned = suite_budget_basis(suite)
    try:
        reference = get_profile(ref_name) if ref_name else None
    except BenchError:
        return None  # load_suite reports the unknown reference_gpu with the suite's other problems
    if calibration is not None:
        return calibration_ratios(calibration, reference)
    if reference is None or pinned:
        if device_profile:
            raise BenchError(f"--device-profile {device_profile}: suite {suite} converts no hours (no reference_gpu, "
                             "budget.speed_ratio set, or a compute budget); drop the flag")  # fmt: skip
        return None
    from bench.training.device import resolve_device

    dev = resolve_device(device)
    local = local_profile(dev, device_profile)
    estimate = ProfileEstimate(local, reference, Path(out) / "cache" / "stepcost") if local else None
    found = calibration_path(out, dev)
    if device_profile is None and found.is_file():
        try:
            return calibration_ratios(found, reference, estimate)
        except OtherReference:
            pass  # another suite's reference: not this conversion's
        except BenchError as exc:  # a damaged file: say so rather than fall back in silence
            warnings.warn(f"{exc}; this run uses the device-profile estimate instead", stacklevel=2)
    if estimate is None:
        raise _no_profile(dev, suite)
    return estimate


def dry_run_conversion(suite: str, out: Path, **flags: Any) -> tuple[SpeedRatio, str | None]:
    """:func:`budget_conversion` for a plan that trains nothing (``--dry-run``): where no profile tells this
    device's speed, the reference GPU's own (ratio 1) and the message saying so, for the pre-run checks."""
    try:
        return budget_conversion(suite, out, **flags), None
    except NoDeviceProfile as exc:
        reference, _ = suite_budget_basis(suite)
        ratio = budget_conversion(suite, out, **(flags | {"device_profile": reference}))
        return ratio, f"{exc}; this plan shows the speed of {reference}, the suite's reference GPU"
