"""Suites as data: ``experiments/*.toml`` → validated → an expanded grid of cells.

A suite file has the tables ``[suite]`` (name, description, include, paper_table, resolution,
datasets, seeds), ``[budget]`` (hours, max_iters, speed_ratio, num_gpus, accelerator: 'gpu' when
the budgets assume ``num_gpus`` GPUs per cell, else 'none'), ``[eval]`` (protocols,
detector, fractions, grid_size), ``[models.<name>]`` (label, group, budget_hours, max_iters,
kwargs, needs) and an optional ``[slurm]`` block. ``include`` names other TOML files (relative
to the including file) merged first, this file winning. Every problem in a file is reported at
once, each with file and key.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError, SuiteError
from bench.plan.launching import LaunchSettings
from bench.plan.specs import ACCELERATORS, PRECISIONS, RESOLUTIONS, RunSpec

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def settings_schema(cls: type, skip: tuple[str, ...] = ()) -> dict[str, type | tuple[type, ...]]:
    """TOML value types of a settings dataclass's fields (its flags and its suite keys are one list)."""
    hints = typing.get_type_hints(cls)
    toml = {int: int, float: (int, float), str: str, bool: bool}
    schema: dict[str, type | tuple[type, ...]] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        hint = hints[f.name]
        if typing.get_origin(hint) is tuple:
            schema[f.name] = list
            continue
        base = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        schema[f.name] = toml[base[0]]
    return schema


def spec_default(name: str) -> Any:
    """The default of RunSpec field ``name``: a suite that leaves a key out gets it (one owner)."""
    f = RunSpec.__dataclass_fields__[name]
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "suite": {
        "name": str, "description": str, "include": list, "paper_table": str, "reference_gpu": str,
        "resolution": int, "datasets": list, "seeds": list,
    },
    "budget": {
        "hours": (int, float), "max_iters": int, "speed_ratio": (int, float), "num_gpus": int, "accelerator": str,
    },
    "eval": {"protocols": list, "detector": str, "pr_detector": str, "fractions": list, "grid_size": int},
    "model": {
        "label": str, "group": str, "budget_hours": (int, float), "max_iters": int, "kwargs": dict,
        "needs": str, "precision": str, "compile": bool, "fused_adam": bool, "cuda_graphs": bool,
    },
    "slurm": settings_schema(LaunchSettings, skip=("launcher",)),
}  # fmt: skip
_TOP = ("suite", "budget", "eval", "models", "slurm")


@dataclass(frozen=True)
class Cell:
    """One cell of the grid: a run spec plus how the report shows it."""

    spec: RunSpec
    label: str  # row name in tables (e.g. "FastGAN")
    group: str  # row group (e.g. "5 hour"); may be ""


@dataclass(frozen=True)
class Suite:
    """A validated, expanded suite."""

    name: str
    path: Path
    description: str
    paper_table: str | None
    datasets: list[str]
    cells: list[Cell]
    slurm: dict[str, Any] = field(default_factory=dict)


def suite_path(name_or_path: str) -> Path:
    """``experiments/<name>.toml``, or the given path if it is a .toml file."""
    p = Path(name_or_path)
    if p.suffix == ".toml":
        if not p.is_file():
            raise BenchError(f"suite file {p} does not exist; pass an existing .toml or a suite name")
        return p
    path = EXPERIMENTS / f"{name_or_path}.toml"
    if not path.is_file():
        import difflib

        names = list_suites()
        close = difflib.get_close_matches(name_or_path, names, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}?" if close else f"available: {', '.join(names)}"
        raise BenchError(f"unknown suite {name_or_path!r} (no {path}); {hint}")
    return path


def list_suites() -> list[str]:
    """Names of the suites in ``experiments/`` (files starting with '_' are include-only)."""
    return sorted(p.stem for p in EXPERIMENTS.glob("*.toml") if not p.stem.startswith("_"))


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
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: malformed TOML: {exc}; fix the syntax") from None
    except UnicodeDecodeError:
        raise SuiteError(f"{path}: not UTF-8 text; save the suite as a UTF-8 TOML file") from None
    except OSError as exc:
        where = f"{_seen[-1]}: suite.include: " if _seen else ""
        msg = f"{where}{path}: cannot read ({exc.strerror}); fix the path or the file's permissions"
        raise SuiteError(msg) from None
    merged: dict[str, Any] = {}
    suite = data.get("suite")
    includes = suite.get("include", []) if isinstance(suite, dict) else []
    if not isinstance(includes, list):
        raise SuiteError(f"{path}: suite.include: expected a list of file names")
    for inc in includes:
        merged = _merge(merged, read_toml(path.parent / str(inc), (*_seen, path)))
    return _merge(merged, data)


def _check_types(data: dict[str, Any], where: str) -> list[str]:
    problems = [f"{where}: {k}: unknown table; allowed: {', '.join(_TOP)}" for k in data if k not in _TOP]
    problems += [f"{where}: {k}: expected a table ([{k}])" for k in _TOP if not isinstance(data.get(k, {}), dict)]
    if problems:
        return problems
    sections = [(s, data.get(s, {})) for s in ("suite", "budget", "eval", "slurm")]
    sections += [("model", v) for v in data.get("models", {}).values()]
    names = ["suite", "budget", "eval", "slurm"] + [f"models.{m}" for m in data.get("models", {})]
    for (schema, table), name in zip(sections, names, strict=True):
        if not isinstance(table, dict):
            problems.append(f"{where}: {name}: expected a table")
            continue
        for key, value in table.items():
            want = _SCHEMA[schema].get(key)
            if want is None:
                allowed = ", ".join(_SCHEMA[schema])
                problems.append(f"{where}: {name}.{key}: unknown key; allowed: {allowed}")
            elif not isinstance(value, want) or isinstance(value, bool) and want is not bool:
                problems.append(f"{where}: {name}.{key}: expected {_type_name(want)}, got {value!r}")
            elif key == "kwargs" and (bad := _not_plain(value)) is not None:
                problems.append(f"{where}: {name}.kwargs: {bad!r} is not a string, number, bool, array or table")
    return problems


def _not_plain(value: Any) -> Any:
    """The first value in ``value`` that JSON cannot hold (TOML dates and times), else None."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return next((bad for v in value if (bad := _not_plain(v)) is not None), None)
    return None if isinstance(value, str | int | float) else value


def _type_name(t: type | tuple[type, ...]) -> str:
    return " or ".join(x.__name__ for x in t) if isinstance(t, tuple) else t.__name__


def _check_names(data: dict[str, Any], where: str) -> list[str]:
    import models
    from bench.data.catalog import check_dataset_name
    from bench.metrics import check_detector, check_protocol

    problems = []
    checks = [(f"models.{m}", models.registry.check_model_name, m) for m in data.get("models", {})]
    checks += [(f"suite.datasets[{i}]", check_dataset_name, d) for i, d in enumerate(_ds(data))]
    protos = data.get("eval", {}).get("protocols", spec_default("protocols"))
    checks += [(f"eval.protocols[{i}]", check_protocol, p) for i, p in enumerate(protos)]
    for key in ("detector", "pr_detector"):
        checks += [(f"eval.{key}", check_detector, data.get("eval", {}).get(key, spec_default(key)))]
    for key, check, value in checks:
        try:
            check(str(value))
        except (BenchError, ValueError) as exc:
            problems.append(f"{where}: {key}: {exc}")
    return problems


def _ds(data: dict[str, Any]) -> list[Any]:
    return data.get("suite", {}).get("datasets", [])


def _check_values(data: dict[str, Any], where: str) -> list[str]:
    problems = []
    s, b, e = data.get("suite", {}), data.get("budget", {}), data.get("eval", {})
    for key in ("name", "resolution", "datasets"):
        if key not in s:
            problems.append(f"{where}: suite.{key}: missing (required)")
    if "name" in s and not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", s["name"]):
        problems.append(f"{where}: suite.name: {s['name']!r} names a results folder; use letters, digits, _ . -")
    for key in ("datasets", "seeds"):
        values = s.get(key, [0])
        if not values:
            problems.append(f"{where}: suite.{key}: empty; list at least one")
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            problems.append(f"{where}: suite.{key}: {', '.join(twice)} listed twice; list each once")
    if not data.get("models"):
        problems.append(f"{where}: models: no [models.<name>] table; add at least one model")
    if b.get("accelerator", "none") not in ACCELERATORS:
        allowed = ", ".join(repr(a) for a in ACCELERATORS)
        problems.append(f"{where}: budget.accelerator: {b['accelerator']!r} not one of {allowed}")
    if s.get("resolution", 64) not in RESOLUTIONS:
        problems.append(f"{where}: suite.resolution: {s['resolution']} not one of 32..1024 (powers of two)")
    if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in s.get("seeds", [0])):
        problems.append(f"{where}: suite.seeds: expected a list of non-negative integers")
    positives = [("budget.hours", b.get("hours")), ("budget.max_iters", b.get("max_iters")),
                 ("budget.speed_ratio", b.get("speed_ratio")), ("budget.num_gpus", b.get("num_gpus")),
                 ("eval.grid_size", e.get("grid_size"))]  # fmt: skip
    for m, mt in data.get("models", {}).items():
        if isinstance(mt, dict):
            positives += [(f"models.{m}.budget_hours", mt.get("budget_hours"))]
            positives += [(f"models.{m}.max_iters", mt.get("max_iters"))]
            if mt.get("precision", "fp32") not in PRECISIONS:
                allowed = ", ".join(PRECISIONS)
                problems.append(f"{where}: models.{m}.precision: {mt['precision']!r} not one of {allowed}")
            if mt.get("needs", "init_from") != "init_from":
                problems.append(f"{where}: models.{m}.needs: {mt['needs']!r} unknown; the only one is 'init_from'")
    for key, value in positives:
        if isinstance(value, int | float) and not isinstance(value, bool) and not 0 < value < math.inf:
            problems.append(f"{where}: {key}: must be a finite number > 0, got {value}")
    fr = e.get("fractions", spec_default("eval_fractions"))
    if not fr or not all(isinstance(f, int | float) and 0 < f <= 1 for f in fr):
        problems.append(f"{where}: eval.fractions: expected numbers in (0, 1], got {fr!r}")
    return problems


def _budget_of(data: dict[str, Any], mt: dict[str, Any]) -> tuple[float | None, int | None]:
    b = data.get("budget", {})
    return mt.get("budget_hours", b.get("hours")), mt.get("max_iters", b.get("max_iters"))


SpeedRatio = float | Mapping[tuple[str, int], float] | None


def _ratio(speed_ratio: SpeedRatio, data: dict[str, Any], model: str, path: Path) -> float:
    if isinstance(speed_ratio, Mapping):
        key = (model, data["suite"]["resolution"])
        if key not in speed_ratio:
            raise BenchError(f"{path}: models.{model}: the calibration has no speed ratio for {model} at {key[1]} px; "
                             "calibrate this model on both devices")  # fmt: skip
        return float(speed_ratio[key])
    return float(speed_ratio or data.get("budget", {}).get("speed_ratio", spec_default("speed_ratio")))


def _expand(
    data: dict[str, Any], path: Path, budget_scale: float, speed_ratio: SpeedRatio, init_from: str | None
) -> list[Cell]:
    s, b, e = data["suite"], data.get("budget", {}), data.get("eval", {})
    fractions = tuple(sorted({float(f) for f in e.get("fractions", spec_default("eval_fractions"))} | {1.0}))
    cells = []
    for model, mt in data["models"].items():
        kwargs = dict(mt.get("kwargs", {}))
        if mt.get("needs") == "init_from":
            if not init_from:
                continue
            kwargs["init_from"] = str(Path(init_from).resolve())
        hours, iters = _budget_of(data, mt)
        if hours is None and iters is None:
            raise SuiteError(f"{path}: models.{model}: no budget; set budget.hours or max_iters")
        hours = None if hours is None else float(hours)  # `hours = 1` and `hours = 1.0`: one run id
        given = {  # keys the suite sets; RunSpec owns the defaults of the others
            "num_gpus": b.get("num_gpus"), "accelerator": b.get("accelerator"), "protocols": e.get("protocols"),
            "detector": e.get("detector"), "pr_detector": e.get("pr_detector"), "grid_size": e.get("grid_size"),
            "precision": mt.get("precision"), "compile": mt.get("compile"), "fused_adam": mt.get("fused_adam"),
            "cuda_graphs": mt.get("cuda_graphs"),
        }  # fmt: skip
        given = {k: v for k, v in given.items() if v is not None}
        for dataset in s["datasets"]:
            for seed in s.get("seeds", [spec_default("seed")]):
                spec = RunSpec(
                    suite=s["name"], model=model, dataset=dataset, resolution=s["resolution"], seed=seed,
                    model_kwargs=kwargs, budget_hours=hours, max_iters=iters,
                    speed_ratio=_ratio(speed_ratio, data, model, path), budget_scale=budget_scale,
                    eval_fractions=fractions, **given,
                )  # fmt: skip
                cells.append(Cell(spec, mt.get("label", model), mt.get("group", "")))
    return cells


def load_suite(
    name_or_path: str,
    *,
    budget_scale: float = 1.0,
    speed_ratio: SpeedRatio = None,
    init_from: str | None = None,
) -> Suite:
    """Read, validate and expand a suite. Raises SuiteError listing every problem found.

    Args:
        budget_scale: multiplies every budget (>0).
        speed_ratio: this device's speed relative to the suite's reference GPU (one number, or one per
            (model, resolution) from a calibration); None = the suite's ``budget.speed_ratio``.
        init_from: checkpoint for cells whose model declares ``needs = "init_from"``.
    """
    path = suite_path(name_or_path)
    data = read_toml(path)
    where = str(path)
    problems = _check_types(data, where)
    if not problems:
        problems = _check_values(data, where) + _check_names(data, where)
    if problems:
        raise SuiteError(f"{len(problems)} problem(s) in suite: " + "; ".join(problems))
    s = data["suite"]
    cells = _expand(data, path, budget_scale, speed_ratio, init_from)
    return Suite(
        name=s["name"], path=path, description=s.get("description", ""),
        paper_table=s.get("paper_table"), datasets=list(s["datasets"]), cells=cells,
        slurm=dict(data.get("slurm", {})),
    )  # fmt: skip


def filter_cells(suite: Suite, models: list[str] | None, datasets: list[str] | None) -> list[Cell]:
    """The suite's cells restricted to ``models`` / ``datasets`` (each must be in the suite)."""
    have_m = {c.spec.model for c in suite.cells}
    have_d = set(suite.datasets)
    for kind, wanted, have in (("--models", models, have_m), ("--datasets", datasets, have_d)):
        missing = sorted(set(wanted or []) - have)
        if missing:
            raise BenchError(
                f"{kind}: {', '.join(missing)} not in suite {suite.name!r} ({suite.path}); "
                f"choose from {', '.join(sorted(have))}"
            )
    return [
        c for c in suite.cells
        if (not models or c.spec.model in models) and (not datasets or c.spec.dataset in datasets)
    ]  # fmt: skip
