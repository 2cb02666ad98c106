"""Opening a run: its dataset, model (speed modes applied), spec file, budget clock and sampler,
resumed from the newest valid checkpoint."""

from __future__ import annotations

import time
from typing import Any

import models
from bench.data.catalog import load_dataset
from bench.data.sampler import Sampler, place_dataset
from bench.data.store import Dataset
from bench.errors import DataError
from bench.plan.budget import Budget
from bench.plan.specs import RunSpec
from bench.results.envinfo import environment
from bench.results.io import atomic_write_json, remove_stale_temps
from bench.results.runs import RunPaths, cache_dirs
from bench.training.checkpoints import apply_speed_modes, build_model, load_latest_checkpoint
from bench.training.device import check_accelerator, training_device
from bench.training.options import LoopOptions
from bench.training.state import Run


def write_spec(
    paths: RunPaths, spec: RunSpec, model: models.GANModel, dataset: Dataset, extra: dict[str, Any] | None = None
) -> None:
    """spec.json: the resolved spec, the model's resolved hyperparameters, data and environment
    (``extra`` joins the resolved part, e.g. where imported weights came from)."""
    resolved = {
        "model_hparams": model.hparams,
        "params": model.parameter_counts(),
        "budget_seconds": spec.budget_seconds,
        "budget_iterations": spec.iteration_limit(model.reals_per_step)[0],
        "batch_size": model.batch_size,
        "reals_per_step": model.reals_per_step,
        "dataset": {k: dataset.manifest.get(k) for k in ("source", "count", "resize_filter", "sha256")},
        **(extra or {}),
    }
    doc = {"run_id": spec.run_id, "spec": spec.to_dict(), "resolved": resolved}
    atomic_write_json(paths.spec, doc | {"environment": environment(model.device), "created": time.time()})


def open_run(spec: RunSpec, opts: LoopOptions, paths: RunPaths) -> Run:
    """The run of ``spec``, resumed from its newest valid checkpoint when there is one."""
    device = training_device(opts.device, deterministic=opts.deterministic)
    check_accelerator(spec, opts.device, device)  # before anything of the run is written
    data_cache, _ = cache_dirs(opts.out)
    dataset = load_dataset(spec.dataset, spec.resolution, cache_dir=data_cache, resize_filter=spec.resize_filter)
    _check_fingerprint(spec, dataset)
    model = build_model(spec, device, training=True)
    if not paths.spec.exists():
        source = {"model_module": models.model_info(spec.model).module, "plugins": list(opts.plugins)}
        write_spec(paths, spec, model, dataset, source)
    apply_speed_modes(model, spec)
    _remove_stale_temps(paths)
    for shared in cache_dirs(opts.out):  # caches other runs share: old temporaries only
        remove_stale_temps(shared)
    iters, unit = spec.iteration_limit(model.reals_per_step)
    budget = Budget(spec.budget_seconds, iters, unit or "iters")
    images = place_dataset(dataset.images, device, capacity=opts.data_capacity)
    sampler = Sampler(images, model.reals_per_step, seed=spec.seed, device=device)
    load_latest_checkpoint(paths, spec, model, budget, sampler)
    return Run(spec, paths, opts, model, dataset, budget, sampler)


def _check_fingerprint(spec: RunSpec, dataset: Dataset) -> None:
    """A ``folder:PATH`` run trains on the folder content its run id was made from, or not at all."""
    now = str(dataset.manifest.get("fingerprint", ""))[: len(spec.data_fingerprint or "")]
    if spec.data_fingerprint and now != spec.data_fingerprint:
        raise DataError(
            f"dataset {spec.dataset!r} changed after run {spec.run_id} was planned (listing {now}, planned "
            f"{spec.data_fingerprint}); run the command again: the changed folder gets a new run"
        )


def _remove_stale_temps(paths: RunPaths) -> None:
    """Delete temporary files of writes cut short by a crash (only the lock holder writes here)."""
    for folder in (paths.root, paths.checkpoints, paths.snapshots, paths.samples):
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
