"""The evaluation's own spread: a finished run's final snapshot re-scored with other evaluation seeds.

A metric on a few hundred generated images is a random number even for fixed weights: other latents (and,
for KID, other subsets) give another value (``shared/reference/study_statistics.md``: clean-fid; Chong &
Forsyth, CVPR 2020). A study (``[study] eval_repeats = K``) measures it once its runs are done: for
each row and dataset, the snapshot of the last evaluation of its lowest-seed finished run is scored K
more times, with the evaluation seeds :func:`noise_seeds` (never the run's own), exactly as training
scored it otherwise (protocols, detectors, weights, sampling). The rows go to the run's
``eval_noise.jsonl``, never to ``evals.jsonl``: tables, curves and the step-0 check never see them.
The study then sets the evaluation's standard deviation beside the one over training seeds
(:mod:`bench.report.study`). Resumable: seeds already scored for that snapshot are skipped.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from bench.plan.suites import Cell
from bench.report.gain import is_step0
from bench.results.io import append_jsonl
from bench.results.runs import RunPaths, cache_dirs, checked_eval_rows, checked_rows, eval_row, load_spec, read_state

NOISE_SEED_BASE = 1_000_000  # evaluation seeds of the re-scorings: 1,000,000 + 1, + 2, ... (a run's own is skipped)
_KEEP = ("step", "kimg", "budget_fraction", "train_seconds", "gpu_hours", "ref_gpu_hours", "compute", "eval_point",
         "snapshot")  # fmt: skip


def noise_seeds(repeats: int, run_seed: int) -> list[int]:
    """The ``repeats`` evaluation seeds of the re-scorings of a run whose own evaluation seed is ``run_seed``."""
    return list(itertools.islice((s for s in itertools.count(NOISE_SEED_BASE + 1) if s != run_seed), repeats))


def final_row(paths: RunPaths) -> dict[str, Any] | None:
    """The training-time evaluation row of the run's last evaluation within its budget (None: none yet)."""
    import pandas as pd

    rows = pd.DataFrame([r for r in checked_eval_rows(paths) if not r.get("rescored")])
    if rows.empty or "eval_point" not in rows.columns or "snapshot" not in rows.columns:
        return None
    points = rows["eval_point"].astype(float)
    rows = rows[(points <= 1 + 1e-9) & ~is_step0(points) & rows["snapshot"].notna()]
    return None if rows.empty else rows.sort_values("eval_point", kind="mergesort").iloc[-1].to_dict()


def measure(run_dir: Path, repeats: int, *, out: Path, device: str = "auto") -> int:
    """Score the run's final snapshot with the evaluation seeds not yet in its ``eval_noise.jsonl``;
    returns the number of evaluations made."""
    import torch

    from bench import metrics
    from bench.data.catalog import load_dataset
    from bench.training.checkpoints import model_from_snapshot, read_snapshot
    from bench.training.device import resolve_device

    paths = RunPaths(Path(run_dir))
    spec, final = load_spec(paths.root), final_row(paths)
    if final is None:
        return 0
    done = {r.get("eval_seed") for r in checked_rows(paths.eval_noise, "") if r.get("snapshot") == final["snapshot"]}
    todo = [s for s in noise_seeds(repeats, spec.seed) if s not in done]
    if not todo:
        return 0
    dev = resolve_device(device)
    path, snap = read_snapshot(paths.root, final["snapshot"])
    model = model_from_snapshot(spec, snap, path, dev)
    data_cache, metric_cache = cache_dirs(out)
    dataset = load_dataset(spec.dataset, spec.resolution, cache_dir=data_cache, resize_filter=spec.resize_filter)
    detectors = metrics.DetectorCache()
    base = {k: final[k] for k in _KEEP if k in final} | {"rescored": True}
    for seed in todo:
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            rows = metrics.evaluate(
                model, dataset, spec.protocols, detector=spec.detector, pr_detector=spec.pr_detector, device=dev,
                cache_dir=metric_cache, seed=seed, detectors=detectors,
            )  # fmt: skip
        for row in rows:
            append_jsonl(paths.eval_noise, eval_row(base | {"time": time.time()}, row))
    return len(todo)


def measured_runs(cells: list[Cell], out: Path) -> list[Path]:
    """Per (model, dataset) of ``cells``: the run folder of the finished run with the lowest seed."""
    chosen: dict[tuple[str, str], Cell] = {}
    for cell in sorted(cells, key=lambda c: c.spec.seed):
        key = (cell.spec.model, cell.spec.dataset)
        if key not in chosen and read_state(RunPaths.of(out, cell.spec))["status"] == "done":
            chosen[key] = cell
    return [RunPaths.of(out, c.spec).root for c in chosen.values()]


def measure_suite(cells: list[Cell], repeats: int, *, out: Path, device: str = "auto") -> int:
    """:func:`measure` on each of :func:`measured_runs`, with a line per run that needed evaluations;
    returns the number of evaluations made."""
    made = 0
    for run_dir in measured_runs(cells, out):
        t0 = time.perf_counter()
        n = measure(run_dir, repeats, out=out, device=device)
        if n:
            took = time.perf_counter() - t0
            print(f"evaluation spread: {run_dir.name}: final snapshot scored {n} more times ({took:.1f} s)")
        made += n
    return made
