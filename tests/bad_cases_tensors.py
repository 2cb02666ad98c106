"""Tensors that are no numbers, and layouts no folder can hold: kind ``non-finite values`` (NaN, infinite or
integer weights in official checkpoints and snapshots, a generator whose finite weights give NaN images);
cases added to ``detectors`` (TorchScript detectors returning NaN, infinity or a tuple, or raising),
``datasets`` (a refused folder leaves no cache) and ``archives`` (a file and a folder of one name, names
too long, folders too deep)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from bad_cases_data import TINY_KW, _fastgan_gd, _official, _snapshot_as, _state
from bad_inputs import (
    TEST_PR_PROTOCOL,
    TEST_PROTOCOL,
    Builder,
    Case,
    Ctx,
    png,
    prepare,
    save,
    tar_bytes,
    write,
    zip_of,
)
from torch import Tensor, nn

MODEL = f"fastgan:recon=mse:ngf={TINY_KW['ngf']}:ndf={TINY_KW['ndf']}"
NAN_WEIGHTS = "holds NaN or infinite values"
NAN_IMAGES = "the generator returned NaN or infinite pixels"

# ---------------------------------------------------------------------------------------------- non-finite values


def _filled(state: dict[str, Tensor], value: float) -> dict[str, Tensor]:
    """Every float tensor of ``state`` filled with ``value``."""
    return {k: torch.full_like(v, value) if v.is_floating_point() else v for k, v in state.items()}


def _scaled(state: dict[str, Tensor], factor: float = 1e10) -> dict[str, Tensor]:
    """Finite weights whose images are NaN (the activations overflow)."""
    return {k: v * factor if v.is_floating_point() else v for k, v in state.items()}


def _official_with(change: Any, *expect: str) -> Builder:
    """``import-official`` of the tiny FastGAN's official-format weights changed by ``change``."""

    def build(ctx: Ctx) -> Case:
        case = _official(lambda: change(_fastgan_gd()), expect[0], MODEL)(ctx)
        case.expect += expect[1:]
        return case

    return build


def _duplicate_prefixed(gd: dict[str, Any]) -> dict[str, Any]:
    first = next(iter(gd["g"]))
    return gd | {"g": gd["g"] | {f"module.{first}": gd["g"][first]}}


def _with_ema(gd: dict[str, Any], value: float) -> dict[str, Any]:
    return gd | {"g_ema": [torch.full_like(v, value) for v in gd["g"].values() if v.is_floating_point()]}


def _eval_nan_images(ctx: Ctx) -> Case:
    """``eval`` of the evaluated run (8 images, kid8_full) whose newest snapshot's finite weights give NaN images."""
    ctx.copy_evaluated()
    run = next((ctx.out / "runs").glob("*/*/"))
    snap = run / "snapshots" / "snap-00000002.pt"
    save(snap, torch.load(snap, weights_only=True) | {"model": _scaled(_state())})
    argv = ["eval", "--run", str(run), "--checkpoint", "latest", "--protocol", TEST_PROTOCOL, "--out", str(ctx.out)]
    return Case(argv, [NAN_IMAGES, "score another snapshot"])


def _generate_nan_images(ctx: Ctx) -> Case:
    run = ctx.copy_trained()
    snap = run / "snapshots" / "snap-00000002.pt"
    save(snap, torch.load(snap, weights_only=True) | {"model": _scaled(_state())})
    argv = ["generate", "--run", str(run), "--outdir", str(ctx.tmp / "png"), "--protocol", "fid50_full_clean"]
    return Case(argv, [NAN_IMAGES])


NON_FINITE: dict[str, Builder] = {
    "import-official: g all NaN": _official_with(
        lambda gd: gd | {"g": _filled(gd["g"], float("nan"))}, "'g': ", NAN_WEIGHTS
    ),
    "import-official: d all infinite": _official_with(
        lambda gd: gd | {"d": _filled(gd["d"], float("inf"))}, "'d': ", NAN_WEIGHTS
    ),
    "import-official: g_ema NaN": _official_with(lambda gd: _with_ema(gd, float("nan")), "'g_ema': [0] ", NAN_WEIGHTS),
    "import-official: int64 weights": _official_with(
        lambda gd: gd | {"g": {k: v.long() for k, v in gd["g"].items()}}, "shape or dtype mismatches", "torch.int64"
    ),
    "import-official: keys with and without module.": _official_with(
        _duplicate_prefixed, "(with and without DataParallel's prefix); keep one"
    ),
    "eval: snapshot all NaN": _snapshot_as(
        lambda h: h | {"model": _filled(_state(), float("nan"))}, expect=[NAN_WEIGHTS, "pick another with --checkpoint"]
    ),
    "eval: snapshot with int64 weights": _snapshot_as(
        lambda h: h | {"model": {k: v.long() for k, v in _state().items()}},
        expect=["holds torch.int64 values, the model's torch.float32"],
    ),
    "generate: snapshot all infinite": _snapshot_as(
        lambda h: h | {"model": _filled(_state(), float("inf"))}, "generate", expect=[NAN_WEIGHTS]
    ),
    "eval: finite weights, NaN images": _eval_nan_images,
    "generate: finite weights, NaN images": _generate_nan_images,
}

# ---------------------------------------------------------------------------------------------- detectors


class _Nan(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3)) * float("nan")


class _Inf(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3)) + float("inf")


class _Pair(nn.Module):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.mean(dim=(2, 3)), x.std(dim=(2, 3))


class _Raises(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        if x.numel() >= 0:
            raise RuntimeError("boom in the detector")
        return x


class _IntLayers(nn.Module):
    """Features of mean and spread per channel, and a ``layers`` attribute that is a number, not a module."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = 3

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


def _scripted(ctx: Ctx, module: nn.Module) -> str:
    path = ctx.tmp / "detector.pt"
    with warnings.catch_warnings():  # TorchScript is clean-fid's detector format, deprecated or not
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(module), str(path))
    return f"torchscript:{path}"


def _eval_with(module: type[nn.Module], flag: str, protocol: str, expect: list[str], code: int = 2) -> Builder:
    """``eval`` of the evaluated run (8 images) with a TorchScript detector: nothing new in cache/metrics."""

    def build(ctx: Ctx) -> Case:
        ctx.copy_evaluated()
        run = next((ctx.out / "runs").glob("*/*/"))
        argv = ["eval", "--run", str(run), "--checkpoint", "latest", "--protocol", protocol,
                flag, _scripted(ctx, module()), "--out", str(ctx.out)]  # fmt: skip
        rows = ["results/runs/tiny/*/evals.jsonl", "results/cache/metrics/*"] if code == 0 else []
        return Case(argv, expect, allow_new=rows, code=code)

    return build


def _run_with_nan_detector(ctx: Ctx) -> Case:
    """A run whose suite scores with a NaN detector: its step-0 evaluation fails; no feature cache is written."""
    base = ctx.copy_evaluated()
    suite = ctx.tmp / "tiny.toml"
    text = suite.read_text().replace('"inception-random"', f'"{_scripted(ctx, _Nan())}"')
    write(suite, text.encode())
    argv = ["run", *base, "--no-progress"]
    new = ["results/runs/tiny/*/*", "results/runs/tiny/*/*/*", "results/runs/tiny/*"]
    return Case(argv, ["returned NaN or infinite features", "fix the detector or choose another"], allow_new=new)


NAN_FEATURES = ["returned NaN or infinite features", "fix the detector or choose another"]
DETECTORS: dict[str, Builder] = {
    "torchscript returning NaN": _eval_with(_Nan, "--detector", TEST_PROTOCOL, NAN_FEATURES),
    "torchscript returning infinity": _eval_with(_Inf, "--detector", TEST_PROTOCOL, NAN_FEATURES),
    "torchscript returning a tuple": _eval_with(
        _Pair, "--detector", TEST_PROTOCOL, ["returned a tuple, not a (batch, features) tensor"]
    ),
    "torchscript raising": _eval_with(
        _Raises, "--detector", TEST_PROTOCOL, ["detector.pt failed on a batch", "boom in the detector"]
    ),
    "torchscript with a number as 'layers'": _eval_with(
        _IntLayers, "--detector", TEST_PROTOCOL, [f"{TEST_PROTOCOL} = "], code=0
    ),
    "--pr-detector returning NaN": _eval_with(_Nan, "--pr-detector", TEST_PR_PROTOCOL, NAN_FEATURES),
    "run scoring with a NaN detector": _run_with_nan_detector,
}

# ---------------------------------------------------------------------------------------------- datasets


def _one_image_and_a_loop(ctx: Ctx) -> Case:
    images = ctx.folder({"a.png": png()})
    (images / "loop").symlink_to(".")
    return Case(ctx.run(('["shapes"]', f'["folder:{images}"]')), ["has 1 image; a GAN needs at least 2"])


DATASETS: dict[str, Builder] = {
    "one image and a symlink loop": _one_image_and_a_loop,
    "prepare of a bad image names --skip-bad": lambda ctx: Case(
        prepare(ctx, ctx.folder({"a.png": png(), "b.png": png(), "c.png": b"<html>"})),
        ["c.png (", "fix or remove them, or skip them with --skip-bad"],
    ),
}

# ---------------------------------------------------------------------------------------------- archives


def _layout(members: dict[str, bytes], expect: str, tar: bool = False) -> Builder:
    def build(ctx: Ctx) -> Case:
        path = write(ctx.tmp / "o.tar", tar_bytes(members)) if tar else zip_of(ctx.tmp / "o.zip", members)
        return Case(prepare(ctx, path), [f"member '{next(reversed(members))[:40]}", expect, "no folder can hold"])

    return build


FILE_AND_FOLDER = {"obama/x.png": png(), "obama/x.png/y.png": png()}
ARCHIVES: dict[str, Builder] = {
    "zip of x.png and x.png/y.png": _layout(FILE_AND_FOLDER, "lies in 'obama/x.png', which is a file of the archive"),
    "tar of x.png and x.png/y.png": _layout(FILE_AND_FOLDER, "which is a file of the archive", tar=True),
    "zip member of a 300-character name": _layout(
        {"obama/" + "n" * 296 + ".png": png()}, "has a name of 300 bytes (at most 255)"
    ),
    "zip member 3000 folders deep": _layout({"d/" * 3000 + "x.png": png()}, "lies 3000 folders deep (at most 63)"),
}

CASES: dict[str, dict[str, Builder]] = {
    "non-finite values": NON_FINITE,
    "detectors": DETECTORS,
    "datasets": DATASETS,
    "archives": ARCHIVES,
}
