"""The pre-run checks every launch path runs, before anything is trained or submitted: the device
exists and is the accelerator the suite assumes, the results folder is writable, each cell's model
builds (on the meta device), each dataset is there with enough images, and each detector loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import BenchError, DataError
from bench.plan import names
from bench.plan.specs import RunSpec
from bench.plan.suites import Cell, Suite
from bench.results.io import check_writable_dir

if TYPE_CHECKING:
    import torch


def preflight(suite: Suite, cells: list[Cell], out: Path, *, device: str | None, launcher: str = "local") -> None:
    """Raise a one-line :class:`BenchError` at the first problem; ``device`` None: cells run elsewhere."""
    if device is not None:
        check_device(cells, device)
    check_writable_dir(out, "--out")
    check_models(suite, cells, device)  # the suite's own mistakes first, whatever the cluster's state
    if launcher == "slurm":
        from bench.launchers.jobs import check_slurm

        check_slurm()  # sbatch there, a controller answering
    check_detectors(cells)
    check_data(cells, out)  # last: it may build a dataset's cache


def check_device(cells: list[Cell], device: str) -> None:
    """``--device`` exists here and is the accelerator the cells' suite assumes (or explicitly the CPU)."""
    from bench.training.device import check_accelerator, resolve_device

    resolved = resolve_device(device)
    for c in cells:
        check_accelerator(c.spec, device, resolved)


def check_models(suite: Suite, cells: list[Cell], device: str | None = None) -> None:
    """Fail before anything is written when a cell's model kwargs are bad or its training state cannot fit
    where it runs (``device``; None: elsewhere), built on the meta device: no memory, no compute. A
    configuration that passed is remembered until a source file changes (:mod:`bench.plan.names`), per
    device and memory size."""
    where, limit = None, None
    if device is not None:  # the cells train here: torch is loading anyway
        from bench.training.device import resolve_device
        from bench.training.modelsize import memory_limit

        where = resolve_device(device)
        limit = memory_limit(where)[0]
    seen = set()
    for spec, row in ((c.spec, c.key or c.spec.model) for c in cells):
        key = json.dumps([spec.model, spec.resolution, spec.model_kwargs, spec.cuda_graphs, str(where), limit],
                         sort_keys=True)  # fmt: skip
        if key in seen:
            continue
        seen.add(key)
        if "init_from" in spec.model_kwargs:  # reads a checkpoint, which may change without a source change
            _build_on_meta(suite, spec, row, where)
        else:
            names.remembered("builds", key, lambda spec=spec, row=row: _build_on_meta(suite, spec, row, where))


def _build_on_meta(suite: Suite, spec: RunSpec, row: str, where: torch.device | None) -> bool:
    """Build ``spec``'s model (of the suite's row ``row``) on the meta device and check that it fits ``where``;
    a one-line BenchError when it fails."""
    import models
    from bench.training.modelsize import check_fits

    try:
        model = check_fits(spec.model, spec.resolution, spec.model_kwargs, where, training=True)
    except (models.ModelConfigError, TypeError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        fix = "fix --init-from" if "init_from" in first else f"fix models.{row}.kwargs"
        raise BenchError(f"{suite.path}: models.{row}.kwargs: {first}; {fix}") from None
    if spec.cuda_graphs:
        try:
            model.use_cuda_graphs()
        except models.ModelConfigError as exc:
            raise BenchError(f"{suite.path}: models.{row}.cuda_graphs: {exc}; set it false") from None
    return True


def check_data(cells: list[Cell], out: Path) -> None:
    """Fail before any training when a cell's dataset is missing (with the prepare command)."""
    from bench.data.catalog import load_dataset
    from bench.data.folders import FOLDER_PREFIX, folder_root
    from bench.data.images import images_from_files, list_image_files
    from bench.data.paper import PAPER_DATASETS, check_prepared
    from bench.data.store import MIN_IMAGES
    from bench.results.runs import cache_dirs

    data_cache, _ = cache_dirs(out)
    for name, res, how in sorted({(c.spec.dataset, c.spec.resolution, c.spec.resize_filter) for c in cells}):
        if name in PAPER_DATASETS:
            count = check_prepared(name, res, data_cache, how)
        elif (
            name.startswith(FOLDER_PREFIX)
            and 0 < len(files := list_image_files(root := folder_root(name))) < MIN_IMAGES
        ):
            # too few to train on: decoded (a bad file is named) but not cached, refused below (no files: load says so)
            count = len(images_from_files(files, root, res, skip_bad=False, resize_filter=how)[0])
        else:  # builds the cache once, before training
            count = len(load_dataset(name, res, cache_dir=data_cache, resize_filter=how).images)
        if count < MIN_IMAGES:
            raise DataError(f"dataset {name!r} has {count} image; a GAN needs at least {MIN_IMAGES}: add images")


def missing_before_run(cells: list[Cell], out: Path) -> list[str]:
    """What ``run`` would stop at here, each with its fix: paper datasets not prepared (with the exact
    ``prepare`` command) and detector weights that would have to be downloaded; loads, builds and
    downloads nothing (a dry run's pre-run checks)."""
    problems = []
    paper = names.registry()["paper_counts"]
    for name, res, how in sorted({(c.spec.dataset, c.spec.resolution, c.spec.resize_filter) for c in cells}):
        if name in paper:
            from bench.data.paper import check_prepared
            from bench.results.runs import cache_dirs

            try:
                check_prepared(name, res, cache_dirs(out)[0], how)
            except DataError as exc:
                problems.append(str(exc))
    for name, mode in sorted(_detectors_needed(cells)):
        if name != "inception-random" and not name.startswith(names.TORCHSCRIPT_PREFIX):
            from bench.metrics.detectors import weights_problem

            if (why := weights_problem(name, mode)) is not None:
                problems.append(why)
    return problems


def _detectors_needed(cells: list[Cell]) -> set[tuple[str, str]]:
    """(detector, clean-fid mode) of every protocol the cells evaluate (bench.metrics.detector_for's choice)."""
    protocols = names.registry()["protocols"]
    return {
        (c.spec.pr_detector if protocols[p]["kind"] == "pr" else c.spec.detector, protocols[p]["mode"])
        for c in cells
        for p in c.spec.protocols
    }


def check_detectors(cells: list[Cell]) -> None:
    """Load each detector the cells will need once, so a missing weights file stops the run before training."""
    from bench.metrics import get_detector

    for name, mode in sorted(_detectors_needed(cells)):
        get_detector(name, "cpu", mode=mode)
