"""calibrate: the step measured here, converted to the reference GPU (from its profile, or measured
there), written with its assumptions; run uses this device's file by default; budgets re-cut by it."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from bench.errors import BenchError
from bench.plan.suites import load_suite
from bench.tools.conversion import calibration_ratios, read_calibration

REF = 'datasets = ["shapes"]\nreference_gpu = "RTX 2080-Ti"'


def test_calibrate_converts_to_the_reference_and_run_uses_it(tiny_suite, tmp_path) -> None:
    text = tiny_suite().read_text().replace("max_iters = 6", "hours = 1.0").replace('datasets = ["shapes"]', REF)
    suite = tiny_suite(text=text)
    out = tmp_path / "results"
    res = run_cli("calibrate", "--suite", str(suite), "--out", str(out), "--steps", "2", "--no-checks")
    assert res.returncode == 0, res.stderr
    path = next((out / "calibration").glob("*.json"))
    doc = json.loads(path.read_text())
    (entry,) = doc["entries"]
    assert entry["model"] == "baseline" and entry["batch"] == 4 and entry["sec_per_step"] > 0
    assert entry["flops_per_step"] > 0 and entry["reference_basis"] == "estimated from profile rtx-2080-ti"
    assert entry["speed_ratio"] == pytest.approx(entry["reference_sec_per_step"] / entry["sec_per_step"], rel=1e-2)
    assert doc["reference_profile"] == "rtx-2080-ti" and doc["reference"]["estimate"] is True
    assert any("public figures" in a for a in doc["assumptions"]) and doc["load_average"]
    dry = run_cli("--suite", str(suite), "--out", str(out), "--dry-run", "--device", "cpu")  # no flag: this file
    assert dry.returncode == 0, dry.stderr
    assert f"{entry['speed_ratio']:.3g} measured" in dry.stdout and f"{3600 / entry['speed_ratio']:,.0f}" in dry.stdout
    assert f"measured calibration {path}" in dry.stdout


def test_reference_measured_on_the_reference_gpu(tiny_suite, tmp_path) -> None:
    suite = tiny_suite(text=tiny_suite().read_text().replace("max_iters = 6", "hours = 1.0"))
    out = tmp_path / "results"
    res = run_cli("calibrate", "--suite", str(suite), "--out", str(out), "--steps", "2", "--no-checks")
    assert res.returncode == 0, res.stderr
    path = next((out / "calibration").glob("*.json"))
    (entry,) = json.loads(path.read_text())["entries"]
    assert "speed_ratio" not in entry  # no reference device named: nothing to convert to
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"entries": [dict(entry, sec_per_step=4 * entry["sec_per_step"])]}))  # 4x slower
    res = run_cli("calibrate", "--suite", str(suite), "--out", str(out), "--steps", "2", "--reference", str(ref),
                  "--no-checks")  # fmt: skip
    assert res.returncode == 0, res.stderr
    (again,) = json.loads(path.read_text())["entries"]
    assert again["reference_basis"] == "measured (--reference)"
    assert again["speed_ratio"] == pytest.approx(4 * entry["sec_per_step"] / again["sec_per_step"], rel=1e-2)
    cells = load_suite(str(suite), speed_ratio=calibration_ratios(path, None)).cells
    assert cells[0].spec.speed_ratio == again["speed_ratio"]
    assert cells[0].spec.budget_seconds == pytest.approx(3600 / again["speed_ratio"])


def test_calibration_without_ratio_is_refused(tmp_path) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"entries": [{"model": "baseline", "resolution": 32, "img_s": 3.0}]}))
    with pytest.raises(BenchError, match="no speed ratios"):
        calibration_ratios(p, None)
    p.write_text("{}")
    with pytest.raises(BenchError, match="not a calibration file"):
        read_calibration(p)


def test_calibration_table_prints_the_checks() -> None:
    from bench.tools.calibrate import calibration_table

    entry = {"model": "baseline", "resolution": 32, "precision": "fp32", "batch": 4, "sec_per_step": 0.5}
    check = {"what": "StyleGAN2-ADA, 256 px", "device": "v100", "use": "check", "stated": [21.6, 24.2],
             "unit": "s/kimg", "predicted": 30.0, "predicted_over_stated": 1.31}  # fmt: skip
    doc = {"device_description": "cpu", "local_profile": None, "reference_profile": None, "entries": [entry]}
    assert "stated throughputs" not in calibration_table(doc | {"checks": []})
    text = calibration_table(doc | {"checks": [check]})
    assert "| StyleGAN2-ADA, 256 px | v100" in text and "21.6-24.2" in text and "30 s/kimg" in text and "1.31" in text
