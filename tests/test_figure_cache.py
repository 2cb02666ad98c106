"""Rendered figures remembered between reports (bench.report.figure_cache): a figure is drawn again when
any input, setting or the drawing function changes, a damaged entry is drawn again, a stand-in drawer is
always called, and a warm report draws nothing and writes the same bytes (rewriting no file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_report import FakeGenerator, evals, make_suite, spec_of, write_runs

import bench.report.draw as draw
import bench.report.imagery as imagery
import bench.report.writer as writer
from bench.plan import names
from bench.report.figure_cache import rendered
from bench.results.collect import collect

IMG = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)


def _changed(img: np.ndarray) -> np.ndarray:
    out = img.copy()
    out[3, 4, 1] ^= 1  # one channel of one pixel, by one
    return out


LABELS = {"title": "t", "note": "n", "xlabel": "x", "ylabel": "y"}
# drawer -> (args, kwargs) and the same with one input changed a little (a value by 1e-9: not a pixel apart)
CASES: dict[str, tuple[Any, tuple[tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]] = {
    "curves": (
        draw.curves_figure,
        (([draw.Curve("Baseline", [0.0, 1.0], [300.0, 120.0])],), LABELS),
        (([draw.Curve("Baseline", [0.0, 1.0], [300.0, 120.0 + 1e-9])],), LABELS),
    ),
    "panels": (
        draw.panels_figure,
        (([("Baseline\nseed 0", IMG), ("FastGAN", None)],), {"title": "t"}),
        (([("Baseline\nseed 0", _changed(IMG)), ("FastGAN", None)],), {"title": "t"}),
    ),
    "strip": (draw.strip_figure, ((np.stack([IMG, IMG]),), {"title": "t"}), ((np.stack([IMG, IMG]),), {"title": "t2"})),
}  # fmt: skip


@pytest.fixture
def draws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A fresh cache folder; each figure rendered (drawn, not read back) appends to the list returned."""
    monkeypatch.setenv(names.CACHE_ENV, str(tmp_path / "cache"))
    count: list[int] = []
    render = draw.render
    monkeypatch.setattr(draw, "render", lambda fig: count.append(1) or render(fig))
    return count


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_figure_is_drawn_again_when_an_input_changes(case: str, draws: list[int]) -> None:
    fn, (args, kwargs), (changed_args, changed_kwargs) = CASES[case]
    first = rendered(fn, *args, **kwargs)
    assert set(first) == {".png", ".pdf"} and len(draws) == 1
    assert rendered(fn, *args, **kwargs) == first and len(draws) == 1  # read back, not drawn
    rendered(fn, *changed_args, **changed_kwargs)
    assert len(draws) == 2
    assert rendered(fn, *args, **kwargs) == first and len(draws) == 2  # both remembered


def test_a_setting_a_damaged_entry_or_a_stand_in_drawer_draws_again(
    draws: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = np.stack([IMG, IMG])
    first = rendered(draw.strip_figure, images, title="t")
    (png,) = (tmp_path / "cache" / "figures").glob("*.png")
    for damage in (b"\x89PNG\r\n\x1a\n", b""):  # a cut entry, an empty one: drawn again, then stored again
        png.write_bytes(damage)
        assert rendered(draw.strip_figure, images, title="t") == first
    png.with_suffix(".json").write_text("[1, 2]")  # a record of another form
    assert rendered(draw.strip_figure, images, title="t") == first and len(draws) == 4
    assert rendered(draw.strip_figure, images, title="t") == first and len(draws) == 4  # whole again
    monkeypatch.setattr(draw, "STRIP_SIDE", 56)  # a setting changed at run time
    assert rendered(draw.strip_figure, images, title="t")[".png"] != first[".png"] and len(draws) == 5
    stand_in = lambda *a, **k: draw.strip_figure(*a, **k)  # noqa: E731 (a test's stand-in drawer)
    for _ in range(2):
        rendered(stand_in, images, title="t")
    assert len(draws) == 7


def test_a_warm_report_draws_nothing_and_writes_the_same_files(
    draws: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = make_suite([("", "FastGAN", "fastgan", 5.0, (0,)), ("", "Baseline", "baseline", 5.0, (0,))], ("obama",))
    fastgan, baseline = (spec_of(suite, m, "obama") for m in ("fastgan", "baseline"))
    write_runs(suite, evals(fastgan, [50.0, 45.0]) + evals(baseline, [70.0, 60.0]), tmp_path)
    monkeypatch.setattr(imagery, "load_generator", lambda run_dir, snapshot: FakeGenerator())

    def report() -> dict[Path, tuple[bytes, int]]:
        paths = writer.write_report(suite, collect(tmp_path, "mini"), tmp_path)
        return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}

    cold = report()
    drawn = len(draws)
    assert drawn == sum(p.suffix == ".pdf" for p in cold) >= 5  # each figure is a PNG and a PDF
    assert report() == cold and len(draws) == drawn  # nothing drawn, every file as it was (not even rewritten)
    rows = evals(baseline, [70.0, 59.0])  # one number changed: its curve is drawn again, nothing else
    (tmp_path / "runs" / "mini" / baseline.run_id / "evals.jsonl").unlink()
    write_runs(suite, rows, tmp_path)
    changed = {p for p, (data, _) in report().items() if data != cold[p][0]}
    assert len(draws) == drawn + 3  # the curves, the samples side by side and the run's (its grid shows the value)
    assert {p.stem for p in changed if p.parent.name == "mini"} == {
        "fid5k_full_clean_over_time_obama", "samples_obama", f"samples_{baseline.run_id}"}  # fmt: skip
