"""The generic loop: resume equals uninterrupted, corrupt checkpoints, divergence, skip when done."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from bench.errors import CheckpointError
from bench.plan.suites import load_suite
from bench.results.envinfo import matched_profile
from bench.results.runs import RunPaths, read_state
from bench.training.cell import run_cell
from bench.training.checkpoints import load_snapshot_model
from bench.training.options import LoopOptions


def _spec(tiny_suite, iters: int = 8):
    return load_suite(str(tiny_suite(iters=iters))).cells[0].spec


def _final_state(paths: RunPaths) -> dict[str, torch.Tensor]:
    newest = sorted(paths.checkpoints.glob("ckpt-*.pt"))[-1]
    return torch.load(newest, weights_only=True)["model"]


def _stop_after(n: int):
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] == n

    return should_stop


def test_interrupted_run_resumes_to_identical_state(tiny_suite, tmp_path) -> None:
    spec = _spec(tiny_suite)
    a = LoopOptions(out=tmp_path / "a", progress=False, log_every=2)
    assert run_cell(spec, a) == "done"
    b = LoopOptions(out=tmp_path / "b", progress=False, log_every=2, should_stop=_stop_after(3))
    assert run_cell(spec, b) == "todo"
    pb = RunPaths.of(b.out, spec)
    assert read_state(pb)["step"] == 3 and read_state(pb)["interrupted"]
    assert run_cell(spec, dataclasses.replace(b, should_stop=None)) == "done"
    pa = RunPaths.of(a.out, spec)
    sa, sb = _final_state(pa), _final_state(pb)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert read_state(pa)["step"] == read_state(pb)["step"] == 8
    assert sorted(p.name for p in pa.snapshots.iterdir()) == sorted(p.name for p in pb.snapshots.iterdir())
    assert (pa.samples / "grid-00000004.png").exists() and (pb.samples / "grid-00000008.png").exists()


def test_finished_run_is_skipped(tiny_suite, tmp_path) -> None:
    spec = _spec(tiny_suite, iters=2)
    opts = LoopOptions(out=tmp_path, progress=False)
    assert run_cell(spec, opts) == "done"
    paths = RunPaths.of(tmp_path, spec)
    before = paths.state.stat().st_mtime_ns
    assert run_cell(spec, opts) == "done"
    assert paths.state.stat().st_mtime_ns == before
    doc = json.loads(paths.spec.read_text())
    assert doc["run_id"] == spec.run_id and doc["resolved"]["model_hparams"]
    assert doc["environment"]["packages"]["torch"]
    here = matched_profile(torch.device("cpu"))
    assert doc["environment"]["device_info"]["profile"] == (here.name if here else None)  # the SKU's profile
    assert doc["resolved"]["reals_per_step"] == doc["resolved"]["batch_size"]  # one real batch per step


def test_corrupt_newest_checkpoint_falls_back(tiny_suite, tmp_path) -> None:
    spec = _spec(tiny_suite)
    opts = LoopOptions(out=tmp_path, progress=False, should_stop=_stop_after(6))
    run_cell(spec, opts)  # checkpoints at 4 (eval point) and 6 (interrupt)
    paths = RunPaths.of(tmp_path, spec)
    newest = sorted(paths.checkpoints.glob("ckpt-*.pt"))[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    assert run_cell(spec, dataclasses.replace(opts, should_stop=None)) == "done"
    events = [json.loads(ln) for ln in paths.events.read_text().splitlines()]
    assert any(e["event"] == "corrupt_checkpoint" for e in events)
    assert [e for e in events if e["event"] == "resume"][-1]["step"] == 4


def test_divergence_stops_run_and_keeps_last_good(tiny_suite, tmp_path, monkeypatch) -> None:
    import models

    spec = _spec(tiny_suite, iters=20)
    real_get = models.get_model

    def poisoned(*args, **kwargs):
        model = real_get(*args, **kwargs)
        step_fn = model.train_step

        def step(real, step):
            out = step_fn(real, step)
            return out if step < 12 else {k: v * float("nan") for k, v in out.items()}

        model.train_step = step
        return model

    monkeypatch.setattr(models, "get_model", poisoned)
    opts = LoopOptions(out=tmp_path, progress=False, log_every=2)
    assert run_cell(spec, opts) == "diverged"
    paths = RunPaths.of(tmp_path, spec)
    assert read_state(paths)["status"] == "diverged"
    assert (paths.snapshots / "snap-00000010.pt").exists()  # the 0.5 evaluation survived
    assert run_cell(spec, opts) == "diverged"  # not retried


def test_nan_images_at_an_evaluation_end_the_run_as_diverged(tiny_suite, tmp_path, monkeypatch) -> None:
    """Finite weights whose images are NaN: the evaluation refuses to draw (or score) them as black pixels."""
    import models

    spec = _spec(tiny_suite, iters=4)
    real_get = models.get_model

    def poisoned(*args, **kwargs):
        model = real_get(*args, **kwargs)
        model.generate = lambda z, **kw: torch.full((len(z), 3, 32, 32), float("nan"))
        return model

    monkeypatch.setattr(models, "get_model", poisoned)
    assert run_cell(spec, LoopOptions(out=tmp_path, progress=False)) == "diverged"
    paths = RunPaths.of(tmp_path, spec)
    assert read_state(paths)["status"] == "diverged" and not list(paths.samples.glob("grid-*.png"))


def test_snapshot_model_and_wrong_model_checkpoint(tiny_suite, tmp_path) -> None:
    spec = _spec(tiny_suite, iters=2)
    run_cell(spec, LoopOptions(out=tmp_path, progress=False))
    paths = RunPaths.of(tmp_path, spec)
    model = load_snapshot_model(paths.root)
    assert model.generate(torch.randn(2, model.z_dim)).shape == (2, 3, 32, 32)
    other = dataclasses.replace(spec, resolution=64)
    other_paths = RunPaths.of(tmp_path, other)
    other_paths.checkpoints.mkdir(parents=True)
    for ck in paths.checkpoints.glob("*.pt"):
        (other_paths.checkpoints / ck.name).write_bytes(ck.read_bytes())
    with pytest.raises(CheckpointError, match="at 32 px"):
        run_cell(other, LoopOptions(out=tmp_path, progress=False))
    assert read_state(other_paths)["status"] == "failed"


class _LazyLossModel(torch.nn.Module):
    """Reports ``loss`` = step every step and ``r1`` = 10 * step every 4th step (a lazy regulariser)."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = torch.nn.Linear(1, 1)
        self.batch_size = 2

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def parameters(self, recurse: bool = True):  # the loop checks these for NaN
        return self.generator.parameters(recurse)

    def train_step(self, real: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        out = {"loss": torch.tensor(float(step))}
        if step % 4 == 0:
            out["r1"] = torch.tensor(10.0 * step)
        return out


def test_progress_averages_each_loss_over_the_steps_it_was_reported(tmp_path) -> None:
    from bench.data.sampler import Sampler
    from bench.data.store import Dataset
    from bench.plan.budget import Budget
    from bench.plan.specs import RunSpec
    from bench.training.loop import train_steps
    from bench.training.progress import CellProgress
    from bench.training.state import Run

    spec = RunSpec(suite="t", model="m", dataset="t", resolution=8, max_iters=8, protocols=(), eval_fractions=())
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    opts = LoopOptions(out=tmp_path, progress=False, log_every=8, checkpoint_every_s=1e9)
    run = Run(spec, RunPaths(tmp_path), opts, _LazyLossModel(), Dataset("t", 8, images, {}), Budget(None, 8),
               Sampler(images, 2, seed=0))  # fmt: skip
    progress = CellProgress(spec, bar=False, fraction=0.0, step=0, elapsed=0.0)
    assert train_steps(run, progress) == "done"
    assert progress.losses["loss"] == pytest.approx(3.5)  # mean of steps 0..7
    assert progress.losses["r1"] == pytest.approx(20.0)  # mean of 0 and 40 (steps 0 and 4), not their sum / 8
