"""The Python API: score folders and generators, load a run's generator, collect results.

Every number comes with its protocol: :func:`score_folder` and :func:`score_network` return rows
(dicts) holding the metric's value and every field of its protocol (detector and its sha256, clean-fid
mode, image counts, resize chain, sampling...), as the command line's ``eval --json`` prints them;
:func:`compute_metric` is the one-number shortcut (as clean-fid's ``compute_fid(dir1, dir2)``). Caches
(folders' images at a resolution, reference features) go under ``out/cache/``. Protocols are named as in
``run_bench.py list protocols``; a former name (``fid5k_full``) is read as the current one
(``fid5k_full_clean``), with a note.

The examples run in the tests (tests/test_train_score.py), offline and small: the detector
``effnet-lite0`` (real ImageNet weights; its FID is not comparable with published numbers), protocols
of 200 or 50 images (``fid50_full_clean`` checks plumbing, it measures little), two halves of the 112-image
emoji-faces set at 32 px (folders ``real_a``, ``real_b``), a folder of 56 noise images (``noise``), a
run trained for 10 iterations (``run_dir``) and its results folder (``results``)::

    >>> from bench import api
    >>> same = api.compute_metric(real_a, real_b, protocol="fid200_full_clean", detector="effnet-lite0",
    ...                           out=results)
    >>> other = api.compute_metric(real_a, noise, protocol="fid200_full_clean", detector="effnet-lite0",
    ...                            out=results)
    >>> same < other / 2   # two halves of one image set are far closer than images and noise
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from bench.errors import BenchError
from bench.tools.score import DEFAULT_PROTOCOL, Generator

__all__ = ["Generator", "collect", "compute_metric", "generate", "load_generator", "score_folder", "score_network"]


def compute_metric(
    folder: str | Path,
    reference: str | Path | None = None,
    *,
    data: str | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    detector: str = "inception-v3",
    resolution: int | None = None,
    out: str | Path = "results",
    device: str = "auto",
) -> float:
    """The value of FID or KID ``protocol`` between the images of ``folder`` and those of the folder
    ``reference`` (or the dataset ``data``), both at ``resolution`` (default: ``folder``'s image size).

    Precision/recall gives two numbers: use :func:`score_folder`. Offline, pass ``detector="effnet-lite0"``
    (real ImageNet weights, not comparable with published FID)::

        >>> kid = api.compute_metric(real_a, data="emoji-faces", protocol="kid200_full_clean",
        ...                          detector="effnet-lite0", out=results)
        >>> abs(kid) < 0.05   # KID is unbiased: about 0 (either side) for images of one distribution
        True
    """
    from bench.metrics.protocols import PROTOCOLS
    from bench.plan.protocol_names import current

    if PROTOCOLS.get(protocol := current(protocol)) and PROTOCOLS[protocol].kind == "pr":
        raise BenchError(f"{protocol}: precision/recall gives two numbers; use score_folder for its rows")
    ref = Path(reference) if reference is not None else None
    rows = score_folder(folder, data=data, ref_folder=ref, protocols=[protocol], detector=detector,
                        resolution=resolution, out=out, device=device)  # fmt: skip
    return float(rows[0]["value"])


def score_folder(
    folder: str | Path,
    *,
    data: str | None = None,
    ref_folder: str | Path | None = None,
    protocols: list[str] | None = None,
    detector: str = "inception-v3",
    pr_detector: str | None = None,
    resolution: int | None = None,
    out: str | Path = "results",
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Rows of the images of ``folder`` (in the generator's place) against ``data`` or ``ref_folder`` under
    ``protocols`` (default fid5k_full_clean); a folder with fewer images than a protocol's count is scored
    whole, and its row's ``num_gen`` says how many::

        >>> rows = api.score_folder(noise, data="emoji-faces", protocols=["kid200_full_clean"],
        ...                         detector="effnet-lite0", out=results)
        >>> [(r["metric"], r["num_gen"], r["detector"], r["mode"], r["value"] > 0.05) for r in rows]
        [('kid200_full_clean', 56, 'effnet-lite0', 'clean', True)]
    """
    from bench.tools import score

    ref = Path(ref_folder) if ref_folder is not None else None
    return score.score_folder(
        Path(folder), out=Path(out), data=data, ref_folder=ref, protocols=protocols, detector=detector,
        pr_detector=pr_detector, resolution=resolution, device=device,
    )  # fmt: skip


def score_network(
    network: str | Path,
    *,
    data: str | None = None,
    ref_folder: str | Path | None = None,
    protocols: list[str] | None = None,
    detector: str | None = None,
    pr_detector: str | None = None,
    out: str | Path = "results",
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Rows of a generator of this harness (a run folder, a snapshot in it, or a snapshot file on its own)
    against ``data`` or ``ref_folder`` (default: its run's dataset) under ``protocols`` (default: its run's),
    sampled as its run's evaluations are::

        >>> rows = api.score_network(run_dir, protocols=["fid50_full_clean"], detector="effnet-lite0",
        ...                          out=results)
        >>> [(r["metric"], r["num_gen"], r["step"], r["weights"]) for r in rows]
        [('fid50_full_clean', 50, 10, 'ema')]
    """
    from bench.tools import score

    ref = Path(ref_folder) if ref_folder is not None else None
    return score.score_network(
        Path(network), out=Path(out), data=data, ref_folder=ref, protocols=protocols, detector=detector,
        pr_detector=pr_detector, device=device,
    )  # fmt: skip


def load_generator(network: str | Path, device: str | torch.device = "cpu") -> Generator:
    """A run's generator: ``.spec`` (its RunSpec), ``.model`` (the snapshot's weights, eval mode), ``.snapshot``
    and ``.step``, from a run folder (its newest snapshot), a snapshot in it, or a snapshot file on its own::

        >>> gen = api.load_generator(run_dir)
        >>> gen.spec.model, gen.spec.resolution, gen.step, gen.snapshot.name
        ('baseline', 32, 10, 'snap-00000010.pt')
    """
    from bench.tools.score import load_generator as load

    return load(Path(network), device)


def generate(generator: Generator, num: int, seed: int = 0) -> torch.Tensor:
    """``num`` images (uint8, (num, 3, R, R), on the CPU) from the EMA weights, sampled the way the model's
    family is evaluated (its BatchNorm convention), from latents seeded by ``seed``::

        >>> images = api.generate(api.load_generator(run_dir), 3)
        >>> images.shape, images.dtype
        (torch.Size([3, 3, 32, 32]), torch.uint8)
    """
    from bench.metrics.features import generated_batches

    model = generator.model
    batches = generated_batches(model, num, seed=seed, device=next(model.parameters()).device, ema=True,
                                truncation=1.0)  # fmt: skip
    return torch.cat(list(batches))


def collect(out: str | Path = "results", suite: str | None = None) -> pd.DataFrame:
    """Every stored evaluation row under ``out`` (or one suite's; ``train`` holds the runs of the ``train``
    command) as one tidy DataFrame: a row per run, evaluation and metric, spec and protocol as columns::

        >>> df = api.collect(results, "train")
        >>> sorted(set(df["metric"])), sorted(set(df["eval_point"]))
        (['fid50_full_clean'], [0.0, 1.0])
    """
    from bench.results.collect import collect as collect_rows

    return collect_rows(Path(out), suite)
