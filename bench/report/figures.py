"""The report's figures: metric over training time, side-by-side samples and per-run sample grids
with latent interpolation strips (data and titles here; drawing in :mod:`bench.report.draw`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from bench.errors import BenchError
from bench.report import draw
from bench.report.render import legend
from bench.report.tables import (
    CellLike,
    ReportTable,
    SuiteLike,
    fmt_number,
    metric_name,
    nonstandard_detectors,
    row_cells,
    row_keys,
    select_runs,
    suite_rows,
)
from bench.results.io import atomic_write_bytes
from bench.results.runs import RunPaths

log = logging.getLogger(__name__)
PROGRESS_DELAY_S = 3.0  # a bar only when the figures take longer


def load_generator(run_dir: Path, snapshot: str) -> draw.Generator:
    """The run's model with the weights of ``snapshot``, on the CPU (imported lazily: heavy)."""
    from bench.training.checkpoints import load_snapshot_model

    return load_snapshot_model(run_dir, snapshot, device="cpu")


def _row_name(key: tuple[str, str]) -> str:
    return f"{key[1]} ({key[0]})" if key[0] else key[1]


def _nonstandard_note(rows: pd.DataFrame) -> str:
    bad = nonstandard_detectors(rows)
    return f"\n[{legend(bad)}]" if bad else ""


def _budget_lines(suite: SuiteLike, dataset: str, axis: str) -> list[tuple[float, str]]:
    """The dashed budget lines of ``axis`` (:func:`_time_axis`)."""
    if axis == "fraction":
        return [(1.0, "end of budget")]
    specs = [c.spec for c in suite.cells if c.spec.dataset == dataset]
    if axis == "compute":
        plans = sorted({(s.compute["budget_s"], s.budget_scale, s.compute["device"]) for s in specs})
        return [(b * k, f"budget {b:g} s of {d}" + (f" × scale {k:g}" if k != 1 else "")) for b, k, d in plans]
    budgets = sorted({(s.budget_hours, s.budget_scale) for s in specs if s.budget_hours is not None})
    return [(h * k, f"budget {h:g} ref. GPU-h" + (f" × scale {k:g}" if k != 1 else "")) for h, k in budgets]


def _time_axis(suite: SuiteLike, dataset: str) -> str:
    """The x axis of the curves on ``dataset``: 'compute' when every cell has a compute budget (the
    compute used, in seconds of its reference device: one axis for every row); 'hours' when every cell
    has a time budget and no iteration cap (reference GPU-hours); else 'fraction' of each run's budget
    reached (an iteration cap ends runs of different models at different times)."""
    cells = [c for c in suite.cells if c.spec.dataset == dataset]
    if all(c.spec.compute for c in cells):
        return "compute"
    return "hours" if all(c.spec.budget_seconds is not None and c.spec.max_iters is None for c in cells) else "fraction"


def _xlabel(suite: SuiteLike, dataset: str, axis: str) -> str:
    if axis == "compute":
        devices = sorted({c.spec.compute["device"] for c in suite.cells if c.spec.dataset == dataset})
        return f"compute used (seconds of {' / '.join(devices)}, step-cost model)"
    return "training time (reference GPU-hours)" if axis == "hours" else "fraction of the run's training budget reached"


def _positions(sub: pd.DataFrame, axis: str) -> pd.Series:
    """Each evaluation where it really happened: the compute used, reference GPU-hours, or the budget
    fraction reached (``budget_fraction``; rows written before it was recorded: their nominal ``eval_point``)."""
    if axis != "fraction":
        return sub["compute" if axis == "compute" else "ref_gpu_hours"]
    reached = sub["budget_fraction"] if "budget_fraction" in sub.columns else pd.Series(float("nan"), sub.index)
    return reached.fillna(sub["eval_point"])


def _plot_over_time(
    suite: SuiteLike, rows: pd.DataFrame, table: ReportTable, dataset: str, out_dir: Path
) -> list[Path]:
    curves, used, axis = [], [], _time_axis(suite, dataset)
    for key in row_keys(suite):
        ids = [c.spec.run_id for c in row_cells(suite, key, dataset)]
        sub = rows[rows["run_id"].isin(ids)]
        if sub.empty:
            continue
        sub = sub.assign(x=_positions(sub, axis))
        mean = sub.groupby("eval_point")[["x", "value"]].mean().sort_index()
        scale = 1e3 if table.kind == "kid" else 1.0
        curves.append(draw.Curve(_row_name(key), mean["x"].tolist(), (mean["value"] * scale).tolist()))
        used.append(sub)
    if not curves:
        return []
    name = metric_name(table.metric, table.kind) + (" ×10³" if table.kind == "kid" else "")
    title = f"{suite.name}: {name} ({table.metric}) over training on {dataset}, mean over seeds"
    fig = draw.curves_figure(
        curves,
        _budget_lines(suite, dataset, axis),
        title=title + _nonstandard_note(pd.concat(used)),
        xlabel=_xlabel(suite, dataset, axis),
        ylabel=f"{name} ({'lower' if table.lower_is_better else 'higher'} is better)",
    )
    return draw.save(fig, out_dir / f"{table.metric}_over_time_{_slug(dataset)}")


def _panel(cell: CellLike, row: pd.Series, table: ReportTable, runs_root: Path) -> tuple[str, Path | None]:
    """(title, grid path or None) of one run's selected evaluation."""
    grid = row.get("grid")
    path = RunPaths.of(runs_root, cell.spec).root / grid if isinstance(grid, str) else None
    value = fmt_number(float(row["value"]), table.kind)
    reached = row.get("budget_fraction")
    reached = reached if pd.notna(reached) else row.get("eval_point")
    where = f"step {int(row['step'])}" if pd.notna(row.get("step")) else "eval"
    where += f" ({float(reached):.0%} of budget)" if pd.notna(reached) else ""
    title = f"{_row_name((cell.group, cell.label))}\nseed {cell.spec.seed}: {table.metric} {value} at {where}"
    return title, path if path is not None and path.is_file() else None


def _slug(name: str) -> str:
    """A dataset name as part of a file name (``folder:/data/x`` -> ``folder_data_x``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _real_panel(suite: SuiteLike, dataset: str, out_dir: Path, runs_root: Path) -> list[tuple[str, Path | None]]:
    """A grid of training images (a fixed draw, as many as a sample grid) to put beside the generated ones."""
    from bench.data.catalog import load_dataset
    from bench.results.runs import cache_dirs

    spec = next(c.spec for c in suite.cells if c.spec.dataset == dataset)
    try:
        images = load_dataset(dataset, spec.resolution, cache_dir=cache_dirs(runs_root)[0]).images
    except BenchError as exc:
        log.warning("%s: no panel of training images: %s", dataset, exc)
        return []
    n = min(spec.grid_size, len(images))
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:n]
    path = out_dir / f"real_{_slug(dataset)}.png"
    atomic_write_bytes(path, draw.grid_png(images[pick]))
    return [(f"training images ({dataset})\n{n} of {len(images)} at {spec.resolution} px", path)]


def _plot_samples(
    suite: SuiteLike, selected: pd.DataFrame, table: ReportTable, dataset: str, out_dir: Path, runs_root: Path
) -> list[Path]:
    panels = []
    for key in row_keys(suite):
        cell = next((c for c in row_cells(suite, key, dataset) if c.spec.run_id in selected.index), None)
        if cell is not None:
            panels.append(_panel(cell, selected.loc[cell.spec.run_id], table, runs_root))
    if not any(path for _, path in panels):
        log.warning("%s: no sample grids for %s yet; side-by-side figure skipped", suite.name, dataset)
        return []
    panels = _real_panel(suite, dataset, out_dir, runs_root) + panels
    title = f"{suite.name}: training images and samples on {dataset}, each model's {table.selection} evaluation"
    return draw.save(draw.panels_figure(panels, title=title + " (lowest seed)"), out_dir / f"samples_{_slug(dataset)}")


def _plot_run(cell: CellLike, row: pd.Series, table: ReportTable, out_dir: Path, runs_root: Path) -> list[Path]:
    """The run's sample grid and latent interpolation strip at its selected evaluation."""
    spec, paths, name = cell.spec, [], _row_name((cell.group, cell.label))
    panel = _panel(cell, row, table, runs_root)
    if panel[1] is not None:
        title = f"{name} on {spec.dataset}, seed {spec.seed}: samples ({spec.run_id})"
        paths += draw.save(draw.panels_figure([panel], title=title), out_dir / f"samples_{spec.run_id}")
    run_dir = RunPaths.of(runs_root, spec).root
    snapshot = row.get("snapshot")
    if not isinstance(snapshot, str) or not (run_dir / snapshot).is_file():
        log.warning("%s: no snapshot at its %s evaluation; interpolation strip skipped", spec.run_id, table.selection)
        return paths
    try:
        model = load_generator(run_dir, snapshot)
    except BenchError as exc:
        log.warning("%s: interpolation strip skipped: %s", spec.run_id, exc)
        return paths
    title = (
        "Latent interpolation (slerp between two z of seed 0, EMA generator): "
        f"{name} on {spec.dataset}, seed {spec.seed}, {snapshot}"
    )
    strip = draw.strip_figure(draw.interpolation_images(model), title=title)
    return paths + draw.save(strip, out_dir / f"interp_{spec.run_id}")


def write_plots(suite: SuiteLike, df: pd.DataFrame, table: ReportTable, out_dir: Path, runs_root: Path) -> list[Path]:
    """Metric over time per dataset, side-by-side samples per dataset, and per run grid + strip."""
    rows = suite_rows(suite, df)
    rows = rows[rows["metric"] == table.metric]
    selected = select_runs(rows, table.metric, table.kind, table.selection)
    runs = [cell for cell in suite.cells if cell.spec.run_id in selected.index]
    paths = []
    with tqdm(total=2 * len(table.datasets) + len(runs), desc=f"report {suite.name}: figures", unit="fig",
              delay=PROGRESS_DELAY_S, dynamic_ncols=True) as bar:  # fmt: skip
        for dataset in table.datasets:
            paths += _plot_over_time(suite, rows, table, dataset, out_dir)
            paths += _plot_samples(suite, selected, table, dataset, out_dir, runs_root)
            bar.update(2)
        for cell in runs:
            paths += _plot_run(cell, selected.loc[cell.spec.run_id], table, out_dir, runs_root)
            bar.update(1)
    return paths
