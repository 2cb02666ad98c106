"""The ``gpu-check`` summary as Markdown: verdict, then one part per section."""

from __future__ import annotations

from typing import Any

MIB = 2**20


def _g(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if value is None else f"{value * scale:.{digits}g}"


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows
    ]


def render(doc: dict[str, Any]) -> str:
    """The whole summary."""
    sec = doc["sections"]
    lines = [f"# GPU acceptance check: {doc['device_name']}", "", _where(doc), "", f"**{doc['verdict']}**", ""]
    lines += _table(["section", "status", "seconds", "checks"], [
        [name, s["status"], _g(s.get("seconds")), "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in
                                                            s.get("checks", {}).items()) or s.get("reason", "")]
        for name, s in sec.items()])  # fmt: skip
    for name, part in (("environment", _environment), ("graphs", _graphs), ("host-data", _host_data),
                       ("suite", _suite), ("pool", _pool), ("memory", _memory)):  # fmt: skip
        if sec.get(name, {}).get("status") in ("ok", "failed") and "error" not in sec[name]:
            lines += ["", *_safe(part, sec[name], doc)]
    perf = [s for name, s in sec.items() if name.startswith("perf ") and s.get("rows")]
    if perf:
        lines += ["", *_safe(_perf, perf, doc), "", *_safe(lambda p, d: _eval(p), perf, doc)]
    errors = [(n, s) for n, s in sec.items() if "error" in s or "log" in s]
    for name, s in errors:
        lines += ["", f"### {name}: {s.get('error', s['status'])}", "", "```", s.get("log", ""), "```"]
    return "\n".join(lines) + "\n"


def _safe(part: Any, section: Any, doc: dict[str, Any]) -> list[str]:
    """A part's lines, or one line saying it could not be drawn (the JSON has the figures)."""
    try:
        return part(section, doc)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        return [f"({part.__name__}: not drawn, {type(exc).__name__}: {exc}; see the JSON)"]


def _where(doc: dict[str, Any]) -> str:
    env = doc["sections"].get("environment", {})
    soft = ", ".join(f"{k} {env[k]}" for k in ("torch", "cuda", "cudnn", "driver") if env.get(k))
    gpu = f"{env['gpu_memory_bytes'] / 2**30:.0f} GiB, {env['multiprocessors']} SMs, CC {env['compute_capability']}; " \
        if env.get("gpu_memory_bytes") else ""  # fmt: skip
    plan = doc["plan"]
    return (f"`{doc['device']}`: {gpu}{soft}; scale {plan['scale']} ({plan['resolution']} px); budget "
            f"{doc['settings']['budget_s']:.0f} s, used {doc['elapsed_s']:.0f} s; {doc['date']}")  # fmt: skip


def _environment(s: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    peaks = ", ".join(f"{k}: {_g(p['flops'], 1e-12)} TFLOP/s ({p['math']}, {p['best']})"
                      for k, p in s["peak_matmul"].items())  # fmt: skip
    return ["## Matmul peaks (measured, best of mm and 1x1 convolution)", "", peaks]


def _graphs(s: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    rows = [[name, _g(r["step_s"] * 1e3, digits=4), _g(r["busy"], 100), "yes" if r["captured"] else "no",
             "-" if r["host_syncs"] is None else r["host_syncs"]] for name, r in s["runs"].items()]  # fmt: skip
    diff = s["max_rel_diff"]
    return [
        f"## Training step: CUDA graph against eager (FastGAN, fp32, batch {s['batch']}, {s['steps']} steps)", "",
        *_table(["run", "ms/step (median after warm-up)", "busy %", "captured", "host syncs in a step"], rows), "",
        f"eager / graph step time: {_g(s['eager_over_graph'])}x. Max relative weight difference: graph vs its "
        f"eager twin {_g(diff['graph vs twin'])} (twin vs twin: {_g(s['noise_floor'])}), graph vs the default "
        f"eager step {_g(diff['graph vs eager'])} (another Adam; off CUDA also other random quadrants).",
    ]  # fmt: skip


def _host_data(s: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    p = s["placement"]
    return ["## Host-resident data (capacity cap)", "",
            f"set on {p['device']} vs capped to {p['host']}: {s['steps']} steps, max relative weight difference "
            f"{_g(s['max_rel_diff'])}"]  # fmt: skip


def _suite(s: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    rows = []
    for c in s["cells"]:
        scores = ", ".join(f"{k} {_g(v, digits=5)}" for k, v in (c.get("scores") or {}).items())
        rows.append([c["model"], c["killed_at_checkpoint"], c["resumed_from"], "yes" if c.get("equal") else "NO",
                     _g(c.get("max_abs_diff")), scores, "yes" if c.get("scores_equal") else "NO"])  # fmt: skip
    head = ["model", "killed at checkpoint", "resumed from step", "same weights", "max abs diff",
            "scores (uninterrupted)", "same scores"]  # fmt: skip
    out = ["## Suite: train, evaluate (effnet-lite0), checkpoint, kill -9, resume", "", *_table(head, rows)]
    if s.get("report", {}).get("markdown"):
        out += ["", "`report` of the uninterrupted suite:", "", s["report"]["markdown"].strip()]
    return out


def _pool(s: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    return ["## Device pool", "", f"`--devices {s['devices']}`: exit {s['exit']}, the worker trained on "
            f"{s['worker_device']}, cell {s['status_of_cell']}"]  # fmt: skip


def _memory(s: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    rows = [[r["model"], r["resolution"], r["precision"], r.get("batch", "-"),
             "out of memory" if r.get("oom") else _g(r["bytes"] / MIB, digits=5)] for r in s["rows"]]  # fmt: skip
    return [f"## Peak memory of a training step ({s['kind']})", "",
            *_table(["model", "px", "precision", "batch", "peak MiB"], rows)]  # fmt: skip


def _name(row: dict[str, Any]) -> str:
    """A perf entry's model name (its keyword arguments are in the JSON)."""
    return row["model"].split(":")[0]


def _perf(sections: list[dict[str, Any]], doc: dict[str, Any]) -> list[str]:
    rows, base = [], {}
    for r in (r for s in sections for r in s["rows"] if "error" not in r):
        base.setdefault(r["model"], r["loop_s"])
        rows.append([_name(r), r["mode"], r["batch"], _g(r["loop_s"] * 1e3, digits=4), _g(r["images_per_s"]),
                     _g(r["gflop_per_step"]), _g(r["gflop_per_s"] / 1e3), f"{_g(r['peak_fraction'], 100)} "
                     f"({r['peak_math']})", _g(r["busy"], 100), _g(r["peak_memory_bytes"] / MIB, digits=5),
                     _g(base[r["model"]] / r["loop_s"])])  # fmt: skip
    for r in (r for s in sections for r in s["rows"] if "error" in r):
        rows.append([_name(r), r["mode"], *["-"] * 8, r["error"][:80]])
    head = ["model", "mode", "batch", "ms/step", "img/s", "GFLOP/step", "TFLOP/s", "% of peak (math)", "busy %",
            "peak MiB", "speed vs first mode"]  # fmt: skip
    res = doc["plan"]["resolution"]
    return [f"## Training step per mode ({res} px; loop step, median after warm-up; each mode its own process)", "",
            *_table(head, rows)]  # fmt: skip


def _eval(sections: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in (r for s in sections for r in s["rows"] if "eval" in r):
        e = r["eval"]
        if "pipeline_ips" not in e:
            rows.append([_name(r), e.get("error", "-")[:80], *["-"] * 6])
            continue
        by_batch = " / ".join(_g(v) for v in e["detector_ips_by_batch"].values())
        share = _g(e["pipeline_over_detector"], 100)
        rows.append([_name(r), e["path"], e["images"], _g(e["pipeline_ips"]), by_batch, share,
                     _g(e["generation_ips"]), _g(e["serial_bound_ips"])])  # fmt: skip
    head = ["model", "path", "images", "path img/s", "detector alone img/s (by batch)", "% of detector",
            "generation alone img/s", "gen+det serial bound"]  # fmt: skip
    return ["## Evaluation throughput (effnet-lite0, generation + resize + detector)", "", *_table(head, rows)]
