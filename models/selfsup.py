"""Self-supervision strategies for the FastGAN discriminator (Table D of the paper) as regularizers.

The paper compares, for D: (a) a contrastive loss, (b) predicting the aspect ratio, (c)
auto-encoding (FastGAN's decoders), (d) a+b and (e) a+b+c, and gives no details of (a) and (b).
Everything below is **this project's interpretation**, each choice written down. Auto-encoding
lives in the discriminator itself (``models.fastgan``); this module holds (a) and (b): small
heads that read D's feature map and add a weighted loss to D's step. They plug into any FastGAN
variant by configuration (``ss_contrastive`` / ``ss_aspect`` weights); a task whose weight is 0
builds no head and draws no random numbers, so the training step is then exactly the one
without it.

Features: D's last big-path map (B, nfc[16], 8, 8) (the map that feeds ``rf_big`` and
``decoder_big``), global-average-pooled to (B, nfc[16]). Heads: two-layer MLPs (Linear, ReLU,
Linear) with nfc[16] hidden units, trained by D's optimizer.

(a) Contrastive: instance discrimination between two views of each real image, SimCLR's NT-Xent
form of InfoNCE (Chen et al., ICML 2020), the form ContraD (Jeong & Shin, ICLR 2021) uses in a
GAN discriminator. View 1 is the augmented real batch of the adversarial pass (its features are
reused, no extra forward); view 2 an independent DiffAugment draw of the un-augmented reals with
a stronger policy (``ss_view_policy``, 'color,translation,cutout'): one extra big-path pass.
Projection to 128-d, temperature 0.1 (within SimCLR's range; sharper for batches of 8).

(b) Aspect ratio: each real image is stretched to one of ``ss_aspect_ratios`` (width/height
1/2, 2/3, 1, 3/2, 2, drawn uniformly) and a head predicts which, with cross-entropy; one extra
big-path pass. The task must not be answerable from resampling or padding alone, so every class
goes through the same operations (:func:`stretch`): a centred crop of the same area (a fraction
``CROP_AREA`` of the image) with the class's aspect ratio, bilinearly resized to the square —
ratio 1 is resampled like the others (geometric-mean magnification 1/sqrt(CROP_AREA) for every
class), and every crop lies inside the image (no padding). The adversarial DiffAugment policy is
applied *after* stretching, so its translation padding is the same for every class.

Loss weights: every task is reduced like the official reconstruction loss (a sum over the real
batch of a per-image term) and each per-image term is of order one at chance: NT-Xent divided by
its chance value ln(2B - 1), cross-entropy divided by ln(K) for K classes, against the official
reconstruction's three distances per image (three MSEs of about 1/3 each on [-1, 1] images, or
three LPIPS distances of 0.3-0.6 each, at initialisation). With weight 1 per task (the paper
gives none) no task outweighs another by construction (about 1:1:1 at initialisation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ModelConfigError
from models.common import diff_augment

ASPECT_RATIOS = (0.5, 2 / 3, 1.0, 1.5, 2.0)  # width / height of the stretched source crop
CROP_AREA = 0.36  # area of every aspect crop as a fraction of the image (side 0.6 at ratio 1)


class PooledMLP(nn.Module):
    """Head on a feature map: global average pool, Linear, ReLU, Linear: (B, C, H, W) -> (B, out)."""

    def __init__(self, c_in: int, hidden: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))

    def forward(self, feat: Tensor) -> Tensor:
        return self.net(feat.mean(dim=(2, 3)))


def info_nce(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """NT-Xent over 2B embeddings (B, d) x 2, averaged over the 2B anchors: each one's positive
    is the other view of its image, its negatives the other 2B - 2 embeddings."""
    b = z1.size(0)
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, d)
    sim = (z @ z.T) / temperature  # (2B, 2B) cosine similarities
    self_mask = torch.eye(2 * b, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    return F.cross_entropy(sim, targets)


def stretch(x: Tensor, ratios: Tensor, area: float = CROP_AREA) -> Tensor:
    """Stretch each image of (B, C, H, W) by its aspect ratio in ``ratios`` (B,), keeping the size.

    Ratio ``a`` samples a centred crop of width sqrt(area * a) and height sqrt(area / a) (in
    units of the image side) and resizes it bilinearly to the full square: content is widened by
    1/a relative to its height. Every ratio is resampled the same way (the crop's area, hence the
    geometric-mean magnification, is the same) and no crop reaches outside the image.
    Differentiable.
    """
    theta = torch.zeros(x.size(0), 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = (area * ratios).sqrt()  # crop width, in [-1, 1] units of the image width
    theta[:, 1, 1] = (area / ratios).sqrt()
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", align_corners=False)


class SelfSupervision(nn.Module):
    """Auxiliary self-supervised tasks for the discriminator; only tasks with weight > 0 exist.

    Its parameters (the heads) belong to the discriminator's side: D's optimizer updates them.

    Args:
        feat_channels: channels of D's feature map (nfc[16]).
        contrastive: weight of the contrastive loss (0: off).
        aspect: weight of the aspect-ratio loss (0: off).
        temperature: NT-Xent temperature.
        proj_dim: output size of the contrastive projection head.
        aspect_ratios: the declared width/height ratios; the head predicts the index.
        view_policy: DiffAugment ops of the contrastive second view.
        policy: the adversarial DiffAugment ops, applied to the stretched images.
    """

    def __init__(
        self,
        feat_channels: int,
        *,
        contrastive: float = 0.0,
        aspect: float = 0.0,
        temperature: float = 0.1,
        proj_dim: int = 128,
        aspect_ratios: Sequence[float] = ASPECT_RATIOS,
        view_policy: str = "color,translation,cutout",
        policy: str = "color,translation",
    ) -> None:
        super().__init__()
        if max(aspect_ratios) * CROP_AREA > 1 or CROP_AREA / min(aspect_ratios) > 1:
            raise ModelConfigError(f"aspect ratios {tuple(aspect_ratios)} need crops wider or taller than the image")
        self.weights = {k: w for k, w in (("ss_contrastive", contrastive), ("ss_aspect", aspect)) if w > 0}
        self.temperature, self.view_policy, self.policy = temperature, view_policy, policy
        self.register_buffer("ratios", torch.tensor([float(a) for a in aspect_ratios]), persistent=False)
        if contrastive > 0:
            self.contrastive = PooledMLP(feat_channels, feat_channels, proj_dim)
        if aspect > 0:
            self.aspect = PooledMLP(feat_channels, feat_channels, len(aspect_ratios))

    def aspect_views(self, real: Tensor, labels: Tensor) -> Tensor:
        """Real images (B, 3, R, R) stretched to the classes ``labels`` (B,), then augmented."""
        return diff_augment(stretch(real, self.ratios[labels]), self.policy)

    def forward(
        self, features: Callable[[Tensor], Tensor], real: Tensor, real_aug: Tensor, feat_aug: Tensor
    ) -> dict[str, Tensor]:
        """Unweighted losses by name (``ss_contrastive``, ``ss_aspect``) of the enabled tasks, each a
        sum over the batch of per-image terms normalised to 1 at chance (module docstring).

        Args:
            features: callable (B, 3, R, R) -> D's feature map (B, C, 8, 8).
            real: the real batch before augmentation (B, 3, R, R).
            real_aug: the augmented real batch of the adversarial pass.
            feat_aug: D's feature map of ``real_aug`` from that pass.
        """
        b = real.size(0)
        losses = {}
        if "ss_contrastive" in self.weights:
            view2 = features(diff_augment(real, self.view_policy))
            nce = info_nce(self.contrastive(feat_aug), self.contrastive(view2), self.temperature)
            losses["ss_contrastive"] = nce * (b / math.log(max(2 * b - 1, 2)))
        if "ss_aspect" in self.weights:
            labels = torch.randint(len(self.ratios), (b,), device=real.device)
            logits = self.aspect(features(self.aspect_views(real, labels)))  # (B, K)
            losses["ss_aspect"] = F.cross_entropy(logits, labels, reduction="sum") / math.log(len(self.ratios))
        return losses
