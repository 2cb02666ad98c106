"""Shared fixtures: tiny suites written into tmp_path, the repo root, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep instead of spinning
# the registries' cached listing (bench.plan.names) of the tests and the commands they start: not the user's
os.environ.setdefault("FEWSHOT_BENCH_CACHE", str(Path(tempfile.gettempdir()) / f"fewshot-bench-tests-{os.getuid()}"))
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One CPU thread: faster than two on a shared 2-core machine, and deterministic."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def root() -> Path:
    return ROOT


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python run_bench.py ARGS`` as a user would; returns the completed process."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "run_bench.py"), *args],
        capture_output=True, text=True, cwd=cwd or ROOT, env=env, timeout=timeout,
    )  # fmt: skip


TINY_SUITE = """
[suite]
name = "{name}"
resolution = 32
datasets = ["shapes"]
seeds = [0]

[budget]
max_iters = {iters}

[eval]
protocols = {protocols}
detector = "inception-random"
fractions = [0.5, 1.0]
grid_size = 4

[models.baseline]
label = "Baseline"
kwargs = {{ recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }}
"""


@pytest.fixture
def tiny_suite(tmp_path: Path):
    """Factory writing a tiny suite TOML (shapes at 32 px, a few iterations) and returning its path."""

    def make(name: str = "tiny", iters: int = 6, text: str | None = None, protocols: str = "[]") -> Path:
        path = tmp_path / f"{name}.toml"
        body = TINY_SUITE.format(name=name, iters=iters, protocols=protocols)
        path.write_text(text if text is not None else body)
        return path

    return make
