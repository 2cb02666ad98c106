"""Suite files: validation (every problem listed with file and key) and the paper grids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import TINY_SUITE, run_cli

from bench.errors import BenchError, SuiteError
from bench.plan.suites import filter_cells, list_suites, load_suite

REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "fastgan_paper_tables.md"


def _table(section: str) -> list[list[str]]:
    """Cells of the first Markdown table after the heading starting with ``section``."""
    if not REF.exists():
        pytest.skip(f"paper tables reference not found at {REF}")
    lines = REF.read_text().split(f"## {section}", 1)[1].splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    block = []
    for ln in lines[first:]:
        if not ln.startswith("|"):
            break
        if not set(ln.replace("|", "").strip()) <= set("-: "):
            block.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return block


def test_every_suite_in_experiments_loads() -> None:
    names = list_suites()
    assert {"smoke", "fewshot256", "fewshot1024", "large", "ablation-ss"} <= set(names)
    for name in names:
        assert load_suite(name).cells, name


def test_fewshot256_is_table_a() -> None:
    table = _table("Table A")
    header, numbers, rows = table[0], table[1], table[2:]
    suite = load_suite("fewshot256", init_from="/tmp/some.pkl")
    paper_to_ours = {
        "StyleGAN2": "stylegan2-diffaug", "StyleGAN2 finetune": "stylegan2-diffaug-finetune",
        "Baseline": "baseline", "Baseline+Skip": "baseline-skip", "Baseline+decode": "baseline-decode",
        "Ours (Baseline+Skip+decode = FastGAN)": "fastgan",
    }  # fmt: skip
    want = {(paper_to_ours[r[1]], int(r[0].split()[0])) for r in rows}
    have = {(c.spec.model, c.spec.budget_hours) for c in suite.cells if c.spec.model != "biggan"}
    assert have == want
    assert {c.group for c in suite.cells if c.spec.model == "fastgan"} == {"5 hour"}
    assert [c.spec.resolution for c in suite.cells] == [256] * len(suite.cells)
    from bench.data.paper import get_dataset_info

    counts = [get_dataset_info(d).count for d in suite.datasets]
    assert counts == [int(n) for n in numbers[2:]]
    assert len(header) - 2 == len(suite.datasets)
    biggan = [c for c in suite.cells if c.spec.model == "biggan"]
    assert len(biggan) == 5 and all(c.spec.budget_hours == 5 and "not in the paper" in c.label for c in biggan)


def test_finetune_row_only_with_init_from() -> None:
    assert "stylegan2-diffaug-finetune" not in {c.spec.model for c in load_suite("fewshot256").cells}
    cells = load_suite("fewshot256", init_from="ckpt.pt").cells
    ft = [c for c in cells if c.spec.model == "stylegan2-diffaug-finetune"]
    assert len(ft) == 5 and all(c.spec.model_kwargs["init_from"].endswith("ckpt.pt") for c in ft)


def test_fewshot1024_is_table_b() -> None:
    suite = load_suite("fewshot1024")
    assert [get for get in suite.datasets] == [
        "art-paintings", "ffhq-1k", "flower", "pokemon", "anime-face", "skull", "shell",
    ]  # fmt: skip
    budgets = {c.spec.model: c.spec.budget_hours for c in suite.cells}
    assert budgets == {"stylegan2-half": 24, "baseline": 8, "fastgan": 8}
    assert len(suite.cells) == 3 * 7 and {c.spec.resolution for c in suite.cells} == {1024}


def test_large_is_table_c() -> None:
    header = _table("Table C")[0]
    suite = load_suite("large")
    want = [re.sub(r"\s+", "-", h.lower()) for h in header[1:]]
    assert suite.datasets == want
    assert {c.spec.model for c in suite.cells} == {"stylegan2-half", "baseline", "fastgan"}
    assert len(suite.cells) == 3 * 10


def test_ablation_is_table_d() -> None:
    rows = _table("Table D")[1:]
    suite = load_suite("ablation-ss")
    labels = [c.label for c in suite.cells[:: len(suite.datasets)]]
    assert labels[:-1] == [r[0] for r in rows]  # the paper's rows, then the sensitivity row
    assert {c.spec.budget_hours for c in suite.cells} == {8}
    extra = [c for c in suite.cells if c.label == labels[-1]]
    assert {(c.spec.model, c.spec.model_kwargs["d_sle"]) for c in extra} == {("fastgan", False)}
    assert all(c.spec.model_kwargs.get("d_sle", True) for c in suite.cells if c not in extra)
    assert "d_sle = true" in suite.reading and "sensitivity" in suite.reading


def test_stylegan2_at_its_source_length_is_pinned_per_dataset() -> None:
    """fewshot256-kimg: DiffAugment's 300 kimg, 500 on AnimalFace (its README), pinned; fewshot256: hours."""
    kimg = {(c.spec.model, c.spec.dataset): c.spec for c in load_suite("fewshot256-kimg").cells}
    hours = {(c.spec.model, c.spec.dataset): c.spec for c in load_suite("fewshot256").cells}
    assert kimg and all(spec.budget_pin == "kimg" and spec.budget_seconds is None for spec in kimg.values())
    assert {k: s.max_kimg for k, s in kimg.items()} == {
        k: 500.0 if k[1].startswith("animalface") else 300.0 for k in kimg
    }
    assert all(hours[k].budget_hours == 20 and hours[k].max_kimg is None for k in kimg)
    assert all(s.iteration_limit(16)[0] == s.max_kimg * 1000 / 16 for s in kimg.values())  # batch 16


def test_budget_scale_and_speed_ratio_apply() -> None:
    base = load_suite("fewshot256").cells[0].spec
    scaled = load_suite("fewshot256", budget_scale=0.01, speed_ratio=4.0).cells[0].spec
    assert scaled.budget_seconds == pytest.approx(base.budget_seconds * 0.01 / 4.0)
    assert scaled.run_id != base.run_id


def test_all_problems_listed_with_file_and_key(tiny_suite, tmp_path) -> None:
    gone = tmp_path / "no-such-folder"
    text = f"""
[suite]
name = "bad"
resolution = 48
datasets = ["shapez", "folder:{gone}"]
colour = "red"
seeds = "0"

[budget]
hours = -1

[eval]
protocols = ["fid5k_fulll"]
detector = "inception-v4"

[models.fastgun]
kwargs = {{}}

[models.baseline]
label = 3
"""
    path = tiny_suite("bad", text=text)
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    for key in (
        "suite.colour: unknown key", "suite.seeds: expected list", "models.baseline.label: expected str",
        "suite.resolution", "budget.hours", "eval.protocols[0]", "eval.detector: unknown detector 'inception-v4'",
        "models.fastgun", "suite.datasets[0]", "suite.datasets[1]: dataset 'folder:", "is not a folder",
    ):  # fmt: skip
        assert key in msg, key
    assert "fastgan" in msg  # close-name suggestion
    assert msg.startswith("10 problem(s)")


def test_dry_run_reports_every_problem_at_once_and_writes_nothing(tiny_suite, tmp_path) -> None:
    path = tiny_suite("bad", text=TINY_SUITE.format(name="bad", iters=4, protocols="[]")
                      .replace('datasets = ["shapes"]', f'datasets = ["folder:{tmp_path / "gone"}"]\nshade = 1')
                      .replace("[models.baseline]", "[models.fastgun]"))  # fmt: skip
    out = tmp_path / "results"
    proc = run_cli("--suite", str(path), "--dry-run", "--out", str(out), "--detector", "nope")
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: 4 problem(s) in suite: ")
    for part in ("suite.shade: unknown key", "suite.datasets[0]", "models.fastgun", "--detector: unknown detector"):
        assert part in line, part
    assert not out.exists()


def test_malformed_toml_and_missing_suite(tiny_suite) -> None:
    path = tiny_suite("broken", text="[suite\nname=")
    with pytest.raises(SuiteError, match="malformed TOML"):
        load_suite(str(path))
    with pytest.raises(BenchError, match="unknown suite 'smokee'.*smoke"):
        load_suite("smokee")


def test_include_merges_and_detects_cycles(tmp_path, tiny_suite) -> None:
    main = tiny_suite("inc")
    (tmp_path / "common.toml").write_text("[eval]\ngrid_size = 9\n")
    main.write_text(main.read_text().replace("[suite]\n", '[suite]\ninclude = ["common.toml"]\n', 1))
    text = main.read_text().replace("grid_size = 4\n", "")
    main.write_text(text)
    assert load_suite(str(main)).cells[0].spec.grid_size == 9
    (tmp_path / "common.toml").write_text('[suite]\ninclude = ["inc.toml"]\n')
    with pytest.raises(SuiteError, match="include cycle"):
        load_suite(str(main))


def test_filters(tiny_suite) -> None:
    suite = load_suite(str(tiny_suite()))
    assert filter_cells(suite, ["baseline"], ["shapes"]) == suite.cells
    with pytest.raises(BenchError, match="--models: fastgan not in suite"):
        filter_cells(suite, ["fastgan"], None)


def test_speed_modes_per_model(tiny_suite) -> None:
    """``precision``, ``compile`` and ``fused_adam`` in a model table reach the spec (and the run id)."""
    path = tiny_suite()
    plain = load_suite(str(path)).cells[0].spec
    path.write_text(path.read_text() + 'precision = "bf16"\ncompile = true\nfused_adam = true\n')
    fast = load_suite(str(path)).cells[0].spec
    assert (fast.precision, fast.compile, fast.fused_adam) == ("bf16", True, True)
    assert (plain.precision, plain.compile, plain.fused_adam) == ("fp32", False, False)
    assert fast.run_id != plain.run_id
    path.write_text(path.read_text().replace("fused_adam = true", 'fused_adam = "yes"'))
    with pytest.raises(SuiteError, match="models.baseline.fused_adam"):
        load_suite(str(path))
