"""The suite part of ``gpu-check``, through the real command line: one short suite of every family
trained, evaluated (effnet-lite0), checkpointed and reported; the same suite killed with SIGKILL
inside each cell and resumed, to the same weights; and ``--devices`` as a pool of one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from bench.plan.suites import Cell, load_suite
from bench.report.selection import ProtocolKey
from bench.results.io import atomic_write_bytes, read_jsonl
from bench.results.runs import RunPaths, eval_rows, read_state
from bench.tools.gpucheck.settings import DATASET, DETECTOR, GpuCheckSettings, Plan

ROOT = Path(__file__).resolve().parents[3]
RUN_BENCH = ROOT / "run_bench.py"
POLL_S = 0.01  # how often the killer looks for a cell's first checkpoint


def suite_toml(name: str, plan: Plan, models: dict[str, dict[str, Any]], protocols: tuple[str, ...]) -> str:
    """A suite of ``models`` (name -> kwargs) on the check's dataset, ``plan.train_iters`` iterations each."""
    lines = [
        "[suite]", f'name = "{name}"', f"resolution = {plan.resolution}", f'datasets = ["{DATASET}"]', "seeds = [0]",
        "[budget]", f"max_iters = {plan.train_iters}",
        "[eval]", f"protocols = {json.dumps(list(protocols))}", f'detector = "{DETECTOR}"', "fractions = [1.0]",
        "grid_size = 4",
    ]  # fmt: skip
    for model, kwargs in models.items():
        pairs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in kwargs.items())
        lines += [f"[models.{model}]", f"kwargs = {{ {pairs} }}"]
    return "\n".join(lines) + "\n"


def bench_cmd(*args: str) -> list[str]:
    """``python run_bench.py ARGS`` with this interpreter."""
    return [sys.executable, str(RUN_BENCH), *args]


def run_logged(cmd: list[str], log: Path, timeout: float) -> int:
    """Run ``cmd`` with its output in ``log``; its exit code (-9 when it ran out of ``timeout``)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=_env())
        try:
            return proc.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -9


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}


def tail(log: Path, lines: int = 15) -> str:
    """The last lines of a log (for a failed step's summary)."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def suite_section(settings: GpuCheckSettings, plan: Plan, work: Path, left: float) -> dict[str, Any]:
    """Train the suite uninterrupted (``gpu-check-ref``) and again killed once inside each cell
    (``gpu-check-kill``), both with deterministic kernels; compare the final checkpoints and
    scores cell by cell; render the report of the uninterrupted suite."""
    deadline = time.monotonic() + left
    paths = {}
    for name in ("gpu-check-ref", "gpu-check-kill"):
        paths[name] = work / f"{name}.toml"
        atomic_write_bytes(paths[name], suite_toml(name, plan, plan.models, plan.protocols).encode())
    run = ["--out", str(work), "--device", settings.device, "--no-progress", "--deterministic",
           "--checkpoint-every", str(plan.checkpoint_every_s)]  # fmt: skip
    log = work / "logs" / "suite.log"
    rc = run_logged(bench_cmd("--suite", str(paths["gpu-check-ref"]), *run), log, deadline - time.monotonic())
    if rc != 0:
        return {"status": "failed", "error": f"uninterrupted suite exited {rc}", "log": tail(log)}
    cells = load_suite(str(paths["gpu-check-kill"])).cells
    kills = _kill_in_each_cell(bench_cmd("--suite", str(paths["gpu-check-kill"]), *run), cells, work, log, deadline)
    rc = run_logged(bench_cmd("--suite", str(paths["gpu-check-kill"]), *run), log, deadline - time.monotonic())
    ref_cells = load_suite(str(paths["gpu-check-ref"])).cells
    rows = [_compare(ref, cell, work, kills.get(cell.spec.model)) for ref, cell in zip(ref_cells, cells, strict=True)]
    out: dict[str, Any] = {"cells": rows, "resume_exit": rc, "report": _report(paths["gpu-check-ref"], work)}
    out["checks"] = {
        "resumed suite finished": rc == 0,
        "every cell killed inside and resumed": all(r["resumed_from"] for r in rows),
        "resumed weights equal the uninterrupted run's (bitwise)": all(r["equal"] for r in rows),
        "scores equal": all(r["scores_equal"] for r in rows),
    }
    return {"status": "ok" if all(out["checks"].values()) else "failed", **out}


def _kill_in_each_cell(cmd: list[str], cells: list[Cell], work: Path, log: Path, deadline: float) -> dict[str, int]:
    """Start the suite, SIGKILL it as soon as cell k has a checkpoint, for each k in turn; returns
    model -> the newest checkpoint's step when it was killed."""
    kills = {}
    for cell in cells:
        paths = RunPaths.of(work, cell.spec)
        with log.open("ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=_env())
        while proc.poll() is None and not _checkpoints(paths) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills[cell.spec.model] = int(_checkpoints(paths)[-1].stem.split("-")[1]) if _checkpoints(paths) else -1
        proc.wait()
    return kills


def _checkpoints(paths: RunPaths) -> list[Path]:
    return sorted(paths.checkpoints.glob("ckpt-*.pt")) if paths.checkpoints.is_dir() else []


def _compare(ref: Cell, cell: Cell, work: Path, killed_at: int | None) -> dict[str, Any]:
    """One cell: its final checkpoint and scores against the uninterrupted run's."""
    a, b = RunPaths.of(work, ref.spec), RunPaths.of(work, cell.spec)
    resumed = [e["step"] for e in read_jsonl(b.events) if e.get("event") == "resume"]
    row: dict[str, Any] = {"model": cell.spec.model, "run_id": cell.spec.run_id, "killed_at_checkpoint": killed_at,
                           "resumed_from": resumed, "status": read_state(b)["status"]}  # fmt: skip
    final = f"ckpt-{cell.spec.max_iters:08d}.pt"
    if not ((a.checkpoints / final).exists() and (b.checkpoints / final).exists()):
        return row | {"equal": False, "scores_equal": False, "error": f"{final} missing"}
    x, y = (torch.load(p.checkpoints / final, map_location="cpu", weights_only=True) for p in (a, b))
    diffs = [(k, v, y["model"][k]) for k, v in x["model"].items()]
    row["equal"] = all(torch.equal(u, v) for _, u, v in diffs) and _same(x["optim"], y["optim"])
    row["max_abs_diff"] = max(((u.double() - v.double()).abs().max().item() for _, u, v in diffs
                               if u.is_floating_point()), default=0.0)  # fmt: skip
    scores = [run_scores(p) for p in (a, b)]
    return row | {"scores": scores[0], "scores_resumed": scores[1], "scores_equal": scores[0] == scores[1]}


def run_scores(paths: RunPaths) -> dict[str, float]:
    """The run's scores, each keyed on its whole protocol (:class:`~bench.report.selection.ProtocolKey`: metric,
    detector and its weights, mode, images, reference...) and the snapshot it scored: ``'fid50_full_clean
    effnet-lite0-1a2b3c4d snapshots/snap-00000040.pt'``."""
    keys = ((ProtocolKey.of(r), r) for r in eval_rows(paths))
    return {f"{k.metric} {k.slug} {r.get('snapshot')}": r["value"] for k, r in keys}


def _same(a: Any, b: Any) -> bool:
    """Nested optimizer states equal (tensors bitwise)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def _report(suite_path: Path, work: Path) -> dict[str, Any]:
    """``report`` of the uninterrupted suite: the files and its Markdown table."""
    from bench.report.writer import write_report
    from bench.results.collect import collect

    suite = load_suite(str(suite_path))
    files = write_report(suite, collect(work, suite.name), work / "report", out=work)
    tables = [p for p in files if p.suffix == ".md"]
    return {"files": [str(p) for p in files], "markdown": tables[0].read_text() if tables else None}


def pool_section(settings: GpuCheckSettings, plan: Plan, work: Path, left: float) -> dict[str, Any]:
    """``run --devices`` with one device (``0``, or ``cpu`` for a CPU check): a worker process trains
    a small cell there."""
    device = torch.device(settings.device)
    entry = "cpu" if device.type == "cpu" else str(device.index or 0)
    path = work / "gpu-check-pool.toml"
    small = {"fastgan": plan.models["fastgan"]}
    atomic_write_bytes(path, suite_toml("gpu-check-pool", plan, small, ()).encode())
    log = work / "logs" / "pool.log"
    rc = run_logged(bench_cmd("--suite", str(path), "--out", str(work), "--devices", entry), log, left)
    cell = load_suite(str(path)).cells[0]
    paths = RunPaths.of(work, cell.spec)
    ran_on = json.loads(paths.spec.read_text())["environment"]["device"] if paths.spec.exists() else None
    want = "cpu" if entry == "cpu" else f"cuda:{entry}"
    out = {"devices": entry, "exit": rc, "worker_device": ran_on, "status_of_cell": read_state(paths)["status"]}
    out["checks"] = {"pool exited 0": rc == 0, "cell done": out["status_of_cell"] == "done", "ran on the device":
                     ran_on == want}  # fmt: skip
    if rc != 0:
        out["log"] = tail(log)
    return {"status": "ok" if all(out["checks"].values()) else "failed", **out}
