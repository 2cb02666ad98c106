"""Named evaluation protocols (names spell the protocol) and :func:`evaluate`.

``fid5k_full_clean`` = FID, 5,000 generated images against the full training set, clean-fid mode ``clean``
(stylegan2-ada-pytorch's ``fid50k_full`` is 50,000 against the full set with its own Inception resize: our
names end with the mode, and precision/recall's carry k, ``pr5k3_full_clean``, as its ``pr50k3_full``; the
former names, ``fid5k_full`` and so on, are still read: bench.plan.protocol_names). KID draws 100 subsets of
up to 1,000 images, as stylegan2-ada's ``kid50k_full``. Protocols sample each family the way its authors
evaluate it (``models.Sampling``: FastGAN with batch-statistics BatchNorm in batches of 16, BigGAN's EMA
generator with batch-statistics BatchNorm at its training batch, StyleGAN2 without BatchNorm) unless they
fix the BatchNorm mode themselves.
``fid2k_fastgan`` is the FastGAN code's own: 2,000 images in batch-statistics BatchNorm, 16 per
generator call, only whole batches (``eval.py`` draws ``n_sample // batch`` of them: a protocol that
claims the official evaluation sets ``full_batches`` and records the count it really generated),
both sets resized to 256 then bilinear to 299 (``legacy_pytorch``); its reference set
is the official one exactly when the dataset is prepared with ``--resize-filter bilinear`` (the
official code's ``transforms.Resize``; suite key ``resize_filter``). Each result row carries every
:class:`EvalSpec` field, the whole resize chain of both sets included (``resize_chain``).
Precision/recall gives two rows, ``<name>_precision`` and ``<name>_recall`` (as stylegan2-ada's
``pr50k3_full``: k = 3, VGG16 fc2 features); their other columns are the protocol's.

Each protocol names its standard detector: ``inception-v3`` for FID and KID, ``vgg16-fc2`` (VGG16
fc2 features, as Kynkäänniemi et al. and stylegan2-ada) for precision/recall. :func:`evaluate` scores
FID/KID with ``detector`` and precision/recall with ``pr_detector``; a row's ``detector_standard`` is
True only when its detector is its protocol's standard one with genuine weights.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError
from bench.metrics import features
from bench.metrics.detectors import Detector, DetectorCache, check_detector
from bench.metrics.scores import fid_from_features, kid_from_features, precision_recall, subset_size_for
from bench.plan.protocol_names import close_names, current
from models.base import Sampling

WEIGHTS = ("ema", "raw")
STANDARD_DETECTORS = {"fid": "inception-v3", "kid": "inception-v3", "pr": "vgg16-fc2"}  # by kind
PR_DETECTOR = STANDARD_DETECTORS["pr"]  # evaluate()'s default for precision/recall


@dataclass(frozen=True)
class EvalProtocol:
    """What a metric name fixes (the rest of an :class:`EvalSpec` comes from the run and dataset)."""

    kind: str  # "fid" | "kid" | "pr"
    num_gen: int  # generated images
    mode: str = "clean"  # clean-fid mode
    pre_resize: int | None = None  # px both sets are resized to before the detector's resize; None: none
    bn_mode: str | None = None  # generator BatchNorm (models.BN_MODES); None: the family's own convention
    gen_batch: int | None = None  # latents per generator call; None: the family's evaluation batch
    full_batches: bool = False  # whole generator calls only (num_gen // batch of them), as FastGAN's eval.py
    truncation: float = 1.0  # psi; 1.0 = none
    reference: str = "full"  # the whole prepared training set
    kid_subset_size: int | None = None  # nominal; capped by the smaller set
    kid_subsets: int | None = None
    pr_k: int | None = None  # neighbourhood size of precision/recall
    standard_detector: str = ""  # the detector its published numbers use; "" -> by kind (STANDARD_DETECTORS)

    def __post_init__(self) -> None:
        if self.kind not in STANDARD_DETECTORS:
            raise ValueError(f"protocol kind must be one of {sorted(STANDARD_DETECTORS)}, got {self.kind!r}")
        if not self.standard_detector:
            object.__setattr__(self, "standard_detector", STANDARD_DETECTORS[self.kind])


PROTOCOLS: dict[str, EvalProtocol] = {}


def register_protocol(name: str, kind: str, num_gen: int, **kwargs: Any) -> None:
    """Register a protocol; KID defaults to 100 subsets of up to 1,000, precision/recall to k = 3."""
    if name in PROTOCOLS:
        raise ValueError(f"protocol {name!r} is already registered")
    defaults = {"kid": {"kid_subset_size": 1000, "kid_subsets": 100}, "pr": {"pr_k": 3}}.get(kind, {})
    PROTOCOLS[name] = EvalProtocol(kind, num_gen, **{**defaults, **kwargs})


register_protocol("fid50k_full_clean", "fid", 50_000)
register_protocol("fid5k_full_clean", "fid", 5_000)
register_protocol("fid1k_full_clean", "fid", 1_000)
register_protocol("fid500_full_clean", "fid", 500)
register_protocol("fid200_full_clean", "fid", 200)  # CPU smoke runs only: far too few for a real FID
register_protocol("fid50_full_clean", "fid", 50)  # plumbing checks only (gpu-check at tiny sizes): not a measurement
register_protocol(
    "fid2k_fastgan",
    "fid",
    2_000,
    mode="legacy_pytorch",
    pre_resize=256,
    bn_mode="batch",
    gen_batch=16,
    full_batches=True,
)
register_protocol("kid50k_full_clean", "kid", 50_000)
register_protocol("kid5k_full_clean", "kid", 5_000)
register_protocol("kid1k_full_clean", "kid", 1_000)
register_protocol("kid500_full_clean", "kid", 500)
register_protocol("kid200_full_clean", "kid", 200)
register_protocol("pr5k3_full_clean", "pr", 5_000)
register_protocol("pr1k3_full_clean", "pr", 1_000)
register_protocol("pr500_k3_full_clean", "pr", 500)


@dataclass(frozen=True)
class EvalSpec:
    """One protocol fully resolved for a run and dataset; every field is a column of its result rows."""

    metric: str  # protocol name, e.g. "fid5k_full_clean"
    kind: str  # "fid" | "kid" | "pr"
    detector: str  # registered detector name or "torchscript:PATH"
    detector_sha256: str  # of the weights file (state dict for inception-random)
    detector_standard: bool  # the protocol's standard detector with genuine weights
    mode: str  # clean-fid mode
    num_gen: int  # generated images
    reference: str  # "full": the whole prepared dataset
    ref_count: int  # reference images used
    ref_resolution: int  # px of the prepared reference images
    ref_filter: str  # filter the dataset was prepared with
    pre_resize: int | None  # px both sets are resized to before the detector's resize
    resize_chain: str  # the whole path of both sets to the detector (features.resize_chain)
    weights: str  # "ema" | "raw"
    bn_mode: str  # BatchNorm statistics at sampling: "batch" | "running" | "standing" | "none"
    bn_stats: str  # where they came from (e.g. "batch", "ema-of-running", "standing", "none")
    gen_batch: int  # latents per generator call (a normalisation batch under "batch")
    truncation: float
    seed: int  # of the evaluation latents (and of KID's subsets)
    kid_subset_size: int | None  # actually used: min(nominal, ref_count, num_gen)
    kid_subsets: int | None
    pr_k: int | None


def list_protocols() -> list[str]:
    """Registered protocol names."""
    return sorted(PROTOCOLS)


def check_protocol(name: str) -> str:
    """The current name of protocol ``name`` (a former name is noted); :class:`BenchError` for an unknown
    name, suggesting close ones."""
    name = current(name)
    if name not in PROTOCOLS:
        close = close_names(name, list_protocols())
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise BenchError(f"unknown metric {name!r} (known: {', '.join(list_protocols())}){hint}")
    return name


def detector_for(name: str, detector: str, pr_detector: str = PR_DETECTOR) -> str:
    """The detector protocol ``name`` is scored with: ``pr_detector`` for precision/recall, else ``detector``."""
    return pr_detector if PROTOCOLS[name].kind == "pr" else detector


def sampling_for(p: EvalProtocol, sampling: Sampling) -> tuple[Sampling, int]:
    """The model's sampling convention under protocol ``p`` and the generation batch it uses."""
    resolved = sampling.with_bn(p.bn_mode)
    return resolved, p.gen_batch or resolved.batch


def generated_for(p: EvalProtocol, gen_batch: int) -> int:
    """Images protocol ``p`` really generates at ``gen_batch`` per call: ``num_gen``, or with
    ``full_batches`` the whole calls only (the official FastGAN ``eval.py`` drops the remainder)."""
    return p.num_gen // gen_batch * gen_batch if p.full_batches else p.num_gen


def make_spec(
    name: str, det: Detector, dataset: features.EvalDataset, *, seed: int, weights: str, sampling: Sampling
) -> EvalSpec:
    """The :class:`EvalSpec` of protocol ``name`` for this detector, dataset and model sampling convention."""
    p = PROTOCOLS[name]
    standard = det.standard and det.name == p.standard_detector
    resolved, gen_batch = sampling_for(p, sampling)
    num_gen = generated_for(p, gen_batch)
    n_ref, ref_filter = len(dataset.images), features.reference_filter(dataset)
    chain = features.resize_chain(p.mode, p.pre_resize, dataset.resolution, ref_filter)
    kid_size = subset_size_for(p.kid_subset_size, n_ref, num_gen) if p.kind == "kid" else None
    return EvalSpec(
        metric=name, kind=p.kind, detector=det.name, detector_sha256=det.sha256,
        detector_standard=standard, mode=p.mode, num_gen=num_gen, reference=p.reference,
        ref_count=n_ref, ref_resolution=dataset.resolution, ref_filter=ref_filter, pre_resize=p.pre_resize,
        resize_chain=chain, weights=weights, bn_mode=resolved.bn, bn_stats=resolved.stats,
        gen_batch=gen_batch, truncation=p.truncation, seed=seed,
        kid_subset_size=kid_size, kid_subsets=p.kid_subsets, pr_k=p.pr_k,
    )  # fmt: skip


def evaluate(
    model: features.ImageGenerator,
    dataset: features.EvalDataset,
    metrics: Sequence[str],
    *,
    detector: str,  # detector of FID and KID (bench.metrics.detectors)
    device: torch.device | str,
    cache_dir: Path,  # reference features are cached here
    seed: int = 0,  # of the evaluation latents and KID subsets
    weights: str = "ema",  # generator weights: "ema" or "raw"
    detectors: DetectorCache | None = None,  # reuse loaded detectors across calls (None: load here)
    pr_detector: str = PR_DETECTOR,  # detector of precision/recall (its standard one: vgg16-fc2)
    progress: Callable[[int], None] | None = None,  # called with the number of images each generated batch adds
) -> list[dict[str, Any]]:
    """One row per metric (two for precision/recall), in the order of ``metrics`` (former names: current ones).

    Row: ``metric``, ``value``, ``std`` (KID only, else None), the :class:`EvalSpec` fields and
    ``eval_seconds`` (the shared time of its feature group plus its own scoring). Protocols sharing
    (num_gen, mode, pre_resize, BatchNorm mode, generation batch, truncation) share one generation
    and featurization pass, also when FID/KID and precision/recall use different detectors (each
    image goes through both). Every detector a protocol needs is loaded before anything is generated.
    """
    names = list(dict.fromkeys(check_protocol(m) for m in metrics))  # a former name gives the current one's rows
    check_detector(detector)
    check_detector(pr_detector)
    if weights not in WEIGHTS:
        raise BenchError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    detectors = detectors or DetectorCache()
    groups = _groups(names, model.sampling)
    # Which detector each protocol uses, all loaded up front: a missing weights file stops before any generation.
    det_of = {name: detector_for(name, detector, pr_detector) for name in names}
    loaded = {(det_of[n], PROTOCOLS[n].mode): detectors.get(det_of[n], device, PROTOCOLS[n].mode) for n in names}
    rows: dict[str, list[dict[str, Any]]] = {}
    for group in groups:
        t0 = time.perf_counter()
        p = PROTOCOLS[group[0]]
        used = list(dict.fromkeys(det_of[name] for name in group))  # detector names, first use first
        dets = [loaded[(d, p.mode)] for d in used]
        real = [features.reference_features(dataset, det, p.mode, p.pre_resize, Path(cache_dir)) for det in dets]
        fake = _generated_features(
            model, p, dets, seed=seed, device=torch.device(device), weights=weights, progress=progress
        )  # fmt: skip
        shared = time.perf_counter() - t0
        for name in group:
            i = used.index(det_of[name])
            spec = make_spec(name, dets[i], dataset, seed=seed, weights=weights, sampling=model.sampling)
            rows[name] = score_features(spec, real[i], fake[i], shared, device)
    return [row for name in names for row in rows[name]]


def generated_count(names: Sequence[str], sampling: Sampling) -> int:
    """Images :func:`evaluate` generates for protocols ``names`` (those sharing a pass count once)."""
    groups = _groups(list(dict.fromkeys(names)), sampling)
    return sum(generated_for(PROTOCOLS[g[0]], sampling_for(PROTOCOLS[g[0]], sampling)[1]) for g in groups)


def _groups(names: list[str], sampling: Sampling) -> list[list[str]]:
    """Protocol names grouped by what their generated features depend on."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for name in names:
        p = PROTOCOLS[name]
        resolved, batch = sampling_for(p, sampling)
        key = (generated_for(p, batch), p.mode, p.pre_resize, resolved.bn, batch, p.truncation)
        groups.setdefault(key, []).append(name)
    return list(groups.values())


def _generated_features(
    model: features.ImageGenerator,
    p: EvalProtocol,
    dets: list[Detector],
    *,
    seed: int,
    device: torch.device,
    weights: str,
    progress: Callable[[int], None] | None,
) -> list[np.ndarray]:
    """Features of protocol ``p``'s generated images under each of ``dets`` (one generation pass)."""
    stacked = _Stacked(dets)
    batch = sampling_for(p, model.sampling)[1]
    feats = features.featurize_generated(
        model, generated_for(p, batch), stacked, p.mode, p.pre_resize, progress, seed=seed, device=device,
        ema=weights == "ema", truncation=p.truncation, bn=p.bn_mode, batch=batch,
    )  # fmt: skip
    return stacked.split(feats)


class _Stacked:
    """Several detectors called as one: their features side by side, split again by :meth:`split`."""

    def __init__(self, dets: list[Detector]) -> None:
        self.dets = dets
        self.widths: list[int] = []

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        parts = [det(images) for det in self.dets]
        self.widths = [part.shape[1] for part in parts]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def on_device(self, images: torch.Tensor) -> torch.Tensor:
        """The features side by side, left on the device."""
        parts = [det.on_device(images) for det in self.dets]
        self.widths = [part.shape[1] for part in parts]
        return torch.cat(parts, dim=1)

    def split(self, feats: np.ndarray) -> list[np.ndarray]:
        """(N, sum of widths) -> each detector's (N, width) features, in the order of ``dets``."""
        return [np.ascontiguousarray(part) for part in np.split(feats, np.cumsum(self.widths)[:-1], axis=1)]


def score_features(
    spec: EvalSpec, real: np.ndarray, fake: np.ndarray, shared: float, device: torch.device | str
) -> list[dict[str, Any]]:
    """Result rows of one protocol from both sets' features (``shared``: seconds spent featurizing)."""
    t0 = time.perf_counter()
    if spec.kind == "fid":
        values = {spec.metric: (fid_from_features(real, fake), None)}
    elif spec.kind == "kid":
        values = {spec.metric: kid_from_features(real, fake, spec.kid_subset_size, spec.kid_subsets, seed=spec.seed)}
    else:
        prec, rec = precision_recall(real, fake, spec.pr_k, device=device)
        values = {f"{spec.metric}_precision": (prec, None), f"{spec.metric}_recall": (rec, None)}
    seconds = shared + time.perf_counter() - t0
    base = dataclasses.asdict(spec)
    return [{**base, "metric": m, "value": v, "std": s, "eval_seconds": seconds} for m, (v, s) in values.items()]
