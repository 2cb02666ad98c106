"""A study's protocol on synthetic rows (no training): `--seeds` in place of the suite's seeds, tuning
only on other seeds (stated, and refused when it overlaps), the evaluation's spread beside the one
over seeds, and the device pool leaving the closing results to its parent."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
from test_cli import _image_folder
from test_study import FINALS, _write_runs, curve, frame, rows_of, write_suite

import bench.report.writer as report_writer
from bench.cli import main
from bench.errors import BenchError, SuiteError
from bench.launchers.pool import WORKER_FLAG, worker_argv, worker_env
from bench.plan.suites import load_suite
from bench.report.selection import protocols_of
from bench.report.study import build_study
from bench.report.study_render import render_latex, render_markdown, study_csv, verdict_text
from bench.report.study_spread import Spread, spreads
from bench.results.collect import collect, collect_eval_noise
from bench.results.runs import RunPaths

SPEC_KEYS = ["suite", "run_id", "model", "dataset", "seed"]  # collect_eval_noise adds them from the run's spec
TUNED = '[study]\ntuned = "BigGAN learning rates, on final FID"\ntuning_seeds = [101, 102]\n'


def _states(suite) -> dict[str, str]:
    return {c.spec.run_id: "done" for c in suite.cells}


def test_seeds_replace_the_suites_and_the_verdicts_count_them(tmp_path: Path) -> None:
    path = write_suite(tmp_path)
    planned, other = load_suite(str(path)), load_suite(str(path), seeds=(1, 2))
    assert {c.spec.seed for c in other.cells} == {1, 2} and len(other.cells) == 2 * len(planned.cells) // 3
    ids = {c.spec.run_id for c in planned.cells}
    assert {c.spec.run_id for c in other.cells} <= ids  # the same run of seed 1 either way: resumable, shared
    df = frame(planned, FINALS)  # rows of seeds 0, 1, 2; the study over --seeds 1,2 reads seeds 1 and 2 only
    result = build_study(other, df, states=_states(other))
    assert result.main.seeds == (1, 2)
    fastgan = next(r for r in result.main.rows if r.model == "fastgan").cells[0]
    assert fastgan.values == {1: 62.0, 2: 64.0}
    text = verdict_text(other, df, states=_states(other))
    assert text.startswith("verdicts (st, computed from the numbers over seeds 1, 2):")
    assert text.count("rests on 2 vs 2 seeds.") == 3 and "(2 vs 0 of 2 seeds)." in text  # BigGAN: seed 0 only
    assert "- **Seeds:** 1, 2 (`--seeds` reruns with others)." in render_markdown(result)


@pytest.mark.parametrize(
    ("seeds", "expect"),
    [((1, 1), "--seeds: 1 listed twice; list each seed once"), ((2**32,), "--seeds: expected integers from 0 to")],
)
def test_bad_seeds_are_one_line(tmp_path: Path, seeds: tuple[int, ...], expect: str) -> None:
    with pytest.raises(SuiteError, match=expect):
        load_suite(str(write_suite(tmp_path)), seeds=seeds)


def test_cli_seeds_reach_status_and_report(tmp_path: Path, capsys) -> None:
    path = write_suite(tmp_path)
    suite = load_suite(str(path))
    states = _states(suite)
    _write_runs(suite, frame(suite, FINALS), states, tmp_path)
    assert main(["status", "--suite", str(path), "--out", str(tmp_path), "--seeds", "2"]) == 0
    shown = capsys.readouterr().out
    assert "-s2-" in shown and "-s0-" not in shown and "-s1-" not in shown
    assert main(["report", "--suite", str(path), "--out", str(tmp_path), "--seeds", "1,2"]) == 0
    md = (tmp_path / "tables" / "st-study.md").read_text()
    assert "over 2 seeds" in md and "rests on 2 vs 2 seeds." in md and "rests on 3 vs 3 seeds." not in md
    assert main(["run", "--suite", str(path), "--out", str(tmp_path), "--seeds", "1,1", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--seeds: 1 listed twice; list each seed once" in err and "\n" not in err


def test_tuning_is_stated_beside_the_verdicts(tmp_path: Path) -> None:
    suite = load_suite(str(write_suite(tmp_path, TUNED)))
    assert (suite.study.tuned, suite.study.tuning_seeds) == ("BigGAN learning rates, on final FID", (101, 102))
    assert len(suite.study.claims) == 4  # the included claims stay beside the including file's [study] keys
    df = frame(suite, FINALS)
    result = build_study(suite, df, states=_states(suite))
    said = "BigGAN learning rates, on final FID; on seeds 101, 102, none of them a seed of this study."
    assert f"- **Tuning:** {said}" in render_markdown(result)
    tex = render_latex(result)
    assert "tuning: " + said in tex.replace("\n", " ") and "`" not in tex  # code spans as \texttt
    assert r"\textbf{Seeds:} 0, 1, 2 (\texttt{-{}-{}seeds} reruns with others)." in tex
    assert verdict_text(suite, df).splitlines()[-1] == f"  tuning: {said}"
    plain = build_study(load_suite(str(write_suite(tmp_path))), df)
    assert "**Tuning:** none declared" in render_markdown(plain)


@pytest.mark.parametrize(
    ("study", "seeds", "expect"),
    [
        (TUNED.replace("101, 102", "2, 101"), None, "study.tuning_seeds: 2 also a seed of the study (suite.seeds)"),
        (TUNED, (101, 5), "study.tuning_seeds: 101 also a seed of the study (--seeds)"),
        (TUNED.replace("tuning_seeds = [101, 102]\n", ""), None, "study.tuned and study.tuning_seeds: give both"),
        (TUNED.replace("[101, 102]", "[-1]"), None, "study.tuning_seeds: expected a list of non-negative integers"),
    ],
)  # fmt: skip
def test_tuning_on_the_studys_own_seeds_is_refused(
    tmp_path: Path, study: str, seeds: tuple[int, ...] | None, expect: str
) -> None:
    path = write_suite(tmp_path, study)
    with pytest.raises(SuiteError) as info:
        load_suite(str(path), seeds=seeds)
    assert expect in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_the_evaluation_spread_by_hand() -> None:
    s = Spread("fastgan", "emoji-faces", "r", (60.0, 61.0, 59.0), seed_std=2.0, seeds=3)
    assert s.eval_std == pytest.approx(1.0) and s.training_std == pytest.approx(math.sqrt(3.0))
    assert Spread("a", "d", "r", (60.0, 64.0), seed_std=1.0, seeds=3).training_std == 0.0  # evaluation explains all
    assert Spread("a", "d", "r", (60.0,), seed_std=1.0, seeds=3).training_std is None


def _noise(suite, model: str, values: list[float]) -> pd.DataFrame:
    """Re-scorings of seed 0's final snapshot, as collect_eval_noise gives them."""
    final = [r for r in rows_of(suite, model, "emoji-faces", 0, curve(FINALS[model][0])) if r["eval_point"] == 1.0]
    return pd.DataFrame(
        [r | {"value": v if r["kind"] == "fid" else v / 2000, "rescored": True} for v in values for r in final]
    )


def test_the_study_sets_the_evaluation_spread_beside_the_seeds(tmp_path: Path) -> None:
    suite = load_suite(str(write_suite(tmp_path)))
    df = frame(suite, FINALS)
    noise = _noise(suite, "fastgan", [61.0, 59.5])
    key = protocols_of(df, "fid200_full_clean")[0]
    (one,) = spreads(key, df, noise, {("fastgan", "emoji-faces"): (2.0, 3)})
    assert one.evaluations == (60.0, 61.0, 59.5) and one.eval_std == pytest.approx(statistics.stdev([60, 61, 59.5]))
    result = build_study(suite, df, states=_states(suite), noise=noise)
    assert [x.model for x in result.spread] == ["fastgan"] and result.spread[0].seed_std == pytest.approx(2.0)
    md = render_markdown(result)
    assert "### Evaluation against training spread (fid200_full_clean)" in md
    row = next(line for line in md.splitlines() if line.startswith("| FastGAN ") and "emoji-faces" in line)
    assert "0.8 (n=3)" in row and "2.0 (n=3)" in row and "1.8" in row  # √(4 − 0.58): the training part
    csv = pd.read_csv(pd.io.common.StringIO(study_csv(result)))
    assert csv[csv["section"] == "spread"]["n"].tolist() == [3]


def test_report_reads_the_re_scored_snapshots(tmp_path: Path) -> None:
    suite = load_suite(str(write_suite(tmp_path)))
    df = frame(suite, FINALS)
    _write_runs(suite, df, _states(suite), tmp_path)
    cell = next(c for c in suite.cells if (c.spec.model, c.spec.seed) == ("fastgan", 0))
    rows = _noise(suite, "fastgan", [61.0, 59.5]).drop(columns=[*SPEC_KEYS, "status"])
    noise_file = RunPaths.of(tmp_path, cell.spec).eval_noise
    noise_file.write_text("".join(json.dumps(r) + "\n" for r in rows.to_dict("records")))
    read = collect_eval_noise(tmp_path, "st")
    assert len(read) == 4 and set(read["run_id"]) == {cell.spec.run_id} and set(read["seed"]) == {0}
    report_writer.write_report(suite, df, tmp_path, with_plots=False)  # `report`: the spread table from the files
    assert "Evaluation against training spread" in (tmp_path / "tables" / "st-study.md").read_text()
    noise_file.write_text('{"metric": "fid200_full_clean", "value": "x"}\n')
    with pytest.warns(UserWarning, match="evaluation spread skipped: .*eval_noise.jsonl line 1: value: expected"):
        assert collect_eval_noise(tmp_path, "st").empty


def test_pool_workers_leave_the_results_to_the_pool(monkeypatch) -> None:
    argv = ["run", "--suite", "mini", "--devices", "cpu,cpu", "--device=cuda"]
    assert worker_argv(argv) == ["run", "--suite", "mini", WORKER_FLAG]
    monkeypatch.setattr("bench.launchers.pool.usable_cpus", lambda: 2)
    assert worker_env(("cpu", "cpu"), "cpu")["OMP_NUM_THREADS"] == "1"
    assert worker_env(("cpu", "cpu", "cpu"), "cpu")["OMP_NUM_THREADS"] == "1"  # never 0
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert worker_env(("0", "cpu"), "0")["OMP_NUM_THREADS"] == "7"  # a CUDA worker keeps the environment's


SPREAD_SUITE = """
[suite]
name = "spread"
resolution = 32
datasets = ["folder:{folder}"]
seeds = [0, 1]
[budget]
max_iters = 4
[eval]
protocols = ["fid50_full_clean"]
detector = "effnet-lite0"
fractions = [1.0]
grid_size = 4
[models.baseline]
kwargs = {{ recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }}
[study]
eval_repeats = 2
"""


def test_run_measures_the_evaluation_spread_once(tmp_path: Path, capsys, one_thread) -> None:
    """The end of `run`: the lowest seed's final snapshot scored twice more, into eval_noise.jsonl only
    (evals.jsonl untouched); a second `run` scores nothing again; the study sets it beside the seeds."""
    path = tmp_path / "spread.toml"
    path.write_text(SPREAD_SUITE.format(folder=_image_folder(tmp_path / "imgs")))
    argv = ["run", "--suite", str(path), "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    assert "final snapshot scored 2 more times" in capsys.readouterr().out
    suite = load_suite(str(path))
    first, second = (RunPaths.of(tmp_path, c.spec) for c in sorted(suite.cells, key=lambda c: c.spec.seed))
    noise = [json.loads(line) for line in first.eval_noise.read_text().splitlines()]
    assert [(r["eval_seed"], r["rescored"], r["step"]) for r in noise] == [(1_000_001, True, 4), (1_000_002, True, 4)]
    trained = [json.loads(line) for line in first.evals.read_text().splitlines()]
    assert not any(r.get("rescored") for r in trained) and not second.eval_noise.exists()
    final = next(r["value"] for r in trained if r["step"] == 4)
    assert len({final, *(r["value"] for r in noise)}) == 3  # other latents, other values: the evaluation's noise
    assert main(argv) == 0
    assert "more times" not in capsys.readouterr().out and len(first.eval_noise.read_text().splitlines()) == 2
    (spread,) = build_study(suite, collect(tmp_path, "spread"), noise=collect_eval_noise(tmp_path, "spread")).spread
    assert spread.evaluations == (final, *(r["value"] for r in noise)) and spread.seeds == 2


def test_the_study_reads_only_the_suites_own_detector(tmp_path: Path) -> None:
    """Rows re-scored with another detector (`eval --detector`) are another protocol: a metric only they
    hold gets no study table, and a main metric only they hold is an error naming the fix."""
    suite = load_suite(str(write_suite(tmp_path)))
    df = frame(suite, FINALS)
    df.loc[df["metric"] == "kid200_full_clean", "detector"] = "inception-v3"
    assert [t.metric for t in build_study(suite, df, states=_states(suite)).tables] == ["fid200_full_clean"]
    df["detector"] = "inception-v3"
    with pytest.raises(
        BenchError, match="no fid200_full_clean scored with its detector effnet-lite0 yet .* --detector NAME"
    ):
        build_study(suite, df, states=_states(suite))


def test_precision_and_recall_beside_fid_where_the_detector_allows(tmp_path: Path) -> None:
    """A suite scoring precision/recall (its pr_detector) gets both as study tables after FID and KID,
    higher better; the verdicts stay on the study's metric (FID)."""
    path = write_suite(tmp_path)
    path.write_text(
        path.read_text().replace(
            '"kid200_full_clean"]', '"kid200_full_clean", "pr500_k3_full_clean"]\npr_detector = "effnet-lite0"'
        )
    )
    suite = load_suite(str(path))
    df = frame(suite, FINALS)
    fid = df[df["metric"] == "fid200_full_clean"]
    pr = [fid.assign(metric=f"pr500_k3_full_clean_{part}", kind="pr", value=1 - fid["value"] / 300 * k)
          for part, k in (("precision", 1.0), ("recall", 2.0))]  # fmt: skip
    result = build_study(suite, pd.concat([df, *pr]), states=_states(suite))
    assert [t.metric for t in result.tables] == [
        "fid200_full_clean", "kid200_full_clean", "pr500_k3_full_clean_precision", "pr500_k3_full_clean_recall",
    ]  # fmt: skip
    precision = result.tables[2]
    assert not precision.lower_is_better and precision.best[0].best == "stylegan2-diffaug"
    md = render_markdown(result)
    assert "(pr500_k3_full_clean_precision, effnet-lite0) over 3 seeds" in md and "Higher is better" in md
    assert result.claims[0].pair.comparison.diff == pytest.approx(1 / 3)  # FID: Baseline+Skip − Baseline
