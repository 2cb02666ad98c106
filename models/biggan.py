"""BigGAN (Brock et al. 2019), unconditional, for the few-shot comparison: an extra row (the FastGAN
paper has no BigGAN row).

Recipe: **one source per setting group** (``sources`` of each registered name, printed by
``run_bench.py list``). ``biggan`` follows the DiffAugment authors' BigGAN for limited data (DA =
mit-han-lab/data-efficient-gans @0b63395, ``DiffAugment-biggan-cifar/``: the script
``scripts/DiffAugment-biggan-cifar10.sh`` and ``eval.py``) in every group but the architecture:

- init: N(0, 0.02) on every conv, linear and embedding weight of G and D (``--G_init N02 --D_init N02``);
- optimiser: batch 50, 4 D steps per G step, each on its own real batch (``train.py`` loads
  ``batch_size * num_D_steps`` reals per iteration and ``train_fns.py`` gives D step k the k-th
  chunk: :attr:`BigGAN.reals_per_step`), Adam lr 2e-4 for G and D, betas (0, 0.999), eps 1e-8;
- regularisation / augmentation: hinge loss, no orthogonal regularisation (``--G_ortho 0.0``),
  DiffAugment 'translation,cutout' on fakes and reals in both steps, x-flips (``--mirror_augment``;
  the loop's);
- EMA: decay 0.9999 from iteration 1000 averaging every state entry (weights and BatchNorm /
  spectral-norm buffers; ``utils.ema``);
- sampling: G_ema in train-mode BatchNorm, batches of the training batch size (``eval.py`` without
  ``--G_eval_mode``: ``G.train()``, ``G_batch_size = max(G_batch_size, batch_size)``); eval-mode
  running statistics (``bn="running"``, BigGAN-PyTorch's ``--G_eval_mode``) and standing
  statistics (``bn="standing"``, ``--accumulate_stats``) stay selectable.

Architecture (``arch``; ``models.biggan_layers``; ch 64, the parser default): at 32 px DA's own
network, BigGAN-PyTorch @9845943's CIFAR tables with its parser's latents (``--dim_z 128`` into G's
first linear, no shared embedding, no hierarchical z: DA's script sets neither ``--G_shared`` nor
``--hier``); at other sizes, where DA has no network, the 128 / 256 px ImageNet tables with the
shared class embedding and hierarchical latents of the ImageNet script, the only reference there.
Attention is off as in DA's script (``--G_attn 0 --D_attn 0``).

``biggan-paper`` takes the BigGAN paper's model and optimisation (orthogonal init, attention at
the tables' sides, lr G 5e-5 / D 2e-4, two D steps, orthogonal regularisation 1e-4) and DA's
limited-data training for the rest. The released ImageNet script's optimiser as keyword overrides:
``lr_g=1e-4, lr_d=4e-4, d_steps=1, adam_eps=1e-6, ema_start=20000``.

Training (one ``train_step``): ``d_steps`` D updates, each on fresh z, a fresh augmentation and
its own chunk of the real batch, then one G update, then EMA. Fakes and reals go through D in one
concatenated pass, as in the released code. Orthogonal regularization (paper form, see
:func:`ortho_penalty`), when on, is added to G's gradients after the backward pass. Truncation:
see :func:`truncate_z`.
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
from models.biggan_layers import ARCH_STATUS, ARCHS, G_ARCH, INITS, Discriminator, Generator
from models.common import diff_augment, ema_update
from models.config import ModelConfig
from models.registry import ModelConfigError, Source, register_model

TRUNC_BOUND = 2.0  # truncated-normal bound used by the truncation trick
DA = "DiffAugment-biggan-cifar (mit-han-lab/data-efficient-gans @0b63395) scripts/DiffAugment-biggan-cifar10.sh"
ARCH = "BigGAN-PyTorch @9845943 128/256 px architecture"


@dataclasses.dataclass(frozen=True)
class BigGANConfig(ModelConfig):
    """BigGAN's hyperparameters; defaults from DA's BigGAN-CIFAR script (module docstring). ``ch``,
    ``batch_size`` and ``d_steps`` scale the recipe (the CPU demo shrinks them)."""

    family: ClassVar[str] = "biggan"

    ch: int = 64  # width multiplier of G and D (BigGAN-PyTorch --G_ch/--D_ch default)
    arch: str | None = None  # "cifar" (DA's 32 px network) or "imagenet"; None: "cifar" at 32 px, else "imagenet"
    init: str = "N02"  # G and D weight init: N(0, 0.02) (DA --G_init N02 --D_init N02) or "ortho" (parser default)
    batch_size: int = 50  # images per step (DA --batch_size 50)
    lr_g: float = 2e-4  # G Adam lr (DA --G_lr; paper 5e-5; ImageNet script 1e-4)
    lr_d: float = 2e-4  # D Adam lr (DA --D_lr; paper 2e-4; ImageNet script 4e-4)
    d_steps: int = 4  # D updates per G update, each on its own real batch (DA --num_D_steps; paper 2; ImageNet 1)
    adam_eps: float = 1e-8  # Adam epsilon of G and D (DA / parser default; ImageNet script 1e-6)
    ortho_reg: float = 0.0  # beta of G's orthogonal regularisation (DA --G_ortho 0; paper text 1e-4)
    ema_decay: float = 0.9999  # decay of g_ema once ema_start is reached (DA --ema_decay)
    ema_start: int = 1000  # step from which the EMA averages; before it g_ema copies G (DA --ema_start)
    policy: str = "translation,cutout"  # DiffAugment ops on reals and fakes, D and G steps (DA --DiffAugment)
    # sides of G's and D's attention blocks; 0: none (DA --G_attn 0 --D_attn 0); None (biggan-paper): the tables'
    g_attn: int | None = 0  # None: 64, 128 at 256 px
    d_attn: int | None = 0  # None: 64

    def __post_init__(self) -> None:
        self._positive_int("ch", "batch_size", "d_steps")
        self._positive("lr_g", "lr_d", "adam_eps")
        self._non_negative("ortho_reg", "ema_start")
        self._unit_interval("ema_decay")
        self._policy("policy")
        self._choice("init", INITS)
        if self.arch is not None:
            self._choice("arch", ARCHS)
        for key in ("g_attn", "d_attn"):
            if getattr(self, key) is not None:
                self._non_negative(key)

    def resolved(self, resolution: int) -> BigGANConfig:
        """The architecture and attention sides filled in for ``resolution`` (attention capped so small
        models keep one layer)."""
        arch = ("cifar" if resolution == 32 else "imagenet") if self.arch is None else self.arch
        g_attn = (128 if resolution >= 256 else min(64, resolution)) if self.g_attn is None else self.g_attn
        d_attn = min(64, resolution // 2) if self.d_attn is None else self.d_attn
        return self.replace(arch=arch, g_attn=g_attn, d_attn=d_attn)


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

    def __init__(self, resolution: int, cfg: BigGANConfig) -> None:
        super().__init__()
        if resolution not in G_ARCH:
            raise ModelConfigError(f"resolution must be one of {sorted(G_ARCH)} for biggan, got {resolution}")
        self.cfg = cfg = cfg.resolved(resolution)
        self.hparams = cfg.hparams()
        self.resolution, self.batch_size = resolution, cfg.batch_size
        self.arch_status = "reference" if cfg.arch == "cifar" else ARCH_STATUS[resolution]
        # DA eval.py: G_ema in train mode (no --G_eval_mode), G_batch_size = max(0, batch_size)
        self.sampling = Sampling("batch", cfg.batch_size, "batch", "DA eval.py: G_ema.train(), batch = batch_size")
        self.generator = Generator(resolution, cfg.ch, cfg.g_attn, cfg.init, cfg.arch)
        self.discriminator = Discriminator(resolution, cfg.ch, cfg.d_attn, cfg.init, cfg.arch)
        self.g_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.z_dim = self.generator.z_dim
        # every G matrix/conv weight (the raw weight under spectral norm), not the shared embedding
        self._ortho_params = [
            p for name, p in self.generator.named_parameters() if p.ndim >= 2 and not name.startswith("shared.")
        ]
        adam = dict(betas=(0.0, 0.999), eps=cfg.adam_eps)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr_g, **adam)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr_d, **adam)

    @property
    def reals_per_step(self) -> int:
        """``batch_size`` reals for each of the ``d_steps`` D updates (DA train.py's D_batch_size)."""
        return self.batch_size * self.cfg.d_steps

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        """``d_steps`` D updates, D step k on the k-th ``batch_size`` chunk of ``real``; one G update; EMA."""
        G, D = self.generator.train(), self.discriminator.train()
        b = self.batch_size
        if real.size(0) != self.reals_per_step:
            raise ValueError(
                f"biggan takes {self.reals_per_step} reals per step (batch_size x d_steps), got {len(real)}"
            )

        D.requires_grad_(True)
        for real_k in real.split(b):
            with torch.no_grad():
                fake = G(torch.randn(b, self.z_dim, device=real.device))
            with self.region("diff_augment"):
                both = diff_augment(torch.cat([fake, real_k]), self.cfg.policy)
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
DA_SRC, BG_SRC = "DiffAugment-biggan-cifar @0b63395", "BigGAN-PyTorch @9845943"
PAPER_SRC = "BigGAN paper (Brock et al. 2019) / BigGAN-PyTorch @9845943 parser"
TABLES = "G/D tables of BigGAN.py at 128/256 px (32/64 px: cuts of the 128 table; 512/1024: extension), ch 64"
CIFAR = "32 px: the CIFAR tables of BigGAN.py, dim_z 128 into G's linear, no shared embedding or hierarchical z"
DA_SOURCES = {
    "architecture": Source(f"{DA_SRC} / {BG_SRC}", f"{CIFAR} (DA's network: parser defaults); other sizes: "
                           f"{TABLES}, shared embedding + hierarchical z (ImageNet script); no attention "
                           "(DA's --G_attn 0 --D_attn 0)"),
    "init": Source(DA_SRC, "N(0, 0.02) on every conv/linear/embedding weight (--G_init N02 --D_init N02)"),
    "optimiser/schedule": Source(DA_SRC, "batch 50, 4 D steps per G step each on its own real batch, "
                                 "Adam 2e-4 / 2e-4, betas (0, 0.999), eps 1e-8 (DiffAugment-biggan-cifar10.sh)"),
    "regularisation/augmentation": Source(DA_SRC, "hinge loss, no ortho reg (--G_ortho 0.0), DiffAugment "
                                          "translation,cutout on D and G steps, x-flips (--mirror_augment)"),
    "ema": Source(DA_SRC, "decay 0.9999 over every state entry, a copy of G before iteration 1000 (--ema_start 1000)"),
    "sampling/eval": Source(DA_SRC, "G_ema in train-mode BatchNorm, batches of batch_size (eval.py without "
                            "--G_eval_mode)"),
}  # fmt: skip
PAPER_SOURCES = DA_SOURCES | {
    "architecture": Source(BG_SRC, f"{TABLES}, shared embedding + hierarchical z, attention at 64 px (128 at 256 px)"),
    "init": Source(BG_SRC, "orthogonal (parser default --G_init/--D_init ortho; the paper's)"),
    "optimiser/schedule": Source(PAPER_SRC, "lr G 5e-5 / D 2e-4, 2 D steps (parser defaults); batch 50 as DA"),
    "regularisation/augmentation": Source(PAPER_SRC, "orthogonal regularisation 1e-4 (paper text); DA's DiffAugment "
                                          "translation,cutout and x-flips"),
}  # fmt: skip


@register_model("biggan", recipe=f"{DA} (training, eval.py sampling) on {ARCH}", tiny=TINY, sources=DA_SOURCES)
def biggan(resolution: int, **kw: Any) -> BigGAN:
    """BigGAN with the DiffAugment authors' limited-data recipe (module docstring): their CIFAR network
    at 32 px (the ImageNet tables elsewhere), N(0, 0.02) init,
    no attention, batch 50, 4 D steps on 4 real batches, lr 2e-4 / 2e-4, eps 1e-8, no ortho reg,
    EMA 0.9999 from step 1000, DiffAugment 'translation,cutout', sampling in train-mode BatchNorm.
    An extra row: the FastGAN paper has no BigGAN.

    Params (ch 64, one class, no attention; instantiated here) at 128 / 256 px: G 31,830,275 / 37,115,651;
    D 38,420,161 / 43,402,433. With the tables' attention (biggan-paper) they are BigGAN-PyTorch's
    (comparison_models.md). 512 and 1024 px are an extension.
    """
    return BigGAN(resolution, BigGANConfig.build(kw))


@register_model("biggan-paper", recipe=f"BigGAN paper / {BG_SRC} parser defaults on {ARCH}", tiny=TINY,
                sources=PAPER_SOURCES)  # fmt: skip
def biggan_paper(resolution: int, **kw: Any) -> BigGAN:
    """biggan with the BigGAN paper's model and optimisation: the ImageNet architecture at every size,
    orthogonal init, attention at the tables' sides, lr G 5e-5 / D 2e-4, two D steps per G step
    (BigGAN-PyTorch's parser defaults) and orthogonal regularisation 1e-4 (the paper text; the
    released scripts use 0); DA's batch, augmentation, EMA and sampling.

    Params (ch 64, one class) at 128 / 256 px: G 31,850,756 / 37,136,132; D 38,425,282 / 43,422,914
    (BigGAN-PyTorch instantiated, comparison_models.md).
    """
    paper = {
        "lr_g": 5e-5,
        "lr_d": 2e-4,
        "d_steps": 2,
        "ortho_reg": 1e-4,
        "init": "ortho",
        "arch": "imagenet",
        "g_attn": None,
        "d_attn": None,
    }
    return BigGAN(resolution, BigGANConfig.build(paper | kw))
