"""Argument types and flags generated from settings dataclasses (one spelling per setting).

A dataclass field becomes a flag when its ``metadata`` has ``help``: the flag is ``--<name>`` with
dashes (or ``metadata["flag"]``), its type follows the annotation (or ``metadata["parse"]``, a
name in :data:`PARSERS`), ``metadata["choices"]`` restricts it and ``metadata["required"]`` makes it
required (``metadata["metavar"]`` names its value). A command may give the metadata of another
module's dataclass by field name instead, in the order of its flags (``meta``: ``train`` makes its
flags from :class:`bench.plan.specs.RunSpec`'s fields this way).
:func:`flag_values` reads the values back for the dataclass.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.plan.specs import RESOLUTIONS, number_problem


def csv_list(text: str | None) -> list[str] | None:
    """``'a,b'`` -> ``['a', 'b']`` (empty parts dropped); None stays None."""
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def positive(text: str) -> float:
    """A finite number > 0 (:func:`bench.plan.specs.number_problem`)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if number_problem(value) is not None:
        raise argparse.ArgumentTypeError(f"expected a {'finite ' if value == math.inf else ''}number > 0, got {text!r}")
    return value


def _int_at_least(text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low or high is not None and value > high:
        want = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
        raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
    return value


def count_at_most(high: int) -> Callable[[str], int]:
    """The parser of an integer from 1 to ``high`` (a count that bounds how long a command runs)."""
    return lambda text: _int_at_least(text, 1, high)


def count(text: str) -> int:
    """An integer >= 1."""
    return _int_at_least(text, 1)


def nonnegative(text: str) -> int:
    """An integer >= 0."""
    return _int_at_least(text, 0)


def resolution(text: str) -> int:
    """A power of two from 32 to 1024."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value not in RESOLUTIONS:
        raise argparse.ArgumentTypeError(f"expected a power of two from 32 to 1024, got {text!r}")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """``'0,1,2'`` -> ``(0, 1, 2)``: non-negative integers."""
    try:
        values = tuple(int(t) for t in csv_list(text) or ())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 0,1,2, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0, got {text!r}")
    return values


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> ``int``; other annotations unchanged."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def csv_tuple(text: str) -> tuple[str, ...]:
    """``'a,b'`` -> ``('a', 'b')``."""
    return tuple(csv_list(text) or ())


def fractions(text: str) -> tuple[float, ...]:
    """``'0.25,0.5,1'`` -> ``(0.25, 0.5, 1.0)``: numbers in (0, 1]."""
    try:
        values = tuple(float(t) for t in csv_list(text) or ())
    except ValueError:
        values = ()
    if not values or not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in (0, 1], e.g. 0.5,1, got {text!r}")
    return values


_PARSERS: dict[Any, Callable[[str], Any]] = {int: count, float: positive, str: str, Path: Path}
PARSERS: dict[str, Callable[[str], Any]] = {
    "count": count, "positive": positive, "nonnegative": nonnegative, "resolution": resolution,
    "int_list": int_list, "csv": csv_tuple, "fractions": fractions,
}  # fmt: skip


def add_dataclass_flags(
    group: Any,
    cls: type,
    *,
    keep_defaults: bool,
    skip: tuple[str, ...] = (),
    meta: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """One flag per field of ``cls`` whose metadata has ``help``.

    ``keep_defaults``: the flag's default is the field's (else None: "not given", so a merge with
    other sources can tell the flags the user passed). ``meta``: the fields' metadata by name, used
    instead of their own, in this order (fields it leaves out get no flag).
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for f in fields.values() if meta is None else [fields[name] for name in meta]:
        meta_f = f.metadata if meta is None else meta[f.name]
        if "help" not in meta_f or f.name in skip:
            continue
        base = _base_type(hints[f.name])
        kw: dict[str, Any] = {"dest": f.name, "help": meta_f["help"], "required": bool(meta_f.get("required"))}
        if base is bool:
            kw["action"] = "store_true"
        elif typing.get_origin(base) is tuple and "parse" not in meta_f:
            kw["action"] = "append"
        else:
            kw["type"] = PARSERS[meta_f["parse"]] if "parse" in meta_f else _PARSERS.get(base, str)
        for key in ("choices", "metavar"):
            if key in meta_f:
                kw[key] = meta_f[key]
        if keep_defaults and f.default is not dataclasses.MISSING:
            kw["default"] = f.default
        elif base is not bool:
            kw["default"] = None
        group.add_argument(meta_f.get("flag", "--" + f.name.replace("_", "-")), **kw)


def flag_values(
    args: argparse.Namespace, cls: type, meta: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """The values of ``cls``'s flags in ``args`` (fields without a flag are left out; ``meta`` as above)."""
    flagged = [
        f.name for f in dataclasses.fields(cls) if "help" in (f.metadata if meta is None else meta.get(f.name, {}))
    ]
    return {name: getattr(args, name) for name in flagged}
