"""What a person sees while a cell trains: a bar in percent of the budget with the step, iterations
per second, the mean losses and the training time left, and one line per finished evaluation
(each metric's value and the seconds it took). Without the bar (``--no-progress``) the evaluation
lines and a closing line per cell are still printed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from bench.plan.specs import RunSpec

BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar:20}| {info}"
REFRESH_S = 0.5  # at most two bar redraws a second


def cell_name(spec: RunSpec) -> str:
    """Short name of a cell on the terminal: model, dataset, resolution, seed."""
    return f"{spec.model} {spec.dataset} {spec.resolution}px s{spec.seed}"


def metric_text(row: dict[str, Any]) -> str:
    """``fid500_full_clean 85.21`` or ``kid500_full_clean 0.0312 ± 0.0021`` (non-standard detectors marked †)."""
    std = f" ± {row['std']:.3g}" if row.get("std") is not None else ""
    mark = "" if row.get("detector_standard", True) else "†"
    return f"{row['metric']}{mark} {row['value']:.4g}{std}"


class _Bar(tqdm):
    """A tqdm bar with one free-text field, ``info``, after the bar."""

    info = ""

    @property
    def format_dict(self) -> dict[str, Any]:
        return super().format_dict | {"info": self.info}


class CellProgress:
    """The progress display of one training run: a tqdm bar (``bar=True``) plus printed lines."""

    def __init__(self, spec: RunSpec, *, bar: bool, fraction: float, step: int, elapsed: float) -> None:
        self.name = cell_name(spec)
        self.budget_iters = spec.max_iters
        self.bar = _Bar(total=100, desc=self.name, bar_format=BAR_FORMAT, dynamic_ncols=True) if bar else None
        self.losses: dict[str, float] = {}
        self._start = (step, elapsed)  # it/s averages over this process's training time (smooth, eval excluded)
        self._rate: float | None = None
        self._drawn = 0.0
        self.eval_seconds = 0.0
        self.move(fraction, step, elapsed, force=True)

    def move(self, fraction: float, step: int, elapsed: float, left: float | None = None, force: bool = False) -> None:
        """Move the bar to ``fraction`` of the budget at ``step`` (``elapsed``: training seconds so far)."""
        if self.bar is None or not (force or time.perf_counter() - self._drawn >= REFRESH_S):
            return
        first_step, first_elapsed = self._start
        if step > first_step and elapsed > first_elapsed:
            self._rate = (step - first_step) / (elapsed - first_elapsed)
        self.bar.n = round(100 * fraction, 1)
        self.bar.info = self._info(step, left)
        self.bar.refresh()
        self._drawn = time.perf_counter()

    def _info(self, step: int, left: float | None) -> str:
        parts = [f"step {step}" + (f"/{self.budget_iters}" if self.budget_iters else "")]
        if self._rate is not None:
            parts.append(f"{self._rate:.3g} it/s")
        parts += [f"{k} {v:.3g}" for k, v in self.losses.items()]
        if left is not None:
            parts.append(f"{max(0.0, left):.0f} s left")
        return ", ".join(parts)

    def evaluation(self, step: int, fraction: float, rows: Sequence[dict[str, Any]], seconds: float) -> None:
        """One line for a finished evaluation: where in the budget, each metric's value, the seconds."""
        self.eval_seconds += seconds
        values = ", ".join(metric_text(r) for r in rows) or "sample grid only"
        self.write(f"{self.name}: evaluation at step {step} ({fraction:.0%} of budget): {values} ({seconds:.1f} s)")

    def write(self, line: str) -> None:
        """A line above the bar (or plainly, without one)."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def close(self, outcome: str, step: int, elapsed: float) -> None:
        """End the bar (at 100 % when the budget was used up) and print the cell's closing line."""
        if self.bar is not None:
            if outcome == "done":
                self.bar.n = 100
            self.bar.info = self._info(step, None)
            self.bar.close()
        evals = f" + {self.eval_seconds:.0f} s evaluation" if self.eval_seconds else ""
        self.write(f"{self.name}: {outcome} at step {step} after {elapsed:.0f} s training{evals}")
