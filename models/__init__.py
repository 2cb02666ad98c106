"""Model families, one file each, registered by name.

Importing this package imports every family module so that their ``@register_model``
builders run. ``bench`` asks for models only through :func:`get_model`.
"""

import importlib
import pkgutil

from models.base import BN_MODES, GANModel, Sampling
from models.registry import ModelConfigError, get_model, list_models, parse_entry, register_model

_INFRA = {"base", "registry", "common", "augment"}

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in _INFRA and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "BN_MODES",
    "GANModel",
    "ModelConfigError",
    "Sampling",
    "get_model",
    "list_models",
    "parse_entry",
    "register_model",
]
