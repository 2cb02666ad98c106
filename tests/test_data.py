"""bench.data: conversions, folders, bad files, caching, shapes, emoji and dataset names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import bench.data.builtin as data_builtin
import bench.data.catalog as data_catalog
import bench.data.folders as data_folders
import bench.data.images as data_images
import bench.data.store as data_store
from bench.data.catalog import load_dataset
from bench.errors import DataError


def _save(path: Path, img: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def _rgb(colour: tuple[int, int, int], size: tuple[int, int] = (6, 4)) -> Image.Image:
    return Image.new("RGB", size, colour)


def _folder(root: Path, n: int = 3) -> Path:
    for i in range(n):
        _save(root / "sub" / f"img{i}.png", _rgb((40 * i, 100, 200)))
    return root


def _pixel(name: str, cache: Path) -> list[int]:
    return load_dataset(name, 4, cache_dir=cache).images[0, :, 0, 0].tolist()


# --------------------------------------------------------------------------- conversions


@pytest.mark.parametrize(
    ("img", "expected"),
    [
        (Image.new("L", (5, 5), 77), [77, 77, 77]),
        (Image.new("LA", (5, 5), (0, 0)), [255, 255, 255]),  # transparent → white background
        (Image.new("RGBA", (5, 5), (255, 0, 0, 0)), [255, 255, 255]),
        (Image.new("RGBA", (5, 5), (0, 0, 0, 255)), [0, 0, 0]),
        (Image.new("RGBA", (5, 5), (0, 0, 0, 128)), [127, 127, 127]),
        (Image.new("I;16", (5, 5), 65535), [255, 255, 255]),
        (Image.new("I;16", (5, 5), 128 * 257), [128, 128, 128]),
        (Image.new("1", (5, 5), 1), [255, 255, 255]),
        (Image.new("CMYK", (5, 5), (0, 0, 0, 0)), [255, 255, 255]),
    ],
)
def test_modes_are_converted(tmp_path: Path, img: Image.Image, expected: list[int]) -> None:
    _save(tmp_path / "imgs" / "a.png" if img.mode != "CMYK" else tmp_path / "imgs" / "a.jpg", img)
    got = _pixel(f"folder:{tmp_path / 'imgs'}", tmp_path / "cache")
    assert np.allclose(got, expected, atol=2)


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    _save(tmp_path / "opaque" / "p.png", pal)
    pal.info["transparency"] = 1
    _save(tmp_path / "clear" / "p.png", pal)
    assert _pixel(f"folder:{tmp_path / 'opaque'}", tmp_path / "c") == [10, 20, 30]
    assert _pixel(f"folder:{tmp_path / 'clear'}", tmp_path / "c") == [255, 255, 255]


def test_sixteen_bit_png_on_disk_is_scaled(tmp_path: Path) -> None:
    arr = np.full((3, 3), 0x8000, dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    assert _pixel(f"folder:{tmp_path}", tmp_path.parent / "cache16") == [128, 128, 128]


# --------------------------------------------------------------------------- folders


def test_folder_dataset_shape_and_manifest(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs", 3)
    (root / "notes.txt").write_text("not an image extension: ignored")
    _save(root / ".hidden" / "x.png", _rgb((1, 2, 3)))
    ds = load_dataset(f"folder:{root}", 8, cache_dir=tmp_path / "cache")
    assert ds.images.shape == (3, 3, 8, 8) and ds.images.dtype == torch.uint8
    assert ds.images.is_contiguous() and ds.resolution == 8
    m = ds.manifest
    assert m["count"] == 3 and m["resize_filter"] == "lanczos" and m["resize"] == "stretch"
    assert m["background"] == [255, 255, 255] and m["skipped"] == [] and m["source"] == f"folder:{root}"
    assert ds.sha256 == data_store.tensor_sha256(ds.images) == m["sha256"]
    saved = json.loads(next((tmp_path / "cache").glob("folder-imgs-*-8.json")).read_text())
    assert saved["sha256"] == ds.sha256


def _bad_folder(root: Path) -> Path:
    _folder(root, 2)
    good = root / "sub" / "img0.png"
    (root / "truncated.png").write_bytes(good.read_bytes()[:40])
    (root / "text.jpg").write_text("hello")
    (root / "empty.webp").write_bytes(b"")
    return root


def test_bad_files_listed_in_error(tmp_path: Path) -> None:
    root = _bad_folder(tmp_path / "imgs")
    with pytest.raises(DataError, match=r"3 unreadable or non-image file\(s\)") as err:
        load_dataset(f"folder:{root}", 8, cache_dir=tmp_path / "cache")
    msg = str(err.value)
    assert "empty.webp" in msg and "text.jpg" in msg and "truncated.png" in msg and "fix or remove them" in msg
    assert "skip" not in msg  # a folder: dataset of a suite has no setting that skips them
    assert "\n" not in msg
    assert not list((tmp_path / "cache").glob("*.pt"))


def test_bad_files_skipped_and_reported(tmp_path: Path) -> None:
    root = _bad_folder(tmp_path / "imgs")
    ds = load_dataset(f"folder:{root}", 8, cache_dir=tmp_path / "cache", skip_bad=True)
    assert ds.images.shape[0] == 2
    assert sorted(s["file"] for s in ds.manifest["skipped"]) == ["empty.webp", "text.jpg", "truncated.png"]
    assert all(s["reason"] for s in ds.manifest["skipped"])
    assert load_dataset(f"folder:{root}", 8, cache_dir=tmp_path / "cache", skip_bad=True).sha256 == ds.sha256
    with pytest.raises(DataError, match="truncated.png"):  # a cached skip still needs skip_bad
        load_dataset(f"folder:{root}", 8, cache_dir=tmp_path / "cache")


def test_no_images_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        load_dataset(f"folder:{tmp_path / 'empty'}", 8, cache_dir=tmp_path / "cache")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_text("nope")
    with pytest.raises(DataError, match="no readable images"):
        load_dataset(f"folder:{tmp_path / 'bad'}", 8, cache_dir=tmp_path / "cache", skip_bad=True)
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset(f"folder:{tmp_path / 'missing'}", 8, cache_dir=tmp_path / "cache")


def test_huge_image_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _save(tmp_path / "imgs" / "big.png", _rgb((0, 0, 0), (20, 20)))
    monkeypatch.setattr(data_images, "MAX_PIXELS", 100)
    with pytest.raises(DataError, match=r"big\.png \(20x20 exceeds the 0 megapixel limit\)"):
        load_dataset(f"folder:{tmp_path / 'imgs'}", 8, cache_dir=tmp_path / "cache")


def test_aspect_not_kept(tmp_path: Path) -> None:
    img = Image.new("RGB", (20, 10), (0, 0, 0))
    img.paste((255, 255, 255), (10, 0, 20, 10))  # right half white
    _save(tmp_path / "imgs" / "wide.png", img)
    ds = load_dataset(f"folder:{tmp_path / 'imgs'}", 8, cache_dir=tmp_path / "cache")
    assert ds.images[0, 0, 4, 0] < 10 and ds.images[0, 0, 4, 7] > 245


# --------------------------------------------------------------------------- caching


def test_cache_hit_does_not_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _folder(tmp_path / "imgs")
    first = load_dataset(f"folder:{root}", 8, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(data_folders, "images_from_files", lambda *a, **k: pytest.fail("rebuilt"))
    second = load_dataset(f"folder:{root}", 8, cache_dir=tmp_path / "cache")
    assert torch.equal(first.images, second.images) and second.manifest == first.manifest


def test_folder_change_rebuilds(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    cache = tmp_path / "cache"
    first = load_dataset(f"folder:{root}", 8, cache_dir=cache)
    target = root / "sub" / "img0.png"
    _save(target, _rgb((255, 0, 0)))
    os.utime(target, ns=(1, 1))
    second = load_dataset(f"folder:{root}", 8, cache_dir=cache)
    assert second.sha256 != first.sha256 and second.images[0, :, 0, 0].tolist() == [255, 0, 0]
    _save(root / "new.png", _rgb((0, 255, 0)))
    assert load_dataset(f"folder:{root}", 8, cache_dir=cache).images.shape[0] == 4


def test_changed_folder_is_a_new_run_not_old_results(tmp_path: Path, tiny_suite) -> None:
    """Adding an image (or rewriting one) gives the cell a new run id: the finished run is not reused."""
    from conftest import TINY_SUITE, run_cli

    from bench.plan.suites import load_suite
    from bench.results.runs import RunPaths
    from bench.training.options import LoopOptions
    from bench.training.setup import open_run

    root = _folder(tmp_path / "imgs", 4)
    text = TINY_SUITE.format(name="fold", iters=2, protocols="[]").replace('"shapes"', f'"folder:{root}"')
    suite, out = tiny_suite("fold", text=text), tmp_path / "results"
    first = load_suite(str(suite)).cells[0].spec
    assert first.data_fingerprint and load_suite(str(suite)).cells[0].spec.run_id == first.run_id
    assert run_cli("--suite", str(suite), "--out", str(out), "--no-progress").returncode == 0
    assert f"{first.run_id} | " in run_cli("status", "--suite", str(suite), "--out", str(out)).stdout

    _save(root / "sub" / "img9.png", _rgb((0, 255, 0)))
    added = load_suite(str(suite)).cells[0].spec
    assert added.run_id != first.run_id
    plan = run_cli("--suite", str(suite), "--out", str(out), "--dry-run").stdout
    assert added.run_id in plan and first.run_id not in plan and "| todo" in plan
    with pytest.raises(DataError, match="changed after run"):  # the old spec no longer trains on this folder
        open_run(first, LoopOptions(out=out, progress=False), RunPaths.of(out, first))

    os.utime(root / "sub" / "img0.png", ns=(1, 1))  # rewritten in place: same names, new mtime
    assert load_suite(str(suite)).cells[0].spec.run_id not in (first.run_id, added.run_id)


@pytest.mark.parametrize("damage", ["no-manifest", "bad-hash", "garbage-tensor", "bad-json"])
def test_invalid_cache_is_rebuilt(tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    first = load_dataset("shapes", 8, cache_dir=cache)
    pt, manifest = cache / "shapes-8.pt", cache / "shapes-8.json"
    if damage == "no-manifest":
        manifest.unlink()
    elif damage == "bad-hash":
        manifest.write_text(json.dumps({**first.manifest, "sha256": "0" * 64}))
    elif damage == "garbage-tensor":
        pt.write_bytes(b"not a tensor")
    else:
        manifest.write_text("{")
    again = load_dataset("shapes", 8, cache_dir=cache)
    assert again.sha256 == first.sha256 and torch.equal(again.images, first.images)
    assert json.loads(manifest.read_text())["sha256"] == first.sha256


def test_failed_manifest_write_leaves_no_tensor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(data_store, "atomic_write_json", boom)
    with pytest.raises(OSError, match="disk full"):
        load_dataset("shapes", 8, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- shapes and emoji


def test_shapes_deterministic(tmp_path: Path) -> None:
    a = load_dataset("shapes", 16, cache_dir=tmp_path / "a")
    b = load_dataset("shapes", 16, cache_dir=tmp_path / "b")
    assert a.images.shape == (256, 3, 16, 16) and a.sha256 == b.sha256
    assert a.manifest["source"] == "procedural:shapes" and a.manifest["seed"] == 0
    assert len({img.float().mean().item() for img in a.images}) > 200  # varied images


def _font_or_skip() -> Path:
    try:
        return data_builtin.find_emoji_font()
    except DataError:
        pytest.skip("Noto Color Emoji font not installed")


@pytest.mark.parametrize("name", ["emoji-faces", "emoji-animals"])
def test_emoji_datasets(tmp_path: Path, name: str) -> None:
    font = _font_or_skip()
    ds = load_dataset(name, 32, cache_dir=tmp_path)
    assert ds.images.shape[0] > 50 and ds.images.shape[1:] == (3, 32, 32)
    assert ds.manifest["font"] == str(font) and ds.manifest["background"] == [255, 255, 255]
    assert len(ds.manifest["codepoints"]) == ds.images.shape[0]
    white_corners = (ds.images[:, :, 0, 0] == 255).all(dim=1).float().mean()
    assert white_corners > 0.8  # the background is white
    assert len({img.float().mean().item() for img in ds.images}) > 50


def test_emoji_font_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTO_EMOJI_FONT", str(tmp_path / "nope.ttf"))
    with pytest.raises(DataError, match="apt-get install fonts-noto-color-emoji"):
        load_dataset("emoji-faces", 32, cache_dir=tmp_path)
    monkeypatch.delenv("NOTO_EMOJI_FONT")
    monkeypatch.setattr(data_builtin.shutil, "which", lambda _: None)
    monkeypatch.setattr(data_builtin, "DEBIAN_EMOJI_FONT", tmp_path / "missing.ttf")
    with pytest.raises(DataError, match="Noto Color Emoji font not found; install it with") as err:
        data_builtin.find_emoji_font()
    assert "NOTO_EMOJI_FONT=/path/NotoColorEmoji.ttf" in str(err.value)


# --------------------------------------------------------------------------- names


def test_list_and_check_names() -> None:
    names = data_catalog.list_datasets()
    assert {"shapes", "emoji-faces", "emoji-animals", "obama", "pokemon", "nature-10k"} <= set(names)
    for name in [*names, "folder:/any/path"]:
        data_catalog.check_dataset_name(name)


@pytest.mark.parametrize(("typo", "close"), [("obamma", "obama"), ("emoji-face", "emoji-faces"), ("shape", "shapes")])
def test_unknown_name_suggests(typo: str, close: str) -> None:
    with pytest.raises(DataError, match=f"unknown dataset '{typo}'; did you mean '{close}'"):
        data_catalog.check_dataset_name(typo)


def test_bad_name_and_resolution(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="needs a path"):
        data_catalog.check_dataset_name("folder:")
    with pytest.raises(DataError, match="resolution"):
        load_dataset("shapes", 0, cache_dir=tmp_path)


def test_unprepared_paper_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset("obama", 256, cache_dir=tmp_path)
    msg = str(err.value)
    assert "python run_bench.py prepare --dataset obama --src PATH_TO_DOWNLOAD" in msg
    assert "https://data-efficient-gans.mit.edu/datasets/100-shot-obama.zip" in msg
