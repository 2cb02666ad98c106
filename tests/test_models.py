"""Every registered model, for free: tiny build, forward, backward through one training step."""

from __future__ import annotations

import json

import pytest
import torch

import models
from models.registry import ModelConfigError


def build(name: str, tmp_path, resolution: int = 32) -> models.GANModel:
    """The model's own tiny configuration; a finetune name starts from a checkpoint of its source."""
    info = models.model_info(name)
    kwargs = dict(info.tiny)
    if info.init_from is not None:
        base = models.get_model(info.init_from, resolution=resolution, **kwargs)
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
    real = torch.rand(model.reals_per_step, 3, 32, 32) * 2 - 1
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
    a.train_step(torch.rand(a.reals_per_step, 3, 32, 32) * 2 - 1, 0)
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


# ---------------------------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name", models.list_models())
def test_model_info_is_complete(name: str) -> None:
    info = models.model_info(name)
    assert info.name == name and info.family in models.family_modules()
    assert info.recipe and "\n" not in info.recipe, "one line naming the recipe's source"
    assert info.tiny and "batch_size" in info.tiny, "a tiny configuration of its own"
    assert info.doc and "Params" in info.doc, "the builder's docstring with its parameter counts"
    assert info.init_from is None or info.init_from in models.list_models()


def test_model_info_unknown_name_suggests() -> None:
    with pytest.raises(ModelConfigError, match="did you mean fastgan"):
        models.model_info("fastgn")


def test_family_parts_register_nothing() -> None:
    """Helper modules (``<family>_<part>``) are not families; every builder lives in a family module."""
    import pkgutil

    assert set(models.family_modules()) == {"biggan", "fastgan", "stylegan2"}
    parts = [m.name for m in pkgutil.iter_modules(models.__path__) if "_" in m.name]
    assert {"fastgan_blocks", "stylegan2_layers", "biggan_layers"} <= set(parts)
    assert {models.model_info(n).family for n in models.list_models()} == set(models.family_modules())


def test_param_counts_on_meta_device() -> None:
    assert models.param_counts("fastgan", 256) == (29_127_846, 11_526_160)  # the official counts
    assert models.param_counts("stylegan2", 256) == (30_034_338, 28_864_129)
    assert models.param_counts("biggan-paper", 128) == (31_850_756, 38_425_282)  # BigGAN-PyTorch's, with attention
    assert models.param_counts("biggan", 128) == (31_830_275, 38_420_161)  # DA's --G_attn 0 --D_attn 0
    # the discriminator side includes the heads D's optimizer trains
    assert models.param_counts("fastgan-ss-contrastive", 256) == (29_127_846, 8_386_672 + 328_320)
    # a finetune name without init_from counts the model it starts from
    assert models.param_counts("stylegan2-lite-finetune", 256) == models.param_counts("stylegan2-lite", 256)
    assert models.param_counts("fastgan", 64, ngf=8, ndf=8) == models.param_counts("fastgan", 64, ngf=8, ndf=8)
    with pytest.raises(ModelConfigError, match="ngf"):
        models.param_counts("fastgan", 256, ngf=0)


@pytest.mark.parametrize(
    "name, kwargs, key",
    [
        ("fastgan", {"ngf": 0}, "ngf"),
        ("fastgan", {"batch_size": 0}, "batch_size"),
        ("baseline", {"batch_size": -2}, "batch_size"),
        ("fastgan", {"lr": -1.0}, "lr"),
        ("fastgan", {"betas": [0.5]}, "betas"),
        ("fastgan", {"policy": "colour"}, "policy"),
        ("fastgan", {"ngf": 4}, "ngf"),  # 0 channels at 1024 px
        ("stylegan2", {"channel_max": 0}, "channel_max"),
        ("stylegan2-lite", {"batch_size": 0}, "batch_size"),
        ("stylegan2", {"r1_interval": 0}, "r1_interval"),
        ("stylegan2", {"style_mixing": 1.5}, "style_mixing"),
        ("biggan", {"ch": 0}, "ch"),
        ("biggan", {"batch_size": -2}, "batch_size"),
        ("biggan", {"d_steps": 0}, "d_steps"),
        ("biggan", {"policy": "colour"}, "policy"),
        ("biggan", {"ch": "wide"}, "ch"),
    ],
)
def test_every_family_raises_the_same_config_error(name: str, kwargs: dict, key: str) -> None:
    with pytest.raises(ModelConfigError) as info:
        models.param_counts(name, 1024 if kwargs == {"ngf": 4} else 256, **kwargs)
    msg = str(info.value)
    assert key in msg and "\n" not in msg, msg


@pytest.mark.parametrize("name", ["fastgan", "stylegan2", "biggan"])
def test_unknown_keyword_names_close_matches(name: str) -> None:
    key = {"fastgan": "ngff", "stylegan2": "channel_maxx", "biggan": "lr_gg"}[name]
    with pytest.raises(ModelConfigError, match=f"unknown keyword {key!r} for .*; did you mean {key[:-1]}"):
        models.get_model(name, resolution=32, **{key: 1})


@pytest.mark.parametrize("name", ["fastgan", "stylegan2-lite", "biggan"])
def test_hparams_are_the_config_as_json(name: str) -> None:
    import dataclasses

    model = build(name, None)
    fields = {f.name for f in dataclasses.fields(model.cfg)}
    assert set(model.hparams) == fields
    assert json.loads(json.dumps(model.hparams)) == model.hparams
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.cfg.batch_size = 3


def test_no_model_module_over_500_lines() -> None:
    from pathlib import Path

    for path in Path(models.__file__).parent.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path.name


@pytest.mark.parametrize("name", models.list_models())
def test_a_training_model_draws_the_strip_its_loaded_snapshot_draws(name: str, tmp_path) -> None:
    """The interpolation strip a CPU training process leaves in the report's image cache, drawn by the model in
    training (bench.training.evaluation.remember_report_images), is the one the report would draw from the
    snapshot: a fresh model, the state loaded, in eval mode; bitwise."""
    from bench.report.imagery import interpolation_images

    torch.manual_seed(0)
    a = build(name, tmp_path)
    a.train_step(torch.rand(a.reals_per_step, 3, 32, 32) * 2 - 1, 0)
    strip = interpolation_images(a)
    torch.manual_seed(1)
    b = build(name, tmp_path)
    b.load_state_dict(a.state_dict())
    assert (strip == interpolation_images(b.eval())).all()


@pytest.mark.parametrize("name", models.list_models())
def test_channels_last_keeps_every_4d_tensor_in_nhwc_through_a_step(name: str, tmp_path) -> None:
    """RunSpec.channels_last: every network's 4-D weights (the EMA copy's too) in NHWC before and after a
    training step (the optimizer state follows its parameter); the step trains as usual."""
    torch.manual_seed(0)
    model = build(name, tmp_path)
    model.use_channels_last()
    four_d = [t for t in (*model.parameters(), *model.buffers()) if t.dim() == 4]
    assert four_d and all(t.is_contiguous(memory_format=torch.channels_last) for t in four_d)
    losses = model.train_step(torch.rand(model.reals_per_step, 3, 32, 32) * 2 - 1, 0)
    assert all(torch.isfinite(v) for v in losses.values())
    four_d = [t for t in (*model.parameters(), *model.buffers()) if t.dim() == 4]
    assert all(t.is_contiguous(memory_format=torch.channels_last) for t in four_d)
    assert model.generate(torch.randn(2, model.z_dim)).shape == (2, 3, 32, 32)


def test_a_spec_with_channels_last_builds_its_model_in_nhwc() -> None:
    """build_model applies the spec's layout wherever the spec's model is built (training, scoring, sampling)."""
    from bench.plan.specs import RunSpec
    from bench.training.checkpoints import build_model

    kw = {"recon": "mse", "ngf": 4, "ndf": 4, "batch_size": 4}
    for flag in (False, True):
        spec = RunSpec(suite="t", model="baseline", dataset="shapes", resolution=32, model_kwargs=kw, max_iters=1,
                       channels_last=flag)  # fmt: skip
        weights = [p for p in build_model(spec, torch.device("cpu")).parameters() if p.dim() == 4]
        layout = torch.channels_last if flag else torch.contiguous_format
        assert all(p.is_contiguous(memory_format=layout) for p in weights)
        assert any(not p.is_contiguous() for p in weights) == flag  # (a 1x1 kernel is contiguous both ways)
