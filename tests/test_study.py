"""Studies over seeds on synthetic result rows (no training): claims as data in a suite, the value taken
per run, cells with intervals and ties, comparisons, Holm-corrected verdicts, outputs and the figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image
from scipy import stats as sp

import bench.report.writer as report_writer
from bench.cli import main
from bench.cli.suite_commands import _print_results
from bench.errors import SuiteError
from bench.plan.suites import EXPERIMENTS, Suite, load_suite
from bench.report import stats
from bench.report.selection import protocols_of
from bench.report.study import build_study, run_values
from bench.report.study_render import render_latex, render_markdown, study_csv, study_files, verdict_text
from bench.results.collect import SPEC_COLUMNS
from bench.results.io import atomic_write_json
from bench.results.runs import RunPaths, append_eval_row, write_state

MODELS = {
    "baseline": "Baseline", "baseline-skip": "Baseline+Skip", "baseline-decode": "Baseline+decode",
    "fastgan": "FastGAN", "stylegan2-diffaug": "StyleGAN2", "biggan": "BigGAN",
}  # fmt: skip
POINTS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def write_suite(tmp_path: Path, study: str = "", datasets: str = '["emoji-faces"]', models: dict | None = None) -> Path:
    """A study suite of the paper's rows including the committed claims, plus ``study`` text."""
    tables = "".join(f'[models.{m}]\nlabel = "{label}"\n' for m, label in (models or MODELS).items())
    path = tmp_path / "study.toml"
    path.write_text(
        f'[suite]\nname = "st"\ninclude = ["{EXPERIMENTS / "_fastgan_claims.toml"}"]\nresolution = 32\n'
        f"datasets = {datasets}\nseeds = [0, 1, 2]\n[budget]\nmax_iters = 100\n"
        '[eval]\nprotocols = ["fid200_full_clean", "kid200_full_clean"]\ndetector = "effnet-lite0"\n'
        f"fractions = [0.2, 0.4, 0.6, 0.8, 1.0]\n{tables}{study}"
    )
    return path


def rows_of(suite: Suite, model: str, dataset: str, seed: int, values: list[float], **extra: Any) -> list[dict]:
    """Evaluation rows of one run: ``values`` at POINTS (the first is step 0), as collect gives them."""
    spec = next(c.spec for c in suite.cells if (c.spec.model, c.spec.dataset, c.spec.seed) == (model, dataset, seed))
    base = {"suite": suite.name, "run_id": spec.run_id, "model": model, "dataset": dataset, "seed": seed,
            "status": "done", "detector": "effnet-lite0", "detector_standard": False, "mode": "clean"}  # fmt: skip
    kid = {"metric": "kid200_full_clean", "kind": "kid"}
    return [
        base | {"eval_point": p, "kimg": 0.8 * p, "step": int(100 * p), "snapshot": f"snapshots/snap-{int(100 * p)}.pt",
                "metric": "fid200_full_clean", "kind": "fid",
                "value": v} | extra | m
        for p, v in zip(POINTS[-len(values) :], values, strict=True)
        for m in ({}, kid | {"value": v / 2000})
    ]  # fmt: skip


def curve(final: float) -> list[float]:
    """FID at POINTS falling from 300 to ``final``."""
    return [300 - (300 - final) * p for p in POINTS]


def frame(suite: Suite, finals: dict[str, list[float]]) -> pd.DataFrame:
    """Rows of every run on emoji-faces whose final FID ``finals`` gives (model -> per seed)."""
    return pd.DataFrame(
        [r for m, f in finals.items() for s, v in enumerate(f) for r in rows_of(suite, m, "emoji-faces", s, curve(v))]
    )


FINALS = {  # seed -> final FID on emoji-faces
    "baseline": [100.0, 104.0, 108.0],
    "baseline-skip": [98.0, 105.0, 110.0],  # overlaps Baseline: inconclusive
    "baseline-decode": [70.0, 72.0, 74.0],  # clearly below Baseline: supported
    "fastgan": [60.0, 62.0, 64.0],
    "stylegan2-diffaug": [40.0, 42.0, 44.0],  # clearly below FastGAN: contradicted
    "biggan": [90.0],  # seed 0 only: seed 1 pending, seed 2 diverged
}


@pytest.fixture
def study_case(tmp_path: Path) -> tuple[Suite, pd.DataFrame, dict[str, str]]:
    suite = load_suite(str(write_suite(tmp_path)))
    states = {c.spec.run_id: "done" for c in suite.cells}
    biggan = {c.spec.seed: c.spec.run_id for c in suite.cells if c.spec.model == "biggan"}
    states[biggan[1]], states[biggan[2]] = "todo", "diverged"
    return suite, frame(suite, FINALS), states


def test_the_committed_claims_are_the_papers_four(tmp_path: Path) -> None:
    study = load_suite(str(write_suite(tmp_path))).study
    assert study is not None and (study.selection, study.test, study.alpha) == ("last", "welch", 0.05)
    assert [(c.better, c.than) for c in study.claims] == [
        ("baseline-skip", "baseline"), ("baseline-decode", "baseline"), ("fastgan", "stylegan2-diffaug"),
        ("fastgan", "biggan"),
    ]  # fmt: skip
    assert study.pairs()[:3] == [
        ("baseline-skip", "baseline"), ("baseline-decode", "baseline-skip"), ("fastgan", "baseline-decode"),
    ]  # fmt: skip
    assert len(study.pairs()) == 6  # the claims' pairs not already on the ladder


def test_a_study_may_judge_on_precision(tmp_path: Path) -> None:
    path = write_suite(tmp_path, '[study]\nmetric = "pr500_k3_full_clean_recall"\n')
    path.write_text(path.read_text().replace('"kid200_full_clean"]', '"kid200_full_clean", "pr500_k3_full_clean"]'))
    assert load_suite(str(path)).study.metric == "pr500_k3_full_clean_recall"


def test_a_suite_without_study_has_none(tmp_path: Path) -> None:
    path = write_suite(tmp_path)
    path.write_text(path.read_text().replace("include", "# include"))
    assert load_suite(str(path)).study is None


@pytest.mark.parametrize(
    ("study", "expect"),
    [
        ('[[study.claims]]\nname = "x"\nbetter = "fastgan-x"\nthan = "baseline"\n',
         "study.claims[0].better: 'fastgan-x' is not a model of this suite; use one of its [models.<name>] keys"),
        ('[[study.claims]]\nname = "x"\nbetter = "fastgan"\nthan = "fastgan"\n', "better and than both name 'fastgan'"),
        ('[[study.claims]]\nname = "x"\nbetter = "fastgan"\n', "study.claims[0].than: missing (required)"),
        ('[[study.claims]]\nname = "x"\nbetter = "fastgan"\nthan = "biggan"\nwhy = 1\n', "claims[0].why: unknown key"),
        ('[[study.claims]]\nname = "a"\nbetter = "fastgan"\nthan = "biggan"\n' * 2, "'a' names another claim too"),
        ('[study]\nmetric = "fid5k_full_clean"\n', "study.metric: 'fid5k_full_clean' is not one of eval.protocols"),
        ('[study]\nselection = "mean-last-1"\n', "study.selection: 'mean-last-1'; use last, best or mean-last-K"),
        ('[study]\ntest = "wilcoxon"\n', "study.test: 'wilcoxon' not one of welch, paired"),
        ("[study]\nalpha = 0.5\n", "study.alpha: 0.5; use a level between 0 and 0.5"),
        ('[study]\nladder = ["baseline", "fastgn"]\n', "study.ladder: 'fastgn' is not a model of this suite"),
        ("[study]\nladder = 3\n", "study.ladder: expected list, got 3"),
        ('[study]\nclaim = []\n', "study.claim: unknown key; allowed: metric, selection"),
    ],
)  # fmt: skip
def test_bad_studies_are_refused_in_one_line(tmp_path: Path, study: str, expect: str) -> None:
    path = write_suite(tmp_path, study)  # claims given here replace the included ones
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert expect in message and "\n" not in message and str(path) in message


def test_values_per_run_by_selection(tmp_path: Path) -> None:
    """last: the final evaluation; mean-last-2: of the last two; best: the minimum (never step 0)."""
    suite = load_suite(str(write_suite(tmp_path)))
    df = pd.DataFrame(rows_of(suite, "fastgan", "emoji-faces", 0, [10.0, 80.0, 60.0, 50.0, 40.0, 44.0]))
    study = suite.study
    assert study is not None
    pick = {
        sel: run_values(protocols_of(df, "fid200_full_clean")[0].rows(df), "fid", type(study)(selection=sel))[
            "value"
        ].iloc[0]
        for sel in ("last", "mean-last-2", "best")
    }
    assert pick == {"last": 44.0, "mean-last-2": 42.0, "best": 40.0}


def test_verdicts_from_the_numbers(study_case) -> None:
    suite, df, states = study_case
    result = build_study(suite, df, states=states)
    verdicts = {c.claim.name: c for c in result.claims}
    assert [c.verdict for c in result.claims] == [
        stats.INCONCLUSIVE,
        stats.SUPPORTED,
        stats.CONTRADICTED,
        stats.INCONCLUSIVE,
    ]
    decode = verdicts["the self-supervised decoder helps"]
    # Baseline+decode − Baseline by hand: Δ = 72 − 104 = −32, s² = 4 and 16, se = √(4/3 + 16/3), Welch df
    se = math.sqrt(20 / 3)
    df_ws = (20 / 3) ** 2 / ((4 / 3) ** 2 / 2 + (16 / 3) ** 2 / 2)
    c = decode.pair.comparison
    assert c.diff == pytest.approx(-32.0) and c.df == pytest.approx(df_ws)
    assert (c.lo, c.hi) == pytest.approx((-32 - sp.t.ppf(0.975, df_ws) * se, -32 + sp.t.ppf(0.975, df_ws) * se))
    tested = [v for v in result.claims if v.pair.comparison.tested]
    assert len(tested) == 3 and all(v.family == 3 for v in result.claims)  # BigGAN's one seed: not tested
    assert decode.adjusted_p == pytest.approx(stats.holm([v.pair.comparison.p for v in tested])[1])
    skip = verdicts["skip-layer excitation helps"].pair.comparison
    assert skip.lo < 0 < skip.hi  # straddles zero: inconclusive
    biggan = verdicts["FastGAN beats BigGAN at equal compute"]
    assert biggan.pair.comparison.why == "1 seed on a side: no interval" and biggan.adjusted_p is None
    assert (biggan.pair.planned, biggan.pair.diverged) == ((3, 3), (0, 1))


def test_cells_ties_and_missing_seeds(study_case) -> None:
    suite, df, states = study_case
    table = build_study(suite, df, states=states).main
    cells = {r.model: r.cells[0] for r in table.rows}
    assert cells["fastgan"].values == {0: 60.0, 1: 62.0, 2: 64.0}
    s = cells["fastgan"].summary(0.05)
    assert s.half == pytest.approx(4.303 * 2 / math.sqrt(3), abs=1e-3)
    assert (cells["biggan"].n, cells["biggan"].planned, cells["biggan"].diverged) == (1, 3, 1)
    # StyleGAN2 has the best mean, but BigGAN's single seed cannot be told apart from it: a tie, no bold
    assert table.best[0].best == "stylegan2-diffaug" and table.best[0].tied == {"stylegan2-diffaug", "biggan"}
    md = render_markdown(build_study(suite, df, states=states))
    assert "| StyleGAN2       | 42 ± 2 [37, 47] n=3 (tie) " in md  # 200 images: whole FIDs (words.digits_for)
    assert "| BigGAN          | 90 1 seed: no interval; n=1/3, 1 diverged (tie) |" in md
    assert "†" not in md and md.count("**Non-standard detector** (effnet-lite0)") == 2  # one note per table
    assert not [line for line in md.splitlines() if line.startswith("|") and "**" in line]  # no winner, no bold


def test_a_clear_winner_is_bold(tmp_path: Path) -> None:
    models = {m: MODELS[m] for m in ("baseline", "baseline-skip", "baseline-decode", "fastgan")}
    path = write_suite(tmp_path, models=models)
    path.write_text(path.read_text().replace("include", "# include") + '[study]\nladder = ["baseline", "fastgan"]\n')
    suite = load_suite(str(path))
    finals = {"baseline": [100, 104, 108], "baseline-skip": [90, 95, 99], "baseline-decode": [80, 84, 85],
              "fastgan": [50, 52, 54]}  # fmt: skip
    df = frame(suite, finals)
    result = build_study(suite, df, states={c.spec.run_id: "done" for c in suite.cells})
    assert result.main.best[0].clear and result.claims == ()
    assert "| FastGAN         | **52 ± 2** [47, 57] n=3 |" in render_markdown(result)
    assert r"$\mathbf{52 \pm 2}$" in render_latex(result)
    assert "verdicts" not in verdict_text(suite, df).lower()  # no claims: nothing to print at the end of `run`


def test_outputs_say_what_the_numbers_are(study_case) -> None:
    suite, df, states = study_case
    result = build_study(suite, df, states=states)
    md, tex = render_markdown(result), render_latex(result)
    assert "- **Value per run:** each run's last evaluation within its budget." in md
    line = next(x for x in md.splitlines() if x.startswith("- the self-supervised decoder helps"))
    assert line.startswith("- the self-supervised decoder helps (Baseline+decode better than Baseline) on emoji-faces:")
    assert ": supported;" in line
    assert (
        "Δ FID (Baseline+decode − Baseline) = -32 [95% CI -40, -24]" in line and "Welch's unpaired t (df 2.9)" in line
    )
    assert "over 3 tests; rests on 3 vs 3 seeds." in line
    assert "beats BigGAN at equal compute (FastGAN better than BigGAN) on emoji-faces: inconclusive at this scale" in md
    assert "1 seed on a side: no interval; rests on 3 vs 1 of 3 seeds (1 diverged)." in md
    assert "### KID ×10³ (kid200_full_clean)" in md and r"\begin{tabular}" in tex and r"\item FastGAN beats" in tex
    csv = pd.read_csv(pd.io.common.StringIO(study_csv(result)))
    claims = csv[csv["section"] == "claim"]
    assert list(claims["verdict"]) == [c.verdict for c in result.claims]
    assert set(csv["section"]) == {"cell", "pair", "claim"}
    text = verdict_text(suite, df, states=states)
    assert text.startswith("verdicts (st, computed from the numbers over seeds 0, 1, 2):")
    assert text.count("\n  ") == 5 and text.endswith("\n  tuning: none declared: the rows run the settings the suite "
                                                    "states (`[study] tuned` and `tuning_seeds` say what was tuned "
                                                    "and on which other seeds).")  # fmt: skip


def test_a_paired_study_names_its_test(study_case, tmp_path: Path) -> None:
    suite, df, states = study_case
    paired = Suite(**{**suite.__dict__, "study": type(suite.study)(**{**suite.study.__dict__, "test": "paired"})})
    md = render_markdown(build_study(paired, df, states=states))
    assert "paired t on per-seed differences (df 2.0)" in md and "Welch" not in md.split("### Verdicts")[1]
    assert "1 seed finished by both rows: no interval" in md


def test_a_study_never_mixes_detectors(study_case) -> None:
    """Rows scored with another detector than the suite's are another protocol: never in the study's numbers."""
    suite, df, states = study_case
    df.loc[df["model"] == "fastgan", "detector"] = "inception-v3"
    table = build_study(suite, df, states=states).main
    fastgan = next(r for r in table.rows if r.model == "fastgan").cells[0]
    assert table.detectors == ("effnet-lite0",) and fastgan.values == {} and fastgan.unscored == 3


def test_report_writes_the_study_and_its_figure(study_case, tmp_path: Path) -> None:
    suite, df, states = study_case
    files = study_files(suite, df, states=states)
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    names = sorted(Path(name).name for name in files)
    assert names == ["st-study.csv", "st-study.md", "st-study.tex", "study_fid200_full_clean_emoji-faces.pdf",
                     "study_fid200_full_clean_emoji-faces.png"]  # fmt: skip
    with Image.open(tmp_path / "plots" / "st" / "study_fid200_full_clean_emoji-faces.png") as img:
        assert img.width > img.height > 300  # two panels: the ladder, FastGAN against the other rows
    hooked = report_writer.write_report(suite, df, tmp_path / "r", states=states, with_plots=False)
    assert tmp_path / "r" / "tables" / "st-study.md" in hooked  # `report` of a suite with [study]


def _write_runs(suite: Suite, df: pd.DataFrame, states: dict[str, str], out: Path) -> None:
    """Run folders as training leaves them (spec, state, evals.jsonl), for the real `report` and `run` output."""
    for cell in suite.cells:
        paths = RunPaths.of(out, cell.spec)
        atomic_write_json(paths.spec, {"spec": cell.spec.to_dict()})
        write_state(paths, status=states[cell.spec.run_id])
        for row in df[df["run_id"] == cell.spec.run_id].to_dict("records"):
            append_eval_row(paths, {k: v for k, v in row.items() if k not in SPEC_COLUMNS})  # collect adds those


def test_report_and_run_print_the_study(study_case, tmp_path: Path, capsys) -> None:
    """`report` of a suite with [study] writes the study from the run folders; the end of `run` prints
    one verdict line per claim and dataset."""
    suite, df, states = study_case
    _write_runs(suite, df, states, tmp_path)
    assert main(["report", "--suite", str(suite.path), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "tables" / "st-study.md") in printed
    assert str(tmp_path / "plots" / "st" / "study_fid200_full_clean_emoji-faces.png") in printed
    assert "the self-supervised decoder helps" in (tmp_path / "tables" / "st-study.md").read_text()
    study_md = (tmp_path / "tables" / "st-study.md").read_text()
    assert "note: --selection" not in printed
    assert main(["report", "--suite", str(suite.path), "--out", str(tmp_path), "--selection", "best"]) == 0
    note = "note: --selection best applies to the per-run tables; the study keeps its declared value per run "
    assert note + "([study] selection = 'last', fixed before its seeds ran)" in capsys.readouterr().out
    assert (tmp_path / "tables" / "st-study.md").read_text() == study_md  # the study's rule, not the flag's
    _print_results(suite, suite.cells, tmp_path, {c.spec.run_id: states[c.spec.run_id] for c in suite.cells})
    verdicts = capsys.readouterr().out.split("computed from the numbers over seeds 0, 1, 2):\n")[1].splitlines()[:4]
    assert [line.split(": ")[1].split(";")[0] for line in verdicts] == [
        "inconclusive at this scale",
        "supported",
        "contradicted",
        "inconclusive at this scale",
    ]


def test_a_finished_run_without_the_metric_is_named(study_case) -> None:
    suite, df, states = study_case
    pending = next(c.spec.run_id for c in suite.cells if (c.spec.model, c.spec.seed) == ("biggan", 1))
    result = build_study(suite, df, states=states | {pending: "done"})  # done, but no row of the metric
    assert "| BigGAN          | 90 1 seed: no interval; n=1/3, 1 diverged, 1 done without a value" in (
        render_markdown(result)
    )
    tex = render_latex(result, standalone=True)
    assert tex.startswith(r"\documentclass") and tex.endswith("\\end{document}\n")
