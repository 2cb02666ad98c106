"""calibrate: throughput per model, speed ratios against a reference file, budgets re-cut by them."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from bench.errors import BenchError
from bench.plan.suites import load_suite


def test_calibrate_then_run_with_ratios(tiny_suite, tmp_path) -> None:
    suite = tiny_suite(text=tiny_suite().read_text().replace("max_iters = 6", "hours = 1.0"))
    out = tmp_path / "results"
    res = run_cli("calibrate", "--suite", str(suite), "--out", str(out), "--steps", "2", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    path = next((out / "calibration").glob("*.json"))
    doc = json.loads(path.read_text())
    (entry,) = doc["entries"]
    assert entry["model"] == "baseline" and entry["img_s"] > 0 and entry["batch"] == 4
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"entries": [dict(entry, img_s=entry["img_s"] / 4)]}))  # a device 4x slower
    res = run_cli("calibrate", "--suite", str(suite), "--out", str(out), "--steps", "1", "--reference", str(ref))
    assert res.returncode == 0, res.stderr
    ratio = json.loads(path.read_text())["entries"][0]["speed_ratio"]
    assert ratio > 0
    from bench.tools.calibrate import speed_ratios

    cells = load_suite(str(suite), speed_ratio=speed_ratios(path)).cells
    assert cells[0].spec.speed_ratio == pytest.approx(ratio)
    assert cells[0].spec.budget_seconds == pytest.approx(3600 / ratio)
    dry = run_cli("--suite", str(suite), "--out", str(out), "--calibration", str(path), "--dry-run")
    assert dry.returncode == 0 and f"local {3600 / ratio:.0f} s" in dry.stdout


def test_calibration_without_ratio_is_refused(tmp_path) -> None:
    from bench.tools.calibrate import read_calibration, speed_ratios

    p = tmp_path / "c.json"
    p.write_text(json.dumps({"entries": [{"model": "baseline", "resolution": 32, "img_s": 3.0}]}))
    with pytest.raises(BenchError, match="no speed ratios"):
        speed_ratios(p)
    p.write_text("{}")
    with pytest.raises(BenchError, match="not a calibration file"):
        read_calibration(p)
