"""Training-step timings of ``perf``: the real loop against the model step alone, the harness's own
cost (a no-work model), and the named regions and optimizer steps inside a step.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import models
from bench.data.sampler import Sampler
from bench.data.store import Dataset
from bench.plan.budget import Budget
from bench.plan.specs import RunSpec
from bench.results.runs import RunPaths
from bench.tools.perf.settings import PerfSettings
from bench.tools.perf.timing import clocks
from bench.training.device import autocast, sync
from bench.training.loop import train_steps
from bench.training.options import LoopOptions
from bench.training.state import Run


def perf_spec(name: str, kwargs: dict[str, Any], settings: PerfSettings, iters: int) -> RunSpec:
    """A RunSpec for the loop: no evaluations, an iteration cap only, the settings' speed modes."""
    return RunSpec(
        suite="perf", model=name, dataset=settings.dataset, resolution=settings.resolution, seed=settings.seed,
        model_kwargs=kwargs, max_iters=iters, protocols=(), eval_fractions=(), precision=settings.precision,
        compile=settings.compile, fused_adam=settings.fused_adam, cuda_graphs=settings.cuda_graphs,
        channels_last=settings.channels_last,
    )  # fmt: skip


def time_loop(
    model: models.GANModel, spec: RunSpec, dataset: Dataset, images: Tensor, steps: int, warmup: int, log_every: int
) -> tuple[list[float], list[float]]:
    """Per-step (wall, process-CPU) seconds of the real training loop over ``model``, steps warmup.. timed.

    The loop's ``should_stop`` hook, polled at each step's end, synchronises the device and
    stamps the clocks; the step starts from a fresh budget (step indices 0, 1, ...).
    """
    device = model.device
    stamps: list[tuple[float, float]] = []

    def stamp() -> bool:
        sync(device)
        stamps.append((time.perf_counter(), time.process_time()))
        return False

    with tempfile.TemporaryDirectory(prefix="perf-run-") as tmp:
        opts = LoopOptions(
            out=Path(tmp), device=str(device), progress=False, log_every=log_every,
            checkpoint_every_s=math.inf, should_stop=stamp,
        )  # fmt: skip
        sampler = Sampler(images, model.reals_per_step, seed=spec.seed)
        run = Run(spec, RunPaths(Path(tmp)), opts, model, dataset, Budget(None, warmup + steps), sampler)
        train_steps(run, None)
    wall = [b[0] - a[0] for a, b in zip(stamps[warmup - 1 : -1], stamps[warmup:], strict=True)]
    cpu = [b[1] - a[1] for a, b in zip(stamps[warmup - 1 : -1], stamps[warmup:], strict=True)]
    return wall, cpu


def time_interleaved(
    model: models.GANModel, spec: RunSpec, dataset: Dataset, images: Tensor, real: Tensor, settings: PerfSettings
) -> dict[str, list[float]]:
    """Alternate one step of the real loop and one ``model.train_step(real, i)`` at each index i.

    Returns wall and CPU seconds per timed step (indices ``warmup ..``) for both. Adjacent pairs
    see the same machine load, so their difference is the harness's cost plus noise. The loop step
    runs ``_train_steps`` on a budget at iteration i with a cap of i + 1, the Sampler carried over.
    """
    device = model.device
    ends: list[tuple[float, float]] = []
    out: dict[str, list[float]] = {"loop_wall": [], "loop_cpu": [], "model_wall": [], "model_cpu": []}

    def stamp() -> bool:
        ends.append(clocks(device))
        return False

    with tempfile.TemporaryDirectory(prefix="perf-run-") as tmp:
        opts = LoopOptions(
            out=Path(tmp), device=str(device), progress=False, log_every=settings.log_every,
            checkpoint_every_s=math.inf, should_stop=stamp,
        )  # fmt: skip
        sampler = Sampler(images, model.reals_per_step, seed=spec.seed)
        for i in range(settings.warmup + settings.steps):
            run = Run(spec, RunPaths(Path(tmp)), opts, model, dataset, Budget(None, i + 1, iters=i), sampler)
            w0, c0 = clocks(device)
            train_steps(run, None)
            (w1, c1), (w2, c2) = ends[-1], clocks(device)
            with autocast(device, settings.precision):
                model.train_step(real, i)
            w3, c3 = clocks(device)
            if i >= settings.warmup:
                out["loop_wall"].append(w1 - w0)
                out["loop_cpu"].append(c1 - c0)
                out["model_wall"].append(w3 - w2)
                out["model_cpu"].append(c3 - c2)
    return out


class NullModel(models.GANModel):
    """A model whose step does no work: it returns fixed zero losses under the given names."""

    name = "null"

    def __init__(self, loss_names: list[str], batch_size: int, resolution: int, device: torch.device) -> None:
        super().__init__()
        self.batch_size, self.resolution, self.z_dim, self.hparams = batch_size, resolution, 1, {}
        self.generator = nn.Linear(1, 1, device=device)  # only so that .device works
        self.discriminator = self.g_ema = nn.Identity()
        self.loss_names = list(loss_names)
        self.zero = torch.zeros((), device=device)

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        return {k: self.zero for k in self.loss_names}


def time_harness(
    spec: RunSpec, dataset: Dataset, images: Tensor, batch: int, loss_names: list[str], steps: int, log_every: int
) -> tuple[list[float], list[float]]:
    """Per-step (wall, CPU) seconds of the loop over a no-work model: the harness's own cost."""
    null = NullModel(loss_names, batch, spec.resolution, images.device)
    return time_loop(null, spec, dataset, images, steps, warmup=2, log_every=log_every)


def accumulate_time(fn: Callable[..., Any], device: torch.device, totals: dict[str, float]) -> Callable[..., Any]:
    """``fn`` that adds each call's synchronised seconds and count to ``totals``."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        sync(device)
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        sync(device)
        totals["seconds"] += time.perf_counter() - t0
        totals["calls"] += 1
        return out

    return timed


@contextlib.contextmanager
def timed_regions(model: models.GANModel) -> Iterator[dict[str, dict[str, float]]]:
    """Time the named regions of the model's step (``GANModel.region``: DiffAugment, EMA, ...),
    synchronised, while inside. Yields {name: {"seconds": total, "calls": n}}."""
    device, totals = model.device, {}

    @contextlib.contextmanager
    def timer(name: str) -> Iterator[None]:
        entry = totals.setdefault(name, {"seconds": 0.0, "calls": 0})
        sync(device)
        t0 = time.perf_counter()
        yield
        sync(device)
        entry["seconds"] += time.perf_counter() - t0
        entry["calls"] += 1

    model.region_timer = timer
    try:
        yield totals
    finally:
        model.region_timer = None


@contextlib.contextmanager
def timed_optimizers(model: models.GANModel) -> Iterator[dict[str, float]]:
    """Time every ``step`` of the model's optimizers (synchronised) while inside.

    Yields {"seconds": total, "calls": n}; the optimizers' own ``step`` is restored on exit.
    """
    device, totals = model.device, {"seconds": 0.0, "calls": 0}
    opts = list(model.optimizers().values())
    saved = [vars(opt).get("step") for opt in opts]
    try:
        for opt in opts:
            opt.step = accumulate_time(opt.step, device, totals)
        yield totals
    finally:
        for opt, own in zip(opts, saved, strict=True):
            if own is None:
                del opt.step
            else:
                opt.step = own
