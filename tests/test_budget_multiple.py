"""Suite rows named apart from their model (``model``, ``like``) and a row at a stated multiple of the suite's
compute budget (``budget_multiple``): its iterations, its label and budget words, the refused mixes, and the
report's treatment (set apart under a rule, never bold, still step-0 checked)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
from test_compute_budget import _cli, _suite

from bench.errors import SuiteError
from bench.launchers.pool import longest_first, planned_cost
from bench.plan.specs import RunSpec
from bench.plan.suites import Cell, Suite, filter_cells, load_suite
from bench.report import gain
from bench.report.render import APART_TITLE, caption, render_latex, render_markdown, table_csv
from bench.report.summary import _text
from bench.report.tables import build_table, row_keys
from bench.report.words import budget_words

X3 = '[models.baseline-x3]\nlike = "baseline"\nbudget_multiple = 3\n'
SMALL = '[models.small]\nmodel = "baseline"\nlabel = "Baseline (ngf 2)"\nkwargs = { recon = "mse", ngf = 2, ndf = 4 }\n'


def _load(tmp_path: Path, rows: str, **extra: str) -> Suite:
    fields = {"model_extra": ""} | extra
    path = Path(_suite(tmp_path, seconds=3.0, **fields))
    path.write_text(path.read_text() + rows)
    return load_suite(str(path))


def test_a_row_at_a_multiple_trains_that_many_times_the_budget(tmp_path: Path) -> None:
    suite = _load(tmp_path, X3)
    rows = {c.key: c for c in suite.cells}
    base, x3 = rows["baseline"].spec, rows["baseline-x3"].spec
    assert (x3.model, x3.model_kwargs) == (base.model, base.model_kwargs)  # `like`: the row's table, copied
    assert rows["baseline-x3"].label == "Baseline, 3× compute"
    assert x3.compute == base.compute | {"multiple": 3.0} and "multiple" not in base.compute
    assert x3.max_iters == math.ceil(3 * 3.0 / base.compute["step_s"]) and abs(x3.max_iters - 3 * base.max_iters) <= 2
    assert x3.run_id != base.run_id
    assert budget_words(suite.cells) == "compute budget 3 s of rtx-2080-ti per run (step-cost model; 3× that for " \
                                        "the rows set apart)"  # fmt: skip
    assert budget_words([c for c in suite.cells if c.key != "baseline-x3"]) == (
        "compute budget 3 s of rtx-2080-ti per run (step-cost model)"
    )


def test_pool_workers_take_the_longest_cells_first(tmp_path: Path) -> None:
    cells = _load(tmp_path, SMALL + X3).cells
    order = [c.key for c in longest_first(cells)]
    assert order[0] == "baseline-x3"  # 3x the budget: a pool worker starts it first, not last
    assert order[1:] == [c.key for c in cells if c.key != "baseline-x3"]  # ties keep the suite's order
    assert [planned_cost(c) for c in longest_first(cells)] == [9.0] + [3.0] * (len(cells) - 1)
    hours = load_suite("fewshot256").cells
    assert longest_first(hours) == hours  # equal budget hours: the suite's order


def test_dry_run_shows_the_multiple_in_label_and_budget(tmp_path: Path, capsys) -> None:
    path = str(_load(tmp_path, X3).path)
    code, stdout, _ = _cli(capsys, "run", "--suite", path, "--out", str(tmp_path / "r"), "--dry-run")
    line = next(x for x in stdout.splitlines() if "Baseline, 3× compute" in x)
    assert code == 0 and "3× 3 s of rtx-2080-ti / " in line
    assert "k× compute: a row at k times the suite's compute budget" in stdout


def test_one_model_in_two_rows_and_selecting_rows(tmp_path: Path) -> None:
    suite = _load(tmp_path, SMALL + X3)
    by_key = {c.key: c.spec for c in suite.cells}
    assert by_key["small"].model == by_key["baseline"].model == "baseline"
    assert by_key["small"].model_kwargs["ngf"] == 2 and by_key["small"].run_id != by_key["baseline"].run_id
    assert [c.key for c in filter_cells(suite, ["baseline"], None)] == ["baseline"]  # a row's key: that row
    assert [c.key for c in filter_cells(suite, ["baseline-x3", "small"], None)] == ["small", "baseline-x3"]
    no_key = dataclasses.replace(suite, cells=[c for c in suite.cells if c.key != "baseline"])
    assert [c.key for c in filter_cells(no_key, ["baseline"], None)] == ["small", "baseline-x3"]  # the model's rows


@pytest.mark.parametrize(
    ("rows", "extra", "expect"),
    [
        ('[models.b2]\nlike = "baseline"\nbudget_multiple = 0\n', {}, "models.b2.budget_multiple: must be a finite "),
        ('[models.b2]\nlike = "baseline"\nbudget_multiple = "4"\n', {}, "models.b2.budget_multiple: expected int or"),
        ('[models.b2]\nlike = "basline"\nbudget_multiple = 2\n', {}, "models.b2.like: 'basline' is not another row"),
        ('[models.b2]\nlike = "b2"\n', {}, "models.b2.like: 'b2' is not another row"),
        (X3 + '[models.b9]\nlike = "baseline-x3"\n', {}, "models.b9.like: models.baseline-x3 is itself a 'like' row"),
        ('[models.b2]\nmodel = "basline"\n', {}, "models.b2.model: unknown model 'basline'"),
        ('[models.b2]\nlike = "baseline"\n', {}, "models.b2.label: 'Baseline' is also models.baseline's label"),
        ('[models.b2]\nlike = "baseline"\nbudget_multipler = 2\n', {}, "models.b2.budget_multipler: unknown key"),
        ('[models.b2]\nlike = "baseline"\nlabel = "B2"\n', {}, "models.b2: the same runs as models.baseline"),
        ('[models.b2]\nlike = "baseline"\nbudget_multiple = 2\n', {"budget_extra": "", "seconds": "1"}, None),
    ],
)  # fmt: skip
def test_bad_rows_are_one_line_errors(tmp_path: Path, rows: str, extra: dict, expect: str | None) -> None:
    if expect is None:  # no compute budget: the multiple has nothing to multiply
        path = tmp_path / "iters.toml"
        path.write_text(Path(_suite(tmp_path)).read_text().replace("compute_seconds = 0.1", "max_iters = 4") + rows)
        expect = "models.b2.budget_multiple: multiplies a compute budget; set budget.compute_seconds"
    else:
        path = tmp_path / "bad.toml"
        path.write_text(Path(_suite(tmp_path)).read_text() + rows)
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    assert expect in str(info.value) and "\n" not in str(info.value) and str(path) in str(info.value)


STUDY = '[study]\n[[study.claims]]\nname = "x"\nbetter = "baseline"\nthan = "stylegan2-lite"\n'


@pytest.mark.parametrize(
    ("rows", "expect"),
    [
        (X3, "models.baseline-x3.budget_multiple: a [study] compares its rows at the suite's one budget"),
        (SMALL, "models.small: trains 'baseline' under another name; a [study] names each row by its model"),
        ('[models.b2]\nlike = "baseline"\nlabel = "B2"\n', "models.b2: trains 'baseline' under another name"),
    ],
)
def test_a_study_refuses_a_model_twice_or_a_multiple(tmp_path: Path, capsys, rows: str, expect: str) -> None:
    path = Path(_suite(tmp_path))
    path.write_text(path.read_text() + rows + STUDY)
    code, stdout, stderr = _cli(capsys, "run", "--suite", str(path), "--out", str(tmp_path / "r"), "--dry-run")
    assert code == 2 and stdout == "" and expect in stderr and len(stderr.strip().splitlines()) == 1
    path.write_text(Path(_suite(tmp_path)).read_text() + STUDY)  # the same study without the row: accepted
    assert load_suite(str(path)).study is not None


COMPUTE = {"budget_s": 20.0, "device": "rtx-2080-ti", "step_s": 0.04, "images_per_step": 8}


def _table_case(x4_start: float) -> tuple[Suite, pd.DataFrame]:
    """Baseline, FastGAN and 'FastGAN, 4× compute' (listed first), each evaluated at step 0 and twice after."""
    rows = [("fastgan-x4", "FastGAN, 4× compute", "fastgan", 4.0, (x4_start, 60.0, 20.0)),
            ("baseline", "Baseline", "baseline", 1.0, (100.0, 50.0, 40.0)),
            ("fastgan", "FastGAN", "fastgan", 1.0, (100.0, 60.0, 45.0))]  # fmt: skip
    cells, evals = [], []
    for key, label, model, k, values in rows:
        compute = COMPUTE | ({"multiple": k} if k != 1 else {})
        spec = RunSpec(suite="m", model=model, dataset="shapes", resolution=32, max_iters=math.ceil(k * 500),
                       budget_pin="iters", compute=compute, protocols=("fid200_full",))  # fmt: skip
        cells.append(Cell(spec, label, "", key))
        evals += [{"suite": "m", "run_id": spec.run_id, "model": model, "dataset": "shapes", "seed": 0,
                   "status": "done", "eval_point": p, "step": int(p * spec.max_iters), "metric": "fid200_full",
                   "kind": "fid", "value": v, "detector": "effnet-lite0", "detector_standard": False,
                   "mode": "clean", "num_gen": 200, "reference": "full", "weights": "ema"}
                  for p, v in zip((0.0, 0.5, 1.0), values, strict=True)]  # fmt: skip
    return Suite("m", Path("m.toml"), "", None, ["shapes"], cells), pd.DataFrame(evals)


def test_a_lone_rankable_value_is_not_marked_best() -> None:
    """FastGAN's runs missing: Baseline's 40 is compared with nothing (the 4x row is never ranked), so no bold."""
    suite, df = _table_case(100.0)
    table = build_table(suite, df[df.run_id != suite.cells[2].spec.run_id])
    md = render_markdown(table)
    assert table.best_rows(0) == set() and "**40**" not in md and "| 40 " in md


def test_the_report_sets_a_multiple_apart_and_never_ranks_it() -> None:
    suite, df = _table_case(100.0)
    assert [k[1] for k in row_keys(suite)] == ["Baseline", "FastGAN", "FastGAN, 4× compute"]  # set apart: last
    table = build_table(suite, df)
    assert [r.multiple for r in table.rows] == [1.0, 1.0, 4.0]
    assert table.best_rows(0) == {0}  # 20 at 4× the compute is lower, but never compared as an equal
    md = render_markdown(table)
    assert "**40**" in md and "**20**" not in md and "| 20 " in md
    lines = md.splitlines()
    apart = next(i for i, x in enumerate(lines) if APART_TITLE in x)
    assert lines[apart - 1].startswith("| FastGAN ") and "FastGAN, 4× compute" in lines[apart + 1]
    assert caption(table).endswith("bold: best per column among the rows at the suite's budget.")
    assert "3× that" not in table.budget and "4× that for the rows set apart" in table.budget
    tex = render_latex(table)
    assert "\\midrule\n\\textit{at other compute budgets" in tex and "\\mathbf{20}" not in tex
    csv = pd.read_csv(pd.io.common.StringIO(table_csv(table)))
    assert csv.set_index("label").loc["FastGAN, 4× compute", ["budget_multiple", "best"]].tolist() == [4.0, False]
    assert "set apart, at a multiple of it and never ranked: FastGAN, 4× compute: 80 s" in " ".join(table.notes)
    assert "never ranked with the others: FastGAN, 4× compute" in _text(table)


def test_the_step0_check_applies_to_a_multiple() -> None:
    suite, df = _table_case(21.0)  # 20 after 4× the compute is not clearly better than 21 at step 0
    table = build_table(suite, df)
    assert table.rows[2].cells[0].flat and not table.rows[0].cells[0].flat
    assert f"20 {gain.MARK}" in render_markdown(table)
