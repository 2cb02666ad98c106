"""FastGAN's layers and networks (generator, two-path discriminator with decoders), written from
the facts of the official code (odegeasslbc/FastGAN-pytorch ``models.py``).

Module and parameter names equal the official ones at 256, 512 and 1024 px, so official state
dicts load as they are (``models.fastgan_official``). Resolutions 32, 64 and 128 are an extension
of this project for CPU work, described in :class:`Generator` and :class:`Discriminator`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from models.resample import AvgPool2x, Upsample2x

RESOLUTIONS = (32, 64, 128, 256, 512, 1024)
# channel multipliers by feature-map side in px; channels = int(multiplier * ngf or ndf)
G_MULT = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
D_MULT = {4: 16, 8: 16, 16: 8, 32: 4, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
# decoder up-block output channels by output side: int(DEC_MULT[side] * ndec); officially ndec = 32, independent of ndf
DEC_MULT = {16: 4, 32: 2, 64: 2, 128: 1}

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
        Upsample2x(),
        conv(c_in, 2 * c_out, 3, 1, 1),
        nn.BatchNorm2d(2 * c_out),
        nn.GLU(dim=1),
    )


def up_block_comp(c_in: int, c_out: int) -> nn.Sequential:
    """Up block with a second conv and noise injection after each conv."""
    return nn.Sequential(
        Upsample2x(),
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
        self.direct = nn.Sequential(AvgPool2x(), conv(c_in, c_out, 1), nn.BatchNorm2d(c_out), lrelu())

    def forward(self, x: Tensor) -> Tensor:
        return (self.main(x) + self.direct(x)) / 2


class SimpleDecoder(nn.Module):
    """8x8 feature map -> image (B, 3, out, out) in [-1, 1]; ``out`` = 128 and ``ndec`` = 32 officially."""

    def __init__(self, c_in: int, out: int = 128, ndec: int = 32) -> None:
        super().__init__()
        sides = [16 << i for i in range(int(math.log2(out // 8)))]  # up-block output sides
        chans = [c_in] + [int(DEC_MULT[s] * ndec) for s in sides]
        ups = [up_block(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True)]
        self.main = nn.Sequential(nn.AdaptiveAvgPool2d(8), *ups, conv(chans[-1], 3, 3, 1, 1), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x)


def resize(x: Tensor, side: int) -> Tensor:
    """Nearest resize of (B, C, H, W) to (B, C, side, side); no-op at that size already."""
    return x if x.shape[-2:] == (side, side) else F.interpolate(x, size=side, mode="nearest")


def crop_part(x: Tensor, part: int | Tensor) -> Tensor:
    """Quadrant ``part`` of (B, C, H, W): 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.

    ``part`` a 0-dim integer tensor on ``x``'s device: the same values, gathered by index on the
    device (no host read of ``part``: a CUDA graph holds one crop for all four quadrants)."""
    h, w = x.size(2) // 2, x.size(3) // 2
    if isinstance(part, Tensor):
        rows = torch.arange(h, device=x.device) + part.div(2, rounding_mode="floor") * h
        cols = torch.arange(w, device=x.device) + part.remainder(2) * w
        return x.index_select(2, rows).index_select(3, cols)
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
        ndec: the decoders' base width (official 32, whatever ``ndf``).
    """

    def __init__(self, resolution: int, ndf: int = 64, sle: bool = True, decoders: bool = True, ndec: int = 32) -> None:
        super().__init__()
        nfc = {s: int(m * ndf) for s, m in D_MULT.items()}
        self.resolution, self.small = resolution, min(128, resolution // 2)
        self.top = min(resolution, 256)  # side of down_from_big's output
        self.rec_side = min(128, resolution)
        self.feat_channels = nfc[16]

        if resolution == 1024:
            self.down_from_big = nn.Sequential(
                conv(3, nfc[1024], 4, 2, 1),
                lrelu(),
                conv(nfc[1024], nfc[512], 4, 2, 1),
                nn.BatchNorm2d(nfc[512]),
                lrelu(),
            )
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
            self.decoder_big = SimpleDecoder(nfc[16], self.rec_side, ndec)
            self.decoder_part = SimpleDecoder(nfc[32], self.rec_side, ndec)
            self.decoder_small = SimpleDecoder(nfc[32], self.rec_side, ndec)
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

    def forward(self, imgs: Tensor | Sequence[Tensor], part: int | Tensor | None = None) -> DOutput:
        """Logits (and with ``part`` in 0..3, the three reconstructions) for real or fake images.

        Args:
            imgs: real images (B, 3, H, W), or G's ``[big (B, 3, R, R), small (B, 3, S, S)]``.
            part: quadrant for ``decoder_part`` (an int, or a 0-dim tensor on the device: see
                :func:`crop_part`); given only for real images (needs decoders).
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
