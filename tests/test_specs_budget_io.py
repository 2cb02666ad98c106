"""RunSpec hashing, the budget clock, atomic IO and run locks."""

from __future__ import annotations

import dataclasses
import json
import os
import time

import pytest

from bench.plan.budget import Budget
from bench.plan.specs import RunSpec
from bench.results.io import STALE_TEMP_S, append_jsonl, atomic_write_json, read_jsonl, remove_stale_temps
from bench.results.lock import LockBusy, RunLock, is_locked

BASE = RunSpec(suite="s", model="fastgan", dataset="emoji-faces", resolution=64, budget_hours=1.0)


def test_run_id_stable_and_suite_independent() -> None:
    assert BASE.run_id == RunSpec.from_dict(BASE.to_dict()).run_id
    assert dataclasses.replace(BASE, suite="other").run_id == BASE.run_id
    assert BASE.run_id.startswith("fastgan-emoji-faces-64-s0-")


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 1}, {"model": "baseline"}, {"dataset": "shapes"}, {"resolution": 32},
        {"budget_hours": 2.0}, {"max_iters": 10}, {"model_kwargs": {"recon": "mse"}},
        {"protocols": ("kid500_full_clean",)}, {"detector": "inception-random"}, {"precision": "bf16"},
        {"speed_ratio": 2.0}, {"budget_scale": 0.5}, {"eval_fractions": (1.0,)},
    ],
)  # fmt: skip
def test_run_id_changes_with_result_fields(change: dict) -> None:
    assert dataclasses.replace(BASE, **change).run_id != BASE.run_id


def test_model_kwargs_order_does_not_matter() -> None:
    a = dataclasses.replace(BASE, model_kwargs={"a": 1, "b": 2})
    b = dataclasses.replace(BASE, model_kwargs={"b": 2, "a": 1})
    assert a.run_id == b.run_id


def test_budget_seconds_formula() -> None:
    spec = dataclasses.replace(BASE, budget_hours=5, speed_ratio=2.0, budget_scale=0.1, num_gpus=2)
    assert spec.budget_seconds == pytest.approx(5 * 3600 / 2.0 * 0.1 * 2)


def test_budget_clock_pauses_and_restores() -> None:
    b = Budget(seconds=10.0, max_iters=None)
    b.resume()
    time.sleep(0.02)
    b.pause()
    used = b.used_seconds
    time.sleep(0.02)  # paused: not charged
    assert b.elapsed() == pytest.approx(used)
    c = Budget(seconds=10.0, max_iters=None)
    c.load_state_dict(b.state_dict())
    assert c.elapsed() == pytest.approx(used)


def test_budget_iteration_cap_and_fraction() -> None:
    b = Budget(seconds=None, max_iters=4)
    assert b.fraction() == 0 and not b.exhausted()
    b.iters = 2
    assert b.fraction() == 0.5
    b.iters = 4
    assert b.exhausted()
    with pytest.raises(ValueError):
        Budget(seconds=None, max_iters=None)


def test_jsonl_skips_torn_line_and_next_append_survives(tmp_path) -> None:
    p = tmp_path / "rows.jsonl"
    append_jsonl(p, {"a": 1})
    with open(p, "ab") as f:
        f.write(b'{"a": 2, "tor')  # a crash mid-append
    assert [r["a"] for r in read_jsonl(p)] == [1]
    append_jsonl(p, {"a": 3})
    assert [r["a"] for r in read_jsonl(p)] == [1, 3]


def test_atomic_write_leaves_no_temp_files(tmp_path) -> None:
    atomic_write_json(tmp_path / "x.json", {"k": 1})
    assert json.loads((tmp_path / "x.json").read_text()) == {"k": 1}
    assert os.listdir(tmp_path) == ["x.json"]


def test_stale_temps_removed_from_shared_folders_but_not_fresh_ones(tmp_path) -> None:
    old, fresh, kept = tmp_path / ".ref.npz.abc.tmp", tmp_path / ".ref.npz.def.tmp", tmp_path / "ref.npz"
    for path in (old, fresh, kept):
        path.write_bytes(b"x")
    past = time.time() - STALE_TEMP_S - 60
    os.utime(old, (past, past))
    os.utime(kept, (past, past))
    assert remove_stale_temps(tmp_path) == 1
    assert not old.exists() and fresh.exists() and kept.exists()


def test_run_lock_is_exclusive_and_released(tmp_path) -> None:
    with RunLock(tmp_path):
        assert is_locked(tmp_path)
        with pytest.raises(LockBusy):
            RunLock(tmp_path).__enter__()
    assert not is_locked(tmp_path)
