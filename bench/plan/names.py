"""What the registries hold, without importing them: a cache keyed by the sources' modification times.

The registries of models, detectors, protocols and datasets are filled when their modules are imported,
and those import torch (seconds on a small machine). ``list``, ``status``, a dry run and a refused name
need only the names, each model's recipe, its parameter counts and whether a configuration builds:
:func:`registry` and :func:`remembered` keep those in one JSON file under :func:`cache_dir`, rebuilt (by
importing the registries) whenever a source file under ``models/`` or ``bench/`` changes (path, size or
modification time). The checks here give the registries' own messages (tests compare them).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.plan.protocol_names import close_names, current

CACHE_ENV = "FEWSHOT_BENCH_CACHE"  # folder of the cache; default $XDG_CACHE_HOME/fewshot-gan-bench
ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("models", "bench")  # their *.py files key the cache
TORCHSCRIPT_PREFIX = "torchscript:"  # bench.metrics.detectors' prefix of a user's TorchScript file
FOLDER_PREFIX = "folder:"  # bench.data.folders' prefix of an image folder dataset
_loaded: dict[str, Any] = {}
_READ_FROM = "_file"  # the key of ``_loaded`` naming the file it was read from (not written into it)


def cache_dir() -> Path:
    """``$FEWSHOT_BENCH_CACHE``, else ``$XDG_CACHE_HOME/fewshot-gan-bench`` (``~/.cache/...``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fewshot-gan-bench"


def sources_key() -> str:
    """sha256 over every source file's path, size and modification time (and the Python version)."""
    h = hashlib.sha256(sys.version.encode())
    for top in SOURCES:
        for parts, st in sorted(_py_files(ROOT / top, (top,)), key=lambda found: found[0]):
            h.update(f"{'/'.join(parts)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _py_files(folder: Path, parts: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], os.stat_result]]:
    """(path parts under ROOT, stat) of each ``*.py`` file under ``folder`` (``os.scandir``: called on every
    cache read, a few times quicker than ``Path.rglob``; linked folders are not followed)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _py_files(Path(entry.path), (*parts, entry.name))
        elif entry.name.endswith(".py"):
            yield (*parts, entry.name), entry.stat()


def _path() -> Path:
    return cache_dir() / "registry.json"


def _document() -> dict[str, Any]:
    """The cache's content for the current sources (empty when missing, stale or unreadable), read once per
    process and cache file (a process that points ``$FEWSHOT_BENCH_CACHE`` elsewhere reads that file)."""
    key, path = sources_key(), str(_path())
    if _loaded.get("key") == key and _loaded.get(_READ_FROM) == path:
        return _loaded
    from bench.files import FileReadError, read_json

    try:
        doc = read_json(_path())
    except (FileReadError, ValueError):
        doc = None
    _loaded.clear()
    _loaded.update(doc if isinstance(doc, dict) and doc.get("key") == key else {"key": key})
    _loaded[_READ_FROM] = path
    return _loaded


def _save() -> None:
    """Write the cache (atomically; a folder that cannot be written only costs the next command time)."""
    from bench.results.io import atomic_write_text

    try:
        doc = {k: v for k, v in _loaded.items() if k != _READ_FROM}
        atomic_write_text(_path(), json.dumps(doc, sort_keys=True) + "\n")
    except (OSError, BenchError):
        pass


def _models() -> dict[str, Any]:
    import models

    return {name: {"recipe": (i := models.model_info(name)).recipe, "init_from": i.init_from,
                   "sources": models.recipe_summary(i.sources), "details": _source_lines(i.sources)}
            for name in models.list_models()}  # fmt: skip


def _source_lines(sources: Any) -> list[str]:
    """A comparison model's recipe sources: a summary line, then one source per setting group."""
    import models

    if not sources:
        return []
    lines = [f"recipe: {models.recipe_summary(sources)}"]
    return lines + [f"{group}: {src.source}: {src.detail}" for group, src in sources.items()]


def _detectors() -> list[str]:
    from bench.metrics.detectors import list_detectors

    return list_detectors()


def _protocols() -> dict[str, Any]:
    from bench.metrics.protocols import PROTOCOLS

    fields = ("kind", "mode", "num_gen", "pr_k", "pre_resize", "bn_mode", "gen_batch")
    return {name: {f: getattr(p, f) for f in fields} for name, p in sorted(PROTOCOLS.items())}


def _datasets() -> dict[str, Any]:
    from bench.data.catalog import list_datasets
    from bench.data.paper import PAPER_DATASETS

    return {
        "datasets": list_datasets(),
        "paper_counts": {n: info.count for n, info in PAPER_DATASETS.items()},
        "paper_sources": {
            n: {"resolution": i.resolution, "url": i.url, "notes": i.notes} for n, i in PAPER_DATASETS.items()
        },
    }


# section -> (the module whose import fills it, how to read it)
_SECTIONS = {
    "models": ("models", _models),
    "detectors": ("bench.metrics.detectors", _detectors),
    "protocols": ("bench.metrics.protocols", _protocols),
    "datasets": ("bench.data.paper", _datasets),
}


def registry() -> dict[str, Any]:
    """``models`` (name -> recipe, init_from), ``detectors``, ``protocols`` (name -> kind, clean-fid mode, ...),
    ``datasets``, ``paper_counts`` (a paper dataset's image count) and ``paper_sources`` (its resolution,
    download address and notes). A registry already imported in this
    process is read directly (it may hold names registered at run time); the others come from the cache,
    filled by importing them when it is cold or stale."""
    doc = _document()
    if "registry" not in doc:
        doc["registry"] = _flat({section: read() for section, (_, read) in _SECTIONS.items()})
        _save()
    live = {section: read() for section, (module, read) in _SECTIONS.items() if module in sys.modules}
    return doc["registry"] | _flat(live)


def _flat(sections: dict[str, Any]) -> dict[str, Any]:
    """The datasets section's entries (``datasets``, ``paper_counts``, ``paper_sources``): lifted to the top."""
    out = dict(sections)
    out.update(out.pop("datasets", {}))
    return out


def is_remembered(section: str, key: str) -> bool:
    """Whether :func:`remembered` has ``section``/``key`` for the current sources."""
    return key in _document().get(section, {})


def remembered(section: str, key: str, compute: Any) -> Any:
    """``compute()`` (JSON-able), cached under ``section``/``key`` until a source changes."""
    doc = _document()
    found = doc.setdefault(section, {})
    if key not in found:
        found[key] = compute()
        _save()
    return found[key]


def model_from_sources(name: str) -> bool:
    """Whether model ``name`` is built by a module under ``models/`` (whose files key this cache), not by a
    plugin's. Plugins are imported before a command runs (:mod:`models.plugins`), so a process that has not
    imported ``models`` has none; an unknown name is left to its builder's own error (True)."""
    if "models" not in sys.modules:
        return True
    import models

    try:
        module = models.model_info(name).module
    except ValueError:
        return True
    source = Path(getattr(sys.modules.get(module), "__file__", None) or "/")
    return source.resolve().is_relative_to(ROOT / "models")


def check_model(name: str) -> None:
    """:func:`models.registry.check_model_name`'s check and message (a BenchError)."""
    known = list(registry()["models"])
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(known))}"
    raise BenchError(f"unknown model {name!r}; {hint} (a plugin's model: pass --plugin MODULE)")


def check_detector(name: str, known: list[str] | None = None) -> None:
    """:func:`bench.metrics.detectors.check_detector`'s check and message; ``known``: the registered names
    (default: as remembered, without importing the registry)."""
    if name.startswith(TORCHSCRIPT_PREFIX):
        path = Path(name[len(TORCHSCRIPT_PREFIX) :])
        if not path.is_file():
            raise BenchError(f"detector {name}: no such file {str(path)!r}")
        return
    known = registry()["detectors"] if known is None else known
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise BenchError(f"unknown detector {name!r} (known: {', '.join(known)}, torchscript:PATH){hint}")


def check_protocol(name: str) -> str:
    """:func:`bench.metrics.protocols.check_protocol`'s check, message and current name."""
    name, known = current(name), list(registry()["protocols"])
    if name not in known:
        close = close_names(name, known)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise BenchError(f"unknown metric {name!r} (known: {', '.join(known)}){hint}")
    return name


def check_dataset(name: str) -> None:
    """:func:`bench.data.catalog.check_dataset_name`'s check and message (a folder's path: by the catalog)."""
    if name.startswith(FOLDER_PREFIX):
        from bench.data.catalog import check_dataset_name
        from bench.data.folders import folder_root

        check_dataset_name(name)
        folder_root(name)
        return
    known = registry()["datasets"]
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = "; did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""
        raise BenchError(f"unknown dataset {name!r}{hint} (known: {', '.join(known)}; or folder:PATH)")
