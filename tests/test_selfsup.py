"""Self-supervision strategies for FastGAN's discriminator (Table D): heads, losses, variants."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import models
from models.common import diff_augment
from models.fastgan import FastGAN
from models.selfsup import stretch

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
        assert m.hparams["sle"] and m.hparams["decoders"] == decoders, name
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
    ramp = torch.linspace(-1, 1, 32).expand(1, 1, 32, 32)  # varies along the width
    assert torch.allclose(stretch(ramp, torch.tensor([1.0])), ramp, atol=1e-6)
    wide = stretch(ramp, torch.tensor([0.5]))[0, 0]  # centred half of the columns, widened
    assert wide.shape == (32, 32) and 0.45 < wide[0, -1] < 0.55 and -0.55 < wide[0, 0] < -0.45
    tall = stretch(ramp, torch.tensor([2.0]))[0, 0]  # rows stretched, the width untouched
    assert torch.allclose(tall, ramp[0, 0], atol=1e-6)
