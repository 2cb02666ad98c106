"""The CUDA-graph speed mode (``cuda_graphs``) on the CPU: the step body it captures equals the eager
step, synchronises nothing, and runs through the loop; the capture logic's CPU equivalent; fp32
spectral norm under autocast."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import models
from bench.data.store import Dataset
from bench.errors import BenchError
from bench.launchers.checks import check_models
from bench.plan.specs import RunSpec
from bench.plan.suites import load_suite
from bench.tools.perf.steps import time_loop
from bench.training.checkpoints import apply_speed_modes, build_model
from models.step_graph import GraphCaptureError, StepGraph, host_syncs

TINY = dict(models.model_info("fastgan").tiny, batch_size=4)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one CPU thread


def _fastgan(**kw: object) -> models.GANModel:
    torch.manual_seed(0)
    return models.get_model("fastgan", resolution=32, **(TINY | kw))


def _real(n: int = 4) -> Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_quadrant_as_tensor_index_equals_the_eager_slice() -> None:
    """Each quadrant: the step with the quadrant as a device tensor (the graph's body) leaves every
    weight, buffer and loss bitwise equal to the eager step given the same quadrant as an int."""
    a, b = _fastgan(), _fastgan()
    for part in range(4):
        torch.manual_seed(10 + part)
        la = a._step(_real(), part)
        torch.manual_seed(10 + part)
        lb = b._step(_real(), torch.tensor(part))
        assert _same_state(a, b), part
        assert all(torch.equal(la[k], lb[k]) for k in la), part
    assert not _same_state(a, _fastgan())


def test_graph_body_synchronises_nothing_and_the_eager_step_does() -> None:
    """The captured body reads nothing back to the host (with the fused Adam the CPU equivalent uses);
    the eager step reads its quadrant draw (a CPU scalar) and Adam's step counters: the probe sees them."""
    model = _fastgan()
    model.use_cuda_graphs()
    assert host_syncs(lambda: model._step(_real(), torch.tensor(2))) == []
    eager = _fastgan()
    assert "_local_scalar_dense" in host_syncs(lambda: eager._step(_real()))


def test_step_graph_warms_up_then_checks_the_capture_on_the_cpu() -> None:
    calls: list[int] = []

    def body(x: Tensor) -> dict[str, Tensor]:
        calls.append(1)
        return {"sum": x.sum()}

    graph = StepGraph(body, warmup=2)
    for i in range(4):
        assert graph(x=torch.full((3,), float(i)))["sum"].item() == 3 * i
        assert graph.captured == (i >= 2)
    assert len(calls) == 4
    graph.reset()
    assert not graph.captured

    bad = StepGraph(lambda x: {"v": x * float(x.sum())}, warmup=1)  # float(tensor): a host read
    bad(x=torch.ones(2))  # warm-up steps run as they are
    with pytest.raises(GraphCaptureError, match="_local_scalar_dense"):
        bad(x=torch.ones(2))


def test_cuda_graphs_mode_trains_through_the_loop() -> None:
    """The spec's ``cuda_graphs`` runs FastGAN's step through :class:`StepGraph` in the real loop (past
    the capture call), with finite losses and moving weights; older run ids are unchanged."""
    spec = RunSpec(
        suite="t", model="fastgan", dataset="t", resolution=32, model_kwargs=TINY, max_iters=6, protocols=(),
        eval_fractions=(),
    )  # fmt: skip
    graphs = RunSpec(**{**spec.to_dict(), "cuda_graphs": True})
    assert graphs.run_id != spec.run_id and "cuda_graphs" not in spec.hashed_dict()
    model = build_model(graphs, torch.device("cpu"))
    start = [p.detach().clone() for p in model.parameters()]
    apply_speed_modes(model, graphs)
    groups = [g for opt in model.optimizers().values() for g in opt.param_groups]
    assert all(g["fused"] and not g["capturable"] for g in groups)  # capturable is CUDA-only
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    time_loop(model, graphs, Dataset("t", 32, images, {}), images, steps=5, warmup=1, log_every=2)
    assert model.step_graph is not None and model.step_graph.captured
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), start, strict=True))


def test_cuda_graphs_refused_for_families_whose_step_changes(tiny_suite, tmp_path: Path) -> None:
    extra = "[models.biggan]\ncuda_graphs = true\nkwargs = {ch = 4}\n[models.baseline]\ncuda_graphs = true"
    text = tiny_suite().read_text().replace("[models.baseline]", extra)
    path = tmp_path / "graphs.toml"
    path.write_text(text)
    suite = load_suite(str(path))
    assert {c.spec.model: c.spec.cuda_graphs for c in suite.cells} == {"biggan": True, "baseline": True}
    with pytest.raises(BenchError, match=r"models\.biggan\.cuda_graphs: .*FastGAN family only.*; set it false"):
        check_models(suite, suite.cells)
    check_models(suite, [c for c in suite.cells if c.spec.model == "baseline"])


def test_spectral_norm_power_iteration_runs_without_autocast(monkeypatch) -> None:
    """Under bf16 autocast the power iteration runs with autocast off (CUDA would cast its ``mv`` to
    bf16); without autocast the hook runs as it is. Observed at the iteration's ``normalize``."""
    import torch.nn.functional as F
    from torch.nn.utils import spectral_norm

    seen: list[bool] = []
    real_normalize = F.normalize

    def probe(*args: object, **kwargs: object) -> Tensor:
        seen.append(torch.is_autocast_enabled("cpu"))
        return real_normalize(*args, **kwargs)

    monkeypatch.setattr(F, "normalize", probe)
    model = _fastgan()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.discriminator(_real())
    assert seen and not any(seen)
    plain = nn.Sequential(spectral_norm(nn.Conv2d(3, 4, 3)))
    seen.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain(_real())
    assert seen and all(seen)  # the unwrapped hook runs under autocast: the probe can tell
