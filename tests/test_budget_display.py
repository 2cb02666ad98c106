"""Budgets as dry-run, status and report show them: the scaled budget, runs made with another scale,
iterations / kimg / images reached, which limit applied, and budgets pinned in kimg."""

from __future__ import annotations

import pytest

from bench import cli
from bench.plan.suites import load_suite
from bench.results.runs import RunPaths, read_state

PINNED = """
[suite]
name = "pinned"
resolution = 32
datasets = ["shapes"]

[budget]
hours = 5.0
max_kimg = 0.016
pin = "kimg"
{extra}

[eval]
protocols = []
detector = "inception-random"
fractions = [1.0]
grid_size = 4

[models.baseline]
kwargs = {{ recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }}
"""


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main([*args, "--no-progress"] if args[0] == "run" else list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_status_after_a_budget_scale_run(tiny_suite, tmp_path, capsys) -> None:
    suite = str(tiny_suite(iters=6))  # batch 4; half the budget: 3 iterations
    out = str(tmp_path / "results")
    code, stdout, _ = _cli(capsys, "run", "--suite", suite, "--out", out, "--budget-scale", "0.5")
    assert code == 0 and "1 done" in stdout
    scaled = load_suite(suite, budget_scale=0.5).cells[0].spec
    assert read_state(RunPaths.of(out, scaled))["budget_applied"] == "iters"

    code, stdout, _ = _cli(capsys, "status", "--suite", suite, "--out", out, "--wide")  # without the flag
    assert code == 0
    lines = stdout.splitlines()
    head = [c.strip() for c in next(line for line in lines if line.startswith("| run_id")).split("|")]
    cells = dict(
        zip(head, [c.strip() for c in next(ln for ln in lines if scaled.run_id in ln).split("|")], strict=True)
    )
    assert cells["run_id"] == f"* {scaled.run_id}" and cells["row"] == "* Baseline" and cells["cap"] == "3 it"
    assert [cells[k] for k in ("state", "it", "kimg", "images", "stopped by")] == ["done", "3", "0.012", "12", "iters"]
    assert "pass `--budget-scale 0.5` to address them" in stdout
    code, stdout, _ = _cli(capsys, "status", "--suite", suite, "--out", out)  # the row's label is marked too
    assert code == 0 and "| * Baseline " in stdout

    code, stdout, _ = _cli(capsys, "status", "--suite", suite, "--out", out, "--budget-scale", "0.5", "--wide")
    row = next(line for line in stdout.splitlines() if scaled.run_id in line)
    assert "* " not in row and "| done" in row and "budget scale 0.5: every limit" in stdout

    code, _, stderr = _cli(capsys, "report", "--suite", suite, "--out", out)
    assert code == 2 and "pass `--budget-scale 0.5` (1 cell(s))" in stderr


def test_kimg_pinned_budget_is_deterministic_and_device_independent(tiny_suite, tmp_path, capsys) -> None:
    suite = tiny_suite("pinned", text=PINNED.format(extra=""))
    ratio3 = tiny_suite("pinned3", text=PINNED.format(extra="speed_ratio = 3.0"))
    spec = load_suite(str(suite)).cells[0].spec
    assert spec.budget_seconds is None and spec.converted_seconds == pytest.approx(5 * 3600)
    assert load_suite(str(ratio3)).cells[0].spec.run_id == spec.run_id  # the pinned budget ignores the ratio
    assert load_suite(str(suite), budget_scale=0.5).cells[0].spec.run_id != spec.run_id
    out = str(tmp_path / "results")
    code, stdout, _ = _cli(capsys, "run", "--suite", str(suite), "--out", out, "--dry-run")
    assert code == 0 and "pinned: 0.016 kimg" in stdout and "(18,000 (5 h), not charged)" in stdout
    code, _, _ = _cli(capsys, "run", "--suite", str(suite), "--out", out)
    state = read_state(RunPaths.of(out, spec))
    assert code == 0 and state["step"] == 4 and state["kimg"] == pytest.approx(0.016)
    assert state["budget_applied"] == "kimg"


@pytest.mark.parametrize(
    ("extra", "message"),
    [('pin = "hours"', "budget.pin: 'hours' not one of iters, kimg"),
     ("max_kimg = -1", "budget.max_kimg: must be a finite number > 0")],
)  # fmt: skip
def test_bad_budget_keys_are_reported(tiny_suite, tmp_path, capsys, extra: str, message: str) -> None:
    text = PINNED.format(extra="").replace('max_kimg = 0.016\npin = "kimg"', extra)
    code, _, stderr = _cli(capsys, "run", "--suite", str(tiny_suite("bad", text=text)), "--dry-run")
    assert code == 2 and message in stderr


def test_pin_without_its_cap_and_unknown_reference_are_refused(tiny_suite, capsys) -> None:
    text = PINNED.format(extra="").replace("max_kimg = 0.016\n", "")
    code, _, stderr = _cli(capsys, "run", "--suite", str(tiny_suite("nocap", text=text)), "--dry-run")
    assert code == 2 and "budget pinned to kimg without max_kimg; set max_kimg" in stderr
    text = PINNED.format(extra="").replace('datasets = ["shapes"]', 'datasets = ["shapes"]\nreference_gpu = "GTX 480"')
    code, _, stderr = _cli(capsys, "run", "--suite", str(tiny_suite("noref", text=text)), "--dry-run")
    assert code == 2 and "suite.reference_gpu: unknown device profile 'GTX 480'" in stderr


def test_iteration_limit_and_which_limit_applied() -> None:
    from bench.plan.budget import Budget
    from bench.plan.specs import RunSpec

    spec = RunSpec(suite="s", model="m", dataset="d", resolution=32, budget_hours=1.0, max_iters=100, max_kimg=0.4)
    assert spec.iteration_limit(8) == (50, "kimg") and spec.iteration_limit(2) == (100, "iters")
    half = RunSpec(**{**spec.to_dict(), "budget_scale": 0.5})
    assert half.iteration_limit(8) == (25, "kimg") and half.budget_seconds == pytest.approx(1800)
    pinned = RunSpec(**{**spec.to_dict(), "budget_pin": "iters"})
    assert pinned.iteration_limit(8) == (100, "iters") and pinned.budget_seconds is None
    assert Budget(seconds=0.0, max_iters=10, iters_unit="kimg").applied() == "time"
    done = Budget(seconds=100.0, max_iters=2, iters_unit="kimg")
    assert done.applied() is None
    done.iters = 2
    assert done.applied() == "kimg"
