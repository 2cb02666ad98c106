"""Checkpoints (full training state, atomic, the newest two kept) and snapshots (weights only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import models
from bench.data.sampler import Sampler
from bench.errors import CheckpointError
from bench.plan.budget import Budget
from bench.plan.specs import RunSpec
from bench.results.io import atomic_torch_save
from bench.results.runs import (
    RunPaths,
    load_spec,
    record_event,
)

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
    """Write the full training state atomically; keep the newest :data:`KEEP_CHECKPOINTS`."""
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


def _check_ckpt(ckpt: dict[str, Any], spec: RunSpec, path: Path) -> None:
    if ckpt.get("model_name") != spec.model or ckpt.get("resolution") != spec.resolution:
        raise CheckpointError(
            f"{path}: checkpoint is for model {ckpt.get('model_name')!r} at {ckpt.get('resolution')} px, "
            f"not {spec.model!r} at {spec.resolution} px; move it away or use the matching run"
        )


def load_latest_checkpoint(
    paths: RunPaths, spec: RunSpec, model: models.GANModel, budget: Budget, sampler: Sampler
) -> int | None:
    """Restore the newest loadable checkpoint; corrupt ones are recorded and skipped.

    Returns the restored step, or None when there is no usable checkpoint.
    """
    for path in sorted(paths.checkpoints.glob("ckpt-*.pt"), reverse=True):
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated / corrupt file: fall back to the previous one
            record_event(paths, "corrupt_checkpoint", path=path.name, error=f"{type(exc).__name__}: {exc}")
            continue
        _check_ckpt(ckpt, spec, path)
        model.load_state_dict(ckpt["model"])
        model.load_optimizer_state(ckpt["optim"])
        budget.load_state_dict(ckpt["budget"])
        sampler.load_state_dict(ckpt["sampler"])
        _set_rng_state(ckpt["rng"], model.device)
        record_event(paths, "resume", step=ckpt["step"], checkpoint=path.name)
        return int(ckpt["step"])
    return None


def save_snapshot(paths: RunPaths, spec: RunSpec, model: models.GANModel, step: int) -> Path:
    """Weights only (G, D, EMA), for re-scoring, sample grids and interpolations."""
    path = paths.snapshots / f"snap-{step:08d}.pt"
    snap = {"format": CKPT_FORMAT, "model_name": spec.model, "resolution": spec.resolution, "step": step}
    atomic_torch_save(path, snap | {"model": model.state_dict()})
    return path


def build_model(spec: RunSpec, device: torch.device) -> models.GANModel:
    """The registered model for ``spec``, seeded by ``spec.seed``, on ``device``."""
    torch.manual_seed(spec.seed)
    return models.get_model(spec.model, resolution=spec.resolution, **spec.model_kwargs).to(device)


def apply_speed_modes(model: models.GANModel, spec: RunSpec) -> None:
    """The spec's opt-in speed modes that act on the model (bf16 autocast is applied by the loop):
    ``fused_adam`` (every optimizer's fused kernel; a rounding change that training can amplify),
    ``compile`` (the family compiles what its step runs, :meth:`GANModel.compile_for_training`) and
    ``cuda_graphs`` (the step captured once and replayed, :meth:`GANModel.use_cuda_graphs`)."""
    if spec.fused_adam:
        model.use_fused_adam()
    if spec.compile:
        model.compile_for_training()
    if spec.cuda_graphs:
        model.use_cuda_graphs()


def load_snapshot_model(
    run_dir: Path, snapshot: str | None = None, device: str | torch.device = "cpu"
) -> models.GANModel:
    """A run's model with the weights of ``snapshot`` (a file name or path; default: newest)."""
    paths = RunPaths(Path(run_dir))
    spec = load_spec(paths.root)
    snaps = sorted(paths.snapshots.glob("snap-*.pt"))
    if snapshot is None and not snaps:
        raise CheckpointError(f"{paths.snapshots}: no snapshots; train the run first")
    path = Path(snapshot) if snapshot else snaps[-1]
    if not path.is_absolute() and not path.exists():
        path = paths.root / path if (paths.root / path).exists() else paths.snapshots / path.name
    try:
        snap = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such snapshot; see {paths.snapshots}") from None
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable snapshot ({type(exc).__name__}); pick another") from None
    _check_ckpt(snap, spec, path)
    model = build_model(spec, torch.device(device))
    model.load_state_dict(snap["model"])
    model.eval()
    return model
