"""Crashes and concurrent writers: SIGKILL at many points of real runs, then resume; two processes at once.

Kill points are found by watching the run folder (a checkpoint/snapshot/grid/state temp file
appearing, evaluation under way, evals.jsonl growing, a resume) or by time after the start. Each
attempt is ``run_bench.py`` executed as the command line does, forked from a *zygote* process that
imported the harness once (a fresh interpreter per attempt would spend most of the test importing
torch); the concurrency tests start ``run_bench.py`` as plain subprocesses. After every kill the
same command is run again until the cell is done; the finished run must equal an uninterrupted
one: same step, checkpoints, snapshots and result rows (each once, every line whole).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from faultkit import (
    ENV,
    POISONED,
    ROOT,
    RUN_BENCH,
    TINY_PROTOCOL,
    Campaign,
    Probe,
    Zygote,
    after,
    assert_same_run,
    cache_temp,
    evaluating,
    grew,
    jsonl_strict,
    new_checkpoint,
    new_temp,
    report_campaign,
    write_suite,
)
from PIL import Image

from bench.plan.suites import load_suite
from bench.results.collect import collect
from bench.results.lock import holder, is_locked
from bench.results.runs import RunPaths, cell_state, eval_rows, read_state


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    yield z
    z.close()


# ---------------------------------------------------------------------------------------------- tests


def test_sigkill_anywhere_then_resume_equals_uninterrupted(zygote, tmp_path) -> None:
    """Training, checkpoint writes, snapshots, grids, state and event writes: ~two dozen kill points."""
    iters, fractions = 40, [0.25, 0.5, 0.75, 1.0]
    suite = write_suite(tmp_path, "faults", iters=iters, fractions=fractions)
    camp = Campaign(zygote, suite, tmp_path, extra=["--checkpoint-every", "0.2"])
    ref = camp.attempt(tmp_path / "ref", None)
    assert ref.rc == 0, ref.log
    ref_run = Probe(tmp_path / "ref").run_dir()
    assert ref_run is not None
    points = [
        cache_temp(),  # the first attempt builds the dataset cache
        new_temp("checkpoints", ".ckpt-"),
        after(0.3),
        grew("events.jsonl"),  # right after resuming
        new_temp("snapshots", ".snap-"),
        new_temp("samples", ".grid-"),
        evaluating(0.0),
        new_checkpoint(),  # between the rename and pruning the oldest
        new_temp("", ".state.json."),
        after(0.6),
        new_temp("checkpoints", ".ckpt-"),
        evaluating(0.02),
        after(0.9),
        new_temp("", ".spec.json."),
        new_temp("snapshots", ".snap-"),
        after(1.2),
        new_temp("samples", ".grid-"),
        new_checkpoint(),
        after(1.5),
        new_temp("checkpoints", ".ckpt-"),
        evaluating(0.05),
        after(1.8),
        grew("events.jsonl"),
        new_temp("", ".state.json."),
        after(2.2),
        new_temp("checkpoints", ".ckpt-"),
        after(0.45),
        evaluating(0.01),
        after(1.05),
        new_temp("snapshots", ".snap-"),
        after(1.65),
        after(2.5),
    ]
    finished = camp.run(tmp_path / "run-0", points)
    report_campaign(camp, "training faults")
    killed = sum(outcome == "killed" for _, outcome in camp.tried)
    assert killed >= len(points) * 2 // 3, camp.tried
    for out in finished:
        run = Probe(out).run_dir()
        assert run is not None
        assert_same_run(run, ref_run, iters, fractions)


def _image_folder(path: Path, n: int = 8) -> Path:
    rng = np.random.default_rng(0)
    path.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path / f"{i}.png")
    return path


def test_sigkill_during_evaluation_keeps_rows_whole_and_unique(zygote, tmp_path) -> None:
    """A real metric (KID, inception-random): kills while it is computed and between its rows and the event."""
    iters, fractions = 8, [0.5, 1.0]
    images = _image_folder(tmp_path / "images")
    suite = write_suite(
        tmp_path, "evalfaults", iters=iters, fractions=fractions, protocols=f'["{TINY_PROTOCOL}"]',
        dataset=f'"folder:{images}"',
    )  # fmt: skip
    camp = Campaign(zygote, suite, tmp_path)
    ref = camp.attempt(tmp_path / "ref", None)
    assert ref.rc == 0, ref.log
    ref_run = Probe(tmp_path / "ref").run_dir()
    assert ref_run is not None and len(eval_rows(RunPaths(ref_run))) == 3  # step 0, 0.5 and 1.0
    points = [
        cache_temp(),  # the reference features being written
        evaluating(0.5),
        grew("evals.jsonl"),  # the row is in, the "evaluated" event not yet
        evaluating(1.5),
        grew("evals.jsonl"),
    ]
    finished = camp.run(tmp_path / "run-0", points)
    report_campaign(camp, "evaluation faults")
    assert sum(outcome == "killed" for _, outcome in camp.tried) >= 3, camp.tried
    for out in finished:
        run = Probe(out).run_dir()
        assert run is not None
        assert_same_run(run, ref_run, iters, fractions)
        assert len(collect(out)) == 3


def _start(suite: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(RUN_BENCH), "--suite", str(suite), "--out", str(out), "--no-progress", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=ROOT,
    )  # fmt: skip


def test_two_processes_on_overlapping_suites_train_each_cell_once(tmp_path) -> None:
    """Two real run_bench.py processes on one results folder; suites share a cell."""
    a = write_suite(tmp_path, "conc", iters=6, fractions=[1.0], seeds="[0, 1]")
    (tmp_path / "b").mkdir()
    b = write_suite(tmp_path / "b", "conc", iters=6, fractions=[1.0], seeds="[1, 2]")
    out = tmp_path / "out"
    procs = [_start(a, out), _start(b, out)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    cells = {c.spec.run_id: c for s in (a, b) for c in load_suite(str(s)).cells}
    assert len(cells) == 3
    pids = {str(p.pid) for p in procs}
    for run_id, cell in cells.items():
        paths = RunPaths.of(out, cell.spec)
        assert read_state(paths)["status"] == "done", run_id
        events = jsonl_strict(paths.events)
        evaluated = [e["point"] for e in events if e["event"] == "evaluated"]
        assert [e["event"] for e in events] == ["evaluated"] * 2, f"{run_id} trained more than once: {events}"
        assert evaluated == [0.0, 1.0]  # step 0, then the end
        assert holder(paths.root / "lock").split(":")[-1] in pids
        assert cell_state(out, cell)["status"] == "done"
    assert len(collect(out, "conc")) == 0  # parses (no metrics in this suite)


def test_lock_of_a_killed_process_does_not_block(tmp_path) -> None:
    """SIGKILL a real run_bench.py mid-training: its lock file stays, yet the next run resumes and finishes."""
    suite = write_suite(tmp_path, "stale", iters=30, fractions=[1.0])
    out = tmp_path / "out"
    cell = load_suite(str(suite)).cells[0]
    paths = RunPaths.of(out, cell.spec)
    proc = _start(suite, out, "--checkpoint-every", "0.05")
    deadline = time.monotonic() + 300
    while not (paths.checkpoints.exists() and list(paths.checkpoints.glob("ckpt-*.pt"))[1:]):  # past step 0
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.002)
    assert is_locked(paths.root) and holder(paths.root / "lock").endswith(f":{proc.pid}")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert (paths.root / "lock").exists() and not is_locked(paths.root)
    assert read_state(paths)["status"] == "running"  # what the killed process left ...
    assert cell_state(out, cell)["status"] == "todo"  # ... reads as resumable, not as running
    done = _start(suite, out)
    log = done.communicate(timeout=300)[0]
    assert done.returncode == 0, log
    assert read_state(paths)["status"] == "done"
    events = [e for e in jsonl_strict(paths.events) if not (e["event"] == "evaluated" and e["point"] == 0.0)]
    assert events[0]["event"] == "resume" and events[0]["step"] > 0


def test_diverging_cell_stops_keeps_last_good_and_suite_goes_on(zygote, tmp_path) -> None:
    """Weights turn to inf between two loss checks: no later checkpoint, snapshot or score; the other cell runs."""
    suite = write_suite(tmp_path, "div", iters=32, fractions=[0.25, 0.5, 1.0])
    suite.write_text(
        suite.read_text() + f'\n[models.{POISONED}]\nkwargs = {{ recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }}\n'
    )
    camp = Campaign(zygote, suite, tmp_path)
    out = tmp_path / "out"
    first = camp.attempt(out, None)
    assert first.rc == 0 and "cells: 1 diverged, 1 done" in first.log, first.log
    runs = {json.loads((d / "spec.json").read_text())["spec"]["model"]: d for d in (out / "runs" / "div").iterdir()}
    bad, good = RunPaths(runs[POISONED]), RunPaths(runs["baseline"])
    assert read_state(bad)["status"] == "diverged" and read_state(good)["status"] == "done"
    assert read_state(bad)["step"] == 16  # the 0.5 evaluation found it, before saving anything
    assert sorted(os.listdir(bad.snapshots)) == ["snap-00000000.pt", "snap-00000008.pt"]  # evaluations before it kept
    for ckpt in bad.checkpoints.glob("*.pt"):  # only good checkpoints; the newest loads
        state = torch.load(ckpt, weights_only=True)
        assert state["step"] <= 12 and all(
            torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point()
        )
    events = [e["event"] for e in jsonl_strict(bad.events)]
    assert events == ["evaluated", "evaluated", "diverged"]  # step 0, 0.25, then the divergence
    again = camp.attempt(out, None)  # a second run does not retry it
    assert again.rc == 0 and [e["event"] for e in jsonl_strict(bad.events)] == events


def test_best_table_shows_diverged_not_a_number(tmp_path) -> None:
    from bench.report.summary import best_table

    suite_path = write_suite(tmp_path, "tab", iters=4, fractions=[1.0])
    suite_path.write_text(suite_path.read_text() + '\n[models.fastgan]\nkwargs = { recon = "mse" }\n')
    suite = load_suite(str(suite_path))
    for cell, status, value in zip(suite.cells, ["diverged", "done"], [12.5, 34.5], strict=True):
        paths = RunPaths.of(tmp_path, cell.spec)
        paths.root.mkdir(parents=True)
        (paths.root / "spec.json").write_text(json.dumps({"spec": cell.spec.to_dict()}))
        (paths.root / "state.json").write_text(json.dumps({"status": status}))
        row = {"snapshot": "snapshots/snap-00000002.pt", "metric": "fid5k_full_clean", "kind": "fid", "value": value}
        (paths.root / "evals.jsonl").write_text(json.dumps(row) + "\n")
    table = best_table(suite, suite.cells, tmp_path)
    assert "diverged" in table and "12.5" not in table and "34.5" in table
