"""BigGAN's layers and networks (Brock et al. 2019) in unconditional form, written from the facts in
``shared/reference/comparison_models.md`` (BigGAN-PyTorch @9845943 ``BigGAN.py``, ``layers.py``).

Unconditional use keeps the conditional machinery with ``n_classes = 1`` and every label 0, so the
parameter counts are those of the reference implementation at one class. Two architectures
(``arch``):

- ``"imagenet"`` (the ImageNet script): shared class embedding (128-d) and hierarchical latents
  (skip-z), on the 128 / 256 px tables below.
- ``"cifar"`` (the 32 px CIFAR networks of BigGAN-PyTorch's ``BigGAN.py``, which DiffAugment's
  BigGAN-CIFAR trains; its parser's defaults ``--dim_z 128``, no ``--G_shared``, no ``--hier``):
  all 128 latents feed G's first linear; each conditional BatchNorm takes its gain and bias from
  a plain embedding of the class (one class: a learned per-channel affine); G has three blocks
  of 4ch channels (:data:`CIFAR_G`), D four of 4ch, downsampling in the first two (:data:`CIFAR_D`).

ImageNet architecture:

- G: ``z`` is split into chunks of 20; chunk 0 feeds an SN linear to a (16ch, 4, 4) map, chunk
  k (k >= 1) joins the shared embedding as the conditioning of block k - 1's two conditional
  BatchNorms. ``z_dim = 20 * (number of G blocks + 1)``: 120 at 128 px, 140 at 256 px (and
  80 / 100 / 160 / 180 at 32 / 64 / 512 / 1024 px).
- D: residual blocks, every one but the last halving the side; head ReLU -> sum over H, W ->
  SN linear, plus the projection term <embedding(label 0), features>.
- Resolutions 128 and 256 follow the reference tables (``ARCH_STATUS`` "reference"). 512 and
  1024 are an *extension* (no reference BigGAN exists above 256 px): each adds one stage at the
  top with multiplier 1 (G's 512 table is the released code's; D mirrors it). 32 and 64 drop
  stages from the top of the 128 tables ("test-scale") and exist for fast CPU tests.
- Spectral norm on every conv and linear (one power iteration per training-mode forward) except
  G's shared embedding. Weight init as BigGAN-PyTorch's ``init_weights`` (:func:`init_weights`):
  every conv, linear and embedding weight N(0, 0.02) (``N02``, DiffAugment's BigGAN script) or
  orthogonal (``ortho``, the parser default); biases keep PyTorch's default.
"""

from __future__ import annotations

import contextlib
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from models.base import ModelConfigError
from models.resample import avg_pool2x, upsample2x

SHARED_DIM = 128  # shared class-embedding size
Z_CHUNK = 20  # latent chunk per G stage (plus one for the first linear)


# G output-channel multipliers (x ch), one block per stage, first block at 4 -> 8 px.
# Block inputs are [16] + outputs[:-1].
G_ARCH: dict[int, tuple[int, ...]] = {
    32: (16, 8, 4),
    64: (16, 8, 4, 2),
    128: (16, 8, 4, 2, 1),
    256: (16, 8, 8, 4, 2, 1),
    512: (16, 8, 8, 4, 2, 1, 1),
    1024: (16, 8, 8, 4, 2, 1, 1, 1),
}
# D output-channel multipliers (x ch); every block but the last halves the side.
D_ARCH: dict[int, tuple[int, ...]] = {
    32: (4, 8, 16, 16),
    64: (2, 4, 8, 16, 16),
    128: (1, 2, 4, 8, 16, 16),
    256: (1, 2, 4, 8, 8, 16, 16),
    512: (1, 1, 2, 4, 8, 8, 16, 16),
    1024: (1, 1, 1, 2, 4, 8, 8, 16, 16),
}
# The CIFAR networks (32 px only): G block outputs (inputs 4ch too); D block outputs and downsampling.
CIFAR_G: tuple[int, ...] = (4, 4, 4)
CIFAR_D: tuple[tuple[int, ...], tuple[bool, ...]] = ((4, 4, 4, 4), (True, True, False, False))
CIFAR_Z_DIM = 128  # BigGAN-PyTorch --dim_z default
ARCHS = ("cifar", "imagenet")
ARCH_STATUS = {
    32: "test-scale",
    64: "test-scale",
    128: "reference",
    256: "reference",
    512: "extension",
    1024: "extension",
}

M = TypeVar("M", nn.Conv2d, nn.Linear, nn.Embedding)
INITS = ("N02", "ortho")  # weight init styles (BigGAN-PyTorch --G_init / --D_init)
ATTN_CHUNK_BYTES = 256 * 2**20  # attention weights per query chunk (G's 128 px attention: 268 MB per image)


class SpectralNorm(nn.Module):
    """Parametrization ``W -> W / sigma``, sigma = u^T W v the top singular value estimate.

    As in BigGAN, u and v are buffers refined by one power iteration per training-mode forward
    (they converge over training steps); eval mode reuses them without iterating. The gradient
    treats u and v as constants.
    """

    def __init__(self, weight: Tensor):
        super().__init__()
        m = weight.detach().flatten(1)  # (out, fan_in)
        v = F.normalize(m.T @ torch.randn(m.size(0), dtype=m.dtype, device=m.device), dim=0)
        self.register_buffer("u", F.normalize(m @ v, dim=0))  # (out,)
        self.register_buffer("v", v)  # (fan_in,)

    @torch.no_grad()
    def restart(self, weight: Tensor) -> None:
        """u and v from a random start against ``weight`` (after the weight is re-initialised)."""
        m = weight.flatten(1)  # (out, fan_in)
        self.v.copy_(F.normalize(m.T @ torch.randn(m.size(0), dtype=m.dtype, device=m.device), dim=0))
        self.u.copy_(F.normalize(m @ self.v, dim=0))

    def forward(self, weight: Tensor) -> Tensor:
        m = weight.flatten(1)  # (out, fan_in)
        with _no_autocast(weight.device):  # u, v and sigma stay fp32 under bf16 autocast
            if self.training:
                with torch.no_grad():
                    self.v.copy_(F.normalize(m.T @ self.u, dim=0))
                    self.u.copy_(F.normalize(m @ self.v, dim=0))
            sigma = torch.dot(self.u.clone(), m @ self.v.clone())  # clones: later updates don't touch the graph
        return weight / sigma


def _no_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast disabled on ``device`` (a no-op where autocast does not exist, e.g. the meta device)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def _sn(layer: M) -> M:
    """Spectral norm on ``layer.weight`` (the weight is drawn by :func:`init_weights`)."""
    parametrize.register_parametrization(layer, "weight", SpectralNorm(layer.weight))
    return layer


def init_weights(net: nn.Module, init: str) -> None:
    """BigGAN-PyTorch's ``init_weights``: every conv, linear and embedding weight of ``net`` drawn
    from N(0, 0.02) (``"N02"``) or orthogonal (``"ortho"``); biases keep PyTorch's default; the
    spectral-norm vectors restart against the new weights."""
    if init not in INITS:
        raise ModelConfigError(f"init must be one of {INITS}, got {init!r}")
    for mod in net.modules():
        if not isinstance(mod, nn.Conv2d | nn.Linear | nn.Embedding):
            continue
        sn = parametrize.is_parametrized(mod, "weight")
        weight = mod.parametrizations.weight.original if sn else mod.weight
        if init == "N02":
            nn.init.normal_(weight, 0.0, 0.02)
        else:
            nn.init.orthogonal_(weight)
        if sn:
            mod.parametrizations.weight[0].restart(weight)


def sn_conv(c_in: int, c_out: int, kernel: int = 3, bias: bool = True) -> nn.Conv2d:
    """Spectrally normalised conv with 'same' padding."""
    return _sn(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=bias))


def sn_linear(c_in: int, c_out: int, bias: bool = True) -> nn.Linear:
    """Spectrally normalised linear layer."""
    return _sn(nn.Linear(c_in, c_out, bias=bias))


def _check_arch(arch: str, resolution: int) -> None:
    """Reject an unknown architecture, or the CIFAR networks at any side but 32."""
    if arch not in ARCHS:
        raise ModelConfigError(f"arch must be one of {ARCHS}, got {arch!r}")
    if arch == "cifar" and resolution != 32:
        raise ModelConfigError(f"arch 'cifar' exists at 32 px only, got {resolution}; use arch = 'imagenet'")


def _check_attn(attn: int, sides: list[int]) -> None:
    """Reject an attention side that no block produces (0 means no attention)."""
    if attn and attn not in sides:
        raise ModelConfigError(f"attention side {attn} is not a block output side; use 0 or one of {sides}")


class ConditionalBN(nn.Module):
    """BatchNorm without affine parameters; gain ``1 + W_g y`` and bias ``W_b y`` from ``y``."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = sn_linear(cond_dim, channels, bias=False)
        self.bias = sn_linear(cond_dim, channels, bias=False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        # x (B, C, H, W), y (B, cond_dim)
        gain = 1 + self.gain(y)[:, :, None, None]  # (B, C, 1, 1)
        return self.bn(x) * gain + self.bias(y)[:, :, None, None]


class ClassBN(nn.Module):
    """BatchNorm without affine parameters; gain ``1 + E_g[label]`` and bias ``E_b[label]`` from plain
    class embeddings (BigGAN-PyTorch's ccbn without ``--G_shared``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(1, channels)
        self.bias = nn.Embedding(1, channels)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        # x (B, C, H, W), labels (B,) long
        gain = 1 + self.gain(labels)[:, :, None, None]  # (B, C, 1, 1)
        return self.bn(x) * gain + self.bias(labels)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN attention: keys and values max-pooled 2x; ``gamma = 0`` at init makes it the identity."""

    def __init__(self, ch: int):
        super().__init__()
        self.theta = sn_conv(ch, ch // 8, 1, bias=False)
        self.phi = sn_conv(ch, ch // 8, 1, bias=False)
        self.g = sn_conv(ch, ch // 2, 1, bias=False)
        self.o = sn_conv(ch // 2, ch, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q = self.theta(x).flatten(2).transpose(1, 2)  # (B, HW, C/8)
        k = F.max_pool2d(self.phi(x), 2).flatten(2).transpose(1, 2)  # (B, HW/4, C/8)
        v = F.max_pool2d(self.g(x), 2).flatten(2).transpose(1, 2)  # (B, HW/4, C/2)
        # softmax(q k^T) v, unscaled as in SAGAN; one head; queries in chunks so that the weights
        # (B, rows, HW/4) never take more than ATTN_CHUNK_BYTES (each row's softmax is its own)
        rows = max(1, ATTN_CHUNK_BYTES // (b * k.shape[1] * q.element_size()))
        o = torch.cat(
            [
                F.scaled_dot_product_attention(q[:, None, i : i + rows], k[:, None], v[:, None], scale=1.0)
                for i in range(0, h * w, rows)
            ],
            dim=2,
        )  # (B, 1, HW, C/2)
        o = o[:, 0].transpose(1, 2).reshape(b, c // 2, h, w)  # (B, C/2, H, W)
        return x + self.gamma * self.o(o)


class GBlock(nn.Module):
    """cBN -> ReLU -> up x2 -> conv3x3 -> cBN -> ReLU -> conv3x3, plus shortcut up x2 -> conv1x1."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int | None):
        super().__init__()
        # cond_dim None: the CIFAR networks' class-embedding BatchNorm
        self.bn1 = ClassBN(c_in) if cond_dim is None else ConditionalBN(c_in, cond_dim)
        self.conv1 = sn_conv(c_in, c_out)
        self.bn2 = ClassBN(c_out) if cond_dim is None else ConditionalBN(c_out, cond_dim)
        self.conv2 = sn_conv(c_out, c_out)
        self.conv_sc = sn_conv(c_in, c_out, 1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        # x (B, c_in, H, W), y (B, cond_dim) or labels (B,) -> (B, c_out, 2H, 2W)
        h = upsample2x(F.relu(self.bn1(x, y)))
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        # a 1x1 conv commutes with nearest upsampling; convolving first is cheaper
        return h + upsample2x(self.conv_sc(x))


class Generator(nn.Module):
    """BigGAN generator: shared embedding (one class) and hierarchical z (``arch="imagenet"``), or the
    CIFAR network's full z into the first linear and class-embedding BatchNorm (``arch="cifar"``)."""

    def __init__(self, resolution: int, ch: int = 64, attn: int = 0, init: str = "N02", arch: str = "imagenet"):
        super().__init__()
        _check_arch(arch, resolution)
        hier = arch == "imagenet"
        mults, first = (G_ARCH[resolution], 16) if hier else (CIFAR_G, CIFAR_G[0])
        self.z_dim = Z_CHUNK * (len(mults) + 1) if hier else CIFAR_Z_DIM
        chans = [first * ch] + [m * ch for m in mults]
        # the shared embedding (hierarchical z only): no spectral norm, no ortho reg
        self.shared = nn.Embedding(1, SHARED_DIM) if hier else None
        self.linear = sn_linear(Z_CHUNK if hier else self.z_dim, chans[0] * 4 * 4)
        cond = SHARED_DIM + Z_CHUNK if hier else None
        self.blocks = nn.ModuleList(
            GBlock(c_in, c_out, cond) for c_in, c_out in zip(chans[:-1], chans[1:], strict=True)
        )
        sides = [8 * 2**i for i in range(len(mults))]  # output side of each block
        _check_attn(attn, sides)
        self.attns = nn.ModuleList(
            SelfAttention(c) if s == attn else nn.Identity() for c, s in zip(chans[1:], sides, strict=True)
        )
        self.out_bn = nn.BatchNorm2d(chans[-1])
        self.out_conv = sn_conv(chans[-1], 3)
        init_weights(self, init)

    def forward(self, z: Tensor) -> Tensor:
        # z (B, z_dim) -> (B, 3, R, R) in [-1, 1]
        labels = torch.zeros(z.size(0), dtype=torch.long, device=z.device)  # the one class
        if self.shared is not None:  # hierarchical: chunk 0 to the linear, chunk k + 1 to block k's BatchNorms
            zs = z.split(Z_CHUNK, dim=1)
            y = self.shared(labels)  # (B, 128)
            h, conds = self.linear(zs[0]), [torch.cat([y, z_k], dim=1) for z_k in zs[1:]]
        else:
            h, conds = self.linear(z), [labels] * len(self.blocks)
        h = h.view(z.size(0), -1, 4, 4)  # (B, C0, 4, 4)
        for block, attn, cond in zip(self.blocks, self.attns, conds, strict=True):
            h = attn(block(h, cond))
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


class DBlock(nn.Module):
    """[ReLU ->] conv3x3 -> ReLU -> conv3x3 [-> avgpool], plus shortcut [avgpool ->] conv1x1."""

    def __init__(self, c_in: int, c_out: int, preact: bool, down: bool):
        super().__init__()
        self.preact, self.down = preact, down
        self.conv1 = sn_conv(c_in, c_out)
        self.conv2 = sn_conv(c_out, c_out)
        self.conv_sc = sn_conv(c_in, c_out, 1) if (c_in != c_out or down) else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        # x (B, c_in, H, W) -> (B, c_out, H/2, W/2), or (B, c_out, H, W) when not down
        h = F.relu(x) if self.preact else x
        h = self.conv2(F.relu(self.conv1(h)))
        sc = x
        if self.down:
            h, sc = avg_pool2x(h), avg_pool2x(sc)
        # 1x1 conv and average pooling commute, so pooling first matches both reference orders
        return h + self.conv_sc(sc)


class Discriminator(nn.Module):
    """BigGAN discriminator with the projection term for the single class."""

    def __init__(self, resolution: int, ch: int = 64, attn: int = 0, init: str = "N02", arch: str = "imagenet"):
        super().__init__()
        _check_arch(arch, resolution)
        mults = D_ARCH[resolution] if arch == "imagenet" else CIFAR_D[0]
        downs = [i < len(mults) - 1 for i in range(len(mults))] if arch == "imagenet" else CIFAR_D[1]
        chans = [3] + [m * ch for m in mults]
        self.blocks = nn.ModuleList(
            DBlock(chans[i], chans[i + 1], preact=i > 0, down=down) for i, down in enumerate(downs)
        )
        sides = [resolution >> sum(downs[: i + 1]) for i in range(len(mults))]  # output side of each block
        _check_attn(attn, sides)
        self.attns = nn.ModuleList(
            SelfAttention(c) if s == attn else nn.Identity() for c, s in zip(chans[1:], sides, strict=True)
        )
        self.linear = sn_linear(chans[-1], 1)
        self.embed = _sn(nn.Embedding(1, chans[-1]))  # projection embedding of the one class
        init_weights(self, init)

    def forward(self, x: Tensor) -> Tensor:
        # x (B, 3, R, R) -> logits (B,)
        h = x
        for block, attn in zip(self.blocks, self.attns, strict=True):
            h = attn(block(h))
        h = F.relu(h).sum(dim=(2, 3))  # (B, C)
        return self.linear(h).squeeze(1) + (h * self.embed.weight).sum(1)  # label 0 projection
