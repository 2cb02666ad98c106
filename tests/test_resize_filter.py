"""The official FastGAN resize (``resize_filter = "bilinear"``): its own cache, its own run id, and
fid2k_fastgan's reference images reaching the detector exactly as in the official FID script."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image

import bench.data.paper as data_paper
from bench.data.catalog import load_dataset
from bench.data.prepare import prepare_dataset
from bench.errors import DataError, SuiteError
from bench.metrics import features
from bench.metrics.protocols import PROTOCOLS
from bench.plan.specs import RunSpec
from bench.plan.suites import load_suite


@pytest.fixture
def originals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Five noisy non-square photos in a folder, registered as the whole ``obama`` set."""
    info = data_paper.PAPER_DATASETS["obama"]
    monkeypatch.setitem(data_paper.PAPER_DATASETS, "obama", dataclasses.replace(info, count=5))
    rng = np.random.default_rng(0)
    folder = tmp_path / "obama"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (270, 300, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _official_resize(path: Path, size: int) -> torch.Tensor:
    """The official code's image path: ImageFolder's loader, then ``transforms.Resize((size, size))``."""
    with Image.open(path) as img:
        return torch.from_numpy(np.array(T.Resize((size, size))(img.convert("RGB")))).permute(2, 0, 1)


def test_bilinear_prepare_is_its_own_cache_equal_to_the_official_resize(tmp_path: Path, originals: Path) -> None:
    cache = tmp_path / "cache"
    lanczos = prepare_dataset("obama", originals, cache_dir=cache, resolution=16)
    bilinear = prepare_dataset("obama", originals, cache_dir=cache, resolution=16, resize_filter="bilinear")
    names = sorted(p.name for p in cache.iterdir())
    assert names == ["obama-16.json", "obama-16.pt", "obama.bilinear-16.json", "obama.bilinear-16.pt"]
    assert (lanczos.manifest["resize_filter"], bilinear.manifest["resize_filter"]) == ("lanczos", "bilinear")
    official = torch.stack([_official_resize(p, 16) for p in sorted(originals.iterdir())])
    assert torch.equal(bilinear.images, official) and not torch.equal(lanczos.images, official)
    loaded = load_dataset("obama", 16, cache_dir=cache, resize_filter="bilinear")
    assert loaded.sha256 == bilinear.sha256 != load_dataset("obama", 16, cache_dir=cache).sha256
    assert load_dataset("obama", 8, cache_dir=cache).manifest["derived_from"]["resolution"] == 16  # lanczos: derived
    only = "with resize filter bilinear at 16 px only.*--resolution 8 --resize-filter bilinear"
    with pytest.raises(DataError, match=only):
        load_dataset("obama", 8, cache_dir=cache, resize_filter="bilinear")  # never resized twice
    with pytest.raises(DataError, match="resize filter 'bicubic' unknown; choose one of lanczos, bilinear"):
        load_dataset("shapes", 8, cache_dir=cache, resize_filter="bicubic")


def test_fid2k_fastgan_reference_reaches_the_detector_as_in_the_official_fid_script(
    tmp_path: Path, originals: Path
) -> None:
    """Prepared bilinear at 256, then fid2k_fastgan's path, equals the official fid.py on the original
    files (Resize 256, ToTensor, Normalize(0.5, 0.5), pytorch-fid's bilinear resize to 299), up to the
    detector's own [0, 255] -> [-1, 1] scaling; the lanczos-prepared set does not."""
    p = PROTOCOLS["fid2k_fastgan"]
    transform = features.image_transform(p.mode, p.pre_resize)
    normalize = T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    official = torch.stack([normalize(_official_resize(f, 256).float() / 255) for f in sorted(originals.iterdir())])
    official = F.interpolate(official, size=(299, 299), mode="bilinear", align_corners=False)
    for resize_filter, equal in (("bilinear", True), ("lanczos", False)):
        ds = prepare_dataset(
            "obama", originals, cache_dir=tmp_path / resize_filter, resolution=256, resize_filter=resize_filter
        )  # fmt: skip
        ours = torch.stack([transform(img) for img in ds.images.permute(0, 2, 3, 1).numpy()]) / 127.5 - 1
        assert (ours - official).abs().max().item() < 1e-5 if equal else (ours - official).abs().max().item() > 0.1
        chain = features.resize_chain(p.mode, p.pre_resize, ds.resolution, features.reference_filter(ds))
        assert chain == (
            f"reference {resize_filter} to 256 px; both sets: uint8 256 px → PIL bilinear 256 (uint8) → "
            "torch bilinear 299 (float, align_corners=False)"
        )


def test_the_filter_is_part_of_the_run_id_and_a_checked_suite_key(tmp_path: Path) -> None:
    base = RunSpec(suite="s", model="fastgan", dataset="obama", resolution=256, budget_hours=5.0)
    official = dataclasses.replace(base, resize_filter="bilinear")
    assert "resize_filter" not in base.hashed_dict()  # runs made before the field keep their ids
    assert official.run_id != base.run_id and official.hashed_dict()["resize_filter"] == "bilinear"
    text = '[suite]\nname = "f"\nresolution = 32\nresize_filter = "{}"\ndatasets = ["shapes"]\n'
    text += "[budget]\nmax_iters = 2\n[models.baseline]\n"
    (tmp_path / "ok.toml").write_text(text.format("bilinear"))
    assert {c.spec.resize_filter for c in load_suite(str(tmp_path / "ok.toml")).cells} == {"bilinear"}
    (tmp_path / "bad.toml").write_text(text.format("bicubic"))
    with pytest.raises(SuiteError, match="suite.resize_filter: 'bicubic' not one of lanczos, bilinear"):
        load_suite(str(tmp_path / "bad.toml"))
