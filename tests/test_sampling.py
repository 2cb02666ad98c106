"""Each family is sampled for evaluation the way its authors sample it (issue: numbers a reviewer accepts).

FastGAN: the official code never calls ``eval()`` on its generator, so BatchNorm normalises each
generation batch (16 latents in ``eval.py``) by its own statistics. The harness's old path
(eval-mode BatchNorm with running statistics copied from the raw generator into the EMA one)
gives other images; the new path must equal a straightforward re-implementation of the
official sampling on the same weights.
"""

from __future__ import annotations

import copy

import pytest
import torch

import models
from bench.metrics import features
from models.fastgan import Generator

SEED = 3


def _trained_fastgan(steps: int = 30) -> models.GANModel:
    torch.manual_seed(0)
    model = models.get_model("fastgan", resolution=32, ngf=8, ndf=8, recon="mse", batch_size=4, ema_beta=0.9)
    gen = torch.Generator().manual_seed(1)
    real = torch.rand(16, 3, 32, 32, generator=gen) * 2 - 1
    for step in range(steps):
        model.train_step(real[(step * 4) % 16 :][:4], step)
    return model


def _official_sampling(model: models.GANModel, num: int, seed: int) -> torch.Tensor:
    """The official eval.py, written out: a fresh generator holding the EMA weights (and the raw
    generator's BatchNorm buffers, as ``load_params`` copies parameters only), never put in eval
    mode, called on batches of 16 latents; images quantized as ``save_image`` writes them."""
    net = Generator(model.resolution, 8, model.z_dim, sle=True)
    net.load_state_dict(model.generator.state_dict())
    with torch.no_grad():
        for p, e in zip(net.parameters(), model.g_ema.parameters(), strict=True):
            p.copy_(e)
    z_all = features.sample_latents(num, model.z_dim, seed)
    out = []
    with torch.no_grad():
        for i, z in enumerate(z_all.split(16)):
            torch.manual_seed(seed * 1_000_003 + i)  # the noise inputs' draws, as the harness seeds them
            img = net(z)[0]
            out.append(img.add(1).mul(0.5).mul(255).add(0.5).clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def test_fastgan_evaluation_samples_as_the_official_code() -> None:
    model = _trained_fastgan()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert model.sampling.bn == "batch" and model.sampling.batch == 16
    new = torch.cat(
        list(features.generated_batches(model, 48, seed=SEED, device=torch.device("cpu"), ema=True, truncation=1.0))
    )
    assert torch.equal(new, _official_sampling(model, 48, SEED))
    # the old path: eval-mode BatchNorm on the running statistics the EMA copied from the raw G
    old = torch.cat(
        list(
            features.generated_batches(
                model, 48, seed=SEED, device=torch.device("cpu"), ema=True, truncation=1.0, bn="running", batch=50
            )
        )
    )
    assert (new.float() - old.float()).abs().mean() > 5.0  # uint8 levels: clearly other images
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # sampling changed nothing


def test_batch_statistics_make_the_generation_batch_part_of_the_protocol() -> None:
    model = _trained_fastgan(steps=5)
    kw = dict(seed=SEED, device=torch.device("cpu"), ema=True, truncation=1.0)
    by16 = torch.cat(list(features.generated_batches(model, 32, batch=16, **kw)))
    by32 = torch.cat(list(features.generated_batches(model, 32, batch=32, **kw)))
    assert not torch.equal(by16, by32)


def test_biggan_standing_statistics_are_recomputed_and_never_stored() -> None:
    torch.manual_seed(0)
    model = models.get_model("biggan", resolution=32, ch=4, batch_size=4, ema_start=0, ema_decay=0.5)
    real = torch.rand(model.reals_per_step, 3, 32, 32) * 2 - 1
    for step in range(3):
        model.train_step(real, step)
    assert model.sampling.bn == "batch" and model.sampling.batch == 4  # DA's eval.py: train mode, batch_size
    state = {k: v.clone() for k, v in model.state_dict().items()}
    z = torch.randn(8, model.z_dim)
    batch, running, standing = model.generate(z), model.generate(z, bn="running"), model.generate(z, bn="standing")
    assert not torch.equal(running, standing) and not torch.equal(batch, running)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    bns = [m for m in model.g_ema.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.momentum == 0.1 for m in bns)  # the cumulative-average switch is undone


@pytest.mark.parametrize("name", ["stylegan2-lite"])
def test_families_without_batchnorm_declare_it(name: str) -> None:
    model = models.get_model(
        name, resolution=32, channel_base=256, channel_max=16, z_dim=16, w_dim=16, mapping_layers=2
    )
    assert model.sampling.bn == "none"
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in copy.deepcopy(model).modules())
