"""Official FastGAN checkpoints (``{'g', 'd'}`` or ``all_N.pth`` with its ``g_ema`` list) into a
registered FastGAN-family model: every key and shape checked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from models.fastgan import FastGAN


def _strip_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """DataParallel's ``module.`` prefix removed; two keys naming one tensor (``x`` and ``module.x``) are refused."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        name = key.removeprefix("module.")
        if name in out:
            raise ValueError(f"keys {name!r} and 'module.{name}' both name {name} (with and without DataParallel's "
                             "prefix); keep one")  # fmt: skip
        out[name] = value
    return out


@torch.no_grad()
def _load_exact(module: nn.Module, state: Mapping[str, Tensor], what: str) -> None:
    own = module.state_dict()
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    shapes = [
        f"{k}: {tuple(state[k].shape)} {state[k].dtype} vs {tuple(own[k].shape)} {own[k].dtype}"
        for k in own.keys() & state.keys()
        if state[k].shape != own[k].shape or state[k].is_floating_point() != own[k].is_floating_point()
    ]
    if missing or unexpected or shapes:
        raise ValueError(
            f"official {what} state does not match this model (check resolution, widths, variant): "
            f"missing {missing[:5]} ({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)}), "
            f"shape or dtype mismatches {sorted(shapes)[:5]} ({len(shapes)})"
        )
    module.load_state_dict(state)


@torch.no_grad()
def load_official_state(
    model: FastGAN,
    g_state: Mapping[str, Tensor],
    d_state: Mapping[str, Tensor],
    g_ema: Sequence[Tensor] | None = None,
) -> None:
    """Load state dicts saved by the official code into a registered FastGAN model.

    Keys may carry DataParallel's ``module.`` prefix. ``g_ema`` is the official checkpoint's
    list of EMA tensors in G's parameter order, i.e. the order of the parameter entries in
    ``g_state``; without it the EMA generator is a copy of the loaded G (as for the official
    ``{'g', 'd'}`` checkpoints, whose ``g`` already holds EMA weights). Raises ValueError on
    mismatched keys or shapes.
    """
    g_state, d_state = _strip_prefix(g_state), _strip_prefix(d_state)
    _load_exact(model.generator, g_state, "generator")
    _load_exact(model.discriminator, d_state, "discriminator")
    model.g_ema.load_state_dict(model.generator.state_dict())
    if g_ema is None:
        return
    params = dict(model.g_ema.named_parameters())
    names = [k for k in g_state if k in params]
    if len(g_ema) != len(names):
        raise ValueError(f"g_ema has {len(g_ema)} tensors, the generator {len(names)} parameters")
    for name, t in zip(names, g_ema, strict=True):
        if t.shape != params[name].shape or not t.is_floating_point():
            raise ValueError(
                f"g_ema tensor for {name}: {tuple(t.shape)} {t.dtype} vs {tuple(params[name].shape)} float"
            )
        params[name].copy_(t)
