"""The report's figures: metric over training, side-by-side samples and per-run sample grids with latent
interpolation strips (data and titles here; drawing in :mod:`bench.report.draw`).

Every curve plots the numbers of one table's protocol (:class:`bench.report.selection.ProtocolKey`)
against one shared quantity of training (:func:`x_axis`: the compute used under a compute budget, else
:data:`X_AXIS`), with a marker
at each measured point, step 0 included. Figures are rendered to bytes first; :func:`write_plots`'
caller writes them once everything is rendered.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from bench.errors import BenchError
from bench.report import draw, imagery
from bench.report.figure_cache import rendered
from bench.report.selection import figure_selection, mixed_runs, select_runs
from bench.report.tables import CellLike, ReportTable, SuiteLike, row_cells, row_keys, suite_rows
from bench.report.words import fmt_number, metric_name
from bench.results.runs import RunPaths

log = logging.getLogger(__name__)
PROGRESS_DELAY_S = 3.0  # a bar only when the figures take longer


@dataclass(frozen=True)
class Axis:
    """The training quantity curves are drawn against: a column of the result rows and its label."""

    column: str
    label: str


X_AXIS = Axis("kimg", "real images shown to the discriminator (thousands)")  # the same scale for every run


def x_axis(suite: SuiteLike, dataset: str) -> Axis:
    """The axis of the curves on ``dataset``: the compute used when every cell has the suite's compute
    budget (seconds of its reference device: :mod:`bench.plan.compute`), else :data:`X_AXIS`."""
    specs = [c.spec for c in suite.cells if c.spec.dataset == dataset]
    devices = sorted({s.compute["device"] for s in specs if s.compute})
    if specs and all(s.compute for s in specs) and len(devices) == 1:
        return Axis("compute", f"compute used (seconds of {devices[0]}, step-cost model)")
    return X_AXIS


def _row_name(key: tuple[str, str]) -> str:
    return f"{key[1]} ({key[0]})" if key[0] else key[1]


def _slug(name: str) -> str:
    """A dataset name as part of a file name (``folder:/data/x`` -> ``folder_data_x``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _display(table: ReportTable) -> tuple[str, float]:
    """The metric's display name (KID x10³) and the factor its values are shown with."""
    kid = table.kind == "kid"
    return metric_name(table.metric, table.kind) + (" ×10³" if kid else ""), 1e3 if kid else 1.0


def _curve(label: str, sub: pd.DataFrame, scale: float, axis: Axis) -> draw.Curve | None:
    """A row's measured points (mean over seeds at each evaluation, the spread as error bars)."""
    sub = sub[sub[axis.column].notna()] if axis.column in sub.columns else sub.iloc[:0]
    if sub.empty:
        return None
    by = sub.groupby("eval_point", dropna=False)
    mean, spread = by[[axis.column, "value"]].mean().sort_values(axis.column), by["value"].std()
    err = (spread.reindex(mean.index).fillna(0.0) * scale).tolist() if by.size().max() > 1 else None
    return draw.Curve(label, mean[axis.column].tolist(), (mean["value"] * scale).tolist(), err)


def _over_time(suite: SuiteLike, rows: pd.DataFrame, table: ReportTable, dataset: str) -> dict[str, bytes]:
    """``<metric>_over_time_<dataset>[-<protocol>]``: each row's measured points, step 0 included."""
    name, scale = _display(table)
    curves, axis = [], x_axis(suite, dataset)
    for key in row_keys(suite):
        ids = [c.spec.run_id for c in row_cells(suite, key, dataset)]
        if (curve := _curve(_row_name(key), rows[rows["run_id"].isin(ids)], scale, axis)) is not None:
            curves.append(curve)
    if not curves:
        log.warning("%s: no evaluation of %s records %s; no curve over training", dataset, table.metric, axis.column)
        return {}
    seeds = "one seed" if table.seeds <= 1 else f"mean ± std over {table.seeds} seeds"
    note = f"{table.metric} with {table.key.detector_name}; {seeds}; a marker per evaluation, step 0 at 0"
    note += "; non-standard detector: ranks these rows only" if table.nonstandard_detectors else ""
    drawn = rendered(
        draw.curves_figure, curves, title=f"{suite.name}: {name} over training on {dataset}", note=note,
        xlabel=axis.label, ylabel=f"{name} ({'lower' if table.lower_is_better else 'higher'} is better)",
    )  # fmt: skip
    stem = f"{table.metric}_over_time_{_slug(dataset)}" + ("" if table.main else f"-{table.key.slug}")
    return {stem + suffix: data for suffix, data in drawn.items()}


def _panel(cell: CellLike, row: pd.Series, table: ReportTable, runs_root: Path) -> tuple[str, Path | None]:
    """(label, grid path or None) of one run's selected evaluation."""
    grid = row.get("grid")
    path = RunPaths.of(runs_root, cell.spec).root / grid if isinstance(grid, str) else None
    value = fmt_number(float(row["value"]), table.kind, table.digits)
    where = f"step {int(row['step']):,}" if pd.notna(row.get("step")) else "its evaluation"
    label = f"seed {cell.spec.seed}: {metric_name(table.metric, table.kind)} {value} at {where}"
    return label, path if path is not None and path.is_file() else None


def _image(path: Path | None) -> object:
    return None if path is None else draw.load_image(path)


def _real_panel(suite: SuiteLike, dataset: str, runs_root: Path) -> tuple[list[tuple[str, object]], dict[str, bytes]]:
    """A grid of training images (a fixed draw, as many as a sample grid, resized as the runs were) to put
    beside the generated ones (none when the dataset cannot be loaded here)."""
    from bench.results.runs import cache_dirs, recorded_resolved

    specs = [c.spec for c in suite.cells if c.spec.dataset == dataset]
    spec = specs[0]
    recorded = {str(d.get("sha256")) for s in specs
                if isinstance(d := recorded_resolved(RunPaths.of(runs_root, s).root).get("dataset"), dict)}  # fmt: skip

    def load() -> object:
        from bench.data.catalog import load_dataset  # torch: only when the draw is not remembered

        cache = cache_dirs(runs_root)[0]
        return load_dataset(dataset, spec.resolution, cache_dir=cache, resize_filter=spec.resize_filter)

    try:
        png, size = imagery.training_images(dataset, spec.resolution, spec.grid_size, recorded, load)
    except BenchError as exc:
        log.warning("%s: no panel of training images: %s", dataset, exc)
        return [], {}
    label = f"training images\n{min(spec.grid_size, size)} of {size} at {spec.resolution} px"
    return [(label, draw.load_image(png))], {f"real_{_slug(dataset)}.png": png}


def _samples(
    suite: SuiteLike, selected: pd.DataFrame, table: ReportTable, dataset: str, runs_root: Path
) -> dict[str, bytes]:
    """``samples_<dataset>``: training images beside each row's selected grid (lowest seed)."""
    panels = []
    for key in row_keys(suite):
        cell = next((c for c in row_cells(suite, key, dataset) if c.spec.run_id in selected.index), None)
        if cell is not None:
            label, path = _panel(cell, selected.loc[cell.spec.run_id], table, runs_root)
            panels.append((f"{_row_name(key)}\n{label}", _image(path)))
    if not any(img is not None for _, img in panels):
        log.warning("%s: no sample grids for %s yet; side-by-side figure skipped", suite.name, dataset)
        return {}
    real, files = _real_panel(suite, dataset, runs_root)
    title = f"{suite.name} on {dataset}: training images and each model's {table.selection} evaluation (lowest seed)"
    drawn = rendered(draw.panels_figure, [*real, *panels], title=title)
    return files | {f"samples_{_slug(dataset)}{suffix}": data for suffix, data in drawn.items()}


def _run_figures(cell: CellLike, row: pd.Series, table: ReportTable, runs_root: Path) -> dict[str, bytes]:
    """The run's sample grid and latent interpolation strip at its selected evaluation."""
    spec, files, name = cell.spec, {}, _row_name((cell.group, cell.label))
    label, path = _panel(cell, row, table, runs_root)
    who = f"{name} on {spec.dataset}"
    if path is not None:
        drawn = rendered(draw.panels_figure, [(label, draw.load_image(path))], title=who)
        files |= {f"samples_{spec.run_id}{suffix}": data for suffix, data in drawn.items()}
    run_dir, snapshot = RunPaths.of(runs_root, spec).root, row.get("snapshot")
    if not isinstance(snapshot, str) or not (run_dir / snapshot).is_file():
        log.warning("%s: no snapshot at its %s evaluation; interpolation strip skipped", spec.run_id, table.selection)
        return files
    try:
        images = imagery.strip_images(run_dir, snapshot)
    except BenchError as exc:
        log.warning("%s: interpolation strip skipped: %s", spec.run_id, exc)
        return files
    where = f"step {int(row['step']):,}" if pd.notna(row.get("step")) else "its selected evaluation"
    title = f"{who}, seed {spec.seed}, {where}: slerp between two latents (seed 0), EMA generator"
    drawn = rendered(draw.strip_figure, images, title=title)
    return files | {f"interp_{spec.run_id}{suffix}": data for suffix, data in drawn.items()}


def render_plots(suite: SuiteLike, df: pd.DataFrame, tables: list[ReportTable], runs_root: Path) -> dict[str, bytes]:
    """File name -> bytes: each table's metric over training per dataset; for the first table (the suite's
    own detector's), samples side by side per dataset and each selected run's grid and strip."""
    rows = suite_rows(suite, df)
    first = replace(tables[0], selection=figure_selection(suite, tables[0].selection))  # a study's rule
    mine = first.key.rows(rows)
    selected = select_runs(mine, first.kind, first.selection)
    runs = [cell for cell in suite.cells if cell.spec.run_id in selected.index]
    files: dict[str, bytes] = {}
    total = len(tables) * len(first.datasets) + len(first.datasets) + len(runs)
    with tqdm(total=total, desc=f"report {suite.name}: figures", unit="fig", delay=PROGRESS_DELAY_S,
              dynamic_ncols=True) as bar:  # fmt: skip
        for table in tables:
            protocol_rows = table.key.rows(rows)
            protocol_rows = protocol_rows[~protocol_rows["run_id"].isin(mixed_runs(protocol_rows))]
            for dataset in table.datasets:
                files |= _over_time(suite, protocol_rows, table, dataset)
                bar.update(1)
        for dataset in first.datasets:
            files |= _samples(suite, selected, first, dataset, runs_root)
            bar.update(1)
        for cell in runs:
            files |= _run_figures(cell, selected.loc[cell.spec.run_id], first, runs_root)
            bar.update(1)
    return files
