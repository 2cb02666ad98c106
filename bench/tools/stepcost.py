"""The work of one training step, counted op by op on the meta device (no memory, no compute).

The model is built and stepped under ``torch.device("meta")`` and :func:`models.structure_only`
(LPIPS backbones without their weights); after one untraced warm-up step (lazy builds, optimizer
state), the steps the model names in ``cost_steps`` (its lazy-regularisation pattern) are traced
with a dispatch mode that records, per aten op: its FLOPs (``torch.utils.flop_counter``'s formulas),
the bytes of its tensor inputs and outputs (views and allocations move none), and the side of its
largest 4-D tensor. Ops run on the CPU path, so Adam is counted as its single-tensor kernels. The
counts are cached under ``<out>/cache/stepcost/`` keyed by the configuration, the torch version and
the models' source, and once per configuration in the process.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry

import models
from bench.errors import BenchError
from bench.files import FileReadError, read_json
from bench.plan.roofline import OpGroup, StepCost
from bench.results.io import atomic_write_json

MODELS_DIR = Path(models.__file__).resolve().parent
_NO_TRAFFIC = ("empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "detach", "lift_fresh")


def _tensor_bytes(t: torch.Tensor) -> int:
    """Bytes a tensor's elements occupy (a broadcast view counts its storage span, not its size)."""
    if t.numel() == 0:
        return 0
    span = 1 + sum((size - 1) * abs(stride) for size, stride in zip(t.shape, t.stride(), strict=True))
    return min(t.numel(), span) * t.element_size()


def _side(tensors: list[torch.Tensor]) -> int:
    return max((t.shape[-1] for t in tensors if t.dim() == 4), default=0)


class _OpRecorder(TorchDispatchMode):
    """Counts (kind, FLOPs, bytes, side) per op, each op weighted by ``weight``."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[tuple[str, int, int, int]] = Counter()
        self.weight = 1.0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.is_view or func._overloadpacket.__name__ in _NO_TRAFFIC:
            return out
        ins = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        rule = flop_registry.get(func._overloadpacket)
        flops = int(rule(*args, **kwargs, out_val=out)) if rule is not None else 0
        name = func._overloadpacket.__name__
        kind = "conv" if "convolution" in name else "mm" if rule is not None else "other"
        nbytes = sum(_tensor_bytes(t) for t in ins + outs)
        self.counts[(kind, flops, nbytes, _side(ins + outs))] += self.weight
        return out


@contextmanager
def _meta() -> Iterator[None]:
    with models.structure_only(), torch.device("meta"):
        yield


def trace_step_cost(name: str, resolution: int, kwargs: dict[str, Any]) -> StepCost:
    """Count the work of one mean training step of ``name`` at ``resolution`` with ``kwargs``."""
    kwargs = {k: v for k, v in kwargs.items() if k != "init_from"}  # same network, no checkpoint read
    with _meta():
        torch.manual_seed(0)
        model = models.get_model(name, resolution=resolution, **kwargs)
        real = torch.zeros(model.reals_per_step, 3, resolution, resolution)
        steps = model.cost_steps()
        model.train_step(real, max(steps))  # untraced warm-up: lazy builds, optimizer state
        recorder = _OpRecorder()
        with recorder:
            for step, weight in sorted(steps.items()):
                recorder.weight = weight
                model.train_step(real, step)
    groups = tuple(OpGroup(k, f, b, s, c) for (k, f, b, s), c in sorted(recorder.counts.items()))
    return StepCost(model.reals_per_step, resolution, groups)  # real images one step shows D


def _models_digest() -> str:
    """sha256 of the models package's source: a changed network invalidates cached counts."""
    h = hashlib.sha256()
    for path in sorted(MODELS_DIR.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def cost_key(name: str, resolution: int, kwargs: dict[str, Any]) -> str:
    """Cache key of a configuration's count: model, resolution, kwargs, torch version, models' source."""
    kwargs = {k: v for k, v in kwargs.items() if k != "init_from"}
    blob = json.dumps([name, resolution, kwargs, torch.__version__, _models_digest()], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def step_cost(name: str, resolution: int, kwargs: dict[str, Any], cache_dir: Path | None = None) -> StepCost:
    """:func:`trace_step_cost`, read from (and written to) ``cache_dir`` when given."""
    path = Path(cache_dir) / f"{name}-{resolution}-{cost_key(name, resolution, kwargs)}.json" if cache_dir else None
    if path is not None and path.is_file():
        try:
            cached = StepCost.from_dict(read_json(path)["cost"])
            if cached.batch > 0 and all(math.isfinite(v) and v >= 0 for v in (cached.flops, cached.bytes, cached.ops)):
                return cached
        except (FileReadError, ValueError, KeyError, TypeError, OverflowError):
            pass  # unreadable or implausible: count again and overwrite
    cost = _traced(name, resolution, json.dumps(kwargs, sort_keys=True, default=str))
    if path is not None:
        try:
            atomic_write_json(path, {"model": name, "resolution": resolution, "kwargs": kwargs,
                                     "torch": torch.__version__, "cost": cost.to_dict()})  # fmt: skip
        except (OSError, BenchError):
            pass  # an unwritable cache only costs a recount (the command checks its folder itself)
    return cost


def count_in_two(configs: list[tuple[str, int, dict[str, Any]]], cache_dir: Path) -> None:
    """:func:`step_cost` of each (name, resolution, kwargs) into ``cache_dir``, by this process and a forked
    one taking them in turn (the meta-device trace is single-threaded Python: two CPUs count twice as fast).
    A count that fails is skipped: the caller's own :func:`step_cost` counts it again and reports why."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    taken = ctx.Value("i", 0)

    def work() -> None:
        while True:
            with taken.get_lock():
                i, taken.value = taken.value, taken.value + 1
            if i >= len(configs):
                return
            name, resolution, kwargs = configs[i]
            try:
                step_cost(name, resolution, kwargs, cache_dir)
            except Exception:  # noqa: BLE001 (reported by the caller's recount)
                pass

    sys.stdout.flush()
    sys.stderr.flush()  # a forked child flushes its copy of these buffers when it exits
    child = ctx.Process(target=work, daemon=True)
    child.start()
    work()
    child.join()


@functools.lru_cache(maxsize=256)
def _traced(name: str, resolution: int, kwargs_json: str) -> StepCost:
    """:func:`trace_step_cost` once per configuration and process (a suite is loaded by many commands)."""
    return trace_step_cost(name, resolution, json.loads(kwargs_json))
