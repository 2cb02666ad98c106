"""A model's size, counted on the meta device before anything is allocated: a configuration whose
weights (or training state) cannot fit in the memory it would run in is refused with one line,
instead of an allocation failure or a "storage size overflowed" traceback (``ngf = 100000000``)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import torch

import models
from models import ModelConfigError

TRAINED_COPIES = 4  # a trained parameter is held four times: weights, gradient and Adam's two moments


def meta_model(name: str, resolution: int, kwargs: Mapping[str, Any]) -> models.GANModel:
    """``name`` built on the meta device (shapes only: no memory, no compute); a size torch cannot even
    represent is a :class:`ModelConfigError`."""
    try:
        with torch.device("meta"):
            return models.get_model(name, resolution=resolution, **kwargs)
    except (RuntimeError, OverflowError, MemoryError) as exc:  # "Storage size calculation overflowed ..."
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise ModelConfigError(f"model {name!r} cannot be built ({first}); lower its widths") from None


def state_bytes(model: torch.nn.Module, training: bool) -> int:
    """Bytes of the model's parameters and buffers; with ``training``, also the gradients and Adam moments
    of its trained parameters (a lower bound of what training holds: activations come on top)."""
    copies = TRAINED_COPIES if training else 1
    params = sum(p.numel() * p.element_size() * (copies if p.requires_grad else 1) for p in model.parameters())
    return params + sum(b.numel() * b.element_size() for b in model.buffers())


def memory_limit(device: torch.device | None) -> tuple[int, str]:
    """(bytes, what they are) of the memory a model on ``device`` lives in: this machine's RAM, a CUDA
    device's own memory, or (None: the cells run elsewhere) the largest device profile's memory."""
    if device is None:
        from bench.plan.devices import load_profiles

        best = max((p for p in load_profiles().values() if p.memory), key=lambda p: p.memory)
        return int(best.memory), f"the largest device profile's memory ({best.name})"
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory, f"{device}'s memory"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine's memory"


def check_fits(
    name: str, resolution: int, kwargs: Mapping[str, Any], device: torch.device | None, *, training: bool
) -> models.GANModel:
    """The meta-device model, once its weights (``training``: its training state) fit :func:`memory_limit`,
    and on CUDA its weights this machine's memory too (models are built on the host first); else a
    :class:`ModelConfigError` naming the sizes."""
    model = meta_model(name, resolution, kwargs)
    checks = [(state_bytes(model, training), *memory_limit(device), training)]
    if device is not None and device.type == "cuda":
        checks.append((state_bytes(model, False), *memory_limit(torch.device("cpu")), False))
    for need, limit, what, trained in checks:
        if need > limit:
            held = "weights, gradients and Adam moments" if trained else "weights"
            raise ModelConfigError(
                f"model {name!r} at {resolution} px needs {need / 2**30:,.1f} GiB for its {held} alone, more than "
                f"{what} ({limit / 2**30:,.1f} GiB); lower its widths"
            )
    return model


def check_fits_remembered(
    name: str, resolution: int, kwargs: Mapping[str, Any], device: torch.device, *, training: bool
) -> None:
    """:func:`check_fits`, its pass remembered (:func:`bench.plan.names.remembered`) per model, resolution,
    kwargs, device, memory size and ``training`` until a source file changes: the meta-device build costs
    seconds on a small machine (torch's meta kernels import its compiler). Not remembered for a plugin's
    model (its sources do not key the cache) nor with ``init_from`` (a checkpoint that may change)."""
    from bench.plan import names

    def check() -> bool:
        check_fits(name, resolution, kwargs, device, training=training)
        return True

    if "init_from" in kwargs or not names.model_from_sources(name):
        check()
        return
    limit = memory_limit(device)[0]
    key = json.dumps([name, resolution, dict(kwargs), str(device), limit, training], sort_keys=True)
    names.remembered("fits", key, check)
