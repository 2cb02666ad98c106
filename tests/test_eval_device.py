"""The evaluation path CUDA takes, run on the CPU: clean-fid's resize as tensor operations (bitwise),
and features computed on the device equal the host path's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cleanfid.resize import build_resizer
from torch import Tensor, nn

import models
from bench.metrics import features
from bench.metrics.detectors import Detector
from bench.metrics.resize import clean_resize, device_resizable, taps


def _images(n: int, side: int, seed: int) -> Tensor:
    return torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("side", [32, 256, 512])  # up-sampling (5 taps) and down-sampling (widened support)
def test_clean_resize_is_clean_fids_resize_bit_for_bit(side: int) -> None:
    images = _images(3, side, side)
    images[0] = 0  # flat black: the signs of zero must match too
    images[1, :, : side // 2] = 255  # a hard edge: the bicubic overshoot is clipped
    reference = build_resizer("clean")
    expected = torch.stack([torch.from_numpy(reference(im.permute(1, 2, 0).numpy())).permute(2, 0, 1) for im in images])
    got = clean_resize(images)
    assert got.dtype == torch.float32 and got.shape == (3, 3, 299, 299)
    assert torch.equal(got.view(torch.int32), expected.contiguous().view(torch.int32))


def test_resampling_taps_sum_to_one_and_stay_inside() -> None:
    for n_in, n_out in ((32, 299), (512, 299)):
        index, weight = taps(n_in, n_out)
        sums = np.sum(np.array(weight), axis=0)
        assert np.allclose(sums, 1.0, atol=1e-12) and 0 <= np.min(index) and np.max(index) < n_in
    assert device_resizable("clean", None) and not device_resizable("clean", 256)
    assert not device_resizable("legacy_pytorch", None)


class _Probe(nn.Module):
    """A small detector with real convolutions: (B, 3, 299, 299) in [0, 255] -> (B, 24)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 5, stride=4)

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(torch.relu(self.conv(x / 255)), 2).flatten(1)


def test_device_path_gives_the_host_paths_features() -> None:
    """Generation, quantisation, resize and detection kept on the device (what CUDA runs in clean
    mode) give bitwise the features of the host path (resize in threads, detector per batch)."""
    torch.manual_seed(1)
    model = models.get_model("fastgan", resolution=32, **models.model_info("fastgan").tiny)
    det = Detector("probe", "0" * 64, False, _Probe().eval(), torch.device("cpu"))
    gen = dict(seed=3, device=torch.device("cpu"), ema=True, truncation=1.0, batch=4)
    transform = features.image_transform("clean", None)
    host = features.featurize(features.generated_batches(model, 10, **gen), det, transform)
    device_batches = features.generated_batches(model, 10, to_host=False, **gen)
    on_device = features.featurize_on_device(device_batches, det.on_device)
    assert host.shape == (10, 24) and np.array_equal(host, on_device)
    assert np.array_equal(features.featurize_generated(model, 10, det, "clean", None, **gen), host)
    assert features.featurize_on_device(iter([]), det.on_device).shape == (0, 0)
