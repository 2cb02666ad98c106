"""Reading a suite file: TOML with its ``suite.include`` files merged first, refused with one line when
it is malformed, unreadable, cyclic or nested deeper than the checks can walk."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from bench.errors import SuiteError
from bench.files import FileReadError, read_text

MAX_DEPTH = 64  # tables and arrays nested deeper are no suite (the checks recurse)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_toml(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Parse ``path`` with its ``include`` files merged first (cycles are an error)."""
    path = path.resolve()
    if path in _seen:
        raise SuiteError(f"{path}: suite.include: include cycle through {' -> '.join(map(str, _seen))}")
    where = f"{_seen[-1]}: suite.include: " if _seen else ""
    try:
        data = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: malformed TOML: {exc}; fix the syntax") from None
    except RecursionError:
        raise SuiteError(f"{path}: malformed TOML: arrays or tables nested too deeply; flatten them") from None
    except FileReadError as exc:
        if exc.missing and not _seen:
            raise SuiteError(f"suite file {path} does not exist; pass an existing .toml or a suite name") from None
        if exc.reason == "is not UTF-8 text":
            raise SuiteError(f"{path}: not UTF-8 text; save the suite as a UTF-8 TOML file") from None
        reason = "cannot read (No such file or directory)" if exc.missing else exc.reason
        raise SuiteError(f"{where}{path}: {reason}; fix the path or the file (a regular TOML file)") from None
    if _depth(data) > MAX_DEPTH:  # dotted keys nest without limit and without recursion in the parser
        raise SuiteError(f"{path}: tables or arrays nested more than {MAX_DEPTH} deep; flatten them")
    merged: dict[str, Any] = {}
    suite = data.get("suite")
    includes = suite.get("include", []) if isinstance(suite, dict) else []
    if not isinstance(includes, list):
        raise SuiteError(f"{path}: suite.include: expected a list of file names")
    for inc in includes:
        merged = _merge(merged, read_toml(path.parent / str(inc), (*_seen, path)))
    return _merge(merged, data)


def _depth(value: Any) -> int:
    """How deep tables and arrays nest in ``value`` (counted without recursion)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, depth = todo.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict | list):
            todo += [(v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return deepest
