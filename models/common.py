"""Pieces shared by model families: DiffAugment, EMA, parameter counting."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

AUGMENTS = ("color", "translation", "cutout")


def _brightness(x: Tensor) -> Tensor:
    return x + (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)


def _saturation(x: Tensor) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean


def _contrast(x: Tensor) -> Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    factor = torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5
    return (x - mean) * factor + mean


def _translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, size=(b, 1, 1), device=x.device)
    ty = torch.randint(-sw, sw + 1, size=(b, 1, 1), device=x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # zero border, picked by out-of-range shifts
    return padded.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2)


def _cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), size=(b, 1, 1), device=x.device)
    oy = torch.randint(0, w + (1 - cw % 2), size=(b, 1, 1), device=x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(ch, device=x.device),
        torch.arange(cw, device=x.device),
        indexing="ij",
    )
    gx = torch.clamp(gx + ox - ch // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + oy - cw // 2, min=0, max=w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


def check_policy(policy: str) -> str:
    """Validate a DiffAugment policy string like ``'color,translation'``; '' means none."""
    for part in filter(None, policy.split(",")):
        if part not in AUGMENTS:
            raise ValueError(f"unknown DiffAugment op {part!r} in policy {policy!r}; use {AUGMENTS}")
    return policy


def diff_augment(x: Tensor, policy: str) -> Tensor:
    """Differentiable augmentation (Zhao et al. 2020), same semantics as the authors' code.

    color: brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5) per sample;
    translation: integer shift up to 1/8 of the side, zero padding; cutout: one zeroed
    square of half the side per sample. Gradients pass through every op.
    """
    for part in filter(None, policy.split(",")):
        if part == "color":
            x = _contrast(_saturation(_brightness(x)))
        elif part == "translation":
            x = _translation(x)
        elif part == "cutout":
            x = _cutout(x)
        else:
            raise ValueError(f"unknown DiffAugment op {part!r}")
    return x.contiguous()


@torch.no_grad()
def ema_update(ema: nn.Module, src: nn.Module, beta: float, buffers: str = "copy") -> None:
    """``ema = beta * ema + (1 - beta) * src`` over parameters (fused, foreach).

    ``buffers``: ``"copy"`` copies ``src``'s buffers (FastGAN's and StyleGAN2's EMA keep parameters
    only); ``"average"`` blends floating-point buffers (BatchNorm running statistics, spectral-norm
    vectors) with the same ``beta`` and copies integer ones (BigGAN-PyTorch's ``utils.ema``).
    """
    e_params = list(ema.parameters())
    s_params = [p.detach() for p in src.parameters()]
    torch._foreach_lerp_(e_params, s_params, 1.0 - beta)
    e_bufs, s_bufs = list(ema.buffers()), list(src.buffers())
    if len(e_bufs) != len(s_bufs):
        raise ValueError(f"ema_update: {len(e_bufs)} EMA buffers vs {len(s_bufs)} source buffers")
    if buffers not in ("copy", "average"):
        raise ValueError(f"ema_update: buffers must be 'copy' or 'average', got {buffers!r}")
    pairs = list(zip(e_bufs, s_bufs, strict=True))
    floats = [(e, s) for e, s in pairs if buffers == "average" and e.is_floating_point()]
    others = [(e, s) for e, s in pairs if not (buffers == "average" and e.is_floating_point())]
    if floats:
        torch._foreach_lerp_([e for e, _ in floats], [s for _, s in floats], 1.0 - beta)
    if others:
        torch._foreach_copy_([e for e, _ in others], [s for _, s in others])


def count_params(module: nn.Module) -> int:
    """Number of parameters (not buffers)."""
    return sum(p.numel() for p in module.parameters())


class Fp32SpectralNorm:
    """An old-style spectral-norm pre-hook (``torch.nn.utils.spectral_norm``) run with autocast off,
    so that its power iteration and sigma stay fp32 under bf16 autocast (CUDA autocasts ``mv``).
    Without autocast it is the hook itself: fp32 runs compute the same weight."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    def __call__(self, module: nn.Module, inputs: Any) -> Any:
        kind = getattr(module, f"{self.hook.name}_orig").device.type
        if not (torch.amp.is_autocast_available(kind) and torch.is_autocast_enabled(kind)):
            return self.hook(module, inputs)
        with torch.autocast(kind, enabled=False):
            return self.hook(module, inputs)


def _spectral_norm_hooks(module: nn.Module) -> list[tuple[dict[int, Any], int, Any]]:
    """(hook dict, key, hook) of every old-style spectral-norm pre-hook in ``module``, wrapped or not."""
    from torch.nn.utils.spectral_norm import SpectralNorm

    found = []
    for m in module.modules():
        for key, hook in m._forward_pre_hooks.items():
            if isinstance(getattr(hook, "hook", hook), SpectralNorm):
                found.append((m._forward_pre_hooks, key, hook))
    return found


def fp32_spectral_norm_hooks(module: nn.Module) -> int:
    """Wrap every old-style spectral-norm hook in ``module`` in :class:`Fp32SpectralNorm`; returns how many."""
    hooks = [(d, k, h) for d, k, h in _spectral_norm_hooks(module) if not isinstance(h, Fp32SpectralNorm)]
    for hooks_of, key, hook in hooks:
        hooks_of[key] = Fp32SpectralNorm(hook)
    return len(hooks)


def eager_spectral_norm_hooks(module: nn.Module) -> int:
    """Make every old-style spectral-norm hook (``torch.nn.utils.spectral_norm``) in ``module`` run
    eagerly under ``torch.compile`` (a graph break around it); returns how many. Eager runs are
    unchanged: the hook computes the same weight, with the same power iteration."""
    hooks = _spectral_norm_hooks(module)
    for hooks_of, key, hook in hooks:
        hooks_of[key] = torch.compiler.disable(hook)
    return len(hooks)
