"""Compute budgets: one budget of reference-device seconds per suite becomes each model's iteration
count through the step-cost model, the same on every machine; dry-run shows what it buys; eval rows
carry the compute used; a suite mixing it with other budgets is refused in one line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import bench.results.envinfo as envinfo
import bench.tools.conversion as conversion
from bench import cli
from bench.errors import BenchError
from bench.plan import names
from bench.plan.compute import compute_device, reference_step_seconds
from bench.plan.suites import load_suite
from bench.report.figures import x_axis
from bench.results.runs import RunPaths, read_state
from bench.tools.stepcost import count_in_two, step_cost, trace_step_cost

SUITE = """
[suite]
name = "{name}"
resolution = 32
datasets = ["shapes"]
{suite_extra}

[budget]
compute_seconds = {seconds}
{budget_extra}

[eval]
protocols = []
detector = "inception-random"
fractions = [0.5, 1.0]
grid_size = 4

[models.baseline]
label = "Baseline"
kwargs = {{ recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }}
{model_extra}

[models.stylegan2-lite]
label = "StyleGAN2"
kwargs = {{ channel_base = 256, channel_max = 16, z_dim = 16, w_dim = 16, mapping_layers = 2, batch_size = 2 }}
"""
GPU = 'compute_device = "rtx-2080-ti"'  # overhead-bound at tiny sizes: a few iterations per 0.1 s


def _suite(tmp_path: Path, name: str = "compute", seconds: float = 0.1, **extra: str) -> str:
    path = tmp_path / f"{name}.toml"
    fields = {"suite_extra": "", "budget_extra": GPU, "model_extra": ""} | extra
    path.write_text(SUITE.format(name=name, seconds=seconds, **fields))
    return str(path)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main([*args, "--no-progress"] if args[0] == "run" and "--dry-run" not in args else list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_one_budget_gives_each_model_its_own_iterations(tmp_path: Path) -> None:
    cells = {c.spec.model: c.spec for c in load_suite(_suite(tmp_path, seconds=3.0)).cells}
    device = compute_device("rtx-2080-ti")
    for model, spec in cells.items():
        step = reference_step_seconds(step_cost(model, 32, spec.model_kwargs), device)
        assert spec.compute == {"budget_s": 3.0, "device": "rtx-2080-ti", "step_s": step,
                                "images_per_step": spec.model_kwargs["batch_size"]}  # fmt: skip
        assert spec.max_iters == math.ceil(3.0 / step) and spec.budget_pin == "iters"
        assert spec.budget_seconds is None and spec.iteration_limit(1) == (spec.max_iters, "iters")
    assert cells["baseline"].max_iters != cells["stylegan2-lite"].max_iters  # same compute, other step costs
    doubled = {c.spec.model: c.spec.max_iters for c in load_suite(_suite(tmp_path, "twice", seconds=6.0)).cells}
    assert all(abs(doubled[m] - 2 * s.max_iters) <= 1 for m, s in cells.items())


def test_iterations_are_identical_across_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of the machine enters: thread count, a (pretend) GPU, another CPU, a cached count."""
    suite = _suite(tmp_path, budget_extra='compute_device = "cpu-epyc-zen4 x2"')
    plain = [(c.spec.run_id, c.spec.max_iters) for c in load_suite(suite).cells]
    cache = tmp_path / "cache"
    threads = torch.get_num_threads()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA A100-SXM4-80GB")
    monkeypatch.setattr(envinfo, "cpu_description", lambda: "Intel(R) Xeon(R) Gold 6248 family 6 model 85")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    try:
        torch.set_num_threads(1 if threads > 1 else 2)
        assert conversion.budget_conversion(suite, tmp_path) is None  # no speed ratio asked for
        for _ in range(2):  # counted, then read from the cache
            assert [(c.spec.run_id, c.spec.max_iters) for c in load_suite(suite, cost_cache=cache).cells] == plain
    finally:
        torch.set_num_threads(threads)
    counted = [k for k in names._document()["compute-steps"] if "cpu-epyc-zen4 x2" in k]
    assert len(counted) == 2  # the two configurations, counted once, then remembered (no torch when warm)
    with pytest.raises(BenchError, match="or a compute budget"):
        conversion.budget_conversion(suite, tmp_path, device_profile="a100")


@pytest.mark.parametrize(
    "extra",
    [
        {"budget_extra": f"{GPU}\nmax_iters = 4"},
        {"budget_extra": f"{GPU}\nhours = 1.0"},
        {"model_extra": "max_kimg = 0.1"},
        {"model_extra": "budget_hours = 2"},
    ],
)
def test_a_suite_mixing_compute_and_other_budgets_is_refused(tmp_path: Path, capsys, extra: dict[str, str]) -> None:
    out = tmp_path / "results"
    code, stdout, stderr = _cli(capsys, "run", "--suite", _suite(tmp_path, **extra), "--out", str(out), "--dry-run")
    assert code == 2 and stdout == "" and len(stderr.strip().splitlines()) == 1
    assert "budget.compute_seconds: a compute budget is the suite's one budget for every row" in stderr
    assert ("budget." if "budget_extra" in extra else "models.baseline.") in stderr and not out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"budget_extra": 'compute_device = "cpu-epyc-zen4"'}, "per-core CPU profile: name its cores"),
        ({"budget_extra": 'compute_device = "a100 x2"'}, "not a per-core CPU profile"),
        ({"budget_extra": 'compute_device = "GTX 480"'}, "unknown device profile"),
        ({"budget_extra": ""}, "budget.compute_device: missing"),
        ({"budget_extra": 'compute_device = "a100"', "seconds": "nan"}, "compute_seconds: must be a finite number"),
    ],
)
def test_bad_compute_budgets_are_one_line_errors(tmp_path: Path, capsys, extra: dict, message: str) -> None:
    code, _, stderr = _cli(capsys, "run", "--suite", _suite(tmp_path, **extra), "--out", str(tmp_path), "--dry-run")
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1


def test_reference_gpu_is_the_default_compute_device(tmp_path: Path) -> None:
    suite = _suite(tmp_path, suite_extra='reference_gpu = "RTX 2080-Ti"', budget_extra="")
    assert {c.spec.compute["device"] for c in load_suite(suite).cells} == {"rtx-2080-ti"}


def test_run_records_the_compute_used_and_plots_over_it(tmp_path: Path, capsys) -> None:
    suite, out = _suite(tmp_path), str(tmp_path / "results")
    code, stdout, _ = _cli(capsys, "run", "--suite", suite, "--out", out, "--dry-run")
    loaded = load_suite(suite)
    for c in loaded.cells:  # the budget and what it buys, before anything ran
        s = c.spec
        bought = f"{s.max_iters:,} it, {s.max_iters * s.compute['images_per_step'] / 1000:.3g} kimg, "
        assert f"0.1 s of rtx-2080-ti / {s.compute['step_s']:.3g} s per it = {bought}" in stdout
    code, _, _ = _cli(capsys, "run", "--suite", suite, "--out", out)
    assert code == 0
    for c in loaded.cells:  # state and eval rows carry progress_row: the compute used so far
        state = read_state(RunPaths.of(out, c.spec))
        assert state["step"] == c.spec.max_iters and state["budget_applied"] == "iters"
        assert state["compute"] == pytest.approx(c.spec.max_iters * c.spec.compute["step_s"])
    assert x_axis(loaded, "shapes").column == "compute"
    code, stdout, _ = _cli(capsys, "status", "--suite", suite, "--out", out)
    assert code == 0 and "compute budget (planned)" in stdout and "| done" in stdout


def test_steps_counted_in_two_processes_equal_one_process_counts(tmp_path: Path) -> None:
    """count_in_two (this process and a forked one) caches the counts one process makes; a configuration
    that cannot be built is skipped, for the caller's own count to report."""
    configs = [
        ("baseline", 32, {"recon": "mse", "ngf": 4, "ndf": 4, "batch_size": 4}),
        ("stylegan2-lite", 32, {"channel_base": 256, "channel_max": 16, "z_dim": 16, "w_dim": 16, "batch_size": 2}),
        ("baseline", 32, {"no_such_kwarg": 1}),
    ]
    count_in_two(configs, tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 2
    for name, resolution, kwargs in configs[:2]:
        assert step_cost(name, resolution, kwargs, tmp_path) == trace_step_cost(name, resolution, kwargs)
    with pytest.raises((TypeError, ValueError)):
        step_cost(*configs[2], tmp_path)
