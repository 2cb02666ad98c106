"""End-to-end tests of the real CLI (subprocesses), on tiny suites."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, run_cli

EVAL_SUITE = """
[suite]
name = "e2e"
resolution = 32
datasets = ["folder:{folder}"]

[budget]
max_iters = 4

[eval]
protocols = ["fid200_full_clean", "kid200_full_clean"]
detector = "effnet-lite0"
fractions = [1.0]
grid_size = 4

[models.baseline]
kwargs = {{ recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }}

[models.fastgan]
kwargs = {{ recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }}
"""


def _files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def _image_folder(path, n: int = 24):
    import numpy as np
    from PIL import Image

    path.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path / f"{i:02d}.png")
    return path


def test_run_twice_then_status_eval_and_report(tiny_suite, tmp_path) -> None:
    suite = tiny_suite("e2e", text=EVAL_SUITE.format(folder=_image_folder(tmp_path / "imgs")))
    out = tmp_path / "results"
    first = run_cli("--suite", str(suite), "--out", str(out), "--no-progress")
    assert first.returncode == 0, first.stderr
    assert "best fid200_full_clean within budget" in first.stdout
    assert "| baseline" in first.stdout and "| fastgan" in first.stdout
    assert "non-standard detector" in first.stdout
    evals = [ln for ln in first.stdout.splitlines() if ": evaluation at step 4 (100% of budget): " in ln]
    assert len(evals) == 2 and all(
        re.search(r"fid200_full_clean† [\d.]+, kid200_full_clean† .+ \([\d.]+ s\)$", ln) for ln in evals
    )
    runs = sorted((out / "runs" / "e2e").iterdir())
    assert len(runs) == 2
    for run in runs:
        assert json.loads((run / "state.json").read_text())["status"] == "done"
        assert (run / "samples" / "grid-00000004.png").exists()
        rows = [json.loads(x) for x in (run / "evals.jsonl").read_text().splitlines()]
        assert [(r["metric"], r["eval_point"], r["step"]) for r in rows] == [
            ("fid200_full_clean", 0.0, 0),  # the untrained generator: the step-0 check's baseline
            ("kid200_full_clean", 0.0, 0),
            ("fid200_full_clean", 1.0, 4),
            ("kid200_full_clean", 1.0, 4),
        ]
        fid, kid = rows[2:]
        assert fid["detector"] == "effnet-lite0" and fid["detector_standard"] is False
        assert fid["value"] > 0 and kid["std"] is not None and fid["ref_count"] == 24
        for key in ("mode", "num_gen", "weights", "bn_mode", "detector_sha256", "snapshot", "grid", "kimg"):
            assert key in fid, key
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "lock"}
    second = run_cli("--suite", str(suite), "--out", str(out), "--no-progress")
    assert second.returncode == 0, second.stderr
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "lock"}
    assert before == after, "a second run trains, evaluates and writes nothing"
    assert "2 done" in second.stdout

    status = run_cli("status", "--suite", str(suite), "--out", str(out))
    assert status.returncode == 0 and status.stdout.count("| done") == 2

    rescored = run_cli("eval", "--run", str(runs[0]), "--checkpoint", "latest", "--protocol", "fid200_full_clean",
                       "--out", str(out))  # fmt: skip
    assert rescored.returncode == 0, rescored.stderr
    assert "snap-00000004.pt  fid200_full_clean" in rescored.stdout
    rows = [json.loads(x) for x in (runs[0] / "evals.jsonl").read_text().splitlines()]
    again = [r for r in rows if r.get("rescored")]
    orig = [r for r in rows if not r.get("rescored") and r["metric"] == "fid200_full_clean" and r["step"] == 4]
    assert len(again) == 1 and again[0]["value"] == orig[0]["value"]  # same snapshot, same protocol


def test_dry_run_prints_plan_and_writes_nothing(tiny_suite, tmp_path) -> None:
    out = tmp_path / "results"
    res = run_cli("--suite", str(tiny_suite()), "--out", str(out), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "baseline-shapes-32-s0-" in res.stdout and "todo" in res.stdout and "6 it" in res.stdout
    assert not out.exists()


def test_bad_inputs_exit_2_with_one_line(tiny_suite, tmp_path) -> None:
    out = tmp_path / "results"
    cases = {
        "unknown suite": (["--suite", "smok"], "unknown suite 'smok'"),
        "unknown model filter": (["--suite", str(tiny_suite()), "--models", "fastgn"], "--models: fastgn"),
        "missing folder": (["--suite", str(_folder_suite(tiny_suite, tmp_path / "nope"))], "nope"),
    }
    bad_img = tmp_path / "imgs"
    bad_img.mkdir()
    (bad_img / "broken.png").write_bytes(b"\x89PNG not really")
    cases["bad image file"] = (["--suite", str(_folder_suite(tiny_suite, bad_img, "b"))], "broken.png")
    for what, (args, needle) in cases.items():
        res = run_cli(*args, "--out", str(out), "--no-progress")
        assert res.returncode == 2, (what, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (what, res.stderr)
        assert not (out / "runs").exists(), what


def _folder_suite(tiny_suite, folder, name: str = "f"):
    text = tiny_suite(name).read_text().replace('"shapes"', json.dumps(f"folder:{folder}"))
    return tiny_suite(name, text=text)


def test_unwritable_out(tiny_suite, tmp_path) -> None:
    if os.geteuid() == 0:
        ro = "/proc/fewshot-results"  # root ignores permission bits; /proc is never writable
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        ro = str(tmp_path / "ro" / "results")
    res = run_cli("--suite", str(tiny_suite()), "--out", ro, "--no-progress")
    assert res.returncode == 2 and "not writable" in res.stderr


def test_offline_standard_detector_stops_before_training(tiny_suite, tmp_path, monkeypatch) -> None:
    text = tiny_suite().read_text().replace("protocols = []", 'protocols = ["fid200_full_clean"]')
    suite = tiny_suite("v3", text=text.replace('"inception-random"', '"inception-v3"'))
    out = tmp_path / "results"
    res = run_cli("--suite", str(suite), "--out", str(out), "--no-progress")
    assert res.returncode == 2, res.stderr
    assert "inception-2015-12-05.pt" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (out / "runs").exists()


def test_progress_bar_ends_at_100_percent_with_steps_rate_and_losses(tiny_suite, tmp_path) -> None:
    res = run_cli("--suite", str(tiny_suite(iters=12)), "--out", str(tmp_path / "results"))
    assert res.returncode == 0, res.stderr
    last = re.split(r"[\r\n]+", res.stderr.strip())[-1]
    assert re.match(r"baseline shapes 32px s0 100%\|\S+\| step 12/12, [\d.]+ it/s, d_real [\d.]+, d_fake ", last), last
    assert "baseline shapes 32px s0: done at step 12 after " in res.stdout


def test_every_command_caps_torch_threads_at_the_usable_cpus(tiny_suite) -> None:
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs and an affinity API to restrict the process to one")
    code = (
        "import os, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); from bench.cli import main; "
        f"main(['--suite', {str(tiny_suite())!r}, '--dry-run']); import torch; "
        "print('THREADS', torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'], os.environ['OPENBLAS_NUM_THREADS'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS")}
    env |= {"OMP_NUM_THREADS": "8"}
    for extra, policy in (({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE")):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                             env=env | extra | {"PYTHONPATH": str(ROOT)}, timeout=300)  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert res.stdout.splitlines()[-1] == f"THREADS 1 {policy} 1"  # a user's policy is kept


def test_eval_and_report_show_progress_bars_that_end_at_100_percent(tiny_suite, tmp_path, monkeypatch, capsys) -> None:
    import bench.report.figures as figures
    import bench.tools.rescore as rescore
    from bench.cli import main

    monkeypatch.setattr(rescore, "PROGRESS_DELAY_S", 0.0)  # the bars appear after 3 s; these commands are quicker
    monkeypatch.setattr(figures, "PROGRESS_DELAY_S", 0.0)
    suite, out = tiny_suite(iters=2), tmp_path / "results"
    assert main(["--suite", str(suite), "--out", str(out), "--no-progress"]) == 0
    (run,) = (out / "runs" / "tiny").iterdir()
    capsys.readouterr()
    args = [
        "--run",
        str(run),
        "--checkpoint",
        "latest",
        "--protocol",
        "fid200_full_clean",
        "--detector",
        "effnet-lite0",
    ]
    assert main(["eval", *args, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"eval baseline-shapes-32-s0-\w+: 100%\|.*\| 200/200 ", err), err
    assert main(["report", "--suite", str(suite), "--out", str(out)]) == 0
    assert re.search(r"report tiny: figures: 100%\|.*\| 3/3 ", capsys.readouterr().err)


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    """`fewshot-gan-bench list protocols | head -1`: the pipe closes before the output is written."""
    proc = subprocess.Popen([sys.executable, "run_bench.py", "list", "protocols"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # head has read its line and gone
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and err == "", err


def test_exit_process_flushes_its_output_and_keeps_the_code() -> None:
    """The CLI ends with os._exit (no interpreter teardown): buffered stdout, stderr and logging still arrive."""
    code = (
        "import logging, sys; from bench.cli import exit_process\n"
        "logging.basicConfig(stream=sys.stderr); logging.getLogger('t').warning('logged')\n"
        "sys.stdout.write('x' * 100); sys.stderr.write('e'); exit_process(3)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (3, "x" * 100) and proc.stderr.endswith("e"), proc
    assert "logged" in proc.stderr


def test_exit_process_reports_output_it_could_not_deliver() -> None:
    """A success whose output cannot be flushed (the reader left) exits 120, as the interpreter's exit does."""
    code = "import sys; from bench.cli import exit_process\nsys.stdout.write('x' * 100); exit_process(0)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # the write stays in the buffer
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()
    assert proc.wait(timeout=120) == 120
