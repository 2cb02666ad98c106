"""A run's generated images as a PNG folder: exactly the images one of its protocols scores.

For cross-checks with other tools (clean-fid's ``compute_fid(folder, ...)``, torch-fidelity) and
for looking: the latents, seed, truncation, BatchNorm mode and EMA weights are the protocol's,
so the folder holds the same uint8 images the protocol's detector saw (PNG is lossless). The
folder is written under a temporary name and renamed when complete; a ``generated.json`` beside
the images records the run, snapshot and protocol.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from bench.errors import BenchError
from bench.results.io import atomic_write_json, follow_umask, new_folders
from bench.results.runs import RunPaths, load_spec
from bench.training.checkpoints import load_snapshot_model
from bench.training.device import resolve_device


def png_bytes(image: torch.Tensor) -> bytes:
    """A uint8 (3, H, W) image as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    return buf.getvalue()


def generate_folder(
    run_dir: Path,
    outdir: Path,
    *,
    protocol: str = "fid5k_full_clean",  # whose images: count, truncation, BatchNorm mode
    snapshot: str | None = None,  # snapshot file name; default: the newest
    num: int | None = None,  # images (default: the protocol's count); the first ``num`` of them, at most all
    device: str = "auto",
) -> dict[str, Any]:
    """Write the PNGs and ``generated.json`` into ``outdir`` (which must not exist); returns the record."""
    from bench.metrics import check_protocol, features
    from bench.metrics.protocols import PROTOCOLS, generated_for, sampling_for

    protocol = check_protocol(protocol)  # a former name: the current one
    if num is not None and num > PROTOCOLS[protocol].num_gen:
        most = PROTOCOLS[protocol].num_gen
        raise BenchError(
            f"--num {num}: {protocol} scores {most} generated images, and the folder holds the first N of exactly "
            f"those; pass at most {most}, or a --protocol that scores more (e.g. fid50k_full_clean)"
        )
    outdir = Path(outdir)
    if outdir.exists():
        raise BenchError(f"--outdir {outdir}: exists; choose a new folder (nothing is overwritten)")
    paths = RunPaths(Path(run_dir))
    if not paths.spec.exists():
        raise BenchError(f"--run {run_dir}: not a run folder (no spec.json); see results/runs/<suite>/")
    spec, p, dev = load_spec(paths.root), PROTOCOLS[protocol], resolve_device(device)
    model = load_snapshot_model(paths.root, snapshot, dev)
    snaps = sorted(paths.snapshots.glob("snap-*.pt"))
    snapshot = Path(snapshot).name if snapshot else snaps[-1].name
    count = generated_for(p, sampling_for(p, model.sampling)[1]) if num is None else num
    with new_folders(outdir.parent):
        work = Path(tempfile.mkdtemp(dir=outdir.parent, prefix=f".{outdir.name}-"))
        try:
            follow_umask(work, folder=True)
            sampling, gen_batch = sampling_for(p, model.sampling)
            batches = features.generated_batches(
                model, count, seed=spec.seed, device=dev, ema=True, truncation=p.truncation, bn=p.bn_mode,
                batch=gen_batch,
            )  # fmt: skip
            i = 0
            for batch in batches:
                for image in batch:
                    (work / f"{i:06d}.png").write_bytes(png_bytes(image))
                    i += 1
            record = {
                "run_id": spec.run_id, "run": str(paths.root), "snapshot": snapshot, "protocol": protocol,
                "images": i, "seed": spec.seed, "truncation": p.truncation, "bn_mode": sampling.bn,
                "bn_stats": sampling.stats, "gen_batch": gen_batch, "weights": "ema",
                "resolution": spec.resolution,
            }  # fmt: skip
            atomic_write_json(work / "generated.json", record)
            work.rename(outdir)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return record
