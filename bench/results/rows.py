"""The one check of what is read back from a results folder: each evaluation row's and each run
state's types and ranges (:func:`row_problem`, :func:`state_problem`).

:func:`bench.results.collect.collect` applies it to every row before any table, status line, curve
or step-0 check sees one, and :func:`bench.results.runs.read_state` to every state.json: a run with
one bad row or a bad state shows as unreadable (named, with the fix), the others are reported.
Unknown keys are left alone (newer writers may add columns); known keys must hold what the writers
write (:func:`bench.metrics.evaluate`, :func:`bench.training.state.progress_row`).

Value ranges, by metric kind:
- FID is a squared distance: >= 0, less only by floating-point rounding (:data:`FID_ROUNDING`).
- KID is the unbiased MMD² estimate (Bińkowski et al. 2018; clean-fid's ``kernel_distance``): its
  expectation is >= 0, but the estimate itself is negative when the two sets match up to sampling
  noise. That noise is the spread of the per-subset estimates (the row's ``std``); when every subset
  holds the whole smaller set (few-shot sets) it is not in ``std`` and is bounded by the kernel's
  spread over ``m - 1`` (``m``: the subset size). A KID below ``-max(KID_SIGMAS * std, KID_FLOOR)``
  is not an estimate.
- Precision and recall are shares: [0, 1].
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Any

from bench.errors import prog_name
from bench.plan.protocol_names import current_metric

KINDS = ("fid", "kid", "pr")
# What a stored number's protocol is. A table's numbers share TABLE_FIELDS (metric, detector and its weights'
# sha256, clean-fid mode, generated images, reference, resize, generator weights, truncation, KID subsets,
# precision/recall k); one run's numbers share RUN_FIELDS too (how the generator was sampled, the reference
# set's size and preprocessing). Selections key on them (bench.report.selection), and so does the
# de-duplication of a run's rows (bench.results.runs.eval_key).
TABLE_FIELDS = ("metric", "detector", "detector_sha256", "detector_standard", "mode", "num_gen", "reference",
                "pre_resize", "weights", "truncation", "kid_subsets", "pr_k")  # fmt: skip
RUN_FIELDS = ("bn_mode", "bn_stats", "gen_batch", "ref_count", "ref_resolution", "ref_filter", "resize_chain",
              "kid_subset_size")  # fmt: skip
PROTOCOL_FIELDS = TABLE_FIELDS + RUN_FIELDS
FID_ROUNDING = 1e-6  # the most negative FID rounding gives (identical feature sets)
KID_SIGMAS = 6.0  # a KID this many per-subset standard deviations below 0 is not noise
KID_FLOOR = 0.05  # ... nor one below -0.05 (2/(m-1) of a kernel spread of ~2.5 at m = 100 images)

STATE_FIX = "restore the file, or delete it (the run resumes from its newest checkpoint)"


def row_fix() -> str:
    """The fix named for an unreadable evaluation row."""
    return f"restore the line or delete it (`{prog_name()} eval --run RUN` scores the snapshots again)"


_TEXT = ("metric", "detector", "detector_sha256", "mode", "reference", "weights", "bn_mode", "bn_stats",
         "ref_filter", "resize_chain")  # fmt: skip
_COUNTS = ("step", "num_gen", "ref_count", "ref_resolution", "gen_batch", "kid_subsets", "kid_subset_size", "pr_k",
           "pre_resize", "eval_seed")  # fmt: skip
_AMOUNTS = ("eval_point", "budget_fraction", "kimg", "ref_gpu_hours", "gpu_hours", "train_seconds", "eval_seconds",
            "time", "compute")  # fmt: skip
_FILES = ("snapshot", "grid")  # paths inside the run folder
_STATE_AMOUNTS = ("kimg", "budget_fraction", "train_seconds", "gpu_hours", "ref_gpu_hours", "updated", "compute")
_STATE_TEXT = ("error", "budget_applied", "error_job")


def real(value: Any) -> bool:
    """A finite real number (not a bool; an integer too large for a float is not finite)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _typed(row: dict[str, Any], keys: tuple[str, ...], ok: Any, what: str) -> str | None:
    """The first of ``keys`` present (and not null) whose value fails ``ok``."""
    for key in keys:
        value = row.get(key)
        if value is not None and not ok(value):
            return f"{key}: expected {what}, got {_shown(value)}"
    return None


def _in_run(value: Any) -> bool:
    path = PurePosixPath(value) if isinstance(value, str) else None
    return path is not None and bool(value) and not path.is_absolute() and ".." not in path.parts


def kind_of(row: dict[str, Any]) -> str:
    """The row's metric kind: its ``kind``, else read from the metric's name (rows written before it was stored)."""
    metric = str(row.get("metric", ""))
    if row.get("kind") is not None:
        return str(row["kind"])
    if metric.endswith(("_precision", "_recall")):
        return "pr"
    return "kid" if metric.startswith("kid") else "fid"


def _value_problem(row: dict[str, Any]) -> str | None:
    value, kind, std = row.get("value"), kind_of(row), row.get("std")
    if not real(value):
        return f"value: expected a finite number, got {_shown(value)}"
    if kind == "fid" and value < -FID_ROUNDING:
        return f"value: an FID is >= 0, got {value!r}"
    if kind == "pr" and not 0.0 <= value <= 1.0:
        return f"value: {row['metric']} is a share from 0 to 1, got {value!r}"
    if kind == "kid" and value < -(floor := max(KID_SIGMAS * (std or 0.0), KID_FLOOR)):
        return f"value: a KID this far below 0 is not estimation noise (at least -{floor:.3g}), got {value!r}"
    return None


def row_problem(row: Any) -> str | None:
    """What is wrong with one stored evaluation row (key, what was expected, what it holds), or None."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {_shown(row)}"
    if not isinstance(row.get("metric"), str) or not row["metric"]:
        return f"metric: expected a metric name, got {_shown(row.get('metric'))}"
    if row.get("kind") is not None and row["kind"] not in KINDS:
        return f"kind: expected one of {', '.join(KINDS)}, got {_shown(row['kind'])}"
    checks = (
        _typed(row, _TEXT, lambda v: isinstance(v, str), "text"),
        _typed(row, _COUNTS, _count, "a whole number >= 0"),
        _typed(row, _AMOUNTS, lambda v: real(v) and v >= 0, "a finite number >= 0"),
        _typed(row, ("truncation",), real, "a finite number"),
        _typed(row, ("std",), lambda v: real(v) and v >= 0, "a finite number >= 0 or null"),
        _typed(row, ("detector_standard", "rescored"), lambda v: isinstance(v, bool), "true or false"),
        _typed(row, _FILES, _in_run, "a path inside the run folder"),
        _value_problem(row),
    )
    return next((c for c in checks if c is not None), None)


def current_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its metric under the protocol's current name (rows stored under a former name, e.g.
    ``fid5k_full``, are read, selected and compared as the same protocol as new ones; silently: nothing typed)."""
    metric = row.get("metric")
    return row | {"metric": current_metric(metric, note=False)} if isinstance(metric, str) else row


def state_problem(state: dict[str, Any]) -> str | None:
    """What is wrong with a run state's progress fields (``status`` is checked by its reader), or None."""
    checks = (
        _typed(state, ("step",), _count, "a whole number >= 0"),
        _typed(state, _STATE_AMOUNTS, lambda v: real(v) and v >= 0, "a finite number >= 0"),
        _typed(state, _STATE_TEXT, lambda v: isinstance(v, str), "text"),
        _typed(state, ("device",), lambda v: isinstance(v, dict), "an object"),
        _typed(state, ("interrupted", "imported"), lambda v: isinstance(v, bool), "true or false"),
    )
    return next((c for c in checks if c is not None), None)
