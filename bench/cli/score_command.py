"""``eval``'s sources and output: a run's snapshots (``--run``: rows appended to the run), or anything
else scored without a run (``--network``, ``--folder``: :mod:`bench.tools.score`), printed as text,
as JSON lines (``--json``) or written to a JSON file (``--save``, atomically)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.cli.args import resolution
from bench.errors import BenchError


def add_source_args(p: argparse.ArgumentParser) -> None:
    """What ``eval`` scores (one of --run, --network, --folder), against what, and where the rows go."""
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="run folder (results/runs/<suite>/<run_id>): re-score its snapshots "
                        "and append the rows to it")  # fmt: skip
    source.add_argument(
        "--network", type=Path,
        help="a generator of this harness: a run folder (newest snapshot), a snapshot in it, or a snap-*.pt file "
        "on its own; scored against its run's dataset unless --data/--ref-folder (nothing is appended)",
    )  # fmt: skip
    source.add_argument("--folder", type=Path, help="a folder of images in the generator's place (as clean-fid's "
                        "compute_fid(dir1, dir2)); needs --data or --ref-folder")  # fmt: skip
    p.add_argument("--data", help="reference dataset (see `list`; or folder:PATH) for --network or --folder")
    p.add_argument("--ref-folder", type=Path, help="reference: a folder of images, for --network or --folder")
    p.add_argument(
        "--resolution", type=resolution,
        help="--folder: px both sets are resized to (default: the size of the folder's square images)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print each row as one JSON line, with its whole protocol")
    p.add_argument("--save", type=Path, help="also write the rows, with their whole protocol, to this JSON file")


def check_source_args(args: argparse.Namespace) -> None:
    """Flags that only some sources take; the --save file's folder is writable (before any work)."""
    from bench.results.io import check_writable_dir

    if args.run is not None:
        extra = [f for f, v in (("--data", args.data), ("--ref-folder", args.ref_folder),
                                ("--resolution", args.resolution)) if v is not None]  # fmt: skip
        if extra:
            raise BenchError(f"{extra[0]}: only with --network or --folder (--run scores against its run's dataset)")
    elif args.checkpoint != "all":
        raise BenchError("--checkpoint: only with --run (pass the snapshot file itself as --network)")
    if args.resolution is not None and args.folder is None:
        raise BenchError("--resolution: only with --folder (a network's resolution is its run's)")
    if args.save is not None:
        if args.save.is_dir():
            raise BenchError(f"--save {args.save}: a folder; pass a file name, e.g. scores.json")
        check_writable_dir(args.save.parent, "--save")


def score_any(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The rows of ``--network`` or ``--folder`` (nothing appended to any run)."""
    from bench.tools.score import score_folder, score_network

    common = {"out": args.out, "data": args.data, "ref_folder": args.ref_folder, "protocols": args.protocol,
              "pr_detector": args.pr_detector, "device": args.device}  # fmt: skip
    if args.network is not None:
        return score_network(args.network, detector=args.detector, **common)
    return score_folder(args.folder, detector=args.detector or "inception-v3", resolution=args.resolution, **common)


def print_rows(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """The rows as text lines (or JSON lines with ``--json``); written to ``--save`` too."""
    from bench.results.io import atomic_write_json

    for r in rows:
        if args.json:
            print(json.dumps(r, sort_keys=True, default=str))
            continue
        std = f" ± {r['std']:.4g}" if r.get("std") is not None else ""
        what = r["snapshot"] if "snapshot" in r else f"{r['scored']} vs {r['against']}"
        print(f"{what}  {r['metric']} = {r['value']:.4g}{std}  [{r['detector']}, {r['mode']}, {r['num_gen']} images]")
    if args.save is not None:
        atomic_write_json(args.save, rows)
        if not args.json:
            print(f"written: {args.save}")
