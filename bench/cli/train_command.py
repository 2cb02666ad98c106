"""``train``: one run from flags, without a suite file (as stylegan2-ada's ``train.py --data --cfg --kimg``):

    run_bench.py train --data folder:./imgs --model fastgan --resolution 256 --kimg 200

The flags are :class:`bench.plan.specs.RunSpec`'s fields (:data:`RUN_FLAGS`: flag name, parser and help
per field; the defaults are RunSpec's own), so a ``train`` run is the same run a suite cell with those
settings would be: the same run id, folder, ``spec.json`` and result rows. It lives in the implicit
suite ``train`` (``<out>/runs/train/<run_id>/``): ``status --suite train`` lists every such run,
``status --run DIR`` one, and running the same command again skips a finished run or resumes an
interrupted one. It launches through the same path as ``run`` (local, submitit-local, slurm).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from bench.cli.args import add_dataclass_flags, flag_values
from bench.cli.registry import command
from bench.cli.suite_commands import add_launch_args, launch_cells
from bench.errors import BenchError
from bench.plan.specs import PINS, PRECISIONS, RESIZE_FILTERS, RunSpec

RUN_FLAGS: dict[str, dict[str, Any]] = {
    "dataset": {"flag": "--data", "required": True,
                "help": "images to train on: folder:PATH (an image folder, searched recursively), a built-in set or "
                        "a prepared paper set (see `list`)"},
    "model": {"required": True, "metavar": "NAME[:K=V...]",
              "help": "model NAME[:KEY=VALUE...] (see `list`), e.g. fastgan or fastgan:ngf=32"},
    "resolution": {"required": True, "parse": "resolution", "metavar": "PX",
                   "help": "px, a power of two from 32 to 1024"},
    "seed": {"parse": "nonnegative", "metavar": "N",
             "help": "seed of the weights, the batches and the evaluation latents"},
    "max_kimg": {"flag": "--kimg", "parse": "positive", "metavar": "N",
                 "help": "budget: thousands of real images shown (iterations x batch size)"},
    "max_iters": {"flag": "--iters", "metavar": "N", "help": "budget: training iterations"},
    "budget_hours": {"flag": "--hours", "parse": "positive", "metavar": "H",
                     "help": "budget: hours of training time here (reference-GPU hours with --speed-ratio); with "
                             "several limits the first one reached ends the run"},
    "budget_pin": {"flag": "--pin", "choices": PINS, "help": "only this limit applies: a deterministic budget"},
    "speed_ratio": {"parse": "positive", "metavar": "R",
                    "help": "this device's speed / the reference GPU's, converting --hours"},
    "num_gpus": {"metavar": "N", "help": "GPUs the budget assumes (--hours are GPU-hours)"},
    "protocols": {"flag": "--protocol", "metavar": "NAME",
                  "help": "metric of each evaluation (repeatable; see `list`; none: snapshots and grids only)"},
    "detector": {"metavar": "NAME", "help": "FID/KID detector (offline: effnet-lite0), or torchscript:PATH"},
    "pr_detector": {"metavar": "NAME", "help": "precision/recall detector"},
    "eval_fractions": {"flag": "--eval-at", "parse": "fractions", "metavar": "F,F",
                       "help": "fractions of the budget to evaluate at, e.g. 0.5,1 (1 is always one)"},
    "grid_size": {"metavar": "N", "help": "images in each sample grid"},
    "precision": {"choices": PRECISIONS, "help": "fp32, or bf16 autocast"},
    "compile": {"help": "torch.compile the step (numerics change slightly)"},
    "fused_adam": {"help": "Adam's fused kernel (rounding differs)"},
    "cuda_graphs": {"help": "the step as one CUDA graph (FastGAN family; rounding differs)"},
    "channels_last": {"help": "weights and activations in NHWC memory (rounding differs)"},
    "resize_filter": {"choices": RESIZE_FILTERS, "help": "filter resizing the images to --resolution"},
}  # fmt: skip
_BUDGET = ("max_kimg", "max_iters", "budget_hours")


def _with_defaults(flags: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each flag's help with RunSpec's default appended (RunSpec owns the defaults)."""
    fields = {f.name: f for f in dataclasses.fields(RunSpec)}
    out = {}
    for name, meta in flags.items():
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        keep = meta.get("required") or default in (None, False)
        out[name] = meta if keep else meta | {"help": f"{meta['help']} (default: {shown})"}
    return out


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``train`` parser."""
    p = sub.add_parser(
        "train", help="train one model on one dataset or image folder, without a suite file",
        description="One run from flags; its folder is OUT/runs/train/<run_id>; run it again to resume.",
    )  # fmt: skip
    add_dataclass_flags(p.add_argument_group("run"), RunSpec, keep_defaults=False, meta=_with_defaults(RUN_FLAGS))
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    add_launch_args(p, devices=False)
    p.set_defaults(suite=None, devices=None, device_profile=None, calibration=None)


def train_spec(args: argparse.Namespace) -> RunSpec:
    """The RunSpec the flags describe (suite ``train``); a one-line BenchError naming the flag when bad."""
    import models
    from bench.results.adhoc import TRAIN_SUITE

    given = {k: v for k, v in flag_values(args, RunSpec, RUN_FLAGS).items() if v is not None and v is not False}
    if not any(k in given for k in _BUDGET):
        raise BenchError("train: no budget; give --kimg N, --iters N or --hours H (several: the first reached ends)")
    if (pin := given.get("budget_pin")) and f"max_{pin}" not in given:
        raise BenchError(f"--pin {pin}: pins the budget to --{pin}, which is not given; add --{pin} N or drop --pin")
    try:
        name, kwargs = models.parse_entry(given.pop("model"))
    except models.ModelConfigError as exc:
        raise BenchError(f"--model {args.model}: {exc}") from None
    if "none" in given.get("protocols", ()):
        if len(given["protocols"]) > 1:
            raise BenchError("--protocol none: means no metrics (snapshots and grids only); pass it alone")
        given["protocols"] = ()
    _check_names(given)
    try:
        models.param_counts(name, given["resolution"], **kwargs)  # builds on the meta device: validates the kwargs
    except (models.ModelConfigError, TypeError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise BenchError(f"--model {args.model}: {first}; fix the model's KEY=VALUE options") from None
    if "eval_fractions" in given:
        given["eval_fractions"] = tuple(sorted({*given["eval_fractions"], 1.0}))
    source = "flag" if "speed_ratio" in given else "none"
    return RunSpec(suite=TRAIN_SUITE, model=name, model_kwargs=kwargs, budget_source=source, **given)


def _check_names(given: dict[str, Any]) -> None:
    """Dataset, protocols and detectors are known (folder:PATH an existing folder); its fingerprint recorded."""
    from bench.data.catalog import check_dataset_name
    from bench.data.folders import FOLDER_PREFIX, folder_fingerprint
    from bench.metrics import check_detector, check_protocol

    checks = [("--data", check_dataset_name, given["dataset"])]
    checks += [("--protocol", check_protocol, p) for p in given.get("protocols", ())]
    checks += [
        (f"--{k.replace('_', '-')}", check_detector, given[k]) for k in ("detector", "pr_detector") if k in given
    ]
    for flag, check, value in checks:
        try:
            check(value)
        except BenchError as exc:
            raise BenchError(f"{flag} {value}: {exc}") from None
    if given["dataset"].startswith(FOLDER_PREFIX):
        try:
            given["data_fingerprint"] = folder_fingerprint(given["dataset"])
        except BenchError as exc:
            raise BenchError(f"--data {given['dataset']}: {exc}") from None


@command("train")
def cmd_train(args: argparse.Namespace) -> int:
    """Train (or resume) the one run the flags describe; print its plan, results and folder."""
    from bench.plan.suites import Cell
    from bench.results.adhoc import TRAIN_SUITE, implicit_suite
    from bench.results.runs import RunPaths

    spec = train_spec(args)
    args.suite = TRAIN_SUITE  # for the `status --suite train` hint of submitted jobs
    suite = implicit_suite(args.out, TRAIN_SUITE, [Cell(spec, spec.model, "")], "runs of `run_bench.py train`")
    code = launch_cells(args, suite, suite.cells)
    if not args.dry_run:
        print(f"run folder: {RunPaths.of(args.out, spec).root}")
    return code
