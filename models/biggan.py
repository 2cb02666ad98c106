"""BigGAN (Brock et al. 2019) in its unconditional form, for the few-shot comparison.

Unconditional use keeps the conditional machinery with ``n_classes = 1`` and every label 0:
the shared class embedding (128-d) and hierarchical latents (skip-z) stay, so the parameter
counts are those of the reference implementation at one class (ch = 64: G 31,850,756 /
D 38,425,282 at 128 px; G 37,136,132 / D 43,422,914 at 256 px).

Architecture (channel multipliers of ``ch``, one residual block per stage):

- G: ``z`` is split into chunks of 20; chunk 0 feeds an SN linear to a (16ch, 4, 4) map, chunk
  k (k >= 1) joins the shared embedding as the conditioning of block k - 1's two conditional
  BatchNorms. ``z_dim = 20 * (number of G blocks + 1)``: 120 at 128 px, 140 at 256 px (and
  80 / 100 / 160 / 180 at 32 / 64 / 512 / 1024 px).
- D: residual blocks, every one but the last halving the side; head ReLU -> sum over H, W ->
  SN linear, plus the projection term <embedding(label 0), features>.
- Resolutions 128 and 256 follow the reference tables (``arch_status = "reference"``).
  512 and 1024 are an *extension* (``arch_status = "extension"``; no reference BigGAN exists
  above 256 px): each adds one stage at the top with multiplier 1 (G's 512 table is the
  released code's; D mirrors it). 32 and 64 drop stages from the top of the 128 tables
  (``arch_status = "test-scale"``) and exist for fast CPU tests.
- Self-attention after the G block whose output side is ``g_attn`` and the D block whose output
  side is ``d_attn`` (defaults: G 64, or 128 from 256 px up; D 64; both capped so that small
  models keep one attention layer).

Training (one ``train_step``): ``d_steps`` D updates, then one G update, then EMA. Each D update
draws fresh z and a fresh augmentation but *reuses the loop's real batch* (the released code
draws a new real batch per D step; with ~100 training images this makes little difference).
Fakes and reals go through D in one concatenated pass, as in the released code. Hinge loss,
DiffAugment on reals and fakes in both steps, Adam betas (0, 0.999) and eps 1e-6 (the
released scripts' values). Orthogonal regularization (paper form, see :func:`ortho_penalty`)
is added to G's gradients after the backward pass. EMA decay 0.9999 from step ``ema_start``;
before it, the EMA generator is a copy. Init: orthogonal weights (the released default).

Sampling: see :class:`BigGAN` (EMA of the running statistics by default; standing statistics
selectable). Truncation: see :func:`truncate_z`.
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from models.base import GANModel, Sampling
from models.common import check_policy, diff_augment, ema_update
from models.registry import register_model

SHARED_DIM = 128  # shared class-embedding size
Z_CHUNK = 20  # latent chunk per G stage (plus one for the first linear)
TRUNC_BOUND = 2.0  # truncated-normal bound used by the truncation trick

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
ARCH_STATUS = {
    32: "test-scale",
    64: "test-scale",
    128: "reference",
    256: "reference",
    512: "extension",
    1024: "extension",
}

M = TypeVar("M", nn.Conv2d, nn.Linear, nn.Embedding)
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
    """Orthogonal init of ``layer.weight`` (the released default), then spectral norm."""
    nn.init.orthogonal_(layer.weight)
    parametrize.register_parametrization(layer, "weight", SpectralNorm(layer.weight))
    return layer


def sn_conv(c_in: int, c_out: int, kernel: int = 3, bias: bool = True) -> nn.Conv2d:
    """Spectrally normalised conv with 'same' padding."""
    return _sn(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=bias))


def sn_linear(c_in: int, c_out: int, bias: bool = True) -> nn.Linear:
    """Spectrally normalised linear layer."""
    return _sn(nn.Linear(c_in, c_out, bias=bias))


def truncate_z(z: Tensor, psi: float) -> Tensor:
    """The truncation trick applied to standard-normal latents ``z``.

    ``psi = 1`` returns ``z`` unchanged (no truncation, as in training). For ``psi < 1`` each
    entry is mapped through the normal CDF onto a normal truncated to [-2, 2] (the distribution
    that resampling out-of-range values gives, but a deterministic, monotone function of ``z``)
    and scaled by ``psi``.
    """
    if not 0.0 < psi <= 1.0:
        raise ValueError(f"truncation psi must be in (0, 1], got {psi}")
    if psi == 1.0:
        return z
    lo = 0.5 * (1.0 + math.erf(-TRUNC_BOUND / math.sqrt(2.0)))  # Phi(-2)
    u = lo + (1.0 - 2.0 * lo) * torch.special.ndtr(z)  # in [Phi(-2), Phi(2)]
    return psi * torch.special.ndtri(u)


def ortho_penalty(w: Tensor) -> Tensor:
    """``||W W^T * (1 - I)||_F^2`` with W = ``w`` flattened to (out, fan_in): the paper's R_beta / beta."""
    m = w.flatten(1)  # (n, k)
    gram = m @ m.T  # (n, n)
    return (gram * (1 - torch.eye(m.size(0), dtype=m.dtype, device=m.device))).pow(2).sum()


def ortho_grad(w: Tensor) -> Tensor:
    """Gradient of :func:`ortho_penalty` w.r.t. ``w``: ``4 (W W^T * (1 - I)) W``, without autograd.

    The released code adds ``2 (W W^T * (1 - I)) W`` (the gradient of half the penalty); this
    module follows the paper's ``beta * ||.||^2``.
    """
    m = w.flatten(1)  # (n, k)
    if m.size(0) <= m.size(1):
        gram = m @ m.T  # (n, n)
        gram.fill_diagonal_(0)
        g = gram @ m
    else:  # same product without the (n, n) Gram matrix: W (W^T W) - diag(W W^T) W
        g = m @ (m.T @ m) - m.pow(2).sum(1, keepdim=True) * m
    return (4 * g).view_as(w)


def _check_attn(attn: int, sides: list[int]) -> None:
    """Reject an attention side that no block produces (0 means no attention)."""
    if attn and attn not in sides:
        raise ValueError(f"attention side {attn} is not a block output side; use 0 or one of {sides}")


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
        o = torch.cat([F.scaled_dot_product_attention(q[:, None, i : i + rows], k[:, None], v[:, None], scale=1.0)
                       for i in range(0, h * w, rows)], dim=2)  # fmt: skip  # (B, 1, HW, C/2)
        o = o[:, 0].transpose(1, 2).reshape(b, c // 2, h, w)  # (B, C/2, H, W)
        return x + self.gamma * self.o(o)


class GBlock(nn.Module):
    """cBN -> ReLU -> up x2 -> conv3x3 -> cBN -> ReLU -> conv3x3, plus shortcut up x2 -> conv1x1."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.bn1 = ConditionalBN(c_in, cond_dim)
        self.conv1 = sn_conv(c_in, c_out)
        self.bn2 = ConditionalBN(c_out, cond_dim)
        self.conv2 = sn_conv(c_out, c_out)
        self.conv_sc = sn_conv(c_in, c_out, 1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        # x (B, c_in, H, W), y (B, cond_dim) -> (B, c_out, 2H, 2W)
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        # a 1x1 conv commutes with nearest upsampling; convolving first is cheaper
        return h + F.interpolate(self.conv_sc(x), scale_factor=2.0, mode="nearest")


class Generator(nn.Module):
    """BigGAN generator with shared embedding (one class) and hierarchical z."""

    def __init__(self, resolution: int, ch: int = 64, attn: int = 64):
        super().__init__()
        mults = G_ARCH[resolution]
        self.z_dim = Z_CHUNK * (len(mults) + 1)
        chans = [16 * ch] + [m * ch for m in mults]
        self.shared = nn.Embedding(1, SHARED_DIM)  # no spectral norm, no ortho reg
        nn.init.orthogonal_(self.shared.weight)
        self.linear = sn_linear(Z_CHUNK, chans[0] * 4 * 4)
        self.blocks = nn.ModuleList(
            GBlock(c_in, c_out, SHARED_DIM + Z_CHUNK) for c_in, c_out in zip(chans[:-1], chans[1:], strict=True)
        )
        sides = [8 * 2**i for i in range(len(mults))]  # output side of each block
        _check_attn(attn, sides)
        self.attns = nn.ModuleList(
            SelfAttention(c) if s == attn else nn.Identity() for c, s in zip(chans[1:], sides, strict=True)
        )
        self.out_bn = nn.BatchNorm2d(chans[-1])
        self.out_conv = sn_conv(chans[-1], 3)

    def forward(self, z: Tensor) -> Tensor:
        # z (B, z_dim) -> (B, 3, R, R) in [-1, 1]
        zs = z.split(Z_CHUNK, dim=1)
        y = self.shared(torch.zeros(z.size(0), dtype=torch.long, device=z.device))  # (B, 128), label 0
        h = self.linear(zs[0]).view(z.size(0), -1, 4, 4)  # (B, 16ch, 4, 4)
        for block, attn, z_k in zip(self.blocks, self.attns, zs[1:], strict=True):
            h = attn(block(h, torch.cat([y, z_k], dim=1)))
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
            h, sc = F.avg_pool2d(h, 2), F.avg_pool2d(sc, 2)
        # 1x1 conv and average pooling commute, so pooling first matches both reference orders
        return h + self.conv_sc(sc)


class Discriminator(nn.Module):
    """BigGAN discriminator with the projection term for the single class."""

    def __init__(self, resolution: int, ch: int = 64, attn: int = 64):
        super().__init__()
        mults = D_ARCH[resolution]
        chans = [3] + [m * ch for m in mults]
        n = len(mults)
        self.blocks = nn.ModuleList(DBlock(chans[i], chans[i + 1], preact=i > 0, down=i < n - 1) for i in range(n))
        sides = [max(resolution >> (i + 1), 4) for i in range(n)]  # output side of each block
        _check_attn(attn, sides)
        self.attns = nn.ModuleList(
            SelfAttention(c) if s == attn else nn.Identity() for c, s in zip(chans[1:], sides, strict=True)
        )
        self.linear = sn_linear(chans[-1], 1)
        self.embed = _sn(nn.Embedding(1, chans[-1]))  # projection embedding of the one class

    def forward(self, x: Tensor) -> Tensor:
        # x (B, 3, R, R) -> logits (B,)
        h = x
        for block, attn in zip(self.blocks, self.attns, strict=True):
            h = attn(block(h))
        h = F.relu(h).sum(dim=(2, 3))  # (B, C)
        return self.linear(h).squeeze(1) + (h * self.embed.weight).sum(1)  # label 0 projection


class BigGAN(GANModel):
    """Unconditional BigGAN: hinge loss, DiffAugment, ortho reg, EMA, truncation at sampling.

    Sampling for evaluation: eval-mode BatchNorm with the EMA generator's running statistics,
    which the EMA averages like the weights (BigGAN-PyTorch ``utils.ema`` blends every state
    entry). ``bn="standing"`` re-estimates them for the sampled generator instead (the authors'
    ``--accumulate_stats``, 16 passes); ``bn="batch"`` uses batch statistics.
    """

    sampling = Sampling(
        "running", 50, "ema-of-running",
        "BigGAN-PyTorch utils.ema averages every state entry (decay 0.9999 after ema_start); G in eval mode",
    )  # fmt: skip

    def __init__(
        self,
        resolution: int,
        *,
        ch: int = 64,  # width of G and D (the paper's ch)
        batch_size: int = 8,  # images per step; 8 matches FastGAN's few-shot setting
        lr_g: float = 1e-4,  # G Adam lr (released scripts; the paper: 5e-5)
        lr_d: float = 4e-4,  # D Adam lr (released scripts; the paper: 2e-4)
        d_steps: int = 1,  # D updates per G update (released scripts 1; the paper 2)
        ortho_reg: float = 1e-4,  # beta of the orthogonal regularization on G; 0 turns it off
        ema_decay: float = 0.9999,  # EMA decay of g_ema once ema_start is reached
        ema_start: int = 1000,  # step from which the EMA averages; before it g_ema copies G
        policy: str = "translation,cutout",  # DiffAugment policy ('' = none)
        g_attn: int | None = None,  # side of G's attention layer; None = default, 0 = none
        d_attn: int | None = None,  # side of D's attention layer; None = default, 0 = none
    ):
        super().__init__()
        if resolution not in G_ARCH:
            raise ValueError(f"BigGAN resolution must be one of {sorted(G_ARCH)}, got {resolution}")
        if d_steps < 1:
            raise ValueError(f"d_steps must be >= 1, got {d_steps}")
        if g_attn is None:
            g_attn = 128 if resolution >= 256 else min(64, resolution)
        if d_attn is None:
            d_attn = min(64, resolution // 2)
        self.hparams = dict(
            ch=ch,
            batch_size=batch_size,
            lr_g=lr_g,
            lr_d=lr_d,
            d_steps=d_steps,
            ortho_reg=ortho_reg,
            ema_decay=ema_decay,
            ema_start=ema_start,
            policy=check_policy(policy),
            g_attn=g_attn,
            d_attn=d_attn,
        )
        self.resolution, self.batch_size = resolution, batch_size
        self.arch_status = ARCH_STATUS[resolution]
        self.d_steps, self.ortho_reg, self.policy = d_steps, ortho_reg, policy
        self.ema_decay, self.ema_start = ema_decay, ema_start

        self.generator = Generator(resolution, ch, g_attn)
        self.discriminator = Discriminator(resolution, ch, d_attn)
        self.g_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.z_dim = self.generator.z_dim
        # every G matrix/conv weight (the raw weight under spectral norm), not the shared embedding
        self._ortho_params = [
            p for name, p in self.generator.named_parameters() if p.ndim >= 2 and not name.startswith("shared.")
        ]
        adam = dict(betas=(0.0, 0.999), eps=1e-6)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr_g, **adam)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr_d, **adam)

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        G, D = self.generator.train(), self.discriminator.train()
        b = real.size(0)

        D.requires_grad_(True)
        for _ in range(self.d_steps):
            with torch.no_grad():
                fake = G(torch.randn(b, self.z_dim, device=real.device))
            with self.region("diff_augment"):
                both = diff_augment(torch.cat([fake, real]), self.policy)
            logits = D(both)  # (2B,)
            d_fake, d_real = logits.split(b)
            loss_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()

        D.requires_grad_(False)
        fake = G(torch.randn(b, self.z_dim, device=real.device))
        with self.region("diff_augment"):
            fake = diff_augment(fake, self.policy)
        loss_g = -D(fake).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        if self.ortho_reg > 0:
            with torch.no_grad():
                for p in self._ortho_params:
                    p.grad.add_(ortho_grad(p), alpha=self.ortho_reg)
        self.opt_g.step()
        D.requires_grad_(True)

        with self.region("ema_update"):
            ema_update(self.g_ema, G, self.ema_decay if step >= self.ema_start else 0.0, buffers="average")
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": d_real.detach().mean(),
            "d_fake": d_fake.detach().mean(),
        }

    def synthesize(self, g: nn.Module, z: Tensor, truncation: float) -> Tensor:
        """Images (B, 3, R, R) in [-1, 1] from standard-normal ``z`` (B, z_dim); ``truncation``
        < 1 applies :func:`truncate_z`."""
        return g(truncate_z(z, truncation))


@register_model("biggan")
def biggan(resolution: int, **kwargs: Any) -> BigGAN:
    """BigGAN with the released scripts' setting: lr G 1e-4 / D 4e-4, one D step per G step."""
    return BigGAN(resolution, **kwargs)


@register_model("biggan-paper")
def biggan_paper(resolution: int, **kwargs: Any) -> BigGAN:
    """BigGAN with the paper's setting: lr G 5e-5 / D 2e-4, two D steps per G step."""
    return BigGAN(resolution, **{"lr_g": 5e-5, "lr_d": 2e-4, "d_steps": 2, **kwargs})
