"""StyleGAN2 (Karras et al. 2020) with DiffAugment: the training recipes of the comparison rows.

One implementation (:class:`StyleGAN2`, hyperparameters in :class:`StyleGAN2Config`; layers in
``models.stylegan2_layers``), registered under names that each follow one recipe, written from
``shared/reference/comparison_recipes.md`` (sources: DA = mit-han-lab/data-efficient-gans
@0b63395, TF ``DiffAugment-stylegan2/``; ADA = NVlabs/stylegan2-ada-pytorch @d72cc7d):

  ``stylegan2-diffaug``           DA's low-shot recipe (``run_low_shot.py``): Table A's StyleGAN2 row
  ``stylegan2-diffaug-ffhq``      DA's FFHQ recipe (``run_ffhq.py``): the source model of the finetune row
  ``stylegan2-diffaug-finetune``  DA's low-shot finetune from that FFHQ model: Table A's finetune row
  ``stylegan2-half``              DA's low-shot recipe with every width / sqrt(2): Tables B and C
  ``stylegan2-half-finetune``     stylegan2-half from a checkpoint: Table B's finetune row
  ``stylegan2``                   config-f with this project's earlier defaults (no paper row)
  ``stylegan2-lite``              the same with every width halved (no paper row)
  ``stylegan2-lite-finetune``     stylegan2-lite from a checkpoint (no paper row)

Training step: non-saturating logistic loss; R1 (every step inside the D loss, or lazily every
``r1_interval`` steps with Adam's lr and betas scaled by k/(k+1)); optional path-length
regularisation (lazy likewise); style mixing (one cutoff per batch as ADA, or per sample as DA's
TF code: ``mixing_per_sample``, set by the DA names); DiffAugment on reals and fakes in both steps, the
R1 gradient taken w.r.t. the un-augmented reals through DiffAugment; EMA of G by half-life, a
copy of G until ``ema_start_kimg``. The loop x-flips the reals (DA's ``--mirror-augment``).

Fine-tuning (``init_from``): a checkpoint written by this harness, i.e. a run's
``checkpoints/*.pt`` or ``snapshots/*.pt`` (a ``torch.save`` dict whose ``"model"`` is the
state_dict of the same configuration); G, D and g_ema start from it, the optimizers fresh (as
DA's ``resume_with_new_nets``). Published TF pickles (DA's ``DiffAugment-stylegan2-ffhq.pkl``,
NVIDIA's ``stylegan2-ffhq-config-f.pkl``) are not read: no converter is provided; train the
source model with the harness (``stylegan2-diffaug-ffhq`` on ``ffhq-70k``) or convert them
yourself to this state_dict layout (the parameter names are ADA's).

Each name's source per setting group: ``models.stylegan2_sources`` (``run_bench.py list``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models import stylegan2_sources as src
from models.base import GANModel
from models.common import diff_augment, ema_update
from models.config import ModelConfig
from models.registry import ModelConfigError, register_model
from models.stylegan2_layers import Discriminator, Generator

DA = "DiffAugment-stylegan2 (TF, mit-han-lab/data-efficient-gans @0b63395)"
ADA = "NVlabs/stylegan2-ada-pytorch @d72cc7d"


@dataclasses.dataclass(frozen=True)
class StyleGAN2Config(ModelConfig):
    """StyleGAN2's hyperparameters. The defaults are this project's earlier ones (``stylegan2``);
    each registered name overrides them with its recipe (module docstring)."""

    family: ClassVar[str] = "stylegan2"

    channel_base: int = 32768  # channels at side r: min(channel_base // r, channel_max) (ADA config-f)
    channel_max: int = 512  # see channel_base (ADA config-f; TF fmap_max)
    z_dim: int = 512  # latent size (config-f)
    w_dim: int = 512  # style size (config-f)
    mapping_layers: int = 8  # FC layers of the mapping network (config-f, DA)
    mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping network (StyleGAN2)
    mbstd_group: int = 4  # minibatch-stddev group size (config-f, DA)
    conv_clamp: float | None = 256.0  # clamp conv activations to +-conv_clamp (ADA); None: off (DA)
    batch_size: int = 8  # images per training step
    policy: str = "color,translation,cutout"  # DiffAugment ops on reals and fakes, D and G steps (DA)
    lr: float = 0.002  # Adam learning rate of G and D before lazy-regularisation scaling (DA, ADA)
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas before lazy scaling; eps 1e-8 (DA, ADA)
    r1_gamma: float = 10.0  # R1 weight: penalty gamma / 2 * |grad D(real)|^2; 0 = off (DA)
    r1_interval: int = 16  # R1 every k steps, lazily (ADA); 1 = every step in the main D loss (DA)
    pl_weight: float = 0.0  # path-length regularisation weight; 0 = off (DA), 2 = ADA
    pl_interval: int = 4  # path-length reg every k steps, lazily (ADA; only when pl_weight > 0)
    pl_decay: float = 0.01  # decay of the running mean path length (ADA)
    pl_batch_shrink: int = 2  # path-length batch = batch_size // pl_batch_shrink (ADA)
    style_mixing: float = 0.9  # probability of mixing two latents at one random cutoff (DA, ADA)
    mixing_per_sample: bool = False  # draw the mixing and its cutoff per sample (DA's TF G_main), else per batch (ADA)
    ema_kimg: float = 10.0  # EMA half-life of g_ema in kimg: beta = 0.5 ** (B / (1000 ema_kimg)) (DA)
    ema_rampup: float | None = None  # half-life at most ema_rampup x images seen (ADA 'auto' 0.05); None: off
    ema_start_kimg: float | None = None  # g_ema copies G until this many kimg (DA: = ema_kimg); None: from step 0
    init_from: str | None = None  # harness checkpoint to start G, D and g_ema from (fine-tuning)

    def __post_init__(self) -> None:
        self._positive_int("channel_base", "channel_max", "z_dim", "w_dim", "mapping_layers", "mbstd_group")
        self._positive_int("batch_size", "r1_interval", "pl_interval", "pl_batch_shrink")
        self._positive("lr", "mapping_lr_mul", "ema_kimg")
        self._non_negative("r1_gamma", "pl_weight", "pl_decay")
        self._unit_interval("style_mixing")
        self._bool("mixing_per_sample")
        self._optional_positive("conv_clamp", "ema_rampup")
        if self.ema_start_kimg is not None:
            self._non_negative("ema_start_kimg")
        self._betas("betas")
        self._policy("policy")
        if self.init_from is not None:
            object.__setattr__(self, "init_from", os.fspath(self.init_from))


# ----------------------------------------------------------------------------- losses


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """||d sum(D(x)) / dx||^2 per sample (B,), differentiable (create_graph). ``real`` must be the
    leaf that ``real_logits`` were computed from (before augmentation)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.square().sum(dim=[1, 2, 3])


def path_lengths(img: Tensor, ws: Tensor, pl_noise: Tensor) -> Tensor:
    """|J_w^T y| per sample (B,): the gradient of sum(img * y) w.r.t. ws, squared-summed over
    w_dim, averaged over the ws and square-rooted (as NVlabs). Differentiable."""
    (grad,) = torch.autograd.grad((img * pl_noise).sum(), ws, create_graph=True)  # (B, num_ws, w_dim)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


def mix_styles(ws: Tensor, ws2: Tensor, prob: float, per_sample: bool = False) -> Tensor:
    """Style mixing: with probability ``prob`` take ws2 from a cutoff ~ U{1..num_ws-1} on. One draw
    for the batch (ADA's ``loss.py``), or ``per_sample``: each sample draws its own mixing and cutoff
    (DA's TF ``G_main``: ``tf.random_uniform([minibatch])``). Drawn on the device: no host sync."""
    n = ws.shape[1]
    shape = (ws.shape[0], 1, 1) if per_sample else ()
    cutoff = torch.randint(1, n, shape, device=ws.device)
    cutoff = torch.where(torch.rand(shape, device=ws.device) < prob, cutoff, n)
    take2 = torch.arange(n, device=ws.device)[None, :, None] >= cutoff  # (1 or B, num_ws, 1)
    return torch.where(take2, ws2, ws)


def eager_if(on: bool) -> contextlib.AbstractContextManager:
    """Compiled modules run eagerly inside (when ``on``): R1 and path length need double backward,
    which compiled graphs do not support (speed mode ``compile``; a no-op without it)."""
    return torch.compiler.set_stance("force_eager") if on else contextlib.nullcontext()


def lazy_adam_factor(interval: int, active: bool) -> float:
    """c = k / (k + 1) for lazy regularisation every k > 1 steps (lr * c, betas ** c); else 1."""
    return interval / (interval + 1) if active and interval > 1 else 1.0


# ----------------------------------------------------------------------------- the model


class StyleGAN2(GANModel):
    """StyleGAN2 with DiffAugment behind the GANModel interface (recipes: module docstring).

    Sampling: no BatchNorm; random noise inputs; truncation ``w_avg.lerp(w, psi)``.
    """

    def __init__(self, resolution: int, cfg: StyleGAN2Config) -> None:
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ModelConfigError(f"resolution must be a power of two >= 8 for stylegan2, got {resolution}")
        self.cfg = cfg
        self.resolution, self.z_dim, self.batch_size = resolution, cfg.z_dim, cfg.batch_size
        self.hparams = cfg.hparams()
        widths = dict(channel_base=cfg.channel_base, channel_max=cfg.channel_max, clamp=cfg.conv_clamp)
        self.generator = Generator(
            resolution,
            z_dim=cfg.z_dim,
            w_dim=cfg.w_dim,
            mapping_layers=cfg.mapping_layers,
            mapping_lr_mul=cfg.mapping_lr_mul,
            **widths,
        )
        self.discriminator = Discriminator(resolution, mbstd_group=cfg.mbstd_group, **widths)
        self.g_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.register_buffer("pl_mean", torch.zeros([]))
        if cfg.init_from is not None:
            self._load_init(cfg.init_from)

        def adam(params: Any, c: float) -> torch.optim.Adam:
            b1, b2 = cfg.betas
            return torch.optim.Adam(params, lr=cfg.lr * c, betas=(b1**c, b2**c), eps=1e-8)

        self.g_opt = adam(self.generator.parameters(), lazy_adam_factor(cfg.pl_interval, cfg.pl_weight > 0))
        self.d_opt = adam(self.discriminator.parameters(), lazy_adam_factor(cfg.r1_interval, cfg.r1_gamma > 0))

    def _load_init(self, path: str) -> None:
        """Load G, D, g_ema (and pl_mean) from a harness checkpoint; one-line errors."""
        if not os.path.isfile(path):  # also refuses a FIFO, which would block the load
            raise ModelConfigError(f"init_from={path}: no such checkpoint file")
        try:
            ckpt = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as exc:  # unreadable or not a torch file: one line, naming the path
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ModelConfigError(f"init_from={path}: cannot read checkpoint ({type(exc).__name__}: {first})") from exc
        state = ckpt.get("model") if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise ModelConfigError(f"init_from={path}: not a harness checkpoint (no 'model' state dict)")
        own = self.state_dict()
        got = {k: tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__ for k, t in state.items()}
        bad = [
            f"{k}: {got.get(k, 'missing')} vs {tuple(v.shape)}" for k, v in own.items() if got.get(k) != tuple(v.shape)
        ] + [f"{k}: unexpected" for k in state if k not in own]
        if bad:
            raise ModelConfigError(
                f"init_from={path}: checkpoint does not fit this stylegan2 at {self.resolution} px "
                f"({len(bad)} mismatched tensors, e.g. {bad[0]})"
            )
        self.load_state_dict(state)

    # -- training

    def _styles(self, z: Tensor) -> Tensor:
        """Mapped (and style-mixed) ws (B, num_ws, w_dim) of the trained G; updates w_avg."""
        mapping = self.generator.mapping
        ws = mapping(z, update_w_avg=True)
        if self.cfg.style_mixing > 0:
            ws = mix_styles(ws, mapping(torch.randn_like(z)), self.cfg.style_mixing, self.cfg.mixing_per_sample)
        return ws

    def _d_logits(self, img: Tensor) -> Tensor:
        with self.region("diff_augment"):
            img = diff_augment(img, self.cfg.policy)
        return self.discriminator(img)

    def ema_beta(self, step: int) -> float:
        """EMA decay for this step: 0.5 ** (batch / half-life in images); 0 (a copy of G) while
        fewer than ``ema_start_kimg`` thousand images were seen before this step."""
        cfg = self.cfg
        if cfg.ema_start_kimg is not None and step * self.batch_size < cfg.ema_start_kimg * 1000:
            return 0.0
        half_life = cfg.ema_kimg * 1000.0
        if cfg.ema_rampup is not None:
            half_life = min(half_life, (step + 1) * self.batch_size * cfg.ema_rampup)
        return 0.5 ** (self.batch_size / max(half_life, 1e-8))

    def regularised_at(self, step: int) -> tuple[bool, bool]:
        """(R1, path length): whether step ``step`` runs each regulariser."""
        cfg = self.cfg
        return cfg.r1_gamma > 0 and step % cfg.r1_interval == 0, cfg.pl_weight > 0 and step % cfg.pl_interval == 0

    def cost_steps(self) -> dict[int, float]:
        """One step of each regularisation pattern in a period of both intervals, weighted by its share."""
        period = math.lcm(self.cfg.r1_interval, self.cfg.pl_interval)
        groups: dict[tuple[bool, bool], list[int]] = {}
        for i in range(period):
            groups.setdefault(self.regularised_at(i), []).append(i)
        return {steps[0]: len(steps) / period for steps in groups.values()}

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        """D step (+ R1), G step (+ path length), EMA; see the class docstring for the schedule."""
        b, dev = real.shape[0], real.device
        g, d = self.generator, self.discriminator
        out: dict[str, Tensor] = {}

        # D: softplus(D(G(z))) + softplus(-D(x)) [+ gamma/2 |grad|^2 when R1 is not lazy]
        d.requires_grad_(True)
        do_r1, do_pl = self.regularised_at(step)
        r1_in_main = do_r1 and self.cfg.r1_interval == 1
        with torch.no_grad():
            fake = g.synthesis(self._styles(torch.randn(b, self.z_dim, device=dev)))
        with eager_if(r1_in_main):
            real_in = real.detach().requires_grad_(r1_in_main)
            real_logits = self._d_logits(real_in)
            loss_d = F.softplus(self._d_logits(fake)).mean() + F.softplus(-real_logits).mean()
            loss = loss_d
            if r1_in_main:
                r1 = r1_penalty(real_logits, real_in).mean()
                loss = loss + r1 * (self.cfg.r1_gamma / 2)
            self.d_opt.zero_grad(set_to_none=True)
            loss.backward()
        self.d_opt.step()
        if do_r1 and not r1_in_main:  # lazy R1: its own D step, loss times the interval
            with eager_if(True):
                real_in = real.detach().requires_grad_(True)
                r1 = r1_penalty(self._d_logits(real_in), real_in).mean()
                self.d_opt.zero_grad(set_to_none=True)
                (r1 * (self.cfg.r1_gamma / 2 * self.cfg.r1_interval)).backward()
            self.d_opt.step()
        out["loss_d"] = loss_d.detach()
        if do_r1:
            out["r1_penalty"] = r1.detach()

        # G: softplus(-D(G(z))) [+ path-length penalty]
        d.requires_grad_(False)
        pl_in_main = do_pl and self.cfg.pl_interval == 1
        with eager_if(pl_in_main):
            fake = g.synthesis(self._styles(torch.randn(b, self.z_dim, device=dev)))
            loss_g = F.softplus(-self._d_logits(fake)).mean()
            loss = loss_g + self._pl_loss(b, dev, out) if pl_in_main else loss_g
            self.g_opt.zero_grad(set_to_none=True)
            loss.backward()
        self.g_opt.step()
        if do_pl and not pl_in_main:  # lazy path length: its own G step, loss times the interval
            with eager_if(True):
                self.g_opt.zero_grad(set_to_none=True)
                (self._pl_loss(b, dev, out) * self.cfg.pl_interval).backward()
            self.g_opt.step()
        d.requires_grad_(True)
        out["loss_g"] = loss_g.detach()

        with self.region("ema_update"):
            ema_update(self.g_ema, g, self.ema_beta(step))
        return out

    def _pl_loss(self, batch: int, dev: torch.device, out: dict[str, Tensor]) -> Tensor:
        """pl_weight * (|J^T y| - running mean)^2 on batch // pl_batch_shrink fresh samples."""
        z = torch.randn(max(batch // self.cfg.pl_batch_shrink, 1), self.z_dim, device=dev)
        ws = self._styles(z)
        img = self.generator.synthesis(ws)  # (b, 3, R, R)
        pl_noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        lengths = path_lengths(img, ws, pl_noise)  # (b,)
        pl_mean = self.pl_mean.lerp(lengths.mean(), self.cfg.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        penalty = (lengths - pl_mean).square().mean()
        out["pl_penalty"] = penalty.detach()
        return penalty * self.cfg.pl_weight

    # -- sampling

    def synthesize(self, g: nn.Module, z: Tensor, truncation: float) -> Tensor:
        """Images (B, 3, R, R) from z (B, z_dim), random noise inputs, truncation
        ``w_avg.lerp(w, truncation)`` (no BatchNorm: sampling has no statistics to choose)."""
        return g(z, truncation=truncation)


def build(resolution: int, kw: Mapping[str, Any], recipe: Mapping[str, Any] | None = None) -> StyleGAN2:
    """A StyleGAN2 with the user's ``kw`` on top of a name's ``recipe`` on top of the config defaults."""
    return StyleGAN2(resolution, StyleGAN2Config.build({**(recipe or {}), **kw}))


def build_finetune(name: str, source: str, resolution: int, kw: dict[str, Any], recipe: Mapping[str, Any]) -> StyleGAN2:
    """``build`` with ``init_from`` required (a harness checkpoint of ``source``'s configuration)."""
    if kw.get("init_from") is None:
        raise ModelConfigError(f"{name} needs init_from=PATH (a harness checkpoint of {source})")
    return build(resolution, kw, recipe)


# ----------------------------------------------------------------------------- registered names

TINY = dict(channel_base=256, channel_max=16, z_dim=16, w_dim=16, mapping_layers=2, batch_size=2)
# DA's low-shot recipe (run_low_shot.py defaults; comparison_recipes.md section 1); config-f widths
DIFFAUG = dict(
    batch_size=16, conv_clamp=None, r1_interval=1, pl_weight=0.0, ema_start_kimg=10.0, mixing_per_sample=True
)
CONFIG_E = dict(channel_base=16384)  # DA --fmap-base 8192 (TF) = ADA channel_base 16384; channel_max 512
HALF = dict(channel_base=23170, channel_max=362, z_dim=362, w_dim=362)  # every config-f width / sqrt(2)
LITE = dict(channel_base=16384, channel_max=256, z_dim=256, w_dim=256)  # every config-f width halved


@register_model(
    "stylegan2-diffaug", recipe=f"{DA} run_low_shot.py defaults, config-f widths", tiny=TINY, sources=src.LOW_SHOT
)
def stylegan2_diffaug(resolution: int, **kw: Any) -> StyleGAN2:
    """StyleGAN2 as the DiffAugment authors ran it for few-shot data: Table A's StyleGAN2 row
    (their fid5k-train 46.87 / 27.08 / 12.06 / 42.44 / 58.85 on Obama / Grumpy / Panda / cat / dog).

    Config-f widths (z = w = 512, mapping depth 8), batch 16, Adam 0.002 with betas (0, 0.99),
    R1 gamma 10 every step (no lazy regularisation), no path-length term, DiffAugment
    'color,translation,cutout' on reals and fakes in both steps, x-flips, style mixing 0.9, EMA
    half-life 10 kimg and a copy of G before 10 kimg, no conv clamp, style mixing drawn per sample
    (DA's TF ``G_main``). Length: DA's 300 kimg (500 for AnimalFace in its README) is a budget, not
    a model setting: suite ``fewshot256-kimg`` pins it, ``fewshot256`` gives the paper's hours.

    Params at 256 px: G 30,034,338 / D 28,864,129 (comparison_recipes.md: computed there, equal to
    ADA's instantiated config-f).
    """
    return build(resolution, kw, DIFFAUG)


@register_model(
    "stylegan2-diffaug-ffhq", recipe=f"{DA} run_ffhq.py defaults (fmap_base 8192)", tiny=TINY, sources=src.FFHQ
)
def stylegan2_diffaug_ffhq(resolution: int, **kw: Any) -> StyleGAN2:
    """DA's FFHQ recipe, the source model of Table A's finetune row (DA's ``DiffAugment-stylegan2-ffhq.pkl``:
    full FFHQ 70k at 256 px, 25,000 kimg, fid50k 4.24): config-e widths (``--fmap-base 8192``),
    R1 gamma 1, batch 32; otherwise the low-shot settings (the same training loop and loss).

    Params at 256 px: G 24,767,458 / D 24,001,089 (ADA config-e, instantiated; comparison_models.md).
    """
    return build(resolution, kw, DIFFAUG | CONFIG_E | dict(r1_gamma=1.0, batch_size=32))


@register_model(
    "stylegan2-diffaug-finetune",
    recipe=f"{DA} README low-shot fine-tuning: --resume DiffAugment-stylegan2-ffhq.pkl --fmap-base=8192",
    tiny=TINY,
    init_from="stylegan2-diffaug-ffhq",
    sources=src.FINETUNE,
)
def stylegan2_diffaug_finetune(resolution: int, **kw: Any) -> StyleGAN2:
    """Table A's 'StyleGAN2 finetune' row: DA's low-shot recipe at config-e widths, started from an
    FFHQ model (``init_from`` required).

    ``init_from``: a harness checkpoint of ``stylegan2-diffaug-ffhq`` at 256 px (e.g. that model
    trained on ``ffhq-70k``). The published source is DA's TF pickle
    ``mit-han-lab:DiffAugment-stylegan2-ffhq.pkl``, which the harness does not read (module
    docstring). That FastGAN's finetune numbers (61.03 / 46.07 / 35.75 / 14.5 / 29.34) come from
    this setup (DiffAugment paper's FFHQ-pretrained rows) is not verified.

    Params at 256 px: G 24,767,458 / D 24,001,089 (ADA config-e, instantiated).
    """
    return build_finetune("stylegan2-diffaug-finetune", "stylegan2-diffaug-ffhq", resolution, kw, DIFFAUG | CONFIG_E)


@register_model(
    "stylegan2-half",
    recipe=f"{DA} run_low_shot.py defaults, every config-f width / sqrt(2)",
    tiny=TINY,
    sources=src.HALF,
)
def stylegan2_half(resolution: int, **kw: Any) -> StyleGAN2:
    """The 1024 px StyleGAN2 row of Tables B and C: DA's low-shot recipe with about half of
    config-f's parameters, as the FastGAN paper states it cut StyleGAN2 at 1024 px (the talk
    summary; not verified against the paper text). Every width divided by sqrt(2)
    (channel_base 23170, channel_max 362, z = w = 362) halves every layer's weight count.

    Params (computed here): at 1024 px G 15,185,210 / D 14,502,639 (0.500 x config-f's
    30,370,060 / 29,012,513); at 256 px G 15,019,277 / D 14,429,728.
    """
    return build(resolution, kw, DIFFAUG | HALF)


@register_model(
    "stylegan2-half-finetune",
    recipe=f"{DA} run_low_shot.py defaults, widths / sqrt(2), from a checkpoint (source model not stated)",
    tiny=TINY,
    init_from="stylegan2-half",
    sources=src.HALF_FINETUNE,
)
def stylegan2_half_finetune(resolution: int, **kw: Any) -> StyleGAN2:
    """Table B's 'StyleGAN2 finetune' row: stylegan2-half started from ``init_from`` (required).

    ``init_from``: a harness checkpoint of ``stylegan2-half`` at 1024 px. The paper's source model
    and setup at 1024 px are not verified; no published checkpoint has these widths, so train one
    with the harness (e.g. ``stylegan2-half`` on ``ffhq-70k``).

    Params: as stylegan2-half (1024 px: G 15,185,210 / D 14,502,639, computed).
    """
    return build_finetune("stylegan2-half-finetune", "stylegan2-half", resolution, kw, DIFFAUG | HALF)


@register_model(
    "stylegan2",
    recipe=f"{ADA} config-f networks + lazy R1 (16), DA augmentation, batch 8",
    tiny=TINY,
    sources=src.ADA_F,
)
def stylegan2(resolution: int, **kw: Any) -> StyleGAN2:
    """Config-f StyleGAN2 with this project's earlier defaults (no paper row uses it): ADA's
    networks (conv_clamp 256) and lazy R1 (gamma 10 every 16 steps), DiffAugment
    'color,translation,cutout', batch 8, no path-length term, EMA half-life 10 kimg from step 0.

    Params at 256 / 1024 px: G 30,034,338 / 30,370,060; D 28,864,129 / 29,012,513 (ADA config-f).
    """
    return build(resolution, kw)


@register_model(
    "stylegan2-lite",
    recipe=f"{ADA} config-f with every width halved; else as stylegan2",
    tiny=TINY,
    sources=src.LITE,
)
def stylegan2_lite(resolution: int, **kw: Any) -> StyleGAN2:
    """stylegan2 with every width halved (channel_base 16384, channel_max 256, z = w = 256):
    exactly a quarter of config-f's parameters (no paper row uses it).

    Params at 256 / 1024 px: G 7,517,410 / 7,601,564; D 7,219,009 / 7,256,081 (instantiated).
    """
    return build(resolution, kw, LITE)


@register_model(
    "stylegan2-lite-finetune",
    recipe=f"{ADA} config-f with every width halved, from a checkpoint",
    tiny=TINY,
    init_from="stylegan2-lite",
    sources=src.LITE_FINETUNE,
)
def stylegan2_lite_finetune(resolution: int, **kw: Any) -> StyleGAN2:
    """stylegan2-lite started from ``init_from`` (required): a harness checkpoint of
    stylegan2-lite at the same resolution. No published checkpoint has these widths.

    Params: as stylegan2-lite.
    """
    return build_finetune("stylegan2-lite-finetune", "stylegan2-lite", resolution, kw, LITE)
