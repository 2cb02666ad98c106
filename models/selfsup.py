"""Self-supervision strategies for the FastGAN discriminator (Table D of the paper) as regularizers.

The paper compares, for D: (a) a contrastive loss, (b) predicting the aspect ratio, (c)
auto-encoding (FastGAN's decoders), (d) a+b and (e) a+b+c. Auto-encoding lives in the
discriminator itself (``models.fastgan``); this module holds (a) and (b): small heads that read
D's feature map and add a weighted loss to D's step. They plug into any FastGAN variant by
configuration (``ss_contrastive`` / ``ss_aspect`` weights); a task whose weight is 0 builds no
head and draws no random numbers, so the training step is then exactly the one without it.

Feature layer: D's last big-path map (B, nfc[16], 8, 8) (the map that feeds ``rf_big`` and
``decoder_big``), global-average-pooled to (B, nfc[16]).

(a) Contrastive: instance discrimination between two augmented views of the same real image,
SimCLR's NT-Xent form of InfoNCE (Chen et al., ICML 2020; van den Oord et al. 2018), the form
ContraD (Jeong & Shin, ICLR 2021) uses in a GAN discriminator: SimCLR's two-layer projection MLP
(to 128-d) and temperature 0.1 (our choice, within the range SimCLR explores; a smaller one
sharpens the task for batches of 8). View 1 is the real batch of the adversarial pass (its features are reused, no
extra forward); view 2 is an independent DiffAugment draw of the un-augmented real batch with
a stronger policy (default 'color,translation,cutout'), one extra big-path pass of D.

(b) Aspect ratio: each real image is stretched to one of a few declared aspect ratios (a
centred crop of width/height ratio ``a``, the largest that fits, resized back to the square, so
content is stretched by 1/a horizontally or a vertically) and a classification head predicts
which, with cross-entropy; one extra big-path pass of D on the stretched batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.common import diff_augment

ASPECT_RATIOS = (0.5, 2 / 3, 1.0, 1.5, 2.0)  # width / height of the stretched source crop


class PooledMLP(nn.Module):
    """Head on a feature map: global average pool, Linear, ReLU, Linear: (B, C, H, W) -> (B, out)."""

    def __init__(self, c_in: int, hidden: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))

    def forward(self, feat: Tensor) -> Tensor:
        return self.net(feat.mean(dim=(2, 3)))


def info_nce(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """NT-Xent over 2B embeddings (B, d) x 2: each one's positive is the other view of its image."""
    b = z1.size(0)
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, d)
    sim = (z @ z.T) / temperature  # (2B, 2B) cosine similarities
    self_mask = torch.eye(2 * b, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    return F.cross_entropy(sim, targets)


def stretch(x: Tensor, ratios: Tensor) -> Tensor:
    """Stretch each image of (B, C, H, W) by its aspect ratio in ``ratios`` (B,), keeping the size.

    Ratio ``a`` < 1 samples a centred crop of a * W columns (full height) and widens it to W;
    ``a`` > 1 a crop of H / a rows, heightened to H; bilinear, differentiable; ``a`` = 1 is
    the identity.
    """
    theta = torch.zeros(x.size(0), 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = ratios.clamp(max=1.0)  # horizontal extent of the crop, in [-1, 1] units
    theta[:, 1, 1] = ratios.reciprocal().clamp(max=1.0)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", align_corners=False)


class SelfSupervision(nn.Module):
    """Auxiliary self-supervised tasks for the discriminator; only tasks with weight > 0 exist.

    Its parameters (the heads) belong to the discriminator's side: D's optimizer updates them.

    Args:
        feat_channels: channels of D's feature map (nfc[16]).
        contrastive: weight of the contrastive loss (0: off).
        aspect: weight of the aspect-ratio loss (0: off).
        temperature: InfoNCE temperature.
        proj_dim: output size of the contrastive projection head.
        aspect_ratios: the declared width/height ratios; the head predicts the index.
        view_policy: DiffAugment ops of the contrastive second view.
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
    ) -> None:
        super().__init__()
        self.weights = {k: w for k, w in (("ss_contrastive", contrastive), ("ss_aspect", aspect)) if w > 0}
        self.temperature, self.view_policy = temperature, view_policy
        self.register_buffer("ratios", torch.tensor([float(a) for a in aspect_ratios]), persistent=False)
        if contrastive > 0:
            self.contrastive = PooledMLP(feat_channels, feat_channels, proj_dim)
        if aspect > 0:
            self.aspect = PooledMLP(feat_channels, feat_channels, len(aspect_ratios))

    def forward(
        self, features: Callable[[Tensor], Tensor], real: Tensor, real_aug: Tensor, feat_aug: Tensor
    ) -> dict[str, Tensor]:
        """Unweighted losses by name (``ss_contrastive``, ``ss_aspect``) of the enabled tasks.

        Args:
            features: callable (B, 3, R, R) -> D's feature map (B, C, 8, 8).
            real: the real batch before augmentation (B, 3, R, R).
            real_aug: the augmented real batch of the adversarial pass.
            feat_aug: D's feature map of ``real_aug`` from that pass.
        """
        losses = {}
        if "ss_contrastive" in self.weights:
            view2 = features(diff_augment(real, self.view_policy))
            losses["ss_contrastive"] = info_nce(self.contrastive(feat_aug), self.contrastive(view2), self.temperature)
        if "ss_aspect" in self.weights:
            labels = torch.randint(len(self.ratios), (real.size(0),), device=real.device)
            logits = self.aspect(features(stretch(real_aug, self.ratios[labels])))  # (B, n_ratios)
            losses["ss_aspect"] = F.cross_entropy(logits, labels)
        return losses
