"""Rendered figures remembered between reports: a figure whose inputs have not changed is not drawn again.

Drawing and encoding a figure costs a few tenths of a second (most of a report of a suite with many
runs). :func:`rendered` keys the PNG and PDF bytes of ``draw_fn(*args, **kwargs)`` by a digest of
everything that determines them: the drawing function's name, every input exactly (numbers by their
repr, arrays and frames by dtype, shape and bytes, dataclasses field by field), the sources
(:func:`bench.plan.names.sources_key`: any change to a module under ``bench/`` or ``models/``), the
versions of matplotlib, NumPy and Pillow and matplotlib's settings (``rcParams``). Only the project's
own drawing functions (modules under ``bench.``, whose code the sources key covers) are remembered; any
other (a plugin's, a test's stand-in) is always called, as is one with an input that cannot be digested
exactly. Entries live under :func:`bench.plan.names.cache_dir` (``figures/``): ``KEY.png``, ``KEY.pdf``
and ``KEY.json`` (the two files' sha256, written last); an entry whose bytes do not match is drawn again.
Nothing read here is unpickled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import hashlib
import logging
import os
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.errors import BenchError
from bench.files import FileReadError, read_capped, read_json
from bench.plan import names

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)
SUFFIXES = (".png", ".pdf")  # what :func:`bench.report.draw.render` gives
MAX_ENTRY_BYTES = 64 * 2**20  # far above any figure of the report
MAX_CACHE_BYTES = 2**30  # the entries least recently used go when the folder holds more


class _Unkeyable(Exception):
    """An input that cannot be digested exactly: the figure is drawn, not remembered."""


def rendered(draw_fn: Callable[..., Figure | None], *args: Any, **kwargs: Any) -> dict[str, bytes]:
    """'.png' and '.pdf' bytes of the figure ``draw_fn(*args, **kwargs)`` (:func:`bench.report.draw.render`),
    read back when the same inputs were drawn before by the same code; {} when ``draw_fn`` gives no figure."""
    from bench.report import draw

    key = _key(draw_fn, args, kwargs)
    if key is not None and (found := _read(key)) is not None:
        return found
    fig = draw_fn(*args, **kwargs)
    if fig is None:
        return {}
    files = draw.render(fig)
    if key is not None:
        _write(key, files)
    return files


def _key(draw_fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The entry's name, or None when ``draw_fn`` is not the project's own or an input cannot be digested."""
    module, name = getattr(draw_fn, "__module__", None) or "", getattr(draw_fn, "__qualname__", "")
    if not module.startswith("bench.") or "<" in name:
        return None
    import matplotlib  # its settings shape every figure (the package alone: a tenth of a second)

    h = hashlib.sha256()
    code = [module, name, names.sources_key(), *_versions(), _constants(module), _constants("bench.report.draw")]
    # the stored settings as they are (reading 'backend' through rcParams would import pyplot; savefig
    # to bytes does not use it)
    settings = sorted((k, repr(v)) for k, v in dict.items(matplotlib.rcParams) if k != "backend")
    try:
        for part in (code, settings, args, sorted(kwargs.items())):
            _feed(h, part)
    except _Unkeyable as exc:
        log.debug("%s: drawn, not remembered (%s)", name, exc)
        return None
    return h.hexdigest()[:40]


def _constants(module: str) -> list[tuple[str, Any]]:
    """The module's global numbers, strings and tuples as they are now (a setting changed at run time)."""
    plain = bool | int | float | str | tuple
    return sorted((k, v) for k, v in vars(sys.modules[module]).items() if isinstance(v, plain) and k[:2] != "__")


@functools.cache
def _versions() -> tuple[str, ...]:
    """The versions of the libraries that draw and encode the figures (fixed for a process)."""
    return tuple(version(p) for p in ("matplotlib", "numpy", "pillow"))


def _feed(h: Any, obj: Any) -> None:
    """Add ``obj`` to the digest ``h`` exactly, its type included; raise :class:`_Unkeyable` for a kind of
    object whose content cannot be read exactly (a function, an open file, ...)."""
    pd = sys.modules.get("pandas")  # not imported: no frame among the inputs
    kind = type(obj)
    h.update(f"\0{kind.__module__}.{kind.__qualname__}:".encode())
    if obj is None or isinstance(obj, bool | int | float | str | complex):
        h.update(repr(obj).encode())
    elif isinstance(obj, bytes):
        h.update(b"%d:%b" % (len(obj), obj))
    elif isinstance(obj, PurePath | enum.Enum):
        h.update(repr(obj).encode())
    elif isinstance(obj, np.ndarray | np.generic):
        if obj.dtype.hasobject:
            _feed(h, obj.tolist())
        else:
            h.update(f"{obj.dtype.str}{obj.shape}".encode())
            h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, tuple | list | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        h.update(b"%d" % len(items))
        for item in items:
            _feed(h, item)
    elif isinstance(obj, dict):
        _feed(h, list(obj.items()))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        _feed(h, [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)])
    elif pd is not None and isinstance(obj, pd.DataFrame):
        _feed(h, [obj.index, *((name, obj[name]) for name in obj.columns)])
    elif pd is not None and isinstance(obj, pd.Series | pd.Index):
        dtype = obj.dtype
        order = (list(dtype.categories), dtype.ordered) if isinstance(dtype, pd.CategoricalDtype) else None
        _feed(h, [obj.name, str(dtype), order, obj.to_numpy(), obj.index if isinstance(obj, pd.Series) else None])
    elif pd is not None and (obj is pd.NA or obj is pd.NaT):
        h.update(repr(obj).encode())
    else:
        raise _Unkeyable(f"an input of type {kind.__qualname__}")


def _paths(key: str) -> dict[str, Path]:
    folder = names.cache_dir() / "figures"
    return {suffix: folder / f"{key}{suffix}" for suffix in (*SUFFIXES, ".json")}


def _read(key: str) -> dict[str, bytes] | None:
    """The entry's bytes, or None when missing, unreadable or not the bytes its record names."""
    paths = _paths(key)
    try:
        record = read_json(paths[".json"])
        files = {suffix: read_capped(paths[suffix], MAX_ENTRY_BYTES) for suffix in SUFFIXES}
    except FileReadError:
        return None
    if not isinstance(record, dict) or any(record.get(s) != hashlib.sha256(b).hexdigest() for s, b in files.items()):
        log.debug("%s: a damaged figure entry, drawn again", paths[".json"])
        return None
    for path in paths.values():  # their time: when the entry was last used (the least recently used go first)
        with contextlib.suppress(OSError):
            os.utime(path)
    return files


def _write(key: str, files: dict[str, bytes]) -> None:
    """Store an entry (its record last); a cache folder that cannot be written only costs time."""
    from bench.report.imagery import prune_old
    from bench.results.io import atomic_write_bytes, atomic_write_json

    paths = _paths(key)
    prune_old(paths[".json"].parent, MAX_CACHE_BYTES)
    try:
        for suffix in SUFFIXES:
            atomic_write_bytes(paths[suffix], files[suffix])
        atomic_write_json(paths[".json"], {s: hashlib.sha256(files[s]).hexdigest() for s in SUFFIXES})
    except (OSError, BenchError):
        log.debug("%s: not written (the cache folder cannot be written)", paths[".json"])
