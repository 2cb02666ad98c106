"""BigGAN: exact parameter counts, attention, init, ortho reg, skip-z, truncation, SN, the D steps' real
batches, sampling mode, training smoke."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from torch.nn.utils import parametrize

from models import get_model
from models.biggan import BigGAN, ortho_grad, ortho_penalty, truncate_z
from models.biggan_layers import Z_CHUNK, Generator, SelfAttention
from models.common import count_params


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine the spinning pool costs
    many times the work; restore the setting afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small(resolution: int = 32, name: str = "biggan", **kwargs) -> BigGAN:
    """A tiny model for CPU tests (ch = 4: 16 channels at the top, attention still present)."""
    return get_model(name, resolution=resolution, ch=4, batch_size=2, **kwargs)


def attn_positions(net: torch.nn.Module) -> list[int]:
    return [i for i, a in enumerate(net.attns) if isinstance(a, SelfAttention)]


@pytest.mark.parametrize(
    "name, res, n_g, n_d, z_dim, g_attn, d_attn, status",
    [  # biggan-paper (the tables' attention): BigGAN-PyTorch's instantiated counts (comparison_models.md)
        ("biggan-paper", 128, 31_850_756, 38_425_282, 120, [3], [0], "reference"),
        ("biggan-paper", 256, 37_136_132, 43_422_914, 140, [4], [1], "reference"),
        ("biggan-paper", 1024, None, None, 180, [4], [3], "extension"),
        # biggan: no attention (DA's --G_attn 0 --D_attn 0); counted here
        ("biggan", 128, 31_830_275, 38_420_161, 120, [], [], "reference"),
        ("biggan", 256, 37_115_651, 43_402_433, 140, [], [], "reference"),
        # biggan at 32 px: DA's CIFAR network, counted by hand from BigGAN.py's 32 px tables (C = 4ch = 256):
        # G linear 128*16C + 16C, 3 blocks of (2 convs 9C^2 + C, 1x1 C^2 + C, 2 BNs' embeddings 2C),
        # out BN 2C, out conv 27C + 3; D 3->C block (27C + C, 9C^2 + C, 3C + C), a downsampling C->C
        # block with its 1x1 shortcut, two C->C blocks without one, linear C + 1, embedding C
        ("biggan", 32, 4_276_739, 4_205_057, 128, [], [], "reference"),
    ],
)
def test_full_size_counts_attention_and_shapes(name, res, n_g, n_d, z_dim, g_attn, d_attn, status):
    with torch.device("meta"):  # no memory, no init cost beyond spectral norm's setup
        m = get_model(name, resolution=res)
        img = m.generator(torch.empty(2, m.z_dim))
        logits = m.discriminator(torch.empty(2, 3, res, res))
    if n_g is not None:
        assert count_params(m.generator) == n_g
        assert count_params(m.discriminator) == n_d
    assert count_params(m.g_ema) == count_params(m.generator)
    assert (m.z_dim, m.arch_status) == (z_dim, status)
    assert attn_positions(m.generator) == g_attn and attn_positions(m.discriminator) == d_attn
    assert img.shape == (2, 3, res, res) and logits.shape == (2,)


def test_attention_is_identity_at_init_and_matches_naive_form():
    torch.manual_seed(0)
    attn = SelfAttention(16).eval()  # no power iteration between the calls compared
    x = torch.randn(2, 16, 8, 6)
    assert torch.equal(attn(x), x)
    with torch.no_grad():
        attn.gamma.fill_(0.7)
    b, c, h, w = x.shape
    theta = attn.theta(x).view(b, c // 8, h * w)
    phi = torch.nn.functional.max_pool2d(attn.phi(x), 2).view(b, c // 8, h * w // 4)
    g = torch.nn.functional.max_pool2d(attn.g(x), 2).view(b, c // 2, h * w // 4)
    beta = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # (B, HW, HW/4), no scaling
    naive = x + 0.7 * attn.o((g @ beta.transpose(1, 2)).view(b, c // 2, h, w))
    torch.testing.assert_close(attn(x), naive)


@pytest.mark.parametrize("shape", [(5, 12), (12, 5), (7, 7), (6, 3, 3, 3)])
def test_ortho_grad_matches_autograd_of_penalty(shape):
    w = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    ortho_penalty(w).backward()
    torch.testing.assert_close(ortho_grad(w.detach()), w.grad)


def test_train_step_adds_beta_times_ortho_grad_to_g_weights_only():
    torch.manual_seed(0)
    on = small(ortho_reg=1e-2)
    off = copy.deepcopy(on)
    off.cfg = on.cfg.replace(ortho_reg=0.0)
    grads = {}

    def capture(model, key):
        def hook(opt, args, kwargs):
            grads[key] = {n: p.grad.clone() for n, p in model.generator.named_parameters()}

        model.opt_g.register_step_pre_hook(hook)

    capture(on, "on")
    capture(off, "off")
    real = torch.rand(on.reals_per_step, 3, 32, 32) * 2 - 1
    w_before = {n: p.detach().clone() for n, p in on.generator.named_parameters()}
    for model in (on, off):
        torch.manual_seed(1)
        model.train_step(real, 0)
    for n, w in w_before.items():
        diff = grads["on"][n] - grads["off"][n]
        if w.ndim >= 2 and not n.startswith("shared."):
            torch.testing.assert_close(diff, 1e-2 * ortho_grad(w), rtol=1e-3, atol=1e-6)
        else:
            assert torch.all(diff.abs() <= 1e-6), n


def test_z_chunk_k_changes_only_block_k_conditioning():
    torch.manual_seed(0)
    G = Generator(32, ch=4, attn=32).eval()
    seen: dict[str, list[torch.Tensor]] = {"lin": [], "cond": []}
    G.linear.register_forward_pre_hook(lambda mod, args: seen["lin"].append(args[0].clone()))
    for blk in G.blocks:
        blk.register_forward_pre_hook(lambda mod, args: seen["cond"].append(args[1].clone()))

    def run(z):
        seen["lin"].clear(), seen["cond"].clear()
        with torch.no_grad():
            G(z)
        return seen["lin"][0], list(seen["cond"])

    z = torch.randn(3, G.z_dim)
    lin0, cond0 = run(z)
    n_blocks = len(G.blocks)
    assert G.z_dim == Z_CHUNK * (n_blocks + 1)
    for c in cond0:  # every block sees the same shared embedding (label 0) first
        torch.testing.assert_close(c[:, :128], G.shared.weight.expand(3, -1))
    for k in range(n_blocks + 1):
        z2 = z.clone()
        z2[:, k * Z_CHUNK : (k + 1) * Z_CHUNK] += 1.0
        lin, cond = run(z2)
        assert torch.equal(lin, lin0) == (k != 0)
        for i in range(n_blocks):
            assert torch.equal(cond[i], cond0[i]) == (i != k - 1), (k, i)


def test_truncation_psi_one_is_identity_and_psi_below_one_truncates():
    torch.manual_seed(0)
    m = small()
    z = torch.randn(4, m.z_dim)
    assert truncate_z(z, 1.0) is z
    with torch.no_grad():
        ref = m.g_ema.eval()(z)
    assert torch.equal(m.generate(z, truncation=1.0, bn="running"), ref)  # eval mode, as ref
    assert not torch.allclose(m.generate(z, truncation=0.5, bn="running"), ref)

    zz = torch.randn(200_000, dtype=torch.float64)
    t = truncate_z(zz, 0.5)
    assert t.abs().max() <= 1.0 + 1e-9  # |z| <= 2, times psi
    assert torch.equal(zz.argsort(), t.argsort())  # monotone map
    pdf2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    std = math.sqrt(1 - 4 * pdf2 / math.erf(2 / math.sqrt(2)))  # truncated-normal std on [-2, 2]
    assert abs(t.std().item() - 0.5 * std) < 0.005 and abs(t.mean().item()) < 0.005
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError):
            truncate_z(zz, bad)


@pytest.mark.parametrize("arch", ["imagenet", "cifar"])
def test_spectral_norm_everywhere_but_g_embeddings_and_top_singular_value_is_one(arch):
    """SN on every conv and linear and D's projection embedding; G's embeddings (the shared one, or the
    CIFAR network's BatchNorm gains and biases) have none, as BigGAN-PyTorch's which_embedding."""
    torch.manual_seed(0)
    m = small(arch=arch)
    G, D = m.generator, m.discriminator
    g_embeddings = [mod for mod in G.modules() if isinstance(mod, torch.nn.Embedding)]
    assert len(g_embeddings) == (1 if arch == "imagenet" else 12)  # 3 blocks x 2 BNs x (gain, bias)
    assert not any(parametrize.is_parametrized(e) for e in g_embeddings)
    convs = (torch.nn.Conv2d, torch.nn.Linear)
    layers = [mod for mod in [*G.modules(), *D.modules()] if isinstance(mod, convs)] + [D.embed]
    assert all(parametrize.is_parametrized(mod, "weight") for mod in layers)
    with torch.no_grad():
        for mod in layers:  # spoil the orthogonal init so that sigma is far from 1
            mod.parametrizations.weight.original.normal_().mul_(3)
        G(torch.randn(2, m.z_dim)), D(torch.randn(2, 3, 32, 32))  # training forwards run
        for mod in layers:
            for _ in range(60):  # each training-mode weight access is one power iteration
                _ = mod.weight
            sigma = torch.linalg.matrix_norm(mod.weight.flatten(1), ord=2).item()
            assert abs(sigma - 1) < 0.02, (mod, sigma)
        G.eval()
        u = G.linear.parametrizations.weight[0].u.clone()
        _ = G.linear.weight
        assert torch.equal(G.linear.parametrizations.weight[0].u, u)  # no iteration in eval mode


def test_at_32_px_biggan_is_the_cifar_network_with_every_latent_in_the_first_linear():
    """DA's BigGAN-CIFAR (no --G_shared, no --hier; --dim_z 128): each of the 128 latents changes G's
    first linear; BatchNorm gains come from the class, so every block sees the same condition; all
    widths 4ch; D downsamples in its first two blocks only. biggan-paper keeps the ImageNet network."""
    torch.manual_seed(0)
    m = small()
    G, D = m.generator, m.discriminator
    assert (m.hparams["arch"], m.z_dim, G.shared) == ("cifar", 128, None)
    assert [b.conv1.out_channels for b in G.blocks] == [16, 16, 16] and G.linear.out_features == 16 * 16
    assert [b.down for b in D.blocks] == [True, True, False, False]
    assert D(torch.randn(2, 3, 32, 32)).shape == (2,)
    z = torch.randn(2, 128)
    with torch.no_grad():
        ref = G.linear(z)
        for k in range(128):
            z2 = z.clone()
            z2[:, k] += 1.0
            assert not torch.equal(G.linear(z2), ref), k
    paper = small(name="biggan-paper")
    assert (paper.hparams["arch"], paper.z_dim, paper.arch_status) == ("imagenet", 80, "test-scale")
    assert small(arch="imagenet").z_dim == 80
    with pytest.raises(ValueError, match=r"arch 'cifar' exists at 32 px only, got 64; use arch = 'imagenet'"):
        small(64, arch="cifar")
    with pytest.raises(ValueError, match="arch must be one of"):
        small(arch="resnet")


@pytest.mark.parametrize("name, res, d_steps", [("biggan", 64, 4), ("biggan-paper", 32, 2)])
def test_training_is_finite(name, res, d_steps):
    torch.manual_seed(0)
    m = small(res, name, ema_start=1)
    assert m.hparams["d_steps"] == d_steps and m.arch_status == "test-scale"
    assert m.reals_per_step == 2 * d_steps
    real = torch.rand(2 * d_steps, 3, res, res) * 2 - 1
    for step in range(2):
        losses = m.train_step(real, step)
    assert set(losses) == {"loss_d", "loss_g", "d_real", "d_fake"}
    for v in losses.values():
        assert v.ndim == 0 and not v.requires_grad and torch.isfinite(v)
    p_d = next(m.discriminator.parameters())
    p_g = next(m.generator.parameters())
    assert m.opt_d.state[p_d]["step"].item() == 2 * d_steps and m.opt_g.state[p_g]["step"].item() == 2
    z = torch.randn(4, m.z_dim)
    for kwargs in ({}, {"ema": False}, {"bn": "batch", "truncation": 0.7}, {"bn": "standing"}):
        img = m.generate(z, **kwargs)
        assert img.shape == (4, 3, res, res) and torch.isfinite(img).all() and img.abs().max() <= 1


def test_ema_copies_before_start_then_averages():
    torch.manual_seed(0)
    m = small(ema_start=1, policy="")
    real = torch.rand(m.reals_per_step, 3, 32, 32) * 2 - 1
    m.train_step(real, 0)
    for e, p in zip(m.g_ema.parameters(), m.generator.parameters(), strict=True):
        assert torch.equal(e, p)
    for e, p in zip(m.g_ema.buffers(), m.generator.buffers(), strict=True):
        assert torch.equal(e, p)  # before ema_start: a pure copy, buffers included
    before = [e.clone() for e in m.g_ema.parameters()]
    before_bufs = [e.clone() for e in m.g_ema.buffers()]
    m.train_step(real, 1)
    for b, e, p in zip(before, m.g_ema.parameters(), m.generator.parameters(), strict=True):
        torch.testing.assert_close(e, b.lerp(p, 1e-4))
    floats = 0
    for b, e, p in zip(before_bufs, m.g_ema.buffers(), m.generator.buffers(), strict=True):
        if e.is_floating_point():  # BN running statistics and SN vectors: averaged like the weights
            torch.testing.assert_close(e, b.lerp(p, 1e-4))
            floats += 1
        else:
            assert torch.equal(e, p)
    assert floats > 0


def test_generate_leaves_no_trace():
    torch.manual_seed(0)
    m = small()
    state = {k: v.clone() for k, v in m.state_dict().items()}
    m.generator.train()
    m.generate(torch.randn(4, m.z_dim), ema=False, bn="batch")
    m.generate(torch.randn(4, m.z_dim), bn="batch")
    m.generate(torch.randn(4, m.z_dim), bn="standing")
    assert m.generator.training and not m.g_ema.training
    for k, v in m.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_hparams_roundtrip_and_optimizer_state():
    torch.manual_seed(0)
    m = small(name="biggan-paper")
    assert (m.hparams["lr_g"], m.hparams["lr_d"], m.hparams["d_steps"]) == (5e-5, 2e-4, 2)
    assert m.hparams["policy"] == "translation,cutout" and m.batch_size == 2
    again = get_model("biggan-paper", resolution=32, **json.loads(json.dumps(m.hparams)))
    assert again.hparams == m.hparams
    m.train_step(torch.rand(m.reals_per_step, 3, 32, 32) * 2 - 1, 0)
    again.load_optimizer_state(m.optimizer_state())
    assert again.opt_g.state_dict()["state"].keys() == m.opt_g.state_dict()["state"].keys()
    with_attn = get_model("biggan", resolution=32, ch=4, g_attn=32, d_attn=16)
    assert (with_attn.hparams["g_attn"], with_attn.hparams["d_attn"]) == (32, 16)
    assert attn_positions(with_attn.generator) == [2] and attn_positions(with_attn.discriminator) == [0]
    for bad in ({"resolution": 48}, {"resolution": 32, "g_attn": 48}, {"resolution": 32, "init": "xavier"}):
        with pytest.raises(ValueError):
            get_model("biggan", **bad)
    with pytest.raises(ValueError):
        small(policy="colour")


def test_attention_in_query_chunks_equals_one_call(monkeypatch) -> None:
    """Large attention maps (G's 128 px layer: 268 MB per image) run in query chunks; each row's
    softmax is its own, so the output equals one call on all queries."""
    import models.biggan_layers as bg

    torch.manual_seed(0)
    attn = bg.SelfAttention(16)
    with torch.no_grad():
        attn.gamma.fill_(0.7)
    x = torch.randn(3, 16, 8, 8)
    whole = attn.eval()(x)
    monkeypatch.setattr(bg, "ATTN_CHUNK_BYTES", 3 * 16 * 4 * 5)  # 5 query rows per chunk: 13 chunks
    chunked = attn(x)
    assert torch.allclose(chunked, whole, atol=1e-6) and not torch.equal(whole, x)


def test_defaults_are_one_source_the_diffaugment_biggan_recipe():
    """biggan: DA's DiffAugment-biggan-cifar10.sh and eval.py in every group but the architecture's
    tables; biggan-paper: the paper's init, attention and optimisation."""
    with torch.device("meta"):
        m = get_model("biggan", resolution=256)
    hp = m.hparams
    assert (hp["batch_size"], hp["lr_g"], hp["lr_d"], hp["d_steps"], hp["adam_eps"]) == (50, 2e-4, 2e-4, 4, 1e-8)
    assert (hp["ortho_reg"], hp["ema_decay"], hp["ema_start"]) == (0.0, 0.9999, 1000)
    assert hp["policy"] == "translation,cutout"
    assert (hp["init"], hp["g_attn"], hp["d_attn"]) == ("N02", 0, 0)  # --G_init N02 --D_init N02 --G_attn 0 --D_attn 0
    assert m.reals_per_step == 200  # train.py: D_batch_size = batch_size * num_D_steps
    assert (m.sampling.bn, m.sampling.batch, m.sampling.stats) == ("batch", 50, "batch")  # eval.py, no --G_eval_mode
    for opt in (m.opt_g, m.opt_d):
        group = opt.param_groups[0]
        assert (group["lr"], group["betas"], group["eps"]) == (2e-4, (0.0, 0.999), 1e-8)
    paper = small(name="biggan-paper").hparams
    assert (paper["lr_g"], paper["lr_d"], paper["d_steps"], paper["ortho_reg"]) == (5e-5, 2e-4, 2, 1e-4)
    assert (paper["init"], paper["g_attn"], paper["d_attn"]) == ("ortho", 32, 16)  # the tables' sides, capped at 32 px
    released = small(lr_g=1e-4, lr_d=4e-4, d_steps=1, adam_eps=1e-6, ema_start=20000)  # the ImageNet script
    assert released.opt_d.param_groups[0]["eps"] == 1e-6 and released.hparams["d_steps"] == 1
    assert (
        get_model("biggan", resolution=32, ch=4, batch_size=8).sampling.batch == 8
    )  # G_batch_size = max(G_batch_size, batch_size)


def _weights(net: torch.nn.Module) -> list[torch.Tensor]:
    """Every conv, linear and embedding weight (under spectral norm: the raw one)."""
    out = []
    for mod in net.modules():
        if isinstance(mod, torch.nn.Conv2d | torch.nn.Linear | torch.nn.Embedding):
            sn = parametrize.is_parametrized(mod, "weight")
            out.append(mod.parametrizations.weight.original if sn else mod.weight)
    return out


@pytest.mark.parametrize("init", ["N02", "ortho"])
def test_init_draws_every_weight_as_named(init):
    """N02: every conv/linear/embedding weight of G and D (the shared embedding too) N(0, 0.02);
    ortho: orthogonal rows or columns; spectral norm's u, v restarted against the drawn weight."""
    torch.manual_seed(0)
    m = get_model("biggan", resolution=32, ch=8, batch_size=2, init=init)
    weights = _weights(m.generator) + _weights(m.discriminator)
    assert len(weights) > 20
    flat = torch.cat([w.detach().flatten() for w in weights if w.numel() >= 64])
    if init == "N02":
        assert abs(flat.std().item() - 0.02) < 0.001 and abs(flat.mean().item()) < 0.001
    for w in weights:
        mat = w.detach().flatten(1)
        gram = mat @ mat.T if mat.size(0) <= mat.size(1) else mat.T @ mat
        assert torch.allclose(gram, torch.eye(len(gram)), atol=1e-4) == (init == "ortho" and w.numel() > 1)
    for mod in m.discriminator.modules():
        if parametrize.is_parametrized(mod, "weight"):
            sn, w = mod.parametrizations.weight[0], mod.parametrizations.weight.original.detach().flatten(1)
            assert torch.allclose(sn.u, torch.nn.functional.normalize(w @ sn.v, dim=0), atol=1e-6)


def test_each_d_step_sees_its_own_real_chunk():
    """DA's train_fns: D step k takes the k-th batch_size chunk of the loader's batch_size * num_D_steps
    reals; the G step uses none."""
    torch.manual_seed(0)
    m = small(d_steps=3, policy="")
    seen: list[torch.Tensor] = []
    m.discriminator.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    real = torch.rand(6, 3, 32, 32) * 2 - 1
    m.train_step(real, 0)
    assert len(seen) == 4  # three D steps (fakes + reals in one pass), then the G step (fakes only)
    for k in range(3):
        assert seen[k].shape[0] == 4 and torch.equal(seen[k][2:], real[2 * k : 2 * k + 2])
    assert seen[3].shape[0] == 2
    with pytest.raises(ValueError, match="6 reals per step"):
        m.train_step(real[:2], 1)


def test_the_loop_draws_a_real_batch_per_d_step_and_counts_them_as_kimg(tiny_suite, tmp_path):
    """Through the real loop: the sampler draws batch_size x d_steps images per step (DA's loader),
    kimg counts them, and spec.json records it; a kimg cap converts at that many reals per step."""
    from bench.plan.suites import load_suite
    from bench.results.runs import RunPaths, read_state
    from bench.training.cell import run_cell
    from bench.training.options import LoopOptions

    text = tiny_suite().read_text()
    text = text.replace("[models.baseline]", "[models.biggan]").replace(
        'recon = "mse", ngf = 4, ndf = 4, batch_size = 4', "ch = 4, batch_size = 2, d_steps = 3"
    )
    text = text.replace("max_iters = 6", "max_kimg = 0.018")  # 18 reals: 3 steps of 6
    spec = load_suite(str(tiny_suite(name="bg", text=text))).cells[0].spec
    assert run_cell(spec, LoopOptions(out=tmp_path, progress=False)) == "done"
    paths = RunPaths.of(tmp_path, spec)
    state, doc = read_state(paths), json.loads(paths.spec.read_text())
    assert (state["step"], state["kimg"]) == (3, 0.018)
    assert (doc["resolved"]["batch_size"], doc["resolved"]["reals_per_step"]) == (2, 6)
