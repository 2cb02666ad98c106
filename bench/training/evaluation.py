"""Evaluations during training: snapshot, sample grid and metric rows at each evaluation point
(a fraction of the budget), under a forked RNG so they never move the training RNG.

Every run is also evaluated before its first step, at point :data:`STEP0` (0.0): the untrained
generator (or a finetune's starting weights), as normal rows with ``eval_point`` 0.0. A metric that
measures something scores the trained generator clearly better (:mod:`bench.report.gain`); the
report's selection never picks this point.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

import models
from bench.errors import NonFiniteImages
from bench.results.io import atomic_write_bytes, read_jsonl
from bench.results.runs import (
    append_eval_row,
    cache_dirs,
    eval_key,
    eval_row,
    eval_rows,
    record_event,
)
from bench.training.checkpoints import save_checkpoint, save_snapshot
from bench.training.device import isolated_rng, sync
from bench.training.progress import CellProgress
from bench.training.state import Run, progress_row

STEP0 = 0.0  # the evaluation point before the first training step


def sample_grid(model: models.GANModel, n: int, seed: int) -> bytes:
    """PNG bytes of a grid of ``n`` EMA samples from fixed latents."""
    from bench.report.draw import grid_png

    z = torch.randn(n, model.z_dim, generator=torch.Generator().manual_seed(seed)).to(model.device)
    imgs = model.generate(z, ema=True).float()
    if not bool(torch.isfinite(imgs).all()):  # clamped, NaN would pass as a black grid
        raise NonFiniteImages("the generator returned NaN or infinite pixels for the sample grid")
    return grid_png(imgs.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu().numpy())


def evaluate_point(run: Run, point: float) -> list[dict[str, Any]]:
    """Snapshot + grid + metrics at eval point ``point`` (a budget fraction); rows appended and returned."""
    from bench import metrics

    step = run.budget.iters
    save_checkpoint(run.paths, run.spec, run.model, run.budget, run.sampler)
    snap = save_snapshot(run.paths, run.spec, run.model, step)
    grid = run.paths.samples / f"grid-{step:08d}.png"
    _, metric_cache = cache_dirs(run.opts.out)
    t0 = time.perf_counter()
    with isolated_rng(run.model.device):
        png = sample_grid(run.model, run.spec.grid_size, seed=run.spec.seed + 1)
        atomic_write_bytes(grid, png)
        if run.detectors is None:
            run.detectors = metrics.DetectorCache()
        rows = metrics.evaluate(
            run.model, run.dataset, run.spec.protocols, detector=run.spec.detector, pr_detector=run.spec.pr_detector,
            device=run.model.device, cache_dir=metric_cache, seed=run.spec.seed, detectors=run.detectors,
        )  # fmt: skip
    base = progress_row(run) | {
        "eval_point": point,
        "snapshot": str(snap.relative_to(run.paths.root)),
        "grid": str(grid.relative_to(run.paths.root)),
        "time": time.time(),
    }
    have = {eval_key(r) for r in eval_rows(run.paths)}  # rows written before a crash are not repeated
    for row in rows:
        row = eval_row(base, row)
        if eval_key(row) not in have:
            append_eval_row(run.paths, row)
    record_event(run.paths, "evaluated", step=step, point=point, seconds=time.perf_counter() - t0)
    if run.log is not None:
        run.log.evaluation(step, rows, png)
    remember_report_images(run, snap)
    return rows


def remember_report_images(run: Run, snap: Path) -> None:
    """Put what the report would compute from this snapshot into its image cache (:mod:`bench.report.imagery`),
    from the model in memory: the latent interpolation strip and the draw of training images. Then the
    report of a suite trained here builds no generator (and imports no torch for a built-in dataset). Only
    for a CPU run in fp32, uncompiled: its model draws the strip the report would draw from the snapshot (on
    the CPU), bitwise (tested for every registered model)."""
    spec = run.spec
    if run.model.device.type != "cpu" or spec.precision != "fp32" or spec.compile:
        return
    from bench.report import imagery

    with isolated_rng(run.model.device):
        imagery.strip_images(run.paths.root, str(snap.relative_to(run.paths.root)), model=run.model)
        imagery.training_images(
            spec.dataset, spec.resolution, spec.grid_size, {run.dataset.sha256}, lambda: run.dataset
        )


def pending_points(run: Run) -> list[float]:
    """The evaluation points (budget fractions) not yet evaluated, per the run's events; :data:`STEP0`
    too when the run evaluates at all, only while it is at step 0 (a run resumed from a later step cannot
    score its untrained generator)."""
    done = {e.get("point") for e in read_jsonl(run.paths.events) if e.get("event") == "evaluated"}
    step0 = [STEP0] if run.spec.eval_fractions and run.budget.iters == 0 else []
    points = {*run.spec.eval_fractions, *step0}
    return [p for p in sorted(points) if p not in done]


def reached(run: Run, pending: list[float], force_final: bool = False) -> list[float]:
    """The pending evaluation points the budget has reached."""
    frac = 1.0 if force_final else run.budget.fraction()
    return [p for p in pending if p <= frac + 1e-12]


def maybe_evaluate(
    run: Run, pending: list[float], progress: CellProgress | None = None, force_final: bool = False
) -> list[float]:
    """Evaluate at the largest pending point already reached (its line on ``progress``, timed with
    the snapshot and checkpoint it writes); returns the points still pending."""
    due = reached(run, pending, force_final)
    if not due:
        return pending
    run.budget.pause()
    sync(run.model.device)
    t0 = time.perf_counter()
    rows = evaluate_point(run, max(due))
    if progress is not None:
        progress.evaluation(run.budget.iters, run.budget.fraction(), rows, time.perf_counter() - t0)
    run.budget.resume()
    return [p for p in pending if p not in due]
