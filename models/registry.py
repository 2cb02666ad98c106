"""Model registry: ``@register_model("name", recipe=..., tiny=...)`` on builder functions (timm-style).

A builder takes ``resolution`` plus documented keyword arguments and returns a
:class:`models.base.GANModel`. ``get_model`` drops ``None`` overrides so that CLI or suite
defaults never mask a model's own defaults. Each name also carries a :class:`ModelInfo`: its
family, the recipe its defaults follow, a tiny configuration for tests, the builder's docstring
and, for the comparison models, one source per setting group (``sources``: :data:`SOURCE_GROUPS`,
each a :class:`Source`) (:func:`model_info`); :func:`param_counts` sizes a configuration without memory.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from models.base import GANModel, ModelConfigError

Builder = Callable[..., GANModel]
TINY_RESOLUTION = 32  # side in px at which every ``tiny`` configuration builds and trains quickly
# The setting groups a comparison recipe names one source for (``sources`` of ``register_model``).
SOURCE_GROUPS = ("architecture", "init", "optimiser/schedule", "regularisation/augmentation", "ema", "sampling/eval")


@dataclass(frozen=True)
class Source:
    """Where one setting group of a recipe comes from: the code or paper (with its commit) and what it sets."""

    source: str  # short name with commit, e.g. "DiffAugment-biggan-cifar @0b63395"
    detail: str  # the settings it gives, with the flags or files that say so


def recipe_summary(sources: Mapping[str, Source]) -> str:
    """One line: 'S throughout' when every group has one source S, else e.g. 'architecture:
    BigGAN-PyTorch @9845943; other groups: DiffAugment-biggan-cifar @0b63395' (the commonest
    source is 'other groups'); '' without sources."""
    names = [s.source for s in sources.values()]
    if not names:
        return ""
    common = max(dict.fromkeys(names), key=names.count)
    if len(set(names)) == 1:
        return f"{common} throughout"
    parts = [f"{group}: {s.source}" for group, s in sources.items() if s.source != common]
    return "; ".join([*parts, f"other groups: {common}"])


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a registered name, besides how to build it."""

    name: str  # the registered name
    family: str  # the family module, e.g. "fastgan", "stylegan2", "biggan"
    recipe: str  # one line: which code, paper or config the defaults follow (with its commit)
    tiny: Mapping[str, Any] = field(default_factory=dict)  # kwargs of a tiny CPU build at TINY_RESOLUTION
    doc: str = ""  # the builder's docstring (what the name is, its G/D parameter counts)
    init_from: str | None = None  # finetune names: the registered model whose checkpoint init_from must hold
    sources: Mapping[str, Source] = field(default_factory=dict)  # comparison models: SOURCE_GROUPS -> Source
    module: str = ""  # the builder's module (``models.<family>``, or a plugin's: models.plugins)


_BUILDERS: dict[str, Builder] = {}
_INFO: dict[str, ModelInfo] = {}


def register_model(
    *names: str,
    recipe: str = "",
    tiny: Mapping[str, Any] | None = None,
    init_from: str | None = None,
    sources: Mapping[str, Source] | None = None,
) -> Callable[[Builder], Builder]:
    """Register ``fn`` under each of ``names``; registering a name twice is an error.

    Args:
        recipe: one line naming the source of the defaults (code and commit, paper, config).
        tiny: keyword arguments that make a tiny model (a few thousand parameters) for tests.
        init_from: for names that fine-tune (``init_from`` required), the registered model whose
            harness checkpoint they start from (the same architecture under the same kwargs).
        sources: for comparison models, one :class:`Source` for each of :data:`SOURCE_GROUPS`.
    """
    if sources is not None and tuple(sources) != SOURCE_GROUPS:
        raise ModelConfigError(f"sources of {names}: give exactly the groups {SOURCE_GROUPS}, in order")

    def deco(fn: Builder) -> Builder:
        for name in names:
            if name in _BUILDERS:
                raise ModelConfigError(f"model name {name!r} is already registered")
        module = fn.__module__
        family = module.rsplit(".", 1)[-1]
        doc = inspect.cleandoc(fn.__doc__ or "")
        groups = MappingProxyType(dict(sources or {}))
        for name in names:
            _BUILDERS[name] = fn
            _INFO[name] = ModelInfo(
                name, family, recipe, MappingProxyType(dict(tiny or {})), doc, init_from, groups, module
            )
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
    raise ModelConfigError(f"unknown model {name!r}; {hint} (a plugin's model: pass --plugin MODULE)")


def model_info(name: str) -> ModelInfo:
    """Family, recipe source, tiny test kwargs, docstring and finetune source of ``name``."""
    check_model_name(name)
    return _INFO[name]


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


def param_counts(name: str, resolution: int, **overrides: Any) -> tuple[int, int]:
    """(G, D) parameter counts of ``name`` at ``resolution`` with ``overrides``, built on the meta
    device (shapes only: no memory, no initialisation cost).

    G counts the generator (not its EMA copy); D counts every other trained parameter: the
    discriminator and any heads its optimizer updates (FastGAN's self-supervision heads). A
    finetune name without ``init_from`` counts the model it starts from (the same architecture).
    Invalid kwargs raise :class:`ModelConfigError`, so this also validates a configuration.
    """
    info = model_info(name)
    if info.init_from is not None and overrides.get("init_from") is None:
        name = info.init_from
    with torch.device("meta"):
        model = get_model(name, resolution=resolution, **overrides)
    total, g, ema = (sum(p.numel() for p in m.parameters()) for m in (model, model.generator, model.g_ema))
    return g, total - g - ema
