"""Score anything (``eval --network`` / ``eval --folder``), as stylegan2-ada's ``calc_metrics.py --network``
and clean-fid's ``compute_fid(dir1, dir2)`` do: a generator of this harness (a run folder, a snapshot
in it, or a snapshot file on its own: snapshots carry their run's spec) or a folder of images, against
a dataset or another folder, under any registered protocol and detector.

Nothing is unpickled (weights load with ``weights_only=True``) and nothing is written besides the
shared caches under ``out/cache/`` (a folder's images at the resolution, the reference features). Each
row carries the whole protocol (the :class:`bench.metrics.EvalSpec` fields) and what was scored
(``scored``: ``network:PATH`` or ``folder:PATH``; ``against``: the reference set's name).

A folder plays the generator's part with its images as they are (sorted by path): the first
``num_gen`` of them, or all when it has fewer; the row's ``num_gen`` says how many were scored, so a
folder of 100 images under ``fid5k_full_clean`` gives a row of ``num_gen`` 100, not comparable with 5,000.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from bench.errors import BenchError
from bench.plan.specs import RESOLUTIONS, RunSpec
from bench.results.runs import RunPaths, cache_dirs, load_spec

DEFAULT_PROTOCOL = "fid5k_full_clean"  # a folder's protocol when none is given


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """A set of uint8 images scored as one side of a metric (what bench.metrics.features reads)."""

    name: str
    resolution: int
    images: torch.Tensor  # (N, 3, R, R) uint8
    sha256: str
    manifest: dict


@dataclasses.dataclass(frozen=True)
class Generator:
    """A loaded generator: its run's spec, the model (snapshot weights, eval mode), the snapshot and its step."""

    spec: RunSpec
    model: Any  # models.GANModel
    snapshot: Path
    step: int


def load_generator(network: Path, device: str | torch.device = "cpu") -> Generator:
    """The generator of ``network``: a run folder (its newest snapshot), a snapshot inside its run folder, or
    a snapshot file on its own (snapshots carry their run's spec)."""
    from bench.training.checkpoints import model_from_snapshot, read_exported, read_snapshot

    path = Path(network)
    if path.is_dir():
        if not RunPaths(path).spec.is_file():
            raise BenchError(f"--network {path}: a folder but not a run folder (no spec.json); pass a run or snap-*.pt")
        snap_path, snap = read_snapshot(path)
        spec = load_spec(path)
    elif not path.exists():
        raise BenchError(f"--network {path}: no such file or folder; pass a run folder or a snapshot (snap-*.pt)")
    elif path.parent.name == "snapshots" and RunPaths(path.parent.parent).spec.is_file():
        snap_path, snap = read_snapshot(path.parent.parent, str(path))
        spec = load_spec(path.parent.parent)
    else:
        snap_path = path
        spec, snap = read_exported(path)
    return Generator(spec, model_from_snapshot(spec, snap, snap_path, device), snap_path, int(snap["step"]))


def folder_resolution(folder: Path) -> int:
    """The side of the folder's first image when it is square and one of :data:`RESOLUTIONS`, else a BenchError
    asking for ``--resolution``."""
    from PIL import Image

    from bench.data.images import list_image_files

    files = list_image_files(_folder(folder, "--folder"))
    if not files:
        raise BenchError(f"--folder {folder}: no image files in it; add images or fix the path")
    try:
        with Image.open(files[0]) as img:
            size = img.size
    except (OSError, ValueError) as exc:
        raise BenchError(f"--folder {folder}: {files[0].name} is not a readable image ({exc}); remove it") from None
    if size[0] != size[1] or size[0] not in RESOLUTIONS:
        raise BenchError(
            f"--folder {folder}: its images are {size[0]}x{size[1]} px; pass --resolution PX (32..1024, a power of "
            "two): both sets are resized to it"
        )
    return size[0]


def _folder(folder: Path, flag: str) -> Path:
    if not Path(folder).is_dir():
        raise BenchError(f"{flag} {folder}: not a folder; pass a folder of images")
    return Path(folder).resolve()


def load_images(folder: Path, resolution: int, cache_dir: Path, flag: str) -> Any:
    """A folder's images at ``resolution`` (cached like a ``folder:PATH`` dataset); errors name ``flag``."""
    from bench.data.catalog import load_dataset

    root = _folder(folder, flag)
    try:
        return load_dataset(f"folder:{root}", resolution, cache_dir=cache_dir)
    except BenchError as exc:
        raise BenchError(f"{flag} {folder}: {exc}") from None


def reference_set(data: str | None, ref_folder: Path | None, resolution: int, out: Path, resize_filter: str) -> Any:
    """The reference side: dataset ``data`` or the images of ``ref_folder``, at ``resolution``."""
    from bench.data.catalog import load_dataset

    _check_reference(data, ref_folder)
    data_cache, _ = cache_dirs(out)
    if ref_folder is not None:
        return load_images(ref_folder, resolution, data_cache, "--ref-folder")
    try:
        return load_dataset(data, resolution, cache_dir=data_cache, resize_filter=resize_filter)
    except BenchError as exc:
        raise BenchError(f"--data {data}: {exc}") from None


def _check_reference(data: str | None, ref_folder: Path | None) -> None:
    """One reference is given: a known dataset name, or an existing folder (before anything is loaded)."""
    from bench.data.catalog import check_dataset_name

    if (data is None) == (ref_folder is None):
        raise BenchError("eval: give the reference as --data DATASET or --ref-folder DIR (one of them)")
    if ref_folder is not None:
        _folder(ref_folder, "--ref-folder")
        return
    try:
        check_dataset_name(data)
    except BenchError as exc:
        raise BenchError(f"--data {data}: {exc}") from None


def _check(protocols: list[str], detector: str, pr_detector: str) -> list[str]:
    """The protocols under their current names, each checked, and both detectors checked."""
    from bench import metrics

    if not protocols:
        raise BenchError("eval: no protocol; pass --protocol NAME (see `list`)")
    current = [metrics.check_protocol(p) for p in protocols]
    metrics.check_detector(detector)
    metrics.check_detector(pr_detector)
    return current


def score_network(
    network: Path,
    *,
    out: Path,
    data: str | None = None,
    ref_folder: Path | None = None,
    protocols: list[str] | None = None,
    detector: str | None = None,
    pr_detector: str | None = None,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Rows of ``network`` (see :func:`load_generator`) under ``protocols`` (default: its run's own) against
    ``data`` or ``ref_folder`` (default: its run's dataset), sampled as its run's evaluations are."""
    from bench import metrics
    from bench.training.device import resolve_device

    dev = resolve_device(device)
    gen = load_generator(network, dev)
    spec = gen.spec
    detector, pr_detector = detector or spec.detector, pr_detector or spec.pr_detector
    protocols = _check(list(protocols or spec.protocols), detector, pr_detector)
    if data is None and ref_folder is None:
        data = spec.dataset
    reference = reference_set(data, ref_folder, spec.resolution, out, spec.resize_filter)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        rows = metrics.evaluate(
            gen.model, reference, protocols, detector=detector, pr_detector=pr_detector, device=dev,
            cache_dir=cache_dirs(out)[1], seed=spec.seed,
        )  # fmt: skip
    scored = {"scored": f"network:{gen.snapshot.resolve()}", "run_id": spec.run_id, "model": spec.model,
              "step": gen.step}  # fmt: skip
    return [scored | {"against": reference.name} | row for row in rows]


def score_folder(
    folder: Path,
    *,
    out: Path,
    data: str | None = None,
    ref_folder: Path | None = None,
    protocols: list[str] | None = None,
    detector: str = "inception-v3",
    pr_detector: str | None = None,
    resolution: int | None = None,
    device: str = "auto",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows of the images in ``folder`` (playing the generated set) against ``data`` or ``ref_folder``, both at
    ``resolution`` (default: the folder's image size), under ``protocols`` (default fid5k_full_clean)."""
    from bench import metrics
    from bench.data.store import tensor_sha256
    from bench.metrics import features
    from bench.metrics.protocols import PROTOCOLS, make_spec, score_features
    from bench.metrics.scores import subset_size_for
    from bench.training.device import resolve_device
    from models import base

    pr_detector = pr_detector or metrics.PR_DETECTOR
    protocols = _check(list(protocols or [DEFAULT_PROTOCOL]), detector, pr_detector)
    _check_reference(data, ref_folder)
    resolution = resolution or folder_resolution(folder)
    data_cache, metric_cache = cache_dirs(out)
    scored = load_images(folder, resolution, data_cache, "--folder")
    reference = reference_set(data, ref_folder, resolution, out, "lanczos")
    dev, cache = resolve_device(device), metrics.DetectorCache()
    rows = []
    for name in dict.fromkeys(protocols):
        p, t0 = PROTOCOLS[name], time.perf_counter()
        n = min(p.num_gen, len(scored.images))
        if n < p.num_gen:
            why = f"{n} images, fewer than {name}'s {p.num_gen}: its rows score {n} (num_gen)"
            warnings.warn(f"--folder {folder}: {why}", stacklevel=2)
        part = ImageSet(scored.name, resolution, scored.images[:n], tensor_sha256(scored.images[:n]), scored.manifest)
        det = cache.get(metrics.detector_for(name, detector, pr_detector), dev, p.mode)
        real, fake = (
            features.reference_features(s, det, p.mode, p.pre_resize, metric_cache) for s in (reference, part)
        )
        spec = make_spec(name, det, reference, seed=seed, weights="ema", sampling=base.NO_BN)
        kid = subset_size_for(p.kid_subset_size, len(reference.images), n) if p.kind == "kid" else None
        spec = dataclasses.replace(
            spec, num_gen=n, weights="images", bn_mode="none", bn_stats="none", gen_batch=0, kid_subset_size=kid
        )
        shared = time.perf_counter() - t0
        where = {"scored": f"folder:{_folder(folder, '--folder')}", "against": reference.name}
        rows += [where | row for row in score_features(spec, real, fake, shared, dev)]
    return rows
