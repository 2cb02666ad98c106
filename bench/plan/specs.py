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
import re
from dataclasses import dataclass, field
from typing import Any

RESOLUTIONS = (32, 64, 128, 256, 512, 1024)  # RunSpec.resolution: px, powers of two
PRECISIONS = ("fp32", "bf16")  # RunSpec.precision: fp32, or bf16 autocast (fp32 master weights)
ACCELERATORS = ("none", "gpu")  # RunSpec.accelerator: what a cell's budget assumes it runs on
# Fields that name where a run lives or runs but not what it computes.
_UNHASHED = ("suite", "accelerator")


# Fields added after run ids were first written, with their defaults: hashed only when set otherwise,
# so the runs made before a field existed keep their ids (and resume).
_HASHED_WHEN_SET = {"fused_adam": False, "pr_detector": "vgg16-fc2", "cuda_graphs": False}


@dataclass(frozen=True)
class RunSpec:
    """One training run, fully resolved.

    Budget: ``budget_hours`` are reference-GPU-hours as the suite states them (None = no time
    limit, then ``max_iters`` must be set); the local training-time limit is
    ``budget_hours * 3600 / speed_ratio * budget_scale * num_gpus`` seconds of training time.
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
    protocols: tuple[str, ...] = ("fid5k_full",)  # metric names (bench.metrics)
    detector: str = "inception-v3"  # feature detector of FID and KID
    pr_detector: str = "vgg16-fc2"  # feature detector of precision/recall (its standard one)
    eval_fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)  # of the budget, when to evaluate
    grid_size: int = 16  # images in each sample grid
    precision: str = "fp32"  # 'fp32' or 'bf16' (autocast); changes numerics
    compile: bool = False  # torch.compile the step; changes numerics slightly
    fused_adam: bool = False  # Adam's fused kernel (~7x faster optimizer step on CPU); rounding differs
    cuda_graphs: bool = False  # the step as one CUDA graph (FastGAN family; capturable Adam: rounding differs)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_kwargs", dict(sorted(self.model_kwargs.items())))
        object.__setattr__(self, "protocols", tuple(self.protocols))
        object.__setattr__(self, "eval_fractions", tuple(float(f) for f in self.eval_fractions))
        for name in ("budget_hours", "speed_ratio", "budget_scale"):  # 1 and 1.0 are the same budget
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))

    @property
    def budget_seconds(self) -> float | None:
        """Local training-time limit in seconds (None when only an iteration cap applies)."""
        if self.budget_hours is None:
            return None
        return self.budget_hours * 3600.0 / self.speed_ratio * self.budget_scale * self.num_gpus

    def hashed_dict(self) -> dict[str, Any]:
        """The fields that determine the result, as plain JSON types."""
        d = dataclasses.asdict(self)
        for k in _UNHASHED:
            d.pop(k)
        for k, default in _HASHED_WHEN_SET.items():
            if d[k] == default:
                d.pop(k)
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
        """Inverse of :meth:`to_dict`; unknown keys raise TypeError."""
        return cls(**d)
