"""Frozen run specifications and their content hash (the run id).

A :class:`RunSpec` is one cell of a suite's grid, fully resolved: everything that affects what
a run computes is a field, so ``run_id`` (a hash of the canonical JSON) changes whenever a
result-affecting field changes and stays the same otherwise. ``suite`` (the folder) and
``accelerator`` (what the run is meant to run on) are not hashed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from bench.errors import BenchError
from bench.plan.protocol_names import current, hashed

RESOLUTIONS = (32, 64, 128, 256, 512, 1024)  # RunSpec.resolution: px, powers of two
PRECISIONS = ("fp32", "bf16")  # RunSpec.precision: fp32, or bf16 autocast (fp32 master weights)
# RunSpec.resize_filter: how images are resized to the run's resolution (PIL filters). lanczos is the
# default; bilinear is the official FastGAN code's (torchvision Resize on PIL images, in training and in
# its FID script), so fid2k_fastgan's reference set matches the official evaluation's.
RESIZE_FILTERS = ("lanczos", "bilinear")
PINS = ("iters", "kimg")  # RunSpec.budget_pin: the one limit that applies (deterministic budgets)
ACCELERATORS = ("none", "gpu")  # RunSpec.accelerator: what a cell's budget assumes it runs on
# Fields that name where a run lives or runs, or why its budget is what it is, but not what it computes.
_UNHASHED = ("suite", "accelerator", "budget_source", "compute")


# Fields added after run ids were first written, with their defaults: hashed only when set otherwise,
# so the runs made before a field existed keep their ids (and resume).
_HASHED_WHEN_SET = {
    "fused_adam": False,
    "pr_detector": "vgg16-fc2",
    "resize_filter": RESIZE_FILTERS[0],
    "data_fingerprint": None,
    "max_kimg": None,
    "budget_pin": None,
    "cuda_graphs": False,
    "channels_last": False,
}
# Fields a pinned budget ignores (the time budget and the other cap): not hashed then.
_IGNORED_WHEN_PINNED = {"iters": ("budget_hours", "speed_ratio", "max_kimg"),
                        "kimg": ("budget_hours", "speed_ratio", "max_iters")}  # fmt: skip


MAX_SEED = 2**32 - 1  # numpy's seed range (evaluation latents)
MAX_ITERS = 10**12  # an iteration cap (scaled by budget_scale) beyond any run
MAX_KIMG = 10**9  # a kimg cap (scaled by budget_scale): 10**12 images, beyond any run
MIN_BUDGET_SECONDS = 1e-3  # a time budget that converts to less trains no step (hours x 3600 / ratio x scale)
_POSITIVE = {"speed_ratio": math.inf, "budget_scale": math.inf, "budget_hours": math.inf, "max_kimg": MAX_KIMG}
_COUNTS = {"num_gpus": 1024, "max_iters": MAX_ITERS, "grid_size": 1024}  # integers from 1 to this (max_iters: or None)


def number_problem(value: Any, *, high: float = math.inf, zero_ok: bool = False) -> str | None:
    """Why ``value`` is not a real number, finite, > 0 (>= 0 with ``zero_ok``) and at most ``high``; None when
    it is. The one check of every number the harness reads (flags, suite keys, calibration entries): TOML and
    JSON hold nan, inf, booleans and integers too large for a float, none of which is such a number."""
    want = f"a finite number {'>=' if zero_ok else '>'} 0" + ("" if high == math.inf else f" and at most {high}")
    problem = f"must be {want}, got {value!r:.40}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return problem
    try:
        number = float(value)
    except OverflowError:
        return problem
    return None if (number >= 0 if zero_ok else number > 0) and number <= high and number < math.inf else problem


_TYPES = {"str": str, "int": int, "float": (int, float), "bool": bool, "dict[str, Any]": dict}


def _type_problem(name: str, hint: str, value: Any) -> str | None:
    """Why ``value`` does not fit RunSpec field ``name`` annotated ``hint`` (spec.json is read back from disk)."""
    optional = hint.endswith(" | None")
    base = hint.removesuffix(" | None")
    if value is None:
        return None if optional else f"{name} must not be null"
    if base.startswith("tuple[") and base[6:].split(",")[0] in _TYPES:
        item = _TYPES[base[6:].split(",")[0]]
        ok = isinstance(value, list | tuple) and all(isinstance(v, item) and not isinstance(v, bool) for v in value)
        return None if ok else f"{name} must be a list of {base[6:].split(',')[0]} values, got {value!r:.60}"
    if base not in _TYPES:
        return None  # a type this check does not know: the field's own checks apply
    want = _TYPES[base]
    ok = isinstance(value, want) and (base == "bool" or not isinstance(value, bool))
    if ok and base == "dict[str, Any]":
        ok = all(isinstance(k, str) for k in value)
    return None if ok else f"{name} must be {base.split('[')[0]}{' or null' if optional else ''}, got {value!r:.60}"


def _check_numbers(spec: RunSpec) -> None:
    """Every number that reaches the budget clock, a count or a seed: finite, in range (one-line BenchError);
    the iteration caps also once scaled by ``budget_scale`` (1e308 would overflow them)."""
    for name, high in _POSITIVE.items():
        value = getattr(spec, name)
        if value is not None and (problem := number_problem(value, high=high)) is not None:
            raise BenchError(f"{name} {problem}")
    for name, high in _COUNTS.items():
        value = getattr(spec, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high):
            raise BenchError(f"{name} must be an integer from 1 to {high}, got {value!r}")
    if not isinstance(spec.seed, int) or isinstance(spec.seed, bool) or not 0 <= spec.seed <= MAX_SEED:
        raise BenchError(f"seed must be an integer from 0 to 2**32 - 1, got {spec.seed!r}")
    for name, high in (("max_iters", MAX_ITERS), ("max_kimg", MAX_KIMG)):
        value = getattr(spec, name)
        if value is not None and not value * spec.budget_scale <= high:
            raise BenchError(
                f"{name} {value:g} x budget scale {spec.budget_scale:g} is more than {high:g}; lower the budget scale"
            )


@dataclass(frozen=True)
class RunSpec:
    """One training run, fully resolved.

    Budget: ``budget_hours`` are reference-GPU-hours as the suite states them (None = no time
    limit, then ``max_iters`` or ``max_kimg`` must be set); the local training-time limit is
    ``budget_hours * 3600 / speed_ratio * budget_scale * num_gpus`` seconds of training time.
    ``max_iters`` and ``max_kimg`` (times ``budget_scale``) cap the iterations; every limit given
    applies and the first reached ends the run, unless ``budget_pin`` names the only one that
    applies ('iters' or 'kimg': a deterministic budget; the hours are then shown, not charged).
    ``budget_source`` says where ``speed_ratio`` came from (bench.tools.conversion). ``compute``
    holds a suite's compute budget (:class:`bench.plan.compute.ComputePlan`): ``max_iters`` is then
    its iteration count, pinned; it says why the cap is what it is, so it is not hashed.
    """

    suite: str  # folder name under results/runs/; not hashed
    model: str  # registered model name
    dataset: str  # dataset name (bench.data)
    resolution: int  # px
    seed: int = 0
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # documented builder kwargs
    budget_hours: float | None = None  # reference-GPU-hours; None = iteration cap only
    speed_ratio: float = 1.0  # this device's speed / the reference GPU's (>1: faster here)
    budget_scale: float = 1.0  # multiplies the budget (quick looks, smoke runs)
    num_gpus: int = 1  # GPUs the run uses; the budget is in GPU-hours
    accelerator: str = "none"  # 'gpu': the budget assumes num_gpus CUDA devices per cell; 'none': no assumption
    max_iters: int | None = None  # iteration cap; None = time budget only
    protocols: tuple[str, ...] = ("fid5k_full_clean",)  # metric names (bench.metrics; former names: current ones)
    detector: str = "inception-v3"  # feature detector of FID and KID
    pr_detector: str = "vgg16-fc2"  # feature detector of precision/recall (its standard one)
    eval_fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)  # of the budget, when to evaluate
    grid_size: int = 16  # images in each sample grid
    precision: str = "fp32"  # 'fp32' or 'bf16' (autocast); changes numerics
    compile: bool = False  # torch.compile the step; changes numerics slightly
    fused_adam: bool = False  # Adam's fused kernel (~7x faster optimizer step on CPU); rounding differs
    resize_filter: str = RESIZE_FILTERS[0]  # of the dataset's images to ``resolution`` (RESIZE_FILTERS)
    data_fingerprint: str | None = None  # folder:PATH datasets: their listing's hash (a changed folder is a new run)
    max_kimg: float | None = None  # cap in thousands of real images shown (iterations x reals per step); None = none
    budget_pin: str | None = None  # 'iters' or 'kimg': only that limit applies; None = every limit given
    budget_source: str = ""  # where speed_ratio came from (a bench.tools.conversion code); not hashed
    cuda_graphs: bool = False  # the step as one CUDA graph (FastGAN family; capturable Adam: rounding differs)
    channels_last: bool = False  # 4-D weights and activations in NHWC (GANModel.use_channels_last); rounding differs
    compute: dict[str, Any] | None = None  # a compute budget and its conversion (bench.plan.compute); not hashed

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if problem := _type_problem(f.name, str(f.type), getattr(self, f.name)):
                raise BenchError(problem)
        object.__setattr__(self, "model_kwargs", dict(sorted(self.model_kwargs.items())))
        object.__setattr__(self, "protocols", tuple(current(p) for p in self.protocols))  # checked: strings
        object.__setattr__(self, "eval_fractions", tuple(float(f) for f in self.eval_fractions))
        _check_numbers(self)
        for name in ("budget_hours", "speed_ratio", "budget_scale", "max_kimg"):  # 1 and 1.0: one budget
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        seconds = self.budget_seconds
        if seconds is not None and not MIN_BUDGET_SECONDS <= seconds < math.inf:
            fix = "lower the hours or the budget scale" if seconds > 1 else "raise the hours or the budget scale"
            raise BenchError(
                f"budget of {self.budget_hours:g} h is {seconds:g} local seconds (hours x 3600 / speed_ratio "
                f"x budget_scale x num_gpus; it must be from {MIN_BUDGET_SECONDS:g} s and finite); {fix}"
            )

    @property
    def converted_seconds(self) -> float | None:
        """The reference hours in local training seconds (None without hours), applied or not."""
        if self.budget_hours is None:
            return None
        return self.budget_hours * 3600.0 / self.speed_ratio * self.budget_scale * self.num_gpus

    @property
    def budget_seconds(self) -> float | None:
        """Local training-time limit in seconds (None when only an iteration cap applies)."""
        return None if self.budget_pin else self.converted_seconds

    def iteration_limit(self, batch: int) -> tuple[int | None, str | None]:
        """(iterations, 'iters' or 'kimg'): the tighter of the scaled caps that apply at ``batch`` reals per step."""
        caps = []
        if self.max_iters is not None and self.budget_pin != "kimg":
            caps.append((math.ceil(self.max_iters * self.budget_scale), "iters"))
        if self.max_kimg is not None and self.budget_pin != "iters":
            caps.append((math.ceil(self.max_kimg * self.budget_scale * 1000.0 / batch), "kimg"))
        return min(caps) if caps else (None, None)

    def hashed_dict(self) -> dict[str, Any]:
        """The fields that determine the result, as plain JSON types."""
        d = dataclasses.asdict(self)
        for k in _UNHASHED + _IGNORED_WHEN_PINNED.get(self.budget_pin or "", ()):
            d.pop(k)
        for k, default in _HASHED_WHEN_SET.items():
            if k in d and d[k] == default:
                d.pop(k)
        d["protocols"] = [hashed(p) for p in d["protocols"]]  # a renamed protocol: its first name (ids stay)
        return json.loads(json.dumps(d, sort_keys=True))

    @property
    def run_id(self) -> str:
        """``<model>-<dataset>-<res>-s<seed>-<hash10>``: readable, and unique per resolved spec."""
        blob = json.dumps(self.hashed_dict(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.model}-{self.dataset}")[:60]
        return f"{slug}-{self.resolution}-s{self.seed}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        """All fields, JSON-ready (for spec.json)."""
        return json.loads(json.dumps(dataclasses.asdict(self), sort_keys=True))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        """Inverse of :meth:`to_dict` (a stored spec: former protocol names renamed silently); unknown keys
        raise TypeError."""
        if isinstance(protocols := d.get("protocols"), list | tuple):
            d = d | {"protocols": [current(p, note=False) if isinstance(p, str) else p for p in protocols]}
        return cls(**d)
