"""Subcommands that act on a suite: ``run`` (the default), ``status``, ``cancel``, ``calibrate``, ``report``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.cli.args import add_dataclass_flags, count_at_most, csv_list, flag_values, int_list, positive
from bench.cli.registry import command
from bench.errors import BenchError, prog_name
from bench.launchers.pool import WORKER_FLAG
from bench.plan.launching import LaunchSettings
from bench.plan.protocol_names import current_metric

MAX_CALIBRATE_STEPS = 1000  # timed steps per configuration: a median needs no more


def add_suite_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    """The flags naming a suite, a subset of its cells, the results folder and its budget conversion."""
    p.add_argument("--suite", required=required, help="suite name (experiments/NAME.toml) or a .toml path")
    p.add_argument("--models", help="comma-separated subset of the suite's rows ([models.<row>] keys) or models")
    p.add_argument("--datasets", help="comma-separated subset of the suite's datasets")
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    p.add_argument(
        "--budget-scale", type=positive, default=1.0, help="multiply every budget (hours, iterations, kimg) by F"
    )
    p.add_argument("--speed-ratio", type=positive, help="this device's speed / the reference GPU's, for every model")
    p.add_argument(
        "--calibration",
        type=Path,
        help="per-model speed ratios written by `calibrate` (default: this "
        "device's file in OUT/calibration/ when there is one, else an estimate from the device profiles)",
    )
    p.add_argument(
        "--device-profile",
        help="the profile (bench/plan/devices.toml) of the device the cells will run "
        "on, for the estimate (default: matched by this device's name), e.g. a100",
    )
    p.add_argument(
        "--detector",
        help="FID/KID detector of every cell instead of the suite's eval.detector (offline: effnet-lite0); "
        "it changes the run ids, so pass it to status and report too (which, when no run was made with it, "
        "show the suite's runs by their rows re-scored with it: `eval --detector`)",
    )
    p.add_argument("--pr-detector", help="precision/recall detector instead of the suite's eval.pr_detector")
    p.add_argument(
        "--seeds", type=int_list,
        help="comma-separated seeds instead of the suite's suite.seeds, e.g. 4,5,6; each seed is a run of its own "
        "(its own run id), so pass the same --seeds to status and report",
    )  # fmt: skip
    p.add_argument(
        "--init-from",
        help="harness checkpoint for finetune rows: stylegan2-diffaug-finetune starts from a stylegan2-diffaug-ffhq "
        "run, stylegan2-half-finetune from a stylegan2-half run (published TF pickles cannot be read)",
    )


_CELL_FLAGS = (
    "models",
    "datasets",
    "budget_scale",
    "speed_ratio",
    "calibration",
    "device_profile",
    "detector",
    "pr_detector",
    "init_from",
)  # add_suite_args' flags that select cells or change their run ids


def _suite_flags(args: argparse.Namespace) -> str:
    """``--suite S --out O`` and every flag given that selects the cells or changes their run ids (as status,
    cancel and report need them to address the same runs)."""
    given = [(k, getattr(args, k)) for k in _CELL_FLAGS if getattr(args, k) not in (None, 1.0)]
    return " ".join([f"--suite {args.suite} --out {args.out}", *(f"--{k.replace('_', '-')} {v}" for k, v in given)])


def suite_and_cells(args: argparse.Namespace, convert: bool = True) -> tuple[Any, list[Any]]:
    """The loaded suite and its cells selected by ``--models`` / ``--datasets``; budgets converted to
    this device (bench.tools.conversion) unless ``convert`` is False."""
    from bench.plan.suites import filter_cells, load_suite
    from bench.results.adhoc import TRAIN_SUITE
    from bench.tools.conversion import budget_conversion, dry_run_conversion

    if args.suite == TRAIN_SUITE:
        return _train_suite(args)
    ratio = None
    if convert and getattr(args, "dry_run", False):
        ratio, _ = dry_run_conversion(args.suite, args.out, **_conversion_flags(args))
    elif convert:
        ratio = budget_conversion(args.suite, args.out, **_conversion_flags(args))
    suite = load_suite(
        args.suite, budget_scale=args.budget_scale, speed_ratio=ratio, init_from=args.init_from,
        detector=args.detector, pr_detector=args.pr_detector, cost_cache=args.out / "cache" / "stepcost",
        seeds=args.seeds,
    )  # fmt: skip
    return suite, filter_cells(suite, csv_list(args.models), csv_list(args.datasets))


def _conversion_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The flags :func:`bench.tools.conversion.budget_conversion` reads."""
    return {"speed_ratio": args.speed_ratio, "calibration": args.calibration, "device_profile": args.device_profile,
            "device": getattr(args, "device", "auto")}  # fmt: skip


def _missing_speed(args: argparse.Namespace) -> list[str]:
    """A dry run's pre-run check of this device's speed: the line saying none is known (no device profile,
    calibration or ratio for an hour budget), or nothing; nothing for ``train``'s runs (no suite file)."""
    from bench.results.adhoc import TRAIN_SUITE
    from bench.tools.conversion import dry_run_conversion

    if args.suite == TRAIN_SUITE:
        return []
    _, problem = dry_run_conversion(args.suite, args.out, **_conversion_flags(args))
    return [problem] if problem else []


def suite_scored_with(args: argparse.Namespace) -> tuple[Any, list[Any], str | None]:
    """The suite and cells ``status`` and ``report`` show, and the detector whose rows they tabulate: with
    ``--detector X`` and no run of the cells it names, the suite's own runs by their rows scored with X
    (``eval --detector X``), and X; else the cells as named, and None (the suite's own detector)."""
    from bench.results.runs import RunPaths

    suite, cells = suite_and_cells(args)
    if args.detector is None or any(RunPaths.of(args.out, c.spec).spec.exists() for c in cells):
        return suite, cells, None
    own_suite, own_cells = suite_and_cells(argparse.Namespace(**(vars(args) | {"detector": None})))
    if any(RunPaths.of(args.out, c.spec).spec.exists() for c in own_cells):
        return own_suite, own_cells, args.detector
    return suite, cells, None


def _train_suite(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The implicit suite of the ``train`` command's runs (bench.results.adhoc), as they were made."""
    from bench.plan.suites import filter_cells
    from bench.results.adhoc import TRAIN_SUITE, stored_suite

    changing = {"--detector": args.detector, "--pr-detector": args.pr_detector, "--init-from": args.init_from,
                "--speed-ratio": args.speed_ratio, "--calibration": args.calibration, "--seeds": args.seeds,
                "--budget-scale": None if args.budget_scale == 1.0 else args.budget_scale}  # fmt: skip
    if given := [flag for flag, value in changing.items() if value is not None]:
        raise BenchError(
            f"{given[0]}: the runs of --suite {TRAIN_SUITE} keep the settings they were made with; drop it"
        )
    suite = stored_suite(args.out, TRAIN_SUITE)
    return suite, filter_cells(suite, csv_list(args.models), csv_list(args.datasets))


def add_launch_args(p: argparse.ArgumentParser, devices: bool = True) -> None:
    """The flags of where and how cells run (``run``, ``train``): device, progress, checkpoints, launcher."""
    p.add_argument(
        "--dry-run", action="store_true",
        help="print the plan, its total budget and what a run would still need here (prepare commands), and exit",
    )  # fmt: skip
    p.add_argument("--wide", action="store_true", help="a row per cell with its run id (default: cells that differ "
                   "only in their dataset share a row)")  # fmt: skip
    p.add_argument(
        "--device", default="auto",
        help="auto (cuda if available; a suite with budget.accelerator = 'gpu' refuses to train without it), "
        "cpu (trains such a suite anyway), cuda, cuda:N",
    )  # fmt: skip
    if devices:
        p.add_argument("--devices", help="run cells in parallel, one worker per device, e.g. 0,1,2,3 (CUDA indices) "
                       "or cpu,cpu (CPU workers share the CPUs, an equal part each)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--checkpoint-every", type=positive, default=900.0, help="training seconds between checkpoints")
    p.add_argument(
        "--deterministic", action="store_true", help="deterministic GPU kernels: bitwise-repeatable runs, slower"
    )
    p.add_argument(
        "--tensorboard", action="store_true",
        help="also write TensorBoard events (losses, metrics, sample grids) to each run's tensorboard/ folder "
        "(needs pip install 'fewshot-gan-bench[tensorboard]'; the JSONL files stay the record)",
    )  # fmt: skip
    group = p.add_argument_group("launcher", "where cells run; these flags override the suite's [slurm] block")
    add_dataclass_flags(group, LaunchSettings, keep_defaults=False)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The suite subcommands' parsers."""
    p = sub.add_parser("run", help="train and evaluate a suite's cells (default command)")
    add_suite_args(p)
    add_launch_args(p)
    p.add_argument(WORKER_FLAG, action="store_true", help=argparse.SUPPRESS)  # set by the pool on its workers
    p = sub.add_parser("status", help="table of a suite's cells (or one run's) with state, progress and best FID")
    add_suite_args(p, required=False)
    p.add_argument("--run", type=Path, help="one run folder (results/runs/<suite>/<run_id>) instead of a suite")
    p.add_argument("--wide", action="store_true", help="a row per cell with its run id")
    p = sub.add_parser("cancel", help="cancel the suite's queued and running SLURM jobs")
    add_suite_args(p)
    p = sub.add_parser("calibrate", help="measure this device's training throughput for a suite's models")
    add_suite_args(p)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument(
        "--steps", type=count_at_most(MAX_CALIBRATE_STEPS), default=10,
        help=f"timed steps per model (median; after 1 warm-up), 1 to {MAX_CALIBRATE_STEPS}",
    )  # fmt: skip
    p.add_argument(
        "--no-checks",
        action="store_true",
        help="skip the stated-throughput checks of the conversion model (bench/plan/throughputs.toml: 8 "
        "configurations counted on the meta device, a minute or two)",
    )
    p.add_argument(
        "--reference",
        type=Path,
        help="a calibration measured on the reference GPU: ratios from both "
        "measurements instead of the reference's profile estimate",
    )
    p = sub.add_parser("report", help="tables (LaTeX, Markdown, CSV) and plots from a suite's results")
    add_suite_args(p)
    p.add_argument(
        "--selection",
        choices=("best", "last"),
        default=None,
        help="which evaluation per run in the tables (default best; a study keeps its own rule)",
    )
    p.add_argument("--metric", help="metric to tabulate (default: the suite's first FID metric)")
    p.add_argument("--standalone", action="store_true", help="LaTeX files compile on their own")


@command("run")
def cmd_run(args: argparse.Namespace) -> int:
    """Train and evaluate every cell not yet done (here, on a device pool, or as jobs); print the tables."""
    if args.devices is not None:
        from bench.launchers.pool import parse_devices

        parse_devices(args.devices)  # a bad list is refused before anything else
    suite, cells = suite_and_cells(args)
    return launch_cells(args, suite, cells)


def launch_cells(args: argparse.Namespace, suite: Any, cells: list[Any]) -> int:
    """Run (or submit) ``cells`` of ``suite`` as ``args`` (the flags of :func:`add_launch_args`) say; print
    the plan and the results; the exit code (1 when a cell failed)."""
    from bench.launchers.base import get_launcher
    from bench.launchers.checks import check_models, missing_before_run, preflight
    from bench.launchers.pool import DevicePool, check_devices, longest_first, parse_devices
    from bench.launchers.submit import plan_launch, plan_text
    from bench.report.console import plan_table
    from bench.report.structure import remember_built
    from bench.report.writer import read_states
    from bench.results.io import check_writable_dir
    from bench.training.options import LoopOptions
    from bench.training.tblog import check_tensorboard
    from models.plugins import loaded_plugins

    devices = None if getattr(args, "devices", None) is None else parse_devices(args.devices)
    settings = LaunchSettings.merged(suite.slurm, **flag_values(args, LaunchSettings))
    if args.tensorboard:
        check_tensorboard()
    if args.dry_run:
        check_models(suite, cells)  # a dry run validates what costs nothing to check
    else:
        check_writable_dir(args.out, "--out")  # before the plan table looks into it
    worker = getattr(args, "pool_worker", False)
    if not worker:  # the pool printed the plan once
        print(plan_table(suite, cells, args.out, wide=args.wide))
    if args.dry_run:
        missing = _missing_speed(args) + missing_before_run(cells, args.out)
        print("\npre-run checks: " + ("datasets prepared, detector weights here" if not missing else
                                       f"{len(missing)} to fix before `run` starts"))  # fmt: skip
        print("".join(f"- {line}\n" for line in missing), end="")
    if settings.launcher != "local":
        print(plan_text(plan_launch(cells, args.out, settings), settings))
        if settings.launcher == "slurm" and (elsewhere := _converted_for_this_machine(args, cells)) is not None:
            if not args.dry_run:
                raise BenchError(elsewhere)
            print(f"note: {elsewhere}")
    if args.dry_run:
        return 0
    local = settings.launcher == "local"
    pool = (
        None if devices is None else DevicePool(devices, tuple(args.argv), on_first_exit=lambda: remember_built(cells))
    )
    if pool is not None:
        states = read_states(cells, args.out)
        if set(states.values()) <= {"done", "diverged", "running"}:  # nothing for a worker to do
            return _print_results(suite, cells, args.out, states, device=args.device)
        check_devices(pool.devices)
    device = pool.checked_device if pool is not None else args.device if local else None
    preflight(suite, cells, args.out, device=device, launcher=settings.launcher)
    opts = LoopOptions(out=args.out, device=args.device, progress=not args.no_progress,
                       checkpoint_every_s=args.checkpoint_every, deterministic=args.deterministic,
                       tensorboard=args.tensorboard, plugins=loaded_plugins())  # fmt: skip
    if worker:
        cells = longest_first(cells)  # each worker: the longest cells first; run locks share them out
    outcome = (pool or get_launcher(settings.launcher)).run(cells, opts, settings)
    if pool is not None:
        states = read_states(cells, args.out)
        printed = _print_results(suite, cells, args.out, states, device=args.device)
        return max(printed, *(int(v.split()[-1]) for v in outcome.values()))
    if worker:
        return 1 if "failed" in outcome.values() else 0  # the pool prints the results once every worker is done
    if local:
        return _print_results(suite, cells, args.out, outcome, device=args.device)
    for run_id, what in outcome.items():
        print(f"{run_id}: {what}")
    if any(w.startswith("submitted") for w in outcome.values()):
        where = _suite_flags(args)
        print(f"\nwatch: {prog_name()} status {where}\nstop:  {prog_name()} cancel {where}")
    return 1 if "failed" in outcome.values() else 0


def _print_results(suite: Any, cells: list[Any], out: Path, outcome: dict[str, str], device: str = "auto") -> int:
    """The evaluation spread a study asks for (``[study] eval_repeats``: bench.tools.evalnoise, on ``device``),
    then the best-FID table, the study's verdicts and the cells' outcomes; the exit code (1 when a cell failed)."""
    from bench.report.study_render import verdict_text
    from bench.report.summary import best_table
    from bench.results.collect import collect

    if suite.study is not None and suite.study.eval_repeats:
        from bench.tools.evalnoise import measure_suite

        measure_suite(cells, suite.study.eval_repeats, out=out, device=device)
    print()
    print(best_table(suite, cells, out))
    if suite.study is not None and suite.study.claims:
        try:
            print("\n" + verdict_text(suite, collect(out, suite.name)))
        except BenchError as exc:
            print(f"\nverdicts: none yet ({exc})")
    counts = {s: list(outcome.values()).count(s) for s in sorted(set(outcome.values()))}
    print("\ncells: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if "failed" in outcome.values() else 0


def _converted_for_this_machine(args: argparse.Namespace, cells: list[Any]) -> str | None:
    """Why budgets converted with this machine's profile or calibration do not fit SLURM jobs, which run on other
    nodes (submitit-local's jobs run here: this machine's conversion is theirs)."""
    from bench.plan.sources import source_kind

    if args.device_profile is not None or args.calibration is not None:
        return None
    if not any(source_kind(c.spec.budget_source) in ("profile", "calibration") for c in cells):
        return None
    return (
        "the budgets were converted for this machine's device, but the cells run as jobs on other nodes; "
        f"pass --device-profile NAME (their GPU, see `{prog_name()} list`) or --calibration FILE measured there"
    )


@command("status")
def cmd_status(args: argparse.Namespace) -> int:
    """Cells with state, progress and best FID so far; jobs and errors when there are any."""
    from bench.launchers.jobs import jobs_table
    from bench.plan.suites import Cell
    from bench.report.console import plan_table
    from bench.report.summary import best_table
    from bench.results.variants import budget_variants

    if args.run is not None:
        from bench.results.adhoc import run_folder_suite

        args.out, suite = run_folder_suite(args.run)
        cells, scored_with = suite.cells, None
    elif args.suite is None:
        raise BenchError("status: give --suite NAME (or train, the runs of `train`) or --run DIR")
    else:
        suite, cells, scored_with = suite_scored_with(args)
    print(plan_table(suite, cells, args.out, wide=args.wide))
    if (jobs := jobs_table(cells, args.out)) is not None:
        print()
        print(jobs)
    print()
    found = budget_variants(args.out, cells)  # runs of these cells made with other budget settings
    shown = [Cell(found.get(c.spec.run_id, c.spec), c.label, c.group) for c in cells]
    print(best_table(suite, shown, args.out, detector=scored_with))
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
    """Measure each configuration's step here, convert it to the suite's reference GPU; write OUT/calibration/."""
    from bench.plan.devices import get_profile
    from bench.results.io import check_writable_dir
    from bench.tools.calibrate import calibrate, calibration_table, write_calibration
    from bench.tools.conversion import calibration_path, local_profile
    from bench.training.device import training_device

    suite, cells = suite_and_cells(args, convert=False)
    device = training_device(args.device)
    path, cache = calibration_path(args.out, device), args.out / "cache" / "stepcost"
    check_writable_dir(args.out, "--out", folders=[cache.relative_to(args.out)], files=[path.relative_to(args.out)])
    reference = get_profile(suite.reference_gpu) if suite.reference_gpu else None
    local = local_profile(device, args.device_profile)
    doc = calibrate(cells, device, args.steps, local=local, reference=reference, reference_file=args.reference,
                    cache=cache, checks=not args.no_checks)  # fmt: skip
    write_calibration(path, doc)
    print(calibration_table(doc))
    print(f"written: {path}")
    return 0


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    """Write the suite's tables and plots; print where they are."""
    from bench.report.budgets import other_budget_note, write_budget_table
    from bench.report.stale import stale_lines, stale_runs
    from bench.report.tables import summary_line
    from bench.report.writer import read_states, write_report
    from bench.results.collect import collect
    from bench.results.io import check_writable_dir
    from bench.results.runs import RunPaths

    suite, _, scored_with = suite_scored_with(args)
    check_writable_dir(args.out, "--out", folders=["tables", Path("plots") / suite.name])
    other = other_budget_note(suite.cells, args.out)
    if other and not any(RunPaths.of(args.out, c.spec).spec.exists() for c in suite.cells):
        raise BenchError(f"suite {suite.name}: no runs with these budget settings in {args.out}; {other}")
    df = collect(args.out, suite.name)
    metric = current_metric(args.metric) if args.metric else None  # a former protocol name: the current one
    stale = stale_runs(suite.cells, args.out)  # read once: the tables' marks and the closing lines
    paths = write_report(
        suite, df, args.out, selection=args.selection or "best", standalone=args.standalone, metric=metric,
        detector=scored_with, stale=stale,
    )  # fmt: skip
    paths += write_budget_table(suite.name, suite.cells, args.out, args.out)
    for p in paths:
        print(p)
    print(summary_line(suite, df, read_states(suite.cells, args.out)))
    if other:
        print(other)
    for line in stale_lines(suite.cells, stale):
        print(line)
    study = getattr(suite, "study", None)
    if args.selection and study is not None and study.selection != args.selection:
        print(f"note: --selection {args.selection} applies to the per-run tables; the study keeps its declared "
              f"value per run ([study] selection = {study.selection!r}, fixed before its seeds ran)")  # fmt: skip
    return 0
