"""Nothing the harness loads can execute code: pickle payloads in checkpoints, snapshots and caches are refused.

Every payload below writes a marker file when unpickled; the tests assert the marker never appears.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import models
from bench.cli import main
from bench.data.catalog import load_dataset
from bench.errors import CheckpointError
from bench.plan.suites import load_suite
from bench.results.runs import RunPaths, cache_dirs, read_state
from bench.training.cell import run_cell
from bench.training.checkpoints import load_snapshot_model
from bench.training.options import LoopOptions
from models.fastgan import load_official_state

ROOT = Path(__file__).resolve().parent.parent


class Payload:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def _evil_file(path: Path, marker: Path, **fields) -> Path:
    """A torch file shaped like a harness checkpoint whose model state is a payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 1, **fields, "model": Payload(marker)}, path)
    return path


def test_payload_is_live(tmp_path) -> None:
    """The payload really runs under a plain (unsafe) load, so the tests below are not vacuous."""
    marker = tmp_path / "ran"
    evil = _evil_file(tmp_path / "evil.pt", marker)
    torch.load(evil, weights_only=False)
    assert marker.exists()


def _interrupted_run(tiny_suite, out: Path):
    spec = load_suite(str(tiny_suite(iters=4))).cells[0].spec
    calls = iter(range(100))
    opts = LoopOptions(out=out, progress=False, should_stop=lambda: next(calls) == 2)
    assert run_cell(spec, opts) == "todo"  # checkpoint at step 2 (the 0.5 evaluation) and 3 (stop)
    return spec, opts


def test_malicious_checkpoint_is_skipped_not_executed(tiny_suite, tmp_path) -> None:
    spec, opts = _interrupted_run(tiny_suite, tmp_path)
    paths = RunPaths.of(tmp_path, spec)
    marker = tmp_path / "ran"
    _evil_file(paths.checkpoints / "ckpt-00000099.pt", marker, model_name=spec.model, resolution=spec.resolution,
               step=99)  # fmt: skip
    assert run_cell(spec, dataclasses.replace(opts, should_stop=None)) == "done"
    assert not marker.exists()
    events = [json.loads(line) for line in paths.events.read_text().splitlines()]
    corrupt = [e for e in events if e["event"] == "corrupt_checkpoint"]
    assert corrupt and corrupt[0]["path"] == "ckpt-00000099.pt" and "Unpickl" in corrupt[0]["error"]
    assert [e for e in events if e["event"] == "resume"][-1]["step"] == 3
    assert read_state(paths)["step"] == 4


def test_malicious_snapshot_is_refused(tiny_suite, tmp_path) -> None:
    spec, _ = _interrupted_run(tiny_suite, tmp_path)
    paths = RunPaths.of(tmp_path, spec)
    marker = tmp_path / "ran"
    evil = _evil_file(paths.snapshots / "snap-00000099.pt", marker, model_name=spec.model, resolution=32, step=99)
    with pytest.raises(CheckpointError, match="unreadable snapshot"):
        load_snapshot_model(paths.root, evil.name)
    assert main(["eval", "--run", str(paths.root), "--checkpoint", evil.name, "--out", str(tmp_path)]) == 2
    assert not marker.exists()


def test_malicious_dataset_cache_is_rebuilt(tmp_path) -> None:
    data_cache, _ = cache_dirs(tmp_path)
    good = load_dataset("shapes", 32, cache_dir=data_cache)
    marker = tmp_path / "ran"
    torch.save({"images": Payload(marker)}, data_cache / "shapes-32.pt")  # the manifest is left in place
    again = load_dataset("shapes", 32, cache_dir=data_cache)
    assert not marker.exists()
    assert torch.equal(again.images, good.images)


def test_malicious_metric_cache_is_not_unpickled(tmp_path) -> None:
    """Reference-feature caches are .npz read with allow_pickle=False: an object array is refused."""
    from bench.metrics import features

    marker = tmp_path / "ran"
    path = tmp_path / "ref.npz"
    np.savez(path, features=np.array([Payload(marker)], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"), np.load(path, allow_pickle=False) as saved:
        saved["features"]
    assert not marker.exists()
    assert "allow_pickle=False" in Path(features.__file__).read_text()


def test_malicious_init_from_is_refused(tmp_path) -> None:
    marker = tmp_path / "ran"
    evil = _evil_file(tmp_path / "evil.pt", marker)
    with pytest.raises(models.ModelConfigError, match="init_from"):
        models.get_model("stylegan2-lite-finetune", resolution=32, init_from=str(evil))
    assert not marker.exists()


def _official_checkpoint(model, path: Path) -> None:
    """What the official FastGAN train.py saves: G/D state (DataParallel prefix), EMA list, optimizers."""
    torch.save(
        {
            "g": {f"module.{k}": v for k, v in model.generator.state_dict().items()},
            "d": {f"module.{k}": v for k, v in model.discriminator.state_dict().items()},
            "g_ema": [p.detach().clone() + 1 for p in model.generator.parameters()],
            "opt_g": model.opt_g.state_dict(),
            "opt_d": model.opt_d.state_dict(),
        },
        path,
    )


def test_official_fastgan_checkpoint_loads_weights_only(tmp_path) -> None:
    kw = {"ngf": 4, "ndf": 4, "recon": "mse", "batch_size": 2}
    torch.manual_seed(0)
    src = models.get_model("fastgan", resolution=32, **kw)
    src.train_step(torch.rand(2, 3, 32, 32) * 2 - 1, 0)  # non-trivial optimizer state
    path = tmp_path / "all_1000.pth"
    _official_checkpoint(src, path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    dst = models.get_model("fastgan", resolution=32, **kw)
    load_official_state(dst, ckpt["g"], ckpt["d"], g_ema=ckpt["g_ema"])
    dst.opt_g.load_state_dict(ckpt["opt_g"])
    for k, v in src.generator.state_dict().items():
        assert torch.equal(dst.generator.state_dict()[k], v), k
    assert all(torch.equal(a, b) for a, b in zip(dst.g_ema.parameters(), ckpt["g_ema"], strict=True))
    marker = tmp_path / "ran"
    torch.save({"g": Payload(marker), "d": {}}, path)
    with pytest.raises(Exception, match="Unpickl|weights_only"):
        torch.load(path, map_location="cpu", weights_only=True)
    assert not marker.exists()


def _python_files() -> list[Path]:
    return sorted([*(ROOT / "bench").rglob("*.py"), *(ROOT / "models").rglob("*.py"), ROOT / "run_bench.py"])


def _calls(tree: ast.AST, dotted: str) -> list[ast.Call]:
    """Calls spelled ``a.b(...)`` (e.g. ``torch.load``) in ``tree``."""
    owner, name = dotted.rsplit(".", 1)
    return [
        node for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name
        and ast.unparse(node.func.value).endswith(owner)
    ]  # fmt: skip


def _kw(call: ast.Call, name: str) -> object:
    found = [k.value for k in call.keywords if k.arg == name]
    return ast.literal_eval(found[0]) if found else "absent"


def test_every_load_is_weights_only() -> None:
    """Every ``torch.load(`` in bench/ and models/ passes weights_only=True; no pickle, no shell."""
    loads = 0
    for path in _python_files():
        text = path.read_text()
        tree = ast.parse(text)
        calls = _calls(tree, "torch.load")
        assert len(calls) == text.count("torch.load("), f"{path}: torch.load called in an unusual way"
        for call in calls:
            assert _kw(call, "weights_only") is True, f"{path}:{call.lineno}: torch.load without weights_only=True"
        loads += len(calls)
        for call in _calls(tree, "np.load") + _calls(tree, "numpy.load"):
            assert _kw(call, "allow_pickle") in (False, "absent"), f"{path}:{call.lineno}: np.load with pickles"
        for bad in ("pickle.load", "pickle.loads", "dill.load", "yaml.load", "os.system", "os.popen"):
            assert not _calls(tree, bad), f"{path}: {bad}"
        for call in _calls(tree, "subprocess.run") + _calls(tree, "subprocess.Popen"):
            assert _kw(call, "shell") in (False, "absent"), f"{path}:{call.lineno}: a shell runs user strings"
    assert loads >= 4  # checkpoints, snapshots, dataset caches, init_from
