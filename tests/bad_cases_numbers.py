"""Numbers past their range, and output places taken: kinds ``calibration`` (``calibrate --reference``
entries, ``--steps``, its output places; a good calibration file in place must survive) and ``overflow``
(budgets, caps, widths and counts that overflow a float, a clock, an allocation or the recursion limit);
cases added to ``command line`` and ``writability`` (each writing command's places inside ``--out``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from bad_inputs import Builder, Case, Ctx, save, suite_case, write

from bench.tools.conversion import calibration_path

TINY_KW = {"recon": "mse", "ngf": 4, "ndf": 4, "batch_size": 4}
MOVE_AWAY = "move it away or pass another --out"

# ---------------------------------------------------------------------------------------------- calibration


def _calibration_file(ctx: Ctx) -> Path:
    """Where ``calibrate --device cpu`` writes in a case's process: its name holds torch's thread count, one in
    a child of the zygote (tests/clirun.py: ``OMP_NUM_THREADS=1``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return calibration_path(ctx.out, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)


def _calibrate(ctx: Ctx, *extra: str) -> list[str]:
    """``calibrate`` of the tiny suite on the CPU, with a good calibration file already in place."""
    write(_calibration_file(ctx), b'{"entries": []}\n')
    suite = str(ctx.suite())
    return ["calibrate", "--suite", suite, "--out", str(ctx.out), "--device", "cpu", "--no-checks", *extra]


def _reference(field: str, expect: str) -> Builder:
    """``calibrate --reference REF`` whose one entry (the suite's configuration) has ``field`` (JSON text)."""

    def build(ctx: Ctx) -> Case:
        entry = f'{{"model": "baseline", "resolution": 32, "kwargs": {json.dumps(TINY_KW)}, "img_s": 1.0, {field}}}'
        ref = write(ctx.tmp / "ref.json", f'{{"entries": [{entry}]}}'.encode())
        return Case(_calibrate(ctx, "--reference", str(ref)), [f"--reference {ref}: entries[0]: {expect}"])

    return build


def _calibration_place(ctx: Ctx) -> Case:
    shutil.rmtree(ctx.out, ignore_errors=True)
    write(ctx.out / "calibration", b"not a folder")
    argv = ["calibrate", "--suite", str(ctx.suite()), "--out", str(ctx.out), "--device", "cpu", "--no-checks"]
    return Case(argv, [f"--out {ctx.out}:", "calibration is a file, not a folder", MOVE_AWAY])


def _calibration_file_a_folder(ctx: Ctx) -> Case:
    argv = _calibrate(ctx)
    path = _calibration_file(ctx)
    path.unlink()
    path.mkdir()
    return Case(argv, [f"{path} is not a regular file", MOVE_AWAY])


STEP_TIME = "its step time (sec_per_step, else batch / img_s) is"
CALIBRATION: dict[str, Builder] = {
    "--reference batch 1e308": _reference('"batch": 1e308', f"{STEP_TIME} 1e+308 s, no measurement"),
    "--reference batch 0": _reference('"batch": 0', "batch must be a finite number > 0, got 0"),
    "--reference batch -8": _reference('"batch": -8', "batch must be a finite number > 0, got -8"),
    '--reference batch "x"': _reference('"batch": "x"', "batch must be a finite number > 0, got 'x'"),
    "--reference batch null": _reference('"batch": null', "batch must be a finite number > 0, got None"),
    "--reference sec_per_step 1e-320": _reference('"sec_per_step": 1e-320', f"{STEP_TIME} 1e-320 s"),
    "--steps of a trillion": lambda ctx: Case(
        _calibrate(ctx, "--steps", "1000000000000"), ["argument --steps: expected an integer from 1 to 1000", "--help"]
    ),
    "OUT/calibration a file": _calibration_place,
    "the calibration file a folder": _calibration_file_a_folder,
}

# ---------------------------------------------------------------------------------------------- overflow


def _import_wide(ctx: Ctx) -> Case:
    path = save(ctx.tmp / "all_5.pth", {"g": {}, "d": {}})
    argv = ["import-official", str(path), "--dataset", "shapes", "--resolution", "32", "--model",
            "fastgan:ngf=100000000", "--out", str(ctx.out)]  # fmt: skip
    return Case(argv, ["--model fastgan:ngf=100000000: model 'fastgan' cannot be built", "lower its widths"])


def _generate(num: str, protocol: str, expect: list[str]) -> Builder:
    def build(ctx: Ctx) -> Case:
        run = ctx.copy_trained()
        argv = ["generate", "--run", str(run), "--outdir", str(ctx.tmp / "png"), "--num", num, "--protocol", protocol]
        return Case(argv, expect)

    return build


KWARGS = 'kwargs = { recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }'
CANNOT_BUILD = "models.baseline.kwargs: model 'baseline' cannot be built"
TOO_WIDE = "models.baseline.kwargs: model 'baseline' at 32 px needs"
OVERFLOW: dict[str, Builder] = {
    "--budget-scale 1e308, dry run": suite_case(
        ["max_iters 2 x budget scale 1e+308 is more than 1e+12", "lower the budget scale"],
        extra=("--budget-scale", "1e308", "--dry-run"),
    ),
    "max_kimg 1e306": suite_case(
        ["budget.max_kimg: must be a finite number > 0 and at most 1000000000, got 1e+306"],
        ("max_iters = 2", "max_kimg = 1e306"),
    ),
    "max_kimg scaled past 1e9": suite_case(
        ["max_kimg 1e+06 x budget scale 10000 is more than 1e+09"],
        ("max_iters = 2", "max_kimg = 1000000"),
        extra=("--budget-scale", "10000"),
    ),
    "a budget rounding to 0 s": suite_case(
        ["budget of 1 h is 0 local seconds", "raise the hours or the budget scale"],
        ("max_iters = 2", "hours = 1.0"),
        extra=("--speed-ratio", "1e308", "--budget-scale", "1e-300"),
    ),
    "ngf 100000000": suite_case([CANNOT_BUILD, "Storage size", "lower its widths"], ("ngf = 4", "ngf = 100000000")),
    "ngf 100000000, dry run": suite_case(
        [CANNOT_BUILD, "lower its widths"], ("ngf = 4", "ngf = 100000000"), extra=("--dry-run",)
    ),
    "ngf 16000: 16 TiB to train": suite_case(
        [TOO_WIDE, "GiB for its weights, gradients and Adam moments alone, more than"], ("ngf = 4", "ngf = 16000")
    ),
    "ngf 16000, dry run": suite_case(
        [TOO_WIDE, "more than the largest device profile's memory"], ("ngf = 4", "ngf = 16000"), extra=("--dry-run",)
    ),
    "import-official --model fastgan:ngf=100000000": _import_wide,
    "kwargs nested 3000 deep": suite_case(
        ["tables or arrays nested more than 64 deep; flatten them"],
        (KWARGS, "kwargs." + ".".join(["a"] * 3000) + " = 1"),
    ),
    "generate --num 1000000000": _generate(
        "1000000000",
        "fid200_full_clean",
        ["--num 1000000000: fid200_full_clean scores 200 generated images", "at most 200"],
    ),
    "generate --num 51 of fid50_full_clean": _generate(
        "51", "fid50_full_clean", ["--num 51: fid50_full_clean scores 50", "at most 50"]
    ),
}

# ---------------------------------------------------------------------------------------------- command line


COMMAND_LINE: dict[str, Builder] = {
    "--devices ''": suite_case(["--devices '': expected CUDA indices", "no empty entry"], extra=("--devices", "")),
    "--devices cpu,,cpu": suite_case(["--devices 'cpu,,cpu': expected CUDA indices"], extra=("--devices", "cpu,,cpu")),
    "gpu-check --sections ''": lambda ctx: Case(
        ["gpu-check", "--device", "cpu", "--out", str(ctx.out), "--sections", ""],
        ["--sections: empty; name at least one of environment"],
    ),
}

# ---------------------------------------------------------------------------------------------- writability


def _place_taken(command: str, place: str) -> Builder:
    """``command`` whose output place ``place`` inside ``--out`` is a file: refused before it computes."""

    def build(ctx: Ctx) -> Case:
        if command == "report":
            argv = ["report", *ctx.copy_evaluated()]
        elif command == "eval":
            argv = ["eval", "--run", str(ctx.copy_trained()), "--out", str(ctx.out)]
        elif command == "import-official":
            argv = ["import-official", str(save(ctx.tmp / "all_5.pth", {"g": {}, "d": {}})), "--dataset", "shapes",
                    "--resolution", "32", "--out", str(ctx.out)]  # fmt: skip
        else:
            argv = ["prepare", "--dataset", "obama", "--src", str(ctx.tmp), "--out", str(ctx.out)]
        shutil.rmtree(ctx.out / place, ignore_errors=True)
        write(ctx.out / place, b"not a folder")
        return Case(argv, [f"--out {ctx.out}: {ctx.out / place} is a file, not a folder", MOVE_AWAY])

    return build


WRITABILITY: dict[str, Builder] = {
    f"{command}: OUT/{place} a file": _place_taken(command, place)
    for command, place in (
        ("report", "tables"),
        ("report", "plots"),
        ("eval", "cache/metrics"),
        ("import-official", "runs/official"),
        ("prepare", "cache/datasets"),
    )  # fmt: skip
}

CASES: dict[str, dict[str, Builder]] = {
    "calibration": CALIBRATION,
    "overflow": OVERFLOW,
    "command line": COMMAND_LINE,
    "writability": WRITABILITY,
}
