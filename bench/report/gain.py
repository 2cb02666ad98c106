"""The step-0 check: a metric that measures something scores a trained generator clearly better
than the same run's untrained one (its evaluation at ``eval_point`` 0.0, before the first step).

"Clearly better" (:func:`clearly_better`): the selected value closes at least :data:`MIN_GAIN`
(10 %) of the gap between the step-0 value and the perfect score (0 for FID and KID, 1 for
precision and recall). For FID this is ``best <= 0.9 * step0``. A model that fails it in any seed
is flagged in ``report`` and ``status``: either it did not learn, or the metric cannot tell (a
detector whose features do not measure image content).
"""

from __future__ import annotations

import pandas as pd

MIN_GAIN = 0.10  # share of the step-0 value's distance to the perfect score a trained model must close
PERFECT = {"fid": 0.0, "kid": 0.0, "pr": 1.0}  # the best possible value per metric kind
MARK = "‡"
LEGEND = (
    f"{MARK} not clearly better than its untrained generator (step 0): in at least one seed the best value "
    f"closes less than {MIN_GAIN:.0%} of the step-0 value's distance to the perfect score "
    "(for FID: above 0.9 × the step-0 FID)"
)


def clearly_better(value: float, step0: float, kind: str) -> bool:
    """``value`` closes at least :data:`MIN_GAIN` of the gap between ``step0`` and the perfect score."""
    direction = 1.0 if kind == "pr" else -1.0  # precision/recall: higher is better
    gap = direction * (PERFECT[kind] - step0)
    return gap > 0 and direction * (value - step0) >= MIN_GAIN * gap


def is_step0(points: pd.Series) -> pd.Series:
    """Rows evaluated before the first training step (``eval_point`` 0; a missing point is not)."""
    return points.fillna(-1.0).abs() < 1e-12


def step0_of(selected: pd.DataFrame, rows: pd.DataFrame) -> dict[str, float]:
    """run_id (the index of ``selected``) -> its step-0 value among ``rows``, the rows of the selected rows'
    protocol (:class:`bench.report.selection.ProtocolKey`); runs without one (evaluated before this check
    existed, imported) are left out."""
    if "eval_point" not in rows.columns:
        return {}
    mine = rows[is_step0(rows["eval_point"]) & rows["value"].notna()]
    start = {str(r): float(v) for r, v in zip(mine["run_id"], mine["value"], strict=True)}
    return {run: start[run] for run in selected.index.astype(str) if run in start}


def flat_runs(selected: pd.DataFrame, starts: dict[str, float], kind: str) -> set[str]:
    """Run ids whose selected value is not clearly better than their step-0 value (``starts``)."""
    values = dict(zip(selected.index.astype(str), selected["value"], strict=True))
    return {run for run, start in starts.items() if not clearly_better(float(values[run]), start, kind)}
