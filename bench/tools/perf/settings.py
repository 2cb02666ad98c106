"""What one ``perf`` invocation measures (recorded in its JSON). The ``perf`` flags are generated
from these fields (``metadata["help"]``; ``metadata["parse"]`` names a value parser of
:mod:`bench.cli.args`), so each setting is spelled once."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.plan.specs import PRECISIONS


@dataclass(frozen=True)
class PerfSettings:
    """What one ``perf`` invocation measures (recorded in the JSON)."""

    models: tuple[str, ...] = field(
        default=("fastgan:recon=mse", "stylegan2-lite", "biggan"),
        metadata={"help": "comma-separated models, each NAME[:KEY=VALUE...] (model kwargs)", "parse": "csv"},
    )
    resolution: int = field(default=256, metadata={"help": "px (default 256)", "parse": "resolution"})
    batch: int | None = field(default=None, metadata={"help": "images per step (default: each model's own)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N"})
    steps: int = field(default=3, metadata={"help": "timed training steps; the median is reported"})
    warmup: int = field(default=1, metadata={"help": "untimed steps before them", "parse": "nonnegative"})
    harness_steps: int = field(default=100, metadata={"help": "steps of the no-work model timing the harness"})
    busy_steps: int = 3  # model steps profiled for the busy fraction (kernel time / wall time)
    log_every: int = 10  # the loop's loss read-out interval, as in training
    precision: str = field(
        default="fp32", metadata={"help": "bf16 = autocast (opt-in), as RunSpec.precision", "choices": PRECISIONS}
    )
    compile: bool = field(default=False, metadata={"help": "torch.compile G and D (opt-in), as RunSpec.compile"})
    fused_adam: bool = field(default=False, metadata={"help": "Adam's fused kernel (opt-in), as RunSpec.fused_adam"})
    cuda_graphs: bool = field(
        default=False, metadata={"help": "the step as one CUDA graph (opt-in, FastGAN family), as RunSpec.cuda_graphs"}
    )
    channels_last: bool = field(
        default=False, metadata={"help": "models and data in channels_last (opt-in), as RunSpec.channels_last"}
    )
    dataset: str = field(default="shapes", metadata={"help": "images the data paths draw from (default shapes)"})
    eval_images: int | None = field(
        default=None,
        metadata={"help": "images through the detector (5000 GPU, 64 CPU; 0 skips)", "parse": "nonnegative"},
    )
    detector: str = field(
        default="inception-v3", metadata={"help": "detector of the evaluation path (offline: effnet-lite0 instead)"}
    )
    eval_protocol: str = "fid5k_full_clean"  # protocol whose resize mode / BN mode the eval path uses
    naive_data: bool = field(default=False, metadata={"help": "also time the naive DataLoader + PIL data path"})
    naive_workers: int = field(
        default=0, metadata={"help": "DataLoader workers of the naive path", "parse": "nonnegative"}
    )
    seed: int = 0
    out: Path = field(default=Path("results"), metadata={"help": "JSON goes to OUT/perf/"})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as text)."""
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass(frozen=True)
class PrecisionCheck:
    """``perf --precision-fid``: FID of a suite's model trained in fp32 and bf16 per seed."""

    precision_fid: bool = field(
        default=False,
        metadata={"help": "instead: FID of a suite's model trained in fp32 and bf16 per seed, vs the seed spread"},
    )
    fid_suite: str = field(default="smoke", metadata={"help": "suite of --precision-fid (default smoke)"})
    fid_model: str = field(default="fastgan", metadata={"help": "model of --precision-fid (default fastgan)"})
    fid_seeds: tuple[int, ...] = field(
        default=(0, 1, 2), metadata={"help": "seeds of --precision-fid (default 0,1,2)", "parse": "int_list"}
    )
    fid_iters: int = field(default=40, metadata={"help": "training steps per --precision-fid run", "parse": "count"})
