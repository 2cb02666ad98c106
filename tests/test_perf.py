"""The perf benchmark command, and equality of the optimized training path with a straightforward one."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import models
from bench.cli import main
from bench.data.sampler import Sampler, place_dataset
from bench.data.store import Dataset
from bench.plan.specs import RunSpec
from bench.plan.suites import load_suite
from bench.results.io import atomic_write_json
from bench.results.runs import RunPaths, UnreadableRunError, append_eval_row, write_state
from bench.tools.perf.busy import covered
from bench.tools.perf.run import precision_fid_check
from bench.tools.perf.settings import PrecisionCheck
from bench.tools.perf.steps import time_loop, timed_optimizers
from bench.tools.perf.timing import count_flops
from bench.training.checkpoints import apply_speed_modes, build_model
from models.common import ema_update

# Each model's own tiny configuration, at batch 4 (6 images: the second step crosses an epoch).
TINY = {name: dict(models.model_info(name).tiny, batch_size=4) for name in ("fastgan", "stylegan2-lite", "biggan")}
STEPS = 2  # training steps compared (with 6 images and batch 4, the second one crosses an epoch)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one CPU thread


def _images(n: int = 6, res: int = 32) -> Tensor:
    return torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=torch.Generator().manual_seed(7))


class PlainSampler:
    """The Sampler's contract written the obvious way: one index at a time, per-image flip and scale."""

    def __init__(self, images: Tensor, batch_size: int, seed: int) -> None:
        self.images, self.batch_size = images, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.perm, self.pos = torch.randperm(len(images), generator=self.gen).tolist(), 0

    def next(self) -> Tensor:
        idx = []
        while len(idx) < self.batch_size:
            if self.pos == len(self.perm):
                self.perm, self.pos = torch.randperm(len(self.images), generator=self.gen).tolist(), 0
            idx.append(self.perm[self.pos])
            self.pos += 1
        flips = (torch.rand(len(idx), generator=self.gen) < 0.5).tolist()
        rows = [self.images[i].flip(-1) if f else self.images[i] for i, f in zip(idx, flips, strict=True)]
        return torch.stack([r.float() / 127.5 - 1.0 for r in rows])


@torch.no_grad()
def plain_ema(ema: nn.Module, src: nn.Module, beta: float, buffers: str = "copy") -> None:
    """EMA as the formula reads, one parameter and one buffer at a time (float buffers averaged
    like the parameters when ``buffers="average"``, else copied)."""
    for e, p in zip(ema.parameters(), src.parameters(), strict=True):
        e.copy_(beta * e + (1.0 - beta) * p)
    for e, b in zip(ema.buffers(), src.buffers(), strict=True):
        e.copy_(beta * e + (1.0 - beta) * b if buffers == "average" and e.is_floating_point() else b)


def test_sampler_matches_plain_indexing() -> None:
    images = _images(7)
    fast, plain = Sampler(images, 4, seed=3), PlainSampler(images, 4, seed=3)
    for _ in range(12):  # several epochs
        assert torch.equal(fast.next(), plain.next())
    state, expected = fast.state_dict(), plain.next()
    assert torch.equal(fast.next(), expected)
    resumed = Sampler(images, 4, seed=0)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.next(), expected)


def test_large_datasets_stay_on_the_host_with_the_same_batches() -> None:
    """``place_dataset``: over a quarter of the device's memory, the images stay where they are (host,
    memory-mapped) and the Sampler copies each batch over; its batches are the same either way."""
    images = _images(7)
    meta = torch.device("meta")  # a device whose placement is visible without an accelerator
    assert place_dataset(images, meta, capacity=4 * images.numel()).device == meta
    assert place_dataset(images, meta, capacity=4 * images.numel() - 1) is images
    host = Sampler(place_dataset(images, torch.device("cpu"), capacity=1), 4, seed=3, device=torch.device("cpu"))
    plain = PlainSampler(images, 4, seed=3)
    for _ in range(5):
        assert torch.equal(host.next(), plain.next())


def test_ema_update_matches_per_parameter_loops() -> None:
    torch.manual_seed(0)
    src = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    ema_a, ema_b, ema_c = (nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)) for _ in range(3))
    for e in (ema_b, ema_c):
        e.load_state_dict(ema_a.state_dict())
    src[1].running_mean.normal_()
    src[1].num_batches_tracked.fill_(5)
    for _ in range(3):
        ema_update(ema_a, src, 0.9)
        plain_ema(ema_b, src, 0.9)
        with torch.no_grad():
            for e, p in zip(ema_c.parameters(), src.parameters(), strict=True):
                e.lerp_(p, 1.0 - 0.9)
            for e, b in zip(ema_c.buffers(), src.buffers(), strict=True):
                e.copy_(b)
    states = ema_a.state_dict().items(), ema_b.state_dict().values(), ema_c.state_dict().values()
    for (k, a), b, c in zip(*states, strict=True):
        assert torch.equal(a, c), k  # the fused update is bitwise a per-parameter lerp
        assert ((a.double() - b.double()).abs() / b.double().abs().clamp(min=1)).max() <= 1e-6, k  # formula


def _straightforward(model: models.GANModel) -> None:
    """Turn ``model`` into the reference: for-loop (single-tensor) optimizers."""
    for opt in vars(model).values():
        if isinstance(opt, torch.optim.Optimizer):
            for group in opt.param_groups:
                group["foreach"] = False
                group["fused"] = False


@pytest.mark.parametrize("name", sorted(TINY))
def test_optimized_loop_equals_straightforward_steps(name: str, monkeypatch) -> None:
    """The loop (Sampler, loss sums, budget, fused EMA, the model's optimizers) vs a plain step.

    Reference: per-image indexing and flips, ``model.train_step`` with its EMA replaced by a
    per-parameter loop and its optimizers forced to the single-tensor implementation. Same
    seed, same step indices; after the steps every weight, EMA weight and buffer agrees to
    1e-6 (relative above magnitude 1: StyleGAN2's equalised-lr weights reach ~100).
    """
    images = _images()
    spec = RunSpec(
        suite="t", model=name, dataset="t", resolution=32, seed=0, model_kwargs=TINY[name],
        max_iters=STEPS, protocols=(), eval_fractions=(),
    )  # fmt: skip
    fast, ref = build_model(spec, torch.device("cpu")), build_model(spec, torch.device("cpu"))
    dataset = Dataset(name="t", resolution=32, images=images, manifest={})

    torch.manual_seed(1)
    time_loop(fast, spec, dataset, images, steps=STEPS - 1, warmup=1, log_every=2)

    _straightforward(ref)
    monkeypatch.setattr(sys.modules[type(ref).__module__], "ema_update", plain_ema)
    sampler = PlainSampler(images, ref.reals_per_step, seed=spec.seed)
    torch.manual_seed(1)
    for step in range(STEPS):
        ref.train_step(sampler.next(), step)

    a, b = fast.state_dict(), ref.state_dict()
    assert a.keys() == b.keys()
    floats = [k for k in a if a[k].is_floating_point()]
    err = {k: ((a[k].double() - b[k].double()).abs() / b[k].double().abs().clamp(min=1)).max().item() for k in floats}
    assert max(err.values()) <= 1e-6, max(err.items(), key=lambda kv: kv[1])
    assert all(torch.equal(a[k], b[k]) for k in a if not a[k].is_floating_point())
    assert any(not torch.equal(a[k], v) for k, v in build_model(spec, torch.device("cpu")).state_dict().items())


@pytest.mark.parametrize("name", sorted(TINY))
def test_bf16_autocast_steps_keep_fp32_weights(name: str) -> None:
    """The bf16 speed mode: every family trains under autocast with finite losses, weights and
    optimizer state staying fp32 (BigGAN's spectral-norm sigma and StyleGAN2's w_avg included)."""
    spec = RunSpec(suite="t", model=name, dataset="t", resolution=32, model_kwargs=TINY[name], max_iters=2)
    model = build_model(spec, torch.device("cpu"))
    real = _images(model.reals_per_step).float() / 127.5 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = [model.train_step(real, step) for step in range(2)]
    assert all(torch.isfinite(v) for step in losses for v in step.values())
    assert {t.dtype for t in model.state_dict().values() if t.is_floating_point()} == {torch.float32}
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(TINY))
def test_fused_adam_mode_equals_single_tensor_adam_per_step(name: str) -> None:
    """``fused_adam``: every optimizer switches to the fused kernel and stays so after loading a
    checkpoint of another implementation; one update from the same gradients equals the
    single-tensor update within 1e-6 (float rounding; training can amplify it, hence opt-in)."""
    spec = RunSpec(suite="t", model=name, dataset="t", resolution=32, model_kwargs=TINY[name], max_iters=1)
    fused = RunSpec(**{**spec.to_dict(), "fused_adam": True})
    assert fused.run_id != spec.run_id and "fused_adam" not in spec.hashed_dict()  # older run ids unchanged
    a, b = build_model(spec, torch.device("cpu")), build_model(spec, torch.device("cpu"))
    apply_speed_modes(a, fused)
    _straightforward(b)
    a.load_optimizer_state(b.optimizer_state())
    groups = [g for opt in a.optimizers().values() for g in opt.param_groups]
    assert groups and all(g["fused"] is True and g["foreach"] is False for g in groups)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            p.grad = q.grad = torch.randn(p.shape, generator=gen) * 1e-3
        for opt in (*a.optimizers().values(), *b.optimizers().values()):
            opt.step()
    pairs = list(zip(a.parameters(), b.parameters(), strict=True))
    assert max(((p - q).abs() / q.abs().clamp(min=1)).max().item() for p, q in pairs) <= 1e-6
    start = build_model(spec, torch.device("cpu")).parameters()
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), start, strict=True))


@pytest.mark.parametrize("name", sorted(TINY))
def test_default_speed_modes_use_foreach_adam_bitwise_equal_to_the_loop(name: str) -> None:
    """Without ``fused_adam`` every optimizer runs its foreach kernels, and training steps give bitwise the
    weights, EMA and optimizer state of torch's CPU default (the single-tensor loop)."""
    spec = RunSpec(suite="t", model=name, dataset="t", resolution=32, model_kwargs=TINY[name], max_iters=3)
    a, b = build_model(spec, torch.device("cpu")), build_model(spec, torch.device("cpu"))
    apply_speed_modes(a, spec)
    _straightforward(b)
    assert all(g["foreach"] is True for opt in a.optimizers().values() for g in opt.param_groups)
    real = _images(a.reals_per_step).float() / 127.5 - 1
    for model in (a, b):
        torch.manual_seed(1)
        for step in range(3):
            model.train_step(real, step)
    moments = [{k: o["state"] for k, o in m.optimizer_state().items()} for m in (a, b)]  # groups differ in flags
    for x, y in ((a.state_dict(), b.state_dict()), tuple(moments)):
        flat_x, flat_y = torch.utils._pytree.tree_flatten(x)[0], torch.utils._pytree.tree_flatten(y)[0]
        assert len(flat_x) == len(flat_y) > 0
        assert all(torch.equal(u, v) for u, v in zip(flat_x, flat_y, strict=True))


def test_compile_mode_compiles_generator_and_discriminator() -> None:
    kwargs = TINY["fastgan"]
    spec = RunSpec(suite="t", model="fastgan", dataset="t", resolution=32, model_kwargs=kwargs, max_iters=1)
    model = build_model(spec, torch.device("cpu"))
    apply_speed_modes(model, spec)
    assert model.generator._compiled_call_impl is None  # compile off: nothing changes
    apply_speed_modes(model, RunSpec(**{**spec.to_dict(), "compile": True}))
    nets = [model.generator, model.discriminator, *model.generator.children(), *model.discriminator.children()]
    assert all(m._compiled_call_impl is not None for m in nets)
    assert model.g_ema._compiled_call_impl is None
    assert "generator.init.init.0.weight_orig" in model.state_dict()  # keys unchanged: checkpoints load


def test_parse_model_and_flop_count() -> None:
    assert models.parse_entry("fastgan:recon=mse:ngf=4") == ("fastgan", {"recon": "mse", "ngf": 4})
    lin = nn.Linear(8, 4, bias=False)
    x = torch.randn(2, 8, requires_grad=True)
    assert count_flops(lambda: lin(x).sum().backward()) == 3 * 2 * 2 * 8 * 4  # forward, grad input, grad weight


def test_perf_command_writes_json_and_prints_table(tmp_path: Path, capsys) -> None:
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i, img in enumerate(_images(4)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    entry = "fastgan:ngf=4:ndf=4:recon=mse:batch_size=2"
    rc = main([
        "perf", "--models", entry, "--resolution", "32", "--steps", "1", "--warmup", "1", "--harness-steps", "3",
        "--eval-images", "2", "--naive-data", "--dataset", f"folder:{folder}", "--device", "cpu",
        "--out", str(tmp_path),
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    files = list((tmp_path / "perf").glob("perf-cpu-32px-*.json"))
    assert len(files) == 1 and str(files[0]) in out
    doc = json.loads(files[0].read_text())
    assert doc["settings"]["resolution"] == 32 and doc["environment"]["device"] == "cpu"
    assert doc["environment"]["packages"]["torch"] == torch.__version__.split("+")[0]
    (row,) = doc["models"]
    assert row["model"] == entry and row["batch"] == 2 and row["flops_per_step"] > 0
    assert row["peak_matmul"]["flops"] > 0 and row["peak_matmul"]["flops_per_cpu_s"] > 0
    assert row["overhead_share_diff"]["n"] == 1 and 0 < row["peak_fraction"]
    for key in ("loop_step_s", "model_step_s", "harness_step_s"):
        assert row[key]["n"] >= 1 and row[key]["median"] > 0
    assert 0 < row["overhead_share_direct"] < 1 and row["peak_memory"]["bytes"] > 0
    assert row["in_step"]["ema_update"]["calls"] >= 1 and row["in_step"]["diff_augment"]["calls"] >= 1
    assert 0 < row["optimizer_share"] < 1 and row["optimizer_step_s"] > 0
    assert row["busy"]["steps"] == 3 and 0 < row["busy"]["busy"] <= 1.05 and row["busy"]["intervals"] > 0
    assert row["peak_matmul"]["math"] == "fp32"
    ev = row["eval"]
    assert ev["images"] == 2 and ev["pipeline_ips"] > 0 and ev["detector_ips"] > 0
    assert ev["serial_bound_ips"] < ev["detector_ips"] and ev["pipeline_over_serial_bound"] > 0
    assert ev["detector"] == "effnet-lite0" and "timed effnet-lite0" in ev["detector_note"]  # offline fallback
    assert 0 < ev["generator_flops_per_image"] and 0.7e9 < ev["detector_flops_per_image"] < 0.85e9  # 0.38 GMAC
    assert doc["data_path"]["naive_over_sampler"] > 0
    ref = doc["reference_cache"]  # computed once, then read from the cache
    assert not ref["cached_before"] and Path(ref["cache_file"]).is_file() and ref["images"] == 4
    assert f"| {entry} | 2 |" in out and "naive / ours" in out and "; timed effnet-lite0" in out


def test_covered_time_counts_overlaps_once() -> None:
    assert covered([]) == 0
    assert covered([(0, 10), (2, 5), (8, 12), (20, 21), (21, 25)]) == 17  # nested, overlapping, touching
    assert covered([(5, 9), (0, 1)]) == 5  # any order


def test_timed_optimizers_counts_steps_and_restores_them() -> None:
    spec = RunSpec(suite="t", model="fastgan", dataset="t", resolution=32, model_kwargs=TINY["fastgan"], max_iters=1)
    model = build_model(spec, torch.device("cpu"))
    real = _images(4).float() / 127.5 - 1
    with timed_optimizers(model) as optim:
        model.train_step(real, 0)
    assert optim["calls"] == 2 and optim["seconds"] > 0  # G and D
    assert all("step" not in vars(opt) for opt in model.optimizers().values())


def test_compiled_spectral_norm_net_trains_when_called_twice_before_backward() -> None:
    """FastGAN's D pattern under ``compile``: reals, then fakes, then one backward. Traced into the
    graph, the old-style SN hook's in-place power iteration breaks that backward; run eagerly
    (``eager_spectral_norm_hooks``) it works and matches eager execution."""
    from torch.nn.utils import spectral_norm

    from models.common import eager_spectral_norm_hooks

    def net() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(spectral_norm(nn.Conv2d(3, 4, 3)), nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(4, 1, 3)))

    x = torch.randn(2, 3, 8, 8)
    compiled, eager = net(), net()
    assert eager_spectral_norm_hooks(compiled) == 2
    compiled.compile()
    for m in (compiled, eager):
        (m(x).mean() + m(x * 2).mean()).backward()
    for (name, a), b in zip(compiled.state_dict().items(), eager.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    for a, b in zip(compiled.parameters(), eager.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6)


def _precision_runs(tiny_suite, out: Path, fids: dict[str, float]) -> PrecisionCheck:
    """``perf --precision-fid``'s runs (seed 0) already done under ``out``, each with its final FID (and a
    later re-scoring with another detector), as that check finds them on a second call."""
    path = tiny_suite(protocols='["fid200_full_clean"]')
    cell = load_suite(str(path)).cells[0]
    for precision, value in fids.items():
        spec = dataclasses.replace(cell.spec, suite="perf-tiny-precision", precision=precision, budget_hours=None,
                                   max_iters=2, eval_fractions=(1.0,))  # fmt: skip
        paths = RunPaths.of(out, spec)
        atomic_write_json(paths.spec, {"spec": spec.to_dict()})
        write_state(paths, status="done", step=2)
        row = {"metric": "fid200_full_clean", "kind": "fid", "detector": spec.detector, "step": 2, "value": value,
               "snapshot": "snapshots/snap-00000002.pt", "eval_point": 1.0}  # fmt: skip
        append_eval_row(paths, row)
        append_eval_row(paths, row | {"detector": "effnet-lite0", "value": 1.0})  # `eval --detector` afterwards
    return PrecisionCheck(precision_fid=True, fid_suite=str(path), fid_model="baseline", fid_seeds=(0,), fid_iters=2)


def test_the_precision_check_reads_the_runs_own_protocol(tiny_suite, tmp_path: Path) -> None:
    check = _precision_runs(tiny_suite, tmp_path, {"fp32": 80.0, "bf16": 81.0})
    doc, _ = precision_fid_check(check, out=tmp_path, device="cpu")
    assert [r["fid"] for r in doc["runs"]] == [80.0, 81.0]  # not the re-scoring's 1.0
    assert doc["summary"]["difference"] == pytest.approx(1.0)


def test_the_precision_check_refuses_a_hand_edited_row(tiny_suite, tmp_path: Path) -> None:
    check = _precision_runs(tiny_suite, tmp_path, {"fp32": 80.0, "bf16": 81.0})
    for evals in (tmp_path / "runs" / "perf-tiny-precision").glob("*/evals.jsonl"):
        evals.write_text(evals.read_text().replace('"value": 80.0', '"value": "80"'))  # the fp32 run's
    with pytest.raises(UnreadableRunError, match=r"evals.jsonl line 1: value: expected a finite number, got '80'"):
        precision_fid_check(check, out=tmp_path, device="cpu")


def test_the_cpu_matmul_probe_stops_at_a_size_that_takes_a_tenth_of_a_second(monkeypatch) -> None:
    """A dtype without fast CPU kernels (bf16 here: 0.2 s a 512-side product, so 13 s at 2048) is probed at
    512, not at the 2048 cap; a fast one reaches the cap; a cap below 256 is kept."""
    from bench.tools.perf import timing

    clock = [0.0]

    def mm(a: torch.Tensor, b: torch.Tensor, cost_at_512: float) -> torch.Tensor:
        clock[0] += cost_at_512 * (a.shape[0] / 512) ** 3
        return a

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(timing.torch, "mm", lambda a, b: mm(a, b, 0.2))
    assert timing.cpu_peak_side(torch.bfloat16, 2048) == 512
    monkeypatch.setattr(timing.torch, "mm", lambda a, b: mm(a, b, 0.001))
    assert timing.cpu_peak_side(torch.float32, 2048) == 2048
    assert timing.cpu_peak_side(torch.float32, 128) == 128
