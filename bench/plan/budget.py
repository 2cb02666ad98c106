"""The only clock: training seconds (evaluation and checkpoint time are not charged) and iterations."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Budget:
    """A training budget in local seconds and/or iterations, with a pausable clock.

    The clock runs only between :meth:`resume` and :meth:`pause`; the loop pauses it (after a
    device synchronisation) around evaluations and checkpoints, so only training is charged.
    ``used_seconds`` and ``iters`` are saved in checkpoints, so the clock survives restarts.
    """

    seconds: float | None  # local training-time limit; None = no time limit
    max_iters: int | None  # iteration cap; None = no cap
    iters_unit: str = "iters"  # how the suite stated the cap: 'iters', or 'kimg' (converted at the batch)
    used_seconds: float = 0.0  # training seconds already spent (restored on resume)
    iters: int = 0  # iterations already done
    _t0: float | None = None

    def __post_init__(self) -> None:
        if self.seconds is None and self.max_iters is None:
            raise ValueError("a budget needs a time limit, an iteration cap, or both")

    def resume(self) -> None:
        """Start (or restart) charging wall-clock time."""
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def pause(self) -> None:
        """Stop charging; fold the running interval into ``used_seconds``."""
        if self._t0 is not None:
            self.used_seconds += time.perf_counter() - self._t0
            self._t0 = None

    def elapsed(self) -> float:
        """Training seconds used so far, including the running interval."""
        running = time.perf_counter() - self._t0 if self._t0 is not None else 0.0
        return self.used_seconds + running

    def fraction(self) -> float:
        """How much of the budget is spent, in [0, 1] (the larger of time and iterations)."""
        parts = []
        if self.seconds is not None:
            parts.append(self.elapsed() / self.seconds if self.seconds > 0 else 1.0)
        if self.max_iters is not None:
            parts.append(self.iters / self.max_iters if self.max_iters > 0 else 1.0)
        return min(1.0, max(parts))

    def exhausted(self) -> bool:
        """True once either limit is reached."""
        return self.fraction() >= 1.0

    def applied(self) -> str | None:
        """Which limit ended the budget: 'time', or the cap's unit ('iters', 'kimg'); None while running."""
        if self.max_iters is not None and self.iters >= self.max_iters:
            return self.iters_unit
        if self.seconds is not None and self.elapsed() >= self.seconds:
            return "time"
        return None

    def state_dict(self) -> dict[str, float | int]:
        """What a checkpoint stores."""
        return {"used_seconds": self.elapsed(), "iters": self.iters}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        """Restore the clock from a checkpoint."""
        self.used_seconds = float(state["used_seconds"])
        self.iters = int(state["iters"])
