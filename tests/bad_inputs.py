"""The table of bad inputs that tests/test_bad_input.py feeds to the CLI: each case builds its
files in a fresh folder and returns the argv, with what the one error line must say."""

from __future__ import annotations

import errno
import io
import os
import shutil
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from conftest import TINY_SUITE
from PIL import Image

from bench.plan.suites import load_suite
from bench.results.runs import RunPaths


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


SEE_HELP = "see `run_bench.py run --help`"
MODELS_TABLE = '[models.baseline]\nlabel = "Baseline"\nkwargs = { recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }\n'


@dataclass
class Case:
    """Command-line arguments and what the error line must contain (file/key, then the fix)."""

    argv: list[str]
    expect: list[str]
    allow_new: list[str] = field(default_factory=list)  # globs (relative) of complete files a started cell may add


@dataclass
class Ctx:
    tmp: Path
    trained: Path  # results folder of a finished 2-iteration tiny run (with its dataset cache)

    @property
    def out(self) -> Path:
        return self.tmp / "results"

    def suite(self, *edits: tuple[str, str], name: str = "tiny", add: str = "") -> Path:
        """A tiny suite file with text replacements (each must apply) and extra lines at the end."""
        text = TINY_SUITE.format(name=name, iters=2, protocols="[]")
        for old, new in edits:
            assert old in text, old
            text = text.replace(old, new)
        path = self.tmp / f"{name}.toml"
        path.write_text(text + add)
        return path

    def run(self, *edits: tuple[str, str], add: str = "", extra: tuple[str, ...] = ()) -> list[str]:
        return ["run", "--suite", str(self.suite(*edits, add=add)), "--out", str(self.out), "--no-progress", *extra]

    def folder(self, files: dict[str, bytes]) -> Path:
        root = self.tmp / "images"
        root.mkdir(exist_ok=True)
        for name, payload in files.items():
            (root / name).write_bytes(payload)
        return root

    def copy_trained(self) -> Path:
        """The trained run copied into this case's results folder; returns its run folder."""
        shutil.copytree(self.trained, self.out)
        return next((self.out / "runs").glob("*/*/"))


def _png(size: tuple[int, int] = (12, 12), colour: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels but holds no image data (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, payload in members.items():
            zf.writestr(zipfile.ZipInfo(name), payload, compress_type=method)
    return path


def _tar(path: Path, special: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("obama/a.png")
        payload = _png()
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
        tf.addfile(special)
    return path


def _noise_tar(path: Path) -> Path:
    """A .tar.gz of one incompressible image (so that cutting it short cuts the image)."""
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 80).convert("RGB").save(buf, "PNG")
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("obama/noise.png")
        info.size = len(buf.getvalue())
        tf.addfile(info, io.BytesIO(buf.getvalue()))
    return path


def _prepare(ctx: Ctx, src: Path | str, *extra: str) -> list[str]:
    return ["prepare", "--dataset", "obama", "--src", str(src), "--out", str(ctx.out), *extra]


def _foreign_checkpoint(ctx: Ctx, model: str, resolution: int) -> list[str]:
    """A run folder whose only checkpoint belongs to another model or resolution."""
    argv = ctx.run()
    shutil.copytree(ctx.trained / "cache", ctx.out / "cache")
    spec = load_suite(argv[2]).cells[0].spec
    paths = RunPaths.of(ctx.out, spec)
    paths.checkpoints.mkdir(parents=True)
    torch.save(
        {"format": 1, "model_name": model, "resolution": resolution, "step": 1}, paths.checkpoints / "ckpt-00000001.pt"
    )
    return argv


def _snapshot_of(ctx: Ctx, resolution: int) -> list[str]:
    run = ctx.copy_trained()
    snap = sorted((run / "snapshots").glob("*.pt"))[-1]
    state = torch.load(snap, weights_only=True)
    torch.save(state | {"resolution": resolution}, snap)
    return ["eval", "--run", str(run), "--checkpoint", snap.name, "--out", str(ctx.out)]


def _truncated_snapshot(ctx: Ctx) -> list[str]:
    run = ctx.copy_trained()
    snap = sorted((run / "snapshots").glob("*.pt"))[-1]
    snap.write_bytes(snap.read_bytes()[:200])
    return ["eval", "--run", str(run), "--checkpoint", snap.name, "--out", str(ctx.out)]


def _not_writable(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    ctx.out.mkdir()
    ctx.out.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permission bits: answer as the kernel answers everyone else
        real = tempfile.TemporaryFile

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == ctx.out:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    return ctx.run()


def _finetune_suite(ctx: Ctx) -> list[str]:
    """A suite whose model needs --init-from, given a checkpoint that does not exist."""
    text = TINY_SUITE.format(name="tiny", iters=2, protocols="[]").split("[models.baseline]")[0]
    path = _write(ctx.tmp / "ft.toml", (text + '[models.stylegan2-lite-finetune]\nneeds = "init_from"\n').encode())
    return ["run", "--suite", str(path), "--out", str(ctx.out), "--init-from", str(ctx.tmp / "missing-ckpt.pt")]


def _tar_with(kind: bytes) -> Callable[[Ctx], list[str]]:
    def build(ctx: Ctx) -> list[str]:
        info = tarfile.TarInfo("obama/zz.png")
        info.type = kind
        info.linkname = "/etc/passwd"
        return _prepare(ctx, _tar(ctx.tmp / "obama.tar.gz", info))

    return build


SUITE_CASES: dict[str, tuple[tuple[tuple[str, str], ...], str, list[str]]] = {
    # name: (text edits, extra text, expected substrings)
    "malformed TOML": ((("[budget]", "[budget"),), "", ["tiny.toml: malformed TOML", "fix the syntax"]),
    "unknown table": ((), "[sweeep]\nx = 1\n", ["sweeep: unknown table", "allowed: suite"]),
    "unknown key": ((("resolution = 32", "resolutoin = 32"),), "", ["suite.resolutoin: unknown key", "allowed:"]),
    "wrong type (string for int)": (
        (("resolution = 32", 'resolution = "32"'),),
        "",
        ["suite.resolution: expected int"],
    ),
    "wrong type (bool for int)": ((("max_iters = 2", "max_iters = true"),), "", ["budget.max_iters: expected int"]),
    "table expected": (
        (("[suite]", "budget = 2\n[suite]"), ("[budget]\nmax_iters = 2\n", "")),
        "",
        ["budget: expected a table ([budget])"],
    ),
    "missing suite.name": ((('name = "tiny"', ""),), "", ["suite.name: missing (required)"]),
    "missing datasets": ((('datasets = ["shapes"]', ""),), "", ["suite.datasets: missing (required)"]),
    "empty datasets": ((('datasets = ["shapes"]', "datasets = []"),), "", ["suite.datasets: empty; list at least one"]),
    "no models": (((MODELS_TABLE, ""),), "", ["models: no [models.<name>] table; add at least one"]),
    "zero budget": (
        (("max_iters = 2", "max_iters = 0"),),
        "",
        ["budget.max_iters: must be a finite number > 0, got 0"],
    ),
    "negative budget": ((("max_iters = 2", "max_iters = -5"),), "", ["budget.max_iters: must be a finite number > 0"]),
    "negative hours": ((("max_iters = 2", "hours = -1.5"),), "", ["budget.hours: must be a finite number > 0"]),
    "NaN hours": ((("max_iters = 2", "hours = nan"),), "", ["budget.hours: must be a finite number > 0, got nan"]),
    "no budget at all": ((("max_iters = 2", ""),), "", ["models.baseline: no budget; set budget.hours or max_iters"]),
    "unknown model": (
        (("[models.baseline]", "[models.fastgam]"),),
        "",
        ["models.fastgam: unknown model", "did you mean"],
    ),
    "unknown dataset": (
        (('["shapes"]', '["shapez"]'),),
        "",
        ["suite.datasets[0]: unknown dataset 'shapez'", "did you mean"],
    ),
    "unknown protocol": (
        (("protocols = []", 'protocols = ["fid5k"]'),),
        "",
        ["eval.protocols[0]: unknown metric", "did you mean"],
    ),
    "unknown detector": ((('"inception-random"', '"inceptoin"'),), "", ["eval.detector:", "inception"]),
    "fraction out of range": ((("[0.5, 1.0]", "[0.0, 1.5]"),), "", ["eval.fractions: expected numbers in (0, 1]"]),
    "resolution not allowed": ((("resolution = 32", "resolution = 48"),), "", ["suite.resolution: 48 not one of"]),
    "negative seed": (
        (("seeds = [0]", "seeds = [-1]"),),
        "",
        ["suite.seeds: expected a list of non-negative integers"],
    ),
    "suite name escapes the results folder": (
        (('name = "tiny"', 'name = "../../etc"'),),
        "",
        ["suite.name: '../../etc'", "use letters"],
    ),
    "missing include": (
        (('name = "tiny"', 'name = "tiny"\ninclude = ["base.toml"]'),),
        "",
        ["suite.include:", "base.toml: cannot read", "fix the path"],
    ),
    "unknown model kwarg": (
        (("ngf = 4", "ngff = 4"),),
        "",
        ["models.baseline.kwargs:", "'ngff'", "fix models.baseline.kwargs"],
    ),
    "wrong kwarg value": ((('recon = "mse"', 'recon = "ssim"'),), "", ["models.baseline.kwargs: recon must be one of"]),
    "unknown accelerator": (
        (("max_iters = 2", 'max_iters = 2\naccelerator = "tpu"'),),
        "",
        ["tiny.toml: budget.accelerator: 'tpu' not one of 'none', 'gpu'"],
    ),
}


def _suite_case(edits: tuple[tuple[str, str], ...], add: str, expect: list[str]) -> Callable[[Ctx], Case]:
    return lambda ctx: Case(ctx.run(*edits, add=add), expect)


CASES: dict[str, Callable[..., Case]] = {name: _suite_case(*spec) for name, spec in SUITE_CASES.items()} | {
    # command line
    "unknown suite name": lambda ctx: Case(
        ["--suite", "fewshot265", "--out", str(ctx.out)], ["unknown suite 'fewshot265'", "did you mean fewshot256"]
    ),
    "suite file missing": lambda ctx: Case(
        ["--suite", str(ctx.tmp / "nope.toml"), "--out", str(ctx.out)],
        ["nope.toml does not exist", "pass an existing .toml"],
    ),
    "suite file not UTF-8": lambda ctx: Case(
        ["--suite", str(_write(ctx.tmp / "bin.toml", b"\xff\xfe\x00\x81")), "--out", str(ctx.out)],
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
    "--out is a file": lambda ctx: Case(
        ["--suite", str(ctx.suite()), "--out", str(_write(ctx.tmp / "file", b"x"))],
        ["is a file, not a folder", "pass a folder for --out"],
    ),
    "--out not writable": lambda ctx, mp: Case(
        _not_writable(ctx, mp), ["folder is not writable", "pass a writable --out"]
    ),
    "--init-from missing": lambda ctx: Case(
        _finetune_suite(ctx),
        ["models.stylegan2-lite-finetune.kwargs: init_from=", "no such checkpoint file; fix --init-from"],
    ),
    "eval of a non-run folder": lambda ctx: Case(
        ["eval", "--run", str(ctx.tmp), "--out", str(ctx.out)], ["not a run folder (no spec.json)", "see results/runs/"]
    ),
    # datasets
    "folder dataset missing": lambda ctx: Case(
        ctx.run(('["shapes"]', f'["folder:{ctx.tmp / "nothing"}"]')),
        ["nothing is not a folder; fix the path after folder:"],
    ),
    "empty folder dataset": lambda ctx: Case(
        ctx.run(('["shapes"]', f'["folder:{ctx.folder({"notes.txt": b"hi"})}"]')),
        ["no image files in", "add images or fix the path"],
    ),
    "one-image dataset": lambda ctx: Case(
        ctx.run(('["shapes"]', f'["folder:{ctx.folder({"a.png": _png()})}"]')),
        ["has 1 image; a GAN needs at least 2: add images"],
        allow_new=["results/cache/datasets/*"],
    ),
    "non-image file": lambda ctx: Case(
        ctx.run(('["shapes"]', f'["folder:{ctx.folder({"a.png": _png(), "b.png": _png(), "c.jpg": b"<html>"})}"]')),
        ["c.jpg (", "fix or remove them"],
    ),
    "zero-byte image": lambda ctx: Case(
        ctx.run(('["shapes"]', f'["folder:{ctx.folder({"a.png": _png(), "b.png": _png(), "t.png": b""})}"]')),
        ["t.png (", "fix or remove them"],
    ),
    "huge image": lambda ctx: Case(
        ctx.run(('["shapes"]', f'["folder:{ctx.folder({"a.png": _png(), "big.png": _png_header(12000, 12000)})}"]')),
        ["big.png (12000x12000 exceeds the 100 megapixel limit)", "fix or remove them"],
    ),
    "prepare: unknown dataset": lambda ctx: Case(
        ["prepare", "--dataset", "obamma", "--src", str(ctx.tmp), "--out", str(ctx.out)],
        ["unknown paper dataset 'obamma'", "did you mean 'obama'"],
    ),
    "prepare: no --src": lambda ctx: Case(
        ["prepare", "--dataset", "obama", "--out", str(ctx.out)], ["give --src PATH", "or --download"]
    ),
    "prepare: --src missing": lambda ctx: Case(
        _prepare(ctx, ctx.tmp / "obama.zip"), ["obama.zip does not exist", "pass its path"]
    ),
    "prepare: --src and --download": lambda ctx: Case(
        _prepare(ctx, ctx.tmp, "--download"), ["either --src or --download"]
    ),
    "prepare: bad --resolution": lambda ctx: Case(
        _prepare(ctx, ctx.tmp, "--resolution", "-5"), ["argument --resolution: expected a power of two", "--help"]
    ),
    "prepare: not an archive": lambda ctx: Case(
        _prepare(ctx, _write(ctx.tmp / "obama.bin", b"\0" * 64)),
        ["obama.bin is not a folder, zip or tar archive", "pass the downloaded"],
    ),
    "prepare: truncated archive": lambda ctx: Case(
        _prepare(ctx, _write(ctx.tmp / "o.tar.gz", _noise_tar(ctx.tmp / "full.tar.gz").read_bytes()[:3000])),
        ["cannot extract", "o.tar.gz", "download it again"],
    ),
    "prepare: path traversal": lambda ctx: Case(
        _prepare(ctx, _zip(ctx.tmp / "o.zip", {"../../evil.png": _png()})),
        ["member '../../evil.png' points outside", "use a trusted copy"],
    ),
    "prepare: absolute path": lambda ctx: Case(
        _prepare(ctx, _zip(ctx.tmp / "o.zip", {"/tmp/evil.png": _png()})),
        ["member '/tmp/evil.png' has an absolute path", "use a trusted copy"],
    ),
    "prepare: symlink": lambda ctx: Case(
        _tar_with(tarfile.SYMTYPE)(ctx), ["member 'obama/zz.png' is a link", "trusted copy"]
    ),
    "prepare: device file": lambda ctx: Case(
        _tar_with(tarfile.CHRTYPE)(ctx), ["'obama/zz.png' is a device", "trusted copy"]
    ),
    "prepare: zip bomb": lambda ctx: Case(
        _prepare(ctx, _zip(ctx.tmp / "o.zip", {"obama/bomb.bmp": bytes(17 * 2**20)}, zipfile.ZIP_DEFLATED)),
        ["member 'obama/bomb.bmp' expands", "decompression bomb", "use a trusted copy"],
    ),
    # checkpoints
    "checkpoint of another model": lambda ctx: Case(
        _foreign_checkpoint(ctx, "fastgan", 32),
        ["ckpt-00000001.pt: checkpoint is for model 'fastgan' at 32 px", "move it away or use the matching run"],
        allow_new=["results/cache/datasets/*", "results/runs/tiny/*/*"],
    ),
    "checkpoint of another resolution": lambda ctx: Case(
        _foreign_checkpoint(ctx, "baseline", 64),
        ["checkpoint is for model 'baseline' at 64 px, not 'baseline' at 32 px", "move it away"],
        allow_new=["results/cache/datasets/*", "results/runs/tiny/*/*"],
    ),
    "snapshot of another resolution": lambda ctx: Case(
        _snapshot_of(ctx, 64), ["at 64 px, not 'baseline' at 32 px", "move it away"]
    ),
    "truncated snapshot": lambda ctx: Case(_truncated_snapshot(ctx), ["unreadable snapshot", "pick another"]),
    "unknown snapshot": lambda ctx: Case(
        ["eval", "--run", str(ctx.copy_trained()), "--checkpoint", "snap-9.pt", "--out", str(ctx.out)],
        ["--checkpoint snap-9.pt: not a snapshot of", "choose from snap-"],
    ),
}
