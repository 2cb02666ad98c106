"""bench.report: paper-style tables (golden LaTeX), flags, published numbers, plots, errors."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import bench.report.draw as report_draw
import bench.report.figures as report_figures
import bench.report.imagery as report_imagery
import bench.report.paper as report_paper
import bench.report.render as report_render
import bench.report.tables as report_tables
import bench.report.writer as report_writer
from bench import cli
from bench.errors import BenchError
from bench.plan.specs import RunSpec
from bench.plan.suites import Cell, Suite
from bench.results.collect import SPEC_COLUMNS, collect
from bench.results.io import atomic_write_json
from bench.results.runs import RunPaths, append_eval_row, write_state

GOLDEN = Path(__file__).parent / "golden"
# (group, label, model, budget_hours, seeds)
ROWS_A = [
    ("20 hour", "StyleGAN2", "stylegan2-diffaug", 20.0, (0,)),
    ("5 hour", "FastGAN", "fastgan", 5.0, (0, 1)),
    ("5 hour", "BigGAN (extra, not in paper)", "biggan", 5.0, (0,)),
]


# (BatchNorm mode, its statistics, generation batch) per model, as models.Sampling gives them
SAMPLING = {
    "stylegan2-diffaug": ("none", "none", 32), "fastgan": ("batch", "batch", 16), "baseline": ("batch", "batch", 16),
    "biggan": ("batch", "batch", 50),
}  # fmt: skip


def make_suite(
    rows: list[tuple[str, str, str, float, tuple[int, ...]]] = ROWS_A,
    datasets: tuple[str, ...] = ("obama", "panda"),
    paper_table: str | None = "A",
    name: str = "mini",
) -> Suite:
    cells = [
        Cell(RunSpec(suite=name, model=m, dataset=d, resolution=256, seed=s, budget_hours=b), label, group)
        for group, label, m, b, seeds in rows
        for d in datasets
        for s in seeds
    ]
    return Suite(name, Path(f"{name}.toml"), "", paper_table, list(datasets), cells)


def spec_of(suite: Suite, model: str, dataset: str, seed: int = 0) -> RunSpec:
    return next(c.spec for c in suite.cells if (c.spec.model, c.spec.dataset, c.spec.seed) == (model, dataset, seed))


def evals(
    spec: RunSpec,
    values: list[float],
    *,
    metric: str = "fid5k_full_clean",
    kind: str = "fid",
    standard: bool = True,
    status: str = "done",
    points: list[float] | None = None,
) -> list[dict[str, Any]]:
    """Rows as bench.results.collect gives them, one per evaluation."""
    points = points or [(k + 1) / len(values) for k in range(len(values))]
    return [
        {
            "suite": spec.suite, "run_id": spec.run_id, "model": spec.model, "dataset": spec.dataset,
            "seed": spec.seed, "budget_hours": spec.budget_hours, "budget_scale": 1.0, "status": status,
            "eval_point": p, "step": 100 * (k + 1), "ref_gpu_hours": (spec.budget_hours or 1.0) * p, "kimg": 10.0 * p,
            "snapshot": f"snapshots/snap-{k:08d}.pt", "grid": f"samples/grid-{k:08d}.png",
            "metric": metric, "value": v, "std": None, "kind": kind,
            "detector": "inception-v3" if standard else "inception-random", "detector_standard": standard,
            "mode": "clean", "num_gen": 5000, "reference": "full", "ref_count": 99, "weights": "ema",
            **dict(zip(("bn_mode", "bn_stats", "gen_batch"), SAMPLING[spec.model], strict=True)),
        }
        for k, (p, v) in enumerate(zip(points, values, strict=True))
    ]  # fmt: skip


def golden_case() -> tuple[Suite, pd.DataFrame, dict[str, str]]:
    """Done, mean ± std, beyond-budget, pending, diverged, running and failed cells."""
    s = make_suite()
    rows = evals(spec_of(s, "stylegan2-diffaug", "obama"), [60.0, 55.5, 57.25, 40.0], points=[0.25, 0.5, 1.0, 1.5])
    rows += evals(spec_of(s, "fastgan", "obama", 0), [52.0, 48.0])
    rows += evals(spec_of(s, "fastgan", "obama", 1), [50.0, 47.0])
    rows += evals(spec_of(s, "fastgan", "panda", 0), [11.0, 9.5])
    rows += evals(spec_of(s, "fastgan", "panda", 1), [12.0], status="diverged", points=[0.5])
    rows += evals(spec_of(s, "biggan", "obama"), [70.0], status="running", points=[0.5])
    states = {c.spec.run_id: "todo" for c in s.cells}
    states |= {r["run_id"]: r["status"] for r in rows}
    states[spec_of(s, "biggan", "panda").run_id] = "failed"
    return s, pd.DataFrame(rows), states


def test_golden_latex(tmp_path: Path) -> None:
    suite, df, states = golden_case()
    paths = report_writer.write_report(suite, df, tmp_path, states=states, with_plots=False)
    tex = next(p for p in paths if p.suffix == ".tex")
    assert tex == tmp_path / "tables" / "mini-fid5k_full_clean.tex"
    golden = GOLDEN / "mini-fid5k_full_clean.tex"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(tex.read_text())
    assert tex.read_text() == golden.read_text()


def test_cells_mean_std_pending_diverged_and_paper() -> None:
    suite, df, states = golden_case()
    md = report_render.render_markdown(report_tables.build_table(suite, df, states=states))
    assert "**47.5 ± 2.1**" not in md  # std over seeds of 48 and 47, not of the evaluations
    assert "**47.5 ± 0.7**" in md  # fid5k_full_clean: one decimal (5,000 generated images)
    assert "| 55.5 " in md  # best within budget: the 40.0 at 1.5x the budget is ignored
    assert "diverged (1/2 seeds done)" in md and "| 9.5 " not in md
    assert "pending" in md and "running" in md and "failed" in md
    assert "| 46.87 " in md and "+8.6" in md  # paper sub-row (as published) and Δ of StyleGAN2 (fid5k-train)
    assert "41.05" not in md and "+6.5" not in md  # FastGAN's published numbers are fid2k_fastgan's
    assert "mini: 4/8 cells done (1 running, 1 pending, 1 failed, 1 diverged)" in md


def test_selection_last_names_rule() -> None:
    suite, df, states = golden_case()
    table = report_tables.build_table(suite, df, selection="last", states=states)
    md = report_render.render_markdown(table)
    assert "| 57.2 " in md and "last evaluation within the budget" in md


@pytest.mark.parametrize(
    ("metric", "kind", "best"), [("fid5k_full_clean", "fid", "**40.0**"), ("pr5k_precision", "pr", "**0.700**")]
)
def test_bold_best_follows_metric_direction(metric: str, kind: str, best: str) -> None:
    rows = [("", "A", "baseline", 5.0, (0,)), ("", "B", "fastgan", 5.0, (0,))]
    suite = make_suite(rows, datasets=("obama",), paper_table=None)
    high, low = (0.7, 0.6) if kind == "pr" else (50.0, 40.0)
    df = pd.DataFrame(
        evals(spec_of(suite, "baseline", "obama"), [high], metric=metric, kind=kind)
        + evals(spec_of(suite, "fastgan", "obama"), [low], metric=metric, kind=kind)
    )
    md = report_render.render_markdown(report_tables.build_table(suite, df, states={}))
    assert sum(line.count("**") for line in md.splitlines() if line.startswith("| ")) == 2 and best in md
    assert "| Image number | 99 (paper 100) " in md  # the prepared set's count, the paper's beside it


def test_image_number_is_the_prepared_sets_count() -> None:
    suite = make_suite([("", "FastGAN", "fastgan", 5.0, (0,))], datasets=("shapes", "obama"), paper_table=None)
    df = pd.DataFrame(evals(spec_of(suite, "fastgan", "shapes"), [30.0]) + evals(spec_of(suite, "fastgan", "obama"),
                                                                                     [30.0]))  # fmt: skip
    df.loc[df["dataset"] == "obama", "ref_count"] = 100
    table = report_tables.build_table(suite, df, states={})
    assert table.image_numbers == (99, 100) and table.paper_image_numbers == (None, 100)
    md = report_render.render_markdown(table)
    assert "| Image number | 99 | 100 |" in " ".join(md.split())  # the paper's only beside a different count


def test_nonstandard_detector_is_one_warning_not_a_mark_on_every_cell(tmp_path: Path) -> None:
    suite = make_suite([("", "FastGAN", "fastgan", 5.0, (0,)), ("", "B", "baseline", 5.0, (0,))], datasets=("obama",))
    df = pd.DataFrame(evals(spec_of(suite, "fastgan", "obama"), [30.0], standard=False)
                      + evals(spec_of(suite, "baseline", "obama"), [35.0], standard=False))  # fmt: skip
    paths = report_writer.write_report(suite, df, tmp_path, states={}, with_plots=False)
    assert [p.name.startswith("mini-fid5k_full_clean-inception-random-") for p in paths] == [
        True
    ] * 3  # not the suite's
    tex, md, csv = (p.read_text() for p in paths)
    warning = "these numbers rank this table's rows against each other only"
    assert tex.count(warning) == md.count(warning) == 1 and r"\textbf{Non-standard detector}" in tex
    assert "†" not in md + csv and r"\dag" not in tex and r"$\mathbf{30.0}$ & " not in tex
    assert r"& $\mathbf{30.0}$ \\" in tex and "| **30.0** " in md
    frame = pd.read_csv(paths[2])
    assert frame.loc[frame["source"] == "ours", "detector_standard"].tolist() == [False, False]
    assert "inception-random" in csv


def test_table_b_unaligned_block_printed_as_given() -> None:
    rows = [("8 hour", "FastGAN", "fastgan", 8.0, (0,))]
    suite = make_suite(rows, datasets=("art-paintings", "ffhq-1k"), paper_table="B")
    df = pd.DataFrame(evals(spec_of(suite, "fastgan", "art-paintings"), [44.0], metric="fid2k_fastgan"))
    table = report_tables.build_table(suite, df, states={})
    tex, md, csv = (
        report_render.render_latex(table),
        report_render.render_markdown(table),
        report_render.table_csv(table),
    )
    assert r"\quad paper" not in tex and "Δ" not in md  # nothing guessed into columns
    assert r"\textit{paper (unaligned; column alignment unknown)" in tex
    assert r"\multicolumn{2}{l}{74.56, 25.66, 45.23, 190.23, 152.73, 127.98}" in tex
    assert "N/A, N/A, 36.72, 60.12, 61.23, 107.68" in tex
    assert "| Image number | 99 (paper 1000) | -- (paper 1000) |" in " ".join(md.split())  # ffhq-1k: no run yet
    assert "| Ours (8 hour) | 45.08 | 24.45 | 25.66 | 57.19 | 59.38 | 130.05 |" in " ".join(md.split())
    frame = pd.read_csv(pd.io.common.StringIO(csv))
    unaligned = frame[frame["source"] == "paper (unaligned; column alignment unknown)"]
    assert len(unaligned) == 24 and set(unaligned["dataset"]) == {"?"}


def test_paper_tables_data() -> None:
    tables = report_paper.load_paper_tables()
    assert sorted(tables) == ["A", "B", "C", "D"] and "arXiv 2101.04775" in tables["A"].source
    assert tables["A"].value("fastgan", "obama", 5.0) == 41.05
    assert tables["A"].value("fastgan", "obama", 20.0) is None
    assert tables["A"].absent_reason("fastgan", "obama", 5.0) == ""
    assert tables["A"].absent_reason("fastgan", "obama", 20.0) == "paper: 5 h budget"  # the paper ran FastGAN for 5 h
    assert tables["A"].absent_reason("biggan", "obama", 5.0) == "model not in paper"
    assert tables["A"].absent_reason("fastgan", "shapes", 5.0) == "dataset not in paper"
    assert tables["A"].absent_reason(None, None, 5.0) == "row mixes models"
    assert all(not r.aligned and len(r.values) == 6 for r in tables["B"].rows)
    assert tables["B"].absent_reason("fastgan", "flower", 8.0) == "model not in paper"  # unaligned: never looked up
    assert tables["C"].value("stylegan2-half", "ffhq-70k", 24.0) == 4.4
    assert tables["D"].value("fastgan-ss-ae", "nature-10k", 8.0) == 43.65
    assert tables["B"].image_count("shell") == 60


def test_kid_scaled_and_named_without_paper_comparison() -> None:
    suite = make_suite([("", "FastGAN", "fastgan", 5.0, (0,))], datasets=("obama",))
    df = pd.DataFrame(
        evals(spec_of(suite, "fastgan", "obama"), [0.01234], metric="kid5k_full_clean", kind="kid")
        + evals(spec_of(suite, "fastgan", "obama"), [30.0])
    )
    table = report_tables.build_table(suite, df, metric="kid5k_full_clean", states={})
    tex = report_render.render_latex(table)
    assert r"KID $\times$10$^3$" in tex and r"\quad paper" not in tex
    assert "FastGAN & $12.3$" in tex and r"\mathbf" not in tex  # scaled; one row: compared with nothing
    assert "The paper reports FID only" in tex
    assert report_tables.build_table(suite, df, states={}).metric == "fid5k_full_clean"  # default: first FID metric


def test_output_is_deterministic(tmp_path: Path) -> None:
    suite, df, states = golden_case()
    a = report_writer.write_report(suite, df, tmp_path / "a", states=states, with_plots=False, standalone=True)
    b = report_writer.write_report(suite, df.sample(frac=1.0, random_state=1), tmp_path / "b", states=states,
                            with_plots=False, standalone=True)  # fmt: skip
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_errors_are_bench_errors() -> None:
    suite, df, states = golden_case()
    with pytest.raises(BenchError, match="no results for suite 'mini'"):
        report_tables.build_table(suite, pd.DataFrame(columns=["suite", "run_id", "status"]))
    with pytest.raises(BenchError, match="--metric kid5k_full_clean"):
        report_tables.build_table(suite, df, metric="kid5k_full_clean")
    with pytest.raises(BenchError, match="selection"):
        report_tables.build_table(suite, df, selection="median")
    with pytest.raises(BenchError, match="--budget-scale"):
        report_tables.build_table(make_suite([("", "X", "fastgan", 6.0, (0,))]), df)


def test_cli_unknown_suite_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "--suite", "no-such-suite", "--out", str(tmp_path)]) == 2
    assert "unknown suite" in capsys.readouterr().err


class FakeGenerator:
    """Stands in for a trained model: ``generate`` maps z to flat-colour 8x8 images."""

    z_dim = 4

    def generate(self, z: torch.Tensor, ema: bool = True) -> torch.Tensor:
        return torch.tanh(z[:, :3, None, None].expand(-1, 3, 8, 8))


def write_runs(suite: Suite, rows: list[dict[str, Any]], out: Path) -> None:
    """Run folders as the training loop leaves them: spec, state, evals.jsonl, grids, snapshots."""
    for row in rows:
        spec = next(c.spec for c in suite.cells if c.spec.run_id == row["run_id"])
        paths = RunPaths.of(out, spec)
        atomic_write_json(paths.spec, {"spec": spec.to_dict()})
        write_state(paths, status=row["status"])
        append_eval_row(paths, {k: v for k, v in row.items() if k not in SPEC_COLUMNS})
        (paths.root / row["grid"]).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (int(row["value"]) % 256, 90, 160)).save(paths.root / row["grid"])
        (paths.root / row["snapshot"]).parent.mkdir(parents=True, exist_ok=True)
        (paths.root / row["snapshot"]).write_bytes(b"weights")


def test_plots_from_collected_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [
        ("20 hour", "StyleGAN2", "stylegan2-diffaug", 20.0, (0,)),
        ("5 hour", "FastGAN", "fastgan", 5.0, (0,)),
    ]
    suite = make_suite(rows, datasets=("obama",))
    stylegan2, fastgan = (spec_of(suite, m, "obama") for m in ("stylegan2-diffaug", "fastgan"))
    write_runs(suite, evals(stylegan2, [60.0, 55.0]) + evals(fastgan, [50.0, 45.0]), tmp_path)
    (RunPaths.of(tmp_path, stylegan2).root / "snapshots" / "snap-00000001.pt").unlink()
    monkeypatch.setattr(report_imagery, "load_generator", lambda run_dir, snapshot: FakeGenerator())
    paths = report_writer.write_report(suite, collect(tmp_path, "mini"), tmp_path)  # states from the run folders
    assert "mini: 2/2 cells done" in (tmp_path / "tables" / "mini-fid5k_full_clean.md").read_text()
    plots = tmp_path / "plots" / "mini"
    names = [
        "fid5k_full_clean_over_time_obama",
        "samples_obama",
        f"samples_{fastgan.run_id}",
        f"interp_{fastgan.run_id}",
    ]
    expected = [plots / f"{name}{suffix}" for name in names for suffix in (".png", ".pdf")]
    assert all(p in paths and p.stat().st_size > 0 for p in expected)
    assert not (plots / f"interp_{stylegan2.run_id}.png").exists() and "interpolation strip skipped" in caplog.text
    with Image.open(plots / f"interp_{fastgan.run_id}.png") as img:
        assert img.width > 3 * img.height


def test_curves_on_one_kimg_axis_with_step0_and_real_images_first(tmp_path: Path, monkeypatch) -> None:
    """Runs of different lengths on one scale (kimg: images shown), a marker per evaluation, step 0 included;
    the samples figure opens with a grid of training images."""
    cells = [
        Cell(RunSpec(suite="it", model=m, dataset="shapes", resolution=32, max_iters=100, grid_size=4), label, "")
        for m, label in (("baseline", "Baseline"), ("fastgan", "FastGAN"))
    ]
    suite = Suite("it", Path("it.toml"), "", None, ["shapes"], cells)
    rows = evals(cells[0].spec, [400.0, 60.0, 50.0], points=[0.0, 0.5, 1.0])
    rows += evals(cells[1].spec, [410.0, 45.0], points=[0.0, 1.0])
    for row, kimg in zip(rows, [0.0, 0.4, 0.8, 0.0, 0.2], strict=True):
        row["kimg"] = kimg
    write_runs(suite, rows, tmp_path)
    drawn: dict[str, Any] = {}
    curves_figure, panels_figure = report_draw.curves_figure, report_draw.panels_figure
    monkeypatch.setattr(
        report_draw, "curves_figure", lambda c, **kw: drawn.update(c=c, kw=kw) or curves_figure(c, **kw)
    )
    monkeypatch.setattr(
        report_draw, "panels_figure", lambda p, **kw: drawn.setdefault("p", p) is not None and panels_figure(p, **kw)
    )
    monkeypatch.setattr(report_imagery, "load_generator", lambda run_dir, snapshot: FakeGenerator())
    report_writer.write_report(suite, collect(tmp_path, "it"), tmp_path)
    assert [(c.x, c.y) for c in drawn["c"]] == [([0.0, 0.4, 0.8], [400.0, 60.0, 50.0]), ([0.0, 0.2], [410.0, 45.0])]
    assert drawn["kw"]["xlabel"] == report_figures.X_AXIS.label and "kimg" == report_figures.X_AXIS.column
    label, real = drawn["p"][0]
    assert label == "training images\n4 of 256 at 32 px" and real.shape == (2 * 32 + 3 * 2, 2 * 32 + 3 * 2, 3)
    with Image.open(tmp_path / "plots" / "it" / "real_shapes.png") as img:
        assert img.size == (70, 70)  # 2 x 2 grid, 2 px padding, as the sample grids


@pytest.mark.parametrize("n", [1, 2, 5, 36])
def test_grid_png_lays_out_as_make_grid(n: int) -> None:
    from torchvision.utils import make_grid

    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8)
    expected = make_grid(images, nrow=max(1, int(n**0.5)), padding=2).permute(1, 2, 0).numpy()
    assert (report_draw.load_image(report_draw.grid_png(images.numpy())) == expected).all()


def test_figures_fit_their_content_and_enlarge_small_images_without_smoothing(tmp_path: Path) -> None:
    grid = (np.arange(206 * 206 * 3) % 251).astype(np.uint8).reshape(206, 206, 3)
    big = report_draw.scaled(grid, report_draw.PANEL_SIDE)
    assert big.shape == (412, 412, 3) and (big[::2, ::2] == grid).all() and (big[1::2, 1::2] == grid).all()
    title = "smoke on emoji-faces: training images and each model's best evaluation (lowest seed)"
    fig = report_draw.panels_figure([("training images\n36 of 112 at 32 px", grid), ("Baseline\nseed 0", grid)],
                                    title=title)  # fmt: skip
    png = report_draw.render(fig)[".png"]
    with Image.open(io.BytesIO(png)) as img:
        width, height = img.size
    label_h, title_h = report_draw._text_px("a\nb", 8)[1], report_draw._text_px(title, 10)[1]
    assert height <= 412 + label_h + title_h + 3 * report_draw._PAD  # no empty band
    assert width >= report_draw._text_px(title, 10)[0]  # the title fits, unwrapped
    strip = report_draw.strip_figure(np.zeros((8, 32, 32, 3), np.uint8), title="FastGAN on shapes, seed 0, step 1,000")
    with Image.open(io.BytesIO(report_draw.render(strip)[".png"])) as img:
        assert img.height < 96 + 80 and img.width > 8 * 96  # 32 px enlarged 3x


def test_interpolation_is_a_slerp() -> None:
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    z = report_imagery.slerp(z0, z1, torch.linspace(0, 1, 3))
    assert torch.allclose(z[0], z0) and torch.allclose(z[-1], z1) and z[1, 0] == pytest.approx(z[1, 1] / 2)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_standalone_latex_compiles(tmp_path: Path) -> None:
    if subprocess.run(["kpsewhich", "booktabs.sty"], capture_output=True, text=True).stdout.strip() == "":
        pytest.skip("booktabs.sty not installed (Debian: texlive-latex-recommended)")
    suite, df, states = golden_case()
    df.loc[df["run_id"] == spec_of(suite, "fastgan", "obama", 1).run_id, "detector_standard"] = False
    tex = report_writer.write_report(suite, df, tmp_path, states=states, with_plots=False, standalone=True)[0]
    cmd = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name]
    proc = subprocess.run(cmd, cwd=tex.parent, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert tex.with_suffix(".pdf").stat().st_size > 0
