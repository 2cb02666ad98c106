"""How a study's numbers are written (synthetic rows, no training): a minus sign in LaTeX text, never a
hyphen; the Markdown keeps the hyphen-minus the other tables print."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from test_study import frame, write_suite

from bench.plan.suites import Suite, load_suite
from bench.report.study import StudyResult, build_study
from bench.report.study_render import render_latex, render_markdown

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
