"""Device profiles shipped as package data (``devices.toml``): public peak figures, each an estimate.

A profile names a device kind (``rtx-2080-ti``, ``a100``, ``cpu-epyc-zen4``, ...) with its peak dense
FLOP/s per number format, memory bandwidth and size, the source of those figures, and the conversion
model's per-kind assumptions (host overhead per op, achieved efficiency; :mod:`bench.plan.roofline`).
Suites name their reference device by a profile name or alias (``reference_gpu = "RTX 2080-Ti"``);
the local device is matched by SKU, its name and total memory (:func:`match_profile`), or named
with ``--device-profile``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError

DEVICES_FILE = Path(__file__).with_name("devices.toml")
FORMATS = ("fp32", "tf32", "fp16", "bf16")
MEMORY_FIT = (0.88, 1.05)  # a GPU's total memory in GiB over its nominal GB: what drivers report of a card


@dataclass(frozen=True)
class DeviceProfile:
    """One device kind's public figures (FLOP/s, bytes/s, bytes) and the model's assumptions for it."""

    name: str  # key in devices.toml
    title: str
    kind: str  # 'cuda' or 'cpu'
    peaks: dict[str, float]  # FLOP/s by number format; missing formats fall back to fp32
    bandwidth: float  # bytes/s
    memory: float | None  # bytes
    source: str
    op_overhead: float  # seconds: the least time one op takes (host dispatch)
    efficiency: float  # achieved fraction of the roofline time
    efficiency_source: str
    match: str = ""
    aliases: tuple[str, ...] = ()
    match_memory: tuple[float, ...] = ()  # nominal sizes (GB) a matched GPU's total memory must fit; () = any
    per_core: bool = False  # CPU profiles: figures per core (see :meth:`for_cores`)
    cores: int = 1

    def flops(self, fmt: str) -> float:
        """Peak FLOP/s in number format ``fmt`` (fp32 when the device has no unit for it)."""
        return self.peaks.get(fmt, self.peaks["fp32"])

    @property
    def conv_tf32(self) -> bool:
        """fp32 convolutions run as TF32 (PyTorch's cuDNN default where TF32 units exist)."""
        return self.kind == "cuda" and "tf32" in self.peaks

    def for_cores(self, cores: int) -> DeviceProfile:
        """A per-core CPU profile scaled to ``cores`` cores (other profiles unchanged)."""
        if not self.per_core:
            return self
        peaks = {k: v * cores for k, v in self.peaks.items()}
        return dataclasses.replace(self, peaks=peaks, bandwidth=self.bandwidth * cores, cores=cores)

    @property
    def label(self) -> str:
        """The profile name, with the core count of a scaled CPU profile."""
        return f"{self.name} x{self.cores}" if self.per_core else self.name

    def summary(self) -> dict[str, Any]:
        """What a calibration file or spec records about the profile used."""
        return {
            "profile": self.name, "title": self.title, "cores": self.cores if self.per_core else None,
            "peak_tflops": {k: v / 1e12 for k, v in self.peaks.items()}, "bandwidth_gbs": self.bandwidth / 1e9,
            "source": self.source, "estimate": True, "efficiency": self.efficiency,
            "efficiency_source": self.efficiency_source, "op_overhead_s": self.op_overhead,
        }  # fmt: skip


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.cache
def load_profiles(path: Path = DEVICES_FILE) -> dict[str, DeviceProfile]:
    """Every profile of ``devices.toml``, by name."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    model = data["model"]
    out = {}
    for name, d in data["devices"].items():
        kind = d["kind"]
        memory = d.get("memory")
        out[name] = DeviceProfile(
            name=name, title=d["title"], kind=kind,
            peaks={f: float(d[f]) * 1e12 for f in FORMATS if f in d}, bandwidth=float(d["bandwidth"]) * 1e9,
            memory=None if memory is None else float(memory) * 1e9, source=d["source"],
            op_overhead=float(model["op_overhead_us"][kind]) * 1e-6, efficiency=float(model["efficiency"][kind]),
            efficiency_source=model["efficiency_source"][kind], match=d.get("match", ""),
            aliases=tuple(d.get("aliases", ())), per_core=bool(d.get("per_core", False)),
            match_memory=tuple(float(m) for m in d.get("match_memory", [memory] if memory else [])),
        )  # fmt: skip
    return out


def get_profile(name: str) -> DeviceProfile:
    """The profile called ``name`` or one of its aliases (case, spaces and dashes ignored)."""
    want = _norm(name)
    for p in load_profiles().values():
        if want in {_norm(p.name), _norm(p.title), *map(_norm, p.aliases)}:
            return p
    raise BenchError(f"unknown device profile {name!r}; choose one of {', '.join(load_profiles())} ({DEVICES_FILE})")


def fits_memory(profile: DeviceProfile, memory_bytes: int | None) -> bool:
    """The device's total memory (None: unknown) is one of the profile's nominal sizes, as drivers report it."""
    if not profile.match_memory or memory_bytes is None:
        return True
    gib = memory_bytes / 2**30
    return any(MEMORY_FIT[0] * size <= gib <= MEMORY_FIT[1] * size for size in profile.match_memory)


def match_profile(description: str, kind: str, memory_bytes: int | None = None) -> DeviceProfile | None:
    """The one profile of ``kind`` whose ``match`` pattern is found in the device's ``description``
    (a GPU's name) and whose nominal memory its ``memory_bytes`` fit; None when none or several do
    (e.g. an A100 whose memory is unknown: 40 or 80 GB)."""
    found = [
        p for p in load_profiles().values()
        if p.kind == kind and p.match and re.search(p.match, description) and fits_memory(p, memory_bytes)
    ]  # fmt: skip
    return found[0] if len(found) == 1 else None
