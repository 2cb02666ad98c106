"""The table caption's data-driven notes: the compute budget every row got (and what it bought),
and the modules a resolution changes (FastGAN's skip-layer excitations), read from the models."""

from __future__ import annotations

from pathlib import Path

import pytest

import models
from bench.plan.specs import RunSpec
from bench.plan.suites import Cell, Suite
from bench.report.budgets import compute_note
from bench.report.structure import structure_note

TINY = {"recon": "mse", "ngf": 4, "ndf": 4, "batch_size": 2}


def _suite(resolution: int, names: tuple[str, ...] = ("baseline", "fastgan", "stylegan2-lite"), **spec) -> Suite:
    cells = [
        Cell(RunSpec(suite="n", model=m, dataset="shapes", resolution=resolution, max_iters=4,
                     model_kwargs=TINY if m != "stylegan2-lite" else dict(models.model_info(m).tiny), **spec),
             m.capitalize(), "")
        for m in names
    ]  # fmt: skip
    return Suite("n", Path("n.toml"), "", None, ["shapes"], cells)


def test_caption_names_the_sle_connections_a_small_resolution_changes() -> None:
    note = structure_note(_suite(32))
    assert note.startswith("Modules at this resolution: Baseline at 32 px: D SLE none (the paper's 256→32")
    assert "Fastgan at 32 px: G SLE 4→32 (4→32: this project's own; the paper's 4→64, 8→128, 16→256 do not" in note
    assert "Stylegan2-lite" not in note  # no SLE, nothing to say
    at64 = structure_note(_suite(64))
    assert "Fastgan at 64 px: G SLE 4→64 (the paper's 8→128, 16→256 do not fit at 64 px)" in at64
    assert "4→32" not in at64 and "G SLE" not in at64.split("Fastgan")[0]  # Baseline's G has none by design


@pytest.mark.parametrize("resolution", [256, 1024])
def test_no_note_where_the_modules_are_the_papers(resolution: int) -> None:
    assert structure_note(_suite(resolution, ("baseline", "fastgan"))) == ""


def test_compute_note_gives_the_budget_and_each_rows_iterations() -> None:
    compute = {"budget_s": 20.0, "device": "rtx-2080-ti", "step_s": 0.04, "images_per_step": 8}
    cells = [Cell(RunSpec(suite="n", model="baseline", dataset="shapes", resolution=32, max_iters=500,
                          budget_pin="iters", compute=compute, budget_scale=0.5), "Baseline", "")]  # fmt: skip
    assert compute_note(cells) == (
        "Compute budget per row: 10 s of rtx-2080-ti (step-cost model), i.e. Baseline 250 it (2 kimg)."
    )
    assert compute_note(_suite(32).cells) == ""
