"""Self-supervision strategies for FastGAN's discriminator (Table D): heads, losses, variants."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import models
from models.common import diff_augment
from models.fastgan import FastGAN
from models.selfsup import ASPECT_RATIOS, CROP_AREA, stretch

TINY = {"ngf": 4, "ndf": 4, "recon": "mse", "batch_size": 4}
SS_VARIANTS = {  # name -> (decoders, enabled SS losses)
    "fastgan-ss-contrastive": (False, {"ss_contrastive"}),
    "fastgan-ss-aspect": (False, {"ss_aspect"}),
    "fastgan-ss-ae": (True, set()),
    "fastgan-ss-contrastive-aspect": (False, {"ss_contrastive", "ss_aspect"}),
    "fastgan-ss-all": (True, {"ss_contrastive", "ss_aspect"}),
}


def tiny(name: str, **kw) -> FastGAN:
    return models.get_model(name, resolution=32, **(TINY | kw))


def smooth_batch(n: int = 4, res: int = 32) -> torch.Tensor:
    """A fixed batch of distinct smooth random images in [-1, 1]."""
    g = torch.Generator().manual_seed(0)
    return F.interpolate(torch.rand(n, 3, 4, 4, generator=g) * 2 - 1, size=res, mode="bilinear")


def test_variant_configuration() -> None:
    for name, (decoders, ss) in SS_VARIANTS.items():
        m = tiny(name)
        assert m.hparams["g_sle"] and m.hparams["d_sle"] and m.hparams["decoders"] == decoders, name
        assert set(m.ss.weights) == ss and all(m.ss.weights[k] == 1.0 for k in ss), name
        assert hasattr(m.ss, "contrastive") == ("ss_contrastive" in ss), name
        assert {id(p) for p in m.ss.parameters()} <= {id(p) for g in m.opt_d.param_groups for p in g["params"]}
    assert models.get_model("fastgan-ss-ae", resolution=32, **TINY).hparams == tiny("fastgan").hparams


@pytest.mark.parametrize("name,key", [("fastgan-ss-contrastive", "ss_contrastive"), ("fastgan-ss-aspect", "ss_aspect")])
def test_aux_loss_is_finite_and_learnable_alone(name: str, key: str) -> None:
    """Trained alone on a fixed batch (fixed augmentations and labels), D + head learn the task."""
    torch.manual_seed(0)
    m = tiny(name)
    D, real = m.discriminator, smooth_batch()
    opt = torch.optim.Adam([*D.parameters(), *m.ss.parameters()], lr=2e-3)
    history = []
    for _ in range(12):
        torch.manual_seed(1)  # the same views / stretches every iteration
        aug = diff_augment(real, m.cfg.policy)
        losses = m.ss(D.features, real, aug, D.features(aug))
        assert set(losses) == {key} and torch.isfinite(losses[key])
        opt.zero_grad(set_to_none=True)
        losses[key].backward()
        opt.step()
        history.append(losses[key].item())
    assert sum(history[-3:]) / 3 < 0.8 * history[0], history


def test_aux_losses_only_in_discriminator_step() -> None:
    torch.manual_seed(0)
    m = tiny("fastgan-ss-all")
    calls = []

    def record(module: torch.nn.Module, args: tuple) -> None:  # is D being trained at this call?
        calls.append(all(p.requires_grad for p in m.discriminator.parameters()))

    for head in (m.ss.contrastive, m.ss.aspect):
        head.register_forward_pre_hook(record)
    heads_before = [p.detach().clone() for p in m.ss.parameters()]
    losses = m.train_step(smooth_batch(), 0)
    assert {"ss_contrastive", "ss_aspect", "recon", "d_real", "d_fake", "g"} == set(losses)
    assert all(torch.isfinite(v) and v.dim() == 0 and not v.requires_grad for v in losses.values())
    assert calls == [True, True, True]  # contrastive on two views + aspect, all in the D step
    assert all(not torch.equal(a, b) for a, b in zip(heads_before, m.ss.parameters(), strict=True) if a.dim() == 2)


def _step(name: str, **kw) -> tuple[dict, dict]:
    torch.manual_seed(0)
    m = tiny(name, **kw)
    torch.manual_seed(1)
    losses = m.train_step(smooth_batch(), 0)
    return m.state_dict(), losses


@pytest.mark.parametrize(
    "variant,zero,baseline",
    [
        ("fastgan-ss-all", {"ss_contrastive": 0.0, "ss_aspect": 0.0}, "fastgan"),
        ("fastgan-ss-all", {"ss_contrastive": 0.0, "ss_aspect": 0.0, "recon_weight": 0.0}, "baseline-skip"),
    ],
)
def test_zero_weights_equal_the_baseline_step_exactly(variant: str, zero: dict, baseline: str) -> None:
    state, losses = _step(variant, **zero)
    ref_state, ref_losses = _step(baseline)
    assert state.keys() == ref_state.keys()
    assert all(torch.equal(state[k], ref_state[k]) for k in state)
    assert losses.keys() == ref_losses.keys() and all(torch.equal(losses[k], ref_losses[k]) for k in losses)


def test_stretch_geometry() -> None:
    """Ratio a: a centred crop of width sqrt(CROP_AREA a) and height sqrt(CROP_AREA / a), resized to the square."""
    ramp = torch.linspace(-1, 1, 32).expand(1, 1, 32, 32)  # varies along the width
    for a in ASPECT_RATIOS:
        out = stretch(ramp, torch.tensor([a]))[0, 0]
        half_width = (CROP_AREA * a) ** 0.5  # the crop's half-extent in [-1, 1] units
        assert out.shape == (32, 32) and torch.allclose(out, out[:1].expand(32, 32), atol=1e-6)  # rows equal
        assert abs(out[0, -1] - half_width) < 0.05 and abs(out[0, 0] + half_width) < 0.05, a


def test_every_aspect_class_is_resampled_alike() -> None:
    """No class is answerable from resampling alone: ratio 1 is resampled too, and white noise comes
    out with the same total gradient energy for every class (only its split between x and y, the
    stretch itself, differs)."""
    torch.manual_seed(0)
    noise = torch.randn(64, 1, 64, 64)
    energies = []
    for a in ASPECT_RATIOS:
        y = stretch(noise, torch.full((64,), a))
        gx, gy = (y.diff(dim=3).square().mean().item(), y.diff(dim=2).square().mean().item())
        energies.append(gx + gy)
    assert max(energies) / min(energies) < 1.05, energies
    assert not torch.allclose(stretch(noise[:1], torch.tensor([1.0])), noise[:1], atol=0.1)


def test_aspect_views_pad_alike_for_every_class() -> None:
    """The adversarial augmentation (translation pads with zeros) comes after stretching, so its
    borders do not depend on the class: a constant image gives the same view for every class."""
    m = tiny("fastgan-ss-aspect", policy="translation")
    ones = torch.ones(4, 3, 32, 32)
    views = []
    for k in range(len(ASPECT_RATIOS)):
        torch.manual_seed(0)
        views.append(m.ss.aspect_views(ones, torch.full((4,), k)))
    assert all(torch.allclose(v, views[0], atol=1e-5) for v in views) and (views[0] == 0).any()


def test_self_supervision_losses_are_balanced_at_initialisation() -> None:
    """Variant e: the reconstruction, contrastive and aspect terms are of one size at initialisation
    (each a batch sum of per-image terms of order one); none outweighs another by construction."""
    for seed in range(2):
        torch.manual_seed(seed)
        m = tiny("fastgan-ss-all", batch_size=8)
        losses = m.train_step(smooth_batch(8), 0)
        terms = [losses[k].item() * w for k, w in (("recon", 1.0), *m.ss.weights.items())]
        assert len(terms) == 3 and max(terms) / min(terms) < 2.5, losses


def test_aspect_ratios_must_keep_crops_inside() -> None:
    with pytest.raises(models.ModelConfigError, match="ss_aspect_ratios"):
        tiny("fastgan-ss-aspect", ss_aspect_ratios=[1.0, 3.0])


@pytest.mark.parametrize(
    "name, d_params",
    [  # at 256 px, ngf = ndf = 64 (computed): D plus the heads D's optimizer trains; G is fastgan's
        ("fastgan-ss-contrastive", 8_386_672 + 328_320),
        ("fastgan-ss-aspect", 8_386_672 + 265_221),
        ("fastgan-ss-ae", 11_526_160),
        ("fastgan-ss-contrastive-aspect", 8_386_672 + 593_541),
        ("fastgan-ss-all", 11_526_160 + 593_541),
    ],
)
def test_parameter_counts(name: str, d_params: int) -> None:
    assert models.param_counts(name, 256) == (29_127_846, d_params)
