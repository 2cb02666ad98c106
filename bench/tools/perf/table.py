"""The ``perf`` table as text."""

from __future__ import annotations

from typing import Any


def _fmt(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if value is None else f"{value * scale:.{digits}g}"


def _pct(summary: dict[str, Any]) -> str:
    """'median [min, max]' of a summary of shares, in percent."""
    if summary["median"] is None:
        return "-"
    return f"{100 * summary['median']:.2g} [{100 * summary['min']:.2g}, {100 * summary['max']:.2g}]"


def _peak(peak: dict[str, Any]) -> str:
    """'GFLOP/s (math)' of the measured matmul peak."""
    return f"{_fmt(peak['flops'], 1e-9)} ({peak.get('math', '?')})"


def format_table(doc: dict[str, Any]) -> str:
    """A Markdown table of the figures, one row per model, with the device in the title."""
    env, ts, s = doc["environment"], doc["torch_settings"], doc["settings"]
    on_cpu = not env["device"].startswith("cuda")
    where = f"{ts['cpu_model']} ({ts['threads']} threads)" if on_cpu else env["device_name"]
    load = f"; load average {ts['loadavg'][0]:.1f}" if ts.get("loadavg") else ""
    flags = (("compile", "compile"), ("fused Adam", "fused_adam"), ("CUDA graphs", "cuda_graphs"),
             ("channels_last", "channels_last"))  # fmt: skip
    modes = [label for label, key in flags if s.get(key)]
    head = (
        f"perf on {where}, {s['resolution']} px, {', '.join([s['precision'], *modes])}; "
        f"median of {s['steps']} steps after {s['warmup']} warm-up{load}"
    )
    cols = ["model", "batch", "loop s/step", "model s/step", "img/s", "peak mem MiB", "GFLOP/step", "GFLOP/s",
            "peak GFLOP/s (math)", "% peak", "% peak (CPU time)", "busy %", "harness % (diff, pairs)",
            "harness % (direct)", "outside model %", "Adam %",
            "eval img/s: path / detector (%; % of gen+det bound)"]  # fmt: skip
    lines = [head, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in doc["models"]:
        if "error" in r:
            lines.append(f"| {r['model']} | " + " | ".join(["-"] * (len(cols) - 2)) + f" | {r['error'][:80]} |")
            continue
        ev = r.get("eval", {})
        if "pipeline_ips" in ev:
            share, bound = 100 * ev["pipeline_over_detector"], 100 * ev["pipeline_over_serial_bound"]
            eval_txt = f"{ev['pipeline_ips']:.3g} / {ev['detector_ips']:.3g} ({share:.0f} %; {bound:.0f} % of gen+det)"
        else:
            eval_txt = ev.get("error", "-")[:60]
        cells = [
            r["model"], str(r["batch"]), _fmt(r["loop_step_s"]["median"]), _fmt(r["model_step_s"]["median"]),
            _fmt(r["images_per_s"]), _fmt(r["peak_memory"]["bytes"], 1 / 2**20, 4), _fmt(r["flops_per_step"], 1e-9),
            _fmt(r["achieved_flops"], 1e-9), _peak(r["peak_matmul"]), _fmt(r["peak_fraction"], 100, 2),
            _fmt(r.get("peak_fraction_cpu"), 100, 2), _fmt(r.get("busy", {}).get("busy"), 100, 3),
            _pct(r["overhead_share_diff_cpu"] if on_cpu else r["overhead_share_diff"]),
            _fmt(r["overhead_share_direct"], 100, 2), _fmt(r["outside_model_share"], 100, 2),
            _fmt(r.get("optimizer_share"), 100, 2), eval_txt,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    if on_cpu:
        lines.append("\n(harness % (diff) on the CPU uses process CPU time; wall-clock pairs are in the JSON)")
    notes = sorted({r["eval"]["detector_note"] for r in doc["models"] if r.get("eval", {}).get("detector_note")})
    lines += [f"\ndetector: {note}" for note in notes]  # the offline fallback timed another network
    ref = doc.get("reference_cache")
    if ref:
        lines += [
            "",
            f"reference features ({ref['images']} images): {_fmt(ref['first_s'])} s "
            f"({'cached' if ref['cached_before'] else 'computed'}), then {_fmt(ref['second_s'])} s from the cache",
        ]
    dp = doc.get("data_path")
    if dp:
        lines += [
            "",
            f"data path, s/batch (median): Sampler {_fmt(dp['sampler_s']['median'])}, naive DataLoader+PIL "
            f"({dp['naive_workers']} workers) {_fmt(dp['naive_s']['median'])}: naive / ours = "
            f"{dp['naive_over_sampler']:.1f}x",
        ]
    return "\n".join(lines)
