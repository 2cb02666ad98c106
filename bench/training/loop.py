"""The one generic training loop: model step, budget, evaluations, checkpoints, progress.

The loop knows nothing model-specific: it calls the :class:`models.GANModel` interface. A run is
resumable at any point: checkpoints hold the model, its optimizers, the step, every RNG state and
the budget clock, and are written atomically.
"""

from __future__ import annotations

import torch
from torch import Tensor

import models
from bench.errors import NonFiniteImages
from bench.plan.specs import RunSpec
from bench.results.envinfo import device_info
from bench.results.runs import RunPaths, record_event, write_state
from bench.training.checkpoints import save_checkpoint
from bench.training.device import autocast, sync
from bench.training.evaluation import maybe_evaluate, pending_points, reached
from bench.training.options import LoopOptions
from bench.training.progress import CellProgress
from bench.training.setup import open_run
from bench.training.state import Run, progress_row
from bench.training.tblog import open_log


def _nonfinite(losses: dict[str, Tensor]) -> Tensor:
    """A 0-dim bool on the device: any loss NaN or infinite (no host sync)."""
    return torch.stack([~torch.isfinite(v) for v in losses.values()]).any()


def _weights_finite(model: models.GANModel) -> bool:
    """Every parameter finite (a host sync: called only before a save or an evaluation)."""
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def train_steps(run: Run, progress: CellProgress | None) -> str:
    """The hot loop. Returns 'done', 'diverged' or 'interrupted'."""
    precision = autocast(run.model.device, run.spec.precision)
    pending = maybe_evaluate(run, pending_points(run), progress)  # a crash during an evaluation: redo it first
    last_ckpt = run.budget.elapsed()
    bad = torch.zeros((), dtype=torch.bool, device=run.model.device)
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}  # steps each loss was reported in (lazy regularisers: not every step)
    run.budget.resume()
    while not run.budget.exhausted():
        real = run.sampler.next()
        with precision:
            losses = run.model.train_step(real, run.budget.iters)
        run.budget.iters += 1
        bad |= _nonfinite(losses)
        for k, v in losses.items():
            sums[k] = sums[k] + v if k in sums else v.clone()
            counts[k] = counts.get(k, 0) + 1
        if run.budget.iters % run.opts.log_every == 0:
            if bool(bad):  # the one host-device sync, every log_every steps
                run.budget.pause()
                return "diverged"
            if progress is not None or run.log is not None:  # perf's loop has neither: no host copies
                _log_losses(run, progress, {k: float(v) / counts[k] for k, v in sums.items()})
            sums, counts = {}, {}
        if progress is not None:
            _move(run, progress)
        ckpt_due = run.budget.elapsed() - last_ckpt >= run.opts.checkpoint_every_s
        stop = run.opts.should_stop is not None and run.opts.should_stop()
        if (ckpt_due or stop or reached(run, pending)) and (bool(bad) or not _weights_finite(run.model)):
            run.budget.pause()  # NaN/inf since the last log step: nothing of it is saved or scored
            return "diverged"
        pending = maybe_evaluate(run, pending, progress)
        if ckpt_due:
            _checkpoint(run)
            last_ckpt = run.budget.elapsed()
        if stop:
            run.budget.pause()
            return "interrupted"
    run.budget.pause()
    if bool(bad) or not _weights_finite(run.model):
        return "diverged"
    maybe_evaluate(run, pending, progress, force_final=True)
    return "done"


def _log_losses(run: Run, progress: CellProgress | None, means: dict[str, float]) -> None:
    """The mean losses since the last log step, to the bar and the TensorBoard log (when there are)."""
    if progress is not None:
        progress.losses = means
    if run.log is not None:
        run.log.losses(run.budget.iters, means)


def _checkpoint(run: Run) -> None:
    """A periodic checkpoint, the clock paused (not charged)."""
    run.budget.pause()
    sync(run.model.device)
    save_checkpoint(run.paths, run.spec, run.model, run.budget, run.sampler)
    write_state(run.paths, status="running", **progress_row(run))
    run.budget.resume()


def _move(run: Run, progress: CellProgress) -> None:
    """The bar to the budget fraction (redrawn at most twice a second)."""
    elapsed = run.budget.elapsed()
    left = run.spec.budget_seconds - elapsed if run.spec.budget_seconds else None
    progress.move(run.budget.fraction(), run.budget.iters, elapsed, left)


def train(spec: RunSpec, opts: LoopOptions, paths: RunPaths) -> str:
    """Train (or resume) one run to the end of its budget. Returns the final status."""
    run = open_run(spec, opts, paths)
    run.log = open_log(opts.tensorboard, paths.root, run.budget.iters)
    write_state(paths, status="running", **progress_row(run), error=None, device=device_info(run.model.device))
    budget = run.budget
    progress = CellProgress(spec, bar=opts.progress, fraction=budget.fraction(), step=budget.iters,
                            elapsed=budget.elapsed())  # fmt: skip
    outcome = "stopped"  # an exception or Ctrl-C
    try:
        outcome = train_steps(run, progress)
    except NonFiniteImages:  # finite weights, NaN or infinite images at an evaluation: nothing to score
        budget.pause()
        outcome = "diverged"
    finally:
        progress.close(outcome, budget.iters, budget.elapsed())
        if run.log is not None:
            run.log.close()
    if outcome == "diverged":
        record_event(paths, "diverged", step=run.budget.iters)
        write_state(paths, status="diverged", **progress_row(run))
        return "diverged"
    sync(run.model.device)
    save_checkpoint(paths, spec, run.model, run.budget, run.sampler)
    status = "done" if outcome == "done" else "todo"
    applied = run.budget.applied()
    write_state(paths, status=status, interrupted=outcome == "interrupted", budget_applied=applied, **progress_row(run))
    return status
