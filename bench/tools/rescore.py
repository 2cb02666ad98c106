"""Re-score saved snapshots offline (like stylegan2-ada's calc_metrics): evaluation as its own job."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm import tqdm

from bench.errors import BenchError
from bench.results.io import check_writable_dir, read_jsonl
from bench.results.runs import RunPaths, append_eval_row, cache_dirs, checked_eval_rows, eval_row, load_spec
from bench.training.checkpoints import check_snapshots, model_from_snapshot, read_snapshot
from bench.training.device import resolve_device

PROGRESS_DELAY_S = 3.0  # a bar only for evaluations that take longer


def _snapshots(paths: RunPaths, which: str | None) -> list[Path]:
    snaps = sorted(paths.snapshots.glob("snap-*.pt"))
    if not snaps:
        raise BenchError(f"--run {paths.root}: no snapshots to score; train the run first")
    if which in (None, "all"):
        return snaps
    if which == "latest":
        return snaps[-1:]
    match = [s for s in snaps if s.name == which or s.name == Path(which).name or which == str(s)]
    if not match:
        names = ", ".join(s.name for s in snaps)
        raise BenchError(f"--checkpoint {which}: not a snapshot of {paths.root}; choose from {names}, all, latest")
    return match


def rescore(
    run_dir: Path,
    *,
    out: Path,
    snapshot: str | None = None,
    protocols: list[str] | None = None,
    detector: str | None = None,
    pr_detector: str | None = None,
    device: str = "auto",
) -> list[dict]:
    """Evaluate ``snapshot`` (a file name, 'latest' or 'all') of a run and append the rows.

    Protocols and detectors default to the run's own; rows carry ``rescored=True`` and the
    snapshot's step, kimg and budget position copied from the training-time evaluation.
    """
    from bench import metrics
    from bench.data.catalog import load_dataset

    paths = RunPaths(Path(run_dir))
    if not paths.spec.exists():
        raise BenchError(f"--run {run_dir}: not a run folder (no spec.json); see results/runs/<suite>/")
    spec = load_spec(paths.root)
    protocols = [metrics.check_protocol(p) for p in protocols or spec.protocols]  # former names: current ones
    detector = detector or spec.detector
    pr_detector = pr_detector or spec.pr_detector
    metrics.check_detector(detector)
    metrics.check_detector(pr_detector)
    check_writable_dir(paths.root, "--run")
    by_snap = {r.get("snapshot"): r for r in checked_eval_rows(paths)}  # a hand-edited row: refused, not copied
    dev = resolve_device(device)
    snaps = [read_snapshot(paths.root, str(p.relative_to(paths.root))) for p in _snapshots(paths, snapshot)]
    data_cache, metric_cache = cache_dirs(out)
    dataset = load_dataset(spec.dataset, spec.resolution, cache_dir=data_cache, resize_filter=spec.resize_filter)
    points = {e.get("step"): e.get("point") for e in read_jsonl(paths.events) if e.get("event") == "evaluated"}
    check_snapshots(spec, snaps)  # every one, before the first row is written
    written = []
    with tqdm(desc=f"eval {spec.run_id}", unit="img", delay=PROGRESS_DELAY_S, dynamic_ncols=True) as bar:
        for path, snap in snaps:
            model = model_from_snapshot(spec, snap, path, dev)
            bar.total = len(snaps) * metrics.generated_count(protocols, model.sampling)
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                rows = metrics.evaluate(
                    model, dataset, protocols, detector=detector, pr_detector=pr_detector, device=dev,
                    cache_dir=metric_cache, seed=spec.seed, progress=bar.update,
                )  # fmt: skip
            written += _append(
                paths, path, snap["step"], by_snap.get(str(path.relative_to(paths.root)), {}), points, rows
            )
    return written


def _append(
    paths: RunPaths, snap: Path, step: int, trained: dict, points: dict[int, float], rows: list[dict]
) -> list[dict]:
    """Store a snapshot's new rows with its position in training copied from its training-time evaluation
    row (``trained``), else (a run trained without metrics) its eval point from the run's events."""
    keep = ("step", "kimg", "budget_fraction", "train_seconds", "gpu_hours", "ref_gpu_hours", "compute", "eval_point",
            "grid")  # fmt: skip
    base = {k: v for k, v in trained.items() if k in keep}
    base |= {"snapshot": str(snap.relative_to(paths.root)), "rescored": True, "time": time.time()}
    base.setdefault("step", step)
    base.setdefault("eval_point", points.get(base["step"]))
    stored = [eval_row(base, row) for row in rows]
    for row in stored:
        append_eval_row(paths, row)
    return stored
