"""How a table's numbers and protocol are written: the digits its sample size supports, number formats,
the protocol, the sampling and the budget in words (used by tables, renderers, the terminal summary and
figures)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import pandas as pd

from bench.plan.compute import budget_multiple
from bench.plan.specs import RunSpec

# FID's spread over generated samples shrinks as 1/sqrt(n); it is taken as FID_NOISE / sqrt(n) of the value
FID_NOISE = 1.0  # assumed: 7 % of the value at 200 images, 1.4 % at 5,000, 0.45 % at 50,000
DIGITS_RULE = {
    "fid": "down to the first digit of the evaluation noise at the table's best value, taken as 1/sqrt(n) of it",
    "kid": "down to the first digit of the spread over KID's subsets",
    "pr": "down to the first digit of a share's binomial noise, 0.5/sqrt(n)",
}

SIGN_RULE = "a difference (Δ) at the same digits, signed; one that rounds to zero is printed 0, without a sign"


class _Cell(Protocol):
    spec: RunSpec


def metric_name(metric: str, kind: str) -> str:
    """Display name: FID, KID, precision or recall."""
    if kind == "pr":
        return "recall" if metric.endswith("_recall") else "precision"
    return kind.upper()


def digits_for(kind: str, num_gen: int | None, *, spread: float | None = None, best: float | None = None) -> int:
    """Decimals the evaluation supports (:data:`DIGITS_RULE`): precision/recall by the binomial noise of
    ``num_gen`` images, KID (printed x10³) by the largest spread over its subsets (``spread``), FID (and a
    KID without a spread) by the noise :data:`FID_NOISE` / sqrt(n) at the table's ``best`` value."""
    n = max(int(num_gen or 0), 1)
    scale = 1e3 if kind == "kid" else 1.0
    if kind == "pr":
        noise = 0.5 / math.sqrt(n)
    elif kind == "kid" and spread is not None and spread > 0:
        noise = spread * scale
    elif best is not None and abs(best) > 0:
        noise = abs(best) * scale * FID_NOISE / math.sqrt(n)
    else:
        return 2  # no value to size the noise by
    return min(max(-math.floor(math.log10(noise)), 0), 4)


def fmt_number(value: float, kind: str, digits: int) -> str:
    """``value`` with ``digits`` decimals (KID x10³)."""
    scaled = value * (1e3 if kind == "kid" else 1.0)
    return f"{round(scaled, digits) + 0.0:.{digits}f}"


def fmt_signed(value: float, kind: str, digits: int) -> str:
    """A difference as :func:`fmt_number`, signed ('+3', '-46'); one that rounds to zero at ``digits`` is
    '0' without a sign (:data:`SIGN_RULE`)."""
    text = fmt_number(value, kind, digits)
    return text if text.startswith("-") or float(text) == 0 else "+" + text


def protocol_text(rows: pd.DataFrame, metric: str) -> str:
    """Metric name plus detector (with its weights' sha256), mode, generated images, reference (and its
    resize filter), weights and how each model was sampled (all values seen)."""
    parts = [metric]
    for column, template in (
        ("detector", "detector {}"), ("detector_sha256", "sha256 {:.12}"), ("mode", "mode {}"),
        ("num_gen", "{} generated images"),
        ("reference", "reference {}"), ("ref_filter", "reference resized with {}"), ("weights", "{} weights"),
    ):  # fmt: skip
        values = sorted({_plain(v) for v in rows[column].dropna()}) if column in rows.columns else []
        if values:
            parts.append(template.format(" / ".join(values)))
    return ", ".join(parts + ([sampling_text(rows)] if "bn_mode" in rows.columns else []))


def sampling_text(rows: pd.DataFrame) -> str:
    """How the rows' generators were sampled, per model, e.g. 'sampling: BatchNorm batch (statistics:
    batch), generation batch 16 (fastgan); no BatchNorm, generation batch 32 (stylegan2-lite)'."""
    rows = rows.dropna(subset=["bn_mode"])
    models = rows["model"] if "model" in rows.columns else pd.Series("?", index=rows.index)
    stats = rows["bn_stats"] if "bn_stats" in rows.columns else rows["bn_mode"]
    batches = rows["gen_batch"] if "gen_batch" in rows.columns else pd.Series("?", index=rows.index)
    groups: dict[tuple[str, str, str], list[str]] = {}
    for model, bn, stat, batch in zip(models, rows["bn_mode"], stats, batches, strict=True):
        groups.setdefault((str(bn), str(stat), _plain(batch)), []).append(str(model))
    parts = []
    for (bn, stat, batch), sampled in sorted(groups.items()):
        how = "no BatchNorm" if bn == "none" else f"BatchNorm {bn} (statistics: {stat})"
        parts.append(f"{how}, generation batch {batch} ({', '.join(sorted(set(sampled)))})")
    return "sampling: " + "; ".join(parts)


def _plain(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def budget_words(cells: Sequence[_Cell], reference_gpu: str | None = None) -> str:
    """The cells' training budgets in a few words: 'budget 5 reference GPU-hours (2080ti) per run',
    'unequal budgets per row: 1,000 / 300 / 150 iterations', or a compute budget (:func:`compute_words`)."""
    if cells and all(c.spec.compute for c in cells):
        return compute_words([c.spec for c in cells])
    ref = f" ({reference_gpu})" if reference_gpu else ""
    limits: list[tuple[str, str]] = []
    for spec in (c.spec for c in cells):
        parts = []
        if spec.budget_hours is not None and spec.budget_pin is None:
            parts.append((f"{spec.budget_hours * spec.budget_scale:g}", f"reference GPU-hours{ref}"))
        if spec.max_iters is not None and spec.budget_pin != "kimg":
            parts.append((f"{math.ceil(spec.max_iters * spec.budget_scale):,}", "iterations"))
        if spec.max_kimg is not None and spec.budget_pin != "iters":
            parts.append((f"{spec.max_kimg * spec.budget_scale:g}", "kimg"))
        if not parts:
            parts.append(("no", "limit"))
        limit = parts[0] if len(parts) == 1 else (" or ".join(" ".join(p) for p in parts) + ", first reached", "")
        limits.append(limit)
    limits = list(dict.fromkeys(limits))
    if len(limits) == 1:
        return f"budget {' '.join(limits[0]).strip()} per run"
    units = {unit for _, unit in limits}
    text = (
        " / ".join(n for n, _ in limits) + f" {units.pop()}"
        if len(units) == 1
        else "; ".join(" ".join(limit).strip() for limit in limits)
    )
    return f"unequal budgets per row: {text}"


def compute_words(specs: Sequence[RunSpec]) -> str:
    """'compute budget 20 s of rtx-2080-ti per run (step-cost model; 4× that for the rows set apart)'."""
    budgets = sorted({f"{s.compute['budget_s'] * s.budget_scale:g} s of {s.compute['device']}" for s in specs})
    multiples = sorted({budget_multiple(s) for s in specs} - {1.0})
    apart = f"; {', '.join(f'{k:g}×' for k in multiples)} that for the rows set apart" if multiples else ""
    return f"compute budget {' / '.join(budgets)} per run (step-cost model{apart})"
