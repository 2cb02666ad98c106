"""Hostile and broken input, fed to the real command line, kind by kind.

Every case of ``bad_cases_*.py`` runs as ``python run_bench.py ARGV`` in its own process (forked from
a zygote that imported the harness once: tests/clirun.py) with a time limit, so a hang fails rather
than stalls. Bad input must give exit code 2, one stderr line ``error: ...`` that names the file or
key and the fix (warnings, if any, after it), no traceback, and leave the case's folder as it was
(files and folders; a started cell may add only complete bookkeeping files). Input the harness goes
on with (an unreadable run folder in ``status``, a corrupt checkpoint on resume) must give exit 0,
no error and no traceback. A pickle payload must never run. A few cases also run as plain
``run_bench.py`` processes, to show the zygote changes nothing.
"""

from __future__ import annotations

import dataclasses
import errno
import fnmatch
import io
import json
import os
import shutil
import stat
from pathlib import Path

import bad_cases_cli
import bad_cases_data
import bad_cases_files
import bad_cases_numbers
import bad_cases_results
import bad_cases_tensors
import bad_cases_train
import pytest
from bad_inputs import REGISTER, TEST_PROTOCOL, Case, Ctx, noise_png
from clirun import Zygote
from conftest import TINY_SUITE, run_cli

import bench.results.io
from bench.cli import main
from bench.plan.suites import load_suite
from bench.results.runs import RunPaths, read_state
from bench.training.cell import run_cell
from bench.training.options import LoopOptions

KINDS: dict[str, dict] = {}
for _module in (
    bad_cases_cli,
    bad_cases_files,
    bad_cases_data,
    bad_cases_numbers,
    bad_cases_tensors,
    bad_cases_results,
    bad_cases_train,
):
    for _kind, _cases in _module.CASES.items():  # a later module may add cases to a kind
        assert not KINDS.get(_kind, {}).keys() & _cases.keys(), f"{_kind}: a case name given twice"
        KINDS.setdefault(_kind, {}).update(_cases)
CASES = {f"{kind}: {name}": build for kind, cases in KINDS.items() for name, build in cases.items()}
MIN_PER_KIND = 3


def _tree(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: folders, FIFOs and links by kind, files by size and modification time."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            key = path.relative_to(root).as_posix()
            out[key] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else (
                stat.S_IFMT(st.st_mode),
            )  # fmt: skip
    return out


def _allowed(key: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, g) for g in globs)


def _assert_unchanged(before: dict, after: dict, allow: list[str], root: Path) -> None:
    changed = {k for k in after if before.get(k) != after[k]}
    allowed = {k for k in changed if _allowed(k, allow)}
    allowed |= {k for k in changed if after[k][0] == stat.S_IFDIR and any(a.startswith(k + "/") for a in allowed)}
    assert not changed - allowed, f"new or changed: {sorted(changed - allowed)}"
    assert not [k for k in changed if k.endswith(".tmp")], "a temporary file was left behind"
    for name in changed:
        if name.endswith(".json") and after[name][0] == stat.S_IFREG:
            json.loads((root / name).read_text())  # whole
    removed = [k for k in before if k not in after and not _allowed(k, allow)]
    assert not removed, f"inputs were removed: {removed}"


def _assert_outcome(case: Case, code: int, out: str, err: str) -> None:
    assert code != -9, f"killed after {case.timeout:.0f} s: the command hung\n{err}"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    if case.code == 0:
        assert code == 0 and not [x for x in lines if x.startswith("error")], err
        for part in case.expect:
            assert part in out + err, f"{part!r} not in the output:\n{out}\n{err}"
        return
    assert code == 2, f"exit code {code}\n{err}"
    assert lines and lines[0].startswith("error: "), err
    assert all(x.startswith(("warning: ", "note: ")) for x in lines[1:]), f"more than the one error line:\n{err}"
    for part in case.expect:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    for part in case.warns:
        assert any(part in x for x in lines[1:]), f"no warning with {part!r} after the error:\n{err}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-iteration tiny run (snapshots at steps 1 and 2) and its dataset cache."""
    tmp = tmp_path_factory.mktemp("trained")
    (tmp / "tiny.toml").write_text(TINY_SUITE.format(name="tiny", iters=2, protocols="[]"))
    spec = load_suite(str(tmp / "tiny.toml")).cells[0].spec
    assert run_cell(spec, LoopOptions(out=tmp / "results", progress=False)) == "done"
    return tmp / "results"


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-iteration tiny run stopped after step 2: ckpt-00000002.pt newest, state todo."""
    tmp = tmp_path_factory.mktemp("stopped")
    (tmp / "tiny.toml").write_text(TINY_SUITE.format(name="tiny", iters=4, protocols="[]"))
    spec = load_suite(str(tmp / "tiny.toml")).cells[0].spec
    calls = iter(range(100))
    opts = LoopOptions(out=tmp / "results", progress=False, should_stop=lambda: next(calls) == 1)
    assert run_cell(spec, opts) == "todo"
    paths = RunPaths.of(tmp / "results", spec)
    assert sorted(p.name for p in paths.checkpoints.iterdir())[-1] == "ckpt-00000002.pt"  # (and step 0's)
    return tmp / "results"


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory, zygote: Zygote) -> Path:
    """A finished 2-iteration run on a folder of 8 images, scored (kid8_full) at steps 1 and 2: its rows feed
    ``report``. Made by the command line itself, in the zygote, where the test protocol is registered."""
    tmp = tmp_path_factory.mktemp("evaluated")
    images = Ctx(tmp, tmp, tmp, tmp).folder({f"{i}.png": noise_png(32) for i in range(8)})
    text = TINY_SUITE.format(name="tiny", iters=2, protocols=f'["{TEST_PROTOCOL}"]')
    (tmp / "tiny.toml").write_text(text.replace('["shapes"]', f'["folder:{images}"]'))
    result = zygote.run(["run", "--suite", "tiny.toml", "--out", "results", "--no-progress"], cwd=tmp, timeout=600)
    assert result.code == 0, result.stderr
    return tmp


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory):
    z = Zygote(tmp_path_factory.mktemp("zygote"), preamble=REGISTER)
    yield z
    z.close()


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name: str, tmp_path: Path, trained: Path, stopped: Path, evaluated: Path, zygote: Zygote) -> None:
    if name.startswith("slurm: ") and not bad_cases_data.slurm_available():
        pytest.skip("no SLURM cluster answers (bash scripts/slurm-local.sh up)")
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    case = CASES[name](Ctx(case_dir, trained, stopped, evaluated))
    before = _tree(case_dir)
    result = zygote.run(case.argv, cwd=case_dir, env=case.env, timeout=case.timeout)
    _assert_outcome(case, result.code, result.stdout, result.stderr)
    if case.marker is not None:
        assert not case.marker.exists(), "the pickle payload ran"
    _assert_unchanged(before, _tree(case_dir), case.allow_new, case_dir)
    if case.after is not None:
        case.after()


def test_every_kind_has_several_cases() -> None:
    counts = {kind: len(cases) for kind, cases in KINDS.items()}
    print("cases per kind:", json.dumps(counts), "total", len(CASES))
    assert all(n >= MIN_PER_KIND for n in counts.values()), counts
    assert len(CASES) >= 180, len(CASES)


def test_the_zygote_imports_without_a_warning(zygote: Zygote) -> None:
    """What the harness prints while importing would precede every error line: nothing."""
    assert zygote.run(["--help"], cwd=zygote.logs).code == 0
    assert zygote.startup.read_text() == ""


REAL = ["suite values: malformed TOML", "perf arguments: --resolution 33", "archives: path traversal",
        "hangs and memory: include of a FIFO", "security: eval of a pickle payload snapshot",
        "warnings: prepare from one image: the count warning comes after the error"]  # fmt: skip


@pytest.mark.parametrize("name", REAL)
def test_bad_input_real_process(name: str, tmp_path: Path, trained: Path, stopped: Path) -> None:
    """The same outcome from a plain ``run_bench.py`` process."""
    case = CASES[name](Ctx(tmp_path, trained, stopped, tmp_path))
    before = _tree(tmp_path)
    proc = run_cli(*case.argv, cwd=tmp_path, timeout=300)
    _assert_outcome(case, proc.returncode, proc.stdout, proc.stderr)
    _assert_unchanged(before, _tree(tmp_path), case.allow_new, tmp_path)
    assert case.marker is None or not case.marker.exists()


# ---------------------------------------------------------------------------------------------- full disk


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


def _cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("where", ["checkpoint write", "jsonl append"])
def test_disk_full(where: str, tmp_path: Path, trained: Path, stopped: Path, capsys, monkeypatch) -> None:
    """ENOSPC mid-write: one line naming the file, exit 2, no temp file or torn line; then the run resumes."""
    ctx = Ctx(tmp_path, trained, stopped, tmp_path)
    argv = ctx.run()
    shutil.copytree(trained / "cache", ctx.out / "cache")
    if where == "checkpoint write":
        monkeypatch.setattr("torch.save", _full_disk_save)
        target = "ckpt-00000000.pt"  # the first checkpoint: written by the step-0 evaluation
    else:
        monkeypatch.setattr(bench.results.io, "os", _ShortWrites())
        target = "events.jsonl"
    code, err = _cli(capsys, argv)
    _assert_outcome(
        Case(argv, ["disk full while writing", target, "free space and rerun (the run resumes)"]), code, "", err
    )
    paths = RunPaths(next((ctx.out / "runs").glob("*/*/")))
    assert read_state(paths)["status"] == "failed"
    assert not [p for p in paths.root.rglob("*") if p.name.endswith(".tmp")]
    assert not paths.events.exists() or paths.events.read_text() == ""  # the half line was taken back
    if where == "checkpoint write":
        assert not list(paths.checkpoints.glob("*.pt"))
    monkeypatch.undo()
    assert _cli(capsys, argv)[0] == 0
    assert read_state(paths)["status"] == "done"


def test_case_outcome_checks_can_fail() -> None:
    """The assertions above catch what they are for: a traceback, a second line, a wrong exit code."""
    case = Case(["x"], ["bad"])
    for code, err in ((1, "Traceback (most recent call last):\n"), (2, "error: bad\nmore\n"), (0, "error: bad\n")):
        with pytest.raises(AssertionError):
            _assert_outcome(case, code, "", err)
    _assert_outcome(dataclasses.replace(case, warns=["w"]), 2, "", "error: bad\nwarning: w\n")
