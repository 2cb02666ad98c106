"""StyleGAN2: exact parameter counts, the numerics where bugs hide, tiny training runs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from models import ModelConfigError, get_model, list_models, model_info, param_counts
from models.common import count_params
from models.stylegan2 import StyleGAN2Config, mix_styles, path_lengths, r1_penalty
from models.stylegan2_layers import Conv2dLayer, Discriminator, Generator, ModulatedConv2d, blur, fir_kernel, upsample2d

TINY = dict(channel_base=256, channel_max=16, z_dim=16, w_dim=16, batch_size=4)
TINY_NET = dict(channel_base=256, channel_max=16, clamp=256.0)


@pytest.mark.parametrize(
    "name, res, g_params, d_params",
    [
        ("stylegan2", 256, 30_034_338, 28_864_129),
        ("stylegan2", 1024, 30_370_060, 29_012_513),
        ("stylegan2-lite", 256, 7_517_410, 7_219_009),
        ("stylegan2-lite", 1024, 7_601_564, 7_256_081),
        ("stylegan2-diffaug", 256, 30_034_338, 28_864_129),  # DA's low-shot: config-f widths
        ("stylegan2-diffaug-ffhq", 256, 24_767_458, 24_001_089),  # config-e (ADA instantiated)
        ("stylegan2-half", 1024, 15_185_210, 14_502_639),  # computed here: 0.500 x config-f
        ("stylegan2-half", 256, 15_019_277, 14_429_728),  # computed here
    ],
)
def test_exact_param_counts(name: str, res: int, g_params: int, d_params: int) -> None:
    with torch.device("meta"):  # shapes only: instant even at 1024 px
        model = get_model(name, resolution=res)
    assert count_params(model.generator) == g_params
    assert count_params(model.discriminator) == d_params
    assert model.generator.synthesis.num_ws == 2 * int(math.log2(res)) - 2


def test_registered_names_and_hparams() -> None:
    assert {"stylegan2", "stylegan2-lite", "stylegan2-lite-finetune"} <= set(list_models("stylegan2*"))
    model = get_model("stylegan2-lite", resolution=32, **TINY)
    hp = json.loads(json.dumps(model.hparams))
    assert hp["r1_gamma"] == 10.0 and hp["r1_interval"] == 16 and hp["pl_weight"] == 0.0
    assert hp["policy"] == "color,translation,cutout" and hp["style_mixing"] == 0.9
    assert hp["betas"] == [0.0, 0.99] and hp["ema_kimg"] == 10.0 and hp["batch_size"] == 4
    assert get_model("stylegan2", resolution=32, channel_base=256, channel_max=16).batch_size == 8
    with pytest.raises(ModelConfigError):
        get_model("stylegan2", resolution=48)


@pytest.mark.parametrize("res", [8, 32, 64])
def test_resolution_generic(res: int) -> None:
    g = Generator(res, z_dim=16, w_dim=16, mapping_layers=2, mapping_lr_mul=0.01, **TINY_NET)
    d = Discriminator(res, **TINY_NET)
    assert g.synthesis.num_ws == 2 * int(math.log2(res)) - 2
    assert g.synthesis.blocks[-1].conv1.bias.numel() == min(256 // res, 16)
    img = g(torch.randn(2, 16))
    assert img.shape == (2, 3, res, res)
    assert d(img).shape == (2,)


def test_demodulation_keeps_unit_variance() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 128, 16, 16, dtype=torch.float64)
    w = torch.randn(4, 16, dtype=torch.float64) * 3  # styles far from 1
    for demodulate in (True, False):
        conv = ModulatedConv2d(128, 128, 16, 3, demodulate=demodulate).double()
        var = conv(x, w)[..., 1:-1, 1:-1].var().item()  # interior: full 3x3 support
        if demodulate:
            assert abs(var - 1.0) < 0.05
        else:
            assert var > 2.0  # the styles' scale passes through un-normalised


@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demodulate, k", [(True, 3), (False, 1)])
def test_fused_matches_unfused(up: bool, demodulate: bool, k: int) -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, 8, k, demodulate=demodulate, up=up).double()
    x, w = torch.randn(3, 6, 8, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    fused, unfused = conv(x, w, fused=True), conv(x, w, fused=False)
    assert fused.shape == (3, 5, 16 if up else 8, 16 if up else 8)
    torch.testing.assert_close(fused, unfused)


def test_fir_keeps_constant_image_constant() -> None:
    f = fir_kernel()
    assert f.shape == (4, 4) and torch.isclose(f.sum(), torch.tensor(1.0))
    x = torch.full((1, 2, 8, 8), 0.7)
    up = upsample2d(x, f)  # skip generator's image path
    assert up.shape == (1, 2, 16, 16)
    torch.testing.assert_close(up[..., 1:-1, 1:-1], torch.full_like(up[..., 1:-1, 1:-1], 0.7))
    blurred = blur(x, f, (2, 2))  # D's pre-down-sampling blur; zero padding shows at the border only
    torch.testing.assert_close(blurred[..., 2:-2, 2:-2], torch.full((1, 2, 5, 5), 0.7))
    # transposed stride-2 conv of a constant, then the gain-4 blur: constant again inside
    t = torch.nn.functional.conv_transpose2d(x, torch.ones(2, 1, 3, 3), stride=2, groups=2)
    inner = blur(t, f, (1, 1), gain=4.0)[..., 2:-2, 2:-2]
    torch.testing.assert_close(inner, torch.full_like(inner, 0.7 * 9))
    for k in (1, 3):  # blur + stride-2 conv halves exactly
        assert Conv2dLayer(2, 3, k, down=True)(x).shape == (1, 3, 4, 4)


def test_r1_matches_autograd() -> None:
    torch.manual_seed(0)
    a = torch.randn(3, 8, 8, dtype=torch.float64)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    # analytic: D(x) = sum(tanh(a x)) -> grad = a (1 - tanh^2(a x))
    pen = r1_penalty(torch.tanh(a * x).sum(dim=[1, 2, 3]), x)
    expected = (a * (1 - torch.tanh(a * x) ** 2)).square().sum(dim=[1, 2, 3])
    torch.testing.assert_close(pen, expected.detach())
    # the real discriminator (minibatch-stddev couples samples): directional finite differences
    d = Discriminator(8, **TINY_NET).double()
    real = torch.randn(4, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(d(real).sum(), real)
    torch.testing.assert_close(r1_penalty(d(real), real), grad.square().sum(dim=[1, 2, 3]))
    v, eps = torch.randn_like(real), 1e-6
    with torch.no_grad():
        fd = (d(real + eps * v).sum() - d(real - eps * v).sum()) / (2 * eps)
    torch.testing.assert_close((grad * v).sum(), fd, rtol=1e-5, atol=1e-7)
    # the penalty is differentiable in D's weights (R1 actually trains D)
    r1_penalty(d(real), real).sum().backward()
    assert d.fromrgb.weight.grad is not None and d.fromrgb.weight.grad.abs().sum() > 0


def test_path_length_matches_autograd() -> None:
    torch.manual_seed(0)
    # analytic: img = ws . A (linear) -> J^T y = A y
    a = torch.randn(4, 5, 3 * 2 * 2, dtype=torch.float64)  # (num_ws, w_dim, pixels)
    ws = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 3, 2, 2, dtype=torch.float64)
    img = torch.einsum("bnw,nwp->bp", ws, a).view(2, 3, 2, 2)
    grads = torch.einsum("nwp,bp->bnw", a, y.flatten(1))
    torch.testing.assert_close(path_lengths(img, ws, y), grads.square().sum(2).mean(1).sqrt())
    # the real synthesis network (noise off): full Jacobian
    g = Generator(8, z_dim=16, w_dim=16, mapping_layers=2, mapping_lr_mul=0.01, **TINY_NET).double()
    ws = torch.randn(2, g.synthesis.num_ws, 16, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda w: g.synthesis(w, noise=False), ws, vectorize=True)
    grads = torch.einsum("bchwBnk,bchw->Bnk", jac, y)  # (B, num_ws, w_dim)
    expected = grads.square().sum(2).mean(1).sqrt()
    torch.testing.assert_close(path_lengths(g.synthesis(ws, noise=False), ws, y), expected)


def test_lazy_regularisation_adam_scaling() -> None:
    model = get_model("stylegan2", resolution=32, **TINY, pl_weight=2.0)
    g, d = model.g_opt.param_groups[0], model.d_opt.param_groups[0]
    assert g["lr"] == pytest.approx(0.002 * 4 / 5) and g["betas"][1] == pytest.approx(0.99 ** (4 / 5))
    assert d["lr"] == pytest.approx(0.002 * 16 / 17) and d["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    assert g["betas"][0] == 0.0 and d["betas"][0] == 0.0
    plain = get_model("stylegan2", resolution=32, **TINY, r1_interval=1)  # no pl reg, R1 every step
    assert plain.g_opt.param_groups[0]["lr"] == 0.002 and plain.d_opt.param_groups[0]["lr"] == 0.002


def test_truncation_one_is_identity() -> None:
    torch.manual_seed(0)
    g = Generator(16, z_dim=16, w_dim=16, mapping_layers=2, mapping_lr_mul=0.01, **TINY_NET)
    z = torch.randn(3, 16)
    ws = g.mapping(z, truncation=1.0)
    g.mapping.w_avg.normal_()
    assert torch.equal(g.mapping(z, truncation=1.0), ws)
    assert torch.equal(g(z, truncation=1.0, noise=False), g.synthesis(ws, noise=False))
    torch.testing.assert_close(g.mapping(z, truncation=0.0), g.mapping.w_avg.expand_as(ws))
    model = get_model("stylegan2", resolution=16, **TINY)
    expected = model.g_ema.synthesis(model.g_ema.mapping(z), noise=False)
    torch.testing.assert_close(model.generate(z, truncation=1.0), expected)  # noise strength is 0


def test_style_mixing_cutoff() -> None:
    ws, ws2 = torch.zeros(2, 6, 3), torch.ones(2, 6, 3)
    assert torch.equal(mix_styles(ws, ws2, 0.0), ws)
    cutoffs = set()
    for _ in range(50):
        rows = mix_styles(ws, ws2, 1.0)[0, :, 0]  # 0 ... 0 1 ... 1
        cutoff = int((rows == 0).sum())
        assert torch.equal(rows, (torch.arange(6) >= cutoff).float()) and 1 <= cutoff < 6
        cutoffs.add(cutoff)
    assert len(cutoffs) > 1


def test_style_mixing_per_sample_as_diffaugment_tf() -> None:
    """DA's TF G_main draws the mixing and its cutoff per sample (``tf.random_uniform([minibatch])``);
    ADA's loss.py draws one cutoff for the batch. The DA names mix per sample, the ADA ones per batch."""
    torch.manual_seed(0)
    ws, ws2 = torch.zeros(64, 6, 3), torch.ones(64, 6, 3)

    def cutoffs(per_sample: bool, prob: float) -> list[int]:
        mixed = mix_styles(ws, ws2, prob, per_sample)[:, :, 0]  # (B, num_ws): 0 ... 0 1 ... 1
        cut = (mixed == 0).sum(1)
        assert torch.equal(mixed, (torch.arange(6)[None] >= cut[:, None]).float())
        return cut.tolist()

    assert len(set(cutoffs(False, 1.0))) == 1  # one cutoff for the whole batch
    per_sample = cutoffs(True, 1.0)
    assert len(set(per_sample)) == 5 and min(per_sample) >= 1 and max(per_sample) <= 5  # U{1..num_ws-1}
    half = cutoffs(True, 0.5)
    assert 10 < half.count(6) < 54  # about half of the samples not mixed (cutoff = num_ws)
    flags = {
        name: get_model(name, resolution=16, **TINY).cfg.mixing_per_sample
        for name in ("stylegan2-diffaug", "stylegan2-diffaug-ffhq", "stylegan2-half", "stylegan2", "stylegan2-lite")
    }
    assert flags == {"stylegan2-diffaug": True, "stylegan2-diffaug-ffhq": True, "stylegan2-half": True,
                     "stylegan2": False, "stylegan2-lite": False}  # fmt: skip
    with pytest.raises(ValueError, match="mixing_per_sample must be true or false"):
        get_model("stylegan2", resolution=16, **TINY, mixing_per_sample=1)


def test_ema_half_life() -> None:
    model = get_model("stylegan2", resolution=16, **TINY)
    assert model.ema_beta(0) == pytest.approx(0.5 ** (4 / 10_000))
    ramped = get_model("stylegan2", resolution=16, **TINY, ema_rampup=0.05)
    assert ramped.ema_beta(9) == pytest.approx(0.5 ** (4 / (10 * 4 * 0.05)))


def _finite(module: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in module.parameters())


def test_trains_at_64_every_phase() -> None:
    """Lazy R1 and path-length steps, style mixing, DiffAugment, EMA: finite, detached losses."""
    torch.manual_seed(0)
    model = get_model("stylegan2-lite", resolution=64, **TINY, r1_interval=2, pl_weight=2.0, pl_interval=2)
    real = torch.rand(4, 3, 64, 64) * 2 - 1
    ema_before = model.g_ema.synthesis.const.clone()
    logs = [model.train_step(real, step) for step in range(2)]
    assert set(logs[0]) == {"loss_d", "loss_g", "r1_penalty", "pl_penalty"}
    assert set(logs[1]) == {"loss_d", "loss_g"}
    for v in logs[0].values():
        assert v.dim() == 0 and not v.requires_grad and torch.isfinite(v)
    assert _finite(model.generator) and _finite(model.discriminator) and _finite(model.g_ema)
    assert model.pl_mean > 0 and model.generator.mapping.w_avg.abs().sum() > 0
    assert torch.equal(model.g_ema.mapping.w_avg, model.generator.mapping.w_avg)
    assert not torch.equal(model.g_ema.synthesis.const, ema_before)
    img = model.generate(torch.randn(2, 16))
    assert img.shape == (2, 3, 64, 64) and torch.isfinite(img).all()


def test_non_lazy_step_and_checkpoints(tmp_path) -> None:
    """R1 and path length inside the main steps (interval 1); optimizer state and init_from."""
    torch.manual_seed(0)
    model = get_model("stylegan2-lite", resolution=32, **TINY, r1_interval=1, pl_weight=2.0, pl_interval=1)
    log = model.train_step(torch.rand(4, 3, 32, 32) * 2 - 1, 0)
    assert set(log) == {"loss_d", "loss_g", "r1_penalty", "pl_penalty"}
    assert all(torch.isfinite(v) for v in log.values())

    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "optimizer": model.optimizer_state()}, path)
    kw = dict(TINY, r1_interval=1, pl_weight=2.0, pl_interval=1)
    tuned = get_model("stylegan2-lite-finetune", resolution=32, init_from=str(path), **kw)
    for k, v in model.state_dict().items():
        assert torch.equal(tuned.state_dict()[k], v), k
    tuned.load_optimizer_state(torch.load(path, weights_only=True)["optimizer"])
    assert tuned.g_opt.state_dict()["state"].keys() == model.g_opt.state_dict()["state"].keys()

    with pytest.raises(ModelConfigError, match="init_from"):
        get_model("stylegan2-lite-finetune", resolution=32, **TINY)
    with pytest.raises(ModelConfigError, match="no such checkpoint") as missing:
        get_model("stylegan2-lite", resolution=32, init_from=str(tmp_path / "nope.pt"), **TINY)
    assert "nope.pt" in str(missing.value)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelConfigError, match="cannot read checkpoint"):
        get_model("stylegan2-lite", resolution=32, init_from=str(tmp_path / "junk.pt"), **TINY)
    with pytest.raises(ModelConfigError, match="does not fit") as wrong:
        get_model("stylegan2-lite", resolution=32, init_from=str(path), **dict(TINY, channel_max=8))
    assert str(path) in str(wrong.value) and "\n" not in str(wrong.value)


# ---------------------------------------------------------------------------------------------- recipes


def test_diffaug_is_the_low_shot_recipe() -> None:
    """DA's run_low_shot.py: config-f widths, batch 16, Adam 0.002 (0, 0.99) unscaled, R1 10 every
    step, no path length, color,translation,cutout, style mixing 0.9, EMA 10 kimg from 10 kimg, no clamp."""
    model = get_model("stylegan2-diffaug", resolution=32, channel_base=256, channel_max=16, z_dim=16, w_dim=16)
    hp = model.hparams
    assert (hp["channel_max"], hp["mapping_layers"], hp["mbstd_group"], hp["batch_size"]) == (16, 8, 4, 16)
    assert (hp["r1_gamma"], hp["r1_interval"], hp["pl_weight"], hp["conv_clamp"]) == (10.0, 1, 0.0, None)
    assert (hp["policy"], hp["style_mixing"], hp["ema_kimg"], hp["ema_start_kimg"]) == (
        "color,translation,cutout",
        0.9,
        10.0,
        10.0,
    )
    for opt in (model.g_opt, model.d_opt):
        group = opt.param_groups[0]
        assert (group["lr"], group["betas"], group["eps"]) == (0.002, (0.0, 0.99), 1e-8)
    assert all(layer.clamp is None for layer in model.generator.modules() if hasattr(layer, "clamp"))
    full = get_model("stylegan2-diffaug", resolution=32, z_dim=16, w_dim=16, channel_base=256)
    assert full.hparams["channel_base"] == 256 and StyleGAN2Config().channel_base == 32768


def test_ema_is_a_copy_until_the_start_then_the_half_life() -> None:
    model = get_model("stylegan2-diffaug", resolution=16, **TINY)  # batch 4: 10 kimg = 2,500 steps
    assert model.ema_beta(0) == 0.0 and model.ema_beta(2499) == 0.0
    assert model.ema_beta(2500) == pytest.approx(0.5 ** (4 / 10_000))
    torch.manual_seed(0)
    model.train_step(torch.rand(4, 3, 16, 16) * 2 - 1, 0)
    for e, p in zip(model.g_ema.parameters(), model.generator.parameters(), strict=True):
        assert torch.equal(e, p)
    assert get_model("stylegan2", resolution=16, **TINY).ema_beta(0) > 0  # no start: averages at once


def test_r1_every_step_in_the_low_shot_recipe() -> None:
    torch.manual_seed(0)
    model = get_model("stylegan2-diffaug", resolution=16, **TINY)
    real = torch.rand(4, 3, 16, 16) * 2 - 1
    logs = [model.train_step(real, step) for step in range(2)]
    assert all(set(log) == {"loss_d", "loss_g", "r1_penalty"} for log in logs)


def test_half_size_is_half_of_config_f_at_1024() -> None:
    g, d = param_counts("stylegan2-half", 1024)
    g_f, d_f = param_counts("stylegan2-diffaug", 1024)
    assert abs(g / g_f - 0.5) < 0.001 and abs(d / d_f - 0.5) < 0.001
    assert get_model("stylegan2-half", resolution=32, **TINY).hparams["r1_interval"] == 1  # DA's recipe


def test_finetune_rows_start_from_their_source_model(tmp_path) -> None:
    """stylegan2-diffaug-finetune: DA's low-shot recipe at config-e widths from a stylegan2-diffaug-ffhq
    checkpoint (same architecture, FFHQ training settings not carried over)."""
    assert model_info("stylegan2-diffaug-finetune").init_from == "stylegan2-diffaug-ffhq"
    assert param_counts("stylegan2-diffaug-finetune", 256) == (24_767_458, 24_001_089)
    tiny = dict(channel_max=16, z_dim=16, w_dim=16, mapping_layers=2)
    source = get_model("stylegan2-diffaug-ffhq", resolution=32, **tiny)
    assert (source.hparams["r1_gamma"], source.batch_size, source.hparams["channel_base"]) == (1.0, 32, 16384)
    torch.save({"model": source.state_dict()}, tmp_path / "ffhq.pt")
    tuned = get_model("stylegan2-diffaug-finetune", resolution=32, init_from=str(tmp_path / "ffhq.pt"), **tiny)
    assert (tuned.hparams["r1_gamma"], tuned.batch_size, tuned.hparams["channel_base"]) == (10.0, 16, 16384)
    pairs = zip(tuned.state_dict().values(), source.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert param_counts("stylegan2-half-finetune", 1024) == (15_185_210, 14_502_639)
    for name in ("stylegan2-diffaug-finetune", "stylegan2-half-finetune"):
        with pytest.raises(ModelConfigError, match="needs init_from"):
            get_model(name, resolution=32, **tiny)
