"""The table caption's data-driven notes: the compute budget every row got (and what it bought),
and the modules a resolution changes (FastGAN's skip-layer excitations), read from the models."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_report import evals
from test_study import FINALS, _write_runs, frame, write_suite

import bench.report.structure as structure
import bench.report.writer as report_writer
import models
from bench.plan import names
from bench.plan.specs import RunSpec
from bench.plan.suites import Cell, Suite, load_suite
from bench.report.budgets import budget_text, compute_note
from bench.report.stale import stale_changes, stale_runs
from bench.report.structure import structure_note
from bench.report.study_render import study_files
from bench.results.io import atomic_write_json
from bench.results.runs import RunPaths, write_state

TINY = {"recon": "mse", "ngf": 4, "ndf": 4, "batch_size": 2}


def _suite(resolution: int, model_names: tuple[str, ...] = ("baseline", "fastgan", "stylegan2-lite"), **spec) -> Suite:
    cells = [
        Cell(RunSpec(suite="n", model=m, dataset="shapes", resolution=resolution, max_iters=4,
                     model_kwargs=TINY if m != "stylegan2-lite" else dict(models.model_info(m).tiny), **spec),
             m.capitalize(), "")
        for m in model_names
    ]  # fmt: skip
    return Suite("n", Path("n.toml"), "", None, ["shapes"], cells)


def test_caption_names_the_sle_connections_a_small_resolution_changes() -> None:
    note = structure_note(_suite(32))
    assert note.startswith("Modules at this resolution: Baseline at 32 px: D SLE none (the paper's 256→32")
    assert "Fastgan at 32 px: G SLE 4→32 (4→32: this project's own; the paper's 4→64, 8→128, 16→256 do not" in note
    assert "Stylegan2-lite" not in note  # no SLE, nothing to say
    at64 = structure_note(_suite(64))
    assert "Fastgan at 64 px: G SLE 4→64 (the paper's 8→128, 16→256 do not fit at 64 px)" in at64
    assert "4→32" not in at64 and "G SLE" not in at64.split("Fastgan")[0]  # Baseline's G has none by design


@pytest.mark.parametrize("resolution", [256, 1024])
def test_no_note_where_the_modules_are_the_papers(resolution: int) -> None:
    assert structure_note(_suite(resolution, ("baseline", "fastgan"))) == ""


def test_compute_note_gives_the_budget_and_each_rows_iterations() -> None:
    compute = {"budget_s": 20.0, "device": "rtx-2080-ti", "step_s": 0.04, "images_per_step": 8}
    cells = [Cell(RunSpec(suite="n", model="baseline", dataset="shapes", resolution=32, max_iters=500,
                          budget_pin="iters", compute=compute, budget_scale=0.5), "Baseline", "")]  # fmt: skip
    assert compute_note(cells) == (
        "Compute budget per row: 10 s of rtx-2080-ti (step-cost model), i.e. Baseline 250 it (2 kimg)."
    )
    assert compute_note(_suite(32).cells) == ""


def test_the_modules_said_are_remembered_except_for_a_plugins_model(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(names.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(names, "_loaded", {})  # this process's copy of the cache: a fresh one
    built = []
    ask = structure._built
    monkeypatch.setattr(structure, "_built", lambda *a: built.append(a[0]) or ask(*a))
    first = structure_note(_suite(32))
    assert first.startswith("Modules at this resolution:") and len(built) == 3  # one build per row
    assert structure_note(_suite(32)) == first and len(built) == 3  # read back: no model built
    monkeypatch.setattr(names, "model_from_sources", lambda name: name != "fastgan")  # as if a plugin's
    assert structure_note(_suite(32)) == first and built[3:] == ["fastgan"]
    assert structure.built_facts("no-such-model", 32, {}) is None and built[-1] == "no-such-model"


def test_a_run_built_with_other_defaults_than_the_models_now_is_stale(tmp_path: Path) -> None:
    suite = _suite(32, ("baseline", "fastgan"))
    now = {}
    for cell in suite.cells:
        paths = RunPaths.of(tmp_path, cell.spec)
        hparams = structure.built_facts(cell.spec.model, 32, dict(cell.spec.model_kwargs))["hparams"]
        atomic_write_json(paths.spec, {"spec": cell.spec.to_dict(), "resolved": {"model_hparams": hparams}})
        now[cell.spec.model] = hparams
        write_state(paths, status="done", step=4)
    assert "stale" not in budget_text(suite.cells, tmp_path)  # built as the model is now
    paths = RunPaths.of(tmp_path, suite.cells[1].spec)
    old = now["fastgan"] | {"ema_beta": 0.5}
    old.pop("ngf")
    atomic_write_json(paths.spec, {"spec": suite.cells[1].spec.to_dict(), "resolved": {"model_hparams": old}})
    assert stale_changes(suite.cells[0].spec, tmp_path) == ""
    assert stale_changes(suite.cells[1].spec, tmp_path) == (
        f"ema_beta 0.5 → {now['fastgan']['ema_beta']!r}, ngf (none) → 4"
    )
    text = budget_text(suite.cells, tmp_path, wide=True)
    assert [line.count("| done (stale) |") for line in text.splitlines() if "| " in line][-2:] == [0, 1]
    assert "stale: 1 run(s) of fastgan built with other settings than fastgan's now (ema_beta 0.5 → " in text
    assert "move their run folders away and run the suite again" in text
    assert stale_changes(_suite(32, ("baseline",)).cells[0].spec, tmp_path / "elsewhere") == ""  # no run: not stale


def _built_as(suite: Suite, out: Path, changed: dict[str, dict]) -> None:
    """Run folders of ``suite`` done, each recording the hyper-parameters its model has now, updated by
    ``changed`` (model -> the settings it was built with that differ)."""
    for cell in suite.cells:
        paths = RunPaths.of(out, cell.spec)
        now = structure.built_facts(cell.spec.model, 32, dict(cell.spec.model_kwargs))["hparams"]
        hparams = now | changed.get(cell.spec.model, {})  # a new dict: the remembered facts stay as they are
        atomic_write_json(paths.spec, {"spec": cell.spec.to_dict(), "resolved": {"model_hparams": hparams}})
        write_state(paths, status="done", step=4)


def test_the_tables_mark_a_stale_cell_and_say_what_changed(tmp_path: Path) -> None:
    """As `status` shows 'done (stale)': the Markdown, LaTeX and CSV tables mark FastGAN's number with §
    and say under the table what changed and what to do; Baseline's (built as it is now) carries no mark. A stale
    number is never bold: FastGAN's 87 is lower than Baseline's 88, which is the column's best."""
    suite = _suite(32, ("baseline", "fastgan"))
    _built_as(suite, tmp_path, {"fastgan": {"ema_beta": 0.5}})
    df = pd.DataFrame([r for c in suite.cells for r in evals(c.spec, [90.0, 80.0 + len(c.spec.model)])])
    states = {c.spec.run_id: "done" for c in suite.cells}
    report_writer.write_report(suite, df, tmp_path, states=states, with_plots=False)
    md, tex = (tmp_path / "tables" / f"n-fid5k_full_clean.{ext}" for ext in ("md", "tex"))
    md, tex = md.read_text(), tex.read_text()
    assert "| Baseline     | **88**   |" in md and "| Fastgan      | 87 §     |" in md
    assert "- § stale: 1 run(s) of fastgan built with other settings than fastgan's now (ema_beta 0.5 → " in md
    assert "move their run folders away and run the suite again." in md
    assert r"Fastgan & $87$\S \\" in tex and r"\S{} stale: 1 run(s) of fastgan" in tex
    assert r"Baseline & $\mathbf{88}$ \\" in tex
    csv = pd.read_csv(tmp_path / "tables" / "n-fid5k_full_clean.csv")
    now = structure.built_facts("fastgan", 32, dict(suite.cells[1].spec.model_kwargs))["hparams"]["ema_beta"]
    assert list(csv["stale"].fillna("")) == ["", f"ema_beta 0.5 → {now!r}"]


def test_the_study_marks_a_stale_cell(tmp_path: Path) -> None:
    """A study's cell is marked § when a seed with a value ran with other model settings than the model's now."""
    suite = load_suite(str(write_suite(tmp_path)))
    states = {c.spec.run_id: "done" for c in suite.cells}
    df = frame(suite, FINALS)
    _write_runs(suite, df, states, tmp_path)
    spec = next(c.spec for c in suite.cells if (c.spec.model, c.spec.seed) == ("fastgan", 2))
    now = structure.built_facts("fastgan", 32, dict(spec.model_kwargs))["hparams"]
    atomic_write_json(RunPaths.of(tmp_path, spec).spec, {"spec": spec.to_dict(), "resolved": {"model_hparams": now | {
        "ema_beta": 0.5}}})  # fmt: skip
    files = study_files(suite, df, states=states, figures=False, stale=stale_runs(suite.cells, tmp_path))
    md, tex = (files[f"tables/st-study.{ext}"].decode() for ext in ("md", "tex"))
    fastgan = [line for line in md.splitlines() if line.startswith("| FastGAN ") and "n=3" in line]
    assert len(fastgan) == 2 and all(line.rstrip(" |").endswith("§") for line in fastgan)  # FID and KID tables
    assert not [line for line in md.splitlines() if "§" in line and line.startswith("| ") and "FastGAN" not in line]
    assert md.count("- § stale: 1 run(s) of fastgan built with other settings than fastgan's now (ema_beta 0.5") == 2
    assert tex.count(r"n=3}\S") == 2
    unread = study_files(suite, df, states=states, figures=False)["tables/st-study.md"].decode()
    assert "§" not in unread  # no stale runs given: nothing marked
