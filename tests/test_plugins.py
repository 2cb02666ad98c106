"""Models from outside the repository: ``--plugin`` (a .py file or a module name; in launched jobs too),
the entry-point group ``fewshot_gan_bench.models``, and the scan of ``models/`` reporting a file it
cannot import. Registering plugin models happens in child processes, so this process's registry (which
other tests enumerate) stays the repository's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

import models
import models.plugins as plugins
from models import ModelConfigError
from models.plugins import ENTRY_POINT_GROUP, load_plugin

PLUGIN = '''
"""A model family of one's own, outside the repository: a Baseline whose generator output is halved."""
from models import get_model, register_model


@register_model("halfgan", recipe="test plugin: the baseline with a damped output", tiny={"batch_size": 4})
def halfgan(resolution: int, **kwargs):
    """The baseline under a plugin's name. Params: as the baseline's."""
    model = get_model("baseline", resolution=resolution, **kwargs)
    model.halved = True
    return model
'''
TINY = "halfgan:recon=mse:ngf=4:ndf=4:batch_size=4"


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    path = tmp_path / "lab" / "my_halfgan.py"
    path.parent.mkdir()
    path.write_text(PLUGIN)
    return path


def test_a_plugin_file_trains_in_a_launched_job_and_is_recorded(plugin: Path, tmp_path: Path) -> None:
    """``train --plugin FILE --launcher submitit-local``: the job (another process) imports the plugin too."""
    out = tmp_path / "results"
    argv = ["train", "--plugin", str(plugin), "--data", "shapes", "--model", TINY, "--resolution", "32", "--iters",
            "2", "--protocol", "none", "--out", str(out), "--no-progress", "--launcher", "submitit-local"]  # fmt: skip
    res = run_cli(*argv, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    (run_dir,) = (p.parent for p in (out / "runs" / "train").glob("*/spec.json"))
    assert json.loads((run_dir / "state.json").read_text())["status"] == "done"
    doc = json.loads((run_dir / "spec.json").read_text())
    assert doc["spec"]["model"] == "halfgan" and doc["resolved"]["plugins"] == [str(plugin.resolve())]
    assert doc["resolved"]["model_module"].endswith(".my_halfgan")
    without = run_cli(
        "eval", "--network", str(run_dir), "--protocol", "fid50_full_clean", "--out", str(out), cwd=tmp_path
    )
    assert without.returncode == 2 and without.stderr.startswith("error: unknown model 'halfgan'")
    assert "pass --plugin MODULE" in without.stderr and len(without.stderr.splitlines()) == 1


def test_entry_points_register_models_and_a_broken_one_is_a_warning(tmp_path: Path) -> None:
    """An installed package's entry point is imported with ``models``; one that fails warns, the rest work."""
    (tmp_path / "ep_halfgan.py").write_text(PLUGIN)
    (tmp_path / "ep_broken.py").write_text("raise RuntimeError('this plugin is broken')\n")
    info = tmp_path / "ep_halfgan-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-halfgan\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nhalfgan = ep_halfgan\nbroken = ep_broken\n")
    code = "import models; print(models.model_info('halfgan').module, models.model_info('halfgan').family)"
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["ep_halfgan", "ep_halfgan"]
    assert "model plugin broken = ep_broken (entry point of ep-halfgan) failed to import" in res.stderr
    assert "RuntimeError: this plugin is broken" in res.stderr


@pytest.mark.parametrize(
    "spec, text, expect",
    [
        ("no_such_plugin_module", None, "--plugin no_such_plugin_module: no module named 'no_such_plugin_module'"),
        ("missing.py", None, "no such .py file"),
        ("broken.py", "raise RuntimeError('boom')\n", "importing it failed (RuntimeError: boom); fix the module"),
        ("needs.py", "import no_such_dependency_xyz\n", "importing it failed (ModuleNotFoundError"),
    ],
)
def test_a_plugin_that_cannot_load_is_one_line(spec: str, text: str | None, expect: str, tmp_path: Path) -> None:
    path = tmp_path / spec
    if text is not None:
        path.write_text(text)
    with pytest.raises(ModelConfigError) as exc:
        load_plugin(str(path) if spec.endswith(".py") else spec)
    assert expect in str(exc.value) and "\n" not in str(exc.value)


def test_a_plugin_that_registers_nothing_warns_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(plugins, "_LOADED", {})  # this process's record of loaded plugins: the test's own
    path = tmp_path / "empty_plugin.py"
    path.write_text("X = 1\n")
    with pytest.warns(UserWarning, match="registered no model"):
        recorded = load_plugin(str(path))
    assert recorded == str(path.resolve()) and load_plugin(str(path)) == recorded  # the second time: nothing


def test_every_module_of_a_model_package_is_imported_and_a_bad_name_reported(tmp_path: Path, monkeypatch) -> None:
    """The scan imports ``<family>_<part>`` files too (no name is skipped silently); one whose name cannot be a
    module's is reported."""
    pkg = tmp_path / "scanpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in ("my_gan.py", "plain.py", "my-gan.py"):
        (pkg / name).write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(UserWarning, match=r"my-gan\.py: not imported .* rename it, e\.g\. my_gan"):
        imported = models.import_all("scanpkg", [str(pkg)])
    assert imported == ["my_gan", "plain"]
    assert sys.modules["scanpkg.my_gan"].LOADED


def test_the_repositorys_families_are_found_without_a_name_rule() -> None:
    assert models.family_modules() == ["biggan", "fastgan", "stylegan2"]
    assert {models.model_info(n).module for n in models.list_models()} == {
        "models.biggan", "models.fastgan", "models.stylegan2",
    }  # fmt: skip
