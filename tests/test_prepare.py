"""bench.datasets: registry, safe extraction, download and prepare into the tensor cache."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

import bench.data.archives as data_archives
import bench.data.catalog as data_catalog
import bench.data.images as data_images
import bench.data.paper as data_paper
import bench.data.store as data_store
from bench.data.catalog import load_dataset
from bench.data.prepare import prepare_dataset
from bench.errors import DataError, OfflineError
from bench.results.io import file_sha256


def _png(colour: tuple[int, int, int], size: int = 12) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, "PNG")
    return buf.getvalue()


def _members(n: int) -> dict[str, bytes]:
    return {f"100-shot-obama/img{i:03d}.png": _png((20 * i, 50, 90)) for i in range(n)}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in members.items():
            zf.writestr(zipfile.ZipInfo(name), payload)
    return path


def _tar(path: Path, members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
        for info in extra:
            tf.addfile(info)
    return path


@pytest.fixture
def obama5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registry entry of obama expecting 5 images (tests use small sets)."""
    info = data_paper.PAPER_DATASETS["obama"]
    monkeypatch.setitem(data_paper.PAPER_DATASETS, "obama", dataclasses.replace(info, count=5))


def _assert_clean(cache: Path) -> None:
    """Nothing half-written: no cache files, no temporary folders."""
    assert not cache.exists() or list(cache.iterdir()) == []


# --------------------------------------------------------------------------- registry


def test_registry_matches_paper() -> None:
    info = data_paper.get_dataset_info
    assert (info("animalface-dog").count, info("animalface-dog").resolution) == (389, 256)
    assert (info("animalface-cat").count, info("shell").count, info("pokemon").count) == (160, 60, 800)
    assert info("ffhq-70k").count == 70000 and info("skull").resolution == 1024
    assert info("obama").url == "https://data-efficient-gans.mit.edu/datasets/100-shot-obama.zip"
    assert info("nature-5k").url == "" and "not published" in info("nature-5k").notes
    assert len(data_paper.PAPER_DATASETS) == 22
    for entry in data_paper.PAPER_DATASETS.values():
        assert entry.sha256 == "" or re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        assert entry.name in data_catalog.list_datasets()
    with pytest.raises(DataError, match="did you mean 'pokemon'"):
        data_paper.get_dataset_info("pokemn")


# --------------------------------------------------------------------------- prepare


def test_prepare_zip_then_load(tmp_path: Path, obama5: None) -> None:
    archive = _zip(tmp_path / "obama.zip", _members(5))
    cache = tmp_path / "cache"
    ds = prepare_dataset("obama", archive, cache_dir=cache, resolution=16)
    assert ds.images.shape == (5, 3, 16, 16)
    m = ds.manifest
    assert m["source"] == f"prepare:{archive}" and m["count_expected"] == 5 and "count_warning" not in m
    assert m["archive_sha256"] == file_sha256(archive) and m["resize_filter"] == "lanczos"
    assert sorted(p.name for p in cache.iterdir()) == ["obama-16.json", "obama-16.pt"]
    loaded = load_dataset("obama", 16, cache_dir=cache)
    assert loaded.sha256 == ds.sha256 and torch.equal(loaded.images, ds.images)


@pytest.mark.parametrize("bad", [False, True])
def test_sets_larger_than_the_ram_limit_are_built_in_a_file_and_come_out_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, obama5: None, bad: bool
) -> None:
    """Above ``IN_RAM_BYTES`` the images go to a file-backed buffer in the preparation's temporary
    folder (removed afterwards): same content, same hash, loadable, with or without skipped files."""
    members = _members(5) | ({"100-shot-obama/broken.png": b"\x89PNG garbage"} if bad else {})
    archive = _zip(tmp_path / "obama.zip", members)
    in_ram = prepare_dataset("obama", archive, cache_dir=tmp_path / "ram", resolution=8, skip_bad=True)
    made = []
    real = data_images.image_buffer
    monkeypatch.setattr(data_images, "IN_RAM_BYTES", 0)
    monkeypatch.setattr(data_images, "image_buffer", lambda *a: made.append(real(*a)) or made[-1])
    cache = tmp_path / "file"
    spilled = prepare_dataset("obama", archive, cache_dir=cache, resolution=8, skip_bad=True)
    (buffer,) = made
    backing = Path(buffer.untyped_storage().filename)  # file-backed, in the preparation's temporary folder
    assert backing.parent.parent == cache and backing.parent.name.startswith(".prepare-obama-")
    assert spilled.sha256 == in_ram.sha256 and torch.equal(spilled.images, in_ram.images)
    assert sorted(p.name for p in cache.iterdir()) == ["obama-8.json", "obama-8.pt"]  # the buffer's folder is gone
    loaded = load_dataset("obama", 8, cache_dir=cache)
    assert loaded.images.shape == (5, 3, 8, 8) and loaded.sha256 == in_ram.sha256


def test_large_cached_sets_skip_the_rehash_only_while_their_file_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, obama5: None
) -> None:
    cache = tmp_path / "cache"
    prepare_dataset("obama", _zip(tmp_path / "o.zip", _members(5)), cache_dir=cache, resolution=8)
    hashed = []
    real = data_store.tensor_sha256
    monkeypatch.setattr(data_store, "tensor_sha256", lambda t: hashed.append(1) or real(t))
    load_dataset("obama", 8, cache_dir=cache)
    assert hashed == [1]  # a small set: hashed at every load
    monkeypatch.setattr(data_images, "IN_RAM_BYTES", 0)  # now it counts as large
    load_dataset("obama", 8, cache_dir=cache)
    assert hashed == [1]  # unchanged file: no re-hash
    tensor = cache / "obama-8.pt"
    os.utime(tensor, ns=(0, tensor.stat().st_mtime_ns + 1))  # touched since written: hashed again
    assert load_dataset("obama", 8, cache_dir=cache).sha256 and hashed == [1, 1]


def test_prepare_tar_and_folder_agree(tmp_path: Path, obama5: None) -> None:
    members = _members(5)
    a = prepare_dataset("obama", _tar(tmp_path / "o.tar.gz", members), cache_dir=tmp_path / "a", resolution=8)
    folder = tmp_path / "folder"
    for name, payload in members.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(payload)
    b = prepare_dataset("obama", folder, cache_dir=tmp_path / "b", resolution=8)
    assert a.sha256 == b.sha256 and "archive_sha256" not in b.manifest


def test_lower_resolution_is_derived_and_tracks_source(tmp_path: Path, obama5: None) -> None:
    cache = tmp_path / "cache"
    prepare_dataset("obama", _zip(tmp_path / "a.zip", _members(5)), cache_dir=cache, resolution=16)
    small = load_dataset("obama", 8, cache_dir=cache)
    assert small.images.shape == (5, 3, 8, 8) and small.manifest["derived_from"]["resolution"] == 16
    other = {k: _png((255, 255, 0)) for k in _members(5)}
    prepare_dataset("obama", _zip(tmp_path / "b.zip", other), cache_dir=cache, resolution=16)
    again = load_dataset("obama", 8, cache_dir=cache)
    assert again.sha256 != small.sha256 and again.images[0, :, 0, 0].tolist() == [255, 255, 0]
    with pytest.raises(DataError, match="prepared at 16 px only.*--resolution 32"):
        load_dataset("obama", 32, cache_dir=cache)


def test_count_mismatch_warns_and_is_recorded(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "obama.zip", _members(3))
    with pytest.warns(UserWarning, match="found 3 images, the registry expects 100"):
        ds = prepare_dataset("obama", archive, cache_dir=tmp_path / "cache", resolution=8)
    assert ds.manifest["count_expected"] == 100 and "expects 100" in ds.manifest["count_warning"]
    assert load_dataset("obama", 8, cache_dir=tmp_path / "cache").manifest["count_warning"]


def test_corrupt_images_listed_or_skipped(tmp_path: Path, obama5: None) -> None:
    members = _members(5) | {"100-shot-obama/broken.png": b"\x89PNG\r\n\x1a\n garbage"}
    archive = _zip(tmp_path / "obama.zip", members)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=rf"in {re.escape(str(archive))}: 100-shot-obama/broken\.png.*--skip-bad"):
        prepare_dataset("obama", archive, cache_dir=cache, resolution=8)
    _assert_clean(cache)
    ds = prepare_dataset("obama", archive, cache_dir=cache, resolution=8, skip_bad=True)
    assert ds.images.shape[0] == 5 and [s["file"] for s in ds.manifest["skipped"]] == ["100-shot-obama/broken.png"]


def test_interrupted_preparation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, obama5: None) -> None:
    archive = _zip(tmp_path / "obama.zip", _members(5))
    real, calls = data_images._read_image, []

    def flaky(path: Path, resolution: int, resize_filter: str) -> object:
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, resolution, resize_filter)

    monkeypatch.setattr(data_images, "_read_image", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("obama", archive, cache_dir=tmp_path / "cache", resolution=8)
    _assert_clean(tmp_path / "cache")


def test_interrupted_while_writing_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, obama5: None
) -> None:
    def boom(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(data_store, "atomic_write_json", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("obama", _zip(tmp_path / "o.zip", _members(5)), cache_dir=tmp_path / "cache", resolution=8)
    _assert_clean(tmp_path / "cache")


def test_prepare_source_errors(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="does not exist"):
        prepare_dataset("obama", tmp_path / "missing.zip", cache_dir=cache)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not a folder, zip or tar archive"):
        prepare_dataset("obama", tmp_path / "notes.txt", cache_dir=cache)
    with pytest.raises(DataError, match="no image files in"):
        prepare_dataset("obama", _zip(tmp_path / "e.zip", {"readme.txt": b"x"}), cache_dir=cache)
    with pytest.raises(DataError, match="did you mean 'obama'"):
        prepare_dataset("obamma", tmp_path, cache_dir=cache)
    with pytest.raises(DataError, match="prepare --dataset obama --src PATH_TO_DOWNLOAD"):
        prepare_dataset("obama", None, cache_dir=cache)
    _assert_clean(cache)


# --------------------------------------------------------------------------- unsafe archives


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("../evil.png", r"outside the extraction folder"),
        ("a/../../evil.png", "outside"),
        ("/tmp/evil.png", "absolute"),
    ],
)
def test_malicious_zip_rejected(tmp_path: Path, member: str, why: str) -> None:
    archive = _zip(tmp_path / "bad.zip", _members(2) | {member: _png((1, 2, 3))})
    cache = tmp_path / "work" / "cache"
    with pytest.raises(DataError, match=f"refusing archive .*bad.zip: member '{re.escape(member)}'.*{why}"):
        prepare_dataset("obama", archive, cache_dir=cache)
    _assert_clean(cache)
    assert not (tmp_path / "work" / "evil.png").exists() and not Path("/tmp/evil.png").exists()


def test_zip_symlink_rejected(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("100-shot-obama/link.png")
    link.external_attr = (0o120777 << 16) | 0x10
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(DataError, match="symbolic link"):
        prepare_dataset("obama", archive, cache_dir=tmp_path / "cache")
    _assert_clean(tmp_path / "cache")


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        (tarfile.SYMTYPE, "is a link"),
        (tarfile.LNKTYPE, "is a link"),
        (tarfile.CHRTYPE, "is a device"),
        (tarfile.FIFOTYPE, "is a device"),
    ],
)
def test_tar_links_and_devices_rejected(tmp_path: Path, kind: bytes, why: str) -> None:
    bad = tarfile.TarInfo("100-shot-obama/zz.png")
    bad.type = kind
    bad.linkname = "../../../etc/passwd"
    archive = _tar(tmp_path / "bad.tar.gz", _members(2), [bad])
    with pytest.raises(DataError, match=f"member '100-shot-obama/zz.png' {why}"):
        prepare_dataset("obama", archive, cache_dir=tmp_path / "cache")
    _assert_clean(tmp_path / "cache")


def test_tar_traversal_rejected(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", _members(1) | {"../../evil.png": _png((0, 0, 0))})
    with pytest.raises(DataError, match="outside the extraction folder"):
        prepare_dataset("obama", archive, cache_dir=tmp_path / "cache")
    _assert_clean(tmp_path / "cache")


def test_zip_bomb_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_archives, "RATIO_MIN_BYTES", 10_000)
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("100-shot-obama/bomb.bmp", b"\0" * 2_000_000)
    with pytest.raises(DataError, match="member '100-shot-obama/bomb.bmp' expands .*decompression bomb"):
        prepare_dataset("obama", archive, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(data_archives, "MAX_TOTAL_BYTES", 100)
    with pytest.raises(DataError, match="past 0 GiB uncompressed"):
        prepare_dataset("obama", _zip(tmp_path / "o.zip", _members(2)), cache_dir=tmp_path / "cache")
    _assert_clean(tmp_path / "cache")


# --------------------------------------------------------------------------- download


class _Response(io.BytesIO):
    """What urlopen returns, enough for download_dataset."""


def test_offline_download_is_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(data_archives.urllib.request, "urlopen", offline)
    url = "https://data-efficient-gans.mit.edu/datasets/100-shot-obama.zip"
    with pytest.raises(DataError, match=f"cannot reach {re.escape(url)}: no network .*by hand and pass --src") as err:
        prepare_dataset("obama", None, cache_dir=tmp_path / "cache", download=True)
    assert isinstance(err.value, OfflineError)
    assert list((tmp_path / "cache" / "downloads").iterdir()) == []


def test_download_then_prepare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, obama5: None) -> None:
    payload = _zip(tmp_path / "served.zip", _members(5)).read_bytes()
    monkeypatch.setattr(data_archives.urllib.request, "urlopen", lambda url, timeout: _Response(payload))
    ds = prepare_dataset("obama", None, cache_dir=tmp_path / "cache", download=True, resolution=8)
    assert ds.images.shape[0] == 5
    assert (tmp_path / "cache" / "downloads" / "100-shot-obama.zip").read_bytes() == payload


def test_download_checks_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = dataclasses.replace(data_paper.PAPER_DATASETS["panda"], sha256="0" * 64)
    monkeypatch.setitem(data_paper.PAPER_DATASETS, "panda", info)
    monkeypatch.setattr(data_archives.urllib.request, "urlopen", lambda url, timeout: _Response(b"tampered"))
    with pytest.raises(DataError, match="has sha256 .* the registry says 0000"):
        data_archives.download_dataset("panda", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_without_direct_url(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no published download"):
        data_archives.download_dataset("nature-2k", tmp_path)
    with pytest.raises(DataError, match="is a web page.*by hand"):
        data_archives.download_dataset("pokemon", tmp_path)
    with pytest.raises(DataError, match="either --src or --download"):
        prepare_dataset("obama", tmp_path, cache_dir=tmp_path / "cache", download=True)
