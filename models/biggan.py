"""BigGAN (Brock et al. 2019), unconditional, for the few-shot comparison: an extra row (the FastGAN
paper has no BigGAN row).

Recipe: **one source for the defaults**, the DiffAugment authors' BigGAN for limited data
(DA = mit-han-lab/data-efficient-gans @0b63395, ``DiffAugment-biggan-cifar/``, script
``scripts/DiffAugment-biggan-cifar10.sh``, itself BigGAN-PyTorch's ``launch_cifar_ema.sh`` plus
DiffAugment): batch 50, 4 D steps per G step, Adam lr 2e-4 for G and D with betas (0, 0.999) and
eps 1e-8, no orthogonal regularisation (``G_ortho`` 0), EMA decay 0.9999 from iteration 1000
averaging every state entry (weights and BatchNorm/spectral-norm buffers), DiffAugment
'translation,cutout' on reals and fakes in both steps, x-flips (the loop's). DA's BigGAN is a
32 px CIFAR network; the architecture here is BigGAN-PyTorch @9845943's 128 / 256 px tables
(``models.biggan_layers``; ch 64, the parser default), the only reference at those sizes.

Other sources as keyword overrides (or the ``biggan-paper`` name):

- BigGAN paper / BigGAN-PyTorch parser defaults: ``lr_g=5e-5, lr_d=2e-4, d_steps=2``, and the
  paper's ``ortho_reg=1e-4`` (``biggan-paper``).
- BigGAN-PyTorch released ImageNet script (``launch_BigGAN_bs256x8.sh``): ``lr_g=1e-4,
  lr_d=4e-4, d_steps=1, adam_eps=1e-6, ema_start=20000``.

Training (one ``train_step``): ``d_steps`` D updates, then one G update, then EMA. Each D update
draws fresh z and a fresh augmentation but *reuses the loop's real batch* (the released code
draws a new real batch per D step; with ~100 training images this makes little difference).
Fakes and reals go through D in one concatenated pass, as in the released code. Hinge loss.
Orthogonal regularization (paper form, see :func:`ortho_penalty`), when on, is added to G's
gradients after the backward pass.

Sampling: eval-mode BatchNorm with the EMA generator's running statistics (BigGAN-PyTorch's
convention); ``bn="standing"`` re-estimates them (``--accumulate_stats``). DA's own evaluation
samples G_ema in train-mode BatchNorm at batch 50 (no ``--G_eval_mode``): ``bn="batch"`` with a
generation batch of 50. Truncation: see :func:`truncate_z`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import GANModel, Sampling
from models.biggan_layers import ARCH_STATUS, G_ARCH, Discriminator, Generator
from models.common import diff_augment, ema_update
from models.config import ModelConfig
from models.registry import ModelConfigError, register_model

TRUNC_BOUND = 2.0  # truncated-normal bound used by the truncation trick
DA = "DiffAugment-biggan-cifar (mit-han-lab/data-efficient-gans @0b63395) scripts/DiffAugment-biggan-cifar10.sh"
ARCH = "BigGAN-PyTorch @9845943 128/256 px architecture"


@dataclasses.dataclass(frozen=True)
class BigGANConfig(ModelConfig):
    """BigGAN's hyperparameters; defaults from DA's BigGAN-CIFAR script (module docstring)."""

    family: ClassVar[str] = "biggan"

    ch: int = 64  # width multiplier of G and D (BigGAN-PyTorch --G_ch/--D_ch default)
    batch_size: int = 50  # images per step (DA --batch_size 50)
    lr_g: float = 2e-4  # G Adam lr (DA --G_lr; paper 5e-5; ImageNet script 1e-4)
    lr_d: float = 2e-4  # D Adam lr (DA --D_lr; paper 2e-4; ImageNet script 4e-4)
    d_steps: int = 4  # D updates per G update (DA --num_D_steps; paper 2; ImageNet script 1)
    adam_eps: float = 1e-8  # Adam epsilon of G and D (DA / parser default; ImageNet script 1e-6)
    ortho_reg: float = 0.0  # beta of G's orthogonal regularisation (DA --G_ortho 0; paper text 1e-4)
    ema_decay: float = 0.9999  # decay of g_ema once ema_start is reached (DA --ema_decay)
    ema_start: int = 1000  # step from which the EMA averages; before it g_ema copies G (DA --ema_start)
    policy: str = "translation,cutout"  # DiffAugment ops on reals and fakes, D and G steps (DA --DiffAugment)
    g_attn: int | None = None  # side of G's attention block; None: the tables' (64; 128 from 256 px); 0: none
    d_attn: int | None = None  # side of D's attention block; None: the tables' (64); 0: none

    def __post_init__(self) -> None:
        self._positive_int("ch", "batch_size", "d_steps")
        self._positive("lr_g", "lr_d", "adam_eps")
        self._non_negative("ortho_reg", "ema_start")
        self._unit_interval("ema_decay")
        self._policy("policy")
        for key in ("g_attn", "d_attn"):
            if getattr(self, key) is not None:
                self._non_negative(key)

    def resolved(self, resolution: int) -> BigGANConfig:
        """The attention sides filled in for ``resolution`` (capped so small models keep one layer)."""
        g_attn = (128 if resolution >= 256 else min(64, resolution)) if self.g_attn is None else self.g_attn
        d_attn = min(64, resolution // 2) if self.d_attn is None else self.d_attn
        return self.replace(g_attn=g_attn, d_attn=d_attn)


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


class BigGAN(GANModel):
    """Unconditional BigGAN: hinge loss, DiffAugment, optional ortho reg, EMA, truncation at sampling
    (recipe and sampling: module docstring)."""

    sampling = Sampling(
        "running",
        50,
        "ema-of-running",
        "BigGAN-PyTorch utils.ema averages every state entry (decay 0.9999 after ema_start); G in eval mode",
    )

    def __init__(self, resolution: int, cfg: BigGANConfig) -> None:
        super().__init__()
        if resolution not in G_ARCH:
            raise ModelConfigError(f"resolution must be one of {sorted(G_ARCH)} for biggan, got {resolution}")
        self.cfg = cfg = cfg.resolved(resolution)
        self.hparams = cfg.hparams()
        self.resolution, self.batch_size = resolution, cfg.batch_size
        self.arch_status = ARCH_STATUS[resolution]
        self.generator = Generator(resolution, cfg.ch, cfg.g_attn)
        self.discriminator = Discriminator(resolution, cfg.ch, cfg.d_attn)
        self.g_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.z_dim = self.generator.z_dim
        # every G matrix/conv weight (the raw weight under spectral norm), not the shared embedding
        self._ortho_params = [
            p for name, p in self.generator.named_parameters() if p.ndim >= 2 and not name.startswith("shared.")
        ]
        adam = dict(betas=(0.0, 0.999), eps=cfg.adam_eps)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr_g, **adam)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr_d, **adam)

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        G, D = self.generator.train(), self.discriminator.train()
        b = real.size(0)

        D.requires_grad_(True)
        for _ in range(self.cfg.d_steps):
            with torch.no_grad():
                fake = G(torch.randn(b, self.z_dim, device=real.device))
            with self.region("diff_augment"):
                both = diff_augment(torch.cat([fake, real]), self.cfg.policy)
            logits = D(both)  # (2B,)
            d_fake, d_real = logits.split(b)
            loss_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()

        D.requires_grad_(False)
        fake = G(torch.randn(b, self.z_dim, device=real.device))
        with self.region("diff_augment"):
            fake = diff_augment(fake, self.cfg.policy)
        loss_g = -D(fake).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        if self.cfg.ortho_reg > 0:
            with torch.no_grad():
                for p in self._ortho_params:
                    p.grad.add_(ortho_grad(p), alpha=self.cfg.ortho_reg)
        self.opt_g.step()
        D.requires_grad_(True)

        with self.region("ema_update"):
            ema_update(self.g_ema, G, self.cfg.ema_decay if step >= self.cfg.ema_start else 0.0, buffers="average")
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


# ----------------------------------------------------------------------------- registered names

TINY = dict(ch=4, batch_size=2)


@register_model("biggan", recipe=f"{DA} (training) on {ARCH}", tiny=TINY)
def biggan(resolution: int, **kw: Any) -> BigGAN:
    """BigGAN with the DiffAugment authors' limited-data recipe (module docstring): batch 50, lr 2e-4 /
    2e-4, 4 D steps, eps 1e-8, no ortho reg, EMA 0.9999 from step 1000, DiffAugment
    'translation,cutout'. An extra row: the FastGAN paper has no BigGAN.

    Params (ch 64, one class) at 128 / 256 px: G 31,850,756 / 37,136,132; D 38,425,282 / 43,422,914
    (BigGAN-PyTorch instantiated, comparison_models.md). 512 and 1024 px are an extension.
    """
    return BigGAN(resolution, BigGANConfig.build(kw))


@register_model("biggan-paper", recipe=f"BigGAN paper / BigGAN-PyTorch @9845943 parser defaults on {ARCH}", tiny=TINY)
def biggan_paper(resolution: int, **kw: Any) -> BigGAN:
    """biggan with the BigGAN paper's optimisation: lr G 5e-5 / D 2e-4, two D steps per G step
    (BigGAN-PyTorch's parser defaults) and orthogonal regularisation 1e-4 (the paper text; the
    released scripts use 0); the rest as biggan.

    Params: as biggan.
    """
    return BigGAN(resolution, BigGANConfig.build({"lr_g": 5e-5, "lr_d": 2e-4, "d_steps": 2, "ortho_reg": 1e-4} | kw))
