"""Structure checks of checkpoints and snapshots before anything is restored from them.

A file that unpickles (weights only) can still hold anything: a list, a tensor, a dict with keys
missing, or the weights of other widths. Each check returns what is wrong (one short phrase) or
None, and runs before the first tensor is copied, so a refused file leaves the model, its
optimizers, the budget clock and the sampler untouched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

import models
from bench.data.sampler import Sampler


def _is_int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def header_problem(doc: Any) -> str | None:
    """What a checkpoint or snapshot needs besides its tensors: a dict with model name, resolution, step."""
    if not isinstance(doc, dict):
        return f"holds a {type(doc).__name__}, not a checkpoint dict"
    missing = [k for k in ("model_name", "resolution", "step", "model") if k not in doc]
    if missing:
        return f"no {', '.join(repr(k) for k in missing)} in it"
    if not isinstance(doc["model_name"], str) or not _is_int(doc["resolution"], 1) or not _is_int(doc["step"]):
        return "its model_name, resolution or step has the wrong type"
    return None


def state_problem(given: Any, expected: Mapping[str, Tensor]) -> str | None:
    """Why ``given`` is not a state dict with exactly ``expected``'s keys and shapes."""
    if not isinstance(given, dict):
        return f"its weights are a {type(given).__name__}, not a state dict"
    missing = [k for k in expected if k not in given]
    extra = [k for k in given if k not in expected]
    wrong = [k for k, v in expected.items() if k in given and not _same_shape(given[k], v)]
    if not (missing or extra or wrong):
        return values_problem(given, expected)
    if wrong:
        got = given[wrong[0]]
        what = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
        example = f"{wrong[0]} is {what}, the model's {tuple(expected[wrong[0]].shape)}"
    else:
        example = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
    return f"weights do not fit this model ({len(missing) + len(extra) + len(wrong)} tensors differ, e.g. {example})"


def _same_shape(value: Any, like: Tensor) -> bool:
    return isinstance(value, Tensor) and value.shape == like.shape


def values_problem(given: Mapping[str, Tensor], expected: Mapping[str, Tensor] | None = None) -> str | None:
    """Why the tensors of ``given`` cannot be weights: an integer or boolean tensor where ``expected`` (the
    model's own state) holds floats, which loading would silently convert, or a NaN or infinite value."""
    for key, value in given.items():
        like = None if expected is None else expected.get(key)
        if like is not None and like.is_floating_point() != value.is_floating_point():
            return f"{key} holds {value.dtype} values, the model's {like.dtype}"
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return f"{key} holds NaN or infinite values"
    return None


def checkpoint_problem(ckpt: dict[str, Any], model: models.GANModel, sampler: Sampler) -> str | None:
    """Everything a resume restores, checked against the live objects (``ckpt`` passed :func:`header_problem`)."""
    missing = [k for k in ("budget", "optim", "rng", "sampler") if k not in ckpt]
    if missing:
        return f"no {', '.join(repr(k) for k in missing)} in it"
    checks = (
        lambda: state_problem(ckpt["model"], model.state_dict()),
        lambda: optimizer_problem(ckpt["optim"], model.optimizers()),
        lambda: _budget_problem(ckpt["budget"], ckpt["step"]),
        lambda: _rng_problem(ckpt["rng"]),
        lambda: _sampler_problem(ckpt["sampler"], sampler),
    )
    return next((p for check in checks if (p := check()) is not None), None)


def optimizer_problem(saved: Any, optimizers: dict[str, torch.optim.Optimizer]) -> str | None:
    """Why ``saved`` is not the state of exactly these optimizers (groups, parameter counts, state shapes)."""
    if not isinstance(saved, dict) or set(saved) != set(optimizers):
        names = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        return f"optimizer state is {names}, the model's optimizers are {sorted(optimizers)}"
    for name, opt in optimizers.items():
        if (problem := _one_optimizer_problem(saved[name], opt)) is not None:
            return f"optimizer {name}: {problem}"
    return None


def _one_optimizer_problem(saved: Any, opt: torch.optim.Optimizer) -> str | None:
    groups = saved.get("param_groups") if isinstance(saved, dict) else None
    if not isinstance(groups, list) or not isinstance(saved.get("state"), dict):
        return "not an optimizer state dict"
    if len(groups) != len(opt.param_groups):
        return f"{len(groups)} parameter groups, the model's {len(opt.param_groups)}"
    shapes: dict[Any, torch.Size] = {}
    for group, own in zip(groups, opt.param_groups, strict=True):
        ids = group.get("params") if isinstance(group, dict) else None
        if not isinstance(ids, list) or len(ids) != len(own["params"]):
            return "a parameter group of another size"
        shapes |= {i: p.shape for i, p in zip(ids, own["params"], strict=True)}
    for i, state in saved["state"].items():
        if i not in shapes or not isinstance(state, dict):
            return f"state of an unknown parameter {i!r}"
        bad = [k for k, v in state.items() if isinstance(v, Tensor) and v.dim() > 0 and v.shape != shapes[i]]
        if bad:
            return f"{bad[0]} of parameter {i} has another shape"
    return None


def _budget_problem(budget: Any, step: int) -> str | None:
    if not isinstance(budget, dict) or not _is_int(budget.get("iters")) or budget["iters"] != step:
        return "its budget clock does not match its step"
    used = budget.get("used_seconds")
    if isinstance(used, bool) or not isinstance(used, int | float) or not 0 <= used < math.inf:
        return f"its budget clock holds {used!r} training seconds"
    return None


def _rng_problem(rng: Any) -> str | None:
    own = torch.get_rng_state()
    state = rng.get("torch") if isinstance(rng, dict) else None
    if not isinstance(state, Tensor) or state.dtype != own.dtype or state.shape != own.shape:
        return "its random number generator state is not torch's"
    return None


def _sampler_problem(saved: Any, sampler: Sampler) -> str | None:
    own = sampler.state_dict()
    if not isinstance(saved, dict) or not all(isinstance(saved.get(k), Tensor) for k in ("gen", "perm")):
        return "its sampler state is not a sampler's"
    n = len(own["perm"])
    perm = saved["perm"]
    if saved["gen"].shape != own["gen"].shape or saved["gen"].dtype != own["gen"].dtype:
        return "its sampler's generator state is not torch's"
    if perm.dtype != torch.int64 or perm.shape != (n,) or not torch.equal(perm.sort().values, torch.arange(n)):
        return f"its sampler's order is not a permutation of the dataset's {n} images"
    if not _is_int(saved.get("pos")) or saved["pos"] > n:
        return f"its sampler position is not in 0..{n}"
    return None
