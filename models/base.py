"""The one small interface between a model family and the generic training loop.

The loop knows nothing model-specific: it hands a batch of real images to
:meth:`GANModel.train_step`, asks :meth:`GANModel.generate` for images, and saves
:meth:`GANModel.state_dict` plus :meth:`GANModel.optimizer_state` in checkpoints.
Everything else (losses, optimizers, EMA, regularizers, hyperparameters) lives in the family.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class GANModel(nn.Module):
    """Base class of every registered model.

    Subclasses set, in ``__init__``:
      - ``generator``, ``discriminator``, ``g_ema`` (``nn.Module``); ``g_ema`` is the EMA copy
        of the generator used for evaluation and samples;
      - ``resolution`` (output side in px), ``z_dim`` (latent size), ``batch_size`` (images per
        training step, read by the loop);
      - ``hparams``: the resolved keyword arguments (JSON-serialisable), written into the
        run's spec.
    """

    name: str = ""
    resolution: int
    z_dim: int
    batch_size: int
    hparams: dict[str, Any]
    generator: nn.Module
    discriminator: nn.Module
    g_ema: nn.Module

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        """One training iteration (D update, G update, EMA update) on ``real``.

        Args:
            real: (B, 3, R, R) float images in [-1, 1] on the model's device, already
                x-flipped by the loop; augmentation (DiffAugment) is the model's business.
            step: index of this iteration, 0-based (drives lazy regularization, EMA ramps).

        Returns:
            Detached 0-dim loss tensors on the device, by name; the loop reads them to the host
            only every few steps (no host-device sync inside the step).
        """
        raise NotImplementedError

    @torch.no_grad()
    def generate(
        self, z: Tensor, *, ema: bool = True, truncation: float = 1.0, train_bn: bool = False
    ) -> Tensor:
        """Images (B, 3, R, R) in about [-1, 1] from latents ``z`` (B, z_dim).

        Args:
            ema: use the EMA generator (else the raw one).
            truncation: psi; 1.0 means no truncation. Families without truncation accept 1.0 only.
            train_bn: run BatchNorm with batch statistics, as the official FastGAN code samples.
        """
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer the model holds as an attribute, by attribute name."""
        return {k: v for k, v in sorted(vars(self).items()) if isinstance(v, torch.optim.Optimizer)}

    def optimizer_state(self) -> dict[str, Any]:
        """State of every optimizer, for checkpoints (override to add other training state)."""
        return {name: opt.state_dict() for name, opt in self.optimizers().items()}

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`optimizer_state`; the optimizers keep their own implementation flags
        (``fused``/``foreach``), which ``load_state_dict`` would otherwise take from the saved groups."""
        for name, opt in self.optimizers().items():
            impl = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in opt.param_groups]
            opt.load_state_dict(state[name])
            for group, flags in zip(opt.param_groups, impl, strict=True):
                group.update(flags)

    @property
    def device(self) -> torch.device:
        """Device of the generator's parameters."""
        return next(self.generator.parameters()).device
