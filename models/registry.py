"""Model registry: ``@register_model("name")`` on builder functions (timm-style).

A builder takes ``resolution`` plus documented keyword arguments and returns a
:class:`models.base.GANModel`. ``get_model`` drops ``None`` overrides so that CLI or suite
defaults never mask a model's own defaults.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from collections.abc import Callable
from typing import Any

from models.base import GANModel, ModelConfigError

Builder = Callable[..., GANModel]
_BUILDERS: dict[str, Builder] = {}


def register_model(*names: str) -> Callable[[Builder], Builder]:
    """Register ``fn`` under each of ``names``; registering a name twice is an error."""

    def deco(fn: Builder) -> Builder:
        for name in names:
            if name in _BUILDERS:
                raise ModelConfigError(f"model name {name!r} is already registered")
            _BUILDERS[name] = fn
        return fn

    return deco


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a glob ``pattern``, sorted."""
    return sorted(n for n in _BUILDERS if fnmatch.fnmatch(n, pattern))


def parse_entry(entry: str) -> tuple[str, dict[str, Any]]:
    """``'fastgan:recon=mse:ngf=4'`` -> ``('fastgan', {'recon': 'mse', 'ngf': 4})`` (JSON values, else
    strings): a model and its keyword arguments on a command line. Unknown names raise."""
    name, *pairs = entry.split(":")
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ModelConfigError(f"model entry {entry!r}: expected NAME[:KEY=VALUE...], e.g. fastgan:ngf=32")
        try:
            kwargs[key] = json.loads(text)
        except json.JSONDecodeError:
            kwargs[key] = text
    check_model_name(name)
    return name, kwargs


def check_model_name(name: str) -> None:
    """Raise :class:`ModelConfigError` naming the closest registered names if ``name`` is unknown."""
    if name in _BUILDERS:
        return
    close = difflib.get_close_matches(name, list(_BUILDERS), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(list_models())}"
    raise ModelConfigError(f"unknown model {name!r}; {hint}")


def get_model(name: str, *, resolution: int, **overrides: Any) -> GANModel:
    """Build the registered model ``name`` at ``resolution`` with keyword ``overrides``.

    ``None``-valued overrides are dropped; an unknown keyword raises ModelConfigError.
    """
    check_model_name(name)
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    try:
        model = _BUILDERS[name](resolution=resolution, **kwargs)
    except TypeError as exc:
        raise ModelConfigError(f"model {name!r}: {exc}") from exc
    model.name = name
    return model
