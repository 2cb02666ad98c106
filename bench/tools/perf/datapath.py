"""The naive data path (DataLoader + PIL decoding per step, as the official code) against the Sampler."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bench.data.sampler import Sampler
from bench.tools.perf.timing import summarize, time_calls


def write_png_folder(images: Tensor, folder: Path) -> list[Path]:
    """Write uint8 (N, 3, R, R) images as PNG files; returns their paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        path = folder / f"{i:05d}.png"
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(path)
        paths.append(path)
    return paths


class _ImageFiles(torch.utils.data.Dataset):
    """Image files decoded with PIL and transformed on every access, as the official FastGAN loader."""

    def __init__(self, paths: list[Path], resolution: int) -> None:
        from torchvision import transforms

        self.paths = paths
        self.transform = transforms.Compose([
            transforms.Resize((resolution, resolution)),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
        ])  # fmt: skip

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor:
        from PIL import Image

        with Image.open(self.paths[i]) as img:
            return self.transform(img.convert("RGB"))


def time_data_paths(
    images: Tensor, batch: int, device: torch.device, steps: int, workers: int, seed: int, channels_last: bool
) -> dict[str, Any]:
    """Seconds per batch of the Sampler (on-device uint8 set) and of the naive PIL DataLoader path."""
    sampler = Sampler(images.to(device), batch, seed=seed)
    ours, _ = time_calls(lambda _: sampler.next(), steps, warmup=2, device=device)
    with tempfile.TemporaryDirectory(prefix="perf-png-") as tmp:
        files = _ImageFiles(write_png_folder(images.cpu(), Path(tmp)), images.shape[-1])
        loader = torch.utils.data.DataLoader(
            files, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
            pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed),
            persistent_workers=workers > 0,
        )  # fmt: skip

        def batches() -> Iterator[Tensor]:
            while True:
                yield from loader

        it = batches()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        naive, _ = time_calls(lambda _: next(it).to(device, non_blocking=True, memory_format=fmt), steps, 2, device)
    s_ours, s_naive = summarize(ours), summarize(naive)
    return {
        "sampler_s": s_ours,
        "naive_s": s_naive,
        "naive_workers": workers,
        "naive_source": f"PNG files at {images.shape[-1]} px, decoded + Resize/Flip/ToTensor/Normalize per image",
        "naive_over_sampler": s_naive["median"] / s_ours["median"],
    }
