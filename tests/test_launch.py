"""Launchers without a cluster: time limits, skipping, sbatch parameters, sanitization, requeue logic,
and the submitit-local executor end to end."""

from __future__ import annotations

import json
import os
import pickle
import signal
import time
from pathlib import Path

import pytest
from submitit.slurm.slurm import _make_sbatch_string

import bench.launchers.jobs as launchers_jobs
import bench.launchers.settings as launchers_settings
import bench.launchers.submit as launchers_submit
from bench.cli import build_parser, main
from bench.cli.suite_commands import _suite_flags
from bench.errors import BenchError
from bench.launchers.jobs import CellJob, JobRecord
from bench.launchers.settings import sbatch_parameters
from bench.plan import names
from bench.plan.launching import SIGNAL_DELAY_S, LaunchSettings, parse_sbatch_option
from bench.plan.specs import RunSpec
from bench.plan.suites import load_suite
from bench.report.structure import built_key
from bench.results.lock import RunLock
from bench.results.runs import RunPaths, read_state, write_state
from bench.training.options import LoopOptions

TIMED_SUITE = """
[suite]
name = "timed"
resolution = 32
datasets = ["shapes"]
seeds = [0, 1, 2]

[budget]
hours = 0.5

[eval]
protocols = []
detector = "inception-random"
fractions = [0.5, 1.0]

[models.baseline]
kwargs = { recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }

[slurm]
partition = "gpu"
cpus_per_task = 4
mem_gb = 16
time_margin_min = 5
eval_minutes = 7
extra_sbatch = ["--constraint=a100"]
"""


def _spec(**kw) -> RunSpec:
    base = {"suite": "s", "model": "baseline", "dataset": "shapes", "resolution": 32}
    return RunSpec(**(base | kw))


def test_time_limit_is_budget_plus_eval_plus_margin() -> None:
    spec = _spec(budget_hours=0.5, eval_fractions=(0.5, 1.0))  # 30 min of training
    default = LaunchSettings(launcher="slurm")
    assert launchers_settings.time_limit_min(spec, default) == 30 + 2 * launchers_settings.EVAL_MINUTES_PER_POINT + 10
    assert launchers_settings.time_limit_min(spec, LaunchSettings(eval_minutes=7, time_margin_min=5)) == 42
    assert (
        launchers_settings.time_limit_min(_spec(budget_hours=0.5, budget_scale=0.1), LaunchSettings()) == 3 + 4 * 3 + 10
    )
    assert launchers_settings.time_limit_min(spec, LaunchSettings(time_limit_min=90)) == 90
    iters_only = _spec(max_iters=10, eval_fractions=(1.0,))
    assert launchers_settings.time_limit_min(iters_only, LaunchSettings()) == 60 + 3 + 10
    tiny = _spec(budget_hours=0.0001, eval_fractions=(1.0,))
    assert launchers_settings.time_limit_min(tiny, LaunchSettings(eval_minutes=0, time_margin_min=0)) == 3


def test_settings_merge_suite_block_and_flags() -> None:
    block = {"partition": "gpu", "cpus_per_task": 4, "extra_sbatch": ["--constraint=a100"]}
    s = LaunchSettings.merged(block, launcher="slurm", partition=None, cpus_per_task=8, extra_sbatch=["--x=1"])
    assert (s.partition, s.cpus_per_task, s.extra_sbatch) == ("gpu", 8, ("--constraint=a100", "--x=1"))
    assert LaunchSettings.merged({}, extra_sbatch=None).extra_sbatch == ()


@pytest.mark.parametrize(
    "kw",
    [
        {"launcher": "pbs"},
        {"partition": "gpu\n#SBATCH --wrap=rm"},
        {"account": "a b"},
        {"qos": "x;y"},
        {"time_limit_min": 2},
        {"cpus_per_task": 0},
        {"extra_sbatch": ("--comment=a\nrm -rf /",)},
        {"extra_sbatch": ("--time=5",)},
    ],
)
def test_settings_reject_bad_values(kw) -> None:
    with pytest.raises(BenchError):
        LaunchSettings(**kw)


def test_parse_sbatch_option_forms() -> None:
    assert parse_sbatch_option("--constraint=a100") == ("constraint", "a100")
    assert parse_sbatch_option("#SBATCH --constraint=a100") == ("constraint", "a100")
    assert parse_sbatch_option("--mail-type END") == ("mail-type", "END")
    assert parse_sbatch_option("exclusive") == ("exclusive", True)
    for bad in ("-C a100", "--Bad=1", "--x=1\n--y=2", "--x=\x00", "", "--array=0-3", "--output=/tmp/x"):
        with pytest.raises(BenchError):
            parse_sbatch_option(bad)


def test_sanitize_job_name() -> None:
    assert launchers_settings.sanitize_job_name("fsgb-few shot;rm -rf /\n") == "fsgb-few_shot_rm_-rf"
    assert launchers_settings.sanitize_job_name("$(x)") == "x"
    assert len(launchers_settings.sanitize_job_name("a" * 300)) == 64


def test_sbatch_parameters_render_without_injection(tmp_path) -> None:
    s = LaunchSettings(
        launcher="slurm", partition="gpu", mem_gb=1.5, account="lab", qos="high", array_parallelism=4,
        extra_sbatch=("--comment=a b; echo pwned $(id)", "--exclusive"),
    )  # fmt: skip
    params = sbatch_parameters(s, 42, "fsgb-bad name`id`")
    assert "gpus_per_node" not in params and "cpus_per_task" not in params  # optional unless set
    assert params["mem"] == "1536M" and params["time"] == 42 and params["job_name"] == "fsgb-bad_name_id"
    script = _make_sbatch_string(command="true", folder=tmp_path, map_count=10, **params)
    lines = script.splitlines()
    assert "#SBATCH --comment='a b; echo pwned $(id)'" in lines
    assert "#SBATCH --exclusive" in lines and "#SBATCH --array=0-9%4" in lines
    assert "#SBATCH --partition=gpu" in lines and "#SBATCH --account=lab" in lines
    assert f"#SBATCH --signal=USR2@{SIGNAL_DELAY_S}" in lines
    assert not any("pwned" in x for x in lines if not x.startswith("#SBATCH"))
    assert "gpus" not in script
    assert "#SBATCH --gpus-per-node=2" in _make_sbatch_string(
        command="true", folder=tmp_path, **sbatch_parameters(LaunchSettings(gpus_per_node=2), 5, "x")
    )


def test_job_folder_paths_are_checked(tmp_path) -> None:
    assert launchers_settings._checked_path(tmp_path / "a b") == (tmp_path / "a b").resolve()
    for bad in ("x%j", "x\ny"):
        with pytest.raises(BenchError):
            launchers_settings._checked_path(tmp_path / bad)


def _cells(tiny_suite, seeds: int = 3):
    text = TIMED_SUITE.replace("[0, 1, 2]", str(list(range(seeds))))
    return load_suite(str(tiny_suite("timed", text=text))).cells


def test_plan_skips_done_running_and_queued_cells(tiny_suite, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(launchers_jobs, "slurm_states", lambda ids: {j: "PENDING" for j in ids})
    done, running, queued, failed = _cells(tiny_suite, 4)
    write_state(RunPaths.of(tmp_path, done.spec), status="done")
    write_state(RunPaths.of(tmp_path, failed.spec), status="failed", error="boom")
    queued_paths = RunPaths.of(tmp_path, queued.spec)
    queued_paths.root.mkdir(parents=True)
    launchers_jobs.record_job(queued_paths, JobRecord("slurm", "77_2", str(tmp_path / "f"), time.time()))
    settings = LaunchSettings(launcher="slurm", eval_minutes=7, time_margin_min=5)
    with RunLock(RunPaths.of(tmp_path, running.spec).root):
        plans = launchers_submit.plan_launch([done, running, queued, failed], tmp_path, settings)
    assert [p.skip for p in plans] == ["done", "running", "queued as job 77_2 (PENDING)", None]
    assert {p.time_limit_min for p in plans} == {30 + 7 + 5}
    text = launchers_submit.plan_text(plans, settings)
    assert "1 of 4 cells to submit" in text and "42 min" in text
    assert (queued_paths.root / "jobs" / "logs" / "77_2.out").is_symlink()


def test_dry_run_shows_time_limits_and_sbatch_options(tiny_suite, tmp_path, capsys) -> None:
    path = tiny_suite("timed", text=TIMED_SUITE)
    argv = ["run", "--suite", str(path), "--out", str(tmp_path), "--launcher", "slurm", "--dry-run"]
    assert main([*argv, "--cpus-per-task", "2", "--sbatch-extra=--comment=x"]) == 0
    out = capsys.readouterr().out
    assert "time limit" in out and "42 min" in out and "3 of 3 cells to submit" in out
    assert "--partition=gpu --cpus-per-task=2 --mem=16384M --constraint=a100 --comment=x" in out
    assert not (tmp_path / "runs").exists()
    assert main([*argv, "--sbatch-extra=--comment=a\nb"]) == 2
    assert "extra sbatch line" in capsys.readouterr().err


def test_budgets_converted_here_refuse_slurm_jobs_but_not_submitit_local_ones(
    tiny_suite, tmp_path, capsys, monkeypatch
) -> None:
    """SLURM jobs run on other nodes, so a conversion with this machine's profile is refused (a note in the dry
    run); submitit-local's jobs run here, so the same suite launches."""
    import bench.plan.sources as plan_sources

    monkeypatch.setattr(plan_sources, "source_kind", lambda source: "profile")  # as if converted with this device's
    path = tiny_suite("timed", text=TIMED_SUITE.replace("seeds = [0, 1, 2]", "seeds = [0]"))
    noted = {}
    for launcher in ("slurm", "submitit-local"):
        argv = ["run", "--suite", str(path), "--out", str(tmp_path), "--launcher", launcher, "--dry-run"]
        assert main(argv) == 0
        noted[launcher] = "the cells run as jobs on other nodes" in capsys.readouterr().out
    assert noted == {"slurm": True, "submitit-local": False}


def test_slurm_launcher_without_sbatch_is_a_clear_error(tiny_suite, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(launchers_jobs.shutil, "which", lambda name: None)
    cells = _cells(tiny_suite, 1)
    with pytest.raises(BenchError, match="sbatch not found"):
        launchers_submit.launch(cells, LoopOptions(out=tmp_path), LaunchSettings(launcher="slurm"))


# ----------------------------------------------------------------------------------------------
# The job's signal handling, in this process (run_cell replaced by a stub that sends the signals).


@pytest.fixture
def handlers():
    """Restore SIGUSR2/SIGTERM handlers and torch threads after the test."""
    import torch

    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR2, signal.SIGTERM)}
    threads = torch.get_num_threads()
    yield
    for s, h in saved.items():
        signal.signal(s, h)
    torch.set_num_threads(threads)


def _stub_run_cell(sigs: list[signal.Signals], seen: list[bool]):
    def run_cell(spec, opts):
        assert not opts.should_stop()
        for sig in sigs:
            os.kill(os.getpid(), sig)
        seen.append(opts.should_stop())
        return "todo" if seen[-1] else "done"

    return run_cell


def test_preemption_checkpoints_then_hands_over_to_submitit(tmp_path, monkeypatch, handlers) -> None:
    calls = []
    signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))  # stands in for submitit's
    seen: list[bool] = []
    monkeypatch.setattr(launchers_jobs, "run_cell", _stub_run_cell([signal.SIGTERM, signal.SIGUSR2], seen))
    job = CellJob(_spec(max_iters=4), LoopOptions(out=tmp_path), cpus=1)
    assert job() == "todo"
    assert seen == [True] and calls == [signal.SIGUSR2]
    assert pickle.loads(pickle.dumps(job))._signals == []  # a requeued attempt starts clean


def test_lone_sigterm_stops_without_requeue(tmp_path, monkeypatch, handlers) -> None:
    calls = []
    signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    monkeypatch.setattr(launchers_jobs, "TERM_GRACE_S", 0.2)
    monkeypatch.setattr(launchers_jobs, "run_cell", _stub_run_cell([signal.SIGTERM], []))
    assert CellJob(_spec(max_iters=4), LoopOptions(out=tmp_path))() == "todo"
    assert calls == []


def test_finished_cell_is_not_requeued(tmp_path, monkeypatch, handlers) -> None:
    calls = []
    signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    monkeypatch.setattr(launchers_jobs, "run_cell", _stub_run_cell([], []))
    assert CellJob(_spec(max_iters=4), LoopOptions(out=tmp_path))() == "done"
    assert calls == []


# ----------------------------------------------------------------------------------------------
# submitit-local end to end (subprocesses; no cluster).

BAD_KWARG = 'kwargs = { recon = "mse", ngf = 4, ndf = 4, batch_size = 4, no_such_kwarg = 1 }'
# Builds (so the pre-run checks pass) but fails in the worker: LPIPS needs VGG16 weights, offline here.
RUNTIME_FAILURE = 'kwargs = { recon = "lpips-vgg", ngf = 4, ndf = 4, batch_size = 4 }'


@pytest.mark.parametrize("launcher", ["submitit-local", "slurm", "local"])
def test_every_launcher_checks_model_kwargs_before_anything_runs(tiny_suite, tmp_path, capsys, launcher) -> None:
    text = tiny_suite("good", iters=3).read_text().replace('name = "good"', 'name = "badkw"')
    path = tiny_suite("badkw", text=text + "\n[models.fastgan]\n" + BAD_KWARG + "\n")
    out = tmp_path / "results"
    assert main(["run", "--suite", str(path), "--out", str(out), "--launcher", launcher]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "models.fastgan.kwargs" in err[0] and "no_such_kwarg" in err[0]
    assert not (out / "runs").exists()  # nothing submitted, nothing written


@pytest.mark.slow
def test_submitit_local_runs_cells_and_records_errors(tiny_suite, tmp_path, capsys) -> None:
    good = tiny_suite("good", iters=3)
    text = good.read_text().replace('name = "good"', 'name = "mixed"')
    text += "\n[models.fastgan]\n" + RUNTIME_FAILURE + "\n"
    path = tiny_suite("mixed", text=text)
    argv = ["run", "--suite", str(path), "--out", str(tmp_path), "--launcher", "submitit-local"]
    assert main([*argv, "--array-parallelism", "2", "--cpus-per-task", "1"]) == 1  # a cell failed
    cells = load_suite(str(path)).cells
    states = {c.spec.model: read_state(RunPaths.of(tmp_path, c.spec)) for c in cells}
    assert states["baseline"]["status"] == "done" and states["baseline"]["step"] == 3
    assert states["fastgan"]["status"] == "failed" and "lpips-vgg" in states["fastgan"]["error"]
    logs = RunPaths.of(tmp_path, cells[0].spec).root / "jobs" / "logs"
    assert any(p.suffix == ".err" and p.exists() for p in logs.iterdir())  # symlinks into submitit's folder
    capsys.readouterr()
    assert main(["status", "--suite", str(path), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "submitit-local" in out and "PerceptualWeightsMissing" in out and "lpips-vgg" in out
    assert main([*argv, "--models", "baseline"]) == 0
    assert "skipped (done)" in capsys.readouterr().out


def test_a_cpu_pool_splits_the_cpus_and_prints_one_table(tiny_suite, tmp_path, capsys, monkeypatch) -> None:
    """`--devices cpu,cpu`: two workers, each on its share of the CPUs, each cell run once; the results once;
    the models' built facts (what the report reads) remembered by the pool while its last worker ran."""
    from bench.training.threads import usable_cpus

    monkeypatch.setenv(names.CACHE_ENV, str(tmp_path / "cache"))  # a fresh cache (the workers' too)
    monkeypatch.setattr(names, "_loaded", {})

    text = tiny_suite("pool", iters=2).read_text()
    path = tmp_path / "pool2.toml"
    path.write_text(text.replace('name = "pool"', 'name = "pool2"') + '[models.b]\nlike = "baseline"\nlabel = "B"\n'
                    "kwargs = { recon = 'mse', ngf = 2, ndf = 4, batch_size = 4 }\n")  # fmt: skip
    out = tmp_path / "results"
    argv = ["run", "--suite", str(path), "--out", str(out), "--devices", "cpu,cpu"]
    built = [built_key(c.spec.model, c.spec.resolution, c.spec.model_kwargs) for c in load_suite(str(path)).cells]
    assert not any(names.is_remembered("built", key) for key in built)
    assert main(argv) == 0
    stdout = capsys.readouterr().out  # the workers' own output goes to the terminal, not through capsys
    assert "cells: 2 done" in stdout and stdout.count("cells:") == 1
    assert all(names.is_remembered("built", key) for key in built)  # computed while the last worker ran
    checked = [
        json.loads(key)[4] for key in names._document().get("builds", {})
    ]  # [model, res, kwargs, graphs, where, ...]
    assert checked and set(checked) == {"cpu"}  # the parent checked for the CPU workers: they built nothing again
    threads = {RunPaths.of(out, c.spec).spec.read_text().count(f'"threads": {max(1, usable_cpus() // 2)}')
               for c in load_suite(str(path)).cells}  # fmt: skip
    assert threads == {1}


def test_the_watch_hint_repeats_the_flags_that_address_the_runs() -> None:
    """After a SLURM submission, `status` and `cancel` need the flags that chose the cells or changed their run ids."""
    parser = build_parser()
    args = parser.parse_args(["run", "--suite", "s", "--calibration", "c.json", "--models", "fastgan"])
    assert _suite_flags(args) == "--suite s --out results --models fastgan --calibration c.json"
    for command in ("status", "cancel"):
        assert parser.parse_args([command, *_suite_flags(args).split()]).calibration == Path("c.json")
    assert _suite_flags(parser.parse_args(["run", "--suite", "s"])) == "--suite s --out results"
