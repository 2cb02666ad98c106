"""A paper dataset prepared from a folder, then a budgeted suite run on it: completes, then only reports."""

from __future__ import annotations

import numpy as np
from conftest import run_cli
from PIL import Image

SUITE = """
[suite]
name = "prep"
resolution = 32
datasets = ["panda"]

[budget]
hours = 1.0

[eval]
protocols = []
detector = "inception-random"
fractions = [1.0]
grid_size = 4

[models.baseline]
kwargs = { recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }
"""


def test_unprepared_then_prepared_budgeted_run(tiny_suite, tmp_path) -> None:
    suite = tiny_suite("prep", text=SUITE)
    out = tmp_path / "results"
    missing = run_cli("--suite", str(suite), "--out", str(out), "--no-progress")
    assert missing.returncode == 2
    assert "python run_bench.py prepare --dataset panda --src" in missing.stderr
    assert not (out / "runs").exists()

    src = tmp_path / "panda"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(97):  # the registry says 100: a warning, recorded, not an error
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(src / f"{i:03d}.png")
    prep = run_cli("prepare", "--dataset", "panda", "--src", str(src), "--resolution", "64", "--out", str(out))
    assert prep.returncode == 0, prep.stderr
    assert "97" in prep.stdout and "registry expects 100" in prep.stderr

    # 1 reference-GPU-hour scaled to 2 s of CPU training; resized from the prepared 64 px tensor
    args = ("--suite", str(suite), "--out", str(out), "--no-progress", "--budget-scale", str(2 / 3600))
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "1 done" in first.stdout
    files = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file() and p.name != "lock"}
    second = run_cli(*args)
    assert second.returncode == 0 and "1 done" in second.stdout
    assert files == {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file() and p.name != "lock"}
