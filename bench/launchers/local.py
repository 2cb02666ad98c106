"""The ``local`` launcher: cells one after another in this process."""

from __future__ import annotations

from bench.errors import BenchError
from bench.plan.launching import LaunchSettings
from bench.plan.suites import Cell
from bench.results.io import DISK_FULL, DiskFullError, disk_full_error
from bench.results.runs import cell_state
from bench.training.cell import run_cell
from bench.training.options import LoopOptions


class LocalLauncher:
    """``local``: the cells one after another in this process."""

    name = "local"

    def run(self, cells: list[Cell], opts: LoopOptions, settings: LaunchSettings) -> dict[str, str]:
        """Run the cells here; returns ``run_id -> status``."""
        return run_local(cells, opts)


def run_local(cells: list[Cell], opts: LoopOptions) -> dict[str, str]:
    """Run cells one after another in this process; a failing cell does not stop the others.

    A full disk stops the sweep at once. Cells that failed on bad input (a :class:`BenchError`
    or :class:`models.ModelConfigError`, e.g. a checkpoint of another model) raise one
    BenchError after the other cells ran.
    """
    from models import ModelConfigError

    outcome = {}
    user_errors: list[str] = []
    for c in cells:
        before = cell_state(opts.out, c)["status"]
        if before in ("done", "diverged", "running"):
            outcome[c.spec.run_id] = before
            continue
        try:
            outcome[c.spec.run_id] = run_cell(c.spec, opts)
        except DiskFullError:
            raise
        except Exception as exc:  # recorded in the run's state by run_cell
            if isinstance(exc, OSError) and exc.errno in DISK_FULL:
                raise disk_full_error(exc.filename) from exc
            print(f"cell {c.spec.run_id} failed: {type(exc).__name__}: {exc}")
            outcome[c.spec.run_id] = "failed"
            if isinstance(exc, BenchError | ModelConfigError):
                user_errors.append(f"cell {c.spec.run_id}: {exc}")
    if user_errors:
        more = f" (and {len(user_errors) - 1} more failed cells)" if len(user_errors) > 1 else ""
        raise BenchError(user_errors[0] + more)
    return outcome
