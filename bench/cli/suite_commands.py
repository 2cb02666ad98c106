"""Subcommands that act on a suite: ``run`` (the default), ``status``, ``cancel``, ``calibrate``, ``report``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.cli.args import add_dataclass_flags, csv_list, flag_values, positive
from bench.cli.registry import command
from bench.errors import BenchError
from bench.plan.launching import LaunchSettings


def add_suite_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    """The flags naming a suite, a subset of its cells, the results folder and its budget conversion."""
    p.add_argument("--suite", required=required, help="suite name (experiments/NAME.toml) or a .toml path")
    p.add_argument("--models", help="comma-separated subset of the suite's models")
    p.add_argument("--datasets", help="comma-separated subset of the suite's datasets")
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    p.add_argument("--budget-scale", type=positive, default=1.0, help="multiply every budget by F")
    p.add_argument("--speed-ratio", type=positive, help="this device's speed / the reference GPU's")
    p.add_argument("--calibration", type=Path, help="per-model speed ratios from `calibrate --reference`")
    p.add_argument(
        "--init-from",
        help="harness checkpoint for finetune rows: stylegan2-diffaug-finetune starts from a stylegan2-diffaug-ffhq "
        "run, stylegan2-half-finetune from a stylegan2-half run (published TF pickles cannot be read)",
    )


def suite_and_cells(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The loaded suite and its cells selected by ``--models`` / ``--datasets``."""
    from bench.plan.suites import filter_cells, load_suite

    ratio = args.speed_ratio
    if args.calibration is not None:
        if ratio is not None:
            raise BenchError("--speed-ratio and --calibration both given; pass one of them")
        from bench.tools.calibrate import speed_ratios

        ratio = speed_ratios(args.calibration)
    suite = load_suite(args.suite, budget_scale=args.budget_scale, speed_ratio=ratio, init_from=args.init_from)
    return suite, filter_cells(suite, csv_list(args.models), csv_list(args.datasets))


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The suite subcommands' parsers."""
    p = sub.add_parser("run", help="train and evaluate a suite's cells (default command)")
    add_suite_args(p)
    p.add_argument("--dry-run", action="store_true", help="print the expanded plan and exit")
    p.add_argument(
        "--device", default="auto",
        help="auto (cuda if available; a suite with budget.accelerator = 'gpu' refuses to train without it), "
        "cpu (trains such a suite anyway), cuda, cuda:N",
    )  # fmt: skip
    p.add_argument("--devices", help="run cells in parallel, one worker per device, e.g. 0,1,2,3 (CUDA indices; cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--checkpoint-every", type=positive, default=900.0, help="training seconds between checkpoints")
    p.add_argument(
        "--deterministic", action="store_true", help="deterministic GPU kernels: bitwise-repeatable runs, slower"
    )
    group = p.add_argument_group("launcher", "where cells run; these flags override the suite's [slurm] block")
    add_dataclass_flags(group, LaunchSettings, keep_defaults=False)
    p = sub.add_parser("status", help="table of a suite's cells with state, progress and best FID")
    add_suite_args(p)
    p = sub.add_parser("cancel", help="cancel the suite's queued and running SLURM jobs")
    add_suite_args(p)
    p = sub.add_parser("calibrate", help="measure this device's training throughput for a suite's models")
    add_suite_args(p)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--steps", type=int, default=10, help="timed steps per model (median; after 1 warm-up)")
    p.add_argument("--reference", type=Path, help="calibration file of the reference GPU: adds speed ratios")
    p = sub.add_parser("report", help="tables (LaTeX, Markdown, CSV) and plots from a suite's results")
    add_suite_args(p)
    p.add_argument("--selection", choices=("best", "last"), default="best", help="which evaluation per run")
    p.add_argument("--metric", help="metric to tabulate (default: the suite's first FID metric)")
    p.add_argument("--standalone", action="store_true", help="LaTeX files compile on their own")


@command("run")
def cmd_run(args: argparse.Namespace) -> int:
    """Train and evaluate every cell not yet done (here, on a device pool, or as jobs); print the tables."""
    from bench.launchers.base import get_launcher
    from bench.launchers.checks import preflight
    from bench.launchers.pool import DevicePool, check_devices, parse_devices
    from bench.launchers.submit import plan_launch, plan_text
    from bench.report.console import plan_table
    from bench.results.runs import cell_state
    from bench.training.options import LoopOptions

    suite, cells = suite_and_cells(args)
    settings = LaunchSettings.merged(suite.slurm, **flag_values(args, LaunchSettings))
    print(plan_table(suite, cells, args.out))
    if settings.launcher != "local":
        print(plan_text(plan_launch(cells, args.out, settings), settings))
    if args.dry_run:
        return 0
    local = settings.launcher == "local"
    pool = DevicePool(parse_devices(args.devices), tuple(args.argv)) if args.devices else None
    if pool is not None:
        states = {c.spec.run_id: cell_state(args.out, c)["status"] for c in cells}
        if set(states.values()) <= {"done", "diverged", "running"}:  # nothing for a worker to do
            return _print_results(suite, cells, args.out, states)
        check_devices(pool.devices)
    preflight(suite, cells, args.out, device=None if pool or not local else args.device)
    opts = LoopOptions(out=args.out, device=args.device, progress=not args.no_progress,
                       checkpoint_every_s=args.checkpoint_every, deterministic=args.deterministic)  # fmt: skip
    outcome = (pool or get_launcher(settings.launcher)).run(cells, opts, settings)
    if pool is not None:
        return max(int(v.split()[-1]) for v in outcome.values())
    if local:
        return _print_results(suite, cells, args.out, outcome)
    for run_id, what in outcome.items():
        print(f"{run_id}: {what}")
    if any(w.startswith("submitted") for w in outcome.values()):
        where = f"--suite {args.suite} --out {args.out}"
        print(f"\nwatch: run_bench.py status {where}\nstop:  run_bench.py cancel {where}")
    return 1 if "failed" in outcome.values() else 0


def _print_results(suite: Any, cells: list[Any], out: Path, outcome: dict[str, str]) -> int:
    """The best-FID table and the cells' outcomes; the exit code (1 when a cell failed)."""
    from bench.report.console import best_table

    print()
    print(best_table(suite, cells, out))
    counts = {s: list(outcome.values()).count(s) for s in sorted(set(outcome.values()))}
    print("\ncells: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if "failed" in outcome.values() else 0


@command("status")
def cmd_status(args: argparse.Namespace) -> int:
    """Cells with state, progress and best FID so far; jobs and errors when there are any."""
    from bench.launchers.jobs import jobs_table
    from bench.report.console import best_table, plan_table

    suite, cells = suite_and_cells(args)
    print(plan_table(suite, cells, args.out))
    if (jobs := jobs_table(cells, args.out)) is not None:
        print()
        print(jobs)
    print()
    print(best_table(suite, cells, args.out))
    return 0


@command("cancel")
def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel the suite's SLURM jobs that may still run (their cells checkpoint and stay resumable)."""
    from bench.launchers.jobs import cancel

    _, cells = suite_and_cells(args)
    ids = cancel(cells, args.out)
    print(f"cancelled {len(ids)} job(s)" + (": " + ", ".join(ids) if ids else ""))
    return 0


@command("calibrate")
def cmd_calibrate(args: argparse.Namespace) -> int:
    """Measure it/s and img/s per (model, resolution) of the suite; write results/calibration/."""
    from tabulate import tabulate

    from bench.tools.calibrate import calibrate, calibration_path, write_calibration
    from bench.training.device import training_device

    _, cells = suite_and_cells(args)
    device = training_device(args.device)
    doc = calibrate(cells, device, max(1, args.steps), args.reference)
    path = calibration_path(args.out, device)
    write_calibration(path, doc)
    rows = [[e["model"], e["resolution"], e["batch"], f"{e['it_s']:.3g}", f"{e['img_s']:.3g}",
             f"{e['speed_ratio']:.3g}" if "speed_ratio" in e else "--"] for e in doc["entries"]]  # fmt: skip
    print(tabulate(rows, ["model", "res", "batch", "it/s", "img/s", "speed ratio"], tablefmt="github"))
    print(f"written: {path}")
    return 0


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    """Write the suite's tables and plots; print where they are."""
    from bench.report import read_states, write_report
    from bench.report.tables import summary_line
    from bench.results.collect import collect

    suite, _ = suite_and_cells(args)
    paths = write_report(
        suite, collect(args.out, suite.name), args.out, selection=args.selection,
        standalone=args.standalone, metric=args.metric,
    )  # fmt: skip
    for p in paths:
        print(p)
    print(summary_line(suite, collect(args.out, suite.name), read_states(suite, args.out)))
    return 0
