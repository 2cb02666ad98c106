"""The one reader of parsed files (bench.files), the writability check, appends and the modes of
written files (bench.results.io), and the SLURM state parser: each against a bad and a good case."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.files import FileReadError, read_json, read_text, regular_file
from bench.launchers.jobs import _parse_states
from bench.results.io import append_jsonl, atomic_write_text, check_writable_dir, read_jsonl


def _opened_within(fn, seconds: float = 10.0) -> BaseException | None:
    """Run ``fn`` in a thread; fail the test when it blocks (a FIFO read would wait for a writer forever)."""
    box: list[BaseException | None] = [None]

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # handed back to the test
            box[0] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "blocked on the file"
    return box[0]


def test_reader_refuses_fifo_device_folder_and_huge_files(tmp_path: Path) -> None:
    fifo = tmp_path / "f.json"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:
        f.truncate(17 * 2**20)
    cases = {fifo: "is a FIFO", Path("/dev/zero"): "is a character device", tmp_path: "is a folder",
             huge: "is larger than 16 MiB", tmp_path / "missing.json": "does not exist"}  # fmt: skip
    for path, why in cases.items():
        exc = _opened_within(lambda p=path: read_json(p))
        assert isinstance(exc, FileReadError) and why in str(exc) and str(path) in str(exc), exc
    with pytest.raises(FileReadError, match="is a FIFO"):
        regular_file(fifo)


def test_reader_parses_good_files_and_names_bad_content(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"a": [1, 2]}')
    assert read_json(good) == {"a": [1, 2]} and regular_file(good) == good
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9")
    with pytest.raises(FileReadError, match="is not UTF-8 text"):
        read_text(tmp_path / "latin.txt")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FileReadError, match="nested too deeply"):
        read_json(tmp_path / "deep.json")
    (tmp_path / "nan.json").write_text("{nan")
    with pytest.raises(FileReadError, match="is not valid JSON"):
        read_json(tmp_path / "nan.json")


def test_jsonl_skips_overlong_lines_and_refuses_fifos(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b"[" * (2 * 2**20) + b'\n{"a": 2}\n{"torn": ')
    assert [r["a"] for r in read_jsonl(path)] == [1, 2]
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    exc = _opened_within(lambda: append_jsonl(fifo, {"a": 1}))
    assert isinstance(exc, BenchError) and "is not a regular file" in str(exc), exc
    exc = _opened_within(lambda: list(read_jsonl(fifo)))
    assert isinstance(exc, FileReadError) and "is a FIFO" in str(exc), exc
    append_jsonl(path, {"a": 3})
    assert [r["a"] for r in read_jsonl(path)][-1] == 3


@pytest.mark.parametrize("mask", [0o077, 0o022, 0o002])
def test_written_files_follow_the_umask(tmp_path: Path, mask: int) -> None:
    """mkstemp alone makes 0600 files: a group could not read shared results (the bad case is 0o077's)."""
    old = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        append_jsonl(tmp_path / "b.jsonl", {"a": 1})
    finally:
        os.umask(old)
    for name in ("a.json", "b.jsonl"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name


def test_writability_check_creates_nothing(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    bad = {afile: "is a file, not a folder", afile / "sub": "afile is a file, not a folder",
           tmp_path / ("n" * 300): "File name too long"}  # fmt: skip
    for path, why in bad.items():
        with pytest.raises(BenchError, match=why):
            check_writable_dir(path, "--out")
    check_writable_dir(tmp_path / "new" / "deeper", "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_writability_check_covers_the_places_inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folders and files a command writes inside its (here relative) --out are checked too; nothing is made."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out" / "cache" / "x.json").mkdir(parents=True)
    (tmp_path / "out" / "calibration").write_text("a file")
    with pytest.raises(BenchError, match=r"--out out: out/calibration is a file, not a folder; move it away"):
        check_writable_dir(Path("out"), "--out", files=[Path("calibration") / "cpu.json"])
    with pytest.raises(BenchError, match=r"out/cache/x.json is not a regular file"):
        check_writable_dir(Path("out"), "--out", files=["cache/x.json"])
    before = sorted(tmp_path.rglob("*"))
    check_writable_dir(Path("out"), "--out", folders=["new/deeper"], files=["cache/y.json"])
    assert sorted(tmp_path.rglob("*")) == before


def test_slurm_states_expand_pending_arrays() -> None:
    text = "12_[0-2,5%2]|PENDING\n13_1|COMPLETED\n14|CANCELLED by 0\n15_[9999999999999]|PENDING\n"
    states = _parse_states(text)
    assert states == {"12_0": "PENDING", "12_1": "PENDING", "12_2": "PENDING", "12_5": "PENDING",
                      "13_1": "COMPLETED", "14": "CANCELLED", "15_9999999999999": "PENDING"}  # fmt: skip
    assert _parse_states("12_[0-99999999]|PENDING") == {}  # a range no job has: not expanded
