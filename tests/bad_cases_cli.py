"""Bad input on the command line and in suite files: kinds ``command line``, ``suite values``,
``silent corruption`` (numbers that reach a budget, duplicate row labels), ``names`` and ``perf``."""

from __future__ import annotations

from bad_inputs import MODELS_TABLE, PROTOCOLS_LINE, SEE_HELP, Builder, Case, Ctx, suite_case, write

PERF_HELP = "see `run_bench.py perf --help`"
SLURM = "\n[slurm]\n"


def _calibration(ctx: Ctx, entry: str) -> list[str]:
    path = write(ctx.tmp / "cal.json", ('{"entries": [' + entry + "]}").encode())
    return ctx.run(extra=("--calibration", str(path), "--dry-run"))


def _cal_entry(ratio: str) -> str:
    return '{"model": "baseline", "resolution": 32, "img_s": 1.0, "speed_ratio": ' + ratio + "}"


def _calibration_ratio(ratio: str, expect: str) -> Builder:
    """``run --dry-run --calibration`` with one entry whose speed_ratio is ``ratio`` (JSON text)."""
    return lambda ctx: Case(_calibration(ctx, _cal_entry(ratio)), [expect])


def _perf(*args: str) -> Builder:
    return lambda ctx: Case(["perf", "--out", str(ctx.out), *args], [PERF_HELP])


COMMAND_LINE: dict[str, Builder] = {
    "unknown suite name": lambda ctx: Case(
        ["--suite", "fewshot265", "--out", str(ctx.out)], ["unknown suite 'fewshot265'", "did you mean fewshot256"]
    ),
    "suite file missing": lambda ctx: Case(
        ["--suite", str(ctx.tmp / "nope.toml"), "--out", str(ctx.out)],
        ["nope.toml does not exist", "pass an existing .toml"],
    ),
    "suite file not UTF-8": lambda ctx: Case(
        ["--suite", str(write(ctx.tmp / "bin.toml", b"\xff\xfe\x00\x81")), "--out", str(ctx.out)],
        ["bin.toml: not UTF-8 text", "save the suite as a UTF-8 TOML file"],
    ),
    "negative --budget-scale": lambda ctx: Case(
        ctx.run(extra=("--budget-scale", "-1")), ["argument --budget-scale: expected a number > 0, got '-1'", SEE_HELP]
    ),
    "non-number --speed-ratio": lambda ctx: Case(
        ctx.run(extra=("--speed-ratio", "fast")), ["argument --speed-ratio: expected a number > 0", SEE_HELP]
    ),
    "zero --checkpoint-every": lambda ctx: Case(
        ctx.run(extra=("--checkpoint-every", "0")), ["argument --checkpoint-every", SEE_HELP]
    ),
    "missing --suite": lambda ctx: Case(["run", "--out", str(ctx.out)], ["required: --suite", SEE_HELP]),
    "unknown option": lambda ctx: Case(
        ctx.run(extra=("--max-iters", "3")), ["unrecognized arguments: --max-iters", "--help`"]
    ),
    "--models not in suite": lambda ctx: Case(
        ctx.run(extra=("--models", "fastgan")), ["--models: fastgan not in suite 'tiny'", "choose from baseline"]
    ),
    "--datasets not in suite": lambda ctx: Case(
        ctx.run(extra=("--datasets", "emoji-faces")), ["--datasets: emoji-faces not in suite", "choose from shapes"]
    ),
    "unknown --device": lambda ctx: Case(
        ctx.run(extra=("--device", "banana")), ["--device banana: not a device", "use auto, cpu"]
    ),
    "eval of a non-run folder": lambda ctx: Case(
        ["eval", "--run", str(ctx.tmp), "--out", str(ctx.out)], ["not a run folder (no spec.json)", "see results/runs/"]
    ),
    "--launcher unknown": lambda ctx: Case(ctx.run(extra=("--launcher", "pbs")), ["argument --launcher", SEE_HELP]),
    "two GPU requests": lambda ctx: Case(
        ctx.run(extra=("--launcher", "slurm", "--gpus-per-node", "1", "--gres", "gpu:1")),
        ["gpus_per_node 1 and gres 'gpu:1'", "pass one GPU request"],
    ),
    "GPU request in --sbatch-extra": lambda ctx: Case(
        ctx.run(extra=("--launcher", "slurm", "--sbatch-extra=--gpus=2")),
        ["extra sbatch line '--gpus=2'", "request GPUs with --gpus-per-node N or --gres SPEC"],
    ),
    "negative --gpus-per-node": lambda ctx: Case(
        ctx.run(extra=("--launcher", "slurm", "--gpus-per-node", "-1")),
        ["argument --gpus-per-node: expected an integer >= 0", SEE_HELP],
    ),
    "--sbatch-extra reserved": lambda ctx: Case(
        ctx.run(extra=("--launcher", "slurm", "--sbatch-extra=--time=5", "--dry-run")),
        ["extra sbatch line '--time=5': --time is set by the launcher; use its own flag"],
    ),
}

SUITE_VALUES: dict[str, Builder] = {
    "malformed TOML": suite_case(["tiny.toml: malformed TOML", "fix the syntax"], ("[budget]", "[budget")),
    "unknown table": suite_case(["sweeep: unknown table", "allowed: suite"], add="[sweeep]\nx = 1\n"),
    "unknown key": suite_case(["suite.resolutoin: unknown key", "allowed:"], ("resolution = 32", "resolutoin = 32")),
    "wrong type (string for int)": suite_case(
        ["suite.resolution: expected int"], ("resolution = 32", 'resolution = "32"')
    ),
    "wrong type (bool for int)": suite_case(["budget.max_iters: expected int"], ("max_iters = 2", "max_iters = true")),
    "table expected": suite_case(
        ["budget: expected a table ([budget])"], ("[suite]", "budget = 2\n[suite]"), ("[budget]\nmax_iters = 2\n", "")
    ),
    "missing suite.name": suite_case(["suite.name: missing (required)"], ('name = "tiny"', "")),
    "missing datasets": suite_case(["suite.datasets: missing (required)"], ('datasets = ["shapes"]', "")),
    "empty datasets": suite_case(
        ["suite.datasets: empty; list at least one"], ('datasets = ["shapes"]', "datasets = []")
    ),
    "no models": suite_case(["models: no [models.<name>] table; add at least one"], (MODELS_TABLE, "")),
    "zero budget": suite_case(
        ["budget.max_iters: must be a finite number > 0, got 0"], ("max_iters = 2", "max_iters = 0")
    ),
    "negative budget": suite_case(
        ["budget.max_iters: must be a finite number > 0"], ("max_iters = 2", "max_iters = -5")
    ),
    "negative hours": suite_case(["budget.hours: must be a finite number > 0"], ("max_iters = 2", "hours = -1.5")),
    "NaN hours": suite_case(["budget.hours: must be a finite number > 0, got nan"], ("max_iters = 2", "hours = nan")),
    "infinite hours": suite_case(
        ["budget.hours: must be a finite number > 0, got inf"], ("max_iters = 2", "hours = inf")
    ),
    "hours overflow a float": suite_case(
        ["budget.hours: must be a finite number > 0"], ("max_iters = 2", "hours = 1" + "0" * 400)
    ),
    "hours overflow the clock": suite_case(
        ["models.baseline: budget of 1e+308 h is inf local seconds", "lower the hours"],
        ("max_iters = 2", "hours = 1e308"),
    ),
    "max_iters beyond any run": suite_case(
        ["max_iters must be an integer from 1 to 1000000000000"], ("max_iters = 2", "max_iters = 10000000000000")
    ),
    "max_kimg_by_dataset names no suite dataset": suite_case(
        ["budget.max_kimg_by_dataset.shapez: not one of suite.datasets"],
        ("max_iters = 2", "max_iters = 2\nmax_kimg_by_dataset = { shapez = 1 }"),
    ),
    "max_kimg_by_dataset of 0": suite_case(
        ["budget.max_kimg_by_dataset.shapes: must be a finite number > 0 and at most 1000000000, got 0"],
        ("max_iters = 2", "max_iters = 2\nmax_kimg_by_dataset = { shapes = 0 }"),
    ),
    "no budget at all": suite_case(
        ["models.baseline: no budget; set budget.compute_seconds, hours, max_iters or max_kimg"], ("max_iters = 2", "")
    ),
    "unknown model": suite_case(
        ["models.fastgam: unknown model", "did you mean"], ("[models.baseline]", "[models.fastgam]")
    ),
    "unknown dataset": suite_case(
        ["suite.datasets[0]: unknown dataset 'shapez'", "did you mean"], ('["shapes"]', '["shapez"]')
    ),
    "unknown protocol": suite_case(
        ["eval.protocols[0]: unknown metric", "did you mean"], (PROTOCOLS_LINE, 'protocols = ["fid5k"]')
    ),
    "unknown detector": suite_case(["eval.detector:", "inception"], ('"inception-random"', '"inceptoin"')),
    "study claim naming an unknown model": suite_case(
        ["study.claims[0].better: 'fastgan' is not a model of this suite", "[models.<name>] keys: baseline"],
        add='[[study.claims]]\nname = "x"\nbetter = "fastgan"\nthan = "baseline"\n',
    ),
    "unknown study key": suite_case(["study.laddr: unknown key", "allowed: metric"], add="[study]\nladdr = []\n"),
    "study metric not evaluated": suite_case(
        ["study.metric: 'fid5k_full_clean' is not one of eval.protocols", "name a protocol the suite evaluates"],
        add='[study]\nmetric = "fid5k_full_clean"\n',
    ),
    "study tuned on one of its own seeds": suite_case(
        ["study.tuning_seeds: 0 also a seed of the study (suite.seeds)", "run the study on other seeds"],
        add='[study]\ntuned = "lr"\ntuning_seeds = [0]\n',
    ),
    "study tuned on a seed --seeds runs": suite_case(
        ["study.tuning_seeds: 7 also a seed of the study (--seeds)"],
        add='[study]\ntuned = "lr"\ntuning_seeds = [7]\n',
        extra=("--seeds", "7"),
    ),  # fmt: skip
    "--seeds listed twice": suite_case(["--seeds: 3 listed twice; list each seed once"], extra=("--seeds", "3,3")),
    "fraction out of range": suite_case(["eval.fractions: expected numbers in (0, 1]"], ("[0.5, 1.0]", "[0.0, 1.5]")),
    "grid of a million images": suite_case(
        ["grid_size must be an integer from 1 to 1024"], ("grid_size = 4", "grid_size = 1000000")
    ),
    "resolution not allowed": suite_case(["suite.resolution: 48 not one of"], ("resolution = 32", "resolution = 48")),
    "unknown resize filter": suite_case(
        ["suite.resize_filter: 'bicubic' not one of lanczos, bilinear"],
        ("resolution = 32", 'resolution = 32\nresize_filter = "bicubic"'),
    ),
    "unknown budget pin": suite_case(
        ["budget.pin: 'hours' not one of iters, kimg"], ("max_iters = 2", 'max_iters = 2\npin = "hours"')
    ),
    "NaN max_kimg": suite_case(
        ["budget.max_kimg: must be a finite number > 0 and at most 1000000000, got nan"],
        ("max_iters = 2", "max_iters = 2\nmax_kimg = nan"),
    ),
    "pin without its cap": suite_case(
        ["budget pinned to kimg without max_kimg; set max_kimg"], ("max_iters = 2", 'max_iters = 2\npin = "kimg"')
    ),
    "unknown reference_gpu": suite_case(
        ["suite.reference_gpu:"], ("resolution = 32", 'resolution = 32\nreference_gpu = "gtx-480"')
    ),
    "negative seed": suite_case(
        ["suite.seeds: expected a list of non-negative integers"], ("seeds = [0]", "seeds = [-1]")
    ),
    "seed beyond 2**32": suite_case(["suite.seeds:", "up to 2**32 - 1"], ("seeds = [0]", "seeds = [4294967296]")),
    "seed of 2**63": suite_case(["suite.seeds:", "up to 2**32 - 1"], ("seeds = [0]", "seeds = [9223372036854775807]")),
    "deeply nested array": suite_case(
        ["malformed TOML: arrays or tables nested too deeply"], ("seeds = [0]", "seeds = " + "[" * 3000 + "]" * 3000)
    ),
    "deeply nested inline tables": suite_case(
        ["malformed TOML: arrays or tables nested too deeply"],
        ("ngf = 4", "ngf = " + "{a = " * 3000 + "1" + "}" * 3000),
    ),
    "nested array as a width": suite_case(["ngf must be an integer >= 1"], ("ngf = 4", "ngf = [[[[4]]]]")),
    "missing include": suite_case(
        ["suite.include:", "base.toml: cannot read", "fix the path"],
        ('name = "tiny"', 'name = "tiny"\ninclude = ["base.toml"]'),
    ),
    "unknown model kwarg": suite_case(
        ["models.baseline.kwargs:", "'ngff'", "fix models.baseline.kwargs"], ("ngf = 4", "ngff = 4")
    ),
    "unknown accelerator": suite_case(
        ["tiny.toml: budget.accelerator: 'tpu' not one of 'none', 'gpu'"],
        ("max_iters = 2", 'max_iters = 2\naccelerator = "tpu"'),
    ),
    "wrong kwarg value": suite_case(
        ["models.baseline.kwargs: recon must be one of"], ('recon = "mse"', 'recon = "ssim"')
    ),
    "zero width": suite_case(["models.baseline.kwargs: ngf must be an integer >= 1, got 0"], ("ngf = 4", "ngf = 0")),
    "negative width": suite_case(
        ["models.baseline.kwargs: ndf must be an integer >= 1, got -4"], ("ndf = 4", "ndf = -4")
    ),
    "zero width, dry run": suite_case(
        ["ngf must be an integer >= 1, got 0"], ("ngf = 4", "ngf = 0"), extra=("--dry-run",)
    ),
    "infinite learning rate": suite_case(
        ["models.baseline.kwargs: lr must be a finite number"], ("ngf = 4", "ngf = 4, lr = inf")
    ),
    "[slurm] margin nan": suite_case(
        ["slurm: time_margin_min must be a finite number >= 0"], add=SLURM + "time_margin_min = nan\n"
    ),
    "[slurm] eval minutes inf": suite_case(
        ["slurm: eval_minutes must be a finite number >= 0"], add=SLURM + "eval_minutes = inf\n"
    ),
    "[slurm] time limit overflow": suite_case(
        ["slurm: time_limit_min must be a finite number > 0 and at most 527040"],
        add=SLURM + "time_limit_min = 99999999999999999\n",
    ),
    "[slurm] margin of 1e308": suite_case(
        ["slurm: time_margin_min", "at most 527040"], add=SLURM + "time_margin_min = 1e308\n"
    ),
    "[slurm] negative memory": suite_case(["slurm: mem_gb must be a finite number > 0"], add=SLURM + "mem_gb = -1\n"),
    "[slurm] cpus beyond 32 bits": suite_case(
        ["slurm: cpus_per_task", "at most 2147483647"], add=SLURM + "cpus_per_task = 4294967296\n"
    ),
    "derived time limit over a year": suite_case(
        ["the derived time limit", "exceeds a year", "lower the budget or set time_limit_min"],
        ("max_iters = 2", "hours = 100000.0"),
        extra=("--launcher", "slurm", "--dry-run"),
    ),
}

SILENT_CORRUPTION: dict[str, Builder] = {
    "two models, one label": suite_case(
        ["models.fastgan.label: 'Baseline' is also models.baseline's label", "give each model its own label"],
        add='[models.fastgan]\nlabel = "Baseline"\nkwargs = { recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }\n',
    ),
    "a label equal to another model's name": suite_case(
        ["models.fastgan.label: 'baseline' is also models.baseline's label"],
        ('label = "Baseline"\n', ""),
        add='[models.fastgan]\nlabel = "baseline"\n',
    ),
    "one label in one group": suite_case(
        ["label: 'Baseline' in group 'g' is also models.baseline's label"],
        ('label = "Baseline"', 'label = "Baseline"\ngroup = "g"'),
        add='[models.fastgan]\nlabel = "Baseline"\ngroup = "g"\n',
    ),
    "--speed-ratio inf": suite_case(
        ["argument --speed-ratio: expected a finite number > 0"], extra=("--speed-ratio", "inf")
    ),
    "--speed-ratio nan": suite_case(
        ["argument --speed-ratio: expected a number > 0, got 'nan'"], extra=("--speed-ratio", "nan")
    ),
    "--speed-ratio 1e400": suite_case(
        ["argument --speed-ratio: expected a finite number > 0"], extra=("--speed-ratio", "1e400")
    ),
    "--speed-ratio 0": suite_case(
        ["argument --speed-ratio: expected a number > 0, got '0'"], extra=("--speed-ratio", "0")
    ),
    "--budget-scale nan": suite_case(
        ["argument --budget-scale: expected a number > 0"], extra=("--budget-scale", "nan")
    ),
    "budget.speed_ratio inf": suite_case(
        ["budget.speed_ratio: must be a finite number > 0, got inf"],
        ("max_iters = 2", "max_iters = 2\nspeed_ratio = inf"),
    ),
    "budget.speed_ratio nan": suite_case(
        ["budget.speed_ratio: must be a finite number > 0, got nan"],
        ("max_iters = 2", "max_iters = 2\nspeed_ratio = nan"),
    ),
    "models.x.budget_hours nan": suite_case(
        ["models.baseline.budget_hours: must be a finite number > 0, got nan"],
        ('label = "Baseline"', 'label = "Baseline"\nbudget_hours = nan'),
    ),
    **{
        f"calibration ratio {name}": _calibration_ratio(ratio, expect)
        for name, ratio, expect in (
            ("NaN", "NaN", "entries[0]: speed_ratio must be a finite number > 0, got nan"),
            ("negative", "-2", "speed_ratio must be a finite number > 0, got -2"),
            ("zero", "0", "speed_ratio must be a finite number > 0, got 0"),
            ("a string", '"fast"', "speed_ratio must be a finite number > 0, got 'fast'"),
            ("inf", "1e999", "speed_ratio must be a finite number > 0, got inf"),
            ("true", "true", "speed_ratio must be a finite number > 0, got True"),
        )
    },
    "calibration img_s missing": lambda ctx: Case(
        _calibration(ctx, '{"model": "baseline", "resolution": 32}'),
        ["entries[0]: img_s must be a finite number > 0, got None"],
    ),
    "calibration entry not a table": lambda ctx: Case(_calibration(ctx, "[1, 2]"), ["entries[0]: expected a table"]),
    "calibration without entries": lambda ctx: Case(
        ctx.run(extra=("--calibration", str(write(ctx.tmp / "cal.json", b'{"entries": 3}')))),
        ["not a calibration file (no 'entries' list)", "create one with `run_bench.py calibrate`"],
    ),
    "calibration not JSON": lambda ctx: Case(
        ctx.run(extra=("--calibration", str(write(ctx.tmp / "cal.json", b"{nan")))), ["cal.json: is not valid JSON"]
    ),
}

NAMES: dict[str, Builder] = {
    "suite name escapes the results folder": suite_case(
        ["suite.name: '../../etc'", "use letters"], ('name = "tiny"', 'name = "../../etc"')
    ),
    "suite name with a slash": suite_case(["suite.name: 'a/b'", "use letters"], ('name = "tiny"', 'name = "a/b"')),
    "suite name starting with a dot": suite_case(
        ["suite.name: '.hidden'", "not starting with ."], ('name = "tiny"', 'name = ".hidden"')
    ),
    "suite name of 300 characters": suite_case(
        ["suite.name: 300 characters names a results folder; use at most 100"],
        ('name = "tiny"', f'name = "{"a" * 300}"'),
    ),
    "--suite of 300 characters": lambda ctx: Case(
        ["--suite", "a" * 300, "--out", str(ctx.out)], ["unknown suite 'aaaa"]
    ),
    "--suite naming a path": lambda ctx: Case(
        ["--suite", "../experiments/smoke", "--out", str(ctx.out)], ["unknown suite"]
    ),
    "import-official --suite ../x": lambda ctx: Case(
        [
            "import-official",
            str(ctx.tmp / "all_1.pth"),
            "--dataset",
            "shapes",
            "--resolution",
            "32",
            "--suite",
            "../x",
            "--out",
            str(ctx.out),
        ],
        ["--suite: '../x' names a results folder"],
    ),  # fmt: skip
    "import-official --suite /abs": lambda ctx: Case(
        [
            "import-official",
            str(ctx.tmp / "all_1.pth"),
            "--dataset",
            "shapes",
            "--resolution",
            "32",
            "--suite",
            str(ctx.tmp / "abs"),
            "--out",
            str(ctx.out),
        ],
        ["--suite:", "names a results folder"],
    ),  # fmt: skip
    "import-official --suite of 300 characters": lambda ctx: Case(
        [
            "import-official",
            str(ctx.tmp / "all_1.pth"),
            "--dataset",
            "shapes",
            "--resolution",
            "32",
            "--suite",
            "b" * 300,
            "--out",
            str(ctx.out),
        ],
        ["--suite: 300 characters", "use at most 100"],
    ),  # fmt: skip
}

PERF: dict[str, Builder] = {
    "--fid-seeds a,b": _perf("--precision-fid", "--fid-seeds", "a,b"),
    "--fid-seeds empty": _perf("--precision-fid", "--fid-seeds", ","),
    "--fid-seeds negative": _perf("--precision-fid", "--fid-seeds", "0,-1"),
    "--resolution 33": _perf("--resolution", "33"),
    "--resolution 2048": _perf("--resolution", "2048"),
    "--eval-images -5": _perf("--eval-images", "-5"),
    "--steps 0": _perf("--steps", "0"),
    "--batch -1": _perf("--batch", "-1"),
    "--warmup -1": _perf("--warmup", "-1"),
    "--fid-iters 0": _perf("--precision-fid", "--fid-iters", "0"),
    "--threads 0": _perf("--threads", "0"),
    "--precision fp8": _perf("--precision", "fp8"),
    "--models of a zero width": lambda ctx: Case(
        ["perf", "--out", str(ctx.out), "--models", "fastgan:ngf=0"], ["ngf must be an integer >= 1, got 0"]
    ),
    "--models unknown": lambda ctx: Case(
        ["perf", "--out", str(ctx.out), "--models", "nosuch"], ["unknown model 'nosuch'"]
    ),
    "--models empty": lambda ctx: Case(
        ["perf", "--out", str(ctx.out), "--models", ","], ["--models: name at least one"]
    ),
    "--models malformed": lambda ctx: Case(
        ["perf", "--out", str(ctx.out), "--models", "fastgan:ngf"], ["expected NAME[:KEY=VALUE...]"]
    ),
    "--detector unknown": lambda ctx: Case(
        ["perf", "--out", str(ctx.out), "--detector", "nosuch"], ["unknown detector 'nosuch'"]
    ),
    "--dataset unknown": lambda ctx: Case(
        ["perf", "--out", str(ctx.out), "--dataset", "nosuch"], ["unknown dataset 'nosuch'"]
    ),
}

CASES: dict[str, dict[str, Builder]] = {
    "command line": COMMAND_LINE,
    "suite values": SUITE_VALUES,
    "silent corruption": SILENT_CORRUPTION,
    "names": NAMES,
    "perf arguments": PERF,
}
