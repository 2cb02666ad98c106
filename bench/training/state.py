"""What one training run holds while it runs, and its progress figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import models
from bench.data.sampler import Sampler
from bench.data.store import Dataset
from bench.plan.budget import Budget
from bench.plan.compute import compute_used
from bench.plan.specs import RunSpec
from bench.results.runs import RunPaths
from bench.training.options import LoopOptions


@dataclass
class Run:
    """Everything one training run holds while it runs (no behaviour beyond bookkeeping)."""

    spec: RunSpec
    paths: RunPaths
    opts: LoopOptions
    model: models.GANModel
    dataset: Dataset
    budget: Budget
    sampler: Sampler
    detectors: Any = None  # bench.metrics.DetectorCache, created at the first evaluation
    log: Any = None  # bench.training.tblog.TensorBoardLog with --tensorboard, else None


def progress_row(run: Run) -> dict[str, Any]:
    """Step, kimg, the fraction of the budget used, training time so far (local and reference
    GPU-hours) and, under a compute budget, the compute used (reference-device seconds of the
    step-cost model, :mod:`bench.plan.compute`): state and eval rows carry it."""
    step = run.budget.iters
    secs = run.budget.elapsed()
    return {
        "step": step,
        "budget_fraction": run.budget.fraction(),
        "kimg": step * run.model.reals_per_step / 1000.0,  # real images shown
        "train_seconds": secs,
        "gpu_hours": secs * run.spec.num_gpus / 3600.0,
        "ref_gpu_hours": secs * run.spec.num_gpus * run.spec.speed_ratio / 3600.0,
        "compute": compute_used(run.spec, step),
    }
