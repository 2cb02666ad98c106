"""Budget conversion: device profiles, the per-op roofline, speed ratios per configuration, and the
stated throughputs the efficiencies are fitted to."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest

from bench.errors import BenchError
from bench.plan.devices import get_profile, load_profiles
from bench.plan.roofline import OpGroup, StepCost, ideal_seconds, step_seconds
from bench.plan.sources import source_flags
from bench.plan.suites import load_suite
from bench.tools import conversion
from bench.tools.conversion import ProfileEstimate, budget_conversion, calibration_path, calibration_ratios
from bench.tools.stepcost import step_cost
from bench.training.device import resolve_device

TINY = {"recon": "mse", "ngf": 4, "ndf": 4, "batch_size": 4}


def test_every_profile_is_sourced_positive_and_an_estimate() -> None:
    profiles = load_profiles()
    assert {"rtx-2080-ti", "rtx-titan", "a100-sxm4-80gb", "h100-sxm", "h200-sxm", "cpu-epyc-zen4"} <= set(profiles)
    for p in profiles.values():
        assert p.source and p.efficiency > 0 and p.bandwidth > 0 and p.peaks["fp32"] > 0, p.name
        assert p.summary()["estimate"] is True
        assert all(p.flops(f) >= p.flops("fp32") for f in ("tf32", "fp16", "bf16")), p.name  # tensor units: faster


def test_suite_names_resolve_and_unknown_is_refused() -> None:
    assert get_profile("RTX 2080-Ti").name == "rtx-2080-ti"
    assert get_profile("RTX TITAN").name == "rtx-titan"
    with pytest.raises(BenchError, match="unknown device profile 'GTX 480'; choose one of"):
        get_profile("GTX 480")


def test_roofline_takes_each_ops_bound() -> None:
    gpu = get_profile("v100")
    compute = OpGroup("conv", flops=int(1e12), bytes=1000, side=64, count=2.0)  # compute-bound
    memory = OpGroup("other", flops=0, bytes=int(9e9), side=64, count=1.0)  # memory-bound
    tiny = OpGroup("other", flops=0, bytes=8, side=0, count=100.0)  # host-bound
    cost = StepCost(batch=8, resolution=256, groups=(compute, memory, tiny))
    want = 2 * 1e12 / gpu.flops("fp32") + 9e9 / gpu.bandwidth + 100 * gpu.op_overhead
    assert ideal_seconds(cost, gpu) == pytest.approx(want)
    assert step_seconds(cost, gpu) == pytest.approx(want / gpu.efficiency)
    # bf16 on a device with bf16 units: convolutions at the bf16 peak, half their bytes
    a100 = get_profile("a100")
    assert ideal_seconds(StepCost(8, 256, (compute,)), a100, "bf16") == pytest.approx(2e12 / a100.flops("bf16"))
    # fp32 convolutions run as TF32 on Ampere by PyTorch's default; not on Turing
    assert ideal_seconds(StepCost(8, 256, (compute,)), a100) == pytest.approx(2e12 / a100.flops("tf32"))
    turing = get_profile("rtx-2080-ti")
    assert ideal_seconds(StepCost(8, 256, (compute,)), turing) == pytest.approx(2e12 / turing.flops("fp32"))


def test_a_device_twice_as_fast_gets_half_the_seconds(tmp_path) -> None:
    """The synthetic pair: every rate of B is twice A's (and its per-op overhead half): half the seconds."""
    a = get_profile("rtx-2080-ti")
    b = dataclasses.replace(
        a, name="twice", peaks={k: 2 * v for k, v in a.peaks.items()}, bandwidth=2 * a.bandwidth,
        op_overhead=a.op_overhead / 2,
    )  # fmt: skip
    text = f"""
[suite]
name = "pair"
resolution = 32
datasets = ["shapes"]
reference_gpu = "RTX 2080-Ti"

[budget]
hours = 2.0

[models.baseline]
kwargs = {json.dumps(TINY).replace('":', '" =')}
"""
    path = tmp_path / "pair.toml"
    path.write_text(text)
    cache = tmp_path / "cache"
    same = load_suite(str(path), speed_ratio=ProfileEstimate(a, a, cache)).cells[0].spec
    fast = load_suite(str(path), speed_ratio=ProfileEstimate(b, a, cache)).cells[0].spec
    assert same.speed_ratio == 1.0 and same.budget_seconds == pytest.approx(2 * 3600)
    assert fast.speed_ratio == 2.0 and fast.budget_seconds == pytest.approx(same.budget_seconds / 2)
    assert fast.budget_source == "profile:twice:rtx-2080-ti" and fast.run_id != same.run_id
    assert source_flags(fast) == "--device-profile twice"


def test_estimates_order_devices_sensibly(tmp_path) -> None:
    """The obviously slow (a 2-core CPU) and the obviously fast (an A100) against the 2080 Ti."""
    ref = get_profile("rtx-2080-ti")
    cpu = get_profile("cpu-epyc-zen4").for_cores(2)
    ratios = {p: ProfileEstimate(prof, ref, tmp_path)("fastgan", 256, {}, "fp32")[0]
              for p, prof in (("cpu", cpu), ("a100", get_profile("a100")), ("h200", get_profile("h200")))}  # fmt: skip
    assert ratios["cpu"] < 0.1 < 1.5 < ratios["a100"] < ratios["h200"] < 10
    bf16 = ProfileEstimate(get_profile("a100"), ref, tmp_path)("fastgan", 256, {}, "bf16")[0]
    assert bf16 > ratios["a100"]  # bf16 units beat TF32 ones


def test_a_damaged_calibration_in_place_warns_before_the_estimate(tmp_path, monkeypatch) -> None:
    """This device's calibration file is used when it fits the suite; another reference's is passed over in
    silence, a damaged one (a ratio of Infinity) with a warning."""
    monkeypatch.setattr(conversion, "local_profile", lambda device, name=None: get_profile("a100"))
    found = calibration_path(tmp_path, resolve_device("auto"))
    found.parent.mkdir(parents=True)
    found.write_text('{"reference_profile": "rtx-titan", "entries": []}')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(budget_conversion("fewshot256", tmp_path), ProfileEstimate)
    found.write_text('{"entries": [{"model": "fastgan", "resolution": 256, "img_s": 1.0, "speed_ratio": Infinity}]}')
    with pytest.warns(UserWarning, match="speed_ratio must be a finite number > 0, got inf.*device-profile estimate"):
        assert isinstance(budget_conversion("fewshot256", tmp_path), ProfileEstimate)


@pytest.mark.slow
def test_step_cost_counts_the_official_fastgan_step(tmp_path) -> None:
    """859 GFLOP for FastGAN at 256 px with MSE (as `perf` counts it; 807 estimated for the official
    step); with LPIPS the count adds the VGG's passes (the official 1,607); lazy R1 is weighted."""
    mse = step_cost("fastgan", 256, {"recon": "mse"}, tmp_path)
    assert mse.batch == 8 and mse.flops == pytest.approx(859e9, rel=0.01)
    assert step_cost("fastgan", 256, {"recon": "mse"}, tmp_path) == mse  # the cached count
    lpips = step_cost("fastgan", 256, {}, tmp_path)
    assert lpips.flops == pytest.approx(1581e9, rel=0.02)
    every = step_cost("stylegan2-lite", 64, {"r1_interval": 1}, tmp_path)
    lazy = step_cost("stylegan2-lite", 64, {}, tmp_path)
    assert lazy.flops < every.flops


def test_conversion_order_and_errors(tiny_suite, tmp_path) -> None:
    suite = tiny_suite()  # no reference_gpu: hours are local hours
    assert budget_conversion(str(suite), tmp_path, speed_ratio=3.0) == 3.0
    assert budget_conversion(str(suite), tmp_path) is None
    with pytest.raises(BenchError, match="both given"):
        budget_conversion(str(suite), tmp_path, speed_ratio=3.0, calibration=tmp_path / "c.json")
    with pytest.raises(BenchError, match="converts no hours"):
        budget_conversion(str(suite), tmp_path, device_profile="a100")
    with pytest.raises(BenchError, match="unknown device profile 'GTX 480'"):
        budget_conversion("fewshot256", tmp_path, device_profile="GTX 480")
    conv = budget_conversion("fewshot256", tmp_path, device_profile="a100")
    assert (
        isinstance(conv, ProfileEstimate)
        and conv.local.name == "a100-sxm4-80gb"
        and conv.reference.name == "rtx-2080-ti"
    )
    cal = tmp_path / "cal.json"
    cal.write_text(
        json.dumps(
            {
                "reference_profile": "rtx-titan",
                "entries": [
                    {
                        "model": "fastgan",
                        "resolution": 256,
                        "kwargs": {},
                        "precision": "fp32",
                        "img_s": 1.0,
                        "speed_ratio": 2.0,
                    }
                ],
            }
        )
    )
    with pytest.raises(BenchError, match="against rtx-titan, the suite's reference is rtx-2080-ti"):
        budget_conversion("fewshot256", tmp_path, calibration=cal)
    ratios = calibration_ratios(cal, get_profile("rtx-titan"))
    assert ratios("fastgan", 256, {}, "fp32") == (2.0, f"calibration:{cal}")
    with pytest.raises(BenchError, match="no speed ratio for baseline at 256 px"):
        ratios("baseline", 256, {}, "fp32")


HOURS_SUITE = """
[suite]
name = "hours"
resolution = 32
datasets = ["shapes"]
seeds = [0]
reference_gpu = "RTX 2080-Ti"

[budget]
hours = 0.001

[models.baseline]
kwargs = { recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }
"""


def test_a_dry_run_plans_hours_at_the_reference_speed_where_no_profile_matches(
    tmp_path, monkeypatch, capsys
) -> None:  # fmt: skip
    """No profile for this device: ``run`` stops with one line; ``--dry-run`` still plans (ratio 1, the
    reference GPU's speed) and lists the missing speed first among the pre-run checks."""
    from bench.cli import main

    suite = tmp_path / "hours.toml"
    suite.write_text(HOURS_SUITE)
    monkeypatch.setattr(conversion, "matched_profile", lambda device: None)
    with pytest.raises(conversion.NoDeviceProfile, match="no device profile matches this device"):
        budget_conversion(str(suite), tmp_path)
    ratio, problem = conversion.dry_run_conversion(str(suite), tmp_path)
    assert isinstance(ratio, ProfileEstimate) and ratio.local.name == ratio.reference.name == "rtx-2080-ti"
    assert problem.startswith("no device profile matches") and problem.endswith("the suite's reference GPU")
    assert main(["--suite", str(suite), "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    checks = out.split("pre-run checks: ")[1].splitlines()
    assert "| 0.001   | 4         | 1 estimate " in out and checks[1].startswith(
        "- no device profile matches this device"
    ), out
    assert main(["--suite", str(suite), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: no device profile matches this device")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_stored_efficiencies_are_the_fit_to_the_stated_throughputs(tmp_path) -> None:
    """devices.toml's efficiencies equal the fit to throughputs.toml's `fit` entries (1 %)."""
    from bench.tools.throughputs import check_rows, fitted_efficiency

    rows = check_rows(tmp_path, uses=("fit",))
    for kind in ("cuda", "cpu"):
        stored = next(p for p in load_profiles().values() if p.kind == kind).efficiency
        assert fitted_efficiency(kind, rows) == pytest.approx(stored, rel=0.01)


def test_cost_steps_weigh_each_lazy_regularisation_pattern() -> None:
    import torch

    import models

    with torch.device("meta"):
        sg2 = models.get_model("stylegan2", resolution=32, **models.model_info("stylegan2").tiny, pl_weight=2.0)
        fast = models.get_model("baseline", resolution=32, **TINY)
    assert sg2.cost_steps() == {0: 1 / 16, 1: 12 / 16, 4: 3 / 16}  # R1 every 16 and path length every 4
    assert fast.cost_steps() == {1: 1.0}
