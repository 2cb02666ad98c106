"""FastGAN (Liu et al., ICLR 2021) and its ablations, written from the facts of the official code.

One implementation (:class:`FastGAN`, hyperparameters in :class:`FastGANConfig`), four
registered names for the ladder of Table A of the paper:

  ``baseline``         no generator SLE, no decoders
  ``baseline-skip``    + skip-layer excitation (SLE) in the generator
  ``baseline-decode``  + self-supervised D: three decoders and a reconstruction loss
  ``fastgan``          both (the paper's model, the official code)

and five for Table D, FastGAN with other self-supervision tasks for D (``models.selfsup``):
``fastgan-ss-contrastive`` (a), ``fastgan-ss-aspect`` (b), ``fastgan-ss-ae`` (c, = ``fastgan``),
``fastgan-ss-contrastive-aspect`` (d) and ``fastgan-ss-all`` (e).

Every ladder row keeps the official discriminator's own SLE blocks (``d_sle``, a keyword of its
own): see :func:`baseline`. Layers and networks live in ``models.fastgan_blocks``, the official
checkpoint loader in ``models.fastgan_official``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import GANModel, Sampling, pretrained_weights_needed
from models.common import diff_augment, eager_spectral_norm_hooks, ema_update, fp32_spectral_norm_hooks
from models.config import ModelConfig
from models.fastgan_blocks import D_MULT, G_MULT, RESOLUTIONS, Discriminator, Generator, crop_part, resize
from models.fastgan_official import load_official_state
from models.registry import ModelConfigError, register_model
from models.selfsup import ASPECT_RATIOS, CROP_AREA, SelfSupervision
from models.step_graph import WARMUP_STEPS, StepGraph

__all__ = ["FastGAN", "FastGANConfig", "Generator", "Discriminator", "PerceptualWeightsMissing", "load_official_state"]

RECON_LOSSES = ("lpips-vgg", "lpips-alex", "mse", "l1")
# torchvision ImageNet weights that the LPIPS backbones load from the torch hub cache
LPIPS_WEIGHTS = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}
RECIPE = "official FastGAN code (odegeasslbc/FastGAN-pytorch, Feb 2024 upstream = fork @1a848e5): train.py, models.py"
TINY = dict(ngf=4, ndf=4, recon="mse", batch_size=2)
PAPER_G_SLE = ((4, 64), (8, 128), (16, 256), (32, 512))  # (from side, to side) of the paper's G at 1024 px
PAPER_D_SLE = ((256, 32), (128, 16), (64, 8))  # the official D's se_2_16, se_4_32, se_8_64


def _sle_note(net: str, links: list[tuple[int, int]], paper: tuple[tuple[int, int], ...], res: int) -> str | None:
    """'G SLE 4→32 (this project's own; the paper's 4→64, ... do not fit at 32 px)' when the
    connections ``net`` builds at ``res`` px (``links``) differ from the paper's at its resolutions
    (256 px and up; ``paper``: all the model can have), else None."""
    arrows = lambda ls: ", ".join(f"{a}→{b}" for a, b in ls)  # noqa: E731
    ours = [link for link in links if link not in paper]
    missing = [link for link in paper if link not in links and max(link) <= max(res, 256)]
    if not ours and not missing:
        return None
    why = ([f"{arrows(ours)}: this project's own"] if ours else []) + (
        [f"the paper's {arrows(missing)} do not fit at {res} px"] if missing else []
    )
    return f"{net} SLE {arrows(sorted(links)) or 'none'} ({'; '.join(why)})"


@dataclasses.dataclass(frozen=True)
class FastGANConfig(ModelConfig):
    """FastGAN's hyperparameters; defaults are the official code's (``train.py``, ``models.py``)."""

    family: ClassVar[str] = "fastgan"

    ngf: int = 64  # G base width: channels = int(G_MULT[side] * ngf) (official ngf)
    ndf: int = 64  # D base width: channels = int(D_MULT[side] * ndf) (official ndf)
    ndec: int = 32  # decoder base width: channels = int(DEC_MULT[side] * ndec) (official: 32, whatever ndf)
    nz: int = 256  # latent size (official train.py fixes nz = 256)
    batch_size: int = 8  # images per training step (official --batch_size)
    lr: float = 2e-4  # Adam learning rate of G and D (official nlr)
    betas: tuple[float, float] = (0.5, 0.999)  # Adam (beta1, beta2) of G and D (official)
    ema_beta: float = 0.999  # decay per step of the EMA of G's parameters; buffers copied (official)
    policy: str = "color,translation"  # DiffAugment ops on reals and on each fake output ('' = none; official)
    recon: str = "lpips-vgg"  # reconstruction distance: lpips-vgg (official), lpips-alex, mse, l1 (paper text: MSE)
    recon_weight: float = 1.0  # weight of the reconstruction loss in D's step; 0 builds no decoders
    g_sle: bool = True  # skip-layer excitation in G: 4->64, 8->128, 16->256, 32->512 (set by the name)
    d_sle: bool = True  # the official D's SLE blocks se_2_16, se_4_32, se_8_64 (every ladder row keeps them)
    decoders: bool = True  # D's three decoders + reconstruction loss (set by the name; off when recon_weight = 0)
    ss_contrastive: float = 0.0  # weight of the contrastive task (Table D a); 0: off, no head built
    ss_aspect: float = 0.0  # weight of the aspect-ratio task (Table D b); 0: off, no head built
    ss_temperature: float = 0.1  # NT-Xent temperature of the contrastive task (our choice, SimCLR's range)
    ss_proj_dim: int = 128  # output size of the contrastive projection head (SimCLR's)
    ss_aspect_ratios: tuple[float, ...] = ASPECT_RATIOS  # width/height classes of the aspect task (our choice)
    ss_view_policy: str = "color,translation,cutout"  # DiffAugment ops of the contrastive second view

    def __post_init__(self) -> None:
        self._positive_int("ngf", "ndf", "ndec", "nz", "batch_size", "ss_proj_dim")
        self._positive("lr", "ss_temperature")
        self._non_negative("recon_weight", "ss_contrastive", "ss_aspect")
        self._unit_interval("ema_beta")
        self._betas("betas")
        self._choice("recon", RECON_LOSSES)
        self._policy("policy", "ss_view_policy")
        ratios = self.ss_aspect_ratios
        try:
            ratios = tuple(float(a) for a in ratios)
        except (TypeError, ValueError):
            ratios = ()
        if len(ratios) < 2 or len(set(ratios)) != len(ratios) or min(ratios, default=0) <= 0:
            self._fail("ss_aspect_ratios", "must be two or more distinct positive numbers")
        if not CROP_AREA <= min(ratios) <= max(ratios) <= 1 / CROP_AREA:
            self._fail("ss_aspect_ratios", f"must lie in [{CROP_AREA}, {1 / CROP_AREA:.3g}] (crops inside the image)")
        object.__setattr__(self, "ss_aspect_ratios", ratios)
        object.__setattr__(self, "decoders", bool(self.decoders and self.recon_weight > 0))


class PerceptualWeightsMissing(ModelConfigError):
    """LPIPS needs torchvision's ImageNet weights, which are not in the torch hub cache."""


def build_lpips(net: str) -> nn.Module:
    """Frozen LPIPS (linear-calibrated v0.1) with backbone ``net`` ('vgg' or 'alex'), eval mode.

    Raises PerceptualWeightsMissing, naming the file and the cache folder, when the backbone's
    weights are not cached and cannot be downloaded.
    """
    import lpips

    if not pretrained_weights_needed():  # counting work only: the same network, random backbone
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's 'pretrained=' notices; meta-device loads
            return lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval().requires_grad_(False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's 'pretrained=' deprecation notices
            model = lpips.LPIPS(net=net, verbose=False)
    except (OSError, RuntimeError) as exc:
        where = f"{torch.hub.get_dir()}/checkpoints/"
        raise PerceptualWeightsMissing(
            f"recon='lpips-{net}' needs torchvision's ImageNet {net} weights: put {LPIPS_WEIGHTS[net]} "
            f"into {where} (could not download it: {exc}); or use recon='mse'"
        ) from exc
    return model.eval().requires_grad_(False)


def check_widths(resolution: int, cfg: FastGANConfig) -> None:
    """Raise when ``ngf``/``ndf`` leave a layer with no channels at ``resolution``."""
    d_top = max(resolution, 2 * min(resolution, 256))  # widest side D's channel table is read at
    for key, table, top in (("ngf", G_MULT, resolution), ("ndf", D_MULT, d_top)):
        width = getattr(cfg, key)
        side, mult = min(((s, m) for s, m in table.items() if s <= top), key=lambda sm: sm[1])
        if int(mult * width) < 1:
            need = math.ceil(1 / mult)
            raise ModelConfigError(f"{key} leaves 0 channels at {side} px, got {width}; use {key} >= {need}")


class FastGAN(GANModel):
    """FastGAN and its ablations behind the GANModel interface.

    Training step (official): z ~ N(0, I); fakes = G(z) (train-mode BN); DiffAugment on the
    real batch and, independently, on each of G's two outputs; D step on the real pass
    ``relu(0.8 + 0.2 U - D(x)).mean()`` (U ~ U[0, 1) per logit) plus ``recon_weight`` times the
    reconstruction loss, and on a separate pass on the detached fakes
    ``relu(0.8 + 0.2 U + D(fake)).mean()``; G step ``-D(fakes).mean()`` on the same augmented
    fakes (D updated, no second G forward, no gradient into D); EMA of G's parameters, buffers
    copied.

    Reconstruction (with decoders): the decoders' outputs against the augmented real batch
    resized (nearest) to the decoder side and the same quadrant of the full-size augmented real
    batch resized likewise; one loss call on the three pairs concatenated. ``lpips-*``: LPIPS
    distance per image summed over the 3B images (the official ``.sum()``); ``mse`` / ``l1``:
    per-image mean over (C, H, W) of the squared / absolute error, summed over the 3B images.
    The LPIPS network is built at the first training step and kept out of the state dict.

    The self-supervision heads (``self.ss``) read D's last big-path feature map and are updated
    by D's optimizer; their losses, weighted, join D's step only (see ``models.selfsup``).

    Sampling for evaluation: as the official code, which never calls ``eval()`` on G (``train.py``,
    ``eval.py``): BatchNorm with each generation batch's statistics, in batches of 16 (``eval.py``
    ``--batch``).
    """

    sampling = Sampling("batch", 16, "batch", "official FastGAN eval.py: G never in eval mode, --batch 16")

    def __init__(self, resolution: int, cfg: FastGANConfig) -> None:
        super().__init__()
        if resolution not in RESOLUTIONS:
            raise ModelConfigError(f"resolution must be one of {RESOLUTIONS} for fastgan, got {resolution}")
        check_widths(resolution, cfg)
        self.cfg = cfg
        self.resolution, self.z_dim, self.batch_size = resolution, cfg.nz, cfg.batch_size
        self.hparams = cfg.hparams()

        self.generator = Generator(resolution, cfg.ngf, cfg.nz, cfg.g_sle)
        self.discriminator = Discriminator(resolution, cfg.ndf, cfg.d_sle, cfg.decoders, cfg.ndec)
        for net in (self.generator, self.discriminator):
            fp32_spectral_norm_hooks(net)  # power iteration and sigma in fp32 under bf16 autocast
        self.g_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.ss = SelfSupervision(
            self.discriminator.feat_channels,
            contrastive=cfg.ss_contrastive,
            aspect=cfg.ss_aspect,
            temperature=cfg.ss_temperature,
            proj_dim=cfg.ss_proj_dim,
            aspect_ratios=cfg.ss_aspect_ratios,
            view_policy=cfg.ss_view_policy,
            policy=cfg.policy,
        )
        adam = dict(lr=cfg.lr, betas=cfg.betas)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), **adam)
        self.opt_d = torch.optim.Adam([*self.discriminator.parameters(), *self.ss.parameters()], **adam)
        self.__dict__["_percept"] = None  # LPIPS net, built at first use; outside the module tree

    # --- losses

    def _distance(self, a: Tensor, b: Tensor) -> Tensor:
        """Sum over the batch of the per-image reconstruction distance (see class docstring)."""
        if self.cfg.recon == "mse":
            return (a - b).square().mean(dim=(1, 2, 3)).sum()
        if self.cfg.recon == "l1":
            return (a - b).abs().mean(dim=(1, 2, 3)).sum()
        if self._percept is None:
            self.__dict__["_percept"] = build_lpips(self.cfg.recon.removeprefix("lpips-"))
        return self._percept.to(a.device)(a, b).sum()

    def recon_loss(self, recs: list[Tensor], real: Tensor, part: int | Tensor) -> Tensor:
        """Reconstruction loss of ``[rec_big, rec_small, rec_part]`` against the (augmented) real batch."""
        side = recs[0].size(-1)
        targets = [resize(real, side), resize(real, side), resize(crop_part(real, part), side)]
        return self._distance(torch.cat(recs), torch.cat(targets))

    # --- GANModel interface

    def structure_notes(self) -> tuple[str, ...]:
        """G's and D's skip-layer excitations where this resolution makes them differ from the paper's
        (:data:`PAPER_G_SLE`, :data:`PAPER_D_SLE`): connections of our own, and the paper's that do not fit."""
        g = [(lo, hi) for hi, lo in self.generator.sle_from.items()]
        d = [(src, dst) for dst, src in self.discriminator.sle_to.items()]
        notes = [_sle_note("G", g, PAPER_G_SLE, self.resolution) if self.cfg.g_sle else None,
                 _sle_note("D", d, PAPER_D_SLE, self.resolution) if self.cfg.d_sle else None]  # fmt: skip
        return tuple(n for n in notes if n)

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        """One official FastGAN iteration (see the class docstring); ``step`` is unused.

        With :meth:`use_cuda_graphs`, the same step as :attr:`step_graph`: the decoder's quadrant
        is drawn first (the same CPU draw; on CUDA the other draws are the device's, so the values
        are the eager step's) and reaches the step as a tensor on the device.
        """
        if self.step_graph is None:
            return self._step(real)
        if not self.discriminator.decoders:
            return self.step_graph(real=real)
        part = torch.randint(4, (), device="cpu")
        if real.device.type == "cuda":
            part = part.pin_memory()  # copied asynchronously: no host wait
        return self.step_graph(real=real, part=part.to(real.device, non_blocking=True))

    def _step(self, real: Tensor, part: int | Tensor | None = None) -> dict[str, Tensor]:
        """The step's body; ``part``: the decoder's quadrant (an int, or a tensor on the device), else drawn here."""
        G, D = self.generator, self.discriminator
        z = torch.randn(real.size(0), self.z_dim, device=real.device)
        fakes = G(z)  # [(B, 3, R, R), (B, 3, S, S)]
        with self.region("diff_augment"):
            raw, real = real, diff_augment(real, self.cfg.policy)
            fakes = [diff_augment(f, self.cfg.policy) for f in fakes]

        # D step: real pass (with decoders), then a separate pass on the detached fakes
        self.opt_d.zero_grad(set_to_none=True)
        if part is None and D.decoders:
            part = int(torch.randint(4, (), device="cpu"))  # a host draw: no device sync
        out = D(real, part if D.decoders else None)
        d_real = F.relu(0.8 + 0.2 * torch.rand_like(out.logits) - out.logits).mean()
        losses = {"d_real": d_real}
        loss_d = d_real
        if out.recs is not None:
            losses["recon"] = self.recon_loss(out.recs, real, part)
            loss_d = loss_d + self.cfg.recon_weight * losses["recon"]
        for name, loss in self.ss(D.features, raw, real, out.feat).items():  # enabled SS tasks only
            losses[name] = loss
            loss_d = loss_d + self.ss.weights[name] * loss
        logits_fake = D([f.detach() for f in fakes]).logits
        losses["d_fake"] = F.relu(0.8 + 0.2 * torch.rand_like(logits_fake) + logits_fake).mean()
        (loss_d + losses["d_fake"]).backward()
        self.opt_d.step()

        # G step on the same augmented fakes; D's parameters get no gradient
        self.opt_g.zero_grad(set_to_none=True)
        D.requires_grad_(False)
        try:
            losses["g"] = -D(fakes).logits.mean()
            losses["g"].backward()
        finally:
            D.requires_grad_(True)
        self.opt_g.step()
        with self.region("ema_update"):
            ema_update(self.g_ema, G, self.cfg.ema_beta)
        return {k: v.detach() for k, v in losses.items()}

    def synthesize(self, g: nn.Module, z: Tensor, truncation: float) -> Tensor:
        """Images (B, 3, R, R) from latents (B, nz); raw conv output below 1024 px (no tanh).
        FastGAN has no truncation trick: ``truncation`` must be 1.0."""
        if truncation != 1.0:
            raise ValueError(f"FastGAN has no truncation trick; truncation must be 1.0, got {truncation}")
        return g(z)[0]

    def use_cuda_graphs(self, capture: bool = True) -> None:
        """The step as a CUDA graph (:class:`models.step_graph.StepGraph`): the quadrant a tensor
        index, Adam capturable (its step counter and bias correction on the device: a rounding
        change). Off CUDA the same body runs eagerly, checked once for host synchronisations, with
        Adam's fused kernel (capturable Adam is CUDA-only; the fused one too keeps the counter in
        its kernel, where the other implementations read it on the host)."""
        if self.device.type != "cuda":
            self.use_fused_adam()
        for opt in self.optimizers().values():
            for group in opt.param_groups:
                group["capturable"] = self.device.type == "cuda"
        self.step_graph = StepGraph(self._step, warmup=WARMUP_STEPS if capture else None)

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        """As the base class; a captured step is dropped (it holds the replaced state tensors)."""
        super().load_optimizer_state(state)
        if self.step_graph is not None:
            self.step_graph.reset()

    def compile_for_training(self) -> None:
        """Old-style spectral-norm hooks run eagerly between compiled graphs (traced, their in-place
        power iteration breaks D's backward: D runs on reals, then on fakes, before one backward)."""
        for net in (self.generator, self.discriminator):
            eager_spectral_norm_hooks(net)
        super().compile_for_training()

    def load_official(self, checkpoint: Mapping[str, Any]) -> None:
        """An official checkpoint: ``{'g', 'd'}`` or ``all_N.pth`` (with its ``g_ema`` tensor list)."""
        try:
            load_official_state(self, checkpoint["g"], checkpoint["d"], checkpoint.get("g_ema"))
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ModelConfigError(str(exc).splitlines()[0]) from None


def build(resolution: int, kw: Mapping[str, Any], **fixed: Any) -> FastGAN:
    """A FastGAN from user ``kw`` on top of the name's ``fixed`` settings (which ``kw`` may not change)."""
    return FastGAN(resolution, FastGANConfig.build(kw, fixed))


# ----------------------------------------------------------------------------- Table A: the ladder
# The four rows differ only in what the paper adds (its Sec. 3.1 "Skip" and Sec. 3.2 "decode");
# G's SLE and the decoders are fixed by the name, D's SLE blocks (``d_sle``) stay in every row.


@register_model("baseline", recipe=RECIPE + "; without G's SLE and decoders", tiny=TINY)
def baseline(resolution: int, **kw: Any) -> FastGAN:
    """Table A 'Baseline': FastGAN without G's SLE and without the self-supervised decoders.

    Paper: Baseline is the model without skip-layer excitation and without self-supervision;
    "Skip" and "decode" are the two modules the paper adds to it (Sec. 3.1, 3.2), so
    Baseline+Skip+decode must be FastGAN exactly. The paper presents SLE as a generator module;
    the official discriminator's own SLE blocks (``d_sle``) are not part of either addition, so
    they stay (interpretation: the paper text is not stored here). ``d_sle=False`` removes them
    (1,032,192 D parameters at 256 px).

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G 26,353,830 / 26,367,352 / 26,369,472;
    D 8,386,672 / 8,387,008 / 8,388,704.
    """
    return build(resolution, kw, g_sle=False, decoders=False)


@register_model("baseline-skip", recipe=RECIPE + "; without decoders", tiny=TINY)
def baseline_skip(resolution: int, **kw: Any) -> FastGAN:
    """Table A 'Baseline+Skip': Baseline + skip-layer excitation in the generator.

    Paper: "Skip" is the SLE module of the generator (Sec. 3.1); D as in Baseline.

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G 29,127,846 / 29,174,392 / 29,176,512;
    D 8,386,672 / 8,387,008 / 8,388,704.
    """
    return build(resolution, kw, g_sle=True, decoders=False)


@register_model("baseline-decode", recipe=RECIPE + "; without G's SLE", tiny=TINY)
def baseline_decode(resolution: int, **kw: Any) -> FastGAN:
    """Table A 'Baseline+decode': Baseline + the self-supervised D (three decoders, reconstruction).

    Paper: "decode" is the self-supervised discriminator of Sec. 3.2; G as in Baseline.

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G 26,353,830 / 26,367,352 / 26,369,472;
    D 11,526,160 / 11,526,496 / 11,528,192 (the official D).
    """
    return build(resolution, kw, g_sle=False, decoders=True)


@register_model("fastgan", "fastgan-ss-ae", recipe=RECIPE, tiny=TINY)
def fastgan(resolution: int, **kw: Any) -> FastGAN:
    """FastGAN (Table A 'Ours' = Baseline+Skip+decode; Table D c 'auto-encoding'): the official model.

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G 29,127,846 / 29,174,392 / 29,176,512;
    D 11,526,160 / 11,526,496 / 11,528,192 (official counts).
    """
    return build(resolution, kw, g_sle=True, decoders=True)


# ----------------------------------------------------------------------------- Table D
# Self-supervision strategies for D (our interpretation, see models.selfsup); each weight can be
# overridden (0 turns a task off). D counts below include the heads D's optimizer trains.

SS_RECIPE = RECIPE + "; self-supervision heads: this project's interpretation (models.selfsup)"


@register_model("fastgan-ss-contrastive", recipe=SS_RECIPE, tiny=TINY)
def fastgan_ss_contrastive(resolution: int, **kw: Any) -> FastGAN:
    """Table D (a): FastGAN with a contrastive loss on D's features instead of decoders.

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G as fastgan; D 8,714,992 / 8,715,328 /
    8,717,024 (the D of baseline-skip plus the projection head's 328,320).
    """
    return build(resolution, {"ss_contrastive": 1.0} | kw, g_sle=True, decoders=False)


@register_model("fastgan-ss-aspect", recipe=SS_RECIPE, tiny=TINY)
def fastgan_ss_aspect(resolution: int, **kw: Any) -> FastGAN:
    """Table D (b): FastGAN predicting the aspect ratio of stretched reals instead of decoders.

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G as fastgan; D 8,651,893 / 8,652,229 /
    8,653,925 (the D of baseline-skip plus the aspect head's 265,221).
    """
    return build(resolution, {"ss_aspect": 1.0} | kw, g_sle=True, decoders=False)


@register_model("fastgan-ss-contrastive-aspect", recipe=SS_RECIPE, tiny=TINY)
def fastgan_ss_contrastive_aspect(resolution: int, **kw: Any) -> FastGAN:
    """Table D (d): contrastive + aspect ratio, no decoders.

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G as fastgan; D 8,980,213 / 8,980,549 /
    8,982,245 (the D of baseline-skip plus heads 593,541).
    """
    return build(resolution, {"ss_contrastive": 1.0, "ss_aspect": 1.0} | kw, g_sle=True, decoders=False)


@register_model("fastgan-ss-all", recipe=SS_RECIPE, tiny=TINY)
def fastgan_ss_all(resolution: int, **kw: Any) -> FastGAN:
    """Table D (e): contrastive + aspect ratio + auto-encoding (FastGAN's decoders).

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G as fastgan; D 12,119,701 / 12,120,037 /
    12,121,733 (the official D plus heads 593,541).
    """
    return build(resolution, {"ss_contrastive": 1.0, "ss_aspect": 1.0} | kw, g_sle=True, decoders=True)
