"""The field's habits, end to end on the real command line (in this process: ``bench.cli.main``): a folder
trained with the one-line ``train`` (the same run a suite cell with those settings makes, resumable,
listed by ``status``), scored with ``eval --folder`` and ``eval --network``, TensorBoard events read
back, and the examples of :mod:`bench.api` run as doctests (the folder-vs-folder sanity check among
them: two halves of emoji-faces score far closer than emoji against noise)."""

from __future__ import annotations

import doctest
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bench.api
import bench.training.tblog as tblog
from bench.cli import main
from bench.data.catalog import load_dataset
from bench.plan import protocol_names
from bench.plan.suites import load_suite
from bench.results.runs import RunPaths, read_state

HAVE_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None
MODEL = "baseline:recon=mse:ngf=4:ndf=4:batch_size=4"
KWARGS = '{ recon = "mse", ngf = 4, ndf = 4, batch_size = 4 }'


def _pngs(folder: Path, images: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    return folder


def _train_argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", f"folder:{data}", "--model", MODEL, "--resolution", "32", "--iters", "10",
            "--protocol", "fid50_full_clean", "--detector", "effnet-lite0", "--eval-at", "1", "--grid-size", "4",
            "--out", str(out), "--no-progress", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two halves of emoji-faces (32 px) and 56 noise images as folders; a run trained on the first half by
    the one-line ``train`` (with --tensorboard when the package is installed)."""
    tmp = tmp_path_factory.mktemp("world")
    faces = load_dataset("emoji-faces", 32, cache_dir=tmp / "cache").images.permute(0, 2, 3, 1).numpy()
    noise = np.random.default_rng(0).integers(0, 256, (56, 32, 32, 3), dtype=np.uint8)
    w = {"real_a": _pngs(tmp / "real_a", faces[0::2]), "real_b": _pngs(tmp / "real_b", faces[1::2]),
         "noise": _pngs(tmp / "noise", noise), "results": tmp / "results"}  # fmt: skip
    w["argv"] = _train_argv(w["real_a"], w["results"], *(["--tensorboard"] if HAVE_TENSORBOARD else []))
    assert main(w["argv"]) == 0
    (w["run_dir"],) = (w["results"] / "runs" / "train").iterdir()
    return w


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()]


def test_train_makes_the_run_a_suite_cell_would(world: dict, tmp_path: Path) -> None:
    """Same run id as the cell of a suite file stating the same settings; its rows, grids and state."""
    suite = tmp_path / "same.toml"
    suite.write_text(f"""
[suite]
name = "same"
resolution = 32
datasets = ["folder:{world["real_a"]}"]
[budget]
max_iters = 10
[eval]
protocols = ["fid50_full_clean"]
detector = "effnet-lite0"
fractions = [1.0]
grid_size = 4
[models.baseline]
kwargs = {KWARGS}
""")
    cell = load_suite(str(suite)).cells[0]
    paths = RunPaths(world["run_dir"])
    assert paths.root.name == cell.spec.run_id
    doc = json.loads(paths.spec.read_text())
    assert doc["spec"] | {"suite": "same"} == cell.spec.to_dict()
    assert doc["resolved"]["model_module"] == "models.fastgan" and doc["resolved"]["plugins"] == []
    assert read_state(paths)["status"] == "done" and read_state(paths)["step"] == 10
    assert sorted((r["eval_point"], r["metric"]) for r in _rows(paths.root)) == [
        (0.0, "fid50_full_clean"),
        (1.0, "fid50_full_clean"),
    ]
    assert sorted(p.name for p in paths.samples.iterdir()) == ["grid-00000000.png", "grid-00000010.png"]


def test_train_again_skips_a_finished_run_and_resumes_an_interrupted_one(world: dict) -> None:
    paths = RunPaths(world["run_dir"])
    before = {p: p.stat().st_mtime_ns for p in paths.root.rglob("*") if p.is_file() and p.name != "lock"}
    assert main(world["argv"]) == 0
    assert before == {p: p.stat().st_mtime_ns for p in paths.root.rglob("*") if p.is_file() and p.name != "lock"}
    state = json.loads(paths.state.read_text())
    paths.state.write_text(json.dumps(state | {"status": "todo", "interrupted": True}))  # as a crash leaves it
    assert main(world["argv"]) == 0
    events = [json.loads(x) for x in paths.events.read_text().splitlines()]
    assert events[-1]["event"] == "resume" and events[-1]["step"] == 10  # resumed from its checkpoint, not redone
    assert read_state(paths)["status"] == "done" and len(_rows(paths.root)) == 2


def test_status_lists_train_runs(world: dict, capsys) -> None:
    run_id = world["run_dir"].name
    for argv in (["--suite", "train", "--out", str(world["results"])], ["--run", str(world["run_dir"])]):
        capsys.readouterr()
        assert main(["status", *argv]) == 0
        out = capsys.readouterr().out
        assert f"| {run_id} | baseline" in out and "| done " in out, out
        assert "best fid50_full_clean within budget" in out


def test_eval_folder_of_generated_images_matches_the_runs_own_score(world: dict, tmp_path: Path, capsys) -> None:
    """``generate`` writes the images a protocol scores; ``eval --folder`` on them gives the run's number, and
    ``eval --network`` (the run, or its snapshot copied away from it) too."""
    run_dir, results, gen = world["run_dir"], world["results"], tmp_path / "gen"
    own = next(r["value"] for r in _rows(run_dir) if r["eval_point"] == 1.0)
    assert main(["generate", "--run", str(run_dir), "--outdir", str(gen), "--protocol", "fid50_full_clean"]) == 0
    common = ["--protocol", "fid50_full_clean", "--detector", "effnet-lite0", "--out", str(results), "--json"]
    capsys.readouterr()
    save = tmp_path / "rows.json"
    assert (
        main(["eval", "--folder", str(gen), "--data", f"folder:{world['real_a']}", *common, "--save", str(save)]) == 0
    )
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert json.loads(save.read_text()) == [row]
    assert row["scored"] == f"folder:{gen.resolve()}" and row["num_gen"] == 50 and row["weights"] == "images"
    assert row["detector"] == "effnet-lite0" and row["mode"] == "clean" and row["ref_count"] == 56
    assert row["value"] == pytest.approx(own, rel=1e-4)
    away = shutil.copy(run_dir / "snapshots" / "snap-00000010.pt", tmp_path / "g.pt")
    for network in (run_dir, away):
        assert main(["eval", "--network", str(network), *common]) == 0
        (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert row["value"] == pytest.approx(own, rel=1e-4) and row["step"] == 10 and row["num_gen"] == 50
    assert len(_rows(run_dir)) == 2, "scoring a network appends nothing to its run"


def test_eval_takes_a_former_protocol_name_with_one_note(world: dict, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """``fid50_full`` (the name before issue 30) scores as ``fid50_full_clean``, with one ``note:`` line."""
    monkeypatch.setattr(protocol_names, "_noted", set())  # as in a new process
    own = next(r["value"] for r in _rows(world["run_dir"]) if r["eval_point"] == 1.0)
    capsys.readouterr()
    argv = ["eval", "--network", str(world["run_dir"]), "--protocol", "fid50_full", "--detector", "effnet-lite0"]
    assert main([*argv, "--out", str(world["results"]), "--json"]) == 0
    out, err = capsys.readouterr()
    (row,) = [json.loads(x) for x in out.splitlines()]
    assert row["metric"] == "fid50_full_clean" and row["value"] == pytest.approx(own, rel=1e-4)
    assert [x for x in err.splitlines() if x.startswith("note: ")] == [
        "note: metric fid50_full is now called fid50_full_clean (clean-fid's clean resize, which stylegan2-ada's "
        "names of this form do not use); the old name still works"
    ]


def test_api_examples(world: dict) -> None:
    """The docstring examples of bench.api, run as doctests (the folder-vs-folder sanity check among them)."""
    globs = {k: world[k] for k in ("real_a", "real_b", "noise", "run_dir", "results")} | {"api": bench.api}
    with pytest.warns(UserWarning, match=r"56 images, fewer than \w+'s 200: its rows score 56"):
        result = doctest.testmod(bench.api, extraglobs=globs, optionflags=doctest.ELLIPSIS, report=True)
    assert result.attempted >= 12 and result.failed == 0


@pytest.mark.skipif(not HAVE_TENSORBOARD, reason="tensorboard is not installed: pip install -e '.[tensorboard]'")
def test_tensorboard_events_hold_losses_metrics_and_grids(world: dict) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(world["run_dir"] / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    losses = [t for t in tags["scalars"] if t.startswith("loss/")]
    assert losses, tags
    assert [e.step for e in events.Scalars(losses[0])] == [10]  # the mean of steps 1-10
    rows = {r["eval_point"]: r["value"] for r in _rows(world["run_dir"])}
    metric = events.Scalars("metric/fid50_full_clean")
    assert [e.step for e in metric] == [0, 10]
    assert [e.value for e in metric] == pytest.approx([rows[0.0], rows[1.0]])
    assert [e.step for e in events.Images("samples")] == [0, 10]


def test_nothing_for_tensorboard_when_off_and_one_line_without_the_package(world: dict, tmp_path, monkeypatch,
                                                                          capsys) -> None:  # fmt: skip
    out = tmp_path / "results"
    argv = ["train", "--data", "shapes", "--model", MODEL, "--resolution", "32", "--iters", "2", "--protocol", "none",
            "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    (run_dir,) = (out / "runs" / "train").iterdir()
    assert not (run_dir / "tensorboard").exists() and not (run_dir / "evals.jsonl").exists()
    monkeypatch.setattr(tblog, "tensorboard_installed", lambda: False)
    capsys.readouterr()
    assert main([*argv, "--seed", "1", "--tensorboard"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --tensorboard: the tensorboard package is not installed; pip install") and (
        len(err.splitlines()) == 1
    )
    assert len(list((out / "runs" / "train").iterdir())) == 1, "nothing written"
