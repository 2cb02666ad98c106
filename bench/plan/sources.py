"""Where a cell's speed ratio came from: the codes stored in ``RunSpec.budget_source``, in words.

``flag``                         ``--speed-ratio R`` (or a number passed to ``load_suite``)
``suite``                        the suite's ``budget.speed_ratio``
``none``                         no reference device: the hours are local hours (ratio 1)
``calibration:FILE``             measured on this device by ``calibrate`` (FILE)
``profile:LOCAL:REFERENCE``      estimated from the device profiles LOCAL and REFERENCE
``""``                           a run made before sources were recorded
"""

from __future__ import annotations

from bench.plan.specs import RunSpec

LABELS = {
    "flag": "--speed-ratio", "suite": "suite", "none": "local hours", "calibration": "measured", "profile": "estimate",
}  # fmt: skip


def source_kind(code: str) -> str:
    """The code's kind: flag, suite, none, calibration, profile, or unknown."""
    kind = code.split(":", 1)[0]
    return kind if kind in LABELS else "unknown"


def source_label(code: str) -> str:
    """A short label for a table column."""
    return LABELS.get(source_kind(code), "unrecorded")


def describe_source(code: str) -> str:
    """One sentence saying where the ratio came from and how much to trust it."""
    kind, _, rest = code.partition(":")
    if kind == "profile":
        local, _, ref = rest.rpartition(":")
        return (
            f"estimate from device profiles: {local} (the device the cells run on) vs {ref} (the suite's reference), "
            "per-op roofline over an efficiency (bench/plan/devices.toml); public peak figures, not a "
            "measurement: `run_bench.py calibrate` measures this device"
        )
    if kind == "calibration":
        return f"measured calibration {rest} (this device measured; the reference from its profile unless measured too)"
    return {
        "flag": "given with --speed-ratio",
        "suite": "the suite's budget.speed_ratio",
        "none": "no reference device: the hours are hours of this device (ratio 1)",
    }.get(kind, "not recorded (a run made before conversion sources were recorded)")


def source_flags(spec: RunSpec, versus: RunSpec | None = None) -> str:
    """The command-line flags that give ``spec``'s speed ratio and budget scale again; with ``versus``,
    only those where ``spec`` differs from it."""
    kind, _, rest = spec.budget_source.partition(":")
    flags = []
    if versus is None or spec.speed_ratio != versus.speed_ratio:
        flags.append({
            "calibration": f"--calibration {rest}",
            "profile": f"--device-profile {rest.rpartition(':')[0].split(' ')[0]}",
        }.get(kind, f"--speed-ratio {spec.speed_ratio:g}"))  # fmt: skip
    if spec.budget_scale != (versus.budget_scale if versus is not None else 1.0):
        flags.append(f"--budget-scale {spec.budget_scale:g}")
    return " ".join(flags)
