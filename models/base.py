"""The one small interface between a model family and the generic harness.

The harness knows nothing model-specific: it hands a batch of real images to
:meth:`GANModel.train_step`, samples through :meth:`GANModel.sampler` (the family's own
evaluation convention, :class:`Sampling`), saves :meth:`GANModel.state_dict` plus
:meth:`GANModel.optimizer_state` in checkpoints, asks the model to compile itself
(:meth:`GANModel.compile_for_training`) and to load its authors' checkpoints
(:meth:`GANModel.load_official`), and times named regions of a step through
:attr:`GANModel.region_timer` (``perf``). Losses, optimizers, EMA, regularizers and
hyperparameters live in the family.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from models.step_graph import StepGraph

BN_MODES = ("batch", "running", "standing", "none")
_STRUCTURE_ONLY = contextvars.ContextVar("structure_only", default=False)


@contextlib.contextmanager
def structure_only() -> Iterator[None]:
    """Build and step models for their shapes and work only (``bench`` counts a step's work on the
    meta device): pretrained sub-networks (LPIPS backbones) are built without their weights."""
    token = _STRUCTURE_ONLY.set(True)
    try:
        yield
    finally:
        _STRUCTURE_ONLY.reset(token)


def pretrained_weights_needed() -> bool:
    """False inside :func:`structure_only`: a pretrained sub-network may then skip its weights."""
    return not _STRUCTURE_ONLY.get()


class ModelConfigError(ValueError):
    """A user-facing error about a model name or its keyword arguments."""


@dataclass(frozen=True)
class Sampling:
    """How a family's generator is sampled for evaluation: its authors' convention.

    ``bn`` names where BatchNorm takes its statistics:

    - ``"batch"``: train-mode BatchNorm, each generation batch normalised by its own statistics
      (the official FastGAN code never calls ``eval()``); ``batch`` is then part of the protocol.
    - ``"running"``: eval-mode BatchNorm with the sampled generator's stored running statistics
      (``stats`` says how the family keeps them for its EMA generator).
    - ``"standing"``: running statistics re-estimated for the sampled generator before sampling
      (BigGAN's "standing statistics"): ``standing_batches`` train-mode passes of ``batch``
      fresh latents, accumulated as a plain average, then eval mode.
    - ``"none"``: the generator has no BatchNorm (StyleGAN2).
    """

    bn: str  # one of BN_MODES
    batch: int  # latents per generator call during evaluation
    stats: str  # where the statistics come from: "batch", "ema-of-running", "standing", "none", ...
    source: str  # one line: whose convention this is (code and file)
    standing_batches: int = 16  # "standing" only: train-mode passes accumulated

    def __post_init__(self) -> None:
        if self.bn not in BN_MODES:
            raise ModelConfigError(f"sampling bn must be one of {BN_MODES}, got {self.bn!r}")
        if self.batch < 1 or self.standing_batches < 1:
            raise ModelConfigError("sampling batch and standing_batches must be >= 1")

    def with_bn(self, bn: str | None) -> Sampling:
        """This convention with BatchNorm mode ``bn`` (None: unchanged); the statistics follow the mode."""
        if bn is None or bn == self.bn:
            return self
        stats = {"batch": "batch", "standing": "standing", "none": "none"}.get(bn, "running")
        return Sampling(bn, self.batch, stats, f"{self.source}; bn overridden to {bn!r}", self.standing_batches)


NO_BN = Sampling("none", 32, "none", "the generator has no BatchNorm")

Generate = Callable[[Tensor], Tensor]


class GANModel(nn.Module):
    """Base class of every registered model.

    Subclasses set, in ``__init__``:
      - ``generator``, ``discriminator``, ``g_ema`` (``nn.Module``); ``g_ema`` is the EMA copy
        of the generator used for evaluation and samples;
      - ``resolution`` (output side in px), ``z_dim`` (latent size), ``batch_size`` (images per
        training step, read by the loop);
      - ``hparams``: the resolved keyword arguments (JSON-serialisable), written into the
        run's spec;
    implement :meth:`train_step` and :meth:`synthesize`, and declare ``sampling``.
    """

    name: str = ""
    resolution: int
    z_dim: int
    batch_size: int
    hparams: dict[str, Any]
    generator: nn.Module
    discriminator: nn.Module
    g_ema: nn.Module
    sampling: Sampling = NO_BN
    region_timer: Callable[[str], AbstractContextManager[Any]] | None = None  # set by `perf`
    step_graph: StepGraph | None = None  # the step's CUDA graph, set by use_cuda_graphs

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        """One training iteration (D update, G update, EMA update) on ``real``.

        Args:
            real: (:attr:`reals_per_step`, 3, R, R) float images in [-1, 1] on the model's device,
                already x-flipped by the loop; augmentation (DiffAugment) is the model's business.
            step: index of this iteration, 0-based (drives lazy regularization, EMA ramps).

        Returns:
            Detached 0-dim loss tensors on the device, by name; the loop reads them to the host
            only every few steps (no host-device sync inside the step).
        """
        raise NotImplementedError

    @property
    def reals_per_step(self) -> int:
        """Real images one :meth:`train_step` takes (the loop draws this many per step): by default
        ``batch_size``; a family whose D steps each see a fresh real batch takes all of them at once."""
        return self.batch_size

    def cost_steps(self) -> dict[int, float]:
        """Step indices whose weighted sum of work is one mean training step: ``{index: weight}``.

        Steps differ when some terms run only every few steps (lazy regularisation); ``bench``
        traces these steps to count the work of a step (FLOPs, bytes, ops). Default: every step
        does the same work.
        """
        return {1: 1.0}

    def structure_notes(self) -> tuple[str, ...]:
        """Where this resolution makes the model's modules differ from its paper's, one phrase each
        (the report's caption states them). Default: none."""
        return ()

    def synthesize(self, g: nn.Module, z: Tensor, truncation: float) -> Tensor:
        """Images (B, 3, R, R) in about [-1, 1] from generator module ``g`` (``generator`` or
        ``g_ema``, already in the right mode) and latents ``z`` (B, z_dim). Families without a
        truncation trick raise ValueError unless ``truncation`` is 1.0."""
        raise NotImplementedError

    def region(self, name: str) -> AbstractContextManager[Any]:
        """A named part of the training step (``diff_augment``, ``ema_update``, ...), timed by
        ``perf`` through :attr:`region_timer`; a no-op otherwise."""
        timer = self.region_timer
        return contextlib.nullcontext() if timer is None else timer(name)

    @contextlib.contextmanager
    def sampler(
        self, *, ema: bool = True, bn: str | None = None, truncation: float = 1.0, seed: int = 0
    ) -> Iterator[Generate]:
        """A function ``z -> images`` sampling the EMA (or raw) generator the family's way.

        ``bn`` overrides the family's :class:`Sampling` mode (None: the family's own); ``seed``
        draws the latents of standing statistics. On exit the generator's buffers, BatchNorm
        momenta and mode are as before: sampling never changes the stored generator.
        """
        g = self.g_ema if ema else self.generator
        mode = self.sampling.with_bn(bn)
        was_training = g.training
        saved = [b.detach().clone() for b in g.buffers()]
        bns = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in bns]
        try:
            with torch.no_grad():
                if mode.bn == "standing":
                    self._standing_statistics(g, bns, mode, seed)
                g.train(mode.bn == "batch")
                yield lambda z: self.synthesize(g, z, truncation)
        finally:
            g.train(was_training)
            for m, momentum in zip(bns, momenta, strict=True):
                m.momentum = momentum
            with torch.no_grad():
                for b, s in zip(g.buffers(), saved, strict=True):
                    b.copy_(s)

    def _standing_statistics(self, g: nn.Module, bns: list[nn.Module], mode: Sampling, seed: int) -> None:
        """Re-estimate every BatchNorm's running statistics of ``g`` as the plain average over
        ``mode.standing_batches`` train-mode passes of fresh latents (BigGAN's standing stats)."""
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: the plain mean over the passes
        gen = torch.Generator().manual_seed(seed)
        g.train(True)
        for _ in range(mode.standing_batches):
            self.synthesize(g, torch.randn(mode.batch, self.z_dim, generator=gen).to(self.device), 1.0)

    @torch.no_grad()
    def generate(self, z: Tensor, *, ema: bool = True, truncation: float = 1.0, bn: str | None = None) -> Tensor:
        """Images (B, 3, R, R) in about [-1, 1] from latents ``z`` (B, z_dim) through one
        :meth:`sampler` (with ``"batch"`` BatchNorm, ``z`` is one normalisation batch)."""
        with self.sampler(ema=ema, bn=bn, truncation=truncation) as g:
            return g(z)

    def compile_for_training(self) -> None:
        """``torch.compile`` (in place, state-dict keys unchanged) what the training step runs:
        by default the generator, the discriminator and their direct children, so that steps
        calling sub-networks directly run compiled too. Families override what needs care."""
        for net in (self.generator, self.discriminator):
            for module in (net, *net.children()):
                module.compile()

    def use_fused_adam(self) -> None:
        """Switch every optimizer to its fused kernel (a float-rounding change, hence opt-in)."""
        for opt in self.optimizers().values():
            for group in opt.param_groups:
                group.update(fused=True, foreach=False)

    def use_foreach_adam(self) -> None:
        """Switch every optimizer to its multi-tensor (foreach) kernels, as torch already does on CUDA. On
        the CPU torch defaults to a Python loop over the parameters; the foreach kernels do the same
        per-tensor arithmetic (bitwise equal, tested) in one call per operation, 1-4 % of a demo step."""
        for opt in self.optimizers().values():
            for group in opt.param_groups:
                if not group.get("fused"):
                    group["foreach"] = True

    def use_channels_last(self) -> None:
        """Hold every 4-D weight and buffer (every network, the EMA copies included) in channels-last (NHWC)
        memory; convolutions then give channels-last activations too. The same arithmetic in another order
        (oneDNN's NHWC kernels on a CPU, no reorder to its blocked layout around each call): a rounding
        change, hence opt-in (``RunSpec.channels_last``). Call it before the first step (optimizer state
        follows its parameter's layout when it is created)."""
        self.to(memory_format=torch.channels_last)

    def use_cuda_graphs(self, capture: bool = True) -> None:
        """Run the training step as one CUDA graph (``RunSpec.cuda_graphs``; see
        :mod:`models.step_graph`). ``capture=False``: everything but the capture (the graph's body
        run eagerly, its optimizers as configured for capture), to compare with the replays.
        Families whose step is the same graph every step override this."""
        name = self.name or type(self).__name__
        raise ModelConfigError(
            f"model {name!r}: cuda_graphs is offered for the FastGAN family only (StyleGAN2's lazy "
            "regularisation and BigGAN's EMA start change the step's graph from step to step)"
        )

    def load_official(self, checkpoint: Mapping[str, Any]) -> None:
        """Load a checkpoint written by the family authors' own code (FastGAN so far); raise
        :class:`ModelConfigError` naming what does not match."""
        name = self.name or type(self).__name__
        raise ModelConfigError(
            f"model {name!r}: official checkpoints are read for the FastGAN family only (fastgan, ...)"
        )

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer the model holds as an attribute, by attribute name."""
        return {k: v for k, v in sorted(vars(self).items()) if isinstance(v, torch.optim.Optimizer)}

    def optimizer_state(self) -> dict[str, Any]:
        """State of every optimizer, for checkpoints (override to add other training state)."""
        return {name: opt.state_dict() for name, opt in self.optimizers().items()}

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`optimizer_state`; the optimizers keep their own implementation flags
        (``fused``/``foreach``/``capturable``), which ``load_state_dict`` would otherwise take from
        the saved groups."""
        for name, opt in self.optimizers().items():
            impl = [{k: g[k] for k in ("fused", "foreach", "capturable") if k in g} for g in opt.param_groups]
            opt.load_state_dict(state[name])
            for group, flags in zip(opt.param_groups, impl, strict=True):
                group.update(flags)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters (not buffers) of the generator and the discriminator."""
        return {
            name: sum(p.numel() for p in getattr(self, name).parameters()) for name in ("generator", "discriminator")
        }

    @property
    def device(self) -> torch.device:
        """Device of the generator's parameters."""
        return next(self.generator.parameters()).device
