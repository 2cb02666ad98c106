"""FastGAN (Liu et al., ICLR 2021) and its ablations, written from the facts of the official code.

One implementation, four registered names for Table A of the paper:

  ``baseline``         no skip-layer excitation (SLE), no decoders
  ``baseline-skip``    SLE in G and D
  ``baseline-decode``  self-supervised D: three decoders and a reconstruction loss
  ``fastgan``          both (the paper's model)

and five for Table D, FastGAN with other self-supervision tasks for D (``models.selfsup``):
``fastgan-ss-contrastive`` (a), ``fastgan-ss-aspect`` (b), ``fastgan-ss-ae`` (c, = ``fastgan``),
``fastgan-ss-contrastive-aspect`` (d) and ``fastgan-ss-all`` (e).

At 256, 512 and 1024 px every block, channel table, init, loss and optimizer setting is the
official one, and module/parameter names equal the official ones, so official state dicts
load as they are (:func:`load_official_state`). Resolutions 32, 64 and 128 are an extension of
this project for CPU work (the official code starts at 256), described in :class:`Generator` and
:class:`Discriminator`.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from models.base import GANModel, Sampling
from models.common import check_policy, diff_augment, eager_spectral_norm_hooks, ema_update
from models.registry import ModelConfigError, register_model
from models.selfsup import ASPECT_RATIOS, SelfSupervision

RESOLUTIONS = (32, 64, 128, 256, 512, 1024)
RECON_LOSSES = ("lpips-vgg", "lpips-alex", "mse", "l1")
# channel multipliers by feature-map side in px; channels = int(multiplier * ngf or ndf)
G_MULT = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
D_MULT = {4: 16, 8: 16, 16: 8, 32: 4, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
# decoder up-block output channels by output side: a fixed base-32 table, independent of ndf
DEC_CH = {16: 128, 32: 64, 64: 64, 128: 32}
# torchvision ImageNet weights that the LPIPS backbones load from the torch hub cache
LPIPS_WEIGHTS = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}


# ----------------------------------------------------------------------------- layers


def conv(c_in: int, c_out: int, k: int, stride: int = 1, pad: int = 0) -> nn.Conv2d:
    """Spectrally normalised conv without bias (old-style SN: ``weight_orig/_u/_v``)."""
    return spectral_norm(nn.Conv2d(c_in, c_out, k, stride, pad, bias=False))


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2, inplace=True)


@torch.no_grad()
def init_weights(module: nn.Module) -> None:
    """Official init: conv weights N(0, 0.02) on the underlying (pre-SN) weight; BN N(1, 0.02), 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            m.weight_orig.normal_(0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.normal_(1.0, 0.02)
            m.bias.zero_()


class NoiseInjection(nn.Module):
    """Adds ``weight * randn(B, 1, H, W)``; the scalar weight starts at 0."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W)
        noise = torch.randn(x.size(0), 1, x.size(2), x.size(3), device=x.device, dtype=x.dtype)
        return x + self.weight * noise


class InitLayer(nn.Module):
    """Latent (B, nz) -> 4x4 map (B, c, 4, 4): transposed conv 4x4, BN, GLU."""

    def __init__(self, nz: int, c: int) -> None:
        super().__init__()
        self.init = nn.Sequential(
            spectral_norm(nn.ConvTranspose2d(nz, 2 * c, 4, 1, 0, bias=False)),
            nn.BatchNorm2d(2 * c),
            nn.GLU(dim=1),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.init(z.view(z.size(0), -1, 1, 1))


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    """Nearest x2, conv3x3 (c_in -> 2 c_out), BN, GLU: (B, c_in, H, W) -> (B, c_out, 2H, 2W)."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        conv(c_in, 2 * c_out, 3, 1, 1),
        nn.BatchNorm2d(2 * c_out),
        nn.GLU(dim=1),
    )


def up_block_comp(c_in: int, c_out: int) -> nn.Sequential:
    """Up block with a second conv and noise injection after each conv."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        conv(c_in, 2 * c_out, 3, 1, 1),
        NoiseInjection(),
        nn.BatchNorm2d(2 * c_out),
        nn.GLU(dim=1),
        conv(c_out, 2 * c_out, 3, 1, 1),
        NoiseInjection(),
        nn.BatchNorm2d(2 * c_out),
        nn.GLU(dim=1),
    )


class SLE(nn.Module):
    """Skip-layer excitation: a small map gates the channels of a large one."""

    def __init__(self, c_low: int, c_high: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.AdaptiveAvgPool2d(4),
            conv(c_low, c_high, 4),  # (B, c_high, 1, 1)
            nn.SiLU(),  # Swish
            conv(c_high, c_high, 1),
            nn.Sigmoid(),
        )

    def forward(self, low: Tensor, high: Tensor) -> Tensor:  # (B, c_low, h, h), (B, c_high, H, H)
        return high * self.main(low)


class DownBlock(nn.Module):
    """conv4x4 stride 2, BN, LReLU(0.2): (B, c_in, H, W) -> (B, c_out, H/2, W/2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.main = nn.Sequential(conv(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), lrelu())

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x)


class DownBlockComp(nn.Module):
    """Average of a two-conv path and an avg-pool + conv1x1 path: (B, c_in, H, W) -> (B, c_out, H/2, W/2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            conv(c_in, c_out, 4, 2, 1),
            nn.BatchNorm2d(c_out),
            lrelu(),
            conv(c_out, c_out, 3, 1, 1),
            nn.BatchNorm2d(c_out),
            lrelu(),
        )
        self.direct = nn.Sequential(nn.AvgPool2d(2, 2), conv(c_in, c_out, 1), nn.BatchNorm2d(c_out), lrelu())

    def forward(self, x: Tensor) -> Tensor:
        return (self.main(x) + self.direct(x)) / 2


class SimpleDecoder(nn.Module):
    """8x8 feature map -> image (B, 3, out, out) in [-1, 1]; ``out`` = 128 officially."""

    def __init__(self, c_in: int, out: int = 128) -> None:
        super().__init__()
        sides = [16 << i for i in range(int(math.log2(out // 8)))]  # up-block output sides
        chans = [c_in] + [DEC_CH[s] for s in sides]
        ups = [up_block(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True)]
        self.main = nn.Sequential(nn.AdaptiveAvgPool2d(8), *ups, conv(chans[-1], 3, 3, 1, 1), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x)


def resize(x: Tensor, side: int) -> Tensor:
    """Nearest resize of (B, C, H, W) to (B, C, side, side); no-op at that size already."""
    return x if x.shape[-2:] == (side, side) else F.interpolate(x, size=side, mode="nearest")


def crop_part(x: Tensor, part: int) -> Tensor:
    """Quadrant ``part`` of (B, C, H, W): 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right."""
    h, w = x.size(2) // 2, x.size(3) // 2
    r, c = divmod(part, 2)
    return x[:, :, r * h : (r + 1) * h, c * w : (c + 1) * w]


# ----------------------------------------------------------------------------- networks


class Generator(nn.Module):
    """FastGAN generator: z (B, nz) -> [img (B, 3, R, R), img_small (B, 3, S, S)].

    Official layout (R >= 256, S = 128): init 4x4, then per side an up block (noise-injected
    two-conv ``UpBlockComp`` at 8, 32, 128, 512; ``UpBlock`` at 16, 64, 256, 1024), channels
    ``int(G_MULT[side] * ngf)``; SLE 4->64, 8->128, 16->256 and 32->512 (R > 256); heads
    ``to_128`` (conv1x1 on the 128 map) and ``to_big`` (conv3x3); tanh on both outputs only
    at R = 1024 (at 256/512 the raw conv output is returned, as officially).

    Extension below 256 (not in the official code): the same blocks up to side R and the
    official SLE connections that fit (R = 128: 4->64, 8->128; R = 64: 4->64); at R = 32, where
    none fits, one extra connection 4->32 so that ``sle`` still means something. The second
    output (head still named ``to_128``) is taken at S = min(128, R / 2).

    Args:
        resolution: R, one of 32, 64, 128, 256, 512, 1024.
        ngf: base width (channels per unit of ``G_MULT``).
        nz: latent size.
        sle: build the skip-layer excitation connections.
    """

    def __init__(self, resolution: int, ngf: int = 64, nz: int = 256, sle: bool = True) -> None:
        super().__init__()
        nfc = {s: int(m * ngf) for s, m in G_MULT.items()}
        self.resolution, self.small = resolution, min(128, resolution // 2)
        self.sides = [2**k for k in range(3, int(math.log2(resolution)) + 1)]  # 8 .. R
        links = [(lo, 16 * lo) for lo in (4, 8, 16, 32) if 16 * lo <= resolution]
        if sle and not links:
            links = [(4, resolution)]
        self.sle_from = dict((hi, lo) for lo, hi in links) if sle else {}

        self.init = InitLayer(nz, nfc[4])
        for side in self.sides:
            block = up_block_comp if int(math.log2(side)) % 2 else up_block
            self.add_module(f"feat_{side}", block(nfc[side // 2], nfc[side]))
        for hi, lo in self.sle_from.items():
            self.add_module(f"se_{hi}", SLE(nfc[lo], nfc[hi]))
        self.to_128 = conv(nfc[self.small], 3, 1)
        self.to_big = conv(nfc[resolution], 3, 3, 1, 1)
        init_weights(self)

    def forward(self, z: Tensor) -> list[Tensor]:  # z (B, nz)
        x = self.init(z)  # (B, nfc[4], 4, 4)
        feats = {4: x}
        for side in self.sides:
            x = getattr(self, f"feat_{side}")(x)  # (B, nfc[side], side, side)
            if side in self.sle_from:
                x = getattr(self, f"se_{side}")(feats[self.sle_from[side]], x)
            feats[side] = x
        big, small = self.to_big(x), self.to_128(feats[self.small])  # (B, 3, R, R), (B, 3, S, S)
        if self.resolution == 1024:
            big, small = torch.tanh(big), torch.tanh(small)
        return [big, small]


class DOutput(NamedTuple):
    """What the discriminator returns."""

    logits: Tensor  # (2 * B * 25,) big-path then small-path 5x5 logits, flattened (official order)
    recs: list[Tensor] | None  # [rec_big, rec_small, rec_part] (B, 3, r, r) when a part was given
    feat: Tensor  # (B, nfc[16], 8, 8) last big-path map (read by rf_big, decoder_big, SS heads)


class Discriminator(nn.Module):
    """FastGAN discriminator with two paths, 5x5 logits each, and optional decoders.

    Input: a real batch (B, 3, H, W), resized here (nearest) to ``[R, S]``, or G's
    ``[big, small]`` pair. Channels on the big path are ``int(D_MULT[2 * side] * ndf)``.

    Official layout (R >= 256): ``down_from_big`` brings the image to 256x256 with nfc[512]
    channels (R = 1024: two stride-2 conv4x4; 512: one; 256: a stride-1 conv3x3); then
    ``DownBlockComp`` to 128, 64, 32, 16, 8 (``down_4`` .. ``down_64``); SLE 256->32, 128->16,
    64->8 (``se_2_16``, ``se_4_32``, ``se_8_64``); ``rf_big`` on the 8x8 map. The small path
    on the 128 image: conv4x4 stride 2, then ``DownBlock`` to 8x8, ``rf_small``. Decoders
    (``decoder_big`` on the last 8x8 big map, ``decoder_small`` on the small 8x8 map,
    ``decoder_part`` on one 8x8 quadrant of the 16x16 big map) output 128x128 images.

    Extension below 256: ``down_from_big`` is a stride-1 conv3x3 at R (nfc[2R] channels), the
    big path has the down blocks from R to 8 (same names as officially for the same sides)
    and the SLE connections whose source side is <= R (R = 128: 128->16, 64->8; R = 64: 64->8;
    R = 32: none); the small path starts at S = min(128, R / 2) with a conv4x4 stride 2 and
    ``DownBlock`` down to 8x8; decoders reconstruct at min(128, R) (fewer up blocks).

    Args:
        resolution: R, one of 32, 64, 128, 256, 512, 1024.
        ndf: base width.
        sle: build the SLE connections of the big path.
        decoders: build the three decoders (self-supervised auto-encoding).
    """

    def __init__(self, resolution: int, ndf: int = 64, sle: bool = True, decoders: bool = True) -> None:
        super().__init__()
        nfc = {s: int(m * ndf) for s, m in D_MULT.items()}
        self.resolution, self.small = resolution, min(128, resolution // 2)
        self.top = min(resolution, 256)  # side of down_from_big's output
        self.rec_side = min(128, resolution)
        self.feat_channels = nfc[16]

        if resolution == 1024:
            self.down_from_big = nn.Sequential(
                conv(3, nfc[1024], 4, 2, 1), lrelu(),
                conv(nfc[1024], nfc[512], 4, 2, 1), nn.BatchNorm2d(nfc[512]), lrelu(),
            )  # fmt: skip
        elif resolution == 512:
            self.down_from_big = nn.Sequential(conv(3, nfc[512], 4, 2, 1), lrelu())
        else:
            self.down_from_big = nn.Sequential(conv(3, nfc[2 * self.top], 3, 1, 1), lrelu())
        self.big_sides = [self.top >> i for i in range(int(math.log2(self.top // 8)))]  # inputs .. 16
        for s in self.big_sides:
            self.add_module(f"down_{1024 // s}", DownBlockComp(nfc[2 * s], nfc[s]))
        self.rf_big = nn.Sequential(conv(nfc[16], nfc[8], 1), nn.BatchNorm2d(nfc[8]), lrelu(), conv(nfc[8], 1, 4))
        self.sle_to = {dst: 8 * dst for dst in (32, 16, 8) if sle and 8 * dst <= self.top}  # dst <- src side
        for dst, src in self.sle_to.items():
            self.add_module(f"se_{512 // src}_{512 // dst}", SLE(nfc[2 * src], nfc[2 * dst]))

        small_sides = [self.small // 2 >> i for i in range(int(math.log2(self.small // 16)))]  # inputs .. 16
        self.down_from_small = nn.Sequential(
            conv(3, nfc[2 * self.small], 4, 2, 1), lrelu(), *[DownBlock(nfc[4 * s], nfc[2 * s]) for s in small_sides]
        )
        self.rf_small = conv(nfc[32], 1, 4)
        self.decoders = decoders
        if decoders:
            self.decoder_big = SimpleDecoder(nfc[16], self.rec_side)
            self.decoder_part = SimpleDecoder(nfc[32], self.rec_side)
            self.decoder_small = SimpleDecoder(nfc[32], self.rec_side)
        init_weights(self)

    def big_path(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Big path on (B, 3, R, R): the 16x16 map (B, nfc[32], 16, 16) and last map (B, nfc[16], 8, 8)."""
        x = self.down_from_big(x)  # (B, nfc[2 top], top, top)
        feats = {x.size(-1): x}
        for s in self.big_sides:
            x = getattr(self, f"down_{1024 // s}")(x)  # (B, nfc[s], s/2, s/2)
            side = s // 2
            if side in self.sle_to:
                src = self.sle_to[side]
                x = getattr(self, f"se_{512 // src}_{512 // side}")(feats[src], x)
            feats[side] = x
        return feats[16], x

    def features(self, x: Tensor) -> Tensor:
        """The last big-path map (B, nfc[16], 8, 8) of images (B, 3, H, W), resized to R."""
        return self.big_path(resize(x, self.resolution))[1]

    def forward(self, imgs: Tensor | Sequence[Tensor], part: int | None = None) -> DOutput:
        """Logits (and with ``part`` in 0..3, the three reconstructions) for real or fake images.

        Args:
            imgs: real images (B, 3, H, W), or G's ``[big (B, 3, R, R), small (B, 3, S, S)]``.
            part: quadrant for ``decoder_part``; given only for real images (needs decoders).
        """
        if isinstance(imgs, Tensor):
            imgs = [resize(imgs, self.resolution), resize(imgs, self.small)]
        f16, last = self.big_path(imgs[0])
        f_small = self.down_from_small(imgs[1])  # (B, nfc[32], 8, 8)
        logits = torch.cat([self.rf_big(last).view(-1), self.rf_small(f_small).view(-1)])
        recs = None
        if part is not None:
            recs = [self.decoder_big(last), self.decoder_small(f_small), self.decoder_part(crop_part(f16, part))]
        return DOutput(logits, recs, last)


# ----------------------------------------------------------------------------- perceptual loss


class PerceptualWeightsMissing(ModelConfigError):
    """LPIPS needs torchvision's ImageNet weights, which are not in the torch hub cache."""


def build_lpips(net: str) -> nn.Module:
    """Frozen LPIPS (linear-calibrated v0.1) with backbone ``net`` ('vgg' or 'alex'), eval mode.

    Raises PerceptualWeightsMissing, naming the file and the cache folder, when the backbone's
    weights are not cached and cannot be downloaded.
    """
    import lpips

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


# ----------------------------------------------------------------------------- model


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

    Keyword args:
        ngf, ndf: base widths of G and D (channels; 64 officially).
        nz: latent size (256).
        batch_size: images per training step (8).
        lr: Adam learning rate of G and D (2e-4).
        betas: Adam (beta1, beta2) of G and D ((0.5, 0.999)).
        ema_beta: EMA decay of G's parameters per step (0.999).
        policy: DiffAugment ops, comma-separated ('color,translation'; '' for none).
        recon: reconstruction distance, one of 'lpips-vgg' (official), 'lpips-alex', 'mse', 'l1'.
            The LPIPS network is built at the first training step, kept out of the state dict.
        recon_weight: weight of the reconstruction loss (1.0); 0 disables the auto-encoding task
            (no decoders built).
        sle: skip-layer excitation in G and D (set by the registered name).
        decoders: decoders and reconstruction loss in D (set by the registered name).
        ss_contrastive: weight of the contrastive (instance-discrimination, InfoNCE) loss on D's
            features of two views of each real image (0: off, no head built).
        ss_aspect: weight of the aspect-ratio prediction loss on stretched real images (0: off).
        ss_temperature: InfoNCE temperature (0.1).
        ss_proj_dim: output size of the contrastive projection head (128).
        ss_aspect_ratios: declared width/height ratios the real images are stretched to
            ((1/2, 2/3, 1, 3/2, 2)); the aspect head predicts which.
        ss_view_policy: DiffAugment ops of the contrastive second view ('color,translation,cutout').

    The self-supervision heads (``self.ss``) read D's last big-path feature map and are updated
    by D's optimizer; their losses, weighted, join D's step only (see ``models.selfsup``).

    Sampling for evaluation: as the official code, which never calls ``eval()`` on G (``train.py``,
    ``eval.py``): BatchNorm with each generation batch's statistics, in batches of 16 (``eval.py``
    ``--batch``).
    """

    sampling = Sampling("batch", 16, "batch", "official FastGAN eval.py: G never in eval mode, --batch 16")

    def __init__(
        self,
        resolution: int,
        *,
        ngf: int = 64,
        ndf: int = 64,
        nz: int = 256,
        batch_size: int = 8,
        lr: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.999),
        ema_beta: float = 0.999,
        policy: str = "color,translation",
        recon: str = "lpips-vgg",
        recon_weight: float = 1.0,
        sle: bool,
        decoders: bool,
        ss_contrastive: float = 0.0,
        ss_aspect: float = 0.0,
        ss_temperature: float = 0.1,
        ss_proj_dim: int = 128,
        ss_aspect_ratios: Sequence[float] = ASPECT_RATIOS,
        ss_view_policy: str = "color,translation,cutout",
    ) -> None:
        super().__init__()
        if resolution not in RESOLUTIONS:
            raise ModelConfigError(f"FastGAN resolution must be one of {RESOLUTIONS}, got {resolution}")
        if recon not in RECON_LOSSES:
            raise ModelConfigError(f"recon must be one of {RECON_LOSSES}, got {recon!r}")
        if len(betas) != 2:
            raise ModelConfigError(f"betas must be two floats, got {betas!r}")
        try:
            check_policy(policy)
            check_policy(ss_view_policy)
        except ValueError as exc:
            raise ModelConfigError(str(exc)) from exc
        decoders = decoders and recon_weight > 0
        self.resolution, self.z_dim, self.batch_size = resolution, nz, batch_size
        self.policy, self.recon, self.recon_weight, self.ema_beta = policy, recon, recon_weight, ema_beta
        self.hparams = dict(
            ngf=ngf, ndf=ndf, nz=nz, batch_size=batch_size, lr=lr, betas=[float(b) for b in betas],
            ema_beta=ema_beta, policy=policy, recon=recon, recon_weight=recon_weight, sle=sle,
            decoders=decoders, ss_contrastive=ss_contrastive, ss_aspect=ss_aspect,
            ss_temperature=ss_temperature, ss_proj_dim=ss_proj_dim,
            ss_aspect_ratios=[float(a) for a in ss_aspect_ratios], ss_view_policy=ss_view_policy,
        )  # fmt: skip

        self.generator = Generator(resolution, ngf, nz, sle)
        self.discriminator = Discriminator(resolution, ndf, sle, decoders)
        self.g_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.ss = SelfSupervision(
            self.discriminator.feat_channels, contrastive=ss_contrastive, aspect=ss_aspect,
            temperature=ss_temperature, proj_dim=ss_proj_dim, aspect_ratios=ss_aspect_ratios,
            view_policy=ss_view_policy,
        )  # fmt: skip
        adam = dict(lr=lr, betas=tuple(betas))
        self.opt_g = torch.optim.Adam(self.generator.parameters(), **adam)
        self.opt_d = torch.optim.Adam([*self.discriminator.parameters(), *self.ss.parameters()], **adam)
        self.__dict__["_percept"] = None  # LPIPS net, built at first use; outside the module tree

    # --- losses

    def _distance(self, a: Tensor, b: Tensor) -> Tensor:
        """Sum over the batch of the per-image reconstruction distance (see class docstring)."""
        if self.recon == "mse":
            return (a - b).square().mean(dim=(1, 2, 3)).sum()
        if self.recon == "l1":
            return (a - b).abs().mean(dim=(1, 2, 3)).sum()
        if self._percept is None:
            self.__dict__["_percept"] = build_lpips(self.recon.removeprefix("lpips-"))
        return self._percept.to(a.device)(a, b).sum()

    def recon_loss(self, recs: list[Tensor], real: Tensor, part: int) -> Tensor:
        """Reconstruction loss of ``[rec_big, rec_small, rec_part]`` against the (augmented) real batch."""
        side = recs[0].size(-1)
        targets = [resize(real, side), resize(real, side), resize(crop_part(real, part), side)]
        return self._distance(torch.cat(recs), torch.cat(targets))

    # --- GANModel interface

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        """One official FastGAN iteration (see the class docstring); ``step`` is unused."""
        G, D = self.generator, self.discriminator
        z = torch.randn(real.size(0), self.z_dim, device=real.device)
        fakes = G(z)  # [(B, 3, R, R), (B, 3, S, S)]
        with self.region("diff_augment"):
            raw, real = real, diff_augment(real, self.policy)
            fakes = [diff_augment(f, self.policy) for f in fakes]

        # D step: real pass (with decoders), then a separate pass on the detached fakes
        self.opt_d.zero_grad(set_to_none=True)
        part = int(torch.randint(4, (), device="cpu")) if D.decoders else None  # no device sync
        out = D(real, part)
        d_real = F.relu(0.8 + 0.2 * torch.rand_like(out.logits) - out.logits).mean()
        losses = {"d_real": d_real}
        loss_d = d_real
        if out.recs is not None:
            losses["recon"] = self.recon_loss(out.recs, real, part)
            loss_d = loss_d + self.recon_weight * losses["recon"]
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
            ema_update(self.g_ema, G, self.ema_beta)
        return {k: v.detach() for k, v in losses.items()}

    def synthesize(self, g: nn.Module, z: Tensor, truncation: float) -> Tensor:
        """Images (B, 3, R, R) from latents (B, nz); raw conv output below 1024 px (no tanh).
        FastGAN has no truncation trick: ``truncation`` must be 1.0."""
        if truncation != 1.0:
            raise ValueError(f"FastGAN has no truncation trick; truncation must be 1.0, got {truncation}")
        return g(z)[0]

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


# ----------------------------------------------------------------------------- official checkpoints


def _strip_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {k.removeprefix("module."): v for k, v in state.items()}


@torch.no_grad()
def _load_exact(module: nn.Module, state: Mapping[str, Tensor], what: str) -> None:
    own = module.state_dict()
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
              for k in own.keys() & state.keys() if state[k].shape != own[k].shape]  # fmt: skip
    if missing or unexpected or shapes:
        raise ValueError(
            f"official {what} state does not match this model (check resolution, widths, variant): "
            f"missing {missing[:5]} ({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)}), "
            f"shape mismatches {sorted(shapes)[:5]} ({len(shapes)})"
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
        if t.shape != params[name].shape:
            raise ValueError(f"g_ema tensor for {name}: shape {tuple(t.shape)} vs {tuple(params[name].shape)}")
        params[name].copy_(t)


# ----------------------------------------------------------------------------- registered names


@register_model("baseline")
def baseline(resolution: int, **kw: Any) -> FastGAN:
    """FastGAN without SLE and decoders (Table A 'Baseline').

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G 26,353,830 / 26,367,352 / 26,369,472;
    D 7,354,480 / 7,354,816 / 7,356,512.
    """
    return FastGAN(resolution, sle=False, decoders=False, **kw)


@register_model("baseline-skip")
def baseline_skip(resolution: int, **kw: Any) -> FastGAN:
    """Baseline + skip-layer excitation (Table A 'Baseline+Skip').

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G 29,127,846 / 29,174,392 / 29,176,512;
    D 8,386,672 / 8,387,008 / 8,388,704.
    """
    return FastGAN(resolution, sle=True, decoders=False, **kw)


@register_model("baseline-decode")
def baseline_decode(resolution: int, **kw: Any) -> FastGAN:
    """Baseline + self-supervised D with decoders and reconstruction loss (Table A 'Baseline+decode').

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G 26,353,830 / 26,367,352 / 26,369,472;
    D 10,493,968 / 10,494,304 / 10,496,000.
    """
    return FastGAN(resolution, sle=False, decoders=True, **kw)


@register_model("fastgan", "fastgan-ss-ae")
def fastgan(resolution: int, **kw: Any) -> FastGAN:
    """FastGAN: SLE + self-supervised D (the paper's model).

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G 29,127,846 / 29,174,392 / 29,176,512;
    D 11,526,160 / 11,526,496 / 11,528,192 (official).
    """
    return FastGAN(resolution, sle=True, decoders=True, **kw)


# Table D: self-supervision strategies for D. Each weight can be overridden (0 turns a task off).


@register_model("fastgan-ss-contrastive")
def fastgan_ss_contrastive(resolution: int, **kw: Any) -> FastGAN:
    """Table D (a): FastGAN with a contrastive loss instead of decoders (SLE kept).

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G as fastgan; D 8,386,672 / 8,387,008 /
    8,388,704 plus the projection head 328,320.
    """
    return FastGAN(resolution, sle=True, decoders=False, **({"ss_contrastive": 1.0} | kw))


@register_model("fastgan-ss-aspect")
def fastgan_ss_aspect(resolution: int, **kw: Any) -> FastGAN:
    """Table D (b): FastGAN predicting the aspect ratio of stretched reals instead of decoders.

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G as fastgan; D 8,386,672 / 8,387,008 /
    8,388,704 plus the aspect head 265,221.
    """
    return FastGAN(resolution, sle=True, decoders=False, **({"ss_aspect": 1.0} | kw))


@register_model("fastgan-ss-contrastive-aspect")
def fastgan_ss_contrastive_aspect(resolution: int, **kw: Any) -> FastGAN:
    """Table D (d): contrastive + aspect ratio, no decoders.

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G as fastgan; D 8,386,672 / 8,387,008 /
    8,388,704 plus heads 593,541.
    """
    return FastGAN(resolution, sle=True, decoders=False, **({"ss_contrastive": 1.0, "ss_aspect": 1.0} | kw))


@register_model("fastgan-ss-all")
def fastgan_ss_all(resolution: int, **kw: Any) -> FastGAN:
    """Table D (e): contrastive + aspect ratio + auto-encoding (FastGAN's decoders).

    Params (ngf = ndf = 64) at 256 / 512 / 1024: G as fastgan; D 11,526,160 / 11,526,496 /
    11,528,192 (as fastgan) plus heads 593,541.
    """
    return FastGAN(resolution, sle=True, decoders=True, **({"ss_contrastive": 1.0, "ss_aspect": 1.0} | kw))
