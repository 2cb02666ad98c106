"""End-to-end parity with clean-fid on folders of PNGs, with the ``inception-random`` detector.

Our path evaluates a generator in memory (quantize, clean-fid resize, batched detector); clean-fid
reads the same images written as PNGs (``save_image``, as the official FastGAN eval dumps them)
through ``compute_fid(..., custom_feat_extractor=...)``. The 2,048-d features must agree, and so
must FID and KID. FID on 2,048-d features costs one 2048x2048 ``sqrtm`` (tens of seconds on two
cores), so the fast tests score a fixed 64-d random projection of the same features; the full
2,048-d comparison is marked ``slow``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cleanfid.fid import compute_fid, kernel_distance
from PIL import Image
from test_metrics import ImageSet
from torch import Tensor, nn
from torchvision.utils import save_image

from bench.metrics import PROTOCOLS, Detector, EvalProtocol, evaluate, fid_from_features, get_detector
from bench.metrics import detectors as D
from bench.metrics import features as feats_mod
from models.base import GANModel, Sampling

N = 8  # images per folder
SEED = 7  # of the evaluation latents and KID subsets


class TinyGenerator(GANModel):
    """Fixed generator: z (B, 8) -> smooth (B, 3, 32, 32) images in (-1, 1)."""

    z_dim = 8
    sampling = Sampling("none", 50, "none", "test generator")

    def __init__(self) -> None:
        super().__init__()
        self.generator = self.g_ema = nn.Linear(8, 3 * 4 * 4)
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            self.generator.weight.copy_(torch.randn(self.generator.weight.shape, generator=gen))
            self.generator.bias.zero_()

    def synthesize(self, g: nn.Module, z: Tensor, truncation: float) -> Tensor:
        x = torch.tanh(g(z)).view(-1, 3, 4, 4)
        return F.interpolate(x, size=32, mode="bilinear", align_corners=False)


class Recorder:
    """inception-random's 2,048-d features (recorded), times a fixed (2048, 64) Gaussian projection."""

    def __init__(self, det: Detector) -> None:
        self.det = det
        self.proj = torch.randn(2048, 64, generator=torch.Generator().manual_seed(0)) / math.sqrt(2048)
        self.full: list[np.ndarray] = []
        self.projected: list[np.ndarray] = []

    def __call__(self, x: Tensor) -> Tensor:
        full = self.det.net(x)
        out = full @ self.proj
        self.full.append(full.detach().numpy())
        self.projected.append(out.detach().numpy())
        return out

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """(full, projected) features recorded since the last call, real then generated."""
        full, projected = np.concatenate(self.full), np.concatenate(self.projected)
        self.full, self.projected = [], []
        return full, projected


def procedural(n: int, seed: int, size: int = 32) -> Tensor:
    """(n, 3, size, size) uint8 smooth colour fields with values in about [40, 200]."""
    low = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    x = F.interpolate(low, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
    return (40 + 160 * x).to(torch.uint8)


def load_folder(folder: Path) -> Tensor:
    """uint8 (N, 3, H, W) of a folder's PNGs in clean-fid's (sorted) order."""
    arrays = [np.array(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def random_det() -> Detector:
    return get_detector("inception-random", "cpu")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A folder of real PNGs and one of the generator's images dumped with ``save_image``."""
    root = tmp_path_factory.mktemp("parity")
    real, fake = root / "real", root / "fake"
    real.mkdir(), fake.mkdir()
    for i, img in enumerate(procedural(N, 0)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(real / f"{i:03d}.png")
    with torch.no_grad():
        images = TinyGenerator().generate(feats_mod.sample_latents(N, TinyGenerator.z_dim, SEED))
    for i, img in enumerate(images):
        save_image(img.add(1).mul(0.5), fake / f"{i:03d}.png")
    return real, fake


def _dataset(folder: Path) -> ImageSet:
    return ImageSet.of(load_folder(folder), name="real")


@pytest.mark.parametrize("mode, pre_resize", [("clean", None), ("legacy_pytorch", 64)])
def test_parity_with_cleanfid_folders(
    mode: str, pre_resize: int | None, random_det: Detector, folders: tuple[Path, Path],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Same features, FID and KID as clean-fid's folder path: proves resize, quantization and batching."""
    real_dir, fake_dir = folders
    rec = Recorder(random_det)
    monkeypatch.setitem(D._BUILDERS, "random-p64", lambda device, m: Detector("random-p64", "x", False, rec, device))
    monkeypatch.setitem(PROTOCOLS, "fid_par", EvalProtocol("fid", N, mode=mode, pre_resize=pre_resize))
    kid = EvalProtocol("kid", N, mode=mode, pre_resize=pre_resize, kid_subset_size=1000, kid_subsets=50)
    monkeypatch.setitem(PROTOCOLS, "kid_par", kid)
    rows = evaluate(TinyGenerator(), _dataset(real_dir), ["fid_par", "kid_par"], detector="random-p64",
                    device="cpu", cache_dir=tmp_path, seed=SEED)  # fmt: skip
    ours_full, ours = rec.take()

    transform = feats_mod.pre_resizer(pre_resize) if pre_resize else None
    fid_cf = compute_fid(str(real_dir), str(fake_dir), mode=mode, custom_feat_extractor=rec, num_workers=0,
                         batch_size=5, device=torch.device("cpu"), verbose=False,
                         custom_image_tranform=transform)  # fmt: skip
    theirs_full, theirs = rec.take()
    np.random.seed(SEED)
    kid_cf = kernel_distance(theirs[:N], theirs[N:], num_subsets=50, max_subset_size=1000)

    np.testing.assert_allclose(ours_full, theirs_full, rtol=1e-5, atol=1e-6)
    assert rows[0]["value"] == pytest.approx(fid_cf, rel=1e-4)
    assert rows[1]["value"] == pytest.approx(kid_cf, rel=1e-4)
    assert rows[1]["kid_subset_size"] == N and rows[0]["mode"] == mode


def brighten(images: Tensor, offset: int) -> Tensor:
    return (images.int() + offset).clamp(0, 255).to(torch.uint8)


def test_random_detector_is_sane_and_fid_tracks_a_shift(random_det: Detector) -> None:
    """Non-degenerate features; FID(x, x) = 0, symmetric, and monotone in a brightness offset."""
    base = procedural(8, 3)
    transform = feats_mod.image_transform("clean", None)
    rec = Recorder(random_det)
    det = Detector("random-p64", "x", False, rec, torch.device("cpu"))
    feats = {s: feats_mod.featurize(feats_mod.chunks(brighten(base, s), 4), det, transform) for s in (0, 16, 40, 96)}
    full, _ = rec.take()
    assert np.isfinite(full).all() and 1e-3 < np.abs(full).mean() < 1e3
    assert full[:8].std(axis=0).mean() > 1e-4  # images differ in feature space
    assert abs(fid_from_features(feats[0], feats[0])) < 1e-6
    assert fid_from_features(feats[0], feats[40]) == pytest.approx(fid_from_features(feats[40], feats[0]), rel=1e-6)
    fids = [fid_from_features(feats[0], feats[s]) for s in (16, 40, 96)]
    assert 0 < fids[0] < fids[1] < fids[2]


@pytest.mark.slow
def test_full_2048_fid_parity(random_det: Detector, folders: tuple[Path, Path], tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The registered ``inception-random`` detector, unprojected, against ``compute_fid`` (mode clean)."""
    real_dir, fake_dir = folders
    monkeypatch.setitem(PROTOCOLS, "fid_par", EvalProtocol("fid", N))
    rows = evaluate(TinyGenerator(), _dataset(real_dir), ["fid_par"], detector="inception-random", device="cpu",
                    cache_dir=tmp_path, seed=SEED)  # fmt: skip
    fid_cf = compute_fid(str(real_dir), str(fake_dir), mode="clean", custom_feat_extractor=random_det.net,
                         num_workers=0, batch_size=4, device=torch.device("cpu"), verbose=False)  # fmt: skip
    assert rows[0]["value"] == pytest.approx(fid_cf, rel=1e-4)
