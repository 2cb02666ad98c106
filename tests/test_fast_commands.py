"""Commands that answer quickly (issue 25): the registries' cached listing (bench.plan.names) gives their
messages and follows the sources; warm ``list``, ``status`` and a refused model name import no torch;
``list`` fits 100 columns and filters; a dry run collapses rows, totals the budget and says what to prepare;
``status`` says the time left of a running cell. Speed itself is measured by benchmarks, not asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

import bench.plan.names as names
from bench.cli import main
from bench.data.catalog import check_dataset_name
from bench.errors import BenchError
from bench.metrics.detectors import check_detector
from bench.metrics.protocols import check_protocol
from bench.plan.specs import RunSpec
from bench.report.budgets import budget_row, table_text
from models.registry import check_model_name


@pytest.mark.parametrize(
    ("fast", "registry", "name"),
    [
        (names.check_model, check_model_name, "fastgn"), (names.check_model, check_model_name, "zzz"),
        (names.check_detector, check_detector, "effnet-lite"),
        (names.check_detector, check_detector, "torchscript:/no"),
        (names.check_protocol, check_protocol, "fid5k_ful"), (names.check_dataset, check_dataset_name, "emoji-face"),
        (names.check_dataset, check_dataset_name, "qqq"),
    ],
)  # fmt: skip
def test_cached_checks_give_the_registries_messages(fast, registry, name: str) -> None:
    with pytest.raises(Exception) as expected:
        registry(name)
    with pytest.raises(BenchError) as got:
        fast(name)
    assert str(got.value) == str(expected.value)


def test_the_cache_follows_the_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src" / "bench"
    src.mkdir(parents=True)
    (src / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(names, "ROOT", tmp_path / "src")
    monkeypatch.setattr(names, "SOURCES", ("bench",))
    monkeypatch.setenv(names.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(names, "_loaded", {})
    built = []
    monkeypatch.setattr(names, "_SECTIONS", {"models": ("not.imported", lambda: built.append(1) or {"m": {}})})
    assert list(names.registry()["models"]) == ["m"] and built == [1]
    names._loaded.clear()
    assert names.registry()["models"] == {"m": {}} and built == [1]  # read back from the file
    assert names.remembered("params", "k", lambda: [1, 2]) == [1, 2]
    assert names.remembered("params", "k", lambda: [3, 4]) == [1, 2]
    (src / "a.py").write_text("x = 22\n")  # a source changed: everything is counted again
    assert names.registry() and built == [1, 1] and names.remembered("params", "k", lambda: [3, 4]) == [3, 4]


def test_warm_commands_import_no_torch(tmp_path: Path, tiny_suite) -> None:
    bad = tiny_suite(text=tiny_suite().read_text().replace("[models.baseline]", "[models.fastgn]"))
    env = os.environ | {"PYTHONPATH": str(ROOT), names.CACHE_ENV: str(tmp_path / "cache")}
    for argv in (["list"], ["status", "--suite", "smoke", "--out", str(tmp_path)], ["--suite", str(bad), "--dry-run"]):
        code = f"import sys; from bench.cli import main; main({argv!r}); print('TORCH', 'torch' in sys.modules)"
        for _ in range(2):  # cold, then warm
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                                 timeout=600)  # fmt: skip
        assert res.stdout.splitlines()[-1] == "TORCH False", (argv, res.stdout[-500:], res.stderr[-2000:])
    assert "models.fastgn: unknown model 'fastgn'; did you mean fastgan," in res.stderr


def test_list_fits_100_columns_and_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    everything = capsys.readouterr().out
    assert max(len(line) for line in everything.splitlines()) <= 100
    for section in ("models", "datasets", "protocols", "detectors", "suites", "devices"):
        assert main(["list", section]) == 0
        out = capsys.readouterr().out
        assert out.startswith(section[:-1]) or out.startswith("device"), out[:80]
        assert out.strip() in everything
    assert main(["list", "models"]) == 0
    models = capsys.readouterr().out
    assert "  fastgan: official FastGAN code" in models and "32 px: G 1.36 M, D 0.21 M; smoke;" in models


def test_dry_run_collapses_datasets_totals_and_lists_what_to_prepare(tmp_path: Path, capsys) -> None:
    argv = ["--suite", "fewshot256", "--dry-run", "--speed-ratio", "0.5", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 6 and "| FastGAN (Baseline+Skip+decode) (5 hour)" in out and "all 5" in out
    assert "run_id" not in table[0] and " cap " not in table[0] and " it " not in table[0]  # empty: left out
    assert "total: 30 cells, 225 reference GPU-hours = 450 h of training here" in out
    assert "pre-run checks: 7 to fix before `run` starts" in out
    assert "run: python run_bench.py prepare --dataset obama --src PATH_TO_DOWNLOAD" in out
    assert "inception-v3 weights not found at" in out or os.environ.get("FEWSHOT_BENCH_INCEPTION")
    assert main([*argv, "--wide"]) == 0
    wide = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(wide) == 1 + 30 and "run_id" in wide[0]


def test_status_says_the_training_time_left_of_a_running_cell() -> None:
    spec = RunSpec(suite="s", model="fastgan", dataset="shapes", resolution=32, max_iters=100)
    device = {"type": "cpu", "name": "AMD EPYC", "threads": 2}
    running = {"status": "running", "device": device, "budget_fraction": 0.25, "train_seconds": 60.0, "step": 25}
    rows = [budget_row(spec, running, label="FastGAN"), budget_row(spec, {"status": "todo"}, label="FastGAN")]
    assert rows[0]["left_seconds"] == 180.0 and rows[1]["left_seconds"] is None
    text = table_text(rows, wide=True)
    assert "| left " in text and "~3 min" in text and "| FastGAN " in text


def test_the_cache_in_memory_is_the_current_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that points $FEWSHOT_BENCH_CACHE at another folder reads (and fills) that folder's file, not the
    document it read from the first one (the same sources key)."""
    monkeypatch.setattr(names, "_loaded", {})
    monkeypatch.setenv(names.CACHE_ENV, str(tmp_path / "a"))
    assert names.remembered("params", "k", lambda: [1]) == [1]
    monkeypatch.setenv(names.CACHE_ENV, str(tmp_path / "b"))
    assert not names.is_remembered("params", "k")
    assert names.remembered("params", "k", lambda: [2]) == [2]
    for folder, value in (("a", [1]), ("b", [2])):
        saved = json.loads((tmp_path / folder / "registry.json").read_text())
        assert saved["params"] == {"k": value} and "_file" not in saved
