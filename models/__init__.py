"""Model families, one module each, registered by name.

Importing this package imports every family module so that their ``@register_model``
builders run. A family module is a top-level module whose name has no underscore and is not
shared infrastructure (``_INFRA``); a family's own parts are named ``<family>_<part>.py``
(``fastgan_blocks``, ``stylegan2_layers``) and imported by the family, never registering
anything themselves. ``bench`` asks for models only through :func:`get_model`,
:func:`model_info` (its per-group ``sources``: :func:`recipe_summary`),
:func:`param_counts` (and :func:`structure_only` to count a step's work).
"""

import importlib
import pkgutil

from models.base import BN_MODES, GANModel, Sampling, structure_only
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

_INFRA = {"base", "registry", "common", "config", "selfsup"}


def family_modules() -> list[str]:
    """Names of the family modules (the ones imported for their registrations)."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(__path__)
        if info.name not in _INFRA and "_" not in info.name and not info.ispkg
    )


for _name in family_modules():
    importlib.import_module(f"{__name__}.{_name}")

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
    "list_models",
    "model_info",
    "param_counts",
    "parse_entry",
    "recipe_summary",
    "register_model",
    "structure_only",
]
