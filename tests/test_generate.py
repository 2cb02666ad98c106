"""`generate`: a run's generated images as PNGs, the same uint8 images its protocol scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.cli import main
from bench.metrics import features
from bench.results.runs import load_spec
from bench.training.checkpoints import load_snapshot_model


def _trained_run(tiny_suite, tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "results"
    assert main(["--suite", str(tiny_suite(iters=2)), "--out", str(out), "--no-progress"]) == 0
    (run,) = (out / "runs" / "tiny").iterdir()
    return out, run


def test_generate_writes_the_protocols_images_as_pngs(tiny_suite, tmp_path: Path, capsys) -> None:
    _, run = _trained_run(tiny_suite, tmp_path)
    outdir = tmp_path / "gen"
    assert main(["generate", "--run", str(run), "--outdir", str(outdir), "--protocol", "fid2k_fastgan",
                 "--num", "5", "--device", "cpu"]) == 0  # fmt: skip
    assert f"5 images of {run.name}" in capsys.readouterr().out
    pngs = sorted(outdir.glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(5)]
    record = json.loads((outdir / "generated.json").read_text())
    assert record["protocol"] == "fid2k_fastgan" and record["bn_mode"] == "batch" and record["images"] == 5
    assert record["gen_batch"] == 16 and record["bn_stats"] == "batch"
    assert record["snapshot"].startswith("snap-") and record["run_id"] == run.name
    model = load_snapshot_model(run, device="cpu")
    seed = load_spec(run).seed
    expected = torch.cat(list(features.generated_batches(
        model, 5, seed=seed, device=torch.device("cpu"), ema=True, truncation=1.0, bn="batch", batch=16,
    )))  # fmt: skip
    for png, image in zip(pngs, expected, strict=True):
        assert np.array_equal(np.asarray(Image.open(png)), image.permute(1, 2, 0).numpy())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".gen")] == []  # no temporary folder left


def test_generate_refuses_an_existing_folder_and_bad_names(tiny_suite, tmp_path: Path, capsys) -> None:
    _, run = _trained_run(tiny_suite, tmp_path)
    outdir = tmp_path / "gen"
    outdir.mkdir()
    (outdir / "keep.txt").write_text("mine")
    cases = [
        (["--run", str(run), "--outdir", str(outdir)], "exists; choose a new folder"),
        (["--run", str(run), "--outdir", str(tmp_path / "g2"), "--protocol", "fid5k_ful"], "fid5k_full_clean"),
        (["--run", str(tmp_path), "--outdir", str(tmp_path / "g3")], "not a run folder"),
        (["--run", str(run), "--outdir", str(tmp_path / "g4"), "--checkpoint", "snap-9.pt"], "snap-9.pt"),
    ]
    for argv, expect in cases:
        capsys.readouterr()
        assert main(["generate", *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and expect in err, err
    assert [p.name for p in outdir.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen", "results", "tiny.toml"]
