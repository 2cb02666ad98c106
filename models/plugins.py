"""Models registered from outside the repository: plugins.

A plugin is a Python module whose import runs ``@models.register_model`` builders (as a family
module of ``models/`` does). Two ways in:

- ``--plugin MODULE`` on any command: an importable module name (``my_lab.gans``) or a path to a
  ``.py`` file (``./my_gan.py``); repeatable. :func:`load_plugins` imports each once. Launched
  cells (submitit-local, SLURM) import the same plugins before they build their model
  (``LoopOptions.plugins``), and a run's ``spec.json`` records them (``resolved.plugins``).
- An installed package's entry point in the group :data:`ENTRY_POINT_GROUP`, e.g. in its
  ``pyproject.toml``: ``[project.entry-points."fewshot_gan_bench.models"] my_gan = "my_lab.gans"``;
  every such module is imported with ``models`` (:func:`load_entry_points`), in every process.

A plugin that fails to import is a one-line :class:`ModelConfigError` (``--plugin``) or a warning
(an entry point: the other models stay usable); one that registers no model is a warning.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

from models.base import ModelConfigError
from models.registry import list_models

ENTRY_POINT_GROUP = "fewshot_gan_bench.models"
FILE_PACKAGE = "fewshot_gan_bench_plugins"  # module names of plugin files: <this>.p<path hash>.<stem>
_LOADED: dict[str, str] = {}  # plugin as recorded (module name, or absolute .py path) -> module name


def _is_file(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec


def _import_file(path: Path) -> str:
    """Import a ``.py`` file under a name of its own (a hash of its path, then its stem: the family name of
    the models it registers); returns the name."""
    if not path.is_file():
        raise ModelConfigError(f"--plugin {path}: no such .py file; pass an existing file or an importable module")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    name = f"{FILE_PACKAGE}.p{digest}.{path.stem}"
    if name in sys.modules:
        return name
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelConfigError(f"--plugin {path}: not a Python source file; pass a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickled references look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return name


def _import(spec: str) -> str:
    """Import plugin ``spec`` (a module name or a .py path); returns the module's name."""
    if _is_file(spec):
        return _import_file(Path(spec))
    try:
        importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (spec == exc.name or spec.startswith(exc.name + ".")):
            raise  # the plugin itself imports something missing: reported as its failure
        raise ModelConfigError(
            f"--plugin {spec}: no module named {exc.name!r}; pass an importable module (on PYTHONPATH or installed) "
            "or the path of a .py file"
        ) from None
    return spec


def canonical(spec: str) -> str:
    """How a plugin is recorded: a module name as given, a file as its absolute path (jobs run elsewhere)."""
    return str(Path(spec).expanduser().resolve()) if _is_file(spec) else spec


def load_plugin(spec: str) -> str:
    """Import the plugin ``spec`` once (later calls do nothing); returns it as recorded (:func:`canonical`).

    Raises :class:`ModelConfigError` (one line) when it cannot be found or its import fails; warns when
    it registered no model.
    """
    key = canonical(spec)
    if key in _LOADED:
        return key
    before = set(list_models())
    try:
        name = _import(key)
    except ModelConfigError as exc:
        if str(exc).startswith("--plugin"):
            raise
        raise ModelConfigError(f"--plugin {spec}: {exc}") from None
    except Exception as exc:
        why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise ModelConfigError(f"--plugin {spec}: importing it failed ({why}); fix the module") from None
    _LOADED[key] = name
    if not set(list_models()) - before:
        warnings.warn(f"--plugin {spec}: registered no model (no @models.register_model ran)", stacklevel=2)
    return key


def load_plugins(specs: Iterable[str] | None) -> tuple[str, ...]:
    """:func:`load_plugin` for each of ``specs`` (None: none); returns them as recorded."""
    return tuple(load_plugin(s) for s in specs or ())


def loaded_plugins() -> tuple[str, ...]:
    """The plugins loaded in this process through :func:`load_plugin`, as recorded, in load order."""
    return tuple(_LOADED)


def load_entry_points() -> list[str]:
    """Import every module of the entry-point group :data:`ENTRY_POINT_GROUP`; returns the names loaded.

    One that fails to import is a warning naming its distribution (its models are then unknown)."""
    loaded = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:
            dist = ep.dist.name if ep.dist is not None else "an installed package"
            why = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            warnings.warn(
                f"model plugin {ep.name} = {ep.value} (entry point of {dist}) failed to import ({why}); "
                "its models are unavailable: fix or uninstall it",
                stacklevel=2,
            )
            continue
        loaded.append(ep.value)
    return loaded
