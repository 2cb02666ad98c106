"""The pre-run checks every launch path runs, before anything is trained or submitted: the device
exists and is the accelerator the suite assumes, the results folder is writable, each cell's model
builds (on the meta device), each dataset is there with enough images, and each detector loads."""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError, DataError
from bench.plan.suites import Cell, Suite
from bench.results.io import check_writable_dir


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
    where it runs (``device``; None: elsewhere), built on the meta device: no memory, no compute."""
    import models
    from bench.training.device import resolve_device
    from bench.training.modelsize import check_fits

    where = None if device is None else resolve_device(device)
    seen = set()
    for spec in (c.spec for c in cells):
        key = (spec.model, spec.resolution, repr(spec.model_kwargs))
        if key in seen:
            continue
        seen.add(key)
        try:
            model = check_fits(spec.model, spec.resolution, spec.model_kwargs, where, training=True)
        except (models.ModelConfigError, TypeError, ValueError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            fix = "fix --init-from" if "init_from" in first else f"fix models.{spec.model}.kwargs"
            raise BenchError(f"{suite.path}: models.{spec.model}.kwargs: {first}; {fix}") from None
        if spec.cuda_graphs:
            try:
                model.use_cuda_graphs()
            except models.ModelConfigError as exc:
                raise BenchError(f"{suite.path}: models.{spec.model}.cuda_graphs: {exc}; set it false") from None


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


def check_detectors(cells: list[Cell]) -> None:
    """Load each detector the cells will need once, so a missing weights file stops the run before training."""
    from bench.metrics import PROTOCOLS, detector_for, get_detector

    needed = {
        (detector_for(p, c.spec.detector, c.spec.pr_detector), PROTOCOLS[p].mode)
        for c in cells
        for p in c.spec.protocols
    }
    for name, mode in sorted(needed):
        get_detector(name, "cpu", mode=mode)
