"""StyleGAN2's layers and networks (Karras et al. 2020), written from the facts in
``shared/reference/comparison_models.md``; the layer inventory matches stylegan2-ada-pytorch's
``training/networks.py`` parameter for parameter (config-f: G 30,034,338 / D 28,864,129 at 256 px).

- mapping network: 2nd-moment-normalised z -> ``num_layers`` equalised-lr FC layers (lr
  multiplier 0.01) -> w, broadcast to ``num_ws = 2 log2(R) - 2`` styles; ``w_avg`` tracked for
  truncation ``w_avg.lerp(w, psi)``.
- skip generator: const 4x4 input; per resolution an up-sampling modulated 3x3 conv (transposed
  stride-2 conv then FIR [1,3,3,1] blur), a modulated 3x3 conv and a modulated 1x1 toRGB without
  demodulation; per-layer noise inputs; RGB outputs FIR-up-sampled and summed.
- ResNet discriminator: fromRGB at the top resolution; blocks conv3x3 -> FIR-blur + stride-2
  conv3x3, plus a 1x1 down-sampling skip without bias (both gain sqrt(0.5)); epilogue
  minibatch-stddev -> conv3x3 -> FC -> FC(1).

Channels at resolution r are ``min(channel_base // r, channel_max)``; every resolution that is a
power of two >= 8 builds.

FLOP-relevant choices: modulated convs run as NVlabs do, un-fused while training (scale the
input activations by the styles, one ordinary conv with the shared weight, scale the outputs by
the demodulation coefficients; batch-efficient) and fused at inference (one grouped conv with
groups = batch over per-sample weights). Both paths do the same multiply-adds as a plain conv of
the same shape (plus O(B*C_in*C_out*k^2) for the modulation); the tests check they agree. The
up-sampling conv is a stride-2 transposed conv followed by a 4x4 depthwise blur; the down-
sampling conv blurs at full resolution, then convolves with stride 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)

# ----------------------------------------------------------------------------- FIR resampling


def fir_kernel(taps: Sequence[float] = (1, 3, 3, 1)) -> Tensor:
    """2-D separable FIR filter (K, K) from 1-D ``taps``, normalised to sum 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = f[:, None] * f[None, :]
    return f / f.sum()


def blur(x: Tensor, f: Tensor, pad: tuple[int, int], gain: float = 1.0) -> Tensor:
    """Depthwise FIR filter of ``x`` (B, C, H, W), zero-padded by ``pad`` = (before, after)."""
    c = x.shape[1]
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = (f * gain).to(x.dtype).expand(c, 1, *f.shape)  # (C, 1, K, K)
    return F.conv2d(x, weight, groups=c)


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W): zero-insertion up-sampling then ``f`` with gain 4.

    Same as padding the zero-inserted image by (2, 1) and filtering, done as one transposed conv.
    """
    c = x.shape[1]
    weight = (f * 4).to(x.dtype).expand(c, 1, *f.shape)  # (C, 1, 4, 4)
    return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=c)


def bias_act(x: Tensor, bias: Tensor | None, lrelu: bool, gain: float = 1.0, clamp: float | None = None) -> Tensor:
    """``clamp(act(x + bias) * gain)``; lrelu has slope 0.2 and an extra gain of sqrt(2)."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    if lrelu:
        x = F.leaky_relu(x, 0.2) * (gain * SQRT2)
    elif gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


# ----------------------------------------------------------------------------- equalised-lr layers


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate.

    Weights are stored N(0, 1) / lr_mul and scaled by lr_mul / sqrt(fan_in) at run time, so Adam
    sees every layer at the same scale and the effective lr is ``lr * lr_mul``.

    Args:
        bias_init: initial value of the effective bias (1 for the style affines).
        lr_mul: learning-rate multiplier (0.01 in the mapping network).
        lrelu: apply leaky ReLU (0.2) times sqrt(2).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        lrelu: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul
        self.lrelu = lrelu

    def forward(self, x: Tensor) -> Tensor:  # (B, in) -> (B, out)
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.lrelu else x


class Conv2dLayer(nn.Module):
    """Equalised-lr conv of the discriminator, optionally down-sampling by 2 (blur, then stride 2).

    Args:
        bias: learn a per-channel bias.
        lrelu: leaky-ReLU activation (else linear).
        down: halve the resolution.
        gain: output gain (sqrt(0.5) on the two branches of a residual block).
        clamp: clamp activations to +-clamp*gain (None: no clamp).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        *,
        bias: bool = True,
        lrelu: bool = True,
        down: bool = False,
        gain: float = 1.0,
        clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.lrelu, self.down, self.gain = lrelu, down, gain
        self.clamp = None if clamp is None else clamp * gain
        p = 2 + kernel_size - 1  # total blur padding that makes blur + stride-2 conv exactly halve
        self.pad = ((p + 1) // 2, p // 2)
        self.register_buffer("fir", fir_kernel(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:  # (B, in, H, W) -> (B, out, H', W')
        w = self.weight * self.weight_gain
        if self.down:
            x = F.conv2d(blur(x, self.fir, self.pad), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=w.shape[-1] // 2)
        return bias_act(x, self.bias, self.lrelu, self.gain, self.clamp)


class ModulatedConv2d(nn.Module):
    """Style-modulated conv: w' = W * s (s = affine(w), bias init 1), optionally demodulated by
    (sum w'^2 + 1e-8)^-1/2 per output channel, optionally up-sampling by 2.

    Args:
        demodulate: normalise each output channel's weights (off for toRGB).
        up: transposed stride-2 conv followed by the FIR blur (gain 4).

    ``fused`` (forward): grouped conv over per-sample weights; default ``not self.training``.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        w_dim: int,
        kernel_size: int,
        *,
        demodulate: bool = True,
        up: bool = False,
    ) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.demodulate, self.up = demodulate, up
        p = 5 - kernel_size  # blur padding taking the transposed conv's 2H + k - 2 rows to 2H
        self.up_pad = ((p + 1) // 2, p // 2)
        self.register_buffer("fir", fir_kernel(), persistent=False)

    def forward(self, x: Tensor, w: Tensor, fused: bool | None = None) -> Tensor:
        # x (B, I, H, W), w (B, w_dim) -> (B, O, H', W') with H' = 2H if up else H
        b, i, h, wd = x.shape
        o, _, k, _ = self.weight.shape
        styles = self.affine(w) * self.weight_gain  # (B, I)
        dcoefs = None
        if self.demodulate:  # (B, O): 1 / ||W * s|| over (I, k, k), without forming per-sample W
            w2 = self.weight.square().sum(dim=[2, 3])  # (O, I)
            dcoefs = (styles.square() @ w2.t() + 1e-8).rsqrt()
        if fused if fused is not None else not self.training:
            weight = self.weight[None] * styles[:, None, :, None, None]  # (B, O, I, k, k)
            if dcoefs is not None:
                weight = weight * dcoefs[:, :, None, None, None]
            x = x.reshape(1, b * i, h, wd)
            if self.up:
                weight = weight.transpose(1, 2).reshape(b * i, o, k, k)
                x = F.conv_transpose2d(x, weight, stride=2, groups=b)  # (1, B*O, 2H+k-2, 2W+k-2)
            else:
                x = F.conv2d(x, weight.reshape(b * o, i, k, k), padding=k // 2, groups=b)
            x = x.reshape(b, o, *x.shape[2:])
        else:
            x = x * styles[:, :, None, None]
            if self.up:
                x = F.conv_transpose2d(x, self.weight.transpose(0, 1), stride=2)  # (B, O, 2H+k-2, 2W+k-2)
            else:
                x = F.conv2d(x, self.weight, padding=k // 2)
            if dcoefs is not None:
                x = x * dcoefs[:, :, None, None]
        if self.up:  # (2H + k - 2) -> 2H; gain 4 makes up for the inserted zeros
            x = blur(x, self.fir, self.up_pad, gain=4.0)
        return x


# ----------------------------------------------------------------------------- generator


class MappingNetwork(nn.Module):
    """z (B, z_dim) -> w broadcast to (B, num_ws, w_dim); tracks ``w_avg`` for truncation.

    Args:
        num_layers: FC layers (z_dim -> w_dim, then w_dim -> w_dim).
        lr_mul: learning-rate multiplier of every layer.
        w_avg_beta: decay of the running average of w.
    """

    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        num_ws: int,
        *,
        num_layers: int = 8,
        lr_mul: float = 0.01,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.Sequential(
            *[EqualLinear(a, b, lr_mul=lr_mul, lrelu=True) for a, b in zip(dims[:-1], dims[1:], strict=True)]
        )
        self.num_ws, self.w_avg_beta = num_ws, w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, truncation: float = 1.0, update_w_avg: bool = False) -> Tensor:
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()  # (B, z_dim), unit 2nd moment
        x = self.layers(x)  # (B, w_dim)
        if update_w_avg:
            self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = self.w_avg.to(x.dtype).lerp(x, truncation)  # psi = 1: x itself
        return x[:, None].expand(-1, self.num_ws, -1)  # (B, num_ws, w_dim)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally up) + noise (learned scalar strength, init 0) + bias + lrelu."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, *, up: bool = False, clamp: float | None = None) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, w_dim, 3, up=up)
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.clamp = clamp

    def forward(self, x: Tensor, w: Tensor, noise: bool = True) -> Tensor:
        x = self.conv(x, w)  # (B, O, H, W)
        if noise:
            b, _, h, wd = x.shape
            x = x + torch.randn(b, 1, h, wd, device=x.device, dtype=x.dtype) * self.noise_strength
        return bias_act(x, self.bias, lrelu=True, clamp=self.clamp)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to 3 channels, no demodulation, bias, linear."""

    def __init__(self, in_ch: int, w_dim: int, clamp: float | None = None) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, 3, w_dim, 1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(3))
        self.clamp = clamp

    def forward(self, x: Tensor, w: Tensor) -> Tensor:  # (B, C, H, W) -> (B, 3, H, W)
        return bias_act(self.conv(x, w), self.bias, lrelu=False, clamp=self.clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: [up-conv] -> conv -> toRGB, added to the up-sampled
    image. The first (4x4) block has no up-conv: it starts from the const input."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, *, first: bool, clamp: float | None = None) -> None:
        super().__init__()
        self.conv0 = None if first else SynthesisLayer(in_ch, out_ch, w_dim, up=True, clamp=clamp)
        self.conv1 = SynthesisLayer(out_ch, out_ch, w_dim, clamp=clamp)
        self.torgb = ToRGB(out_ch, w_dim, clamp=clamp)
        self.num_conv = 1 if first else 2
        self.register_buffer("fir", fir_kernel(), persistent=False)

    def forward(self, x: Tensor, img: Tensor | None, ws: Tensor, noise: bool = True) -> tuple[Tensor, Tensor]:
        # x (B, C_in, H/2, W/2) or const (B, C, 4, 4); ws (B, num_conv + 1, w_dim)
        if self.conv0 is not None:
            x = self.conv0(x, ws[:, 0], noise)  # (B, C, H, W)
        x = self.conv1(x, ws[:, self.num_conv - 1], noise)
        y = self.torgb(x, ws[:, self.num_conv])  # (B, 3, H, W)
        img = y if img is None else upsample2d(img, self.fir) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> images (B, 3, R, R). Block r reads ws[i : i + num_conv + 1]
    (its toRGB shares the w of the next block's first conv); num_ws = 2 log2(R) - 2."""

    def __init__(
        self,
        resolution: int,
        w_dim: int,
        *,
        channel_base: int,
        channel_max: int,
        clamp: float | None = None,
    ) -> None:
        super().__init__()
        resolutions = [2**i for i in range(2, int(math.log2(resolution)) + 1)]  # 4, 8, ..., R
        ch = {r: min(channel_base // r, channel_max) for r in resolutions}
        self.const = nn.Parameter(torch.randn(ch[4], 4, 4))
        self.blocks = nn.ModuleList(
            SynthesisBlock(ch[max(r // 2, 4)], ch[r], w_dim, first=r == 4, clamp=clamp) for r in resolutions
        )
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1

    def forward(self, ws: Tensor, noise: bool = True) -> Tensor:
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)  # (B, C4, 4, 4)
        img = None
        i = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i : i + block.num_conv + 1], noise)
            i += block.num_conv
        return img


class Generator(nn.Module):
    """Mapping network + skip synthesis network; ``mapping`` and ``synthesis`` are also used
    separately by the training losses (style mixing, path length)."""

    def __init__(
        self,
        resolution: int,
        *,
        z_dim: int,
        w_dim: int,
        channel_base: int,
        channel_max: int,
        mapping_layers: int,
        mapping_lr_mul: float,
        clamp: float | None,
    ) -> None:
        super().__init__()
        self.synthesis = SynthesisNetwork(
            resolution, w_dim, channel_base=channel_base, channel_max=channel_max, clamp=clamp
        )
        self.mapping = MappingNetwork(
            z_dim, w_dim, self.synthesis.num_ws, num_layers=mapping_layers, lr_mul=mapping_lr_mul
        )

    def forward(self, z: Tensor, truncation: float = 1.0, noise: bool = True) -> Tensor:
        return self.synthesis(self.mapping(z, truncation), noise)  # (B, 3, R, R)


# ----------------------------------------------------------------------------- discriminator


class DiscriminatorBlock(nn.Module):
    """Residual block: conv3x3 -> down-conv3x3 (gain sqrt .5) plus 1x1 down skip (no bias)."""

    def __init__(self, in_ch: int, out_ch: int, clamp: float | None = None) -> None:
        super().__init__()
        g = math.sqrt(0.5)
        self.conv0 = Conv2dLayer(in_ch, in_ch, 3, clamp=clamp)
        self.conv1 = Conv2dLayer(in_ch, out_ch, 3, down=True, gain=g, clamp=clamp)
        self.skip = Conv2dLayer(in_ch, out_ch, 1, bias=False, lrelu=False, down=True, gain=g)

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, H, W) -> (B, C_out, H/2, W/2)
        return self.skip(x) + self.conv1(self.conv0(x))


class MinibatchStd(nn.Module):
    """Append one channel: the std over groups of ``group_size`` samples (sample i in group
    i mod B/G), averaged over channels and pixels."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C + 1, H, W)
        b, c, h, w = x.shape
        g = min(self.group_size, b)
        while b % g:  # largest group size <= group_size dividing the batch
            g -= 1
        y = x.reshape(g, -1, c, h, w)  # (G, B/G, C, H, W)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (B/G, C, H, W)
        y = y.mean(dim=[1, 2, 3])[:, None, None, None]  # (B/G, 1, 1, 1)
        return torch.cat([x, y.repeat(g, 1, h, w)], dim=1)


class Discriminator(nn.Module):
    """ResNet discriminator: fromRGB (1x1) at R, blocks R -> 4, epilogue mbstd -> conv -> FC -> out."""

    def __init__(
        self,
        resolution: int,
        *,
        channel_base: int,
        channel_max: int,
        mbstd_group: int = 4,
        clamp: float | None = None,
    ) -> None:
        super().__init__()
        resolutions = [2**i for i in range(int(math.log2(resolution)), 1, -1)]  # R, ..., 8, 4

        def ch(r: int) -> int:
            return min(channel_base // r, channel_max)

        self.fromrgb = Conv2dLayer(3, ch(resolution), 1, clamp=clamp)
        self.blocks = nn.Sequential(*[DiscriminatorBlock(ch(r), ch(r // 2), clamp) for r in resolutions[:-1]])
        c = ch(4)
        self.mbstd = MinibatchStd(mbstd_group)
        self.conv = Conv2dLayer(c + 1, c, 3, clamp=clamp)
        self.fc = EqualLinear(c * 4 * 4, c, lrelu=True)
        self.out = EqualLinear(c, 1)

    def forward(self, img: Tensor) -> Tensor:  # (B, 3, R, R) -> logits (B,)
        x = self.blocks(self.fromrgb(img))  # (B, C4, 4, 4)
        x = self.conv(self.mbstd(x))  # (B, C4, 4, 4)
        return self.out(self.fc(x.flatten(1))).squeeze(1)
