"""Bad input across the CLI, suite files, dataset preparation and checkpoints.

Every case goes through the command line (``bench.cli.main``, what ``run_bench.py`` calls; a few
also as a real ``run_bench.py`` process) and must give exit code 2 and one stderr line
``error: ...`` that names the file or key and says how to fix it, and must leave nothing behind:
the files under the case's folder are the same before and after (where a cell did start, only
complete bookkeeping files are allowed).
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from bad_inputs import CASES, Ctx
from conftest import TINY_SUITE, run_cli

import bench.results.io
from bench.cli import main
from bench.plan.suites import load_suite
from bench.results.runs import RunPaths, read_state
from bench.training.cell import run_cell
from bench.training.options import LoopOptions


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*") if p.is_file()
    }  # fmt: skip


def _cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


def _assert_one_line(err: str, expect: list[str]) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for part in expect:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"


def _assert_nothing_half_written(before: dict, after: dict, allow: list[str], root: Path) -> None:
    changed = {k for k in after if before.get(k) != after[k]}
    unexpected = {k for k in changed if not any(Path(k).match(g) for g in allow)}
    assert not unexpected, f"new or changed files: {sorted(unexpected)}"
    assert not [k for k in changed if k.endswith(".tmp")]
    for name in changed:
        if name.endswith(".json"):
            json.loads((root / name).read_text())  # whole
    assert not [k for k in before if k not in after and not k.endswith(".pt")], "inputs were removed"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-iteration tiny run (snapshots at steps 1 and 2) and its dataset cache."""
    tmp = tmp_path_factory.mktemp("trained")
    (tmp / "tiny.toml").write_text(TINY_SUITE.format(name="tiny", iters=2, protocols="[]"))
    spec = load_suite(str(tmp / "tiny.toml")).cells[0].spec
    assert run_cell(spec, LoopOptions(out=tmp / "results", progress=False)) == "done"
    return tmp / "results"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name: str, tmp_path: Path, trained: Path, capsys, monkeypatch) -> None:
    ctx = Ctx(tmp_path, trained)
    build = CASES[name]
    case = build(ctx, monkeypatch) if build.__code__.co_argcount == 2 else build(ctx)
    capsys.readouterr()
    before = _files(tmp_path)
    code, err = _cli(capsys, case.argv)
    assert code == 2, err
    _assert_one_line(err, case.expect)
    _assert_nothing_half_written(before, _files(tmp_path), case.allow_new, tmp_path)


def test_at_least_30_distinct_bad_inputs() -> None:
    assert len(CASES) >= 30, len(CASES)


class _ShortWrites:
    """``os`` for bench.results.io whose ``write`` stores half the bytes (a disk filling up mid-line)."""

    def __getattr__(self, name: str):
        return getattr(os, name)

    @staticmethod
    def write(fd: int, data: bytes) -> int:
        return os.write(fd, data[: len(data) // 2])


def _full_disk_save(obj: object, f: io.BufferedWriter) -> None:
    f.write(b"PK\x03\x04partial")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["checkpoint write", "jsonl append"])
def test_disk_full(where: str, tmp_path: Path, trained: Path, capsys, monkeypatch) -> None:
    """ENOSPC mid-write: one line naming the file, exit 2, no temp file or torn line; then the run resumes."""
    ctx = Ctx(tmp_path, trained)
    argv = ctx.run()
    shutil.copytree(trained / "cache", ctx.out / "cache")
    if where == "checkpoint write":
        monkeypatch.setattr(bench.results.io.torch, "save", _full_disk_save)
        target = "ckpt-00000000.pt"  # the first checkpoint: written by the step-0 evaluation
    else:
        monkeypatch.setattr(bench.results.io, "os", _ShortWrites())
        target = "events.jsonl"
    code, err = _cli(capsys, argv)
    assert code == 2, err
    _assert_one_line(err, ["disk full while writing", target, "free space and rerun (the run resumes)"])
    paths = RunPaths(next((ctx.out / "runs").glob("*/*/")))
    assert read_state(paths)["status"] == "failed"
    assert not [p for p in paths.root.rglob("*") if p.name.endswith(".tmp")]
    assert not paths.events.exists() or paths.events.read_text() == ""  # the half line was taken back
    if where == "checkpoint write":
        assert not list(paths.checkpoints.glob("*.pt"))
    monkeypatch.undo()
    assert _cli(capsys, argv)[0] == 0
    assert read_state(paths)["status"] == "done"


@pytest.mark.parametrize("name", ["malformed TOML", "negative --budget-scale", "prepare: path traversal"])
def test_bad_input_real_process(name: str, tmp_path: Path, trained: Path) -> None:
    """The same one-line errors and exit code from a real ``run_bench.py`` process."""
    case = CASES[name](Ctx(tmp_path, trained))
    before = _files(tmp_path)
    proc = run_cli(*case.argv, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr
    _assert_one_line(proc.stderr, case.expect)
    _assert_nothing_half_written(before, _files(tmp_path), [], tmp_path)
