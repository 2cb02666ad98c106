"""Model families, one module each, registered by name.

Importing this package imports every module of ``models/`` (any file name; a family's own parts,
``<family>_<part>.py`` by convention, are imported too and register nothing), so that the
``@register_model`` builders run, then the installed plugins' modules (the entry-point group
``fewshot_gan_bench.models``: :mod:`models.plugins`; ``--plugin MODULE`` loads others). A file that
cannot be imported as a module (its name is not a Python identifier, e.g. ``my-gan.py``) is reported
with a warning, never skipped silently. ``bench`` asks for models only through :func:`get_model`,
:func:`model_info` (its per-group ``sources``: :func:`recipe_summary`),
:func:`param_counts` (and :func:`structure_only` to count a step's work).
"""

import importlib
import pkgutil
import warnings
from pathlib import Path

from models.base import BN_MODES, GANModel, Sampling, structure_only
from models.plugins import load_entry_points
from models.registry import (
    SOURCE_GROUPS,
    ModelConfigError,
    ModelInfo,
    Source,
    get_model,
    list_models,
    model_info,
    param_counts,
    parse_entry,
    recipe_summary,
    register_model,
)


def import_all(package: str, path: list[str]) -> list[str]:
    """Import every module of ``package`` (its folders ``path``); warn about a file whose name cannot be a
    module's (it is not imported). Returns the names imported."""
    imported = []
    for info in pkgutil.iter_modules(path):
        if info.name.isidentifier():
            importlib.import_module(f"{package}.{info.name}")
            imported.append(info.name)
        else:
            where = Path(info.module_finder.path) / (info.name if info.ispkg else f"{info.name}.py")
            fix = info.name.replace("-", "_").replace(".", "_")
            warnings.warn(
                f"{where}: not imported (its name is not a Python identifier), so its models are not registered; "
                f"rename it, e.g. {fix if fix.isidentifier() else 'my_family'}",
                stacklevel=2,
            )
    return imported


def family_modules() -> list[str]:
    """Names of this package's modules that register models (each model's ``family``)."""
    return sorted({model_info(n).family for n in list_models() if model_info(n).module.startswith(f"{__name__}.")})


import_all(__name__, __path__)
load_entry_points()

__all__ = [
    "BN_MODES",
    "SOURCE_GROUPS",
    "GANModel",
    "ModelConfigError",
    "ModelInfo",
    "Sampling",
    "Source",
    "family_modules",
    "get_model",
    "import_all",
    "list_models",
    "model_info",
    "param_counts",
    "parse_entry",
    "recipe_summary",
    "register_model",
    "structure_only",
]
