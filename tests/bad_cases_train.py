"""Bad input on the field's habits: kinds ``train`` (one run from flags), ``score`` (``eval --network`` and
``eval --folder``), ``runs without a suite`` (``status --suite train`` / ``--run``) and ``plugins``."""

from __future__ import annotations

from bad_inputs import UNWRITABLE, Builder, Case, Ctx, Payload, png, save, write

TRAIN_HELP = "see `run_bench.py train --help`"
EVAL_HELP = "see `run_bench.py eval --help`"
TINY = "baseline:recon=mse:ngf=4:ndf=4:batch_size=4"


def _train(*args: str, expect: list[str], budget: tuple[str, ...] = ("--iters", "2")) -> Builder:
    """``train`` of the tiny baseline on shapes at 32 px with ``args`` appended (later flags win)."""

    def build(ctx: Ctx) -> Case:
        metrics = () if "--protocol" in args else ("--protocol", "none")
        argv = ["train", "--data", "shapes", "--model", TINY, "--resolution", "32", *budget, *metrics,
                "--out", str(ctx.out), "--no-progress", *args]  # fmt: skip
        return Case(argv, expect)

    return build


def _images(ctx: Ctx, size: int = 32, count: int = 4) -> str:
    return str(ctx.folder({f"{i}.png": png((size, size), (10 * i, 80, 200)) for i in range(count)}))


def _eval(*args: str, expect: list[str], folder: bool = True) -> Builder:
    """``eval`` with ``args`` (``{images}`` becomes a folder of four 32 px images, ``{run}`` the trained run)."""

    def build(ctx: Ctx) -> Case:
        fill = {"{images}": _images(ctx) if folder else "", "{run}": str(ctx.copy_trained()) if "{run}" in args else ""}
        argv = ["eval", *(fill.get(a, a) for a in args), "--out", str(ctx.out)]
        return Case(argv, expect)

    return build


def _network_file(content: object, expect: list[str]) -> Builder:
    """``eval --network`` of a .pt file holding ``content`` (a callable gets the trained run's snapshot)."""

    def build(ctx: Ctx) -> Case:
        marker = ctx.tmp / "payload-ran"
        obj = content(marker) if callable(content) else content
        path = save(ctx.tmp / "g.pt", obj)
        return Case(["eval", "--network", str(path), "--protocol", "fid200_full_clean", "--out", str(ctx.out)], expect,
                    marker=marker)  # fmt: skip

    return build


HEADER = {"format": 1, "model_name": "baseline", "resolution": 32, "step": 2}

TRAIN: dict[str, Builder] = {
    "no budget": _train(expect=["train: no budget", "give --kimg N, --iters N or --hours H"], budget=()),
    "unknown model": _train("--model", "fastgn", expect=["--model fastgn: unknown model 'fastgn'", "did you mean"]),
    "unknown model option": _train("--model", "baseline:bogus=1", expect=["--model baseline:bogus=1: ", "bogus",
                                                                          "fix the model's KEY=VALUE options"]),
    "model option without a value": _train("--model", "baseline:ngf", expect=["--model baseline:ngf:",
                                                                                "expected NAME[:KEY=VALUE...]"]),
    "folder missing": lambda ctx: _train("--data", f"folder:{ctx.tmp / 'nothing'}",
                                         expect=["--data folder:", "nothing is not a folder"])(ctx),
    "unknown dataset": _train("--data", "emoji-face", expect=["--data emoji-face: unknown dataset", "did you mean"]),
    "--resolution 33": _train("--resolution", "33", expect=["argument --resolution: expected a power of two",
                                                            TRAIN_HELP]),
    "--pin without its limit": _train("--pin", "kimg", expect=["--pin kimg: pins the budget to --kimg",
                                                              "add --kimg N or drop --pin"]),
    "unknown protocol": _train("--protocol", "fidd5k_full", expect=["--protocol fidd5k_full: unknown metric",
                                                                    "did you mean"]),
    "--protocol none and another": _train("--protocol", "none", "--protocol", "fid50_full_clean",
                                          expect=["--protocol none: means no metrics", "pass it alone"]),
    "unknown detector": _train("--detector", "inceptoin", expect=["--detector inceptoin: "]),
    "--eval-at 0": _train("--eval-at", "0,1", expect=["argument --eval-at: expected comma-separated numbers in (0, 1]",
                                                      TRAIN_HELP]),
    "--kimg negative": _train("--kimg", "-1", expect=["argument --kimg: expected a number > 0", TRAIN_HELP]),
    "--seed beyond 2**32": _train("--seed", str(2**40), expect=["seed must be an integer from 0 to 2**32 - 1"]),
    "--data missing": lambda ctx: Case(["train", "--model", "baseline", "--resolution", "32", "--iters", "2"],
                                       ["the following arguments are required: --data", TRAIN_HELP]),
    "--out a file": lambda ctx: _train("--out", str(write(ctx.tmp / "f", b"x")), expect=["--out", "is a file"])(ctx),
}  # fmt: skip

SCORE: dict[str, Builder] = {
    "eval without a source": lambda ctx: Case(["eval"], ["one of the arguments --run --network --folder is required",
                                                         EVAL_HELP]),
    "--folder and --network": _eval("--folder", "{images}", "--network", "{images}", expect=["not allowed with"]),
    "--folder without a reference": _eval("--folder", "{images}", "--detector", "effnet-lite0",
                                          expect=["give the reference as --data DATASET or --ref-folder DIR"]),
    "--folder of 12 px images": lambda ctx: Case(
        ["eval", "--folder", str(ctx.folder({"a.png": png(), "b.png": png()})), "--data", "shapes", "--out",
         str(ctx.out)], ["its images are 12x12 px; pass --resolution PX"]),
    "--folder missing": lambda ctx: Case(["eval", "--folder", str(ctx.tmp / "nothing"), "--data", "shapes"],
                                         ["--folder", "nothing: not a folder; pass a folder of images"]),
    "--folder without images": lambda ctx: Case(
        ["eval", "--folder", str(ctx.folder({"notes.txt": b"x"})), "--data", "shapes", "--out", str(ctx.out)],
        ["--folder", "no image files in it"]),
    "--folder with a broken image": lambda ctx: Case(
        ["eval", "--folder", str(ctx.folder({"a.png": png((32, 32)), "b.png": b"not a png"})), "--data", "shapes",
         "--resolution", "32", "--detector", "effnet-lite0", "--out", str(ctx.out)],
        ["--folder", "unreadable or non-image file(s)", "b.png"]),
    "--ref-folder missing": lambda ctx: _eval("--folder", "{images}", "--ref-folder", str(ctx.tmp / "none"),
                                              expect=["--ref-folder", "none: not a folder"])(ctx),
    "--data with --run": _eval("--run", "{run}", "--data", "shapes", expect=["--data: only with --network or --folder"],
                               folder=False),
    "--checkpoint with --folder": _eval("--folder", "{images}", "--data", "shapes", "--checkpoint", "latest",
                                        expect=["--checkpoint: only with --run"]),
    "--resolution with --network": _eval("--network", "{run}", "--resolution", "32",
                                         expect=["--resolution: only with --folder"], folder=False),
    "--network missing": lambda ctx: Case(["eval", "--network", str(ctx.tmp / "g.pt")],
                                          ["--network", "g.pt: no such file or folder"]),
    "--network a folder not a run": _eval("--network", "{images}", expect=["a folder but not a run folder"]),
    "--network a pickle payload": _network_file(lambda m: HEADER | {"model": Payload(m)},
                                                ["g.pt: not a snapshot of this harness (UnpicklingError"]),
    "--network a snapshot without its spec": _network_file(
        HEADER | {"model": {}}, ["a snapshot without its run's spec", "pass its run folder"]),
    "--network a snapshot with a bad spec": _network_file(HEADER | {"model": {}, "spec": {"model": "baseline"}},
                                                          ["g.pt: its spec is not a run spec (TypeError"]),
    "--network a snapshot of another model": _network_file(
        HEADER | {"model": {}, "spec": {"suite": "x", "model": "fastgan", "dataset": "shapes", "resolution": 32}},
        ["checkpoint is for model 'baseline' at 32 px, not 'fastgan'"]),
    "--save a folder": lambda ctx: _eval("--folder", "{images}", "--data", "shapes", "--save", str(ctx.tmp),
                                         expect=["--save", "a folder; pass a file name"])(ctx),
    "--save unwritable": _eval("--folder", "{images}", "--data", "shapes", "--save", str(UNWRITABLE / "s.json"),
                               expect=["--save", "pass a writable --save"]),
    "--folder, unknown protocol": _eval("--folder", "{images}", "--data", "shapes", "--protocol", "fid5k",
                                        expect=["unknown metric 'fid5k'"]),
}  # fmt: skip

RUNS_WITHOUT_A_SUITE: dict[str, Builder] = {
    "status without --suite or --run": lambda ctx: Case(["status", "--out", str(ctx.out)],
                                                        ["status: give --suite NAME", "or --run DIR"]),
    "status --suite train, no train runs": lambda ctx: Case(["status", "--suite", "train", "--out", str(ctx.out)],
                                                            ["--suite train: no runs in", "run_bench.py train --data"]),
    "status --run, not a run folder": lambda ctx: Case(["status", "--run", str(ctx.tmp)],
                                                       ["--run", "not a run folder (no spec.json)"]),
    "status --run, a renamed run folder": lambda ctx: Case(
        ["status", "--run", str(ctx.copy_trained().rename(ctx.tmp / "elsewhere"))],
        ["its spec.json is run tiny/baseline-shapes-32", "restore the folder's name"]),
    "run --suite train --detector": lambda ctx: Case(
        ["run", "--suite", "train", "--detector", "effnet-lite0", "--out", str(ctx.out)],
        ["--detector: the runs of --suite train keep the settings they were made with; drop it"]),
    "run --suite train --seeds": lambda ctx: Case(
        ["run", "--suite", "train", "--seeds", "1", "--out", str(ctx.out)],
        ["--seeds: the runs of --suite train keep the settings they were made with; drop it"]),
}  # fmt: skip


def _plugin(text: str | None, *expect: str, code: int = 2, name: str = "plug.py") -> Builder:
    """``train --dry-run`` with ``--plugin`` a file holding ``text`` (None: a missing module named ``name``)."""

    def build(ctx: Ctx) -> Case:
        spec = str(write(ctx.tmp / name, text.encode())) if text is not None else name
        case = _train("--plugin", spec, "--dry-run", expect=list(expect))(ctx)
        return Case(case.argv, case.expect, code=code, allow_new=["__pycache__", "__pycache__/*"])  # its bytecode

    return build


PLUGINS: dict[str, Builder] = {
    "--plugin of a missing module": _plugin(None, "--plugin no_such_mod_xyz: no module named 'no_such_mod_xyz'",
                                            name="no_such_mod_xyz"),
    "--plugin of a missing file": _plugin(None, "--plugin /", "missing.py: no such .py file", name="missing.py"),
    "--plugin that raises": _plugin("raise RuntimeError('boom')\n", "importing it failed (RuntimeError: boom)"),
    "--plugin registering a taken name": _plugin(
        "from models import register_model\nregister_model('fastgan')(lambda resolution: None)\n",
        "model name 'fastgan' is already registered"),
    "--plugin registering nothing": _plugin("X = 1\n", "registered no model", code=0),
}  # fmt: skip

CASES: dict[str, dict[str, Builder]] = {
    "train": TRAIN,
    "score": SCORE,
    "runs without a suite": RUNS_WITHOUT_A_SUITE,
    "plugins": PLUGINS,
}
