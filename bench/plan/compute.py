"""Compute budgets: one amount of reference-device seconds per suite, the same for every row, turned
into each model's iteration count by the step-cost model, so every machine runs the same iterations.

A suite states ``[budget] compute_seconds = S`` and ``compute_device = "NAME"`` (a profile of
``devices.toml``; a per-core CPU profile names its cores, ``"cpu-epyc-zen4 x2"``; without the key,
the suite's ``reference_gpu``). A model's training step is counted op by op on the meta device
(:mod:`bench.tools.stepcost`) and timed on that device's profile by the roofline model
(:func:`bench.plan.roofline.step_seconds`, fp32 as the paper's code trained): ``t`` seconds. The
model then gets ``ceil(S / t)`` iterations (``ceil(k S / t)`` for a row at ``budget_multiple = k``: a
labelled row at k times the suite's budget, never compared as an equal). Nothing local enters: the
count depends only on the model's configuration, the torch version and the models' source, so a suite
gives the same iterations (and run ids) on a laptop, a GPU node or a cluster. The budget is the paper's premise,
the same device time for every model, evaluated on one named device instead of measured.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.plan import names
from bench.plan.devices import DeviceProfile, get_profile
from bench.plan.roofline import StepCost, step_seconds

COMPUTE_PRECISION = "fp32"  # the precision the reference device is timed in
STEP_DIGITS = 6  # significant digits of a step's reference seconds (float noise never moves an iteration count)
_CORES_RE = re.compile(r"^(?P<name>.+?)\s+x(?P<cores>[1-9][0-9]{0,3})$")


def compute_device(text: str) -> DeviceProfile:
    """The profile named by ``text``: ``"NAME"`` or, for a per-core CPU profile, ``"NAME xCORES"``."""
    m = _CORES_RE.match(text.strip())
    profile = get_profile(m["name"] if m else text)
    if profile.per_core:
        if m is None:
            raise BenchError(f"{profile.name} is a per-core CPU profile: name its cores, e.g. '{profile.name} x2'")
        return profile.for_cores(int(m["cores"]))
    if m is not None:
        raise BenchError(f"{profile.name} is not a per-core CPU profile: drop ' x{m['cores']}'")
    return profile


def reference_step_seconds(cost: StepCost, device: DeviceProfile) -> float:
    """Seconds one step of ``cost`` takes on ``device`` (roofline model), rounded to :data:`STEP_DIGITS`."""
    return float(f"{step_seconds(cost, device, COMPUTE_PRECISION):.{STEP_DIGITS}g}")


@dataclass(frozen=True)
class ComputePlan:
    """One cell's compute budget and what it converts to (``RunSpec.compute`` holds :meth:`to_dict`)."""

    budget_s: float  # reference-device seconds per run (before the budget scale)
    device: str  # the reference device's label, e.g. 'rtx-2080-ti' or 'cpu-epyc-zen4 x2'
    step_s: float  # reference-device seconds per iteration of this model configuration
    images_per_step: int  # real images one iteration shows the discriminator (GANModel.reals_per_step)
    multiple: float = 1.0  # this row's budget in multiples of budget_s (a suite row's budget_multiple)

    @property
    def iterations(self) -> int:
        """Iterations the budget buys: ``ceil(multiple * budget_s / step_s)`` (at least 1)."""
        return max(1, math.ceil(self.multiple * self.budget_s / self.step_s - 1e-9))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (what the run spec stores; ``multiple`` only when not 1)."""
        d = {"budget_s": self.budget_s, "device": self.device, "step_s": self.step_s,
             "images_per_step": self.images_per_step}  # fmt: skip
        return d | ({"multiple": self.multiple} if self.multiple != 1 else {})


def _step_key(model: str, resolution: int, kwargs: dict[str, Any], device: DeviceProfile) -> str:
    """The key a configuration's reference step is remembered under (a checkpoint does not change the step)."""
    from importlib.metadata import version

    counted = {k: v for k, v in kwargs.items() if k != "init_from"}
    return json.dumps([model, resolution, counted, device.label, version("torch")], sort_keys=True, default=str)


def count_ahead(
    budget: dict[str, Any], suite: dict[str, Any], rows: list[tuple[str, dict[str, Any]]], cost_cache: Path | None
) -> None:  # fmt: skip
    """Count, two processes at a time where two CPUs are free, the steps of the rows (model, kwargs) not yet
    remembered, into ``cost_cache``; :func:`compute_budget` then reads them one by one. A row whose count
    fails is left to :func:`compute_budget`, which reports it."""
    from bench.training.threads import usable_cpus

    if cost_cache is None or len(rows) < 2 or usable_cpus() < 2:
        return
    try:
        device = compute_device(str(budget.get("compute_device", suite.get("reference_gpu"))))
    except BenchError:
        return  # compute_budget reports it, with the row
    resolution = suite["resolution"]
    todo = [(m, resolution, kw) for m, kw in rows
            if not names.is_remembered("compute-steps", _step_key(m, resolution, kw, device))]  # fmt: skip
    if len(todo) < 2:
        return
    from bench.tools.stepcost import count_in_two

    count_in_two(todo, cost_cache)


def _reference_step(
    model: str, resolution: int, kwargs: dict[str, Any], device: DeviceProfile, cost_cache: Path | None
) -> tuple[float, int]:
    """(reference seconds per step, real images per step) of a configuration: counted once (importing the
    models), then remembered until a source file or the torch version changes (:mod:`bench.plan.names`),
    so a suite with a compute budget loads without torch."""
    key = _step_key(model, resolution, kwargs, device)

    def count() -> list[float | int]:
        from bench.tools.stepcost import step_cost  # counting needs the models

        cost = step_cost(model, resolution, kwargs, cost_cache)
        return [reference_step_seconds(cost, device), cost.batch]

    step_s, images = names.remembered("compute-steps", key, count)
    return float(step_s), int(images)


def compute_budget(
    budget: dict[str, Any], suite: dict[str, Any], model: str, kwargs: dict[str, Any], cost_cache: Path | None,
    multiple: float = 1.0,
) -> dict[str, Any]:  # fmt: skip
    """A suite's compute budget for one model as RunSpec fields: its iterations (pinned) and the
    conversion. ``budget`` and ``suite`` are the suite's validated tables; ``multiple``: the row's
    ``budget_multiple``."""
    device = compute_device(str(budget.get("compute_device", suite.get("reference_gpu"))))
    try:
        step_s, images = _reference_step(model, suite["resolution"], kwargs, device, cost_cache)
    except (BenchError, ValueError, TypeError) as exc:
        raise BenchError(f"kwargs: {exc}; fix them (the step is counted to convert the compute budget)") from None
    plan = ComputePlan(float(budget["compute_seconds"]), device.label, step_s, images, float(multiple))
    return {"budget_hours": None, "max_iters": plan.iterations, "max_kimg": None, "budget_pin": "iters",
            "compute": plan.to_dict()}  # fmt: skip


def budget_multiple(spec: Any) -> float:
    """The multiple of its suite's compute budget a run spec trains at (1 for every other budget)."""
    c = getattr(spec, "compute", None)
    return float(c.get("multiple", 1.0)) if c else 1.0


def compute_fields(spec: Any) -> dict[str, Any]:
    """A run spec's compute budget as display fields (all None without one): the budget in
    reference-device seconds (scaled, times the row's multiple), the multiple, the device, seconds per
    iteration, and the planned iterations, kimg and images (what ``--dry-run``, ``status`` and the report
    show)."""
    c = getattr(spec, "compute", None)
    if not c:
        return dict.fromkeys(("compute_budget_s", "compute_multiple", "compute_device", "compute_step_s",
                              "planned_iterations", "planned_kimg", "planned_images"))  # fmt: skip
    iters = spec.iteration_limit(c["images_per_step"])[0]
    return {
        "compute_budget_s": c["budget_s"] * budget_multiple(spec) * spec.budget_scale,
        "compute_multiple": budget_multiple(spec), "compute_device": c["device"],
        "compute_step_s": c["step_s"], "planned_iterations": iters,
        "planned_kimg": iters * c["images_per_step"] / 1000.0, "planned_images": iters * c["images_per_step"],
    }  # fmt: skip


def compute_used(spec: Any, step: int) -> float | None:
    """Reference-device seconds of compute ``step`` iterations used (None without a compute budget)."""
    c = getattr(spec, "compute", None)
    return step * c["step_s"] if c else None
