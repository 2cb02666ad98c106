"""Bad datasets, archives and checkpoints: kinds ``datasets``, ``archives``, ``checkpoints`` (wrong
structure in run, eval, generate, --init-from and import-official; a resume falls back to the
newest valid checkpoint), ``warnings`` (printed after the error line) and ``slurm`` (no controller)."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from bad_inputs import (
    Builder,
    Case,
    Ctx,
    noise_png,
    png,
    png_header,
    prepare,
    save,
    suite_case,
    tar_bytes,
    write,
    zip_of,
)

import models
from bench.data.store import write_cache
from bench.results.io import read_jsonl

TINY_KW = {"recon": "mse", "ngf": 4, "ndf": 4, "batch_size": 4}
RUN_NEW = ["results/runs/tiny/*/*", "results/runs/tiny/*/*/*", "results/cache/datasets/*"]

# ---------------------------------------------------------------------------------------------- datasets


def _one_image_paper_set(ctx: Ctx) -> Case:
    write_cache(ctx.out / "cache" / "datasets", "obama", "obama", torch.zeros(1, 3, 32, 32, dtype=torch.uint8), {})
    return Case(ctx.run(('["shapes"]', '["obama"]')), ["dataset 'obama' has 1 image; a GAN needs at least 2"])


def _folder_dataset(files: dict[str, bytes], expect: list[str], allow: list[str] | None = None) -> Builder:
    return lambda ctx: Case(ctx.run(('["shapes"]', f'["folder:{ctx.folder(files)}"]')), expect, allow or [])


DATASETS: dict[str, Builder] = {
    "folder dataset missing": lambda ctx: Case(
        ctx.run(('["shapes"]', f'["folder:{ctx.tmp / "nothing"}"]')),
        ["nothing is not a folder; fix the path after folder:"],
    ),
    "empty folder dataset": _folder_dataset({"notes.txt": b"hi"}, ["no image files in", "add images or fix the path"]),
    "one-image dataset": _folder_dataset({"a.png": png()}, ["has 1 image; a GAN needs at least 2: add images"]),
    "non-image file": _folder_dataset(
        {"a.png": png(), "b.png": png(), "c.jpg": b"<html>"}, ["c.jpg (", "fix or remove them"]
    ),
    "zero-byte image": _folder_dataset(
        {"a.png": png(), "b.png": png(), "t.png": b""}, ["t.png (", "fix or remove them"]
    ),
    "huge image": _folder_dataset(
        {"a.png": png(), "big.png": png_header(12000, 12000)},
        ["big.png (12000x12000 exceeds the 100 megapixel limit)", "fix or remove them"],
    ),
    "paper set prepared from one image": _one_image_paper_set,
    "paper set not prepared": suite_case(
        ["dataset 'obama' is not prepared", "prepare --dataset obama"], ('["shapes"]', '["obama"]')
    ),
    "prepare: unknown dataset": lambda ctx: Case(
        ["prepare", "--dataset", "obamma", "--src", str(ctx.tmp), "--out", str(ctx.out)],
        ["unknown paper dataset 'obamma'", "did you mean 'obama'"],
    ),
    "prepare: no --src": lambda ctx: Case(
        ["prepare", "--dataset", "obama", "--out", str(ctx.out)], ["give --src PATH", "or --download"]
    ),
    "prepare: --src missing": lambda ctx: Case(
        prepare(ctx, ctx.tmp / "obama.zip"), ["obama.zip does not exist", "pass its path"]
    ),
    "prepare: --src and --download": lambda ctx: Case(
        prepare(ctx, ctx.tmp, "--download"), ["either --src or --download"]
    ),
    "prepare: bad --resolution": lambda ctx: Case(
        prepare(ctx, ctx.tmp, "--resolution", "-5"), ["argument --resolution: expected a power of two", "--help"]
    ),
    "prepare: unknown --resize-filter": lambda ctx: Case(
        prepare(ctx, ctx.tmp, "--resize-filter", "bicubic"), ["argument --resize-filter: invalid choice", "--help"]
    ),
    "prepare: --src a FIFO": lambda ctx: Case(prepare(ctx, ctx.fifo("obama.zip")), ["no image files in", "obama.zip"]),
    "prepare: an archive without images": lambda ctx: Case(
        prepare(ctx, zip_of(ctx.tmp / "o.zip", {"readme.txt": b"hello"})), ["no image files in", "o.zip"]
    ),
}

# ---------------------------------------------------------------------------------------------- archives


def _photo_tar() -> bytes:
    return tar_bytes({f"obama/{i}.png": noise_png() for i in range(3)})


def _damaged(kind: str, how: str) -> bytes:
    """A compressed tar of three incompressible images: cut in half, its header or its middle overwritten."""
    data = bytearray({"xz": lzma.compress, "bz2": bz2.compress, "gz": gzip.compress,
                      "lzma": lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE)}[kind](_photo_tar()))  # fmt: skip
    n = len(data)
    if how == "truncated":
        return bytes(data[: n // 2])
    at = 12 if how == "header" else n // 2
    data[at : at + 64] = bytes(64)
    return bytes(data)


def _archive(name: str, data: bytes, expect: list[str]) -> Builder:
    return lambda ctx: Case(prepare(ctx, write(ctx.tmp / name, data)), expect)


def _encrypted_zip(ctx: Ctx) -> Case:
    data = bytearray(zip_of(ctx.tmp / "plain.zip", {"obama/0.png": png()}).read_bytes())
    data[6] |= 1  # the general-purpose flag: encrypted, in the local header
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1  # and in the central directory
    return Case(
        prepare(ctx, write(ctx.tmp / "o.zip", bytes(data))), ["'obama/0.png' is encrypted", "with its password"]
    )


def _bad_crc_zip(ctx: Ctx) -> Case:
    data = bytearray(
        zip_of(ctx.tmp / "plain.zip", {"obama/0.png": noise_png(), "obama/1.png": noise_png()}).read_bytes()
    )
    data[100:164] = bytes(64)  # inside the first member's data
    return Case(
        prepare(ctx, write(ctx.tmp / "o.zip", bytes(data))), ["cannot extract", "damaged zip data", "download it again"]
    )


def _tar_with(kind: bytes) -> Builder:
    def build(ctx: Ctx) -> Case:
        info = tarfile.TarInfo("obama/zz.png")
        info.type = kind
        info.linkname = "/etc/passwd"
        data = gzip.compress(tar_bytes({"obama/a.png": png()}, special=info))
        expect = ["member 'obama/zz.png' is a link", "trusted copy"] if kind == tarfile.SYMTYPE else ["is a device"]
        return Case(prepare(ctx, write(ctx.tmp / "obama.tar.gz", data)), expect)

    return build


AGAIN = "download it again and compare its size or sha256"
ARCHIVES: dict[str, Builder] = {
    "not an archive": _archive(
        "obama.bin", b"\0" * 64, ["obama.bin is not a folder, zip or tar archive", "pass the downloaded"]
    ),
    "truncated .tar.gz": _archive("o.tar.gz", _damaged("gz", "truncated"), ["cannot extract", "o.tar.gz", AGAIN]),
    "truncated .tar.xz": _archive(
        "o.tar.xz", _damaged("xz", "truncated"), ["cannot extract", "damaged xz data", AGAIN]
    ),
    ".tar.xz with a damaged header": _archive(
        "o.tar.xz", _damaged("xz", "header"), ["its xz stream is damaged", AGAIN]
    ),
    ".tar.xz damaged in the middle": _archive("o.tar.xz", _damaged("xz", "middle"), ["cannot extract", "xz", AGAIN]),
    "truncated .tar.bz2": _archive("o.tar.bz2", _damaged("bz2", "truncated"), ["cannot extract", "bzip2", AGAIN]),
    ".tar.bz2 with a damaged header": _archive(
        "o.tar.bz2", _damaged("bz2", "header"), ["its bzip2 stream is damaged", AGAIN]
    ),
    ".tar.bz2 damaged in the middle": _archive(
        "o.tar.bz2", _damaged("bz2", "middle"), ["cannot extract", "bzip2", AGAIN]
    ),
    "truncated .tar.lzma": _archive("o.tar.lzma", _damaged("lzma", "truncated"), ["cannot extract", "lzma", AGAIN]),
    ".bz2 of an image, not a tar": _archive(
        "o.bz2", bz2.compress(png()), ["is bzip2-compressed but holds no tar archive"]
    ),
    ".xz of text, not a tar": _archive("o.xz", lzma.compress(b"hello"), ["is xz-compressed but holds no tar archive"]),
    ".gz of an image, not a tar": _archive(
        "o.gz", gzip.compress(png()), ["is gzip-compressed but holds no tar archive"]
    ),
    "encrypted zip": _encrypted_zip,
    "zip with a bad CRC": _bad_crc_zip,
    "path traversal": lambda ctx: Case(
        prepare(ctx, zip_of(ctx.tmp / "o.zip", {"../../evil.png": png()})),
        ["member '../../evil.png' points outside", "use a trusted copy"],
    ),
    "absolute path": lambda ctx: Case(
        prepare(ctx, zip_of(ctx.tmp / "o.zip", {"/tmp/evil.png": png()})),
        ["member '/tmp/evil.png' has an absolute path", "use a trusted copy"],
    ),
    "symlink": _tar_with(tarfile.SYMTYPE),
    "device file": _tar_with(tarfile.CHRTYPE),
    "zip bomb": lambda ctx: Case(
        prepare(ctx, zip_of(ctx.tmp / "o.zip", {"obama/bomb.bmp": bytes(17 * 2**20)}, zipfile.ZIP_DEFLATED)),
        ["member 'obama/bomb.bmp' expands", "decompression bomb", "use a trusted copy"],
    ),
}

# ---------------------------------------------------------------------------------------------- checkpoints


def _state(**kw: Any) -> dict[str, torch.Tensor]:
    """Weights of a tiny baseline with ``kw`` changed (other widths: another model's weights)."""
    return models.get_model("baseline", resolution=32, **(TINY_KW | kw)).state_dict()


UNREADABLE = ["snap-00000002.pt: unreadable snapshot", "pick another with --checkpoint"]


def _snapshot_as(
    content: Any, command: str = "eval", which: str = "snap-00000002.pt", expect: list[str] = UNREADABLE
) -> Builder:
    """``eval`` (or ``generate``) of the trained run whose newest snapshot holds ``content``."""

    def build(ctx: Ctx) -> Case:
        run = ctx.copy_trained()
        snap = run / "snapshots" / "snap-00000002.pt"
        header = {"format": 1, "model_name": "baseline", "resolution": 32, "step": 2}
        save(snap, content(header) if callable(content) else content)
        if command == "generate":
            argv = ["generate", "--run", str(run), "--outdir", str(ctx.tmp / "png"), "--protocol", "fid200_full_clean"]
        else:
            argv = [
                "eval",
                "--run",
                str(run),
                "--checkpoint",
                which,
                "--protocol",
                "fid200_full_clean",
                "--out",
                str(ctx.out),
            ]
        return Case(argv, expect)

    return build


def _init_from(content: Any, expect: str) -> Builder:
    """A finetune suite started from ``content`` (a callable makes it; None: no file at all)."""

    def build(ctx: Ctx) -> Case:
        text = ctx.suite().read_text().split("[models.baseline]")[0]
        suite = write(ctx.tmp / "ft.toml", (text + '[models.stylegan2-lite-finetune]\nneeds = "init_from"\n').encode())
        path = ctx.tmp / "init.pt"
        if content is not None:
            save(path, content() if callable(content) else content)
        return Case(
            ["run", "--suite", str(suite), "--out", str(ctx.out), "--init-from", str(path)], ["init_from=", expect]
        )

    return build


def _finetune_keys() -> list[str]:
    with torch.device("meta"):
        return list(models.get_model("stylegan2-lite", resolution=32).state_dict())


def _official(content: Any, expect: str, model: str = "fastgan:recon=mse:ngf=8:ndf=8") -> Builder:
    def build(ctx: Ctx) -> Case:
        path = save(ctx.tmp / "all_5.pth", content() if callable(content) else content)
        argv = ["import-official", str(path), "--dataset", "shapes", "--resolution", "32", "--model", model,
                "--out", str(ctx.out)]  # fmt: skip
        return Case(argv, ["all_5.pth", expect])

    return build


def _fastgan_gd() -> dict[str, Any]:
    net = models.get_model("fastgan", resolution=32, **TINY_KW)
    return {"g": net.generator.state_dict(), "d": net.discriminator.state_dict()}


def _trained_optim(**kw: Any) -> dict[str, Any]:
    """Optimizer state (with moments) of a tiny baseline with ``kw`` changed, after one step."""
    model = models.get_model("baseline", resolution=32, **(TINY_KW | kw))
    model.train_step(torch.rand(4, 3, 32, 32) * 2 - 1, 0)
    return model.optimizer_state()


def _resume_past(change: Any, why: str) -> Builder:
    """Resume the stopped run whose newest checkpoint (step 3) is ckpt-2 changed by ``change``: it must be set
    aside as ``.corrupt``, the run resume at step 2 and finish, and retention keep the good ckpt-2."""

    def build(ctx: Ctx) -> Case:
        argv, paths = ctx.copy_stopped()
        good = torch.load(paths.checkpoints / "ckpt-00000002.pt", weights_only=True)
        bad = change(good | {"step": 3, "budget": good["budget"] | {"iters": 3}})
        path = paths.checkpoints / "ckpt-00000003.pt"
        write(path, bad) if isinstance(bad, bytes) else save(path, bad)

        def after() -> None:
            events = list(read_jsonl(paths.events))
            corrupt = [e for e in events if e["event"] == "corrupt_checkpoint"]
            assert corrupt and corrupt[0]["path"] == "ckpt-00000003.pt" and why in corrupt[0]["error"], corrupt
            assert [e["step"] for e in events if e["event"] == "resume"][-1] == 2
            names = sorted(p.name for p in paths.checkpoints.iterdir())
            assert names == ["ckpt-00000002.pt", "ckpt-00000003.pt.corrupt", "ckpt-00000004.pt"], names

        return Case(argv, ["cells: 1 done"], code=0, allow_new=RUN_NEW, after=after)

    return build


def _foreign(model: str, resolution: int, run_id: str | None = None) -> Builder:
    def build(ctx: Ctx) -> Case:
        argv = ctx.run()
        shutil.copytree(ctx.trained / "cache", ctx.out / "cache")
        header = {"format": 1, "model_name": model, "resolution": resolution, "step": 1}
        save(ctx.cells_paths(argv).checkpoints / "ckpt-00000001.pt", header | ({"run_id": run_id} if run_id else {}))
        expect = (
            [f"checkpoint of run '{run_id}'"] if run_id else [f"checkpoint is for model '{model}' at {resolution} px"]
        )
        return Case(argv, [*expect, "move it away or use the matching run"], allow_new=RUN_NEW)

    return build


CHECKPOINTS: dict[str, Builder] = {
    "eval: snapshot a list": _snapshot_as([1, 2, 3]),
    "eval: snapshot a tensor": _snapshot_as(torch.zeros(3)),
    "eval: snapshot without weights": _snapshot_as(lambda h: h),
    "eval: snapshot weights a list": _snapshot_as(lambda h: h | {"model": [torch.zeros(2)]}),
    "eval: snapshot of other widths": _snapshot_as(lambda h: h | {"model": _state(ngf=8)}),
    "eval: snapshot with a step of text": _snapshot_as(lambda h: h | {"step": "two", "model": _state()}),
    "eval --checkpoint all, the newest bad": _snapshot_as(lambda h: h | {"model": _state(ndf=8)}, which="all"),
    "generate: snapshot a list": _snapshot_as([1], "generate"),
    "generate: snapshot of other widths": _snapshot_as(lambda h: h | {"model": _state(ngf=8)}, "generate"),
    "snapshot of another resolution": _snapshot_as(
        lambda h: h | {"resolution": 64}, expect=["at 64 px, not 'baseline' at 32 px", "move it away"]
    ),
    "--init-from a list": _init_from([1, 2], "not a harness checkpoint"),
    "--init-from a tensor": _init_from(torch.zeros(2), "not a harness checkpoint"),
    "--init-from without weights": _init_from({"step": 1}, "not a harness checkpoint"),
    "--init-from with non-tensor weights": _init_from(
        lambda: {"model": dict.fromkeys(_finetune_keys(), 1)}, "does not fit"
    ),
    "--init-from of another model": _init_from(lambda: {"model": _state()}, "does not fit"),
    "--init-from missing": _init_from(None, "no such checkpoint file"),
    "import-official: a list": _official([1], "expected an official FastGAN checkpoint with 'g' and 'd'"),
    "import-official: g a tensor": _official({"g": torch.zeros(2), "d": {}}, "'g' is not a state dict"),
    "import-official: d with non-tensors": _official({"g": {}, "d": {"w": 1}}, "'d' is not a state dict"),
    "import-official: g_ema a dict": _official(lambda: _fastgan_gd() | {"g_ema": {}}, "'g_ema' should be the list"),
    "import-official: other widths": _official(_fastgan_gd, "does not match this model"),
    "checkpoint of another model": _foreign("fastgan", 32),
    "checkpoint of another resolution": _foreign("baseline", 64),
    "checkpoint of another run": _foreign("baseline", 32, run_id="baseline-shapes-32-s0-0000000000"),
    "resume past a checkpoint that is a list": _resume_past(lambda c: [c], "holds a list"),
    "resume past other widths": _resume_past(lambda c: c | {"model": _state(ngf=8)}, "weights do not fit"),
    "resume past a sampler of another set": _resume_past(
        lambda c: c | {"sampler": c["sampler"] | {"perm": torch.arange(7)}}, "not a permutation"
    ),
    "resume past optimizer state of other widths": _resume_past(
        lambda c: c | {"optim": _trained_optim(ngf=8)}, "optimizer"
    ),
    "resume past a checkpoint with keys missing": _resume_past(lambda c: {"model": c["model"]}, "no 'model_name'"),
    "resume past a truncated checkpoint": _resume_past(lambda c: b"PK\x03\x04cut short", "Error"),
    "resume past a budget clock of nan": _resume_past(
        lambda c: c | {"budget": c["budget"] | {"used_seconds": float("nan")}}, "budget clock holds nan"
    ),
}

# ---------------------------------------------------------------------------------------------- warnings


def _report_with_stray(ctx: Ctx) -> Case:
    argv = ["report", *ctx.copy_evaluated(), "--metric", "fid9k_full"]
    write(ctx.out / "runs" / "tiny" / "stray" / "spec.json", b"{")
    expect = ["--metric fid9k_full: not in the results of suite 'tiny'"]
    return Case(argv, expect, warns=["stray/spec.json: is not valid JSON"])


WARNINGS: dict[str, Builder] = {
    "prepare from a folder of one image": lambda ctx: Case(
        prepare(ctx, ctx.folder({"a.png": png()})),
        ["holds 1 usable image(s); a GAN needs at least 2"],
        warns=["found 1 images, the registry expects 100"],
    ),  # fmt: skip
    "prepare from one image: the count warning comes after the error": lambda ctx: Case(
        prepare(ctx, zip_of(ctx.tmp / "o.zip", {"obama/a.png": png()})),
        ["holds 1 usable image(s)", "pass the whole obama download"],
        warns=["UserWarning: obama: found 1 images, the registry expects 100"],
    ),
    "report of an unknown metric past a broken run": _report_with_stray,
}

# ---------------------------------------------------------------------------------------------- slurm


def _dead_controller_env(ctx: Ctx) -> dict[str, str]:
    """SLURM_CONF naming a controller port nobody listens on (the rest of the real cluster's configuration)."""
    text = Path("/etc/slurm/slurm.conf").read_text()
    lines = [line for line in text.splitlines() if not line.startswith("SlurmctldPort")] + ["SlurmctldPort=6899"]
    return {"SLURM_CONF": str(write(ctx.tmp / "dead" / "slurm.conf", "\n".join(lines).encode()))}


def _slurm_dead(ctx: Ctx) -> Case:
    argv = ctx.run(extra=("--launcher", "slurm"))
    return Case(argv, ["--launcher slurm: no SLURM controller answers", "is DOWN"], env=_dead_controller_env(ctx))


def _cancel_dead(ctx: Ctx) -> Case:
    run = ctx.copy_trained()
    row = {"launcher": "slurm", "job_id": "4243", "folder": str(ctx.tmp / "f"), "submitted": 9e9}
    write(run / "jobs" / "jobs.jsonl", (json.dumps(row) + "\n").encode())
    write(run / "state.json", b'{"status": "todo"}')
    argv = ["cancel", "--suite", str(ctx.suite()), "--out", str(ctx.out)]
    return Case(argv, ["cancel: scancel failed for every job"], env=_dead_controller_env(ctx))


def _sbatch_refuses(ctx: Ctx) -> Case:
    argv = ctx.run(extra=("--launcher", "slurm", "--partition", "nosuch"))
    return Case(argv, ["sbatch failed", "check the sbatch options"], allow_new=["results/cache/datasets/*"])


def slurm_available() -> bool:
    if shutil.which("sbatch") is None or not Path("/etc/slurm/slurm.conf").exists():
        return False
    return subprocess.run(["scontrol", "ping"], capture_output=True).returncode == 0


SLURM: dict[str, Builder] = {
    "--launcher slurm, controller down": _slurm_dead,
    "cancel, controller down": _cancel_dead,
    "--launcher slurm, sbatch refuses": _sbatch_refuses,
}

CASES: dict[str, dict[str, Builder]] = {
    "datasets": DATASETS,
    "archives": ARCHIVES,
    "checkpoints": CHECKPOINTS,
    "warnings": WARNINGS,
    "slurm": SLURM,
}
