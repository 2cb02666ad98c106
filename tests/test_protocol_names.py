"""Former protocol names (issue 30: ``fid5k_full`` is now ``fid5k_full_clean``): read everywhere a name is
read, with one note per typed name per process (none for names read from results); the same run ids as before
the renaming; rows stored under a former name read, selected and compared as the same protocol as new rows."""

from __future__ import annotations

import re
import tomllib
import warnings
from pathlib import Path

import pytest
from conftest import TINY_SUITE
from test_report import FakeGenerator, evals, make_suite, spec_of, write_runs

import bench.report.imagery as report_imagery
import bench.report.tables as report_tables
from bench.cli import main
from bench.cli.listing import listing
from bench.errors import Renamed
from bench.plan import protocol_names
from bench.plan.protocol_names import RENAMED, current, current_metric
from bench.plan.specs import RunSpec
from bench.plan.suites import load_suite
from bench.report.selection import protocols_of
from bench.results.collect import collect
from bench.results.runs import RunPaths, append_eval_row, eval_rows

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process would: no former name noted yet."""
    monkeypatch.setattr(protocol_names, "_noted", set())


def _notes(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, Renamed)]


def test_a_former_name_gives_the_current_one_and_one_note_per_name() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [current("fid5k_full") for _ in range(3)] == ["fid5k_full_clean"] * 3
        assert current_metric("pr5k_full_precision") == "pr5k3_full_clean_precision"
        assert current_metric("pr5k_full_recall") == "pr5k3_full_clean_recall"
        assert current("fid2k_fastgan") == "fid2k_fastgan" and current("fid5k_full_clean") == "fid5k_full_clean"
        assert current_metric("pr5k3_full_clean_recall") == "pr5k3_full_clean_recall"
    notes = _notes(caught)
    assert len(notes) == 2 and "fid5k_full is now called fid5k_full_clean" in notes[0]
    assert "pr5k_full is now called pr5k3_full_clean" in notes[1]


def test_run_ids_are_those_made_before_the_renaming() -> None:
    """Ids computed by the code before the renaming (the same spec under the old names): runs keep their folders."""
    default = RunSpec(suite="x", model="fastgan", dataset="shapes", resolution=32)
    assert default.protocols == ("fid5k_full_clean",) and default.run_id == "fastgan-shapes-32-s0-306f61f13a"
    with pytest.warns(Renamed):
        old = RunSpec(suite="x", model="fastgan", dataset="shapes", resolution=32,
                      protocols=("fid200_full", "pr500_full", "fid2k_fastgan"))  # fmt: skip
    new = RunSpec(**old.to_dict())
    assert new.protocols == ("fid200_full_clean", "pr500_k3_full_clean", "fid2k_fastgan") == old.protocols
    assert old.run_id == new.run_id == "fastgan-shapes-32-s0-885a36cbc5"
    other = RunSpec(suite="x", model="fastgan", dataset="shapes", resolution=32, protocols=("fid1k_full_clean",))
    assert other.run_id != default.run_id  # another protocol is still another run


def test_an_old_name_in_a_suite_gives_the_note_and_the_same_runs(tmp_path: Path, capsys) -> None:
    paths = {}
    for tag, names in (
        ("old", '["fid200_full", "kid200_full"]'),
        ("new", '["fid200_full_clean", "kid200_full_clean"]'),
    ):
        paths[tag] = tmp_path / f"{tag}.toml"
        paths[tag].write_text(TINY_SUITE.format(name="tiny", iters=2, protocols=names))
    study = '\n[study]\nmetric = "kid200_full"\n'  # a former name in the study table too
    paths["old"].write_text(paths["old"].read_text() + study)
    with pytest.warns(Renamed):
        old = load_suite(str(paths["old"]))
    new = load_suite(str(paths["new"]))
    assert [c.spec.run_id for c in old.cells] == [c.spec.run_id for c in new.cells]
    assert old.cells[0].spec.protocols == ("fid200_full_clean", "kid200_full_clean") and old.study.metric == (
        "kid200_full_clean"
    )
    protocol_names._noted.clear()  # the command line in a new process
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Renamed)  # python -W error: still a note, not a traceback
        assert main(["--suite", str(paths["old"]), "--dry-run", "--out", str(tmp_path / "results")]) == 0
    err = capsys.readouterr().err.splitlines()
    notes = [line for line in err if line.startswith("note: ")]
    assert len(notes) == 2, err  # once per name, not per cell or per reader
    assert "fid200_full is now called fid200_full_clean" in notes[0] and "kid200_full_clean" in notes[1]


def test_rows_stored_under_a_former_name_are_selected_with_new_rows(tmp_path: Path) -> None:
    rows = [("", "FastGAN", "fastgan", 5.0, (0,)), ("", "StyleGAN2", "stylegan2-diffaug", 5.0, (0,))]
    suite = make_suite(rows, datasets=("obama",), paper_table=None)
    fastgan, stylegan2 = (spec_of(suite, m, "obama") for m in ("fastgan", "stylegan2-diffaug"))
    old = evals(fastgan, [50.0, 45.0], metric="fid5k_full")  # written before the renaming
    old += evals(fastgan, [0.6], metric="pr5k_full_precision", kind="pr")
    write_runs(suite, old + evals(stylegan2, [60.0, 55.0]), tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = collect(tmp_path, "mini")
    assert sorted(set(df["metric"])) == ["fid5k_full_clean", "pr5k3_full_clean_precision"]
    assert not _notes(caught)  # read from a results folder, not typed: renamed silently
    (protocol,) = protocols_of(df, "fid5k_full_clean")
    assert set(protocol.rows(df)["run_id"]) == {fastgan.run_id, stylegan2.run_id}
    table = report_tables.build_table(suite, df, states={})
    assert table.metric == "fid5k_full_clean"
    assert [r.cells[0].values for r in table.rows] == [(45.0,), (55.0,)]  # both rows, compared in one table
    paths = RunPaths.of(tmp_path, fastgan)
    row = eval_rows(paths)[-1]
    append_eval_row(paths, row)  # the same evaluation again under its new name: still one row
    assert len(eval_rows(paths)) == 3


def test_the_listing_shows_the_current_names_and_the_former_ones() -> None:
    text = listing("protocols")
    for old, new in RENAMED.items():
        assert f"  {new} " in text and f"was {old}" in text
    assert "fid2k_fastgan" in text and "legacy_tensorflow" in text


def test_the_readme_uses_the_current_names() -> None:
    """The README names protocols by their current names; a former name appears only in a paragraph about
    the renaming (beside stylegan2-ada's names or its new name)."""
    paragraphs = (ROOT / "README.md").read_text().split("\n\n")
    assert any("fid5k_full_clean" in p for p in paragraphs)
    for old, new in RENAMED.items():
        former = re.compile(rf"(?<![\w-]){old}(?!\w)")
        assert all(new in p or "stylegan2-ada" in p for p in paragraphs if former.search(p)), old


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_suites_use_the_current_names(path: Path) -> None:
    data = tomllib.loads(path.read_text())
    names = [*data.get("eval", {}).get("protocols", []), data.get("study", {}).get("metric", "")]
    assert not [n for n in names if isinstance(n, str) and n in RENAMED], path.name


def test_status_and_report_read_former_names_of_stored_runs_silently(
    tiny_suite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A run folder written before the renaming (spec.json and evals.jsonl under fid200_full): `status` and
    `report` read it as fid200_full_clean without a note (the note is for names a user types)."""
    path = tiny_suite(protocols='["fid200_full_clean"]')
    suite = load_suite(str(path))
    spec, out = suite.cells[0].spec, tmp_path / "results"
    write_runs(suite, evals(spec, [80.0, 61.0], metric="fid200_full_clean", standard=False), out)
    paths = RunPaths.of(out, spec)
    for stored in (paths.spec, paths.evals):
        stored.write_text(stored.read_text().replace("fid200_full_clean", "fid200_full"))
    monkeypatch.setattr(report_imagery, "load_generator", lambda run_dir, snapshot: FakeGenerator())
    capsys.readouterr()
    assert main(["status", "--suite", str(path), "--out", str(out)]) == 0
    assert main(["report", "--suite", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "note:" not in printed.err and "is now called" not in printed.out + printed.err
    assert "61.0" in printed.out
    table = (out / "tables" / "tiny-fid200_full_clean.md").read_text()
    assert re.search(r"\| 61\.0 +\|", table) and "**61.0**" not in table  # one row: compared with nothing, not bold
