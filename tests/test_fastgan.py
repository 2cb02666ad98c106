"""FastGAN family: exact parameter counts, parity with the official code, shapes, one step, loaders."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import pytest
import torch

import models
from models.common import count_params
from models.fastgan import FastGAN, PerceptualWeightsMissing, load_official_state

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(os.environ.get("FASTGAN_PARITY_FIXTURE", ROOT / "../shared/fixtures/fastgan_official_256_ngf8.pt"))
VARIANTS = ["baseline", "baseline-skip", "baseline-decode", "fastgan"]
TINY = {"ngf": 8, "ndf": 8, "recon": "mse", "batch_size": 2}

# (G, D) parameters at ngf = ndf = 64 for 256, 512, 1024; fastgan's are the official counts. Every
# ladder row keeps the official D's SLE blocks, so baseline-decode's D is the official D (computed).
COUNTS = {
    "fastgan": [(29_127_846, 11_526_160), (29_174_392, 11_526_496), (29_176_512, 11_528_192)],
    "baseline": [(26_353_830, 8_386_672), (26_367_352, 8_387_008), (26_369_472, 8_388_704)],
    "baseline-skip": [(29_127_846, 8_386_672), (29_174_392, 8_387_008), (29_176_512, 8_388_704)],
    "baseline-decode": [(26_353_830, 11_526_160), (26_367_352, 11_526_496), (26_369_472, 11_528_192)],
}
D_SLE_PARAMS = 1_032_192  # se_2_16, se_4_32, se_8_64 at ndf = 64


def tiny(name: str, resolution: int = 32, **kw) -> FastGAN:
    return models.get_model(name, resolution=resolution, **(TINY | kw))


@pytest.mark.parametrize("name", VARIANTS)
def test_parameter_counts(name: str) -> None:
    for res, (n_g, n_d) in zip((256, 512, 1024), COUNTS[name], strict=True):
        with torch.device("meta"):  # shapes only: no memory, no init cost
            m = models.get_model(name, resolution=res)
        assert (count_params(m.generator), count_params(m.discriminator)) == (n_g, n_d), (name, res)


def test_parity_with_official_code() -> None:
    if not FIXTURE.is_file():
        pytest.skip(f"parity fixture not found at {FIXTURE} (set FASTGAN_PARITY_FIXTURE)")
    fx = torch.load(FIXTURE, weights_only=True)
    width = fx["ngf"]
    m = models.get_model("fastgan", resolution=fx.get("im_size", 256), ngf=width, ndf=width, nz=fx["nz"])
    m.train()  # the fixture was made in train mode

    def fresh() -> None:  # a train-mode forward moves SN vectors and BN statistics
        load_official_state(m, fx["G_state"], fx["D_state"])

    def close(a: torch.Tensor, b: torch.Tensor) -> None:
        assert a.shape == b.shape and (a - b).abs().max().item() <= 1e-5

    with torch.no_grad():
        fresh()
        big, small = m.generator(fx["z"])
        close(big, fx["G_out_big"])
        close(small, fx["G_out_128"])
        for part in range(4):
            fresh()
            out = m.discriminator(fx["D_in"], part)
            ref = fx["D_real"][part]
            close(out.logits, ref["logits"])
            for rec, key in zip(out.recs, ("rec_all", "rec_small", "rec_part"), strict=True):
                close(rec, ref[key])
        fresh()
        close(m.discriminator([fx["D_in"], fx["D_in_128"]]).logits, fx["D_fake_logits"])


@pytest.mark.parametrize("res", [32, 64])
@pytest.mark.parametrize("name", VARIANTS)
def test_forward_shapes(name: str, res: int) -> None:
    torch.manual_seed(0)
    m = tiny(name, res)
    small = res // 2
    big, img_small = m.generator(torch.randn(2, 256))
    assert big.shape == (2, 3, res, res) and img_small.shape == (2, 3, small, small)
    out = m.discriminator(torch.rand(2, 3, res, res), 1 if "decode" in name or name == "fastgan" else None)
    assert out.logits.shape == (2 * 2 * 25,) and out.feat.shape[-2:] == (8, 8)
    assert m.discriminator([big, img_small]).logits.shape == (2 * 2 * 25,)
    if out.recs is not None:
        assert [r.shape for r in out.recs] == [(2, 3, res, res)] * 3
    assert m.generate(torch.randn(3, 256)).shape == (3, 3, res, res)


@pytest.mark.parametrize("name", VARIANTS)
def test_one_train_step(name: str) -> None:
    """Finite detached losses; G, D and g_ema move; decoders and recon only with '-decode'/fastgan."""
    torch.manual_seed(0)
    m = tiny(name)
    with_dec = name in ("baseline-decode", "fastgan")
    assert hasattr(m.discriminator, "decoder_part") == with_dec == m.hparams["decoders"]
    assert hasattr(m.generator, "se_32") == (name in ("baseline-skip", "fastgan")) == m.hparams["g_sle"]
    assert m.hparams["d_sle"]
    nets = ("generator", "discriminator", "g_ema")
    before = {n: [p.detach().clone() for p in getattr(m, n).parameters()] for n in nets}
    losses = m.train_step(torch.rand(2, 3, 32, 32) * 2 - 1, 0)
    assert set(losses) == {"d_real", "d_fake", "g"} | ({"recon"} if with_dec else set())
    for k, v in losses.items():
        assert v.dim() == 0 and not v.requires_grad and torch.isfinite(v), k
    for n in nets:
        changed = sum(not torch.equal(a, b) for a, b in zip(before[n], getattr(m, n).parameters(), strict=True))
        assert changed > len(before[n]) // 2, n
    assert all(p.grad is None for p in m.g_ema.parameters())
    assert {k.split(".")[0] for k in m.state_dict()} == {"generator", "discriminator", "g_ema"}  # no LPIPS


def test_generate_modes_restore_state() -> None:
    torch.manual_seed(0)
    m = tiny("fastgan")
    buffers = [b.clone() for b in m.g_ema.buffers()]
    z = torch.randn(4, 256)
    m.generate(z, bn="running")
    assert m.g_ema.training and all(torch.equal(a, b) for a, b in zip(buffers, m.g_ema.buffers(), strict=True))
    torch.manual_seed(1)
    a = m.generate(z)
    torch.manual_seed(1)
    assert torch.equal(a, m.generate(z)) and m.g_ema.training
    with pytest.raises(ValueError, match="truncation"):
        m.generate(z, truncation=0.7)


def test_load_official_state_prefix_ema_and_errors() -> None:
    torch.manual_seed(0)
    src, dst = tiny("fastgan"), tiny("fastgan")
    g = {f"module.{k}": v for k, v in src.generator.state_dict().items()}
    d = {f"module.{k}": v for k, v in src.discriminator.state_dict().items()}
    ema = [p.detach() + 1 for p in src.generator.parameters()]
    load_official_state(dst, g, d, g_ema=ema)
    for k, v in src.discriminator.state_dict().items():
        assert torch.equal(dst.discriminator.state_dict()[k], v)
    assert all(torch.equal(a, b) for a, b in zip(dst.g_ema.parameters(), ema, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(dst.generator.parameters(), src.generator.parameters(), strict=True))
    with pytest.raises(ValueError, match="unexpected"):
        load_official_state(tiny("baseline-skip"), g, d)  # decoders in the state, none in the model
    with pytest.raises(ValueError, match="shape"):
        load_official_state(tiny("fastgan", ngf=16), g, d)
    with pytest.raises(ValueError, match="g_ema"):
        load_official_state(dst, g, d, g_ema=ema[:-1])


def test_lpips_offline_error_names_the_file(monkeypatch, tmp_path) -> None:
    def no_network(url: str, *args, **kwargs) -> None:
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    m = tiny("fastgan", recon="lpips-vgg")  # LPIPS is built lazily, at the first step
    with pytest.raises(PerceptualWeightsMissing) as err:
        m.train_step(torch.rand(2, 3, 32, 32) * 2 - 1, 0)
    msg = str(err.value)
    assert "vgg16-397923af.pth" in msg and f"{tmp_path}/checkpoints/" in msg and "recon='mse'" in msg


@pytest.mark.parametrize("name", VARIANTS)
def test_generator_and_discriminator_sle_are_separate_switches(name: str) -> None:
    """G's SLE and the decoders are fixed by the name; D's SLE blocks are in every ladder row unless
    ``d_sle=False``, which removes exactly them."""
    m = tiny(name, 64)
    assert hasattr(m.discriminator, "se_8_64") and m.hparams["d_sle"]
    assert not hasattr(tiny(name, 64, d_sle=False).discriminator, "se_8_64")
    g, d = models.param_counts(name, 256)
    assert models.param_counts(name, 256, d_sle=False) == (g, d - D_SLE_PARAMS)
    for key in ("g_sle", "decoders"):
        with pytest.raises(models.ModelConfigError, match=f"{key} is set by the registered model name"):
            tiny(name, **{key: True})


def test_ladder_adds_up_to_fastgan() -> None:
    """Baseline+Skip+decode is FastGAN: each addition's parameters sum to the official model's."""
    base, skip, decode, full = (models.param_counts(n, 256) for n in VARIANTS)
    assert (skip[0] - base[0]) + (decode[0] - base[0]) + base[0] == full[0]
    assert (skip[1] - base[1]) + (decode[1] - base[1]) + base[1] == full[1]
    assert skip[1] == base[1] and decode[0] == base[0]


def test_bad_arguments() -> None:
    with pytest.raises(models.ModelConfigError, match="resolution"):
        models.get_model("fastgan", resolution=48)
    with pytest.raises(models.ModelConfigError, match="recon"):
        models.get_model("fastgan", resolution=32, recon="ssim")
    with pytest.raises(models.ModelConfigError):
        models.get_model("fastgan", resolution=32, sle=False)  # set by the name
