"""Official FastGAN checkpoints imported as run folders (``import-official``), then loadable like any run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import models
from bench.cli import main
from bench.results.io import file_sha256
from bench.results.runs import RunPaths, load_spec, read_state
from bench.training.checkpoints import load_snapshot_model

ROOT = Path(__file__).resolve().parent.parent


def _official(
    tmp_path: Path, name: str = "all_1200.pth", seed: int = 3, with_ema: bool = True
) -> tuple[Path, models.GANModel]:
    """A checkpoint in the official layout (DataParallel ``module.`` keys; ``g_ema`` a tensor list)."""
    torch.manual_seed(seed)
    src = models.get_model("fastgan", resolution=32)
    with torch.no_grad():
        for p in src.g_ema.parameters():
            p.add_(0.01)  # the EMA weights differ from G's
    ckpt = {
        "g": {f"module.{k}": v for k, v in src.generator.state_dict().items()},
        "d": {f"module.{k}": v for k, v in src.discriminator.state_dict().items()},
    }
    if with_ema:
        ckpt |= {"g_ema": [p.detach().clone() for p in src.g_ema.parameters()], "opt_g": {}, "opt_d": {}}
    path = tmp_path / name
    torch.save(ckpt, path)
    return path, src


def _import(path: Path, out: Path, *extra: str) -> int:
    return main(["import-official", str(path), "--dataset", "shapes", "--resolution", "32", "--out", str(out), *extra])


def test_import_writes_a_run_whose_snapshot_holds_the_official_weights(tmp_path: Path, capsys) -> None:
    path, src = _official(tmp_path)
    out = tmp_path / "results"
    assert _import(path, out) == 0
    (root,) = (out / "runs" / "official").iterdir()
    assert str(root) in capsys.readouterr().out
    paths = RunPaths(root)
    assert read_state(paths)["status"] == "done" and read_state(paths)["step"] == 1200
    assert [p.name for p in paths.snapshots.iterdir()] == ["snap-00001200.pt"]
    spec = load_spec(root)
    assert (spec.model, spec.dataset, spec.resolution, spec.max_iters) == ("fastgan", "shapes", 32, 1200)
    assert "fid2k_fastgan" in spec.protocols
    imported = json.loads(paths.spec.read_text())["resolved"]["imported_from"]
    assert imported == {"path": str(path.resolve()), "sha256": file_sha256(path)}
    model = load_snapshot_model(root)
    for part in ("generator", "g_ema", "discriminator"):
        ours, theirs = getattr(model, part), getattr(src, part)
        for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
            assert torch.equal(a, b), k
    assert _import(path, out) == 0  # the same file again: nothing changes
    assert len(list((out / "runs" / "official").iterdir())) == 1


def test_g_only_checkpoint_uses_g_as_the_ema_generator(tmp_path: Path) -> None:
    path, src = _official(tmp_path, name="50000.pth", with_ema=False)
    out = tmp_path / "results"
    assert _import(path, out) == 0
    (root,) = (out / "runs" / "official").iterdir()
    model = load_snapshot_model(root)
    assert read_state(RunPaths(root))["step"] == 50000
    assert all(torch.equal(a, b) for a, b in zip(model.g_ema.parameters(), src.generator.parameters(), strict=True))


@pytest.mark.parametrize(
    ("make", "args", "expect"),
    [
        (lambda d: d / "missing.pth", [], "no such checkpoint file"),
        (lambda d: (d / "all_5.pth").write_text("text") and d / "all_5.pth", [], "not a readable torch checkpoint"),
        (lambda d: torch.save({"g": {}}, d / "all_5.pth") or d / "all_5.pth", [], "with 'g' and 'd'"),
        (lambda d: _official(d)[0], ["--model", "stylegan2-lite"], "FastGAN family only"),
        (lambda d: _official(d)[0], ["--model", "baseline"], "does not match this model"),
        (lambda d: _official(d, name="final.pth")[0], [], "pass --step N"),
        (lambda d: _official(d)[0], ["--model", "fastgun"], "fastgan"),
        (lambda d: _official(d)[0], ["--model", "fastgan:ngf"], "NAME[:KEY=VALUE...]"),
        (lambda d: _official(d)[0], ["--model", "fastgan:ngf=8"], "does not match this model"),
    ],
)
def test_bad_imports_exit_2_with_one_line_and_write_nothing(tmp_path: Path, capsys, make, args, expect) -> None:
    path, out = make(tmp_path), tmp_path / "results"
    assert _import(path, out, *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and expect in err, err
    assert not (out / "runs").exists()


def test_another_checkpoint_at_the_same_place_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "results"
    first, _ = _official(tmp_path)
    assert _import(first, out) == 0
    (tmp_path / "other").mkdir()
    second, _ = _official(tmp_path / "other", seed=4)
    capsys.readouterr()
    assert _import(second, out) == 2
    assert "--suite NAME" in capsys.readouterr().err
    assert _import(second, out, "--suite", "official-b") == 0


def test_the_official_parity_fixture_imports_and_reproduces_its_outputs(tmp_path: Path) -> None:
    """The official code's own state dicts (the shipped fixture: 256 px, ngf = ndf = 8; any fixture of that form
    at its ``im_size``) through ``import-official``: the snapshot's generator gives the official outputs (train
    mode, as the fixture was made)."""
    fixture = Path(os.environ.get("FASTGAN_PARITY_FIXTURE", ROOT / "../shared/fixtures/fastgan_official_256_ngf8.pt"))
    if not fixture.is_file():
        pytest.skip(f"parity fixture not found at {fixture} (set FASTGAN_PARITY_FIXTURE)")
    fx = torch.load(fixture, weights_only=True)
    path = tmp_path / "all_100.pth"
    torch.save({"g": fx["G_state"], "d": fx["D_state"]}, path)
    w, out = fx["ngf"], tmp_path / "results"
    entry = f"fastgan:ngf={w}:ndf={w}:nz={fx['nz']}"
    size = str(fx.get("im_size", 256))
    args = ["import-official", str(path), "--dataset", "shapes", "--resolution", size, "--model", entry]
    assert main([*args, "--out", str(out)]) == 0
    (root,) = (out / "runs" / "official").iterdir()
    model = load_snapshot_model(root).train()
    with torch.no_grad():
        big, small = model.generator(fx["z"])
    assert (big - fx["G_out_big"]).abs().max().item() <= 1e-5
    assert (small - fx["G_out_128"]).abs().max().item() <= 1e-5
