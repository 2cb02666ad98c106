"""The one check of stored results (bench.results.rows): each row's and state's types and ranges, the
ranges' math (a KID may be slightly negative, an FID or a share may not leave its range), run specs
read back from spec.json, and collect marking a run with one bad row unreadable while the others count."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.errors import BenchError
from bench.metrics.scores import fid_from_features, kid_from_features
from bench.plan.specs import RunSpec
from bench.results.collect import collect, unreadable_runs
from bench.results.io import atomic_write_json
from bench.results.rows import KID_FLOOR, row_problem, state_problem
from bench.results.runs import RunPaths, append_eval_row, checked_eval_rows, read_state, write_state

GOOD = {
    "metric": "fid200_full_clean", "kind": "fid", "value": 239.06, "std": None, "step": 1000, "eval_point": 1.0,
    "detector": "effnet-lite0", "detector_sha256": "57" * 32, "detector_standard": False, "num_gen": 200,
    "gen_batch": 16, "bn_mode": "batch", "truncation": 1.0, "snapshot": "snapshots/snap-00001000.pt",
    "grid": "samples/grid-00001000.png", "kid_subsets": None,
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"value": -5}, "value: an FID is >= 0"),
        ({"value": True}, "value: expected a finite number, got True"),
        ({"value": "abc"}, "value: expected a finite number, got 'abc'"),
        ({"value": {}}, "value: expected a finite number, got {}"),
        ({"value": float("nan")}, "value: expected a finite number, got nan"),
        ({"value": 10**400}, "value: expected a finite number"),
        ({"step": "abc"}, "step: expected a whole number >= 0, got 'abc'"),
        ({"step": -1}, "step: expected a whole number >= 0"),
        ({"eval_point": float("inf")}, "eval_point: expected a finite number >= 0"),
        ({"detector": 3}, "detector: expected text, got 3"),
        ({"detector_standard": "yes"}, "detector_standard: expected true or false"),
        ({"metric": ""}, "metric: expected a metric name"),
        ({"kind": "lpips"}, "kind: expected one of fid, kid, pr"),
        ({"std": -1.0}, "std: expected a finite number >= 0 or null"),
        ({"grid": "../../../etc/passwd.png"}, "grid: expected a path inside the run folder"),
        ({"snapshot": "/tmp/x.pt"}, "snapshot: expected a path inside the run folder"),
        ({"metric": "pr5k3_full_clean_precision", "kind": "pr", "value": 1.5}, "is a share from 0 to 1"),
        ({"metric": "kid200_full_clean", "kind": "kid", "value": -0.5, "std": 0.001}, "not estimation noise"),
    ],
)
def test_a_row_out_of_type_or_range_is_named(change: dict, problem: str) -> None:
    assert row_problem(GOOD) is None
    found = row_problem(GOOD | change)
    assert found is not None and problem in found


def test_row_and_state_shapes() -> None:
    assert row_problem([1, 2]) == "expected a JSON object, got [1, 2]"
    assert row_problem({k: v for k, v in GOOD.items() if k != "step"}) is None  # optional keys may be missing
    assert row_problem(GOOD | {"something_new": [1]}) is None  # newer writers may add columns
    assert state_problem({"status": "done", "step": 1000, "kimg": 8.0, "device": {"type": "cpu"}}) is None
    assert state_problem({"status": "done", "step": "x"}) == "step: expected a whole number >= 0, got 'x'"
    assert "expected an object" in state_problem({"status": "running", "device": "gpu"})


def test_the_ranges_admit_what_the_estimators_give_for_matching_sets() -> None:
    """KID's unbiased estimate of matching distributions is negative about half the time (it must pass);
    FID of a set against itself is 0 up to rounding (it must pass); -5 is neither."""
    rng = np.random.default_rng(0)
    negatives = 0
    for seed in range(20):
        a, b = rng.normal(size=(2, 60, 32))  # two samples of one distribution, few-shot sized
        value, std = kid_from_features(a, b, subset_size=1000, subsets=10, seed=seed)
        negatives += value < 0
        row = GOOD | {"metric": "kid200_full_clean", "kind": "kid", "value": value, "std": std}
        assert row_problem(row) is None, (value, std)
    assert negatives >= 3  # the estimator is unbiased: noise goes both ways
    a = rng.normal(size=(50, 16))
    same = fid_from_features(a, a.copy())
    assert abs(same) < 1e-6 and row_problem(GOOD | {"value": same}) is None
    assert row_problem(GOOD | {"metric": "kid200_full_clean", "kind": "kid", "value": -KID_FLOOR * 1.01}) is not None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("model_kwargs", [1, 2], "model_kwargs must be dict, got [1, 2]"),
        ("resolution", "x", "resolution must be int, got 'x'"),
        ("protocols", ["fid5k_full_clean", 3], "protocols must be a list of str values"),
        ("compile", 1, "compile must be bool, got 1"),
        ("budget_hours", "5", "budget_hours must be float or null, got '5'"),
    ],
)
def test_a_spec_read_back_must_have_its_fields_types(field: str, value: object, message: str) -> None:
    spec = RunSpec(suite="s", model="fastgan", dataset="shapes", resolution=32, max_iters=5).to_dict()
    with pytest.raises(BenchError, match=message.replace("[", r"\[").replace("]", r"\]")):
        RunSpec.from_dict(spec | {field: value})


def _run(out: Path, model: str, rows: list[dict]) -> RunPaths:
    spec = RunSpec(suite="t", model=model, dataset="shapes", resolution=32, max_iters=5)
    paths = RunPaths.of(out, spec)
    atomic_write_json(paths.spec, {"spec": spec.to_dict()})
    write_state(paths, status="done", step=5)
    for row in rows:
        append_eval_row(paths, row)
    return paths


def test_collect_marks_a_run_with_one_bad_row_unreadable_and_keeps_the_others(tmp_path: Path) -> None:
    good = _run(tmp_path, "fastgan", [GOOD])
    bad = _run(tmp_path, "baseline", [GOOD, GOOD | {"value": "abc", "snapshot": "snapshots/b.pt"}])
    torn = _run(tmp_path, "stylegan2", [GOOD])
    with open(torn.evals, "ab") as f:
        f.write(b'{"metric": "fid200_full_clean", "val')  # a crash's torn last line: skipped, not an error
    with pytest.warns(UserWarning, match="line 2: value: expected a finite number, got 'abc'; restore the line"):
        df = collect(tmp_path, "t")
    assert set(df.loc[df["status"] == "done", "run_id"]) == {good.root.name, torn.root.name}
    why = unreadable_runs(df)
    assert list(why) == [bad.root.name] and "evals.jsonl line 2" in why[bad.root.name]
    write_state(good, status="done", step=5)
    good.state.write_text(json.dumps({"status": "done", "step": "x"}))
    assert read_state(good)["status"] == "unreadable" and "step: expected" in read_state(good)["error"]
    with pytest.warns(UserWarning) as caught:
        df = collect(tmp_path, "t")
    assert any("run state unreadable" in str(w.message) for w in caught)
    assert math.isclose(df.loc[df["run_id"] == good.root.name, "value"].iloc[0], 239.06)  # its numbers kept


@pytest.mark.parametrize(
    "change",
    [{"detector": "torchscript:/x/inception.pt"}, {"detector_sha256": "ab" * 32}, {"mode": "legacy_tensorflow"},
     {"num_gen": 500}, {"truncation": 0.7}, {"gen_batch": 32}, {"bn_mode": "eval"}, {"ref_count": 50}],
)  # fmt: skip
def test_a_snapshot_scored_again_under_another_protocol_is_kept_an_identical_one_is_not(
    tmp_path: Path, change: dict
) -> None:
    again = GOOD | {"value": 100.0, "rescored": True}
    paths = _run(tmp_path, "fastgan", [GOOD, again, again | change])
    assert [r["value"] for r in checked_eval_rows(paths)] == [239.06, 100.0]  # the same protocol: first kept
    df = collect(tmp_path, "t")
    assert len(df) == 2 and df[list(change)].iloc[1].to_dict() == change  # the other protocol's row: its own
