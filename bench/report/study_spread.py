"""How much of a study's spread over seeds is the evaluation's own: one snapshot scored several times
(:mod:`bench.tools.evalnoise`) against the spread of the study's values over training seeds.

A value over seeds varies for two reasons: training (another seed, another generator) and evaluation
(other generated images score the same generator differently). With the evaluation's variance ``e²``
measured on one snapshot and the variance over seeds ``s²``, training contributes about
``s² − e²`` (0 when the evaluation alone explains the spread): ``√(s² − e²)`` is printed beside both.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import pandas as pd

from bench.report.selection import ProtocolKey


@dataclass(frozen=True)
class Spread:
    """One row of the study on one dataset: the evaluation's spread and the one over seeds."""

    model: str
    dataset: str
    run_id: str  # the run whose final snapshot was scored again
    evaluations: tuple[float, ...]  # the snapshot's values: its training-time evaluation and the re-scorings
    seed_std: float | None  # sample std of the study's values over seeds (None: fewer than two)
    seeds: int

    @property
    def eval_std(self) -> float | None:
        """Sample standard deviation of the snapshot's values (None: fewer than two)."""
        return statistics.stdev(self.evaluations) if len(self.evaluations) >= 2 else None

    @property
    def training_std(self) -> float | None:
        """``√(max(s² − e², 0))``: the part of the spread over seeds the evaluation does not explain."""
        if self.eval_std is None or self.seed_std is None:
            return None
        return max(self.seed_std**2 - self.eval_std**2, 0.0) ** 0.5


def spreads(
    key: ProtocolKey, df: pd.DataFrame, noise: pd.DataFrame, seed_stds: dict[tuple[str, str], tuple[float | None, int]]
) -> tuple[Spread, ...]:
    """Per run re-scored (``noise``: :func:`bench.results.collect.collect_eval_noise`) in the protocol ``key``:
    its snapshot's training-time value (from ``df``) and re-scored values, beside ``seed_stds`` ((model,
    dataset) -> (std over seeds, seeds)); rows not in ``seed_stds`` are left out."""
    if noise.empty or "metric" not in noise.columns:
        return ()
    again = key.rows(noise)
    trained = key.rows(df)
    out = []
    for (run_id, snapshot), rows in again.groupby(["run_id", "snapshot"], sort=True):
        model, dataset = str(rows["model"].iloc[0]), str(rows["dataset"].iloc[0])
        if (model, dataset) not in seed_stds:
            continue
        first = trained[(trained["run_id"] == run_id) & (trained["snapshot"] == snapshot)]
        if "rescored" in first.columns:
            first = first[first["rescored"] != True]  # noqa: E712 (a column of True / NaN)
        values = [float(v) for v in first["value"].head(1)] + [float(v) for v in rows["value"].dropna()]
        std, n = seed_stds[(model, dataset)]
        out.append(Spread(model, dataset, str(run_id), tuple(values), std, n))
    return tuple(out)
