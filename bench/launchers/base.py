"""The launcher interface (:class:`Launcher`) and the registry of launchers by name."""

from __future__ import annotations

from typing import Protocol

from bench.plan.launching import LAUNCHERS, LaunchSettings
from bench.plan.suites import Cell
from bench.training.options import LoopOptions


class Launcher(Protocol):
    """Runs, or submits, a suite's cells; returns ``run_id`` (or worker) -> outcome."""

    name: str

    def run(self, cells: list[Cell], opts: LoopOptions, settings: LaunchSettings) -> dict[str, str]:
        """Run or submit ``cells``; local launchers return when the cells are finished."""
        ...


def get_launcher(name: str) -> Launcher:
    """The launcher registered as ``name`` (one of :data:`LAUNCHERS`)."""
    from bench.launchers.local import LocalLauncher
    from bench.launchers.submit import SlurmLauncher, SubmititLocalLauncher

    launchers: dict[str, Launcher] = {
        "local": LocalLauncher(),
        "submitit-local": SubmititLocalLauncher(),
        "slurm": SlurmLauncher(),
    }
    assert set(launchers) == set(LAUNCHERS)
    return launchers[name]
