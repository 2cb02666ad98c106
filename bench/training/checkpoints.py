"""Checkpoints (full training state, atomic, the newest two kept) and snapshots (weights only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import models
from bench.data.sampler import Sampler
from bench.errors import BenchError, CheckpointError
from bench.files import regular_file
from bench.plan.budget import Budget
from bench.plan.specs import RunSpec
from bench.results.io import atomic_torch_save
from bench.results.runs import (
    RunPaths,
    load_spec,
    record_event,
)
from bench.training.integrity import checkpoint_problem, header_problem, state_problem
from bench.training.modelsize import check_fits_remembered, meta_model

CKPT_FORMAT = 1
KEEP_CHECKPOINTS = 2  # newest training checkpoints kept (the older one is the fallback)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(paths: RunPaths, spec: RunSpec, model: models.GANModel, budget: Budget, sampler: Sampler) -> Path:
    """Write the full training state atomically; keep the newest :data:`KEEP_CHECKPOINTS` (a resume has set
    aside every checkpoint it could not restore, so the ones kept are ones that load)."""
    step = budget.iters
    ckpt = {
        "format": CKPT_FORMAT,
        "run_id": spec.run_id,
        "model_name": spec.model,
        "resolution": spec.resolution,
        "step": step,
        "budget": budget.state_dict(),
        "model": model.state_dict(),
        "optim": model.optimizer_state(),
        "rng": _rng_state(model.device),
        "sampler": sampler.state_dict(),
    }
    path = paths.checkpoints / f"ckpt-{step:08d}.pt"
    atomic_torch_save(path, ckpt)
    for old in sorted(paths.checkpoints.glob("ckpt-*.pt"))[:-KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)
    return path


def _check_owner(doc: Any, spec: RunSpec, path: Path) -> None:
    """A checkpoint of another model, resolution or run is a misplaced file, not a damaged one: refuse it."""
    if not isinstance(doc, dict) or not {"model_name", "resolution"} <= doc.keys():
        return  # not a checkpoint at all: header_problem says what is missing
    if doc["model_name"] != spec.model or doc["resolution"] != spec.resolution:
        raise CheckpointError(
            f"{path}: checkpoint is for model {doc.get('model_name')!r} at {doc.get('resolution')} px, "
            f"not {spec.model!r} at {spec.resolution} px; move it away or use the matching run"
        )
    if doc.get("run_id", spec.run_id) != spec.run_id:
        raise CheckpointError(
            f"{path}: checkpoint of run {doc['run_id']!r}, not {spec.run_id!r}; move it away or use the matching run"
        )


def _read(path: Path) -> tuple[Any, str | None]:
    """A torch file loaded weights-only, or why it cannot be (a FIFO or device is refused unread)."""
    try:
        return torch.load(regular_file(path), map_location="cpu", weights_only=True), None
    except Exception as exc:  # truncated, corrupt, a pickle payload, not a file
        return None, f"{type(exc).__name__}: {exc}"


def load_latest_checkpoint(
    paths: RunPaths, spec: RunSpec, model: models.GANModel, budget: Budget, sampler: Sampler
) -> int | None:
    """Restore the newest valid checkpoint. One that cannot be read or restored (corrupt, a list or a
    tensor, keys missing, other widths) is recorded, renamed ``*.pt.corrupt`` (kept, but out of
    retention's count) and skipped; a checkpoint of another model or run raises.

    Returns the restored step, or None when there is no usable checkpoint.
    """
    for path in sorted(paths.checkpoints.glob("ckpt-*.pt"), reverse=True):
        ckpt, problem = _read(path)
        if problem is None:
            _check_owner(ckpt, spec, path)
            problem = header_problem(ckpt) or checkpoint_problem(ckpt, model, sampler)
        if problem is not None:
            record_event(paths, "corrupt_checkpoint", path=path.name, error=problem, moved_to=f"{path.name}.corrupt")
            path.replace(path.with_name(f"{path.name}.corrupt"))
            continue
        model.load_state_dict(ckpt["model"])
        model.load_optimizer_state(ckpt["optim"])
        budget.load_state_dict(ckpt["budget"])
        sampler.load_state_dict(ckpt["sampler"])
        _set_rng_state(ckpt["rng"], model.device)
        record_event(paths, "resume", step=ckpt["step"], checkpoint=path.name)
        return int(ckpt["step"])
    return None


def save_snapshot(paths: RunPaths, spec: RunSpec, model: models.GANModel, step: int) -> Path:
    """Weights only (G, D, EMA), for re-scoring, sample grids and interpolations, with the run's spec (plain
    JSON types): the file alone rebuilds its model (:func:`read_exported`; ``eval --network FILE``)."""
    path = paths.snapshots / f"snap-{step:08d}.pt"
    snap = {"format": CKPT_FORMAT, "model_name": spec.model, "resolution": spec.resolution, "step": step,
            "spec": spec.to_dict()}  # fmt: skip
    atomic_torch_save(path, snap | {"model": model.state_dict()})
    return path


def build_model(spec: RunSpec, device: torch.device, training: bool = False) -> models.GANModel:
    """The registered model for ``spec``, seeded by ``spec.seed``, on ``device``; counted on the meta device
    first (:func:`~bench.training.modelsize.check_fits_remembered`: weights, with ``training`` the training
    state), so a size that cannot fit is one line, not an allocation failure; in the spec's memory layout
    (``channels_last``) wherever it is built, so scoring a snapshot runs the arithmetic its training's
    evaluations ran."""
    check_fits_remembered(spec.model, spec.resolution, spec.model_kwargs, device, training=training)
    torch.manual_seed(spec.seed)
    model = models.get_model(spec.model, resolution=spec.resolution, **spec.model_kwargs).to(device)
    if spec.channels_last:  # the spec's memory layout wherever its model runs (training, scoring, sampling)
        model.use_channels_last()
    return model


def apply_speed_modes(model: models.GANModel, spec: RunSpec) -> None:
    """The spec's opt-in speed modes that act on the model (bf16 autocast is applied by the loop):
    ``fused_adam`` (every optimizer's fused kernel; a rounding change that training can amplify; without
    it, the foreach kernels, bitwise equal to the default on every device: :meth:`GANModel.use_foreach_adam`),
    ``compile`` (the family compiles what its step runs, :meth:`GANModel.compile_for_training`) and
    ``cuda_graphs`` (the step captured once and replayed, :meth:`GANModel.use_cuda_graphs`)."""
    if spec.fused_adam:
        model.use_fused_adam()
    else:
        model.use_foreach_adam()
    if spec.compile:
        model.compile_for_training()
    if spec.cuda_graphs:
        model.use_cuda_graphs()


def read_snapshot(run_dir: Path, snapshot: str | None = None) -> tuple[Path, dict[str, Any]]:
    """A run's snapshot ``snapshot`` (a file name or path; default: the newest), its header checked."""
    paths = RunPaths(Path(run_dir))
    spec = load_spec(paths.root)
    snaps = sorted(paths.snapshots.glob("snap-*.pt"))
    if snapshot is None and not snaps:
        raise CheckpointError(f"{paths.snapshots}: no snapshots; train the run first")
    path = Path(snapshot) if snapshot else snaps[-1]
    if not path.is_absolute() and not path.exists():
        path = paths.root / path if (paths.root / path).exists() else paths.snapshots / path.name
    if not path.exists():
        raise CheckpointError(f"{path}: no such snapshot; see {paths.snapshots}")
    snap, problem = _read(path)
    if problem is None:
        _check_owner(snap, spec, path)
        problem = header_problem(snap)
    if problem is not None:
        raise _unfit(path, problem[:120])
    return path, snap


def read_exported(path: Path) -> tuple[RunSpec, dict[str, Any]]:
    """A snapshot file away from its run folder: (its run's spec, the snapshot), loaded weights-only.

    Snapshots carry their run's spec; an older one without it needs its run folder (the error says so).
    """
    snap, problem = _read(Path(path))
    if problem is None and (problem := header_problem(snap)) is None and not isinstance(snap.get("spec"), dict):
        raise CheckpointError(
            f"{path}: a snapshot without its run's spec (written before snapshots carried it); pass its run "
            "folder, or the snapshot inside it (results/runs/<suite>/<run_id>/snapshots/...)"
        )
    if problem is not None:
        raise CheckpointError(f"{path}: not a snapshot of this harness ({problem[:120]}); pass a snap-*.pt file")
    try:
        spec = RunSpec.from_dict(snap["spec"])
        if not isinstance(spec.dataset, str) or not all(isinstance(k, str) for k in spec.model_kwargs):
            raise TypeError("dataset or model_kwargs of the wrong type")
    except (TypeError, ValueError, AttributeError, BenchError) as exc:
        raise CheckpointError(f"{path}: its spec is not a run spec ({type(exc).__name__}: {exc})") from None
    _check_owner(snap, spec, path)
    return spec, snap


def _unfit(path: Path, problem: str) -> CheckpointError:
    return CheckpointError(f"{path}: unreadable snapshot ({problem}); pick another with --checkpoint")


def check_snapshots(spec: RunSpec, snaps: list[tuple[Path, dict[str, Any]]]) -> None:
    """Every snapshot's weights fit the run's model (compared on the meta device: no memory, no compute)."""
    expected = meta_model(spec.model, spec.resolution, spec.model_kwargs).state_dict()
    for path, snap in snaps:
        if (problem := state_problem(snap["model"], expected)) is not None:
            raise _unfit(path, problem)


def model_from_snapshot(
    spec: RunSpec, snap: dict[str, Any], path: Path, device: str | torch.device = "cpu"
) -> models.GANModel:
    """The run's model with the weights of a snapshot from :func:`read_snapshot`, in eval mode."""
    model = build_model(spec, torch.device(device))
    if (problem := state_problem(snap["model"], model.state_dict())) is not None:
        raise _unfit(path, problem)
    model.load_state_dict(snap["model"])
    return model.eval()


def load_snapshot_model(
    run_dir: Path, snapshot: str | None = None, device: str | torch.device = "cpu"
) -> models.GANModel:
    """A run's model with the weights of ``snapshot`` (a file name or path; default: newest)."""
    path, snap = read_snapshot(run_dir, snapshot)
    return model_from_snapshot(load_spec(Path(run_dir)), snap, path, device)
