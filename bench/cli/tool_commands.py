"""Subcommands on runs, data and the machine: ``list``, ``eval``, ``generate``, ``import-official``,
``prepare``, ``perf`` and ``gpu-check``."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.args import add_dataclass_flags, count, resolution
from bench.cli.listing import SECTIONS
from bench.cli.registry import command
from bench.cli.score_command import add_source_args, check_source_args, print_rows, score_any
from bench.errors import BenchError, command_line
from bench.plan.specs import RESIZE_FILTERS
from bench.tools.gpucheck.settings import GpuCheckSettings
from bench.tools.perf.settings import PerfSettings, PrecisionCheck

RESIZE_FILTER_HELP = (
    "resize filter of the images (default lanczos); bilinear is the official FastGAN code's "
    "(torchvision Resize on PIL images), so fid2k_fastgan's reference set matches its evaluation"
)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The tool subcommands' parsers."""
    p = sub.add_parser("list", help="registered models, datasets, protocols, detectors, suites and device profiles")
    p.add_argument("what", nargs="?", choices=SECTIONS, help="only this section (default: all)")
    p = sub.add_parser("eval", help="re-score a run's snapshots (rows appended), or score any generator or folder")
    add_source_args(p)
    p.add_argument("--checkpoint", default="all", help="--run: snapshot file name, 'latest' or 'all' (default)")
    p.add_argument(
        "--protocol",
        action="append",
        help="metric name (repeatable; default: the run's own; --folder: fid5k_full_clean)",
    )
    p.add_argument(
        "--detector", help="FID/KID detector name or torchscript:PATH (default: the run's own; --folder: inception-v3)"
    )
    p.add_argument("--pr-detector", help="precision/recall detector (default: the run's own, vgg16-fc2)")
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder holding the caches")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p = sub.add_parser("generate", help="a run's generated images as PNGs: exactly those a protocol scores")
    p.add_argument("--run", type=Path, required=True, help="run folder (results/runs/<suite>/<run_id>)")
    p.add_argument("--outdir", type=Path, required=True, help="new folder for the PNGs and generated.json")
    p.add_argument("--protocol", default="fid5k_full_clean", help="whose images: count, truncation, BN mode")
    p.add_argument("--checkpoint", help="snapshot file name (default: the newest)")
    p.add_argument("--num", type=count, help="only the first N of the protocol's images")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p = sub.add_parser("import-official", help="an official FastGAN checkpoint as a run folder, to score with eval")
    p.add_argument("checkpoint", type=Path, help="the official .pth ({'g','d'} or all_N.pth)")
    p.add_argument("--dataset", required=True, help="the set it was trained on (prepared; see `list`)")
    p.add_argument("--resolution", type=resolution, required=True, help="px of its generator")
    p.add_argument(
        "--model", default="fastgan",
        help="FastGAN-family variant, NAME[:KEY=VALUE...] for other widths (default fastgan; e.g. fastgan:ngf=32)",
    )  # fmt: skip
    p.add_argument("--step", type=count, help="its iteration (default: from the file name)")
    p.add_argument("--suite", default="official", help="folder under results/runs/ (default official)")
    p.add_argument("--resize-filter", choices=RESIZE_FILTERS, default=RESIZE_FILTERS[0], help=RESIZE_FILTER_HELP)
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder")
    p = sub.add_parser("prepare", help="turn a downloaded paper dataset (zip/tar/folder) into the cache")
    p.add_argument("--dataset", required=True, help="paper dataset name (see `list`)")
    p.add_argument("--src", type=Path, help="the downloaded archive or folder")
    p.add_argument("--download", action="store_true", help="download from the registry URL first")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable images (listed in the manifest)")
    p.add_argument("--resolution", type=resolution, help="prepare at this resolution (default: the dataset's)")
    p.add_argument("--resize-filter", choices=RESIZE_FILTERS, default=RESIZE_FILTERS[0], help=RESIZE_FILTER_HELP)
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder holding the caches")
    p = sub.add_parser("perf", help="benchmark: step time, FLOP/s, harness overhead, eval throughput per model")
    add_dataclass_flags(p, PerfSettings, keep_defaults=True)
    p.add_argument("--threads", type=count, help="torch CPU threads (default: every CPU this process may use)")
    add_dataclass_flags(p.add_argument_group("precision check", "instead of timing"), PrecisionCheck,
                        keep_defaults=True)  # fmt: skip
    p = sub.add_parser("gpu-check", help="acceptance check of every CUDA path, one JSON + Markdown summary")
    add_dataclass_flags(p, GpuCheckSettings, keep_defaults=True)


@command("list")
def cmd_list(args: argparse.Namespace) -> int:
    """Everything registered, or one section; per model its recipe source and G/D parameters at its suites'
    resolutions (bench.cli.listing)."""
    from bench.cli.listing import listing

    print(listing(args.what))
    return 0


@command("eval")
def cmd_eval(args: argparse.Namespace) -> int:
    """Re-score a run's snapshots offline (appending the rows), or score a network or folder; print the rows."""
    from bench.results.io import check_writable_dir
    from bench.results.runs import cache_dirs
    from bench.tools.rescore import rescore

    check_source_args(args)
    check_writable_dir(args.out, "--out", folders=cache_dirs(Path()))
    if args.run is None:
        rows = score_any(args)
    else:
        rows = rescore(
            args.run, out=args.out, snapshot=args.checkpoint, protocols=args.protocol,
            detector=args.detector, pr_detector=args.pr_detector, device=args.device,
        )  # fmt: skip
    print_rows(args, rows)
    return 0


@command("generate")
def cmd_generate(args: argparse.Namespace) -> int:
    """Write the PNG folder; print where and what."""
    from bench.results.io import check_writable_dir
    from bench.tools.generate import generate_folder

    check_writable_dir(args.outdir, "--outdir")
    rec = generate_folder(
        args.run, args.outdir, protocol=args.protocol, snapshot=args.checkpoint, num=args.num, device=args.device
    )  # fmt: skip
    print(f"{rec['images']} images of {rec['run_id']} ({rec['snapshot']}, {rec['protocol']}) in {args.outdir}")
    return 0


@command("import-official")
def cmd_import_official(args: argparse.Namespace) -> int:
    """Import an official checkpoint; print the run folder and how to score it."""
    import models
    from bench.results.io import check_writable_dir
    from bench.results.runs import cache_dirs
    from bench.tools.official import import_official

    name, kwargs = models.parse_entry(args.model)
    check_writable_dir(args.out, "--out", folders=[cache_dirs(Path())[0], Path("runs") / Path(args.suite).name])
    paths = import_official(
        args.checkpoint, dataset=args.dataset, resolution=args.resolution, out=args.out,
        model=name, model_kwargs=kwargs, suite=args.suite, step=args.step, resize_filter=args.resize_filter,
    )  # fmt: skip
    print(f"imported {args.checkpoint} as {paths.root}")
    print(f"score it: {command_line(f'eval --run {paths.root} --protocol fid2k_fastgan --protocol fid5k_full_clean')}")
    return 0


@command("prepare")
def cmd_prepare(args: argparse.Namespace) -> int:
    """Prepare a paper dataset into the tensor cache."""
    from bench.data.prepare import prepare_dataset
    from bench.results.io import check_writable_dir
    from bench.results.runs import cache_dirs

    if args.src is None and not args.download:
        raise BenchError("prepare: give --src PATH (the downloaded zip/tar/folder) or --download")
    check_writable_dir(args.out, "--out", folders=[cache_dirs(Path())[0]])
    data_cache, _ = cache_dirs(args.out)
    ds = prepare_dataset(
        args.dataset, args.src, cache_dir=data_cache, skip_bad=args.skip_bad,
        download=args.download, resolution=args.resolution, resize_filter=args.resize_filter,
    )  # fmt: skip
    print(
        f"prepared {ds.name}: {ds.images.shape[0]} images at {ds.resolution} px ({args.resize_filter}), "
        f"sha256 {ds.sha256[:16]}…"
    )
    return 0  # a count that differs from the registry's: the warning main prints after this line


@command("gpu-check")
def cmd_gpu_check(args: argparse.Namespace) -> int:
    """Run the check within its budget; print the summary; 1 when a section failed."""
    from bench.cli.args import flag_values
    from bench.results.io import check_writable_dir
    from bench.tools.gpucheck.run import run_gpu_check
    from bench.tools.gpucheck.summary import render

    settings = GpuCheckSettings(**flag_values(args, GpuCheckSettings))
    check_writable_dir(settings.out, "--out")
    doc, path = run_gpu_check(settings)
    print()
    print(render(doc))
    print(f"written: {path} and {path.with_suffix('.md')}")
    return 1 if doc["verdict"].startswith("FAILED") else 0


@command("perf")
def cmd_perf(args: argparse.Namespace) -> int:
    """Measure every model, write the JSON, print the table; 1 when no model could be measured."""
    import torch

    from bench.cli.args import flag_values
    from bench.results.io import check_writable_dir
    from bench.tools.perf.run import format_precision_check, precision_fid_check, run_perf
    from bench.tools.perf.table import format_table
    from bench.training.threads import usable_cpus

    check_writable_dir(args.out, "--out")
    if args.threads:
        if args.threads > (usable := usable_cpus()):
            raise BenchError(f"--threads {args.threads}: this process may use {usable} CPUs; pass at most {usable}")
        torch.set_num_threads(args.threads)
    check = PrecisionCheck(**flag_values(args, PrecisionCheck))
    if check.precision_fid:
        doc, path = precision_fid_check(check, out=args.out, device=args.device)
        print(format_precision_check(doc))
        print(f"\nwritten: {path}")
        return 0
    doc, path = run_perf(PerfSettings(**flag_values(args, PerfSettings)))
    print()
    print(format_table(doc))
    print(f"\nwritten: {path}")
    return 0 if any("error" not in r for r in doc["models"]) else 1
