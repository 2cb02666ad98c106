"""Runtime options of a training run: they do not change what it computes (not part of the run id)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoopOptions:
    """Runtime options that do not change what a run computes (not part of the run id)."""

    out: Path  # results folder (runs/, cache/)
    device: str = "auto"  # 'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1', ...
    progress: bool = True  # show a tqdm bar
    log_every: int = 10  # read losses to the host every N steps (the only sync in the loop)
    checkpoint_every_s: float = 900.0  # training seconds between periodic checkpoints
    should_stop: Callable[[], bool] | None = None  # polled every step; True = checkpoint and return
    deterministic: bool = False  # deterministic cuDNN/cuBLAS kernels: bitwise-repeatable GPU runs and resumes, slower
    data_capacity: int | None = None  # device bytes the dataset may take a quarter of (None: the device's memory)
    tensorboard: bool = False  # also write TensorBoard events (losses, metrics, grids) to <run>/tensorboard/
    plugins: tuple[str, ...] = field(default_factory=tuple)  # model plugins to import first (models.plugins)
