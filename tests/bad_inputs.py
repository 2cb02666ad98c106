"""What the bad-input cases share: a :class:`Case` (the command line and what must come of it), the
:class:`Ctx` each case builds its files in, and small file builders. The cases themselves, grouped
by kind, are in ``bad_cases_*.py``; tests/test_bad_input.py feeds every one to the real CLI."""

from __future__ import annotations

import io
import os
import shutil
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from conftest import TINY_SUITE
from PIL import Image

from bench.plan.suites import load_suite
from bench.results.runs import RunPaths

# KID on 8 generated images against an 8-image folder: a real evaluation that takes a second on a CPU.
# Registered in the zygote only (clirun.Zygote's preamble), which runs the suite it appears in.
TEST_PROTOCOL = "kid8_full"
TEST_PR_PROTOCOL = "pr8_full"  # precision/recall on 8 images (k = 3), likewise
REGISTER = (
    f"from bench.metrics.protocols import register_protocol; register_protocol({TEST_PROTOCOL!r}, 'kid', 8); "
    f"register_protocol({TEST_PR_PROTOCOL!r}, 'pr', 8)"
)
PROTOCOLS_LINE = "protocols = []"

SEE_HELP = "see `run_bench.py run --help`"
MODELS_TABLE = '[models.baseline]\nlabel = "Baseline"\nkwargs = { recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }\n'
UNWRITABLE = Path("/sys/fewshot-bench-test")  # sysfs refuses new entries to everyone, root included


@dataclass
class Case:
    """Command-line arguments and what must come of them.

    Bad input (``code`` 2): one stderr line ``error: ...`` holding every ``expect`` substring (the file
    or key, then the fix), at most ``warning:`` lines after it, no traceback, the case's folder
    unchanged except for complete files matching ``allow_new``. Input the harness goes on with
    (``code`` 0, e.g. ``status`` past an unreadable run folder): no ``error:`` line, no traceback;
    ``expect`` then holds substrings of stdout + stderr.
    """

    argv: list[str]
    expect: list[str]
    allow_new: list[str] = field(default_factory=list)  # globs (relative to the case folder)
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)  # added to the command's environment
    marker: Path | None = None  # a pickle payload writes this file if it ever runs
    warns: list[str] = field(default_factory=list)  # substrings of warning lines printed after the error
    after: Callable[[], None] | None = None  # more checks once the command finished
    timeout: float = 120.0  # a hang past this is a failure


@dataclass
class Ctx:
    """A fresh folder per case, and finished runs to copy from."""

    tmp: Path
    trained: Path  # results folder of a finished 2-iteration tiny run (snapshots at steps 1, 2; its dataset cache)
    stopped: Path  # results folder of a 4-iteration tiny run stopped at step 2 (checkpoint ckpt-2, state todo)
    evaluated: Path  # a finished tiny run on an 8-image folder scored with kid8_full: tiny.toml, images/, results/

    @property
    def out(self) -> Path:
        return self.tmp / "results"

    def suite(self, *edits: tuple[str, str], name: str = "tiny", add: str = "", iters: int = 2) -> Path:
        """A tiny suite file with text replacements (each must apply) and extra lines at the end."""
        text = TINY_SUITE.format(name=name, iters=iters, protocols="[]")
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

    def copy_evaluated(self) -> list[str]:
        """The evaluated run copied here (its suite names the fixture's image folder); ``--suite S --out O``."""
        shutil.copytree(self.evaluated / "results", self.out)
        suite = write(self.tmp / "tiny.toml", (self.evaluated / "tiny.toml").read_bytes())
        return ["--suite", str(suite), "--out", str(self.out)]

    def copy_stopped(self) -> tuple[list[str], RunPaths]:
        """The stopped run copied here; the ``run`` command that resumes it and its paths."""
        shutil.copytree(self.stopped, self.out)
        argv = ["run", "--suite", str(self.suite(iters=4)), "--out", str(self.out), "--no-progress"]
        return argv, RunPaths.of(self.out, load_suite(argv[2]).cells[0].spec)

    def cells_paths(self, argv: list[str]) -> RunPaths:
        """The run folder of the first cell of ``argv``'s suite under this case's results folder."""
        return RunPaths.of(self.out, load_suite(argv[argv.index("--suite") + 1]).cells[0].spec)

    def fifo(self, name: str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        return path

    def sparse(self, name: str, size: int) -> Path:
        """A file of ``size`` bytes that takes no disk space."""
        path = self.tmp / name
        with open(path, "wb") as f:
            f.truncate(size)
        return path


class Payload:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def save(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def png(size: tuple[int, int] = (12, 12), colour: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def noise_png(size: int = 64) -> bytes:
    """An incompressible PNG (so that cutting an archive short cuts the image)."""
    buf = io.BytesIO()
    Image.effect_noise((size, size), 80).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels but holds no image data (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")


def zip_of(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, payload in members.items():
            zf.writestr(zipfile.ZipInfo(name), payload, compress_type=method)
    return path


def tar_bytes(members: dict[str, bytes], special: tarfile.TarInfo | None = None) -> bytes:
    """An uncompressed tar of ``members`` (and one special member)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
        if special is not None:
            tf.addfile(special)
    return buf.getvalue()


def prepare(ctx: Ctx, src: Path | str, *extra: str) -> list[str]:
    return ["prepare", "--dataset", "obama", "--src", str(src), "--out", str(ctx.out), *extra]


Builder = Callable[[Ctx], Case]


def suite_case(expect: list[str], *edits: tuple[str, str], add: str = "", extra: tuple[str, ...] = ()) -> Builder:
    """``run`` of the tiny suite with text ``edits`` and ``add``ed lines."""
    return lambda ctx: Case(ctx.run(*edits, add=add, extra=extra), expect)
