"""Thin command-line interface: parse, call one function, print. ``run`` is the default command.

Bad input raises :class:`bench.errors.BenchError` (or a model/suite configuration error); it is
printed as one line on stderr and the process exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from bench.errors import BenchError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
MIN_IMAGES = 2  # training images a run needs (one image has no distribution to learn or to score against)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: ...; see `PROG --help```) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(2)


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register a subcommand handler under ``name``."""

    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return deco


def _csv(text: str | None) -> list[str] | None:
    return [t for t in text.split(",") if t] if text else None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _resolution(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a power of two from 32 to 1024, got {text!r}") from None
    if value not in (32, 64, 128, 256, 512, 1024):
        raise argparse.ArgumentTypeError(f"expected a power of two from 32 to 1024, got {text!r}")
    return value


def _add_suite_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--suite", required=required, help="suite name (experiments/NAME.toml) or a .toml path")
    p.add_argument("--models", help="comma-separated subset of the suite's models")
    p.add_argument("--datasets", help="comma-separated subset of the suite's datasets")
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    p.add_argument("--budget-scale", type=_positive, default=1.0, help="multiply every budget by F")
    p.add_argument("--speed-ratio", type=_positive, help="this device's speed / the reference GPU's")
    p.add_argument("--calibration", type=Path, help="per-model speed ratios from `calibrate --reference`")
    p.add_argument("--init-from", help="checkpoint for finetune rows (e.g. stylegan2-lite-finetune)")


# --- launchers (bench.launch) ------------------------------------------------------------------
def _add_launch_args(p: argparse.ArgumentParser) -> None:
    """``run``'s launcher flags (None = the suite's [slurm] value or the launcher's default)."""
    g = p.add_argument_group("launcher", "where cells run; these flags override the suite's [slurm] block")
    g.add_argument(
        "--launcher",
        choices=("local", "submitit-local", "slurm"),
        default="local",
        help="local: this process (default); submitit-local: subprocesses; slurm: a job array",
    )
    g.add_argument("--partition", help="SLURM partition")
    g.add_argument("--gpus-per-node", type=int, help="GPUs per task (default: none requested)")
    g.add_argument("--cpus-per-task", type=int, help="CPUs per task")
    g.add_argument("--mem-gb", type=_positive, help="memory per task in GB")
    g.add_argument("--time-limit-min", type=int, help="time limit per task (default: budget + eval + margin)")
    g.add_argument("--account", help="SLURM account")
    g.add_argument("--qos", help="SLURM quality of service")
    g.add_argument("--array-parallelism", type=int, help="tasks running at once (slurm default 256, local 1)")
    g.add_argument("--sbatch-extra", action="append", metavar="OPTION",
                   help="extra sbatch option, e.g. --sbatch-extra=--constraint=a100 (repeatable)")  # fmt: skip


def _launch_settings(args: argparse.Namespace, suite):  # -> bench.launch.LaunchSettings
    from bench.launchers.settings import LaunchSettings

    flags = ("launcher", "partition", "gpus_per_node", "cpus_per_task", "mem_gb", "time_limit_min", "account",
             "qos", "array_parallelism")  # fmt: skip
    return LaunchSettings.merged(suite.slurm, **{k: getattr(args, k) for k in flags}, extra_sbatch=args.sbatch_extra)


def _cmd_launch(args: argparse.Namespace, suite, cells) -> int:
    """``run --launcher submitit-local|slurm``: print the launch plan, then submit."""
    from bench.launchers.submit import launch, plan_launch, plan_text
    from bench.training.options import LoopOptions

    settings = _launch_settings(args, suite)
    print(plan_text(plan_launch(cells, args.out, settings), settings))
    if args.dry_run:
        return 0
    _check_writable(args.out)
    _check_data(cells, args.out)
    _check_detectors(cells)
    if args.devices:
        return _run_workers(args)
    opts = LoopOptions(out=args.out, device=args.device, checkpoint_every_s=args.checkpoint_every)
    outcome = launch(cells, opts, settings)
    for run_id, what in outcome.items():
        print(f"{run_id}: {what}")
    if any(w.startswith("submitted") for w in outcome.values()):
        where = f"--suite {args.suite} --out {args.out}"
        print(f"\nwatch: run_bench.py status {where}\nstop:  run_bench.py cancel {where}")
    return 1 if "failed" in outcome.values() else 0


# --- end launchers -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree; every subcommand's options are documented in its --help."""
    parser = _Parser(prog="run_bench.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("run", help="train and evaluate a suite's cells (default command)")
    _add_suite_args(p)
    p.add_argument("--dry-run", action="store_true", help="print the expanded plan and exit")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--devices", help="run cells in parallel, one worker per device, e.g. 0,1,2,3 (CUDA indices)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--checkpoint-every", type=_positive, default=900.0, help="training seconds between checkpoints")
    _add_launch_args(p)
    p = sub.add_parser("status", help="table of a suite's cells with state, progress and best FID")
    _add_suite_args(p)
    sub.add_parser("list", help="registered models, datasets, protocols, detectors and suites")
    p = sub.add_parser("cancel", help="cancel the suite's queued and running SLURM jobs")
    _add_suite_args(p)
    p = sub.add_parser("eval", help="re-score a run's saved snapshots and append the rows")
    p.add_argument("--run", type=Path, required=True, help="run folder (results/runs/<suite>/<run_id>)")
    p.add_argument("--checkpoint", default="all", help="snapshot file name, 'latest' or 'all' (default)")
    p.add_argument("--protocol", action="append", help="metric name (repeatable; default: the run's own)")
    p.add_argument("--detector", help="detector name or torchscript:PATH (default: the run's own)")
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder holding the caches")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p = sub.add_parser("generate", help="a run's generated images as PNGs: exactly those a protocol scores")
    p.add_argument("--run", type=Path, required=True, help="run folder (results/runs/<suite>/<run_id>)")
    p.add_argument("--outdir", type=Path, required=True, help="new folder for the PNGs and generated.json")
    p.add_argument("--protocol", default="fid5k_full", help="whose images: count, truncation, BN mode")
    p.add_argument("--checkpoint", help="snapshot file name (default: the newest)")
    p.add_argument("--num", type=_count, help="only the first N of the protocol's images")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p = sub.add_parser("import-official", help="an official FastGAN checkpoint as a run folder, to score with eval")
    p.add_argument("checkpoint", type=Path, help="the official .pth ({'g','d'} or all_N.pth)")
    p.add_argument("--dataset", required=True, help="the set it was trained on (prepared; see `list`)")
    p.add_argument("--resolution", type=_resolution, required=True, help="px of its generator")
    p.add_argument(
        "--model", default="fastgan",
        help="FastGAN-family variant, NAME[:KEY=VALUE...] for other widths (default fastgan; e.g. fastgan:ngf=32)",
    )  # fmt: skip
    p.add_argument("--step", type=_count, help="its iteration (default: from the file name)")
    p.add_argument("--suite", default="official", help="folder under results/runs/ (default official)")
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder")
    p = sub.add_parser("prepare", help="turn a downloaded paper dataset (zip/tar/folder) into the cache")
    p.add_argument("--dataset", required=True, help="paper dataset name (see `list`)")
    p.add_argument("--src", type=Path, help="the downloaded archive or folder")
    p.add_argument("--download", action="store_true", help="download from the registry URL first")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable images (listed in the manifest)")
    p.add_argument("--resolution", type=_resolution, help="prepare at this resolution (default: the dataset's)")
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder holding the caches")
    p = sub.add_parser("calibrate", help="measure this device's training throughput for a suite's models")
    _add_suite_args(p)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--steps", type=int, default=10, help="timed steps per model (median; after 1 warm-up)")
    p.add_argument("--reference", type=Path, help="calibration file of the reference GPU: adds speed ratios")
    p = sub.add_parser("report", help="tables (LaTeX, Markdown, CSV) and plots from a suite's results")
    _add_suite_args(p)
    p.add_argument("--selection", choices=("best", "last"), default="best", help="which evaluation per run")
    p.add_argument("--metric", help="metric to tabulate (default: the suite's first FID metric)")
    p.add_argument("--standalone", action="store_true", help="LaTeX files compile on their own")
    _add_perf_parser(sub)
    return parser


def _argv_with_default(argv: list[str]) -> list[str]:
    known = set(COMMANDS) | {"-h", "--help"}
    return argv if argv and argv[0] in known else ["run", *argv]


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code."""
    argv = _argv_with_default(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    args.argv = argv
    from models import ModelConfigError

    try:
        return COMMANDS[args.command](args)
    except (BenchError, ModelConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        from bench.results.io import DISK_FULL, disk_full_error

        if exc.errno not in DISK_FULL:
            raise
        print(f"error: {disk_full_error(exc.filename)}", file=sys.stderr)
        return 2


def _suite_and_cells(args: argparse.Namespace):  # -> tuple[Suite, list[Cell]]
    from bench.plan.suites import filter_cells, load_suite

    ratio = args.speed_ratio
    if args.calibration is not None:
        if ratio is not None:
            raise BenchError("--speed-ratio and --calibration both given; pass one of them")
        from bench.tools.calibrate import speed_ratios

        ratio = speed_ratios(args.calibration)
    suite = load_suite(args.suite, budget_scale=args.budget_scale, speed_ratio=ratio, init_from=args.init_from)
    return suite, filter_cells(suite, _csv(args.models), _csv(args.datasets))


def _check_writable(out: Path) -> None:
    """Fail early, before any training, when the results folder cannot be written."""
    import tempfile

    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out}: is a file, not a folder; pass a folder for --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise BenchError(f"--out {out}: folder is not writable ({exc.strerror}); pass a writable --out") from None


@command("run")
def cmd_run(args: argparse.Namespace) -> int:
    """Train and evaluate every cell not yet done; print the best-FID table."""
    from bench.launchers.local import run_local
    from bench.report.console import best_table, plan_table
    from bench.training.device import resolve_device
    from bench.training.options import LoopOptions

    suite, cells = _suite_and_cells(args)
    print(plan_table(suite, cells, args.out))
    if args.launcher != "local":
        return _cmd_launch(args, suite, cells)
    if args.dry_run:
        return 0
    _check_writable(args.out)
    resolve_device(args.device)
    _check_models(suite, cells)
    _check_data(cells, args.out)
    _check_detectors(cells)
    if args.devices:
        return _run_workers(args)
    opts = LoopOptions(
        out=args.out, device=args.device, progress=not args.no_progress,
        checkpoint_every_s=args.checkpoint_every,
    )  # fmt: skip
    outcome = run_local(cells, opts)
    print()
    print(best_table(suite, cells, args.out))
    counts = {s: list(outcome.values()).count(s) for s in sorted(set(outcome.values()))}
    print("\ncells: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if "failed" in outcome.values() else 0


def _check_detectors(cells) -> None:  # cells: list[Cell]
    """Load each detector the cells will need once, so a missing weights file stops the run before training."""
    from bench.metrics import PROTOCOLS, get_detector

    needed = {(c.spec.detector, PROTOCOLS[p].mode) for c in cells for p in c.spec.protocols}
    for name, mode in sorted(needed):
        get_detector(name, "cpu", mode=mode)


def _run_workers(args: argparse.Namespace) -> int:
    """One worker process per device on the same suite; run locks spread the cells among them."""
    import subprocess

    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if not all(d.isdigit() for d in devices):
        raise BenchError(f"--devices {args.devices}: expected CUDA indices like 0,1,2")
    base, skip = [], False
    for a in args.argv:  # the same command without --devices/--device
        if skip:
            skip = False
        elif a in ("--devices", "--device"):
            skip = True
        elif not a.startswith(("--devices=", "--device=")):
            base.append(a)
    cmd = [sys.executable, str(Path(__file__).resolve().parent.parent / "run_bench.py"), *base, "--no-progress"]
    procs = [subprocess.Popen([*cmd, "--device", f"cuda:{d}"]) for d in devices]
    codes = [p.wait() for p in procs]
    return max(codes)


def _check_models(suite, cells) -> None:  # suite: Suite, cells: list[Cell]
    """Fail before anything is written when a cell's model kwargs are bad (built on the meta device)."""
    import torch

    import models

    seen = set()
    for spec in (c.spec for c in cells):
        key = (spec.model, spec.resolution, repr(spec.model_kwargs))
        if key in seen:
            continue
        seen.add(key)
        try:
            with torch.device("meta"):  # no memory, no compute
                models.get_model(spec.model, resolution=spec.resolution, **spec.model_kwargs)
        except (models.ModelConfigError, TypeError, ValueError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            fix = "fix --init-from" if "init_from" in first else f"fix models.{spec.model}.kwargs"
            raise BenchError(f"{suite.path}: models.{spec.model}.kwargs: {first}; {fix}") from None


def _check_data(cells, out: Path) -> None:  # cells: list[Cell]
    """Fail before any training when a cell's dataset is missing (with the prepare command)."""
    from bench.data.catalog import load_dataset
    from bench.data.paper import PAPER_DATASETS, check_prepared
    from bench.errors import DataError
    from bench.results.runs import cache_dirs

    data_cache, _ = cache_dirs(out)
    for name, res in sorted({(c.spec.dataset, c.spec.resolution) for c in cells}):
        if name in PAPER_DATASETS:
            check_prepared(name, res, data_cache)
            continue
        count = len(load_dataset(name, res, cache_dir=data_cache).images)  # builds the cache once, before training
        if count < MIN_IMAGES:
            raise DataError(f"dataset {name!r} has {count} image; a GAN needs at least {MIN_IMAGES}: add images")


@command("status")
def cmd_status(args: argparse.Namespace) -> int:
    """Cells with state, progress and best FID so far; jobs and errors when there are any."""
    from bench.launchers.jobs import jobs_table
    from bench.report.console import best_table, plan_table

    suite, cells = _suite_and_cells(args)
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

    _, cells = _suite_and_cells(args)
    ids = cancel(cells, args.out)
    print(f"cancelled {len(ids)} job(s)" + (": " + ", ".join(ids) if ids else ""))
    return 0


@command("list")
def cmd_list(args: argparse.Namespace) -> int:
    """Everything registered."""
    import models
    from bench.data.catalog import list_datasets
    from bench.metrics import list_detectors, list_protocols
    from bench.plan.suites import list_suites

    for title, names in (
        ("models", models.list_models()),
        ("datasets", list_datasets()),
        ("protocols", list_protocols()),
        ("detectors", list_detectors()),
        ("suites", list_suites()),
    ):
        print(f"{title}: {', '.join(names)}")
    return 0


@command("eval")
def cmd_eval(args: argparse.Namespace) -> int:
    """Re-score snapshots offline; print the new rows."""
    from bench.tools.rescore import rescore

    rows = rescore(
        args.run, out=args.out, snapshot=args.checkpoint, protocols=args.protocol,
        detector=args.detector, device=args.device,
    )  # fmt: skip
    for r in rows:
        std = f" ± {r['std']:.4g}" if r.get("std") is not None else ""
        print(f"{r['snapshot']}  {r['metric']} = {r['value']:.4g}{std}  [{r['detector']}, {r['mode']}]")
    return 0


@command("generate")
def cmd_generate(args: argparse.Namespace) -> int:
    """Write the PNG folder; print where and what."""
    from bench.tools.generate import generate_folder

    rec = generate_folder(
        args.run, args.outdir, protocol=args.protocol, snapshot=args.checkpoint, num=args.num, device=args.device
    )  # fmt: skip
    print(f"{rec['images']} images of {rec['run_id']} ({rec['snapshot']}, {rec['protocol']}) in {args.outdir}")
    return 0


@command("import-official")
def cmd_import_official(args: argparse.Namespace) -> int:
    """Import an official checkpoint; print the run folder and how to score it."""
    import models
    from bench.tools.official import import_official

    name, kwargs = models.parse_entry(args.model)
    paths = import_official(
        args.checkpoint, dataset=args.dataset, resolution=args.resolution, out=args.out,
        model=name, model_kwargs=kwargs, suite=args.suite, step=args.step,
    )  # fmt: skip
    print(f"imported {args.checkpoint} as {paths.root}")
    print(f"score it: python run_bench.py eval --run {paths.root} --protocol fid2k_fastgan --protocol fid5k_full")
    return 0


@command("prepare")
def cmd_prepare(args: argparse.Namespace) -> int:
    """Prepare a paper dataset into the tensor cache."""
    from bench.data.prepare import prepare_dataset
    from bench.results.runs import cache_dirs

    if args.src is None and not args.download:
        raise BenchError("prepare: give --src PATH (the downloaded zip/tar/folder) or --download")
    data_cache, _ = cache_dirs(args.out)
    ds = prepare_dataset(
        args.dataset, args.src, cache_dir=data_cache, skip_bad=args.skip_bad,
        download=args.download, resolution=args.resolution,
    )  # fmt: skip
    print(f"prepared {ds.name}: {ds.images.shape[0]} images at {ds.resolution} px, sha256 {ds.sha256[:16]}…")
    if ds.manifest.get("count_warning"):
        print(f"warning: {ds.manifest['count_warning']}")
    return 0


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    """Write the suite's tables and plots; print where they are."""
    from bench.report import write_report
    from bench.results.collect import collect

    suite, cells = _suite_and_cells(args)
    paths = write_report(
        suite, collect(args.out, suite.name), args.out, selection=args.selection,
        standalone=args.standalone, metric=args.metric,
    )  # fmt: skip
    for p in paths:
        print(p)
    from bench.report import read_states
    from bench.report.tables import summary_line

    print(summary_line(suite, collect(args.out, suite.name), read_states(suite, args.out)))
    return 0


# --- perf ----------------------------------------------------------------------------------------


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _add_perf_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("perf", help="benchmark: step time, FLOP/s, harness overhead, eval throughput per model")
    p.add_argument(
        "--models", default="fastgan:recon=mse,stylegan2-lite,biggan",
        help="comma-separated models, each NAME[:KEY=VALUE...] (model kwargs)",
    )  # fmt: skip
    p.add_argument("--resolution", type=_count, default=256, help="px (default 256)")
    p.add_argument("--batch", type=_count, help="images per step (default: each model's own)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--steps", type=_count, default=3, help="timed training steps; the median is reported")
    p.add_argument("--warmup", type=_count, default=1, help="untimed steps before them")
    p.add_argument("--harness-steps", type=_count, default=100, help="steps of the no-work model timing the harness")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16 = autocast (opt-in)")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D (opt-in)")
    p.add_argument("--fused-adam", action="store_true", help="Adam's fused kernel (opt-in)")
    p.add_argument("--channels-last", action="store_true", help="models and data in channels_last")
    p.add_argument("--dataset", default="shapes", help="images the data paths draw from (default shapes)")
    p.add_argument("--eval-images", type=int, help="images through the detector (5000 GPU, 64 CPU; 0 skips)")
    p.add_argument("--detector", default="inception-v3", help="falls back to inception-random when offline")
    p.add_argument("--naive-data", action="store_true", help="also time the naive DataLoader + PIL data path")
    p.add_argument("--naive-workers", type=int, default=0, help="DataLoader workers of the naive path")
    p.add_argument("--threads", type=_count, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=Path("results"), help="JSON goes to OUT/perf/")
    p.add_argument(
        "--precision-fid", action="store_true",
        help="instead: FID of a suite's model trained in fp32 and bf16 per seed, vs the seed spread",
    )  # fmt: skip
    p.add_argument("--fid-suite", default="smoke", help="suite of --precision-fid (default smoke)")
    p.add_argument("--fid-model", default="fastgan", help="model of --precision-fid (default fastgan)")
    p.add_argument("--fid-seeds", default="0,1,2", help="seeds of --precision-fid (default 0,1,2)")
    p.add_argument("--fid-iters", type=_count, default=40, help="training steps per --precision-fid run")  # fmt: skip


@command("perf")
def cmd_perf(args: argparse.Namespace) -> int:
    """Measure every model, write the JSON, print the table; 1 when no model could be measured."""
    import torch

    from bench.tools.perf.run import run_perf
    from bench.tools.perf.settings import PerfSettings
    from bench.tools.perf.table import format_table

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.precision_fid:
        from bench.tools.perf.run import format_precision_check, precision_fid_check

        seeds = tuple(int(x) for x in _csv(args.fid_seeds) or ())
        doc, path = precision_fid_check(
            args.fid_suite, args.fid_model, seeds, args.fid_iters, out=args.out, device=args.device
        )
        print(format_precision_check(doc))
        print(f"\nwritten: {path}")
        return 0
    settings = PerfSettings(
        models=tuple(_csv(args.models) or ()), resolution=args.resolution, batch=args.batch, device=args.device,
        steps=args.steps, warmup=args.warmup, harness_steps=args.harness_steps, precision=args.precision,
        compile=args.compile, fused_adam=args.fused_adam, channels_last=args.channels_last, dataset=args.dataset,
        eval_images=args.eval_images,
        detector=args.detector, naive_data=args.naive_data, naive_workers=args.naive_workers, out=args.out,
    )  # fmt: skip
    doc, path = run_perf(settings)
    print()
    print(format_table(doc))
    print(f"\nwritten: {path}")
    return 0 if any("error" not in r for r in doc["models"]) else 1


@command("calibrate")
def cmd_calibrate(args: argparse.Namespace) -> int:
    """Measure it/s and img/s per (model, resolution) of the suite; write results/calibration/."""
    from tabulate import tabulate

    from bench.tools.calibrate import calibrate, calibration_path, write_calibration
    from bench.training.device import training_device

    _, cells = _suite_and_cells(args)
    device = training_device(args.device)
    doc = calibrate(cells, device, max(1, args.steps), args.reference)
    path = calibration_path(args.out, device)
    write_calibration(path, doc)
    rows = [[e["model"], e["resolution"], e["batch"], f"{e['it_s']:.3g}", f"{e['img_s']:.3g}",
             f"{e['speed_ratio']:.3g}" if "speed_ratio" in e else "--"] for e in doc["entries"]]  # fmt: skip
    print(tabulate(rows, ["model", "res", "batch", "it/s", "img/s", "speed ratio"], tablefmt="github"))
    print(f"written: {path}")
    return 0
