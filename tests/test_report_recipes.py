"""The table says what each row trained under: its length (hours or a pinned kimg, per dataset),
its recipe's source per setting group, the suite's reading; a row pinned to the length of the
runs behind a published row is compared with it."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from test_report import evals

import models
from bench.plan.specs import RunSpec
from bench.plan.suites import Cell, Suite
from bench.report import render, tables
from bench.report.recipes import row_length, spec_length

DATASETS = ("obama", "animalface-cat")
DA_KIMG = {"obama": 300, "animalface-cat": 500}  # DiffAugment's low-shot runs (README)


def _suite(kimg: dict[str, float], reading: str = "") -> Suite:
    """Table A with StyleGAN2 pinned to ``kimg`` per dataset and BigGAN on 5 hours."""
    cells = [Cell(RunSpec(suite="k", model="stylegan2-diffaug", dataset=d, resolution=256, max_kimg=kimg[d],
                          budget_pin="kimg"), "StyleGAN2", "") for d in DATASETS]  # fmt: skip
    cells += [Cell(RunSpec(suite="k", model="biggan", dataset=d, resolution=256, budget_hours=5.0), "BigGAN", "")
              for d in DATASETS]  # fmt: skip
    return Suite("k", Path("k.toml"), "", "A", list(DATASETS), cells, reading=reading)


def _table(suite: Suite) -> tables.ReportTable:
    rows = [r for c in suite.cells for r in evals(c.spec, [50.0])]
    return tables.build_table(suite, pd.DataFrame(rows), states={c.spec.run_id: "done" for c in suite.cells})


def test_a_row_pinned_to_the_sources_kimg_is_compared_with_its_published_numbers() -> None:
    table = _table(_suite(DA_KIMG))
    row = next(r for r in table.rows if r.model == "stylegan2-diffaug")
    assert row.compared and row.paper == (46.87, 42.44)  # DiffAugment's fid5k-train (obama, cat)
    shorter = _table(_suite({"obama": 300, "animalface-cat": 300}))
    row = next(r for r in shorter.rows if r.model == "stylegan2-diffaug")
    assert not row.compared and row.absent == "paper: 20 h budget"  # 300 kimg on AnimalFace: not the source's length


def test_caption_names_lengths_recipe_sources_and_reading() -> None:
    table = _table(_suite(DA_KIMG, reading="every row keeps D's SLE"))
    assert table.lengths == "StyleGAN2: 300 kimg (pinned); animalface-cat: 500 kimg (pinned); BigGAN: 5 h"
    assert table.recipes == (
        "StyleGAN2: DiffAugment-stylegan2 (TF) @0b63395 throughout; BigGAN: architecture: DiffAugment-biggan-cifar "
        "@0b63395 / BigGAN-PyTorch @9845943; other groups: DiffAugment-biggan-cifar @0b63395"
    )
    notes = " ".join(f"{lead} {text}" for lead, text in render.notes(table))
    for text in (table.lengths, table.recipes, "Reading: every row keeps D's SLE."):
        assert text in notes


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"budget_hours": 20.0}, "20 h"),
        ({"budget_hours": 20.0, "budget_scale": 0.5}, "10 h"),
        ({"budget_hours": 5.0, "max_iters": 2000}, "5 h or 2,000 it, the first reached"),
        ({"max_kimg": 300.0, "budget_pin": "kimg", "budget_hours": 20.0}, "300 kimg (pinned)"),
        ({"max_iters": 800, "budget_pin": "iters"}, "800 it (pinned)"),
    ],
)
def test_spec_length(kwargs: dict, text: str) -> None:
    spec = RunSpec(suite="s", model="fastgan", dataset="obama", resolution=256, **kwargs)
    assert spec_length(spec) == text
    assert row_length([spec]) == text


def test_every_comparison_model_names_one_source_per_setting_group() -> None:
    comparison = [n for n in models.list_models() if models.model_info(n).family in ("biggan", "stylegan2")]
    assert len(comparison) == 10
    for name in comparison:
        sources = models.model_info(name).sources
        assert tuple(sources) == models.SOURCE_GROUPS, name
        assert all(s.source and s.detail for s in sources.values()), name
    assert models.recipe_summary(models.model_info("stylegan2-diffaug").sources).endswith("throughout")
    with pytest.raises(models.ModelConfigError, match="give exactly the groups"):
        models.register_model("x", sources={"architecture": models.Source("a", "b")})


def test_list_shows_one_source_per_setting_group_per_comparison_model() -> None:
    from bench.cli.listing import listing

    text = listing("models")
    assert all(len(line) <= 100 for line in text.splitlines())
    blocks = {b.split(":", 1)[0]: b for b in re.split(r"\n  (?=\S)", text)[1:]}
    for name in models.list_models():
        sources = models.model_info(name).sources
        flat = blocks[name].replace("\n    ", " ")
        assert (f"recipe: {models.recipe_summary(sources)}" in flat) == bool(sources), name
    biggan = blocks["biggan"]
    for group in models.SOURCE_GROUPS:
        assert f"\n    {group}: " in biggan
    summary = "architecture: DiffAugment-biggan-cifar @0b63395 / BigGAN-PyTorch @9845943; other groups: "
    assert summary + "DiffAugment-biggan-cifar @0b63395" in biggan.replace("\n    ", " ")
    assert "--G_init N02 --D_init N02" in biggan and "without --G_eval_mode" in biggan.replace("\n    ", " ")
