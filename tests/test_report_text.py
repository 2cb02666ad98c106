"""How the report writes numbers (synthetic rows, no training): a minus sign in a study's LaTeX text, never a
hyphen (its Markdown keeps the hyphen-minus the other tables print); a difference that rounds to zero at the
table's digits is '0', without a sign."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from test_report import golden_case
from test_study import FINALS, frame, write_suite

import bench.report.tables as report_tables
from bench.plan.suites import Suite, load_suite
from bench.report import render
from bench.report.study import StudyResult, build_study
from bench.report.study_render import render_latex, render_markdown
from bench.report.words import fmt_signed

SMALL_KID = {  # seed -> final FID (KID = FID / 2000): FastGAN's KID interval reaches below zero
    "baseline": [100.0, 104.0, 108.0],
    "baseline-skip": [98.0, 105.0, 110.0],
    "baseline-decode": [70.0, 72.0, 74.0],
    "fastgan": [2.0, 10.0, 30.0],
    "stylegan2-diffaug": [40.0, 42.0, 44.0],
    "biggan": [90.0],
}


@pytest.fixture
def small_kid(tmp_path: Path) -> tuple[Suite, pd.DataFrame, StudyResult]:
    """The study suite, its rows and its result over :data:`SMALL_KID`, every run done."""
    suite = load_suite(str(write_suite(tmp_path)))
    df = frame(suite, SMALL_KID)
    return suite, df, build_study(suite, df, states={c.spec.run_id: "done" for c in suite.cells})


def _text_mode(tex: str) -> str:
    """The LaTeX outside math mode (``$...$``) and comments."""
    lines = [line for line in tex.splitlines() if not line.startswith("%")]
    return re.sub(r"\$[^$]*\$", " ", "\n".join(lines))


def test_negative_numbers_in_latex_text_are_minus_signs(small_kid) -> None:
    result = small_kid[2]
    tex = render_latex(result)
    hyphens = re.findall(r"(?<![\w-])-\d[\d.]*", _text_mode(tex))
    assert not hyphens, hyphens  # verdicts, comparisons and cell intervals
    decode = next(line for line in tex.splitlines() if line.startswith(r"\item the self-supervised decoder helps"))
    assert r"(Baseline+decode $-$ Baseline) = $-$32.0 [95\% CI $-$40.3, $-$23.7]" in decode
    assert r"{\scriptsize [$-$" in tex  # FastGAN's KID interval below zero
    md = render_markdown(result)
    assert "(Baseline+decode − Baseline) = -32.0 [95% CI -40.3, -23.7]" in md  # as the other Markdown tables


@pytest.mark.parametrize(
    ("value", "kind", "digits", "text"),
    [
        (0.33, "fid", 0, "0"), (-0.2, "fid", 0, "0"), (-0.6, "fid", 0, "-1"), (0.6, "fid", 0, "+1"),
        (0.04, "fid", 1, "0.0"), (-46.2, "fid", 0, "-46"), (-0.00004, "kid", 1, "0.0"), (0.0012, "kid", 1, "+1.2"),
    ],
)  # fmt: skip
def test_a_difference_that_rounds_to_zero_has_no_sign(value: float, kind: str, digits: int, text: str) -> None:
    assert fmt_signed(value, kind, digits) == text


def test_a_verdict_of_a_difference_below_the_digits_prints_zero(tmp_path: Path) -> None:
    """Baseline+Skip − Baseline = 104.33 − 104 at whole-number digits (200 images): '0', not '+0'."""
    suite = load_suite(str(write_suite(tmp_path)))
    result = build_study(suite, frame(suite, FINALS), states={c.spec.run_id: "done" for c in suite.cells})
    assert result.main.digits == 0
    md, tex = render_markdown(result), render_latex(result)
    assert "(Baseline+Skip − Baseline) = 0 [95% CI -12, 13]" in md
    assert re.search(r"\| Baseline\+Skip − Baseline +\| emoji-faces \| 0 +\|", md)
    assert md.count("a difference (Δ) at the same digits, signed; one that rounds to zero is printed 0") == 1
    assert r"(Baseline+Skip $-$ Baseline) = 0 [95\% CI $-$12, 13]" in tex


def test_a_difference_from_the_paper_below_the_digits_prints_zero() -> None:
    """StyleGAN2 on obama 46.89 against the published 46.87 at one decimal: Δ '0.0', not '+0.0'."""
    suite, df, states = golden_case()
    stylegan2 = df["model"] == "stylegan2-diffaug"
    df.loc[stylegan2, "value"] = df.loc[stylegan2, "value"] - 55.5 + 46.89  # its best evaluation: 46.89
    table = report_tables.build_table(suite, df, states=states)
    delta = next(line for line in render.display_lines(table) if line.role == "delta")
    assert table.digits == 1 and delta.cells[0].text == "0.0"
    assert r"\quad $\Delta$ (ours $-$ paper) & $0.0$ & -- \\" in render.render_latex(table)
