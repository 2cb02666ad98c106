"""Device helpers: resolving ``--device`` (and refusing a GPU suite's cell without a GPU), the backend
settings training runs with, one ``sync``, one autocast and an RNG fork for work that must not move
the training RNG."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from bench.errors import BenchError
from bench.plan.specs import PRECISIONS, RunSpec


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


def check_accelerator(spec: RunSpec, requested: str, device: torch.device) -> None:
    """Refuse, in one line, to train a cell whose suite's budget assumes a GPU on anything else when the
    device was chosen automatically (an explicit ``--device cpu`` trains anyway)."""
    if spec.accelerator != "gpu" or device.type == "cuda" or requested != "auto":
        return
    from bench.results.envinfo import cuda_absence

    want = f"{spec.num_gpus} GPU{'s' if spec.num_gpus > 1 else ''} per cell"
    raise BenchError(
        f"suite {spec.suite} assumes {want} (budget.accelerator = 'gpu'), found {cuda_absence()}; "
        "run it on a GPU node or pass --device cpu to train on the CPU anyway"
    )


def training_device(name: str, deterministic: bool = False) -> torch.device:
    """:func:`resolve_device` plus the backend settings training runs with (cuDNN autotuning on
    CUDA), so that training, ``calibrate`` and ``perf`` time the same configuration.

    ``deterministic``: deterministic kernels instead (cuDNN without autotuning, cuBLAS with a fixed
    workspace, PyTorch's deterministic algorithms, warning where an op has none), so that the same
    run repeats bit for bit on a GPU, across processes and resumes too; slower. Process-wide.
    """
    device = resolve_device(name)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
    return device


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast a run's ``precision`` asks for: bf16 autocast, or nothing for fp32."""
    if precision not in PRECISIONS:
        raise BenchError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@contextlib.contextmanager
def isolated_rng(device: torch.device) -> Iterator[None]:
    """Run the block under a forked RNG (CPU, and ``device`` if CUDA): the caller's RNG never moves."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield
