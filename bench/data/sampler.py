"""Training batches: the whole set lives on the device (or, when too large, memory-mapped on the
host); an epoch-permutation sampler with x-flips on the device; resumable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

DEVICE_DATA_SHARE = 0.25  # a dataset taking more of the accelerator's memory stays on the host


def place_dataset(images: Tensor, device: torch.device, capacity: int | None = None) -> Tensor:
    """``images`` on ``device``, or left on the host (memory-mapped from the cache) when they would take
    more than :data:`DEVICE_DATA_SHARE` of ``capacity`` bytes (default: the CUDA device's memory).

    The few-shot sets take megabytes and live on the device; FFHQ-70k at 1024 px takes 220 GB and
    is read a batch at a time instead (see :class:`Sampler`). The batches are the same either way.
    """
    if device.type == "cuda" and capacity is None:
        capacity = torch.cuda.get_device_properties(device).total_memory
    if capacity is not None and images.numel() * images.element_size() > DEVICE_DATA_SHARE * capacity:
        return images
    return images.to(device)


def _to(host: Tensor, device: torch.device) -> Tensor:
    """A host tensor on ``device``, copied asynchronously (through pinned memory to CUDA: a copy
    from pageable memory may wait for the device)."""
    if device.type == "cuda":
        host = host.pin_memory()
    return host.to(device, non_blocking=True)


class Sampler:
    """Infinite sampler over dataset indices (reshuffled each epoch), with x-flips; resumable.

    ``images`` live on ``device`` (default: theirs) or on the host (:func:`place_dataset`), in which
    case each batch is gathered on the host and copied over (pinned, asynchronously to CUDA).
    """

    def __init__(self, images: Tensor, batch_size: int, seed: int, device: torch.device | None = None) -> None:
        self.images = images  # uint8 (N, 3, R, R), on the device or the host
        self.device = images.device if device is None else torch.device(device)
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(len(images), generator=self.gen)
        self.pos = 0

    def _indices(self) -> Tensor:
        out = []
        need = self.batch_size
        while need:
            if self.pos == len(self.perm):
                self.perm, self.pos = torch.randperm(len(self.images), generator=self.gen), 0
            take = self.perm[self.pos : self.pos + need]
            self.pos += len(take)
            need -= len(take)
            out.append(take)
        return torch.cat(out)

    def next(self) -> Tensor:
        """A batch (B, 3, R, R) float in [-1, 1] on the device, randomly x-flipped.

        Gathers and flips the uint8 images (the flip flags are drawn on the host, so the rows to
        flip are known without a device sync), then converts once: a few kernels per batch.
        """
        idx = self._indices()
        flip = torch.rand(len(idx), generator=self.gen) < 0.5
        dev = self.device
        x = self.images.index_select(0, _to(idx, self.images.device))  # uint8 (B, 3, R, R)
        if x.device != dev:  # host-resident dataset: copy the batch over
            x = _to(x, dev)
        rows = _to(flip.nonzero().flatten(), dev)
        x.index_copy_(0, rows, x.index_select(0, rows).flip(3))
        return x.float().div_(127.5).sub_(1.0)

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self.perm, self.pos = state["perm"].clone(), int(state["pos"])
