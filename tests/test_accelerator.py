"""The accelerator a suite's budgets assume, without a cluster: the suite key, the default SLURM GPU
request and its overrides, the refusal of a GPU cell without a GPU, the device recorded in
spec.json / state.json / status, the report's flag for mixed devices, and ``--devices`` on a
finished suite."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from submitit.slurm.slurm import _make_sbatch_string
from test_report import evals, make_suite, spec_of

import bench.report.render as report_render
import bench.report.tables as report_tables
from bench.cli import main
from bench.errors import BenchError
from bench.launchers.settings import sbatch_parameters
from bench.plan.launching import LaunchSettings
from bench.plan.suites import load_suite
from bench.report.console import plan_table
from bench.results.collect import collect
from bench.results.envinfo import cpu_model, device_summary, device_type, matched_profile
from bench.results.io import atomic_write_json
from bench.results.lock import RunLock
from bench.results.runs import RunPaths, read_state, write_state
from bench.training.cell import run_cell
from bench.training.options import LoopOptions

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA devices")
H200 = {"type": "cuda", "index": 0, "name": "NVIDIA H200", "count": 8, "driver": "580.159.03", "cuda": "13.0"}


def _gpu_suite(tiny_suite, name: str = "gpu", extra: str = "") -> Path:
    """The tiny suite (2 iterations) with ``budget.accelerator = "gpu"``."""
    text = tiny_suite(name, iters=2).read_text().replace("max_iters = 2", 'max_iters = 2\naccelerator = "gpu"')
    return tiny_suite(name, text=text + extra)


def test_paper_suites_assume_one_gpu_and_smoke_none() -> None:
    for name in ("fewshot256", "fewshot256-kimg", "fewshot1024", "large", "ablation-ss"):
        assert {(c.spec.accelerator, c.spec.num_gpus) for c in load_suite(name).cells} == {("gpu", 1)}, name
    assert {c.spec.accelerator for c in load_suite("smoke").cells} == {"none"}


def test_accelerator_does_not_change_run_ids(tiny_suite) -> None:
    plain = load_suite(str(tiny_suite("same", iters=2))).cells[0].spec
    gpu = load_suite(str(_gpu_suite(tiny_suite, "same"))).cells[0].spec
    assert gpu.accelerator == "gpu" and plain.accelerator == "none"
    assert gpu.run_id == plain.run_id  # where a run is meant to run is not what it computes


def test_gpu_request_defaults_and_overrides(tmp_path) -> None:
    assert LaunchSettings().requesting(1).gpus_per_node == 1
    assert LaunchSettings().requesting(0).gpus_per_node is None  # the suite assumes no GPU
    assert LaunchSettings(gpus_per_node=0).requesting(1).gpus_per_node == 0  # explicit: none
    assert LaunchSettings(gres="gpu:a100:1").requesting(1).gpus_per_node is None
    merged = LaunchSettings.merged({"gres": "gpu:a100:1", "cpus_per_task": 2}, gpus_per_node=0)
    assert (merged.gres, merged.gpus_per_node, merged.cpus_per_task) == (None, 0, 2)  # a flag replaces the block's
    with pytest.raises(BenchError, match="pass one GPU request"):
        LaunchSettings.merged({}, gpus_per_node=1, gres="gpu:1")
    assert "gpus_per_node" not in sbatch_parameters(LaunchSettings(gpus_per_node=0), 5, "x")
    script = _make_sbatch_string(
        command="true", folder=tmp_path, **sbatch_parameters(LaunchSettings(gres="gpu:2"), 5, "x")
    )
    assert "#SBATCH --gres=gpu:2" in script.splitlines() and "gpus-per-node" not in script


def _dry_run(capsys, suite: Path, out: Path, *flags: str) -> str:
    assert main(["run", "--suite", str(suite), "--out", str(out), "--launcher", "slurm", "--dry-run", *flags]) == 0
    return capsys.readouterr().out


def test_dry_run_shows_the_gpu_request(tiny_suite, tmp_path, capsys) -> None:
    suite = _gpu_suite(tiny_suite)
    out = _dry_run(capsys, suite, tmp_path)
    assert "accelerator: 1 GPU(s) per cell assumed (budget.accelerator = 'gpu'); requested: --gpus-per-node=1" in out
    assert "sbatch options: --gpus-per-node=1 " in out
    out = _dry_run(capsys, suite, tmp_path, "--gres", "gpu:a100:1")
    assert "requested: --gres=gpu:a100:1" in out and "sbatch options: --gres=gpu:a100:1 " in out
    assert "gpus-per-node" not in out
    out = _dry_run(capsys, suite, tmp_path, "--gpus-per-node", "0")
    assert "requested: no GPU; warning: such tasks refuse to train unless run with --device cpu" in out
    assert "--gpus-per-node" not in out.split("sbatch options:")[1]
    site = _gpu_suite(tiny_suite, "site", extra='\n[slurm]\ngres = "gpu:v100:1"\n')  # the site's form, in the suite
    assert "sbatch options: --gres=gpu:v100:1 " in _dry_run(capsys, site, tmp_path)
    out = _dry_run(capsys, tiny_suite("cpu", iters=2), tmp_path)
    assert "accelerator: none assumed" in out and "gpu" not in out.split("sbatch options:")[1]
    assert not (tmp_path / "runs").exists()


@NO_CUDA
def test_gpu_cell_without_a_gpu_stops_before_training(tiny_suite, tmp_path, capsys) -> None:
    suite = _gpu_suite(tiny_suite)
    spec = load_suite(str(suite)).cells[0].spec
    paths = RunPaths.of(tmp_path / "task", spec)
    with pytest.raises(BenchError):  # what an array task does: run_cell with --device auto
        run_cell(spec, LoopOptions(out=tmp_path / "task", progress=False))
    state = read_state(paths)
    assert state["status"] == "failed" and "\n" not in state["error"]
    for part in ("suite gpu assumes 1 GPU per cell (budget.accelerator = 'gpu')", "found no CUDA device on ",
                 "pass --device cpu"):  # fmt: skip
        assert part in state["error"], state["error"]
    assert not paths.spec.exists() and not paths.checkpoints.exists()  # stopped before training
    out = tmp_path / "local"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "assumes 1 GPU per cell" in err[0] and not out.exists()  # refused before anything


def test_explicit_cpu_trains_and_records_the_device(tiny_suite, tmp_path, capsys) -> None:
    suite = _gpu_suite(tiny_suite)
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path), "--no-progress", "--device", "cpu"]) == 0
    paths = RunPaths.of(tmp_path, load_suite(str(suite)).cells[0].spec)
    doc = json.loads(paths.spec.read_text())
    info = doc["environment"]["device_info"]
    assert doc["spec"]["accelerator"] == "gpu"
    here = matched_profile(torch.device("cpu"))
    profile = here.name if here else None  # the device profile this CPU's SKU matched
    assert info == {
        "type": "cpu",
        "name": cpu_model(),
        "count": 1,
        "threads": torch.get_num_threads(),
        "profile": profile,
    }
    assert read_state(paths)["device"] == info


def test_device_summary_and_type() -> None:
    assert device_summary(H200) == "cuda:0 NVIDIA H200 (1 of 8; driver 580.159.03, CUDA 13.0)"
    assert device_summary({"type": "cpu", "name": "AMD EPYC", "count": 1, "threads": 2}) == "cpu AMD EPYC (2 threads)"
    assert device_summary(H200 | {"driver": None}).endswith("(1 of 8; driver ?, CUDA 13.0)")
    assert device_type({"device_info": H200}) == "NVIDIA H200"
    assert device_type({"device_info": {"type": "cpu", "name": "AMD EPYC"}}) == "cpu"
    assert device_type({"device": "cuda:1", "device_name": "NVIDIA A100"}) == "NVIDIA A100"  # spec files before
    assert device_type({"device": "cpu", "device_name": "cpu:x86_64 x2 threads"}) == "cpu"


def test_status_shows_the_device_of_running_cells(tiny_suite, tmp_path, capsys) -> None:
    path = tiny_suite("st", iters=2)
    suite = load_suite(str(path))
    paths = RunPaths.of(tmp_path, suite.cells[0].spec)
    write_state(paths, status="running", step=1, device=H200)
    assert "| device" not in plan_table(suite, suite.cells, tmp_path)  # not running: the lock is free
    with RunLock(paths.root):
        assert main(["status", "--suite", str(path), "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "| device" in table and "cuda:0 NVIDIA H200 (1 of 8; driver 580.159.03, CUDA 13.0)" in table


def _mixed_devices(devices: dict[tuple[str, str], str]) -> report_tables.ReportTable:
    rows = [("", "Baseline", "baseline", 5.0, (0,)), ("", "FastGAN", "fastgan", 5.0, (0,))]
    suite = make_suite(rows, datasets=("obama", "panda"), paper_table=None)
    frames = []
    for (model, dataset), device in devices.items():
        frames.append(pd.DataFrame(evals(spec_of(suite, model, dataset), [50.0])).assign(device=device))
    return report_tables.build_table(suite, pd.concat(frames, ignore_index=True))


def test_report_flags_cells_trained_on_different_device_types() -> None:
    cells = [("baseline", "obama"), ("baseline", "panda"), ("fastgan", "obama"), ("fastgan", "panda")]
    same = _mixed_devices(dict.fromkeys(cells, "NVIDIA H200"))
    assert same.device_mix == {} and "device" not in report_render.render_markdown(same)
    mixed = _mixed_devices(dict.fromkeys(cells, "NVIDIA H200") | {("fastgan", "panda"): "cpu"})
    md = report_render.render_markdown(mixed)
    assert "**Cells trained on different device types:** NVIDIA H200 (3 cells); cpu: FastGAN / panda." in md
    assert "Cells trained on different device types:" in report_render.render_latex(mixed)
    csv = pd.read_csv(io.StringIO(report_render.table_csv(mixed)))
    assert csv.set_index(["label", "dataset"]).loc[("FastGAN", "panda"), "device"] == "cpu"


def test_collect_names_every_device_a_run_trained_on(tmp_path) -> None:
    suite = make_suite([("", "FastGAN", "fastgan", 5.0, (0,))], datasets=("obama",), paper_table=None)
    spec = spec_of(suite, "fastgan", "obama")
    paths = RunPaths.of(tmp_path, spec)
    cpu = {"type": "cpu", "name": "AMD EPYC", "count": 1, "threads": 2}
    atomic_write_json(paths.spec, {"spec": spec.to_dict(), "environment": {"device": "cpu", "device_info": cpu}})
    write_state(paths, status="done", device=H200)  # resumed on a GPU
    (paths.root / "evals.jsonl").write_text(json.dumps(evals(spec, [50.0])[0]) + "\n")
    assert collect(tmp_path)["device"].tolist() == ["cpu + NVIDIA H200"]


def test_devices_on_a_finished_suite_exits_0_with_the_table(tiny_suite, tmp_path, capsys) -> None:
    path = tiny_suite("pool", iters=2)
    argv = ["run", "--suite", str(path), "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--devices", "0,1"]) == 0  # no worker starts, CUDA or not
    out = capsys.readouterr().out
    assert "| done " in out and "cells: 1 done" in out


@NO_CUDA
def test_devices_without_cuda_is_one_error_before_anything(tiny_suite, tmp_path, capsys) -> None:
    out = tmp_path / "results"
    assert main(["run", "--suite", str(tiny_suite("pool", iters=2)), "--out", str(out), "--devices", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --devices 0: found no CUDA device on ") and not out.exists()
