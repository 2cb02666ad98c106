"""One protocol per number (issue 25): rows of two detectors in one run make two tables, never one;
the step-0 check, the curves and the status summary each use one protocol; re-scoring finished runs with
a second detector leaves the first table byte-identical and writes a table of its own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_SUITE
from PIL import Image
from test_report import FakeGenerator, evals, make_suite, spec_of, write_runs

import bench.report.draw as report_draw
import bench.report.figures as report_figures
import bench.report.imagery as report_imagery
import bench.report.render as report_render
import bench.report.tables as report_tables
import bench.report.writer as report_writer
from bench.cli import main
from bench.metrics.protocols import PROTOCOLS, register_protocol
from bench.plan.studies import Study
from bench.report.selection import mixed_runs, protocols_of
from bench.report.summary import best_table
from bench.results.collect import collect

ROWS = [("", "FastGAN", "fastgan", 5.0, (0,)), ("", "StyleGAN2", "stylegan2-diffaug", 5.0, (0,))]
TINY_FID = "fid16_full"  # 16 generated images: the CLI test's evaluations take a second


def _scored(suite, detector: str, sha: str, values: dict[str, list[float]]) -> list[dict]:
    """Rows of each model's run (step 0, half, end) scored with ``detector`` (weights ``sha``)."""
    rows = []
    for model, vals in values.items():
        for row in evals(spec_of(suite, model, "obama"), vals, points=[0.0, 0.5, 1.0], standard=False):
            rows.append(row | {"detector": detector, "detector_sha256": sha})
    return rows


def _two_detectors() -> tuple[object, pd.DataFrame, pd.DataFrame]:
    suite = make_suite(ROWS, datasets=("obama",), paper_table=None)
    suite.cells[:] = [c.__class__(c.spec.__class__(**(c.spec.to_dict() | {"detector": "effnet-lite0"})), c.label,
                                  c.group) for c in suite.cells]  # fmt: skip
    values = {"fastgan": [400.0, 250.0, 240.0], "stylegan2-diffaug": [330.0, 360.0, 390.0]}
    first = _scored(suite, "effnet-lite0", "aa" * 32, values)
    values = {"fastgan": [300.0, 90.0, 80.0], "stylegan2-diffaug": [300.0, 70.0, 60.0]}
    second = _scored(suite, "torchscript:/x/inception.pt", "bb" * 32, values)
    return suite, pd.DataFrame(first), pd.DataFrame(first + second)


def test_a_second_detectors_rows_make_their_own_table_and_leave_the_first_unchanged(tmp_path: Path) -> None:
    suite, first, both = _two_detectors()
    alone = report_writer.write_report(suite, first, tmp_path / "a", states={}, with_plots=False)
    mixed = report_writer.write_report(suite, both, tmp_path / "b", states={}, with_plots=False)
    assert [p.read_bytes() for p in alone] == [p.read_bytes() for p in mixed[:3]]  # byte-identical
    assert [p.name for p in alone] == [
        "mini-fid5k_full_clean.tex",
        "mini-fid5k_full_clean.md",
        "mini-fid5k_full_clean.csv",
    ]
    own = [p.name for p in mixed[3:]]
    assert len(own) == 3 and all(
        n.startswith("mini-fid5k_full_clean-torchscript_inception-") for n in own
    )  # its detector in the name
    md = mixed[4].read_text()
    assert "| **60.0** " in md and "80.0 " in md and "240" not in md  # its own numbers only, its own ranking
    assert "fid5k_full_clean with torchscript:inception.pt" in md  # the caption names the detector, not its path
    main_md = mixed[1].read_text()
    assert "| **240** " in main_md and "360 ‡" in main_md  # min over detectors would be 80 and 60


def test_step0_check_and_status_use_the_tables_protocol(tmp_path: Path) -> None:
    suite, _, both = _two_detectors()
    tables = report_tables.build_tables(suite, both, states={})
    assert [t.key.detector for t in tables] == ["effnet-lite0", "torchscript:/x/inception.pt"]
    assert [c.flat for r in tables[0].rows for c in r.cells] == [False, True]  # StyleGAN2 360 vs its 330
    assert [c.flat for r in tables[1].rows for c in r.cells] == [False, False]  # 60 vs its own step 0 (300)
    assert [c.step0 for r in tables[1].rows for c in r.cells] == [300.0, 300.0]
    write_runs(suite, both.to_dict("records"), tmp_path)
    text = best_table(suite, suite.cells, tmp_path)
    assert "| FastGAN   | 240     |" in text and "| StyleGAN2 | 360 ‡   |" in text
    assert "also scored with: torchscript:inception.pt" in text and "80.0" not in text


def test_protocols_order_the_suites_detector_first_and_a_run_of_two_samplings_gives_no_number() -> None:
    suite, _, both = _two_detectors()
    found = protocols_of(both, "fid5k_full_clean", declared=["torchscript:/x/inception.pt"])
    assert [p.detector for p in found] == ["torchscript:/x/inception.pt", "effnet-lite0"]
    changed = both.copy()
    changed.loc[(changed["model"] == "fastgan") & (changed["eval_point"] == 1.0), "gen_batch"] = 64
    assert mixed_runs(found[1].rows(changed)) == {spec_of(suite, "fastgan", "obama").run_id}
    table = report_tables.build_tables(suite, changed, states={})[0]
    assert table.rows[0].cells[0].status == "mixed" and table.rows[1].cells[0].status == "done"
    assert "mixed protocol" in report_render.render_markdown(table)


@pytest.fixture
def tiny_fid() -> None:
    if TINY_FID not in PROTOCOLS:
        register_protocol(TINY_FID, "fid", 16)


def test_rescoring_a_finished_suite_with_a_second_detector(tiny_suite, tmp_path: Path, tiny_fid, capsys) -> None:
    """The issue's case through the command line: run, report, `eval --detector` every run with another
    detector, report again: the first tables are byte-identical, the new detector's are new files."""
    images = tmp_path / "images"  # 8 reference images: the detectors see 8 + 16 per evaluation
    images.mkdir()
    for i in range(8):
        Image.effect_noise((32, 32), 40 + 10 * i).convert("RGB").save(images / f"{i}.png")
    text = TINY_SUITE.format(name="tiny", iters=2, protocols=f'["{TINY_FID}"]').replace(
        '["shapes"]', f'["folder:{images}"]'
    )
    suite = str(tiny_suite(text=text.replace("fractions = [0.5, 1.0]", "fractions = [1.0]")))
    out, tables = tmp_path / "results", tmp_path / "results" / "tables"
    assert main(["--suite", suite, "--out", str(out), "--no-progress"]) == 0
    assert main(["report", "--suite", suite, "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in tables.iterdir()}
    (run,) = (out / "runs" / "tiny").iterdir()
    assert main(["eval", "--run", str(run), "--detector", "effnet-lite0", "--out", str(out)]) == 0
    assert main(["report", "--suite", suite, "--out", str(out)]) == 0
    after = {p.name: p.read_bytes() for p in tables.iterdir()}
    assert {n: after[n] for n in before} == before
    new = sorted(set(after) - set(before))
    assert [n.rsplit(".", 1)[1] for n in new] == ["csv", "md", "tex"]
    assert all(n.startswith(f"tiny-{TINY_FID}-effnet-lite0-") for n in new)
    assert f"{TINY_FID} with effnet-lite0" in after[new[1]].decode()
    capsys.readouterr()
    assert main(["status", "--suite", suite, "--out", str(out)]) == 0
    assert "also scored with: effnet-lite0" in capsys.readouterr().out
    assert len(collect(out, "tiny")["detector"].unique()) == 2
    # told otherwise: no run was made with effnet-lite0, so the suite's runs are shown by its rows
    assert main(["status", "--suite", suite, "--out", str(out), "--detector", "effnet-lite0"]) == 0
    assert f"protocol: {TINY_FID}, detector effnet-lite0" in capsys.readouterr().out
    assert main(["report", "--suite", suite, "--out", str(out), "--detector", "effnet-lite0"]) == 0
    assert {p.name: p.read_bytes() for p in tables.iterdir()} == after  # the same files, rewritten alike


@pytest.mark.parametrize(
    ("study", "rule", "step"),
    [(None, "best", "step 200"), (Study(), "last", "step 300"), (Study(selection="mean-last-2"), "last", "step 300")],
)
def test_the_samples_figure_shows_and_names_the_suites_selection(
    study: Study | None, rule: str, step: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study suite selects each run's last evaluation (its [study] selection): the samples figure shows
    that evaluation's grid and says so; another suite's follows the tables (best by default)."""
    suite = replace(make_suite(ROWS[:1], datasets=("obama",), paper_table=None), study=study)
    write_runs(suite, evals(spec_of(suite, "fastgan", "obama"), [50.0, 45.0, 48.0]), tmp_path)
    titles: list[tuple[str, list[str]]] = []
    panels_figure = report_draw.panels_figure
    monkeypatch.setattr(report_draw, "panels_figure", lambda panels, title: titles.append(
        (title, [label for label, _ in panels])) or panels_figure(panels, title=title))  # fmt: skip
    monkeypatch.setattr(report_imagery, "load_generator", lambda run_dir, snapshot: FakeGenerator())
    df = collect(tmp_path, "mini")
    report_figures.render_plots(suite, df, [report_tables.build_table(suite, df, states={})], tmp_path)
    title, labels = next((t, labels) for t, labels in titles if t.startswith("mini on obama"))
    assert f"each model's {rule} evaluation (lowest seed)" in title
    assert any(label.endswith(f"at {step}") for label in labels), labels
