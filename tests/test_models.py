"""Every registered model, for free: tiny build, forward, backward through one training step."""

from __future__ import annotations

import json

import pytest
import torch

import models
from models.registry import ModelConfigError

# Narrow widths per family so a step takes well under a second on 2 CPU cores.
SMALL = {
    "baseline": {"ngf": 4, "ndf": 4, "recon": "mse"},
    "fastgan": {"ngf": 4, "ndf": 4, "recon": "mse"},
    "stylegan2": {"channel_base": 256, "channel_max": 16, "z_dim": 16, "w_dim": 16, "mapping_layers": 2},
    "biggan": {"ch": 4},
}


def small_kwargs(name: str) -> dict:
    """The narrow-width overrides of the family ``name`` belongs to (by name prefix)."""
    return next((kw for prefix, kw in SMALL.items() if name.startswith(prefix)), {}) | {"batch_size": 2}


def build(name: str, tmp_path, resolution: int = 32) -> models.GANModel:
    kwargs = small_kwargs(name)
    if name.endswith("-finetune"):
        base = models.get_model(name.removesuffix("-finetune"), resolution=resolution, **kwargs)
        torch.save({"model": base.state_dict()}, tmp_path / "init.pt")
        kwargs["init_from"] = str(tmp_path / "init.pt")
    return models.get_model(name, resolution=resolution, **kwargs)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("name", models.list_models())
def test_model_builds_generates_and_trains_one_step(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    model = build(name, tmp_path)
    assert model.name == name and model.resolution == 32
    json.dumps(model.hparams)  # resolved kwargs go into spec.json
    z = torch.randn(2, model.z_dim)
    assert model.generate(z).shape == (2, 3, 32, 32)
    g0, d0, e0 = _params(model.generator), _params(model.discriminator), _params(model.g_ema)
    real = torch.rand(model.batch_size, 3, 32, 32) * 2 - 1
    losses = model.train_step(real, 0)
    assert losses, "train_step returns its losses"
    for k, v in losses.items():
        assert v.dim() == 0 and not v.requires_grad and torch.isfinite(v), k
    for before, net in ((g0, model.generator), (d0, model.discriminator), (e0, model.g_ema)):
        assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True)), "updated"
    assert all(not p.requires_grad for p in model.g_ema.parameters())


@pytest.mark.parametrize("name", models.list_models())
def test_state_round_trip(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    a = build(name, tmp_path)
    a.train_step(torch.rand(a.batch_size, 3, 32, 32) * 2 - 1, 0)
    torch.save({"model": a.state_dict(), "optim": a.optimizer_state()}, tmp_path / "ck.pt")
    ck = torch.load(tmp_path / "ck.pt", weights_only=True)  # checkpoints never need pickle
    torch.manual_seed(1)
    b = build(name, tmp_path)
    b.load_state_dict(ck["model"])
    b.load_optimizer_state(ck["optim"])
    z = torch.randn(2, a.z_dim)
    outs = []
    for m in (a, b):
        torch.manual_seed(2)  # noise inputs draw from the global RNG
        outs.append(m.generate(z))
    assert torch.equal(outs[0], outs[1])


def test_unknown_name_suggests_and_duplicates_rejected() -> None:
    with pytest.raises(ModelConfigError, match="did you mean fastgan"):
        models.get_model("fastgn", resolution=64)
    with pytest.raises(ModelConfigError, match="already registered"):
        models.register_model("fastgan")(lambda resolution: None)
    with pytest.raises(ModelConfigError, match="fastgan"):
        models.get_model("fastgan", resolution=64, no_such_kwarg=1)


def test_none_overrides_are_dropped() -> None:
    m = models.get_model("baseline", resolution=32, ngf=4, ndf=4, recon="mse", lr=None)
    assert m.hparams["lr"] == 2e-4
