"""The one generic training loop: model step, budget, evaluations, checkpoints, sample grids.

The loop knows nothing model-specific: it asks :mod:`models` for a model by name and calls the
:class:`models.GANModel` interface. A run is resumable at any point: checkpoints hold the model,
its optimizers, the step, every RNG state and the budget clock, and are written atomically.
"""

from __future__ import annotations

import contextlib
import io
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import models
from bench.budget import Budget
from bench.data import Dataset, load_dataset
from bench.envinfo import environment
from bench.errors import BenchError, CheckpointError
from bench.io import atomic_torch_save, atomic_write_bytes, atomic_write_json, read_jsonl, remove_stale_temps
from bench.lock import LockBusy, RunLock
from bench.results import (
    RunPaths,
    append_eval_row,
    eval_key,
    eval_rows,
    load_spec,
    read_state,
    record_event,
    write_state,
)
from bench.specs import RunSpec

CKPT_FORMAT = 1
KEEP_CHECKPOINTS = 2  # newest training checkpoints kept (the older one is the fallback)


@dataclass
class LoopOptions:
    """Runtime options that do not change what a run computes (not part of the run id)."""

    out: Path  # results folder (runs/, cache/)
    device: str = "auto"  # 'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1', ...
    progress: bool = True  # show a tqdm bar
    log_every: int = 10  # read losses to the host every N steps (the only sync in the loop)
    checkpoint_every_s: float = 900.0  # training seconds between periodic checkpoints
    should_stop: Callable[[], bool] | None = None  # polled every step; True = checkpoint and return


def resolve_device(name: str) -> torch.device:
    """'auto' → cuda if available else cpu; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise BenchError(f"--device {name}: not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return dev


def training_device(name: str) -> torch.device:
    """:func:`resolve_device` plus the backend settings training runs with (cuDNN autotuning on
    CUDA), so that training, ``calibrate`` and ``perf`` time the same configuration."""
    device = resolve_device(name)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def cache_dirs(out: Path) -> tuple[Path, Path]:
    """(dataset cache, metric cache) under the results folder."""
    return Path(out) / "cache" / "datasets", Path(out) / "cache" / "metrics"


# ----------------------------------------------------------------------------------------------
# Data: the whole set lives on the device (or, when too large, memory-mapped on the host); an
# epoch-permutation sampler, flips on the device.


DEVICE_DATA_SHARE = 0.25  # a dataset taking more of the accelerator's memory stays on the host


def place_dataset(images: Tensor, device: torch.device, capacity: int | None = None) -> Tensor:
    """``images`` on ``device``, or left on the host (memory-mapped from the cache) when they would take
    more than :data:`DEVICE_DATA_SHARE` of ``capacity`` bytes (default: the CUDA device's memory).

    The few-shot sets take megabytes and live on the device; FFHQ-70k at 1024 px takes 220 GB and
    is read a batch at a time instead (see :class:`Sampler`). The batches are the same either way.
    """
    if device.type == "cuda" and capacity is None:
        capacity = torch.cuda.get_device_properties(device).total_memory
    if capacity is not None and images.numel() * images.element_size() > DEVICE_DATA_SHARE * capacity:
        return images
    return images.to(device)


class Sampler:
    """Infinite sampler over dataset indices (reshuffled each epoch), with x-flips; resumable.

    ``images`` live on ``device`` (default: theirs) or on the host (:func:`place_dataset`), in which
    case each batch is gathered on the host and copied over (pinned, asynchronously to CUDA).
    """

    def __init__(self, images: Tensor, batch_size: int, seed: int, device: torch.device | None = None) -> None:
        self.images = images  # uint8 (N, 3, R, R), on the device or the host
        self.device = images.device if device is None else torch.device(device)
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(len(images), generator=self.gen)
        self.pos = 0

    def _indices(self) -> Tensor:
        out = []
        need = self.batch_size
        while need:
            if self.pos == len(self.perm):
                self.perm, self.pos = torch.randperm(len(self.images), generator=self.gen), 0
            take = self.perm[self.pos : self.pos + need]
            self.pos += len(take)
            need -= len(take)
            out.append(take)
        return torch.cat(out)

    def next(self) -> Tensor:
        """A batch (B, 3, R, R) float in [-1, 1] on the device, randomly x-flipped.

        Gathers and flips the uint8 images (the flip flags are drawn on the host, so the rows to
        flip are known without a device sync), then converts once: a few kernels per batch.
        """
        idx = self._indices()
        flip = torch.rand(len(idx), generator=self.gen) < 0.5
        dev = self.device
        x = self.images.index_select(0, idx.to(self.images.device, non_blocking=True))  # uint8 (B, 3, R, R)
        if x.device != dev:  # host-resident dataset: copy the batch over
            x = (x.pin_memory() if dev.type == "cuda" else x).to(dev, non_blocking=True)
        rows = flip.nonzero().flatten().to(dev, non_blocking=True)
        x.index_copy_(0, rows, x.index_select(0, rows).flip(3))
        return x.float().div_(127.5).sub_(1.0)

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self.perm, self.pos = state["perm"].clone(), int(state["pos"])


# ----------------------------------------------------------------------------------------------
# Checkpoints and snapshots.


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
    ``fused_adam`` (every optimizer's fused kernel; a rounding change that training can amplify)
    and ``compile`` (the family compiles what its step runs, :meth:`GANModel.compile_for_training`)."""
    if spec.fused_adam:
        model.use_fused_adam()
    if spec.compile:
        model.compile_for_training()


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


# ----------------------------------------------------------------------------------------------
# Sample grids and evaluation (both under fork_rng: they never move the training RNG).


def sample_grid(model: models.GANModel, n: int, seed: int) -> bytes:
    """PNG bytes of a grid of ``n`` EMA samples from fixed latents."""
    from PIL import Image
    from torchvision.utils import make_grid

    z = torch.randn(n, model.z_dim, generator=torch.Generator().manual_seed(seed)).to(model.device)
    imgs = model.generate(z, ema=True).float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    grid = make_grid(imgs.cpu(), nrow=max(1, int(n**0.5)), padding=2)
    buf = io.BytesIO()
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    return buf.getvalue()


@contextlib.contextmanager
def _isolated_rng(device: torch.device) -> Iterator[None]:
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class _Run:
    """Everything one training run holds while it runs (no behaviour beyond bookkeeping)."""

    spec: RunSpec
    paths: RunPaths
    opts: LoopOptions
    model: models.GANModel
    dataset: Dataset
    budget: Budget
    sampler: Sampler
    detectors: Any = None  # bench.metrics.DetectorCache, created at the first evaluation


def _progress_row(run: _Run) -> dict[str, Any]:
    step = run.budget.iters
    secs = run.budget.elapsed()
    return {
        "step": step,
        "kimg": step * run.model.batch_size / 1000.0,
        "train_seconds": secs,
        "gpu_hours": secs * run.spec.num_gpus / 3600.0,
        "ref_gpu_hours": secs * run.spec.num_gpus * run.spec.speed_ratio / 3600.0,
    }


def evaluate_point(run: _Run, point: float) -> None:
    """Snapshot + grid + metrics at eval point ``point`` (a budget fraction); rows appended."""
    from bench import metrics

    step = run.budget.iters
    save_checkpoint(run.paths, run.spec, run.model, run.budget, run.sampler)
    snap = save_snapshot(run.paths, run.spec, run.model, step)
    grid = run.paths.samples / f"grid-{step:08d}.png"
    _, metric_cache = cache_dirs(run.opts.out)
    t0 = time.perf_counter()
    with _isolated_rng(run.model.device):
        atomic_write_bytes(grid, sample_grid(run.model, run.spec.grid_size, seed=run.spec.seed + 1))
        if run.detectors is None:
            run.detectors = metrics.DetectorCache()
        rows = metrics.evaluate(
            run.model, run.dataset, run.spec.protocols, detector=run.spec.detector,
            device=run.model.device, cache_dir=metric_cache, seed=run.spec.seed, detectors=run.detectors,
        )  # fmt: skip
    base = _progress_row(run) | {
        "eval_point": point,
        "snapshot": str(snap.relative_to(run.paths.root)),
        "grid": str(grid.relative_to(run.paths.root)),
        "time": time.time(),
    }
    have = {eval_key(r) for r in eval_rows(run.paths)}  # rows written before a crash are not repeated
    for row in rows:
        row = base | {("eval_seed" if k == "seed" else k): v for k, v in row.items()}
        if eval_key(row) not in have:
            append_eval_row(run.paths, row)
    record_event(run.paths, "evaluated", step=step, point=point, seconds=time.perf_counter() - t0)


def _pending_points(run: _Run) -> list[float]:
    done = {e.get("point") for e in read_jsonl(run.paths.events) if e.get("event") == "evaluated"}
    return [p for p in sorted(run.spec.eval_fractions) if p not in done]


def _reached(run: _Run, pending: list[float], force_final: bool = False) -> list[float]:
    """The pending evaluation points the budget has reached."""
    frac = 1.0 if force_final else run.budget.fraction()
    return [p for p in pending if p <= frac + 1e-12]


def _maybe_evaluate(run: _Run, pending: list[float], force_final: bool = False) -> list[float]:
    """Evaluate at the largest pending point already reached; returns the points still pending."""
    reached = _reached(run, pending, force_final)
    if not reached:
        return pending
    run.budget.pause()
    _sync(run.model.device)
    evaluate_point(run, max(reached))
    run.budget.resume()
    return [p for p in pending if p not in reached]


def _nonfinite(losses: dict[str, Tensor]) -> Tensor:
    return torch.stack([~torch.isfinite(v) for v in losses.values()]).any()


def _weights_finite(model: models.GANModel) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _train_steps(run: _Run, bar: Any) -> str:
    """The hot loop. Returns 'done', 'diverged' or 'interrupted'."""
    autocast = torch.autocast(run.model.device.type, dtype=torch.bfloat16, enabled=run.spec.precision == "bf16")
    pending = _maybe_evaluate(run, _pending_points(run))  # a crash during an evaluation: redo it first
    last_ckpt = run.budget.elapsed()
    bad = torch.zeros((), dtype=torch.bool, device=run.model.device)
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}  # steps each loss was reported in (lazy regularisers: not every step)
    run.budget.resume()
    while not run.budget.exhausted():
        real = run.sampler.next()
        with autocast:
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
            _report_progress(run, bar, {k: float(v) / counts[k] for k, v in sums.items()})
            sums, counts = {}, {}
        ckpt_due = run.budget.elapsed() - last_ckpt >= run.opts.checkpoint_every_s
        stop = run.opts.should_stop is not None and run.opts.should_stop()
        if (ckpt_due or stop or _reached(run, pending)) and (bool(bad) or not _weights_finite(run.model)):
            run.budget.pause()  # NaN/inf since the last log step: nothing of it is saved or scored
            return "diverged"
        pending = _maybe_evaluate(run, pending)
        if ckpt_due:
            _checkpoint(run)
            last_ckpt = run.budget.elapsed()
        if stop:
            run.budget.pause()
            return "interrupted"
    run.budget.pause()
    if bool(bad) or not _weights_finite(run.model):
        return "diverged"
    _maybe_evaluate(run, pending, force_final=True)
    return "done"


def _checkpoint(run: _Run) -> None:
    run.budget.pause()
    _sync(run.model.device)
    save_checkpoint(run.paths, run.spec, run.model, run.budget, run.sampler)
    write_state(run.paths, status="running", **_progress_row(run))
    run.budget.resume()


def _report_progress(run: _Run, bar: Any, losses: dict[str, float]) -> None:
    if bar is None:
        return
    frac = run.budget.fraction()
    bar.n = int(frac * 1000)
    left = (run.spec.budget_seconds - run.budget.elapsed()) if run.spec.budget_seconds else None
    post = {k: f"{v:.3g}" for k, v in losses.items()}
    post["step"] = run.budget.iters
    if left is not None:
        post["left"] = f"{max(0.0, left):.0f}s"
    bar.set_postfix(post, refresh=False)
    bar.refresh()


def write_spec(
    paths: RunPaths, spec: RunSpec, model: models.GANModel, dataset: Dataset, extra: dict[str, Any] | None = None
) -> None:
    """spec.json: the resolved spec, the model's resolved hyperparameters, data and environment
    (``extra`` joins the resolved part, e.g. where imported weights came from)."""
    resolved = {
        "model_hparams": model.hparams,
        "params": {
            "generator": sum(p.numel() for p in model.generator.parameters()),
            "discriminator": sum(p.numel() for p in model.discriminator.parameters()),
        },
        "budget_seconds": spec.budget_seconds,
        "batch_size": model.batch_size,
        "dataset": {k: dataset.manifest.get(k) for k in ("source", "count", "resize_filter", "sha256")},
        **(extra or {}),
    }
    doc = {"run_id": spec.run_id, "spec": spec.to_dict(), "resolved": resolved}
    atomic_write_json(paths.spec, doc | {"environment": environment(model.device), "created": time.time()})


def _open_run(spec: RunSpec, opts: LoopOptions, paths: RunPaths) -> _Run:
    device = training_device(opts.device)
    data_cache, _ = cache_dirs(opts.out)
    dataset = load_dataset(spec.dataset, spec.resolution, cache_dir=data_cache)
    model = build_model(spec, device)
    if not paths.spec.exists():
        write_spec(paths, spec, model, dataset)
    apply_speed_modes(model, spec)
    _remove_stale_temps(paths)
    for shared in cache_dirs(opts.out):  # caches other runs share: old temporaries only
        remove_stale_temps(shared)
    budget = Budget(spec.budget_seconds, spec.max_iters)
    sampler = Sampler(place_dataset(dataset.images, device), model.batch_size, seed=spec.seed, device=device)
    load_latest_checkpoint(paths, spec, model, budget, sampler)
    return _Run(spec, paths, opts, model, dataset, budget, sampler)


def _remove_stale_temps(paths: RunPaths) -> None:
    """Delete temporary files of writes cut short by a crash (only the lock holder writes here)."""
    for folder in (paths.root, paths.checkpoints, paths.snapshots, paths.samples):
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def train(spec: RunSpec, opts: LoopOptions, paths: RunPaths) -> str:
    """Train (or resume) one run to the end of its budget. Returns the final status."""
    run = _open_run(spec, opts, paths)
    write_state(paths, status="running", **_progress_row(run), error=None)
    bar = None
    if opts.progress:
        from tqdm import tqdm

        bar = tqdm(total=1000, desc=spec.run_id[:48], unit="‰", leave=True, dynamic_ncols=True)
    try:
        outcome = _train_steps(run, bar)
    finally:
        if bar is not None:
            bar.close()
    if outcome == "diverged":
        record_event(paths, "diverged", step=run.budget.iters)
        write_state(paths, status="diverged", **_progress_row(run))
        return "diverged"
    _sync(run.model.device)
    save_checkpoint(paths, spec, run.model, run.budget, run.sampler)
    status = "done" if outcome == "done" else "todo"
    write_state(paths, status=status, interrupted=outcome == "interrupted", **_progress_row(run))
    return status


def run_cell(spec: RunSpec, opts: LoopOptions) -> str:
    """Run one cell under its lock: skip if done/diverged, resume if started, record failures.

    Returns the cell's status afterwards ('done', 'diverged', 'todo' when interrupted, 'running'
    when another process holds the lock, 'failed' on an exception, which is recorded and re-raised).
    """
    paths = RunPaths.of(opts.out, spec)
    if read_state(paths)["status"] in ("done", "diverged"):
        return read_state(paths)["status"]
    try:
        lock = RunLock(paths.root).__enter__()
    except LockBusy:
        return "running"
    try:
        if read_state(paths)["status"] in ("done", "diverged"):
            return read_state(paths)["status"]
        return train(spec, opts, paths)
    except KeyboardInterrupt:
        write_state(paths, status="todo", interrupted=True)
        raise
    except BaseException as exc:
        write_state(paths, status="failed", error=f"{type(exc).__name__}: {exc}")
        atomic_write_bytes(paths.root / "error.txt", traceback.format_exc().encode())
        raise
    finally:
        lock.__exit__(None, None, None)
