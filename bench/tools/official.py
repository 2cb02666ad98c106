"""Official FastGAN checkpoints as runs: import once, then re-score with ``eval`` like any run.

The official code saves ``{'g', 'd'}`` (``g`` holding the EMA weights) and ``all_N.pth`` =
``{'g', 'd', 'g_ema', 'opt_g', 'opt_d'}`` (``g_ema`` a list of tensors in parameter order).
:func:`import_official` loads one into a registered FastGAN-family model, checks every key and
shape, and writes a run folder (``results/runs/<suite>/<run_id>``) with the weights as a snapshot
at step N, the resolved spec (with the checkpoint's path and sha256) and a ``done`` state. Scoring
it with ``fid2k_fastgan`` reproduces the official evaluation; ``fid5k_full_clean`` scores it under the
harness's declared protocol.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from bench.errors import BenchError
from bench.files import FileReadError, read_json, regular_file
from bench.plan.specs import RESIZE_FILTERS, RunSpec
from bench.plan.suites import suite_name_problem
from bench.results.io import file_sha256
from bench.results.runs import RunPaths, cache_dirs, read_state, write_state
from bench.training.checkpoints import build_model, save_snapshot
from bench.training.integrity import values_problem
from bench.training.setup import write_spec
from models import ModelConfigError

PROTOCOLS = ("fid2k_fastgan", "fid5k_full_clean")  # the official evaluation, then the declared protocol


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The official checkpoint's dict (``g``, ``d``, maybe ``g_ema``); one-line errors naming ``path``."""
    if not path.is_file():
        raise BenchError(f"{path}: no such checkpoint file; pass the official .pth (e.g. all_50000.pth)")
    try:
        ckpt = torch.load(regular_file(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        kind = type(exc).__name__
        raise BenchError(f"{path}: not a readable torch checkpoint ({kind}); pass the official .pth file") from None
    if not isinstance(ckpt, dict) or not {"g", "d"} <= ckpt.keys():
        found = sorted(map(str, ckpt))[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise BenchError(f"{path}: expected an official FastGAN checkpoint with 'g' and 'd' (found {found})")
    for key in ("g", "d"):
        if not isinstance(ckpt[key], dict) or not all(_named_tensor(k, v) for k, v in ckpt[key].items()):
            raise BenchError(f"{path}: '{key}' is not a state dict (names -> tensors); pass the official .pth file")
    ema = ckpt.get("g_ema", [])
    if not isinstance(ema, list | tuple) or not all(isinstance(t, torch.Tensor) for t in ema):
        raise BenchError(f"{path}: 'g_ema' should be the list of EMA tensors the official code saves")
    for key, state in (("g", ckpt["g"]), ("d", ckpt["d"]), ("g_ema", {f"[{i}]": t for i, t in enumerate(ema)})):
        if (problem := values_problem(state)) is not None:
            raise BenchError(f"{path}: '{key}': {problem}, no usable weights; pass a checkpoint of a healthy run")
    return ckpt


def _named_tensor(key: Any, value: Any) -> bool:
    return isinstance(key, str) and isinstance(value, torch.Tensor)


def checkpoint_step(path: Path, step: int | None) -> int:
    """``step``, or the iteration in the file name (``all_50000.pth``, ``50000.pth``)."""
    if step is not None:
        return step
    found = re.findall(r"\d+", path.stem)
    if not found:
        raise BenchError(f"{path}: no iteration in the file name; pass --step N")
    return int(found[-1])


def import_official(
    checkpoint: Path,
    *,
    dataset: str,  # the training set the checkpoint was trained on (must be loadable: prepared)
    resolution: int,  # px of the checkpoint's generator
    out: Path,  # results folder
    model: str = "fastgan",  # registered FastGAN-family name matching the checkpoint's variant
    model_kwargs: dict[str, Any] | None = None,  # e.g. ngf/ndf when the checkpoint used other widths
    suite: str = "official",  # folder under results/runs/
    step: int | None = None,  # iteration; default: from the file name
    resize_filter: str = RESIZE_FILTERS[0],  # of the training set; bilinear: the official code's own
) -> RunPaths:
    """Write the run folder of an official checkpoint (idempotent); returns its paths."""
    from bench.data.catalog import load_dataset

    if (why := suite_name_problem(suite)) is not None:
        raise BenchError(f"--suite: {why}")
    checkpoint = Path(checkpoint).expanduser().resolve()
    ckpt, it = read_checkpoint(checkpoint), checkpoint_step(checkpoint, step)
    spec = RunSpec(
        suite=suite, model=model, dataset=dataset, resolution=resolution, model_kwargs=dict(model_kwargs or {}),
        max_iters=max(it, 1), protocols=PROTOCOLS, eval_fractions=(1.0,), resize_filter=resize_filter,
    )  # fmt: skip
    paths, sha = RunPaths.of(out, spec), file_sha256(checkpoint)
    if paths.spec.exists():
        return _existing(paths, sha, checkpoint)
    try:
        net = build_model(spec, torch.device("cpu"))
    except ModelConfigError as exc:
        given = ":".join([model, *(f"{k}={v}" for k, v in (model_kwargs or {}).items())])
        raise BenchError(f"--model {given}: {str(exc).splitlines()[0]}") from None
    try:
        net.load_official(ckpt)
    except ModelConfigError as exc:
        raise BenchError(f"{checkpoint}: {str(exc).splitlines()[0]}") from None
    data = load_dataset(dataset, resolution, cache_dir=cache_dirs(out)[0], resize_filter=resize_filter)
    save_snapshot(paths, spec, net, it)
    write_state(paths, status="done", step=it, kimg=None, imported=True)
    write_spec(paths, spec, net, data, extra={"imported_from": {"path": str(checkpoint), "sha256": sha}})
    return paths


def _existing(paths: RunPaths, sha: str, checkpoint: Path) -> RunPaths:
    """An earlier import at the same place: the same file again is a no-op; another is refused."""
    try:
        resolved = read_json(paths.spec).get("resolved", {})
    except (FileReadError, AttributeError):
        resolved = {}
    before = (resolved.get("imported_from") or {}).get("sha256")
    if before != sha or read_state(paths).get("status") != "done":
        raise BenchError(
            f"{paths.root}: already holds another run or checkpoint ({before and before[:12]}); "
            f"import {checkpoint.name} with --suite NAME"
        )
    return paths
