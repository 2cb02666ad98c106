"""Against a real SLURM cluster (``bash scripts/slurm-local.sh up``): array completion, requeue after
preemption, errors in ``status``, cancel, re-submission that submits nothing, and a GPU suite: its
sbatch request, and its cells refusing to train on this CPU-only node."""

from __future__ import annotations

import math
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import bench.launchers.jobs as launchers_jobs
from bench.cli import main
from bench.plan.suites import load_suite
from bench.results.io import read_jsonl
from bench.results.runs import RunPaths, read_state

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        shutil.which("sbatch") is None,
        reason="sbatch not found: no SLURM on this machine (start a test cluster: bash scripts/slurm-local.sh up)",
    ),
]

SUITE = """
[suite]
name = "{name}"
resolution = 32
datasets = ["shapes"]
seeds = {seeds}

[budget]
{budget}

[eval]
protocols = []
detector = "inception-random"
fractions = {fractions}
grid_size = 4

[models.baseline]
kwargs = {{ recon = "mse", ngf = 4, ndf = 4, batch_size = 4{extra} }}
"""
TIMEOUT_S = 600  # generous: job start-up (python + torch import) is slow on a busy 2-core machine


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    """Skip with the reason when SLURM is installed but no controller answers."""
    if subprocess.run(["scontrol", "ping"], capture_output=True, text=True).returncode != 0:
        pytest.skip("SLURM is installed but no controller answers (bash scripts/slurm-local.sh up)")


def _suite(tmp_path: Path, name: str, seeds=(0,), budget="max_iters = 4", fractions=(1.0,), extra="") -> Path:
    """A tiny suite; ``budget`` holds the [budget] lines (e.g. ``accelerator = "gpu"``)."""
    path = tmp_path / f"{name}.toml"
    text = SUITE.format(name=name, seeds=list(seeds), budget=budget, fractions=list(fractions), extra=extra)
    path.write_text(text)
    return path


def _run(suite: Path, out: Path, *flags: str) -> int:
    return main(
        ["run", "--suite", str(suite), "--out", str(out), "--launcher", "slurm", "--cpus-per-task", "1", *flags]
    )


def _wait(pred: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> float:
    """Poll ``pred`` every 0.5 s; returns the seconds waited."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)
    return time.monotonic() - t0


def _job_states(suite: Path, out: Path) -> dict[str, tuple[str, str, str]]:
    """run_id → (cell status, latest job id, its SLURM state)."""
    cells = {c.spec.run_id: c for c in load_suite(str(suite)).cells}
    return {
        run_id: (read_state(RunPaths.of(out, cells[run_id].spec))["status"], rec.job_id, state)
        for run_id, (rec, state) in launchers_jobs.reconcile(out, list(cells.values())).items()
    }


def _all(suite: Path, out: Path, status: str, job_state: str) -> Callable[[], bool]:
    def pred() -> bool:
        states = _job_states(suite, out)
        return bool(states) and all(s == status and js == job_state for s, _, js in states.values())

    return pred


def test_array_completes_and_resubmission_submits_nothing(tmp_path, capsys) -> None:
    suite, out = _suite(tmp_path, "arr", seeds=(0, 1)), tmp_path / "out"
    assert _run(suite, out) == 0
    printed = capsys.readouterr().out
    assert "2 of 2 cells to submit" in printed and printed.count("submitted as job") == 2
    states = _job_states(suite, out)
    arrays = {job.split("_")[0] for _, job, _ in states.values()}
    assert len(arrays) == 1 and all("_" in job for _, job, _ in states.values())  # one array, one task per cell
    took = _wait(_all(suite, out, "done", "COMPLETED"), "both array tasks to complete")
    print(f"array of 2 completed {took:.1f} s after submission")
    for cell in load_suite(str(suite)).cells:
        paths = RunPaths.of(out, cell.spec)
        assert read_state(paths)["step"] == 4
        logs = sorted((paths.root / "jobs" / "logs").iterdir())
        assert [p.suffix for p in logs] == [".err", ".out"] and all(p.resolve().is_file() for p in logs)
        assert "completed successfully" in "".join(p.read_text() for p in logs)
    assert _run(suite, out) == 0  # re-submission of a finished suite
    printed = capsys.readouterr().out
    assert "0 of 2 cells to submit" in printed and "submitted" not in printed
    assert printed.count("skipped (done)") == 2
    for cell in load_suite(str(suite)).cells:
        assert len(list(read_jsonl(RunPaths.of(out, cell.spec).root / "jobs" / "jobs.jsonl"))) == 1
    assert main(["status", "--suite", str(suite), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("COMPLETED") == 2 and all(job in printed for _, job, _ in states.values())


def _seconds_per_iteration() -> float:
    """This machine's time for one training step of the test model (1 thread, as in the jobs)."""
    import models

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = models.get_model("baseline", resolution=32, recon="mse", ngf=4, ndf=4, batch_size=4)
        x = torch.rand(4, 3, 32, 32) * 2 - 1
        times = []
        for i in range(5):
            t0 = time.perf_counter()
            model.train_step(x, i)
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times[1:])


def _eval_points(paths: RunPaths) -> list[float]:
    return [e["point"] for e in read_jsonl(paths.events) if e["event"] == "evaluated"]


def test_interrupted_task_requeues_and_matches_uninterrupted_run(tmp_path, capsys) -> None:
    iters = min(400, max(16, math.ceil(20 / _seconds_per_iteration())))  # ~20 s of training
    suite = _suite(tmp_path, "pre", budget=f"max_iters = {iters}", fractions=(0.25, 1.0))
    out_a, out_b = tmp_path / "uninterrupted", tmp_path / "interrupted"
    assert _run(suite, out_a) == 0 and _run(suite, out_b) == 0
    capsys.readouterr()
    spec = load_suite(str(suite)).cells[0].spec
    pa, pb = RunPaths.of(out_a, spec), RunPaths.of(out_b, spec)
    job_id = launchers_jobs.latest_job(pb).job_id
    _wait(lambda: _eval_points(pb) == [0.25], "the first evaluation")
    assert read_state(pb)["status"] == "running"
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # what SLURM sends before preemption
    t0 = time.monotonic()
    _wait(lambda: any(e["event"] == "resume" for e in read_jsonl(pb.events)), "the requeued task to resume")
    print(f"USR2 -> requeued -> resumed in {time.monotonic() - t0:.1f} s ({iters} iterations)")
    _wait(_all(suite, out_b, "done", "COMPLETED"), "the requeued task to complete")
    _wait(_all(suite, out_a, "done", "COMPLETED"), "the uninterrupted task to complete")
    resumed = [e for e in read_jsonl(pb.events) if e["event"] == "resume"]
    assert len(resumed) == 1 and iters // 4 <= resumed[0]["step"] < iters
    assert read_state(pa)["step"] == read_state(pb)["step"] == iters
    assert _eval_points(pa) == _eval_points(pb) == [0.25, 1.0]  # each evaluation exactly once
    final_a, final_b = (torch.load(sorted(p.checkpoints.glob("ckpt-*.pt"))[-1], weights_only=True) for p in (pa, pb))
    assert final_a["step"] == final_b["step"] == iters
    for k, v in final_a["model"].items():
        assert torch.equal(v, final_b["model"][k]), k
    assert [r.job_id for r in launchers_jobs.job_records(pb)] == [job_id]  # requeued in place, not re-submitted


def test_failing_task_error_reaches_status(tmp_path, capsys) -> None:
    suite, out = _suite(tmp_path, "bad"), tmp_path / "out"
    # builds on the meta device (the pre-run checks pass) but fails in the task: LPIPS needs VGG16 weights, offline
    text = suite.read_text().replace("[models.baseline]", "[models.fastgan]")
    suite.write_text(text.replace('recon = "mse"', 'recon = "lpips-vgg"'))
    assert _run(suite, out) == 0
    _wait(_all(suite, out, "failed", "FAILED"), "the task to fail")
    capsys.readouterr()
    assert main(["status", "--suite", str(suite), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "FAILED" in printed and "PerceptualWeightsMissing" in printed and "lpips-vgg" in printed
    state = read_state(RunPaths.of(out, load_suite(str(suite)).cells[0].spec))
    assert "lpips-vgg" in state["error"] and state["error_job"] in printed


def test_bad_model_kwargs_are_refused_before_submission(tmp_path, capsys) -> None:
    suite, out = _suite(tmp_path, "badkw", extra=", no_such_kwarg = 1"), tmp_path / "out"
    assert _run(suite, out) == 2
    assert "no_such_kwarg" in capsys.readouterr().err and not (out / "runs").exists()


def test_cancel_stops_the_suite_and_leaves_it_resumable(tmp_path, capsys) -> None:
    suite, out = _suite(tmp_path, "long", budget="hours = 0.1"), tmp_path / "out"  # 6 min of training
    assert _run(suite, out) == 0
    spec = load_suite(str(suite)).cells[0].spec
    paths = RunPaths.of(out, spec)
    _wait(lambda: read_state(paths)["status"] == "running", "training to start")
    capsys.readouterr()
    assert main(["status", "--suite", str(suite), "--out", str(out)]) == 0
    assert "| device" in capsys.readouterr().out and read_state(paths)["device"]["type"] == "cpu"  # the task's
    assert main(["cancel", "--suite", str(suite), "--out", str(out)]) == 0
    assert "cancelled 1 job(s)" in capsys.readouterr().out
    _wait(lambda: next(iter(_job_states(suite, out).values()))[2] == "CANCELLED", "sacct to show CANCELLED")
    _wait(lambda: read_state(paths).get("interrupted") is True, "the cancelled task to checkpoint")
    assert read_state(paths)["status"] == "todo" and list(paths.checkpoints.glob("ckpt-*.pt"))
    assert main(["status", "--suite", str(suite), "--out", str(out)]) == 0
    assert "CANCELLED" in capsys.readouterr().out
    assert _run(suite, out, "--dry-run") == 0
    assert "1 of 1 cells to submit" in capsys.readouterr().out  # resumable: submitted again on the next run


GPU_BUDGET = 'max_iters = 4\naccelerator = "gpu"'  # a GPU suite: one GPU per cell


def test_gpu_suite_requests_one_gpu_per_task(tmp_path, capsys) -> None:
    suite, out = _suite(tmp_path, "gpudry", budget=GPU_BUDGET), tmp_path / "out"
    assert _run(suite, out, "--dry-run") == 0
    printed = capsys.readouterr().out
    assert "requested: --gpus-per-node=1" in printed
    assert "sbatch options: --gpus-per-node=1 --cpus-per-task=1 " in printed
    assert _run(suite, out, "--dry-run", "--gres", "gpu:1") == 0
    assert "sbatch options: --gres=gpu:1 --cpus-per-task=1 " in capsys.readouterr().out
    assert not (out / "runs").exists()


def test_gpu_cell_on_a_cpu_only_node_refuses_to_train(tmp_path, capsys) -> None:
    suite, out = _suite(tmp_path, "gpucell", budget=GPU_BUDGET), tmp_path / "out"
    assert _run(suite, out, "--gpus-per-node", "0") == 0  # no GPU requested, so this GPU-less cluster runs it
    assert "requested: no GPU; warning:" in capsys.readouterr().out
    paths = RunPaths.of(out, load_suite(str(suite)).cells[0].spec)
    took = _wait(lambda: read_state(paths)["status"] in ("failed", "done"), "the task to end")
    print(f"GPU cell refused {took:.1f} s after submission")
    assert read_state(paths)["status"] == "failed"
    error = read_state(paths)["error"]
    assert "\n" not in error and "suite gpucell assumes 1 GPU per cell (budget.accelerator = 'gpu')" in error
    assert "found no CUDA device on " in error and "pass --device cpu" in error
    assert not paths.spec.exists() and not paths.checkpoints.exists()  # stopped before training
