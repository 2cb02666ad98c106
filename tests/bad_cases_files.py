"""Bad files the harness reads or writes: kinds ``security`` (pickle payloads, which must never run),
``hangs and memory`` (FIFOs, devices, huge files, loops), ``run folders`` (an unreadable spec or
state in one run), ``writability`` (every writing command) and ``detectors`` (files that are not
TorchScript)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from bad_inputs import PROTOCOLS_LINE, UNWRITABLE, Builder, Case, Ctx, Payload, png, save, suite_case, write

FID = (PROTOCOLS_LINE, 'protocols = ["fid200_full_clean"]')
RUN_NEW = ["results/runs/tiny/*/*", "results/runs/tiny/*/*/*", "results/cache/datasets/*"]  # a resumed run's files


# ---------------------------------------------------------------------------------------------- security


def _job_with_result_payload(ctx: Ctx, launcher: str) -> Path:
    """A run whose job record points at a result pickle that runs code (the state says the job never reported)."""
    run = ctx.copy_trained()
    folder = ctx.out / "runs" / "tiny" / ".submitit" / launcher
    marker = ctx.tmp / "payload-ran"
    write(folder / "4242_0_0_result.pkl", pickle.dumps(("error", Payload(marker))))
    row = {"launcher": launcher, "job_id": "4242_0", "folder": str(folder), "submitted": 0.0}
    write(run / "jobs" / "jobs.jsonl", (json.dumps(row) + "\n").encode())
    write(run / "state.json", b'{"status": "running"}')  # stale: no live lock
    return marker


def _result_payload(command: list[str], launcher: str = "slurm", expect: str = "") -> Builder:
    def build(ctx: Ctx) -> Case:
        marker = _job_with_result_payload(ctx, launcher)
        argv = [*command, "--suite", str(ctx.suite()), "--out", str(ctx.out)]
        return Case(argv, [expect or "4242_0"], code=0, marker=marker)

    return build


def _payload_snapshot(ctx: Ctx) -> tuple[Path, Path]:
    run = ctx.copy_trained()
    marker = ctx.tmp / "payload-ran"
    save(run / "snapshots" / "snap-00000009.pt", {"model_name": "baseline", "resolution": 32, "step": 9,
                                                   "model": Payload(marker)})  # fmt: skip
    return run, marker


def _payload_eval(ctx: Ctx) -> Case:
    run, marker = _payload_snapshot(ctx)
    argv = ["eval", "--run", str(run), "--checkpoint", "snap-00000009.pt", "--protocol", "fid200_full_clean"]
    argv += ["--out", str(ctx.out)]
    return Case(argv, ["snap-00000009.pt: unreadable snapshot (UnpicklingError", "pick another"], marker=marker)


def _payload_generate(ctx: Ctx) -> Case:
    run, marker = _payload_snapshot(ctx)
    argv = ["generate", "--run", str(run), "--outdir", str(ctx.tmp / "png"), "--protocol", "fid200_full_clean"]
    return Case(argv, ["snap-00000009.pt: unreadable snapshot (UnpicklingError"], marker=marker)


def _payload_checkpoint(ctx: Ctx) -> Case:
    argv, paths = ctx.copy_stopped()
    marker = ctx.tmp / "payload-ran"
    save(paths.checkpoints / "ckpt-00000003.pt", {"model_name": "baseline", "resolution": 32, "step": 3,
                                                   "model": Payload(marker)})  # fmt: skip
    return Case(argv, ["cells: 1 done"], code=0, marker=marker, allow_new=RUN_NEW)


def _payload_init_from(ctx: Ctx) -> Case:
    marker = ctx.tmp / "payload-ran"
    evil = save(ctx.tmp / "evil.pt", {"model": Payload(marker)})
    return Case(_finetune(ctx, evil), ["init_from=", "cannot read checkpoint (UnpicklingError"], marker=marker)


def _payload_official(ctx: Ctx) -> Case:
    marker = ctx.tmp / "payload-ran"
    evil = save(ctx.tmp / "all_5.pth", {"g": Payload(marker), "d": {}})
    argv = ["import-official", str(evil), "--dataset", "shapes", "--resolution", "32", "--out", str(ctx.out)]
    return Case(argv, ["all_5.pth: not a readable torch checkpoint (UnpicklingError)"], marker=marker)


def _payload_dataset_cache(ctx: Ctx) -> Case:
    marker = ctx.tmp / "payload-ran"
    ctx.copy_trained()
    save(ctx.out / "cache" / "datasets" / "shapes-32.pt", {"images": Payload(marker)})
    argv = ctx.run(("max_iters = 2", "max_iters = 3"))
    return Case(argv, ["cells: 1 done"], code=0, marker=marker, allow_new=RUN_NEW)


def _finetune(ctx: Ctx, init_from: Path) -> list[str]:
    """A suite whose model needs --init-from, given ``init_from``."""
    text = ctx.suite().read_text().split("[models.baseline]")[0]
    path = write(ctx.tmp / "ft.toml", (text + '[models.stylegan2-lite-finetune]\nneeds = "init_from"\n').encode())
    return ["run", "--suite", str(path), "--out", str(ctx.out), "--init-from", str(init_from)]


SECURITY: dict[str, Builder] = {
    "status with a result pickle of a SLURM job": _result_payload(["status"]),
    "status with a result pickle of a submitit-local job": _result_payload(["status"], "submitit-local"),
    "run --launcher slurm --dry-run with a result pickle": _result_payload(
        ["run", "--launcher", "slurm", "--dry-run"], expect="cells to submit"
    ),
    "cancel with a result pickle": _result_payload(["cancel"], expect="cancelled 0 job(s)"),
    "eval of a pickle payload snapshot": _payload_eval,
    "generate from a pickle payload snapshot": _payload_generate,
    "resume past a pickle payload checkpoint": _payload_checkpoint,
    "--init-from a pickle payload": _payload_init_from,
    "import-official of a pickle payload": _payload_official,
    "dataset cache holding a pickle payload": _payload_dataset_cache,
}

# ---------------------------------------------------------------------------------------------- hangs and memory


def _include(target: str) -> Builder:
    return suite_case(
        ["suite.include:", target, "not a regular file"], ('name = "tiny"', f'name = "tiny"\ninclude = ["{target}"]')
    )


def _include_fifo(ctx: Ctx) -> Case:
    ctx.fifo("fifo.toml")
    return _include("fifo.toml")(ctx)


def _include_huge(ctx: Ctx) -> Case:
    ctx.sparse("huge.toml", 64 * 2**20)
    argv = ctx.run(('name = "tiny"', 'name = "tiny"\ninclude = ["huge.toml"]'))
    return Case(argv, ["huge.toml: is larger than 16 MiB"])


def _calibration_file(make: str) -> Builder:
    def build(ctx: Ctx) -> Case:
        path = {"fifo": lambda: ctx.fifo("cal.json"), "huge": lambda: ctx.sparse("cal.json", 2**30)}.get(
            make, lambda: Path(make)
        )()
        why = {"fifo": "is a FIFO", "huge": "is larger than 16 MiB"}.get(make, "is a character device")
        return Case(ctx.run(extra=("--calibration", str(path))), [f"--calibration {path}: {why}"])

    return build


def _suite_fifo(ctx: Ctx) -> Case:
    return Case(["--suite", str(ctx.fifo("s.toml")), "--out", str(ctx.out)], ["s.toml: is a FIFO, not a regular file"])


def _suite_device(ctx: Ctx) -> Case:
    link = ctx.tmp / "zero.toml"
    link.symlink_to("/dev/zero")
    return Case(["--suite", str(link), "--out", str(ctx.out)], ["/dev/zero: is a character device"])


def _status_with(name: str, make: str) -> Builder:
    """``status`` of the trained suite with one file of its run replaced by a FIFO or a huge sparse file."""

    def build(ctx: Ctx) -> Case:
        run = ctx.copy_trained()
        (run / name).unlink(missing_ok=True)
        if make == "fifo":
            ctx.fifo(str((run / name).relative_to(ctx.tmp)))
        else:
            ctx.sparse(str((run / name).relative_to(ctx.tmp)), 2**30)
        expect = {"spec.json": "run skipped", "state.json": "unreadable", "evals.jsonl": "run skipped"}[name]
        return Case(["status", "--suite", str(ctx.suite()), "--out", str(ctx.out)], [expect], code=0)

    return build


def _paper_manifest_fifo(ctx: Ctx) -> Case:
    ctx.fifo("results/cache/datasets/obama-32.json")
    argv = ctx.run(('["shapes"]', '["obama"]'))
    return Case(argv, ["dataset 'obama' is not prepared", "prepare --dataset obama"])


def _events_fifo(ctx: Ctx) -> Case:
    argv, paths = ctx.copy_stopped()
    paths.events.unlink()
    ctx.fifo(str(paths.events.relative_to(ctx.tmp)))
    return Case(argv, ["events.jsonl: is not a regular file", "move it away"], allow_new=RUN_NEW)


HANGS: dict[str, Builder] = {
    "include of /dev/zero": _include("/dev/zero"),
    "include of a FIFO": _include_fifo,
    "include of a 64 MiB file": _include_huge,
    "include of a folder": _include("."),
    "suite file is a FIFO": _suite_fifo,
    "suite file is /dev/zero": _suite_device,
    "--calibration /dev/zero": _calibration_file("/dev/zero"),
    "--calibration a FIFO": _calibration_file("fifo"),
    "--calibration of 1 GiB": _calibration_file("huge"),
    "status: spec.json a FIFO": _status_with("spec.json", "fifo"),
    "status: state.json a FIFO": _status_with("state.json", "fifo"),
    "status: spec.json of 1 GiB": _status_with("spec.json", "huge"),
    "status: evals.jsonl a FIFO": _status_with("evals.jsonl", "fifo"),
    "dataset manifest a FIFO": _paper_manifest_fifo,
    "events.jsonl a FIFO on resume": _events_fifo,
    "batch_size -2": suite_case(["batch_size must be an integer >= 1, got -2"], ("batch_size = 4", "batch_size = -2")),
    "batch_size 0": suite_case(["batch_size must be an integer >= 1, got 0"], ("batch_size = 4", "batch_size = 0")),
}

# ---------------------------------------------------------------------------------------------- run folders


REPORT_FILES = ["results/tables/*", "results/plots/*"]


def _copied_run(ctx: Ctx, command: str) -> tuple[Path, list[str]]:
    """A finished run copied into the case (``report``: the evaluated one, which has rows to tabulate);
    its folder and the ``--suite S --out O`` arguments naming it."""
    if command == "report":
        base = ctx.copy_evaluated()
        return next((ctx.out / "runs").glob("*/*/")), base
    return ctx.copy_trained(), ["--suite", str(ctx.suite()), "--out", str(ctx.out)]


def _broken(name: str, data: bytes, command: str) -> Builder:
    """``status`` or ``report`` (exit 0: the run shows as unreadable or is skipped with a warning), or ``eval``
    or ``generate`` of that run (exit 2), with one of its files replaced by ``data``."""

    def build(ctx: Ctx) -> Case:
        run, base = _copied_run(ctx, command)
        write(run / name, data)
        if command in ("status", "report"):
            return Case([command, *base], [_EXPECT[name]], code=0, allow_new=REPORT_FILES)
        argv = [command, "--run", str(run), "--out", str(ctx.out)]
        if command == "generate":
            argv = ["generate", "--run", str(run), "--outdir", str(ctx.tmp / "png"), "--protocol", "fid200_full_clean"]
        return Case(argv, ["spec.json", "restore the file, or move the run folder away"])

    return build


_EXPECT = {"spec.json": "warning: UserWarning: run skipped:", "state.json": "unreadable", "evals.jsonl": "no FID"}


def _other_run_broken(command: str, data: bytes, expect: str) -> Builder:
    """``status`` or ``report`` of a healthy run beside a stray run folder whose spec.json is ``data``: the
    stray one is skipped with a warning, the healthy one still shown."""

    def build(ctx: Ctx) -> Case:
        _, base = _copied_run(ctx, command)
        write(ctx.out / "runs" / "tiny" / "stray" / "spec.json", data)
        shown = "kid8_full" if command == "report" else "| done "  # the healthy run's row
        return Case([command, *base], [expect, shown], code=0, allow_new=REPORT_FILES)

    return build


def _other_run_fifo(ctx: Ctx) -> Case:
    case = _other_run_broken("report", b"", "stray/spec.json: is a FIFO")(ctx)
    (ctx.out / "runs" / "tiny" / "stray" / "spec.json").unlink()
    ctx.fifo("results/runs/tiny/stray/spec.json")
    return case


RUN_FOLDERS: dict[str, Builder] = {
    "status: spec.json truncated": _broken("spec.json", b'{"run_id": "x", "spec": {', "status"),
    "status: spec.json a list": _broken("spec.json", b"[1, 2]", "status"),
    "status: spec.json binary": _broken("spec.json", bytes(range(256)), "status"),
    "status: spec.json nested 100000 deep": _broken("spec.json", b"[" * 100000 + b"]" * 100000, "status"),
    "status: state.json garbage": _broken("state.json", b"\x00garbage", "status"),
    "status: state.json a list": _broken("state.json", b"[]", "status"),
    "status: state.json unknown status": _broken("state.json", b'{"status": "exploded"}', "status"),
    "status: another run's spec invalid": _other_run_broken(
        "status", b'{"spec": {"seed": -1}}', "stray/spec.json: not"
    ),
    "report: another run's spec.json truncated": _other_run_broken("report", b'{"spec": ', "stray/spec.json: is not"),
    "report: another run's spec.json a FIFO": lambda ctx: _other_run_fifo(ctx),
    "report: state.json garbage": _broken("state.json", b"\xff\xfe", "report"),
    "eval: spec.json truncated": _broken("spec.json", b'{"spec": ', "eval"),
    "eval: spec.json without a spec": _broken("spec.json", b'{"run_id": "x"}', "eval"),
    "eval: spec.json with a bad seed": _broken(
        "spec.json",
        b'{"spec": {"suite": "t", "model": "baseline", "dataset": "shapes", "resolution": 32, "seed": -3}}',
        "eval",
    ),
    "generate: spec.json garbage": _broken("spec.json", b"\x00", "generate"),
    "status: evals.jsonl with a 2 MiB line": _broken("evals.jsonl", b"[" * (2 * 2**20) + b"\n", "status"),
}

# ---------------------------------------------------------------------------------------------- writability


_WHY = {"file": "is a file, not a folder", "under a file": "afile is a file, not a folder",
        "unwritable": "folder is not writable", "too long": "File name too long"}  # fmt: skip


def _target(ctx: Ctx, how: str) -> Path:
    if how == "unwritable":
        return UNWRITABLE
    if how == "too long":
        return ctx.tmp / ("n" * 300)
    afile = write(ctx.tmp / "afile", b"x")
    return afile / "sub" if how == "under a file" else afile


def _writing_argv(ctx: Ctx, command: str, run: Path, out: Path) -> list[str]:
    """``command`` writing into ``out`` (generate: ``--outdir``), with otherwise good arguments."""
    suite = ["--suite", str(ctx.suite()), "--out", str(out)]
    return {
        "run": ["run", *suite], "calibrate": ["calibrate", *suite, "--steps", "1"], "report": ["report", *suite],
        "prepare": ["prepare", "--dataset", "obama", "--src", str(ctx.folder({"a.png": png(), "b.png": png()})),
                    "--out", str(out)],
        "eval": ["eval", "--run", str(run), "--out", str(out)],
        "import-official": ["import-official", str(ctx.tmp / "all_1.pth"), "--dataset", "shapes", "--resolution",
                            "32", "--out", str(out)],
        "perf": ["perf", "--out", str(out), "--resolution", "32", "--steps", "1"],
        "generate": ["generate", "--run", str(run), "--outdir", str(out), "--num", "2"],
        "gpu-check": ["gpu-check", "--device", "cpu", "--out", str(out), "--sections", "environment"],
    }[command]  # fmt: skip


def _unwritable(command: str, how: str) -> Builder:
    """A writing command whose output folder is a file, lies under a file, cannot be written, or is misnamed."""

    def build(ctx: Ctx) -> Case:
        run, target = ctx.copy_trained(), _target(ctx, how)
        flag = "--outdir" if command == "generate" else "--out"
        return Case(_writing_argv(ctx, command, run, target), [f"{flag} {target}", _WHY[how]])

    return build


WRITABILITY: dict[str, Builder] = {
    f"{command} {'--outdir' if command == 'generate' else '--out'} {how}": _unwritable(command, how)
    for command in ("run", "calibrate", "report", "prepare", "eval", "import-official", "perf", "generate", "gpu-check")
    for how in _WHY
    if not (command == "generate" and how == "file")  # an existing --outdir is refused as such
}

# ---------------------------------------------------------------------------------------------- detectors


def _torchscript(ctx: Ctx, what: str) -> Path:
    path = ctx.tmp / "detector.pt"
    if what == "text":
        return write(path, b"not torchscript\n")
    if what == "empty":
        return write(path, b"")
    return save(path, {"weights": [1.0, 2.0]})


def _suite_detector(what: str) -> Builder:
    def build(ctx: Ctx) -> Case:
        path = _torchscript(ctx, what)
        argv = ctx.run(FID, ('"inception-random"', f'"torchscript:{path}"'))
        return Case(
            argv, ["detector torchscript:", "is not a TorchScript module", "pass a file written by torch.jit.save"]
        )

    return build


def _inception_env(what: str) -> Builder:
    def build(ctx: Ctx) -> Case:
        path = ctx.tmp / "missing.pt" if what == "missing" else _torchscript(ctx, what)
        argv = ctx.run(FID, ('"inception-random"', '"inception-v3"'))
        expect = "no such file" if what == "missing" else "is not a TorchScript module"
        return Case(argv, ["FEWSHOT_BENCH_INCEPTION", expect], env={"FEWSHOT_BENCH_INCEPTION": str(path)})

    return build


def _eval_detector(ctx: Ctx) -> Case:
    run = ctx.copy_trained()
    path = _torchscript(ctx, "state dict")
    argv = ["eval", "--run", str(run), "--protocol", "fid200_full_clean", "--detector", f"torchscript:{path}",
            "--out", str(ctx.out)]  # fmt: skip
    return Case(argv, ["is not a TorchScript module"])


def _vgg_env(ctx: Ctx) -> Case:
    path = _torchscript(ctx, "text")
    argv = ctx.run((PROTOCOLS_LINE, 'protocols = ["pr500_k3_full_clean"]'))
    return Case(argv, ["FEWSHOT_BENCH_VGG16:", "is not a TorchScript module"], env={"FEWSHOT_BENCH_VGG16": str(path)})


DETECTORS: dict[str, Builder] = {
    "torchscript: a text file": _suite_detector("text"),
    "torchscript: an empty file": _suite_detector("empty"),
    "torchscript: a state dict": _suite_detector("state dict"),
    "torchscript: a folder": suite_case(
        ["eval.detector: detector torchscript:/tmp: no such file"], FID, ('"inception-random"', '"torchscript:/tmp"')
    ),  # fmt: skip
    "FEWSHOT_BENCH_INCEPTION a text file": _inception_env("text"),
    "FEWSHOT_BENCH_INCEPTION a state dict": _inception_env("state dict"),
    "FEWSHOT_BENCH_INCEPTION missing": _inception_env("missing"),
    "FEWSHOT_BENCH_VGG16 a text file": _vgg_env,
    "eval --detector torchscript: a state dict": _eval_detector,
}

CASES: dict[str, dict[str, Builder]] = {
    "security": SECURITY,
    "hangs and memory": HANGS,
    "run folders": RUN_FOLDERS,
    "writability": WRITABILITY,
    "detectors": DETECTORS,
}
