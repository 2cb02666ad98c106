"""How long one training step takes on a device: a per-op roofline scaled by an efficiency.

The work of a step (:class:`StepCost`) is counted op by op on the meta device
(:mod:`bench.tools.stepcost`): each op's FLOPs (``torch.utils.flop_counter``'s formulas; convolutions
and matmuls), the bytes it reads and writes, and the spatial side of its feature maps. On a device
with profile ``d`` (:mod:`bench.plan.devices`) one op ideally takes

    max(FLOPs / peak_d(op), bytes / bandwidth_d, op_overhead_d)

(compute-bound, memory-bound, or bound by the host issuing it), and the step takes the sum of its
ops' ideal times divided by ``efficiency_d``, the achieved fraction of that ideal (a calibrated
constant per device kind, from a published throughput or a measurement; see devices.toml). The
peak an op gets depends on the run's precision: fp32 convolutions run as TF32 where PyTorch does so
by default (cuDNN on Ampere and newer), fp32 matmuls do not; bf16 runs use the bf16 tensor peak for
convolutions and matmuls and move half their bytes; ``mixed-fp16`` (stylegan2-ada's default: the 4
highest resolutions in fp16) uses the fp16 peak and half the bytes for ops at sides >= R/8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.plan.devices import DeviceProfile

KINDS = ("conv", "mm", "other")  # tensor-unit ops (convolutions, matmuls) and the rest
PRECISION_MODES = ("fp32", "bf16", "mixed-fp16")


@dataclass(frozen=True)
class OpGroup:
    """Ops of one shape of work, with how many of them a mean step runs."""

    kind: str  # one of KINDS
    flops: int  # per op (multiply-add = 2)
    bytes: int  # read + written per op
    side: int  # spatial side of the op's largest 4-D tensor (0: none)
    count: float  # ops of this group per mean step (weighted over the model's cost_steps)


@dataclass(frozen=True)
class StepCost:
    """The work of one mean training step of a model configuration."""

    batch: int  # real images one step shows the discriminator (GANModel.reals_per_step)
    resolution: int
    groups: tuple[OpGroup, ...]

    @property
    def flops(self) -> float:
        """FLOPs per step."""
        return sum(g.flops * g.count for g in self.groups)

    @property
    def bytes(self) -> float:
        """Bytes read and written per step (each op's inputs and outputs, no cache reuse)."""
        return sum(g.bytes * g.count for g in self.groups)

    @property
    def ops(self) -> float:
        """Ops per step (views excluded)."""
        return sum(g.count for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        groups = [[g.kind, g.flops, g.bytes, g.side, g.count] for g in self.groups]
        return {"batch": self.batch, "resolution": self.resolution, "groups": groups}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepCost:
        """Inverse of :meth:`to_dict`."""
        groups = tuple(OpGroup(str(k), int(f), int(b), int(s), float(c)) for k, f, b, s, c in d["groups"])
        return cls(int(d["batch"]), int(d["resolution"]), groups)


def _rate_and_bytes(g: OpGroup, device: DeviceProfile, precision: str, resolution: int) -> tuple[float, float]:
    """(peak FLOP/s, byte factor) that op group ``g`` gets on ``device`` under ``precision``."""
    if g.kind == "other":
        half = precision == "mixed-fp16" and g.side * 8 >= resolution
        return device.flops("fp32"), 0.5 if half else 1.0
    if precision == "bf16":
        return device.flops("bf16"), 0.5
    if precision == "mixed-fp16" and g.side * 8 >= resolution:
        return device.flops("fp16"), 0.5
    return device.flops("tf32" if g.kind == "conv" and device.conv_tf32 else "fp32"), 1.0


def ideal_seconds(cost: StepCost, device: DeviceProfile, precision: str = "fp32") -> float:
    """The step's roofline time on ``device``: each op at its bound, no efficiency applied."""
    if precision not in PRECISION_MODES:
        raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISION_MODES)}")
    total = 0.0
    for g in cost.groups:
        rate, byte_factor = _rate_and_bytes(g, device, precision, cost.resolution)
        total += g.count * max(g.flops / rate, g.bytes * byte_factor / device.bandwidth, device.op_overhead)
    return total


def step_seconds(cost: StepCost, device: DeviceProfile, precision: str = "fp32") -> float:
    """Estimated seconds per step on ``device``: the roofline time over the device kind's efficiency."""
    return ideal_seconds(cost, device, precision) / device.efficiency
