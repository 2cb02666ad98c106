"""The images the report computes (bench.report.imagery): an interpolation strip drawn from its seed alone
(not from whatever the global RNG holds), remembered per snapshot file; a draw of training images remembered
per recorded content hash; both read back exactly, so a warm ``report`` writes the same bytes without torch."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_SUITE
from PIL import Image

import bench.report.imagery as imagery
from bench.cli import main
from bench.data.catalog import load_dataset
from bench.plan import names
from bench.results.runs import load_spec
from bench.training.checkpoints import load_snapshot_model
from bench.training.modelsize import check_fits_remembered
from models import ModelConfigError


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    """(results folder, run folder, newest snapshot under it) of a 2-step tiny Baseline (noise inputs) on a
    folder of 8 images, scored with 50 images on effnet-lite0 (seconds: a report then has a table); the
    registries' and images' cache in the module's own folder."""
    tmp = tmp_path_factory.mktemp("imagery")
    (tmp / "images").mkdir()
    for i in range(8):
        Image.effect_noise((32, 32), 40 + 10 * i).convert("RGB").save(tmp / "images" / f"{i}.png")
    text = TINY_SUITE.format(name="tiny", iters=2, protocols='["fid50_full"]')
    text = text.replace("inception-random", "effnet-lite0")
    text = text.replace("fractions = [0.5, 1.0]", "fractions = [1.0]").replace('["shapes"]', f'["folder:{tmp}/images"]')
    (tmp / "tiny.toml").write_text(text)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(names.CACHE_ENV, str(tmp / "cache"))
        mp.setattr(names, "_loaded", {})  # not a document another test's cache left in memory: this one's file
        out = tmp / "results"
        assert main(["--suite", str(tmp / "tiny.toml"), "--out", str(out), "--no-progress"]) == 0
        (run,) = (out / "runs" / "tiny").iterdir()
        yield out, run, str(sorted((run / "snapshots").glob("snap-*.pt"))[-1].relative_to(run))


def test_a_strip_is_remembered_per_snapshot_and_read_back_exactly(trained, monkeypatch) -> None:
    """The CPU training run left its snapshot's strip in the cache: read back (nothing built), the same bits as
    drawing it from the snapshot; drawn again when the entry is unreadable or the snapshot changed."""
    out, run, snapshot = trained
    built = []
    monkeypatch.setattr(imagery, "load_generator", lambda *a: built.append(a) or load_snapshot_model(run, snapshot))
    torch.manual_seed(123)  # the global RNG's state must not matter (FastGAN's noise inputs draw from it)
    drawn = imagery.strip_images(run, snapshot)
    assert drawn.dtype == np.uint8 and drawn.shape == (imagery.STRIP_STEPS, 32, 32, 3) and built == []
    torch.manual_seed(7)
    assert np.array_equal(drawn, imagery.interpolation_images(load_snapshot_model(run, snapshot)))
    row = np.concatenate(list(drawn), axis=1)
    (stored,) = [p for p in (out.parent / "cache" / "images").glob("*.png") if np.array_equal(imagery._read(p), row)]
    stored.write_bytes(b"not a png")  # an unreadable entry: drawn again
    assert np.array_equal(imagery.strip_images(run, snapshot), drawn) and len(built) == 1
    st = (run / snapshot).stat()
    os.utime(run / snapshot, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the snapshot changed: drawn again
    assert np.array_equal(imagery.strip_images(run, snapshot), drawn) and len(built) == 2


def test_a_draw_of_training_images_is_remembered_only_for_the_set_the_runs_recorded(trained) -> None:
    out, run, _ = trained
    dataset = load_spec(run).dataset
    data = load_dataset(dataset, 32, cache_dir=out / "cache" / "datasets")
    loads = []

    def load():
        loads.append(1)
        return data

    first = imagery.training_images(dataset, 32, 4, {data.sha256}, load)  # left by the CPU training run
    assert first[1] == len(data.images) and loads == []
    for recorded in ({"0" * 64}, {data.sha256, "0" * 64}, set()):  # another set, runs disagreeing, none recorded
        assert imagery.training_images(dataset, 32, 4, recorded, load) == first  # drawn: the same bytes
    assert loads == [1, 1, 1]


def test_a_warm_report_writes_the_same_bytes_without_building_a_model(trained) -> None:
    """(A suite of built-in datasets imports no torch at all then; a folder's fingerprint still does.)"""
    out, _, _ = trained
    env = os.environ | {"PYTHONPATH": str(ROOT), names.CACHE_ENV: str(out.parent / "cache")}
    argv = ["report", "--suite", str(out.parent / "tiny.toml"), "--out", str(out)]
    code = f"import sys; from bench.cli import main; main({argv!r}); print('MODELS', 'models' in sys.modules)"
    written = []
    for _ in range(2):  # the training run left its strip and draw in the cache: not even the first report builds
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                             timeout=600)  # fmt: skip
        written.append({p.name: p.read_bytes() for p in sorted((out / "plots" / "tiny").iterdir())})
        assert res.stdout.splitlines()[-1] == "MODELS False", res.stderr[-2000:]
    assert any(name.startswith("interp_") for name in written[0]) and written[0] == written[1]


def test_a_passed_size_check_is_remembered_a_refused_one_is_not(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(names.CACHE_ENV, str(tmp_path / "cache"))
    import bench.training.modelsize as modelsize

    built = []
    meta_model = modelsize.meta_model
    monkeypatch.setattr(modelsize, "meta_model", lambda *a: built.append(a) or meta_model(*a))
    for _ in range(2):
        check_fits_remembered("baseline", 32, {"ngf": 4, "ndf": 4}, torch.device("cpu"), training=True)
    assert len(built) == 1
    for _ in range(2):
        with pytest.raises(ModelConfigError, match="lower its widths"):
            check_fits_remembered("baseline", 1024, {"ngf": 100_000}, torch.device("cpu"), training=True)
    assert len(built) == 3
