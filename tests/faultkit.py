"""The machinery of the crash tests (tests/test_faults.py): a zygote process forking real
``run_bench.py`` attempts, kill points found by watching a run folder, and the checks that a resumed
run equals an uninterrupted one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.results.lock import is_locked
from bench.results.runs import RunPaths, eval_rows, read_state

ROOT = Path(__file__).resolve().parent.parent
RUN_BENCH = ROOT / "run_bench.py"
TINY_PROTOCOL = "kid8_faults"  # registered by the zygote only: KID on 8 generated images
POISONED = "baseline-inf-at-13"  # registered by the zygote only: weights turn to inf at step 13
ENV = os.environ | {
    "PYTHONPATH": str(ROOT),
    "OMP_NUM_THREADS": "1",  # deterministic, and no thread pools before the zygote forks
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}

SUITE = """
[suite]
name = "{name}"
resolution = 32
datasets = [{dataset}]
seeds = {seeds}

[budget]
max_iters = {iters}

[eval]
protocols = {protocols}
detector = "inception-random"
fractions = {fractions}
grid_size = 4

[models.baseline]
kwargs = {{ recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }}
"""

ZYGOTE = f"""
import json, os, runpy, signal, sys, traceback
import torch
import bench.cli, bench.launchers.local, bench.metrics, bench.tools.rescore, bench.training.cell  # before any fork
import models
bench.cli.exit_process = sys.exit  # the CLI leaves through os._exit; here through SystemExit, so .rc is written
bench.metrics.register_protocol({TINY_PROTOCOL!r}, "kid", 8)


@models.register_model({POISONED!r})
def poisoned(resolution, **kw):  # baseline whose generator weights turn to inf from step 13 on
    model = models.get_model("baseline", resolution=resolution, **kw)
    step = model.train_step

    def train_step(real, i):
        out = step(real, i)
        if i >= 12:
            with torch.no_grad():
                next(model.generator.parameters()).fill_(float("inf"))
        return out

    model.train_step = train_step
    return model


signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished and killed attempts
while line := sys.stdin.readline():
    argv, log = json.loads(line)
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        continue
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.argv = [{str(RUN_BENCH)!r}, *argv]
    code = 1
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    with open(log + ".rc.tmp", "w") as f:
        f.write(str(code))
    os.replace(log + ".rc.tmp", log + ".rc")
    os._exit(code)
"""


class Zygote:
    """A process that imported the harness and forks one ``run_bench.py`` attempt per request."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV,
            cwd=ROOT,
        )  # fmt: skip

    def spawn(self, argv: list[str], log: Path) -> int:
        """Fork an attempt running ``run_bench.py ARGV`` (output in ``log``, exit code in ``log.rc``)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([argv, str(log)]) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the zygote process died (its traceback is in the captured stderr)"
        return int(line)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# ---------------------------------------------------------------------------------------------- kill points


@dataclass
class Probe:
    """Cheap views of one results folder, polled every millisecond while an attempt runs."""

    out: Path

    def run_dir(self) -> Path | None:
        found = list((self.out / "runs").glob("*/*/"))
        return found[0] if found else None

    def names(self, sub: str = "") -> set[str]:
        run = self.run_dir()
        try:
            return set(os.listdir(run / sub)) if run else set()
        except FileNotFoundError:
            return set()

    def lines(self, name: str) -> int:
        run = self.run_dir()
        try:
            return (run / name).read_bytes().count(b"\n") if run else 0
        except FileNotFoundError:
            return 0

    def snapshots(self) -> set[str]:
        return {n for n in self.names("snapshots") if n.startswith("snap-") and n.endswith(".pt")}

    def evaluating(self, old: set[str]) -> bool:
        """A snapshot not in ``old`` is saved but its evaluation is not recorded yet."""
        snaps = {int(n[5:13]) for n in self.snapshots() - old}
        run = self.run_dir()
        done = set()
        if snaps and run and (run / "events.jsonl").exists():
            for line in (run / "events.jsonl").read_text().splitlines():
                if '"evaluated"' in line:
                    done.add(json.loads(line)["step"])
        return bool(snaps - done)


Condition = Callable[[float], bool]  # seconds since the attempt started -> kill now?


@dataclass
class KillPoint:
    """A named condition; ``arm`` captures the folder's state when an attempt starts."""

    name: str
    arm: Callable[[Probe], Condition]


def after(seconds: float) -> KillPoint:
    return KillPoint(f"t+{seconds:.2f}s", lambda p: lambda t: t >= seconds)


def new_temp(sub: str, prefix: str) -> KillPoint:
    """A temporary file of an atomic write (``.<name>.<random>.tmp``) that was not there at the start."""

    def arm(p: Probe) -> Condition:
        before = p.names(sub)
        return lambda t: any(n.startswith(prefix) and n.endswith(".tmp") for n in p.names(sub) - before)

    return KillPoint(f"writing {sub or '.'}/{prefix}*.tmp", arm)


def grew(name: str) -> KillPoint:
    def arm(p: Probe) -> Condition:
        n0 = p.lines(name)
        return lambda t: p.lines(name) > n0

    return KillPoint(f"{name} grew", arm)


def evaluating(delay: float) -> KillPoint:
    def arm(p: Probe) -> Condition:
        since: list[float] = []
        old = p.snapshots()

        def cond(t: float) -> bool:
            if not since and p.evaluating(old):
                since.append(t)
            return bool(since) and t - since[0] >= delay

        return cond

    return KillPoint(f"evaluating+{delay:.2f}s", arm)


def new_checkpoint() -> KillPoint:
    def arm(p: Probe) -> Condition:
        before = {n for n in p.names("checkpoints") if n.endswith(".pt")}
        return lambda t: bool({n for n in p.names("checkpoints") if n.endswith(".pt")} - before)

    return KillPoint("checkpoint renamed into place", arm)


def cache_temp() -> KillPoint:
    def arm(p: Probe) -> Condition:
        def temps() -> set[str]:
            return {str(q) for q in (p.out / "cache").rglob(".*.tmp")} if (p.out / "cache").exists() else set()

        before = temps()
        return lambda t: bool(temps() - before)

    return KillPoint("writing a cache file", arm)


@dataclass
class Attempt:
    killed: bool
    rc: int | None
    log: str


@dataclass
class Campaign:
    """Kill points tried against one suite; runs are resumed until done, then checked."""

    zygote: Zygote
    suite: Path
    tmp: Path
    extra: list[str] = field(default_factory=list)
    tried: list[tuple[str, str]] = field(default_factory=list)  # (kill point, outcome)
    count: int = 0

    def argv(self, out: Path) -> list[str]:
        return ["--suite", str(self.suite), "--out", str(out), "--no-progress", *self.extra]

    def attempt(self, out: Path, point: KillPoint | None, timeout: float = 300) -> Attempt:
        self.count += 1
        log = self.tmp / f"attempt-{self.count}.log"
        probe = Probe(out)
        cond = point.arm(probe) if point else None
        pid = self.zygote.spawn(self.argv(out), log)
        t0 = time.monotonic()
        rc_file = Path(f"{log}.rc")
        while not rc_file.exists():
            t = time.monotonic() - t0
            assert t < timeout, f"attempt {self.count} hangs:\n{log.read_text()}"
            if cond is not None and cond(t):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid)
                return Attempt(True, None, log.read_text() if log.exists() else "")
            time.sleep(0.0005)
        return Attempt(False, int(rc_file.read_text()), log.read_text())

    def run(self, out: Path, points: list[KillPoint]) -> list[Path]:
        """Try every kill point in turn, resuming after each; a finished run starts a new one.

        Returns the finished results folders (each one must equal the reference).
        """
        finished: list[Path] = []
        rounds = 0
        for point in [*points, None]:
            result = self.attempt(out, point)
            if point is not None:
                self.tried.append((point.name, "killed" if result.killed else "run ended first"))
            if result.killed:
                _check_after_kill(out)
                continue
            assert result.rc == 0, result.log
            finished.append(out)
            rounds += 1
            fresh = out.with_name(f"{out.name.rsplit('-', 1)[0]}-{rounds}")
            if point is not None:  # kill points left: a new run with the same (already built) caches
                shutil.copytree(out / "cache", fresh / "cache")
            out = fresh
        return finished


def _wait_gone(pid: int) -> None:
    for _ in range(10_000):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} survived SIGKILL")


def _check_after_kill(out: Path) -> None:
    """The killed attempt left a stale lock that blocks nobody and a cell that reads as resumable."""
    run = Probe(out).run_dir()
    if run is None or not (run / "lock").exists():
        return
    assert not is_locked(run)
    state = read_state(RunPaths(run))
    assert state["status"] in ("todo", "running", "done")


# ---------------------------------------------------------------------------------------------- checks


def jsonl_strict(path: Path) -> list[dict]:
    """Every line of a JSON-lines file: whole, parseable, newline-terminated (no torn lines)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path}: torn last line"
    return [json.loads(line) for line in data.decode().splitlines()]


def _newest_checkpoint(run: Path) -> dict:
    newest = sorted((run / "checkpoints").glob("ckpt-*.pt"))[-1]
    return torch.load(newest, map_location="cpu", weights_only=True)


def assert_same_run(run: Path, ref: Path, iters: int, fractions: list[float]) -> None:
    assert read_state(RunPaths(run))["status"] == "done"
    assert read_state(RunPaths(run))["step"] == iters
    events = jsonl_strict(run / "events.jsonl")
    evaluated = sorted(e["point"] for e in events if e["event"] == "evaluated")
    assert evaluated == [0.0, *sorted(fractions)], "each evaluation point exactly once, step 0 first"
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")], "temporary files left behind"
    for sub in ("snapshots", "samples"):
        assert sorted(os.listdir(run / sub)) == sorted(os.listdir(ref / sub)), sub
    for snap in (ref / "snapshots").iterdir():
        a = torch.load(snap, weights_only=True)["model"]
        b = torch.load(run / "snapshots" / snap.name, weights_only=True)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a), f"{snap.name} differs"
    ckpt, want = _newest_checkpoint(run), _newest_checkpoint(ref)
    assert ckpt["step"] == iters and ckpt["model"].keys() == want["model"].keys()
    assert all(torch.equal(ckpt["model"][k], want["model"][k]) for k in want["model"])
    rows = jsonl_strict(run / "evals.jsonl")
    keys = [(r["snapshot"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys)), "duplicate result rows"
    got = {(r["snapshot"], r["metric"]): r["value"] for r in rows}
    assert got == {(r["snapshot"], r["metric"]): r["value"] for r in eval_rows(RunPaths(ref))}


def write_suite(tmp: Path, name: str, *, iters: int, fractions: list[float], protocols: str = "[]",
           dataset: str = '"shapes"', seeds: str = "[0]") -> Path:  # fmt: skip
    path = tmp / f"{name}.toml"
    text = SUITE.format(
        name=name, iters=iters, fractions=fractions, protocols=protocols, dataset=dataset, seeds=seeds
    )  # fmt: skip
    path.write_text(text)
    return path


def report_campaign(campaign: Campaign, what: str) -> None:
    killed = sum(outcome == "killed" for _, outcome in campaign.tried)
    print(f"\n{what}: {len(campaign.tried)} kill points tried, {killed} killed")
    for name, outcome in campaign.tried:
        print(f"  {name}: {outcome}")
