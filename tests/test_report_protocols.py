"""Published numbers only beside their own protocol, the step-0 check, and every paper suite row
printed beside the published row of its own model, recipe and protocol (issues 14 and 17)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from test_report import evals, make_suite, spec_of

import bench.report.render as report_render
import bench.report.tables as report_tables
import models
from bench.metrics import PROTOCOLS
from bench.plan.suites import list_suites, load_suite
from bench.report import gain
from bench.report.paper import load_paper_tables
from bench.report.summary import best_table
from bench.results.collect import SPEC_COLUMNS
from bench.results.io import atomic_write_json
from bench.results.runs import RunPaths, append_eval_row, write_state

ROWS = [("20 hour", "StyleGAN2", "stylegan2-diffaug", 20.0, (0,)), ("5 hour", "FastGAN", "fastgan", 5.0, (0,))]


def _both_protocols(suite, standard: bool = True) -> pd.DataFrame:
    rows = []
    for model, values in (("stylegan2-diffaug", [60.0, 50.0]), ("fastgan", [45.0, 44.0])):
        for metric in ("fid5k_full_clean", "fid2k_fastgan"):
            rows += evals(spec_of(suite, model, "obama"), values, metric=metric, standard=standard)
    return pd.DataFrame(rows)


def test_published_numbers_only_beside_their_protocol_and_detector() -> None:
    suite = make_suite(ROWS, datasets=("obama",))
    df = _both_protocols(suite)
    fid5k = report_render.render_markdown(report_tables.build_table(suite, df, metric="fid5k_full_clean", states={}))
    assert "| 46.87 " in fid5k and "+3.1" in fid5k  # StyleGAN2: DiffAugment's fid5k-train (one decimal at 5k)
    assert "41.05" not in fid5k  # FastGAN's numbers come from the FastGAN code's evaluation
    fid2k = report_render.render_markdown(report_tables.build_table(suite, df, metric="fid2k_fastgan", states={}))
    assert "| 41.05 " in fid2k and "| +3.0 " in fid2k and "46.87" not in fid2k
    for md in (fid5k, fid2k):  # the caption names the evaluation of every published row
        assert "StyleGAN2: fid5k_full_clean with inception-v3 (DiffAugment's fid5k-train" in md
        assert "Ours (Baseline+Skip+decode = FastGAN): fid2k_fastgan with inception-v3 (the FastGAN code's" in md
        assert "inferred: the paper does not state its FID protocol" in md

    offline = make_suite(ROWS, datasets=("obama",))  # the same suite scored with a non-standard detector
    offline.cells[:] = [replace(c, spec=replace(c.spec, detector="effnet-lite0")) for c in offline.cells]
    table = report_tables.build_table(offline, _both_protocols(offline, standard=False), metric="fid2k_fastgan")
    md = report_render.render_markdown(table)
    assert "41.05" not in md and "Δ" not in md.split("\n\n")[2]  # no published number, no difference
    none = "No published number is printed: none came from this table's protocol"
    assert f"{none} (fid2k_fastgan with inception-random)" in md

    df.loc[df["model"] == "fastgan", "detector_standard"] = False  # genuine-weights check failed for one cell
    standard, other = report_tables.build_tables(suite, df, metric="fid2k_fastgan", states={})
    assert [c.status for r in standard.rows for c in r.cells] == ["done", "missing"]  # never ranked together
    md = report_render.render_markdown(other)
    assert "41.05" not in md and "†" not in md and "Non-standard detector" in md
    assert "| 44.0 " in md and "**44.0**" not in md  # its one row there: compared with nothing, not bold


def _step0_case() -> tuple[object, pd.DataFrame]:
    rows = [("", "FastGAN", "fastgan", 5.0, (0,)), ("", "Baseline", "baseline", 5.0, (0, 1))]
    suite = make_suite(rows, datasets=("obama",), paper_table=None)
    points = [0.0, 0.5, 1.0]
    df = evals(spec_of(suite, "fastgan", "obama"), [400.0, 150.0, 100.0], points=points)  # learned
    df += evals(spec_of(suite, "baseline", "obama", 0), [90.0, 86.0, 85.0], points=points)  # lowest, but flat
    df += evals(spec_of(suite, "baseline", "obama", 1), [400.0, 90.0, 80.0], points=points)
    return suite, pd.DataFrame(df)


def test_step0_check_flags_models_no_better_than_untrained() -> None:
    suite, df = _step0_case()
    table = report_tables.build_table(suite, df, states={})
    fastgan, baseline = table.rows
    assert (fastgan.cells[0].mean, fastgan.cells[0].step0, fastgan.cells[0].flat) == (100.0, 400.0, False)
    assert baseline.cells[0].flat and baseline.cells[0].mean == 82.5 and baseline.cells[0].step0 == 245.0
    md = report_render.render_markdown(table)
    assert "**100**" in md and "82 ± 4 ‡" in md and "**82" not in md  # FID 80 at 5,000 images: no decimals
    assert gain.LEGEND in md and "never bold" in md
    frame = pd.read_csv(pd.io.common.StringIO(report_render.table_csv(table)))
    assert frame["clearly_better"].tolist() == [True, False] and frame["step0"].tolist() == [400.0, 245.0]
    assert r"82 \pm 4$\ddag" in report_render.render_latex(table)

    df.loc[(df["model"] == "fastgan") & (df["eval_point"] == 0.0), "value"] = 50.0  # step 0 lower than training
    table = report_tables.build_table(suite, df, states={})
    assert table.rows[0].cells[0].mean == 100.0 and table.rows[0].cells[0].flat  # step 0 is never selected


@pytest.mark.parametrize(
    ("value", "step0", "kind", "better"),
    [
        (100.0, 400.0, "fid", True), (380.0, 400.0, "fid", False), (360.0, 400.0, "fid", True),
        (410.0, 400.0, "fid", False), (0.001, 0.3, "kid", True), (0.29, 0.3, "kid", False),
        (0.5, 0.1, "pr", True), (0.12, 0.1, "pr", False), (0.05, 0.0, "kid", False),
    ],
)  # fmt: skip
def test_clearly_better_closes_a_tenth_of_the_gap_to_perfect(value: float, step0: float, kind: str, better: bool):
    assert gain.clearly_better(value, step0, kind) is better


def test_console_table_names_protocol_and_flags(tmp_path: Path) -> None:
    suite, df = _step0_case()
    for row in df.to_dict("records"):  # run folders as the loop leaves them (collect adds the spec columns)
        spec = next(c.spec for c in suite.cells if c.spec.run_id == row["run_id"])
        paths = RunPaths.of(tmp_path, spec)
        atomic_write_json(paths.spec, {"spec": spec.to_dict()})
        write_state(paths, status="done")
        append_eval_row(paths, {k: v for k, v in row.items() if k not in SPEC_COLUMNS} | {"eval_seed": 0})
    text = best_table(suite, suite.cells, tmp_path)
    assert "| FastGAN  | 100     |" in text and "| Baseline | 82 ‡    |" in text  # the suite's labels
    assert "protocol: fid5k_full_clean, detector inception-v3, mode clean" in text
    assert "sampling: BatchNorm batch (statistics: batch), generation batch 16 (baseline, fastgan)" in text
    assert gain.LEGEND in text


def test_paper_sources_name_registered_protocols_with_their_standard_detector() -> None:
    tables = load_paper_tables()
    sources = {r.source for t in tables.values() for r in t.rows}
    assert {s.key for s in sources} == {"diffaugment", "diffaugment-finetune", "fastgan-code"}
    for source in sources:
        assert source.detector == PROTOCOLS[source.protocol].standard_detector
        assert source.verified == (source.key == "diffaugment")  # only DiffAugment's numbers are confirmed
    assert tables["A"].row_for("stylegan2-diffaug", 20.0).source.protocol == "fid5k_full_clean"
    assert {r.source.protocol for k in "BCD" for r in tables[k].rows} == {"fid2k_fastgan"}


def _pinned_kimg(spec) -> dict[str, float] | None:
    return {spec.dataset: spec.max_kimg * spec.budget_scale} if spec.budget_pin == "kimg" else None


def _published_row(paper, spec):
    """The published row of the cell's model trained as long (hours, or pinned to the source runs' kimg)."""
    matches = [r for r in paper.rows if r.model == spec.model and r.same_length(spec.budget_hours, _pinned_kimg(spec))]
    return matches[0] if matches else None


@pytest.mark.parametrize("name", [n for n in list_suites() if load_suite(n).paper_table])
def test_every_paper_suite_row_is_its_published_rows_model_recipe_and_protocol(name: str) -> None:
    """Each suite row is printed beside the published row of its model (PaperTable.row_for): that row's
    recipe is the model's recipe, the suite computes that row's protocol with its detector, and every
    published row has a suite row (finetune rows with --init-from); rows without one say they are extra."""
    suite = load_suite(name, init_from="/checkpoints/source.pt")
    paper = load_paper_tables()[suite.paper_table]
    covered = set()
    for cell in suite.cells:
        row = _published_row(paper, cell.spec)
        if row is None:
            assert "not in the paper" in cell.label, f"{name}: {cell.label} ({cell.spec.model}) has no published row"
            continue
        covered.add(row.label)
        assert row.recipe in models.model_info(cell.spec.model).recipe, f"{name}: {cell.label}"
        assert row.source.protocol in cell.spec.protocols and cell.spec.detector == row.source.detector
        if row.aligned:
            assert paper.row_for(cell.spec.model, cell.spec.budget_hours, _pinned_kimg(cell.spec)) is row
    if any(c.spec.budget_pin for c in suite.cells):  # a length variant of a paper suite: the rows it pins
        assert covered and covered <= {r.label for r in paper.rows}
    else:
        assert covered == {r.label for r in paper.rows}


def test_the_recipe_check_rejects_a_row_from_another_recipe() -> None:
    """NVlabs' StyleGAN2 beside DiffAugment's numbers, or the DiffAugment recipe beside FastGAN's, would fail."""
    paper = load_paper_tables()["A"]
    assert paper.row_for("stylegan2-diffaug", 20.0).recipe not in models.model_info("stylegan2").recipe
    assert paper.row_for("fastgan", 5.0).recipe not in models.model_info("stylegan2-diffaug").recipe
