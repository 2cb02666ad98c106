"""clean-fid's ``clean`` resize as tensor operations, bitwise equal to it, on any device.

clean-fid's ``clean`` mode resizes each channel of a uint8 image to 299x299 as a float32 PIL
image (mode ``F``) with PIL's bicubic filter, then clips to [0, 255]. PIL resamples separably:
a horizontal pass, then a vertical one, each output pixel the sum over its taps of input pixel
times weight, accumulated in double precision from the first tap to the last and stored as
float32. The weights are PIL's: the bicubic kernel (a = -0.5), support 2 widened by the scale
when shrinking, centred on ``(x + 0.5) * scale``, each pixel's weights normalised to sum 1.

Here the weights are computed the same way on the host (Python floats are doubles) and each pass
is the same sum in float64 tensor operations, one tap after the other (a multiply, then an add:
each rounded once, as PIL's C), rounded to float32 after each pass. The result equals clean-fid's
bit for bit (tested); it lets the evaluation resize on the GPU instead of on host threads.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

CLEAN_SIZE = 299  # clean-fid's detector input side
BICUBIC_A = -0.5  # PIL's bicubic constant
BICUBIC_SUPPORT = 2.0


def device_resizable(mode: str, pre_resize: int | None) -> bool:
    """Whether :func:`clean_resize` reproduces the protocol's resize path (clean mode, no pre-resize)."""
    return mode == "clean" and pre_resize is None


def _bicubic(x: float) -> float:
    x = abs(x)
    if x < 1.0:
        return ((BICUBIC_A + 2.0) * x - (BICUBIC_A + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * BICUBIC_A
    return 0.0


@functools.lru_cache(maxsize=32)
def taps(in_size: int, out_size: int) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[float, ...], ...]]:
    """PIL's resampling taps from ``in_size`` to ``out_size`` pixels: per tap slot, the input index and
    the weight of every output pixel (slots past a pixel's own taps: weight 0 on its first input)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = BICUBIC_SUPPORT * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    index, weight = [[0] * out_size for _ in range(ksize)], [[0.0] * out_size for _ in range(ksize)]
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        count = min(int(center + support + 0.5), in_size) - xmin
        ks = [_bicubic((x + xmin - center + 0.5) / filterscale) for x in range(count)]
        total = 0.0
        for k in ks:
            total += k
        for slot in range(ksize):
            index[slot][xx] = xmin + slot if slot < count else xmin
            weight[slot][xx] = (ks[slot] / total if total != 0.0 else ks[slot]) if slot < count else 0.0
    return tuple(map(tuple, index)), tuple(map(tuple, weight))


def _resample(x: Tensor, dim: int, out_size: int) -> Tensor:
    """One PIL pass along ``dim`` of a float64 tensor: the taps summed in order, then float32."""
    index, weight = taps(x.size(dim), out_size)
    shape = [1] * x.dim()
    shape[dim] = out_size
    size = list(x.shape)
    size[dim] = out_size
    acc = torch.zeros(size, dtype=torch.float64, device=x.device)  # PIL's sum starts at +0.0
    for idx, w in zip(index, weight, strict=True):
        i = torch.tensor(idx, device=x.device)
        acc = acc + x.index_select(dim, i) * torch.tensor(w, dtype=torch.float64, device=x.device).view(shape)
    return acc.float()


def clean_resize(images: Tensor, size: int = CLEAN_SIZE) -> Tensor:
    """uint8 (B, C, H, W) -> float32 (B, C, size, size) in [0, 255], as clean-fid's ``clean`` resize
    followed by its tensor conversion, on ``images``' device."""
    wide = _resample(images.double(), 3, size)
    return _resample(wide.double(), 2, size).clamp_(0, 255)
