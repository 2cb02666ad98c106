"""Runs made without a suite file, seen as suites: the implicit suite ``train`` (every run of the
``train`` command lives in ``<out>/runs/train/``) and any one run folder (``status --run DIR``).

Their cells are read back from the runs' own ``spec.json`` (a run folder whose spec cannot be read
is skipped with a warning), so ``status``, ``report`` and ``cancel`` show them as they were made.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from bench.errors import BenchError, prog_name
from bench.plan.suites import Cell, Suite
from bench.results.runs import RunPaths, UnreadableRunError, iter_run_dirs, load_spec

TRAIN_SUITE = "train"  # the folder under runs/ of the runs the ``train`` command makes


def implicit_suite(out: Path, name: str, cells: list[Cell], description: str = "") -> Suite:
    """A suite of ``cells`` without a file: its path is its folder of runs, ``<out>/runs/<name>``."""
    datasets = list(dict.fromkeys(c.spec.dataset for c in cells))
    return Suite(name, Path(out) / "runs" / name, description, None, datasets, cells)


def stored_suite(out: Path, name: str = TRAIN_SUITE) -> Suite:
    """Every readable run under ``<out>/runs/<name>/`` as one suite (each run a cell labelled by its model)."""
    cells = []
    for run_dir in iter_run_dirs(out, name):
        try:
            spec = load_spec(run_dir)
        except UnreadableRunError as exc:
            warnings.warn(f"run skipped: {exc}", stacklevel=2)
            continue
        cells.append(Cell(spec, spec.model, ""))
    if not cells:
        raise BenchError(
            f"--suite {name}: no runs in {Path(out) / 'runs' / name}; make one with `{prog_name()} train --data "
            "folder:PATH --model NAME --resolution PX --kimg N` (or pass the --out it used)"
        )
    return implicit_suite(out, name, cells, f"runs of `run_bench.py {name}`")


def run_folder_suite(run_dir: Path) -> tuple[Path, Suite]:
    """(its results folder, a suite of one cell) for the run folder ``<out>/runs/<suite>/<run_id>``."""
    paths = RunPaths(Path(run_dir))
    if not paths.spec.is_file():
        raise BenchError(f"--run {run_dir}: not a run folder (no spec.json); pass results/runs/<suite>/<run_id>")
    spec = load_spec(paths.root)
    root = paths.root.resolve()
    if (root.name, root.parent.name, root.parent.parent.name) != (spec.run_id, spec.suite, "runs"):
        raise BenchError(
            f"--run {run_dir}: its spec.json is run {spec.suite}/{spec.run_id}, not this folder's; "
            "restore the folder's name (results/runs/<suite>/<run_id>)"
        )
    out = root.parents[2]
    return out, implicit_suite(out, spec.suite, [Cell(spec, spec.model, "")])
