"""Metrics: FID/KID/PR arithmetic, protocol registry, detectors, evaluate() rows and reference cache."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cleanfid.fid import fid_from_feats, frechet_distance, kernel_distance
from PIL import Image
from torch import Tensor, nn
from torchvision.utils import save_image

from bench.errors import BenchError, OfflineError
from bench.metrics import (
    PROTOCOLS,
    DetectorCache,
    EvalProtocol,
    EvalSpec,
    check_detector,
    check_protocol,
    evaluate,
    feature_stats,
    fid_from_features,
    get_detector,
    kid_from_features,
    list_protocols,
    precision_recall,
)
from bench.metrics import detectors as D
from bench.metrics import features as feats_mod
from bench.metrics import protocols as protocols_module
from bench.metrics.features import quantize
from bench.metrics.protocols import generated_count, generated_for
from bench.metrics.scores import kernel_distance as our_kernel_distance
from bench.metrics.scores import subset_size_for
from bench.plan.protocol_names import RENAMED
from models.base import GANModel, Sampling


class TinyGenerator(GANModel):
    """Fixed generator: z (B, 8) -> smooth (B, 3, 32, 32) images in (-1, 1); records its calls
    (``train_bn``: whether the sampled module ran in train mode, i.e. batch-statistics BatchNorm)."""

    z_dim = 8
    sampling = Sampling("none", 50, "none", "test generator")

    def __init__(self, resolution: int = 32) -> None:
        super().__init__()
        self.resolution = resolution
        self.generator = nn.Linear(8, 3 * 4 * 4)
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            self.generator.weight.copy_(torch.randn(self.generator.weight.shape, generator=gen))
            self.generator.bias.zero_()
        self.g_ema = copy.deepcopy(self.generator)
        self.calls: list[dict] = []

    def synthesize(self, g: nn.Module, z: Tensor, truncation: float) -> Tensor:
        self.calls.append({"n": len(z), "ema": g is self.g_ema, "train_bn": g.training})
        x = torch.tanh(g(z)).view(-1, 3, 4, 4)
        return F.interpolate(x, size=self.resolution, mode="bilinear", align_corners=False)


@dataclass
class ImageSet:
    """The dataset attributes evaluate() reads."""

    name: str
    resolution: int
    images: Tensor
    sha256: str

    @classmethod
    def of(cls, images: Tensor, name: str = "toy") -> ImageSet:
        return cls(name, images.shape[-1], images, hashlib.sha256(images.numpy().tobytes()).hexdigest())


class Pool48(nn.Module):
    """A cheap TorchScript detector: 4x4 average colour -> 48 features."""

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, 4).flatten(1) / 255


@pytest.fixture
def pool_detector(tmp_path: Path) -> str:
    path = tmp_path / "pool48.pt"
    torch.jit.script(Pool48()).save(str(path))
    return f"torchscript:{path}"


def procedural(n: int, seed: int, size: int = 32) -> Tensor:
    """(n, 3, size, size) uint8 smooth colour fields."""
    low = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return (F.interpolate(low, size=size, mode="bicubic", align_corners=False).clamp(0, 1) * 255).to(torch.uint8)


def gaussian(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32) + shift


# ---------------------------------------------------------------- FID / KID / PR arithmetic


@pytest.mark.parametrize("n1,n2,d", [(60, 50, 16), (40, 30, 256), (300, 280, 64)])  # full rank and singular
def test_fid_equals_cleanfid_frechet_distance(n1: int, n2: int, d: int) -> None:
    a, b = gaussian(n1, d, 0), gaussian(n2, d, 1, shift=0.3)
    ref = frechet_distance(*feature_stats(a), *feature_stats(b))
    assert fid_from_features(a, b) == pytest.approx(ref, rel=1e-6)
    assert fid_from_features(a, b) == pytest.approx(fid_from_feats(a, b), rel=1e-6)


def test_fid_self_zero_and_symmetric() -> None:
    a, b = gaussian(60, 16, 0), gaussian(50, 16, 1, shift=0.3)
    assert abs(fid_from_features(a, a)) < 1e-6
    assert fid_from_features(a, b) == pytest.approx(fid_from_features(b, a), rel=1e-6)
    with pytest.raises(BenchError):
        fid_from_features(a[:1], b)


def test_kid_matches_cleanfid_caps_subset_and_keeps_rng() -> None:
    real, fake = gaussian(6, 16, 0), gaussian(40, 16, 1, shift=0.5)
    state = np.random.get_state()
    mean, std = kid_from_features(real, fake, subset_size=1000, subsets=20, seed=3)
    assert np.array_equal(np.random.get_state()[1], state[1])
    np.random.seed(3)
    assert mean == pytest.approx(kernel_distance(real, fake, num_subsets=20, max_subset_size=1000), rel=1e-6)
    np.random.set_state(state)
    assert std > 0 and mean > 0
    assert subset_size_for(1000, 6, 40) == 6 and subset_size_for(1000, 5000, 2000) == 1000
    with pytest.raises(BenchError, match="KID needs"):
        kid_from_features(real[:1], fake)


@pytest.mark.parametrize("n1,n2,d,size,dtype", [(6, 40, 16, 1000, np.float32), (120, 90, 64, 50, np.float64)])
def test_kernel_distance_is_cleanfids_bitwise(n1: int, n2: int, d: int, size: int, dtype: type) -> None:
    """Ours (no clean-fid ``fid`` import) gives clean-fid's KID exactly, with the same numpy draws."""
    a, b = gaussian(n1, d, 0).astype(dtype), gaussian(n2, d, 1, shift=0.4).astype(dtype)
    np.random.seed(5)
    ours = our_kernel_distance(a, b, num_subsets=7, max_subset_size=size)
    after = np.random.get_state()[1].copy()
    np.random.seed(5)
    assert ours == kernel_distance(a, b, num_subsets=7, max_subset_size=size)
    assert np.array_equal(np.random.get_state()[1], after)  # as many draws, in the same order
    np.random.seed(5)
    assert ours != our_kernel_distance(b, a, num_subsets=7, max_subset_size=size)  # the order matters


def test_precision_recall_synthetic() -> None:
    real = gaussian(30, 8, 0)
    assert precision_recall(real, real.copy(), k=3) == (1.0, 1.0)
    assert precision_recall(real, gaussian(30, 8, 1, shift=100.0), k=3) == (0.0, 0.0)
    half = np.concatenate([real[:15], gaussian(15, 8, 2, shift=100.0)])
    precision, recall = precision_recall(real, half, k=3)
    assert precision == 0.5 and 0.0 < recall < 1.0
    with pytest.raises(BenchError):
        precision_recall(real[:3], real, k=3)


# ---------------------------------------------------------------- protocols


SHIPPED = re.findall(r'register_protocol\(\s*"([^"]+)"', Path(protocols_module.__file__).read_text())
ADA_METRICS = ("fid50k_full", "kid50k_full", "pr50k3_full", "fid50k", "kid50k", "pr50k3", "is50k")  # stylegan2-ada's


def test_protocol_names_spell_the_protocol() -> None:
    """Kind, count, k (precision/recall) and clean-fid mode are in the name; none is stylegan2-ada's name of
    another evaluation (its fid50k_full resizes with its own Inception: clean-fid's legacy_tensorflow)."""
    assert len(SHIPPED) >= 15 and set(SHIPPED) <= set(list_protocols())
    for name in ["fid5k_full_clean", "fid2k_fastgan", "fid50k_full_clean", "kid5k_full_clean", "pr5k3_full_clean"]:
        assert name in SHIPPED
    for name in SHIPPED:
        p = PROTOCOLS[name]
        if name == "fid2k_fastgan":  # the FastGAN code's own evaluation: not a stylegan2-ada name
            continue
        kind, count, k, pr_k, pr_k_after, mode = re.fullmatch(
            r"(fid|kid|pr)(\d+)(k?)(?:(\d)|_k(\d))?_full_(clean|legacy_tensorflow)", name
        ).groups()  # fmt: skip
        assert p.kind == kind and p.num_gen == int(count) * (1000 if k else 1) and p.mode == mode
        assert p.reference == "full" and p.pr_k == (int(pr_k or pr_k_after) if kind == "pr" else None)
        assert p.mode == "legacy_tensorflow" or name not in ADA_METRICS
    fastgan = PROTOCOLS["fid2k_fastgan"]
    assert (fastgan.mode, fastgan.pre_resize) == ("legacy_pytorch", 256)
    assert (fastgan.bn_mode, fastgan.gen_batch) == ("batch", 16)
    assert PROTOCOLS["fid5k_full_clean"].bn_mode is None  # the family's own
    assert PROTOCOLS["kid5k_full_clean"].kid_subset_size == 1000 and PROTOCOLS["kid5k_full_clean"].kid_subsets == 100


def test_former_names_map_to_the_same_protocols() -> None:
    """Every former name is no longer registered and names a registered protocol of the same kind and count."""
    for old, new in RENAMED.items():
        assert old not in PROTOCOLS and new in SHIPPED
        assert re.match(r"(fid|kid|pr)\d+k?", old).group(0) == re.match(r"(fid|kid|pr)\d+k?", new).group(0)
        assert check_protocol(old) == new and check_protocol(new) == new


def test_unknown_names_suggest() -> None:
    with pytest.raises(BenchError, match="fid5k_full_clean"):
        check_protocol("fid5k")
    with pytest.raises(BenchError, match="inception-v3"):
        check_detector("inception-v4")
    with pytest.raises(BenchError, match="no such file"):
        check_detector("torchscript:/nonexistent/x.pt")


def test_eval_spec_fields_are_the_contract() -> None:
    assert [f.name for f in dataclasses.fields(EvalSpec)] == [
        "metric", "kind", "detector", "detector_sha256", "detector_standard", "mode", "num_gen", "reference",
        "ref_count", "ref_resolution", "ref_filter", "pre_resize", "resize_chain", "weights", "bn_mode", "bn_stats",
        "gen_batch", "truncation", "seed", "kid_subset_size", "kid_subsets", "pr_k",
    ]  # fmt: skip


# ---------------------------------------------------------------- detectors


def test_torchscript_detector(pool_detector: str) -> None:
    det = get_detector(pool_detector, "cpu")
    path = Path(pool_detector.removeprefix("torchscript:"))
    assert det.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and not det.standard
    assert det(torch.rand(2, 3, 299, 299) * 255).shape == (2, 48)
    cache = DetectorCache()
    assert cache.get(pool_detector, "cpu") is cache.get(pool_detector, "cpu")


def test_random_detector_is_fixed_and_leaves_global_rng() -> None:
    state = torch.get_rng_state()
    a, b = get_detector("inception-random", "cpu"), get_detector("inception-random", "cpu")
    assert torch.equal(torch.get_rng_state(), state)
    assert a.sha256 == b.sha256 and len(a.sha256) == 64 and not a.standard


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape", [(5, 7, 3), (6, 4)])
def test_to_tensor_is_torchvisions_bitwise(dtype: type, shape: tuple[int, ...]) -> None:
    from torchvision.transforms import ToTensor

    img = (np.random.default_rng(0).random(shape) * 255).astype(dtype)
    ours, theirs = feats_mod.to_tensor(img), ToTensor()(img)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape and torch.equal(ours, theirs)
    assert ours.is_contiguous() and (ours.max() <= 1 if dtype == np.uint8 else ours.max() > 1)


def test_quantize_equals_png_dump(tmp_path: Path) -> None:
    x = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2.2 - 1.1
    save_image(x.add(1).mul(0.5), tmp_path / "x.png")
    png = torch.from_numpy(np.array(Image.open(tmp_path / "x.png").convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(quantize(x), png)


class _BrokenResponse:
    """A download that delivers some bytes, then the connection drops."""

    def __init__(self) -> None:
        self.sent = False

    def read(self, n: int = -1) -> bytes:
        if self.sent:
            raise urllib.error.URLError("connection reset")
        self.sent = True
        return b"partial" * 100

    def __enter__(self) -> _BrokenResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize("failure", ["no-network", "dropped"])
def test_offline_inception_v3_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    def fake_urlopen(*args: object, **kwargs: object) -> _BrokenResponse:
        if failure == "no-network":
            raise urllib.error.URLError("[Errno -2] Name or service not known")
        return _BrokenResponse()

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(D, "INCEPTION_DIR", tmp_path / "weights")
    monkeypatch.delenv(D.INCEPTION_ENV, raising=False)
    cache = tmp_path / "cache"
    data = ImageSet.of(procedural(4, 0))
    with pytest.raises(OfflineError) as err:
        evaluate(TinyGenerator(), data, ["fid500_full_clean"], detector="inception-v3", device="cpu", cache_dir=cache)
    message = str(err.value)
    assert "\n" not in message and "inception-random" in message and D.INCEPTION_ENV in message
    assert str(tmp_path / "weights" / "inception-2015-12-05.pt") in message
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_offline_pytorch_fid_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    import cleanfid.inception_pytorch as ip

    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(ip, "load_state_dict_from_url", no_network)
    with pytest.raises(OfflineError, match="pt_inception-2015-12-05"):
        get_detector("inception-v3", "cpu", mode="legacy_pytorch")


def test_inception_env_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(D.INCEPTION_ENV, "/nonexistent/inception.pt")
    with pytest.raises(BenchError, match=D.INCEPTION_ENV):
        get_detector("inception-v3", "cpu")


# ---------------------------------------------------------------- evaluate()


@pytest.fixture
def small_protocols(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, proto in {
        "fid12_t": EvalProtocol("fid", 12),
        "kid12_t": EvalProtocol("kid", 12, kid_subset_size=1000, kid_subsets=10),
        "pr12_t": EvalProtocol("pr", 12, pr_k=3),
        "fid12_train": EvalProtocol("fid", 12, bn_mode="batch", pre_resize=16),
    }.items():
        monkeypatch.setitem(PROTOCOLS, name, proto)


def _count_featurize(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = feats_mod.featurize

    def counted(*args: object, **kwargs: object) -> np.ndarray:
        out = real(*args, **kwargs)
        calls.append(len(out))
        return out

    monkeypatch.setattr(feats_mod, "featurize", counted)
    return calls


def test_evaluate_rows_groups_and_rng(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool_detector: str, small_protocols: None
) -> None:
    gen, data = TinyGenerator(), ImageSet.of(procedural(10, 0))
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    metrics = ["fid12_t", "kid12_t", "pr12_t", "fid12_train"]
    rows = evaluate(
        gen, data, metrics, detector=pool_detector, pr_detector=pool_detector, device="cpu",
        cache_dir=tmp_path / "c", seed=5,
    )  # fmt: skip
    assert torch.equal(torch.get_rng_state(), torch_state) and np.array_equal(np.random.get_state()[1], np_state[1])
    assert [r["metric"] for r in rows] == ["fid12_t", "kid12_t", "pr12_t_precision", "pr12_t_recall", "fid12_train"]
    columns = {"metric", "value", "std", "eval_seconds"} | {f.name for f in dataclasses.fields(EvalSpec)}
    assert all(set(r) == columns for r in rows)
    by = {r["metric"]: r for r in rows}
    assert by["kid12_t"]["std"] is not None and by["fid12_t"]["std"] is None
    assert by["kid12_t"]["kid_subset_size"] == 10  # capped by the 10 reference images
    assert all(r["detector_standard"] is False and r["ref_count"] == 10 and r["seed"] == 5 for r in rows)
    assert by["fid12_t"]["value"] > 0 and 0 <= by["pr12_t_recall"]["value"] <= 1
    # one generator pass per group: (fid, kid, pr) share one; fid12_train is its own, in train-mode BN
    assert [(c["n"], c["train_bn"]) for c in gen.calls] == [(12, False), (12, True)]
    assert by["fid12_train"]["bn_mode"] == "batch" and by["fid12_train"]["pre_resize"] == 16
    assert by["fid12_t"]["bn_mode"] == "none" and by["fid12_t"]["gen_batch"] == 50


def test_official_protocols_drop_the_short_last_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool_detector: str
) -> None:
    """A protocol claiming FastGAN's eval.py generates n // batch whole batches (30 at batch 8: 24) and
    records that count; the others keep the short last batch (30 = 8 + 8 + 8 + 6)."""
    monkeypatch.setitem(PROTOCOLS, "fid30_official_t", EvalProtocol("fid", 30, gen_batch=8, full_batches=True))
    monkeypatch.setitem(PROTOCOLS, "fid30_t", EvalProtocol("fid", 30, gen_batch=8))
    gen, data = TinyGenerator(), ImageSet.of(procedural(10, 0))
    kw = dict(detector=pool_detector, device="cpu", cache_dir=tmp_path)
    seen: list[int] = []
    official = evaluate(gen, data, ["fid30_official_t"], progress=seen.append, **kw)[0]
    assert [c["n"] for c in gen.calls] == [8, 8, 8] and sum(seen) == 24 and official["num_gen"] == 24
    gen.calls.clear()
    other = evaluate(gen, data, ["fid30_t"], **kw)[0]
    assert [c["n"] for c in gen.calls] == [8, 8, 8, 6] and other["num_gen"] == 30
    assert generated_count(["fid30_official_t", "fid30_t"], gen.sampling) == 54  # two passes: 24 + 30
    official_fastgan = PROTOCOLS["fid2k_fastgan"]
    assert official_fastgan.full_batches and generated_for(official_fastgan, 16) == 2000  # 125 whole batches
    assert generated_for(PROTOCOLS["fid5k_full_clean"], 16) == 5000 and generated_for(official_fastgan, 48) == 1968


def test_reference_cache_hit_and_invalidation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool_detector: str, small_protocols: None
) -> None:
    cache, data = tmp_path / "c", ImageSet.of(procedural(10, 0))
    kw = {"detector": pool_detector, "device": "cpu", "cache_dir": cache}
    calls = _count_featurize(monkeypatch)
    first = evaluate(TinyGenerator(), data, ["fid12_t"], **kw)
    assert calls == [10, 12] and len(list(cache.glob("ref-*.npz"))) == 1
    calls.clear()
    again = evaluate(TinyGenerator(), data, ["fid12_t"], **kw)
    assert calls == [12] and again[0]["value"] == first[0]["value"]  # reference features from the cache
    calls.clear()
    changed = data.images.clone()
    changed[0, 0, 0, 0] ^= 1
    evaluate(TinyGenerator(), ImageSet.of(changed), ["fid12_t"], **kw)
    assert calls == [10, 12] and len(list(cache.glob("ref-*.npz"))) == 2
    assert not list(cache.glob(".*"))  # no temporary files left


def test_evaluate_passes_weights_and_rejects_bad_input(
    tmp_path: Path, pool_detector: str, small_protocols: None
) -> None:
    gen, data = TinyGenerator(), ImageSet.of(procedural(10, 0))
    kw = {"detector": pool_detector, "device": "cpu", "cache_dir": tmp_path}
    rows = evaluate(gen, data, ["fid12_t"], weights="raw", **kw)
    assert rows[0]["weights"] == "raw" and gen.calls[0]["ema"] is False
    with pytest.raises(BenchError, match="weights"):
        evaluate(gen, data, ["fid12_t"], weights="best", **kw)
    with pytest.raises(BenchError, match="did you mean"):
        evaluate(gen, data, ["fid12_tt"], **kw)


def test_rows_record_the_prepared_filter(tmp_path: Path, pool_detector: str, small_protocols: None) -> None:
    from bench.data.store import Dataset

    images = procedural(10, 0)
    data = Dataset("toy", 32, images, {"sha256": ImageSet.of(images).sha256, "resize_filter": "lanczos"})
    rows = evaluate(TinyGenerator(), data, ["fid12_t"], detector=pool_detector, device="cpu", cache_dir=tmp_path)
    assert rows[0]["ref_filter"] == "lanczos" and rows[0]["ref_resolution"] == 32


def test_featurize_prepares_the_next_batch_while_the_detector_runs() -> None:
    """The detector's call on batch 0 waits until batch 1 has been drawn: only a pipelined
    featurize gets past it. Drawing (the generator) and detecting stay in one thread, so the two
    networks never run at once. Features come out in order, as one batch after another."""
    import threading

    drawn = [threading.Event() for _ in range(3)]
    threads = set()

    def batches():
        for i in range(3):
            threads.add(threading.get_ident())
            drawn[i].set()
            yield torch.full((2, 3, 4, 4), i, dtype=torch.uint8)

    def detector(images: Tensor) -> np.ndarray:
        threads.add(threading.get_ident())
        i = int(images[0, 0, 0, 0])
        if i < 2:
            assert drawn[i + 1].wait(timeout=30), f"batch {i + 1} not drawn while the detector ran on batch {i}"
        return images.flatten(1)[:, :1].numpy()

    feats = feats_mod.featurize(batches(), detector, lambda img: torch.from_numpy(img).permute(2, 0, 1).float())
    assert feats.flatten().tolist() == [0, 0, 1, 1, 2, 2]
    assert threads == {threading.get_ident()}


def test_nan_images_are_an_error_not_black_pixels() -> None:
    """Finite weights that overflow to NaN images: quantized they would score as black; they raise instead."""
    import models
    from bench.errors import NonFiniteImages

    model = models.get_model("baseline", resolution=32, recon="mse", ngf=4, ndf=4, batch_size=4)
    model.load_state_dict({k: v * 1e10 if v.is_floating_point() else v for k, v in model.state_dict().items()})
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    batches = feats_mod.generated_batches(model, 4, seed=0, device=torch.device("cpu"), ema=True, truncation=1.0)
    with pytest.raises(NonFiniteImages, match="NaN or infinite pixels"):
        next(batches)
