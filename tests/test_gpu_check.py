"""``gpu-check`` (``scripts/gpu-check.sh``): end to end on the CPU at tiny sizes, as CI runs it, and
its bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from bench.errors import BenchError
from bench.launchers.pool import parse_devices, worker_device
from bench.plan.specs import RunSpec
from bench.results.runs import RunPaths, append_eval_row
from bench.tools.gpucheck.run import verdict
from bench.tools.gpucheck.settings import GpuCheckSettings, mode_flags
from bench.tools.gpucheck.suite_check import run_scores
from bench.tools.gpucheck.summary import render

SECTIONS = {"environment", "graphs", "host-data", "suite", "perf fp32", "perf fp32+fused+graphs", "pool", "memory"}


@pytest.mark.slow
def test_gpu_check_script_runs_every_section_on_the_cpu(tmp_path: Path) -> None:
    env = os.environ | {"PYTHON": sys.executable, "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = ["bash", str(ROOT / "scripts" / "gpu-check.sh"), "cpu", "--out", str(tmp_path), "--budget-s", "1500"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    (path,) = tmp_path.glob("gpu-check-cpu-*.json")
    doc, md = json.loads(path.read_text()), path.with_suffix(".md").read_text()
    sec = doc["sections"]
    assert doc["verdict"] == "passed" and set(sec) == SECTIONS
    assert {n: s["status"] for n, s in sec.items()} == dict.fromkeys(SECTIONS, "ok")
    cells = sec["suite"]["cells"]
    assert [c["model"] for c in cells] == ["fastgan", "stylegan2-lite", "biggan"]
    assert all(c["resumed_from"] and c["equal"] and c["scores_equal"] and c["scores"] for c in cells)
    assert "effnet-lite0" in sec["suite"]["report"]["markdown"]
    fp32 = sec["perf fp32"]["rows"]
    assert [r["model"].split(":")[0] for r in fp32] == ["fastgan", "stylegan2-lite", "biggan"]
    assert all(r["loop_s"] > 0 and 0 < r["busy"] <= 1.05 and r["eval"]["pipeline_ips"] > 0 for r in fp32)
    assert [r["model"].split(":")[0] for r in sec["perf fp32+fused+graphs"]["rows"]] == ["fastgan"]
    assert sec["graphs"]["runs"]["graph"]["captured"] and sec["graphs"]["bitwise_equal_to_twin"]
    assert sec["host-data"]["placement"]["host"] == "cpu" and sec["pool"]["worker_device"] == "cpu"
    assert len(sec["memory"]["rows"]) == 3 * 2 and all(r["bytes"] > 0 for r in sec["memory"]["rows"])
    for heading in ("Suite: train, evaluate", "Training step per mode", "Evaluation throughput", "Peak memory"):
        assert heading in md


def test_bad_gpu_check_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for flags, words in ((["--modes", "fp16"], "--modes fp16"), (["--sections", "suite,gpus"], "--sections gpus")):
        res = run_cli("gpu-check", "--device", "cpu", "--out", str(tmp_path), *flags, timeout=120)
        assert res.returncode == 2 and res.stderr.startswith(f"error: {words}") and res.stderr.count("\n") == 1
    assert not list(tmp_path.iterdir())  # nothing written


def test_script_reads_flags_first_as_flags(tmp_path: Path) -> None:
    """``gpu-check.sh --out DIR ...``: --out is the output folder (a file there is refused), not the device."""
    taken = tmp_path / "taken"
    taken.write_text("a file")
    env = os.environ | {"PYTHON": sys.executable}
    cmd = ["bash", str(ROOT / "scripts" / "gpu-check.sh"), "--out", str(taken), "--device", "cpu"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert res.returncode == 2 and res.stderr.startswith(f"error: --out {taken}: is a file, not a folder"), res.stderr


def test_modes_devices_and_verdict() -> None:
    assert mode_flags("bf16+fused+graphs") == ["--precision", "bf16", "--fused-adam", "--cuda-graphs"]
    assert mode_flags("fp32+cl+compile") == ["--precision", "fp32", "--channels-last", "--compile"]
    with pytest.raises(BenchError):
        GpuCheckSettings(modes=("bf16+fast",))
    assert parse_devices("cpu") == ("cpu",) and [worker_device(d) for d in parse_devices("0,cpu")] == ["cuda:0", "cpu"]
    for text in ("gpu0", "", "cpu,,cpu", "0,"):
        with pytest.raises(BenchError, match="or cpu"):
            parse_devices(text)
    ok, cut, bad = {"status": "ok"}, {"status": "timed out"}, {"status": "failed"}
    assert verdict({"a": ok, "b": ok}) == "passed"
    assert verdict({"a": ok, "b": cut}) == "passed (not run to the end: b)"
    assert verdict({"a": bad, "b": cut}) == "FAILED: a"


def test_summary_draws_what_it_has() -> None:
    """A failed or cut-short section never stops the summary: what is missing is said, the rest drawn."""
    doc = {
        "device": "cpu", "device_name": "cpu", "date": "d", "elapsed_s": 3.0, "verdict": "FAILED: graphs",
        "settings": {"budget_s": 60.0}, "plan": {"scale": "tiny", "resolution": 32},
        "sections": {
            "environment": {"status": "ok", "torch": "2", "checks": {"m": True},
                            "peak_matmul": {"fp32": {"flops": 1e11, "math": "fp32", "best": "mm"}}},
            "graphs": {"status": "failed", "checks": {"captured": False}},
            "suite": {"status": "failed", "error": "uninterrupted suite exited 1", "log": "Traceback ..."},
            "perf bf16": {"status": "timed out", "rows": [{"mode": "bf16", "model": "biggan", "error": "killed"}]},
            "memory": {"status": "skipped", "reason": "2 s of the budget left"},
        },
    }  # fmt: skip
    text = render(doc)
    assert "**FAILED: graphs**" in text and "captured: NO" in text and "0.1 TFLOP/s (fp32, mm)" in text
    assert "(_graphs: not drawn, KeyError" in text and "### suite: uninterrupted suite exited 1" in text
    assert "| biggan | bf16 |" in text and "2 s of the budget left" in text


def test_the_resume_check_compares_scores_of_one_protocol_and_snapshot(tmp_path: Path) -> None:
    """The interrupted and uninterrupted runs' scores are keyed on the whole protocol and the snapshot: a
    snapshot re-scored with another detector's weights, or the step-0 score, is another score, never one
    overwriting the other under its metric's name."""
    spec = RunSpec(suite="g", model="fastgan", dataset="shapes", resolution=32)
    paths = RunPaths.of(tmp_path, spec)
    base = {"metric": "fid50_full_clean", "kind": "fid", "detector": "effnet-lite0", "detector_sha256": "a" * 64,
            "mode": "clean", "num_gen": 50, "step": 40, "snapshot": "snapshots/snap-00000040.pt"}  # fmt: skip
    rows = [base | {"value": 300.0, "step": 0, "snapshot": "snapshots/snap-00000000.pt"}, base | {"value": 90.0},
            base | {"value": 95.0, "detector_sha256": "b" * 64}]  # fmt: skip
    for row in rows:
        append_eval_row(paths, row)
    scores = run_scores(paths)
    assert sorted(scores.values()) == [90.0, 95.0, 300.0] and len(set(scores)) == 3
    assert all(k.startswith("fid50_full_clean effnet-lite0-") for k in scores)
    assert sum(k.endswith(" snapshots/snap-00000040.pt") for k in scores) == 2
