"""What one ``perf`` invocation measures (recorded in its JSON; the CLI flags are generated from it)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PerfSettings:
    """What one ``perf`` invocation measures (recorded in the JSON)."""

    models: tuple[str, ...] = ("fastgan:recon=mse", "stylegan2-lite", "biggan")  # name[:key=value[:...]]
    resolution: int = 256  # px
    batch: int | None = None  # images per step; None = each model's default
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    steps: int = 3  # timed training steps (median)
    warmup: int = 1  # untimed steps before them (after the FLOP-counting step)
    harness_steps: int = 100  # steps of the no-work model that time the harness alone
    log_every: int = 10  # the loop's loss read-out interval, as in training
    precision: str = "fp32"  # 'fp32' or 'bf16' (autocast), as RunSpec.precision
    compile: bool = False  # torch.compile G and D, as RunSpec.compile
    fused_adam: bool = False  # Adam's fused kernel, as RunSpec.fused_adam
    channels_last: bool = False  # models and data in channels_last memory format
    dataset: str = "shapes"  # images the Sampler (and the naive path) draw from
    eval_images: int | None = None  # generated images through the detector; None = 5000 on GPU, 64 on CPU
    detector: str = "inception-v3"  # falls back to inception-random (same network) when offline
    eval_protocol: str = "fid5k_full"  # protocol whose resize mode / BN mode the eval path uses
    naive_data: bool = False  # also time the naive DataLoader + PIL data path
    naive_workers: int = 0  # DataLoader workers of the naive path
    seed: int = 0
    out: Path = Path("results")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))
