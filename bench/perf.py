"""The performance benchmark (``run_bench.py perf``): how close the harness runs to the hardware.

Per model, on one device, in one process:

- training-step time: single steps of the real loop (:func:`bench.train._train_steps`: Sampler,
  autocast, loss sums, divergence flag, budget checks) alternating with ``model.train_step``
  alone on a pre-made batch, at the same step indices; each synchronised, wall clock and process
  CPU time; medians of N after warm-up;
- harness overhead two ways: (loop step - model step) / loop step, per adjacent pair (noisy on a
  shared machine), and directly, by running the loop over a model that does no work (data,
  budget, loss sums, logging only); plus the augmentation and EMA calls inside the model's step,
  timed on one extra step;
- FLOPs per step (``torch.utils.flop_counter``'s formulas, one eager step), achieved FLOP/s and
  its ratio to the device's peak, measured just before with a matmul of the same dtype (best of
  5); on the CPU also per CPU-second, which contention from other processes does not dilute;
- peak memory, images/s, and evaluation throughput (generation + resize + detector features
  through :mod:`bench.metrics`' own path, against the detector alone on ready batches), and the
  reference features: computed once, then read from the cache.

Optionally the naive data path (a torch DataLoader decoding and transforming PIL images every
step, as the official FastGAN code does) is timed beside the Sampler. Results go to
``<out>/perf/perf-<device>-<res>px-<time>.json`` with the environment and settings.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

import models
from bench.budget import Budget
from bench.data import Dataset, load_dataset
from bench.envinfo import environment
from bench.io import atomic_write_json
from bench.results import RunPaths
from bench.specs import RunSpec
from bench.train import (
    LoopOptions,
    Sampler,
    _Run,
    _train_steps,
    apply_speed_modes,
    cache_dirs,
    resolve_device,
    training_device,
)

# Matmul side for the peak-FLOP/s probe, by device type (big enough to saturate, quick enough here).
PEAK_SIDE = {"cpu": 2048, "cuda": 8192}


@dataclass(frozen=True)
class PerfSettings:
    """What one ``perf`` invocation measures (recorded in the JSON)."""

    models: tuple[str, ...] = ("fastgan:recon=mse", "stylegan2-lite", "biggan")  # name[:key=value[:...]]
    resolution: int = 256  # px
    batch: int | None = None  # images per step; None = each model's default
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    steps: int = 3  # timed training steps (median)
    warmup: int = 1  # untimed steps before them (after the FLOP-counting step)
    harness_steps: int = 100  # steps of the no-work model that time the harness alone
    log_every: int = 10  # the loop's loss read-out interval, as in training
    precision: str = "fp32"  # 'fp32' or 'bf16' (autocast), as RunSpec.precision
    compile: bool = False  # torch.compile G and D, as RunSpec.compile
    fused_adam: bool = False  # Adam's fused kernel, as RunSpec.fused_adam
    channels_last: bool = False  # models and data in channels_last memory format
    dataset: str = "shapes"  # images the Sampler (and the naive path) draw from
    eval_images: int | None = None  # generated images through the detector; None = 5000 on GPU, 64 on CPU
    detector: str = "inception-v3"  # falls back to inception-random (same network) when offline
    eval_protocol: str = "fid5k_full"  # protocol whose resize mode / BN mode the eval path uses
    naive_data: bool = False  # also time the naive DataLoader + PIL data path
    naive_workers: int = 0  # DataLoader workers of the naive path
    seed: int = 0
    out: Path = Path("results")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


# ----------------------------------------------------------------------------------------------
# Timing primitives.


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def summarize(values: list[float]) -> dict[str, float | int | None]:
    """Median, mean, min, max and count of a list of timings (None when empty)."""
    if not values:
        return {"median": None, "mean": None, "min": None, "max": None, "n": 0}
    return {
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def clocks(device: torch.device) -> tuple[float, float]:
    """(wall, process CPU) seconds now, after the device's queued work."""
    sync(device)
    return time.perf_counter(), time.process_time()


def time_calls(fn: Callable[[int], Any], n: int, warmup: int, device: torch.device) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds of ``fn(i)`` for i = warmup .. warmup+n-1, each synchronised; 0..warmup-1 untimed."""
    wall, cpu = [], []
    for i in range(warmup + n):
        w0, c0 = clocks(device)
        fn(i)
        w1, c1 = clocks(device)
        if i >= warmup:
            wall.append(w1 - w0)
            cpu.append(c1 - c0)
    return wall, cpu


def peak_matmul(device: torch.device, dtype: torch.dtype, side: int | None = None, reps: int = 5) -> dict[str, Any]:
    """Peak FLOP/s of a square (side^3) matmul of ``dtype``: the best of ``reps`` (the least disturbed).

    The same GEMM runs twice: as ``torch.mm`` (the BLAS: MKL on the CPU, cuBLAS) and as a 1x1
    convolution (oneDNN / cuDNN), since the two libraries reach different speeds on some CPUs
    (MKL's matmul on AMD runs at about half of oneDNN's); the peak is the faster one. ``flops`` is
    by wall clock; on the CPU ``flops_per_cpu_s`` divides by process CPU time instead (FLOPs per
    CPU-second: what the cores do while they run this process, whatever else the machine runs).
    """
    side = side or PEAK_SIDE.get(device.type, 2048)
    a = torch.randn(side, side, device=device).to(dtype)
    b = torch.randn(side, side, device=device).to(dtype)
    x = a.view(1, side, 32, side // 32)  # side positions, side channels
    w = b.view(side, side, 1, 1)
    flop = 2.0 * side**3
    out: dict[str, Any] = {"dtype": str(dtype), "side": side}
    for name, fn in (("mm", lambda _: torch.mm(a, b)), ("conv1x1", lambda _: torch.nn.functional.conv2d(x, w))):
        wall, cpu = time_calls(fn, reps, warmup=1, device=device)
        per_cpu = flop / min(cpu) if device.type == "cpu" and min(cpu) > 0 else None
        out[name] = {"flops": flop / min(wall), "flops_per_cpu_s": per_cpu}
    best = max(("mm", "conv1x1"), key=lambda k: out[k]["flops_per_cpu_s"] or out[k]["flops"])
    return out | {"best": best, "flops": out[best]["flops"], "flops_per_cpu_s": out[best]["flops_per_cpu_s"]}


class _FlopCount(TorchDispatchMode):
    """Sums ``torch.utils.flop_counter``'s per-op FLOP formulas over the ops it sees.

    ``FlopCounterMode`` itself also tracks modules, and its tracker fails on some models
    (a module called under ``no_grad`` with a view of a parameter); the totals are the same.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        rule = flop_registry.get(func._overloadpacket)
        if rule is not None:
            self.total += int(rule(*args, **kwargs, out_val=out))
        return out


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs (multiply-add = 2) of the matmuls and convolutions ``fn`` runs, forward and backward."""
    with _FlopCount() as counter:
        fn()
    return counter.total


# ----------------------------------------------------------------------------------------------
# Memory.


def _reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # Linux: "5" resets the process's peak RSS (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory(device: torch.device) -> dict[str, Any]:
    """Peak bytes since the last reset: CUDA allocator peak, or the process's peak RSS on the CPU."""
    if device.type == "cuda":
        return {"bytes": int(torch.cuda.max_memory_allocated(device)), "kind": "cuda_max_allocated"}
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return {"bytes": int(line.split()[1]) * 1024, "kind": "process_peak_rss"}
    return {"bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "kind": "process_max_rss"}


# ----------------------------------------------------------------------------------------------
# Models and the loop.


def perf_spec(name: str, kwargs: dict[str, Any], settings: PerfSettings, iters: int) -> RunSpec:
    """A RunSpec for the loop: no evaluations, an iteration cap only, the settings' speed modes."""
    return RunSpec(
        suite="perf", model=name, dataset=settings.dataset, resolution=settings.resolution, seed=settings.seed,
        model_kwargs=kwargs, max_iters=iters, protocols=(), eval_fractions=(), precision=settings.precision,
        compile=settings.compile, fused_adam=settings.fused_adam,
    )  # fmt: skip


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The loop's autocast context for ``precision``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


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
        sampler = Sampler(images, model.batch_size, seed=spec.seed)
        run = _Run(spec, RunPaths(Path(tmp)), opts, model, dataset, Budget(None, warmup + steps), sampler)
        _train_steps(run, None)
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
        sampler = Sampler(images, model.batch_size, seed=spec.seed)
        for i in range(settings.warmup + settings.steps):
            run = _Run(spec, RunPaths(Path(tmp)), opts, model, dataset, Budget(None, i + 1, iters=i), sampler)
            w0, c0 = clocks(device)
            _train_steps(run, None)
            (w1, c1), (w2, c2) = ends[-1], clocks(device)
            with autocast_for(device, settings.precision):
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


# ----------------------------------------------------------------------------------------------
# Data paths.


def write_png_folder(images: Tensor, folder: Path) -> list[Path]:
    """Write uint8 (N, 3, R, R) images as PNG files; returns their paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        path = folder / f"{i:05d}.png"
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(path)
        paths.append(path)
    return paths


class _ImageFiles(torch.utils.data.Dataset):
    """Image files decoded with PIL and transformed on every access, as the official FastGAN loader."""

    def __init__(self, paths: list[Path], resolution: int) -> None:
        from torchvision import transforms

        self.paths = paths
        self.transform = transforms.Compose([
            transforms.Resize((resolution, resolution)),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
        ])  # fmt: skip

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor:
        from PIL import Image

        with Image.open(self.paths[i]) as img:
            return self.transform(img.convert("RGB"))


def time_data_paths(
    images: Tensor, batch: int, device: torch.device, steps: int, workers: int, seed: int, channels_last: bool
) -> dict[str, Any]:
    """Seconds per batch of the Sampler (on-device uint8 set) and of the naive PIL DataLoader path."""
    sampler = Sampler(images.to(device), batch, seed=seed)
    ours, _ = time_calls(lambda _: sampler.next(), steps, warmup=2, device=device)
    with tempfile.TemporaryDirectory(prefix="perf-png-") as tmp:
        files = _ImageFiles(write_png_folder(images.cpu(), Path(tmp)), images.shape[-1])
        loader = torch.utils.data.DataLoader(
            files, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
            pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed),
            persistent_workers=workers > 0,
        )  # fmt: skip

        def batches() -> Iterator[Tensor]:
            while True:
                yield from loader

        it = batches()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        naive, _ = time_calls(lambda _: next(it).to(device, non_blocking=True, memory_format=fmt), steps, 2, device)
    s_ours, s_naive = summarize(ours), summarize(naive)
    return {
        "sampler_s": s_ours,
        "naive_s": s_naive,
        "naive_workers": workers,
        "naive_source": f"PNG files at {images.shape[-1]} px, decoded + Resize/Flip/ToTensor/Normalize per image",
        "naive_over_sampler": s_naive["median"] / s_ours["median"],
    }


# ----------------------------------------------------------------------------------------------
# Evaluation throughput.


_DETECTORS: dict[tuple[str, str, str], tuple[Any, str | None]] = {}


def load_detector(name: str, device: torch.device, mode: str) -> tuple[Any, str | None]:
    """(detector, note): ``name``, or inception-random (same network, random weights) when it cannot
    load offline, with a note saying so; loaded once per process."""
    from bench.errors import OfflineError
    from bench.metrics import get_detector

    key = (name, str(device), mode)
    if key not in _DETECTORS:
        try:
            _DETECTORS[key] = get_detector(name, device, mode), None
        except OfflineError as exc:
            note = f"{name} unavailable ({exc}); timed inception-random"
            _DETECTORS[key] = get_detector("inception-random", device, mode), note
    return _DETECTORS[key]


def measure_eval(model: models.GANModel, settings: PerfSettings, device: torch.device, n: int) -> dict[str, Any]:
    """Images/s of generation + resize + detector (bench.metrics' path) vs the detector alone.

    The detector alone runs on ready (B, 3, 299, 299) float batches already on the device;
    the full path is ``featurize(generated_batches(...))``, exactly what ``evaluate`` runs.
    Generation alone and resize alone are timed too, to name the bottleneck, with the FLOPs per
    image of generator and detector: where both share one device, the path cannot beat
    generation and detection one after the other (``serial_bound_ips``).
    """
    from bench.metrics import features
    from bench.metrics.protocols import PROTOCOLS, sampling_for

    p = PROTOCOLS[settings.eval_protocol]
    det, note = load_detector(settings.detector, device, p.mode)
    transform = features.image_transform(p.mode, p.pre_resize)
    batch = features.DETECTOR_BATCH
    gen_kw = dict(
        seed=settings.seed, device=device, ema=True, truncation=p.truncation, bn=p.bn_mode,
        batch=sampling_for(p, model.sampling)[1],
    )  # fmt: skip

    def gen() -> list[Tensor]:
        return list(features.generated_batches(model, n, **gen_kw))

    sync(device)
    t0 = time.perf_counter()
    quantized = gen()
    sync(device)
    gen_s = time.perf_counter() - t0
    side = transform(quantized[0][0].permute(1, 2, 0).numpy()).shape[-1]
    ready = torch.rand(min(batch, n), 3, side, side, device=device) * 255
    det(ready)  # warm-up (cudnn autotuning, lazy init)
    z = torch.randn(2, model.z_dim, device=device)
    gen_flops = count_flops(lambda: model.generate(z, ema=True, truncation=p.truncation)) / 2
    det_flops = count_flops(lambda: det(ready[:2])) / 2
    reps = max(3, math.ceil(n / len(ready)))
    det_times, _ = time_calls(lambda _: det(ready), reps, warmup=0, device=device)
    det_ips = len(ready) / statistics.median(det_times)
    t0 = time.perf_counter()
    features.featurize(iter(quantized), _NoDetector(), transform)
    resize_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    feats = features.featurize(features.generated_batches(model, n, **gen_kw), det, transform)
    full_s = time.perf_counter() - t0
    return {
        "images": n,
        "detector": det.name,
        "detector_note": note,
        "protocol": settings.eval_protocol,
        "mode": p.mode,
        "feature_dim": int(feats.shape[1]),
        "detector_ips": det_ips,
        "pipeline_ips": n / full_s,
        "generation_ips": n / gen_s,
        "resize_ips": n / resize_s,
        "pipeline_over_detector": (n / full_s) / det_ips,
        # one device does both: generating and detecting each image, one after the other, bounds the path
        "serial_bound_ips": 1.0 / (gen_s / n + 1.0 / det_ips),
        "pipeline_over_serial_bound": (n / full_s) * (gen_s / n + 1.0 / det_ips),
        "generator_flops_per_image": gen_flops,
        "detector_flops_per_image": det_flops,
        # the path's time beyond generating and detecting (quantize, resize, copies), as a share
        "pipeline_overhead_share": 1.0 - (gen_s + n / det_ips) / full_s,
    }


def measure_reference_cache(dataset: Dataset, settings: PerfSettings, device: torch.device) -> dict[str, Any]:
    """Seconds of two successive reference-feature requests: the second must be a cache hit."""
    from bench.metrics import features
    from bench.metrics.protocols import PROTOCOLS

    p = PROTOCOLS[settings.eval_protocol]
    det, _ = load_detector(settings.detector, device, p.mode)
    _, cache = cache_dirs(settings.out)
    path = features.reference_cache_path(dataset, det, p.mode, p.pre_resize, cache)
    cached_before = path.is_file()
    seconds = []
    for _ in range(2):
        t0 = time.perf_counter()
        features.reference_features(dataset, det, p.mode, p.pre_resize, cache)
        seconds.append(time.perf_counter() - t0)
    return {"images": len(dataset.images), "cache_file": str(path), "cached_before": cached_before,
            "first_s": seconds[0], "second_s": seconds[1]}  # fmt: skip


class _NoDetector:
    """Stands in for a detector to time the resize path alone: returns one zero feature per image."""

    def __call__(self, images: Tensor) -> Any:
        import numpy as np

        return np.zeros((images.shape[0], 1), dtype=np.float32)


# ----------------------------------------------------------------------------------------------
# One model, then the whole run.


def build_perf_model(
    name: str, kwargs: dict[str, Any], settings: PerfSettings, device: torch.device
) -> models.GANModel:
    """The registered model, seeded, on ``device`` (channels_last when the settings ask)."""
    torch.manual_seed(settings.seed)
    model = models.get_model(name, resolution=settings.resolution, **kwargs).to(device)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def measure_model(
    entry: str, settings: PerfSettings, device: torch.device, dataset: Dataset, images: Tensor
) -> dict[str, Any]:
    """Every training and evaluation figure of one ``--models`` entry (see the module docstring).

    Step indices: the FLOP-counting step and the attribution step are index 1; the timed steps
    are ``warmup ..`` after ``0 .. warmup-1``, the same for the loop and the model alone, so that
    lazily regularised models (StyleGAN2: R1 every 16, path length every 4 steps) compare like
    with like.
    """
    name, kwargs = models.parse_entry(entry)
    kwargs = kwargs | ({"batch_size": settings.batch} if settings.batch is not None else {})
    model = build_perf_model(name, kwargs, settings, device)
    real = Sampler(images, model.batch_size, seed=settings.seed + 1).next()
    row: dict[str, Any] = {"model": entry, "name": name, "kwargs": kwargs, "batch": model.batch_size}
    row["params"] = {"generator": sum(p.numel() for p in model.generator.parameters()),
                     "discriminator": sum(p.numel() for p in model.discriminator.parameters())}  # fmt: skip
    _reset_peak_memory(device)
    losses: dict[str, Tensor] = {}

    def step_one() -> None:
        with autocast_for(device, settings.precision):
            losses.update(model.train_step(real, 1))

    row["flops_per_step"] = count_flops(step_one)  # eager, before any speed mode
    spec = perf_spec(name, kwargs, settings, settings.warmup + settings.steps)
    apply_speed_modes(model, spec)
    if settings.compile:
        step_one()  # compiles; untimed
    with timed_regions(model) as extras, timed_optimizers(model) as optim:
        step_one()
    row["in_step"], row["optimizer_step_s"] = extras, optim["seconds"]
    peak = row["peak_matmul"] = peak_matmul(device, torch.bfloat16 if settings.precision == "bf16" else torch.float32)
    t = time_interleaved(model, spec, dataset, images, real, settings)
    row["peak_memory"] = peak_memory(device)
    harness_wall, harness_cpu = time_harness(
        spec, dataset, images, model.batch_size, sorted(losses), settings.harness_steps, settings.log_every
    )
    pairs = [(lw - mw) / lw for lw, mw in zip(t["loop_wall"], t["model_wall"], strict=True)]
    pairs_cpu = [(lc - mc) / lc for lc, mc in zip(t["loop_cpu"], t["model_cpu"], strict=True) if lc > 0]
    row |= {
        "loop_step_s": summarize(t["loop_wall"]), "model_step_s": summarize(t["model_wall"]),
        "harness_step_s": summarize(harness_wall), "loop_step_cpu_s": summarize(t["loop_cpu"]),
        "model_step_cpu_s": summarize(t["model_cpu"]), "harness_step_cpu_s": summarize(harness_cpu),
        "overhead_share_diff": summarize(pairs), "overhead_share_diff_cpu": summarize(pairs_cpu),
    }  # fmt: skip
    loop, mod, harness = (row[k]["median"] for k in ("loop_step_s", "model_step_s", "harness_step_s"))
    in_step = sum(v["seconds"] for v in extras.values())
    row |= {
        "images_per_s": model.batch_size / loop,
        "achieved_flops": row["flops_per_step"] / mod,
        "peak_fraction": row["flops_per_step"] / mod / peak["flops"],
        "overhead_share_direct": harness / loop,
        "in_step_share": in_step / loop,
        "outside_model_share": (harness + in_step) / loop,
        "optimizer_share": optim["seconds"] / loop,  # part of the model's step (Adam), not of the harness
    }
    if peak["flops_per_cpu_s"]:
        per_cpu = row["flops_per_step"] / row["model_step_cpu_s"]["median"]
        row |= {"achieved_flops_per_cpu_s": per_cpu, "peak_fraction_cpu": per_cpu / peak["flops_per_cpu_s"]}
    n_eval = settings.eval_images if settings.eval_images is not None else (5000 if device.type == "cuda" else 64)
    if n_eval > 0:
        try:
            row["eval"] = measure_eval(model, settings, device, n_eval)
        except Exception as exc:  # the benchmark reports what it could not measure and goes on
            row["eval"] = {"error": f"{type(exc).__name__}: {exc}"}
    return row


def _cpu_model() -> str:
    """The CPU's model name (Linux), else the machine type."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _torch_settings(device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")},
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
    }
    if device.type == "cuda":
        out |= {
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        }
    return out


def run_perf(settings: PerfSettings, log: Callable[[str], None] = print) -> tuple[dict[str, Any], Path]:
    """Measure every model of ``settings``; write and return the JSON document and its path."""
    device = training_device(settings.device)
    for entry in settings.models:
        models.parse_entry(entry)  # fail on a bad entry before measuring anything
    data_cache, _ = cache_dirs(settings.out)
    dataset = load_dataset(settings.dataset, settings.resolution, cache_dir=data_cache)
    images = dataset.images.to(device)
    if settings.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    doc: dict[str, Any] = {
        "kind": "perf",
        "created": time.time(),
        "settings": settings.to_dict(),
        "environment": environment(device),
        "torch_settings": _torch_settings(device),
        "models": [],
    }
    for entry in settings.models:
        log(f"measuring {entry} at {settings.resolution} px ...")
        try:
            doc["models"].append(measure_model(entry, settings, device, dataset, images))
        except Exception as exc:  # e.g. LPIPS weights missing offline: report it, measure the others
            doc["models"].append({"model": entry, "error": f"{type(exc).__name__}: {exc}"})
            log(f"  {entry}: not measured ({type(exc).__name__}: {exc})")
    if settings.naive_data:
        batch = settings.batch or next((r["batch"] for r in doc["models"] if "batch" in r), 8)
        doc["data_path"] = time_data_paths(
            dataset.images, batch, device, max(settings.steps, 10), settings.naive_workers, settings.seed,
            settings.channels_last,
        )  # fmt: skip
    if settings.eval_images != 0:
        doc["reference_cache"] = measure_reference_cache(dataset, settings, device)
    doc["torch_settings"]["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(settings.out) / "perf" / f"perf-{device.type}-{settings.resolution}px-{stamp}.json"
    atomic_write_json(path, doc)
    return doc, path


# ----------------------------------------------------------------------------------------------
# bf16 numerics: FID against the seed-to-seed spread.


def precision_fid_check(
    suite: str = "smoke",
    model: str = "fastgan",
    seeds: tuple[int, ...] = (0, 1, 2),
    iters: int = 40,
    out: Path = Path("results"),
    device: str = "auto",
) -> tuple[dict[str, Any], Path]:
    """Final FID of ``suite``'s ``model`` cell trained ``iters`` steps in fp32 and in bf16, per seed.

    Both precisions train the same number of steps (not the same seconds: their speeds differ),
    so only numerics differ. Pass: |mean bf16 - mean fp32| <= the fp32 seed-to-seed range.
    Runs live under ``<out>/runs/perf-<suite>-precision/`` and are skipped once done.
    """
    import dataclasses

    from bench.results import eval_rows
    from bench.suites import filter_cells, load_suite
    from bench.train import run_cell

    loaded = load_suite(suite)
    cell = filter_cells(loaded, [model], None)[0]
    metric = next(p for p in cell.spec.protocols if p.startswith("fid"))
    rows = []
    for precision in ("fp32", "bf16"):
        for seed in seeds:
            spec = dataclasses.replace(
                cell.spec, suite=f"perf-{loaded.name}-precision", seed=seed, precision=precision,
                budget_hours=None, max_iters=iters, eval_fractions=(1.0,),
            )  # fmt: skip
            status = run_cell(spec, LoopOptions(out=out, device=device, progress=False))
            fids = [r["value"] for r in eval_rows(RunPaths.of(out, spec)) if r["metric"] == metric]
            rows.append({"precision": precision, "seed": seed, "status": status, "fid": fids[-1] if fids else None,
                         "run_id": spec.run_id})  # fmt: skip
    fid = {p: [r["fid"] for r in rows if r["precision"] == p and r["fid"] is not None] for p in ("fp32", "bf16")}
    summary: dict[str, Any] = {"metric": metric, "dataset": cell.spec.dataset, "resolution": cell.spec.resolution}
    if len(fid["fp32"]) == len(fid["bf16"]) == len(seeds):
        mean32, mean16 = statistics.fmean(fid["fp32"]), statistics.fmean(fid["bf16"])
        spread = max(fid["fp32"]) - min(fid["fp32"])
        summary |= {"fp32_mean": mean32, "bf16_mean": mean16, "fp32_range": spread,
                    "difference": mean16 - mean32, "within_spread": abs(mean16 - mean32) <= spread}  # fmt: skip
    dev = resolve_device(device)
    doc = {
        "kind": "precision-fid", "created": time.time(), "suite": suite, "model": model, "seeds": list(seeds),
        "iters": iters, "environment": environment(dev), "runs": rows, "summary": summary,
    }  # fmt: skip
    path = Path(out) / "perf" / f"precision-fid-{dev.type}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    atomic_write_json(path, doc)
    return doc, path


def format_precision_check(doc: dict[str, Any]) -> str:
    """The per-seed FIDs and the verdict, as Markdown."""
    s = doc["summary"]
    lines = [f"{s['metric']} of {doc['model']} on {s['dataset']} at {s['resolution']} px after {doc['iters']} steps",
             "", "| seed | fp32 | bf16 |", "|---|---|---|"]  # fmt: skip
    by = {(r["precision"], r["seed"]): r["fid"] for r in doc["runs"]}
    lines += [f"| {seed} | {_fmt(by[('fp32', seed)], digits=4)} | {_fmt(by[('bf16', seed)], digits=4)} |"
              for seed in doc["seeds"]]  # fmt: skip
    if "within_spread" in s:
        verdict = "within" if s["within_spread"] else "OUTSIDE"
        lines.append(
            f"\nmean fp32 {s['fp32_mean']:.4g}, bf16 {s['bf16_mean']:.4g}: difference {s['difference']:+.3g}, "
            f"{verdict} the fp32 seed-to-seed range {s['fp32_range']:.3g}"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# The printed table.


def _fmt(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if value is None else f"{value * scale:.{digits}g}"


def _pct(summary: dict[str, Any]) -> str:
    """'median [min, max]' of a summary of shares, in percent."""
    if summary["median"] is None:
        return "-"
    return f"{100 * summary['median']:.2g} [{100 * summary['min']:.2g}, {100 * summary['max']:.2g}]"


def format_table(doc: dict[str, Any]) -> str:
    """A Markdown table of the figures, one row per model, with the device in the title."""
    env, ts, s = doc["environment"], doc["torch_settings"], doc["settings"]
    on_cpu = not env["device"].startswith("cuda")
    where = f"{ts['cpu_model']} ({ts['threads']} threads)" if on_cpu else env["device_name"]
    load = f"; load average {ts['loadavg'][0]:.1f}" if ts.get("loadavg") else ""
    modes = [m for m, on in (("compile", s["compile"]), ("fused Adam", s.get("fused_adam")),
                             ("channels_last", s["channels_last"])) if on]  # fmt: skip
    head = (
        f"perf on {where}, {s['resolution']} px, {', '.join([s['precision'], *modes])}; "
        f"median of {s['steps']} steps after {s['warmup']} warm-up{load}"
    )
    cols = ["model", "batch", "loop s/step", "model s/step", "img/s", "peak mem MiB", "GFLOP/step", "GFLOP/s",
            "peak GFLOP/s", "% peak", "% peak (CPU time)", "harness % (diff, pairs)", "harness % (direct)",
            "outside model %", "Adam %", "eval img/s: path / detector (%; % of gen+det bound)"]  # fmt: skip
    lines = [head, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in doc["models"]:
        if "error" in r:
            lines.append(f"| {r['model']} | " + " | ".join(["-"] * (len(cols) - 2)) + f" | {r['error'][:80]} |")
            continue
        ev = r.get("eval", {})
        if "pipeline_ips" in ev:
            share, bound = 100 * ev["pipeline_over_detector"], 100 * ev["pipeline_over_serial_bound"]
            eval_txt = f"{ev['pipeline_ips']:.3g} / {ev['detector_ips']:.3g} ({share:.0f} %; {bound:.0f} % of gen+det)"
        else:
            eval_txt = ev.get("error", "-")[:60]
        cells = [
            r["model"], str(r["batch"]), _fmt(r["loop_step_s"]["median"]), _fmt(r["model_step_s"]["median"]),
            _fmt(r["images_per_s"]), _fmt(r["peak_memory"]["bytes"], 1 / 2**20, 4), _fmt(r["flops_per_step"], 1e-9),
            _fmt(r["achieved_flops"], 1e-9), _fmt(r["peak_matmul"]["flops"], 1e-9), _fmt(r["peak_fraction"], 100, 2),
            _fmt(r.get("peak_fraction_cpu"), 100, 2),
            _pct(r["overhead_share_diff_cpu"] if on_cpu else r["overhead_share_diff"]),
            _fmt(r["overhead_share_direct"], 100, 2), _fmt(r["outside_model_share"], 100, 2),
            _fmt(r.get("optimizer_share"), 100, 2), eval_txt,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    if on_cpu:
        lines.append("\n(harness % (diff) on the CPU uses process CPU time; wall-clock pairs are in the JSON)")
    ref = doc.get("reference_cache")
    if ref:
        lines += [
            "",
            f"reference features ({ref['images']} images): {_fmt(ref['first_s'])} s "
            f"({'cached' if ref['cached_before'] else 'computed'}), then {_fmt(ref['second_s'])} s from the cache",
        ]
    dp = doc.get("data_path")
    if dp:
        lines += [
            "",
            f"data path, s/batch (median): Sampler {_fmt(dp['sampler_s']['median'])}, naive DataLoader+PIL "
            f"({dp['naive_workers']} workers) {_fmt(dp['naive_s']['median'])}: naive / ours = "
            f"{dp['naive_over_sampler']:.1f}x",
        ]
    return "\n".join(lines)
