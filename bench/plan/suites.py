"""Suites as data: ``experiments/*.toml`` → validated → an expanded grid of cells.

A suite file has the tables ``[suite]`` (name, description, include, paper_table, reference_gpu,
resolution, resize_filter, datasets, seeds, reading: how its rows read the paper where it is silent),
``[budget]`` (hours, max_iters, max_kimg, max_kimg_by_dataset, pin, speed_ratio, num_gpus,
accelerator: 'gpu' when the budgets assume ``num_gpus`` GPUs per cell, else 'none';
compute_seconds, compute_device: a compute budget, :mod:`bench.plan.compute`), ``[eval]``
(protocols, detector, fractions, grid_size), ``[models.<row>]`` (model, like, budget_multiple: one row each,
:mod:`bench.plan.suite_rows`; label, group, budget_hours, max_iters, max_kimg, max_kimg_by_dataset,
budget_pin, kwargs, needs), an optional ``[slurm]`` block and an
optional ``[study]`` (claims and comparisons over seeds: :mod:`bench.plan.studies`). A
budget is ``hours`` (reference-GPU-hours of training time), ``max_iters`` (an iteration cap:
deterministic), ``max_kimg`` or several, the first limit reached ending the run unless a pin names
the one that applies; a model's own keys win over ``[budget]``. A compute budget is the suite's one
budget for every row (never mixed with the others), converted to each model's iterations.
``include`` names other TOML files (relative to the including file) merged first, this file
winning. Every problem in a file is reported at once, each with file and key.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.errors import BenchError, SuiteError
from bench.plan import names
from bench.plan.compute import compute_budget, count_ahead
from bench.plan.devices import get_profile
from bench.plan.launching import LaunchSettings
from bench.plan.protocol_names import current
from bench.plan.specs import (
    ACCELERATORS,
    MAX_SEED,
    RESIZE_FILTERS,
    RESOLUTIONS,
    RunSpec,
)
from bench.plan.studies import Study, read_study
from bench.plan.suite_checks import check_compute, check_models, check_numbers, check_slurm, seeds_problems
from bench.plan.suite_rows import check_distinct_runs, check_rows, resolve_likes, row_label, row_model, row_multiple
from bench.plan.suite_toml import read_toml

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
MAX_NAME_CHARS = 100  # suite names are folder names (the file-name limit is 255 bytes)
_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


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
        "resolution": int, "resize_filter": str, "datasets": list, "seeds": list, "reading": str,
    },
    "budget": {
        "hours": (int, float), "max_iters": int, "max_kimg": (int, float), "pin": str, "speed_ratio": (int, float),
        "num_gpus": int, "accelerator": str, "max_kimg_by_dataset": dict,
        "compute_seconds": (int, float), "compute_device": str,
    },
    "eval": {"protocols": list, "detector": str, "pr_detector": str, "fractions": list, "grid_size": int},
    "model": {
        "label": str, "group": str, "budget_hours": (int, float), "max_iters": int, "max_kimg": (int, float),
        "budget_pin": str, "kwargs": dict, "needs": str, "precision": str, "compile": bool, "fused_adam": bool,
        "cuda_graphs": bool, "channels_last": bool, "max_kimg_by_dataset": dict, "model": str, "like": str,
        "budget_multiple": (int, float),
    },
    "slurm": settings_schema(LaunchSettings, skip=("launcher",)),
}  # fmt: skip
_TOP = ("suite", "budget", "eval", "models", "slurm")
_TABLES = (*_TOP, "study")  # [study] is checked by bench.plan.studies


@dataclass(frozen=True)
class Cell:
    """One cell of the grid: a run spec plus how the report shows it."""

    spec: RunSpec
    label: str  # row name in tables (e.g. "FastGAN")
    group: str  # row group (e.g. "5 hour"); may be ""
    key: str = ""  # the suite's [models.<key>] table ("" outside a suite file: the model's name)


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
    reference_gpu: str | None = None  # the device the budget hours are hours of (a devices.toml profile)
    reading: str = ""  # how the suite's rows read the paper where it is silent (the report's caption says it)
    study: Study | None = None  # comparisons and claims over seeds ([study])


def suite_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a suite's results folder (``runs/<name>/``), or None when it can."""
    if not _NAME_RE.fullmatch(name):
        return f"{name[:80]!r} names a results folder; use letters, digits, _ . - (not starting with .)"
    if len(name) > MAX_NAME_CHARS:
        return f"{len(name)} characters names a results folder; use at most {MAX_NAME_CHARS}"
    return None


def suite_path(name_or_path: str) -> Path:
    """``experiments/<name>.toml``, or the given path if it ends in .toml (read by :func:`read_toml`)."""
    p = Path(name_or_path)
    if p.suffix == ".toml":
        return p
    path = EXPERIMENTS / f"{name_or_path}.toml"
    if suite_name_problem(name_or_path) is not None or not path.is_file():
        import difflib

        names = list_suites()
        close = difflib.get_close_matches(name_or_path, names, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}?" if close else f"available: {', '.join(names)}"
        raise BenchError(f"unknown suite {name_or_path!r} (no {path}); {hint}")
    return path


def list_suites() -> list[str]:
    """Names of the suites in ``experiments/`` (files starting with '_' are include-only)."""
    return sorted(p.stem for p in EXPERIMENTS.glob("*.toml") if not p.stem.startswith("_"))


def _check_types(data: dict[str, Any], where: str) -> tuple[list[str], dict[str, Any]]:
    """Problems with tables, keys and value types, and a copy of ``data`` without the offending
    entries (so that the value and name checks can still run on the rest and report at once)."""
    problems = [f"{where}: {k}: unknown table; allowed: {', '.join(_TABLES)}" for k in data if k not in _TABLES]
    clean: dict[str, Any] = {}
    for top in _TOP:
        table = data.get(top, {})
        if not isinstance(table, dict):
            problems.append(f"{where}: {top}: expected a table ([{top}])")
            table = {}
        if top == "models":
            clean["models"] = {}
            for m, mt in table.items():
                if not isinstance(mt, dict):
                    problems.append(f"{where}: models.{m}: expected a table")
                    mt = {}
                clean["models"][m] = _typed_keys(mt, "model", f"models.{m}", where, problems)
        else:
            clean[top] = _typed_keys(table, top, top, where, problems)
    return problems, clean


def _typed_keys(table: dict[str, Any], schema: str, name: str, where: str, problems: list[str]) -> dict[str, Any]:
    """The entries of ``table`` that are known keys of the right type; the others go to ``problems``."""
    kept = {}
    for key, value in table.items():
        want = _SCHEMA[schema].get(key)
        if want is None:
            problems.append(f"{where}: {name}.{key}: unknown key; allowed: {', '.join(_SCHEMA[schema])}")
        elif not isinstance(value, want) or isinstance(value, bool) and want is not bool:
            problems.append(f"{where}: {name}.{key}: expected {_type_name(want)}, got {value!r}")
        elif key == "kwargs" and (bad := _not_plain(value)) is not None:
            problems.append(f"{where}: {name}.kwargs: {bad!r} is not a string, number, bool, array or table")
        else:
            kept[key] = value
    return kept


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
    """Unknown model, dataset, protocol and detector names (from the registries' cached listing)."""
    problems = []
    checks = [(f"models.{m}" + (".model" if "model" in mt else ""), names.check_model, row_model(m, mt))
              for m, mt in data.get("models", {}).items()]  # fmt: skip
    checks += [(f"suite.datasets[{i}]", names.check_dataset, d) for i, d in enumerate(_ds(data))]
    protos = data.get("eval", {}).get("protocols", spec_default("protocols"))
    checks += [(f"eval.protocols[{i}]", names.check_protocol, p) for i, p in enumerate(protos)]
    for key in ("detector", "pr_detector"):
        checks += [(f"eval.{key}", names.check_detector, data.get("eval", {}).get(key, spec_default(key)))]
    for key, check, value in checks:
        try:
            check(str(value))
        except (BenchError, ValueError) as exc:
            problems.append(f"{where}: {key}: {exc}")
    return problems


def _check_overrides(overrides: dict[str, str]) -> list[str]:
    """Detector names given as flags (``--detector``, ``--pr-detector``)."""
    problems = []
    for key, name in overrides.items():
        try:
            names.check_detector(name)
        except BenchError as exc:
            problems.append(f"--{key.replace('_', '-')}: {exc}")
    return problems


def _ds(data: dict[str, Any]) -> list[Any]:
    return data.get("suite", {}).get("datasets", [])


def _check_values(data: dict[str, Any], where: str, given: dict[str, Any]) -> list[str]:
    """Problems with values (``data`` is well typed; ``given`` the file as read, for missing keys)."""
    problems = []
    s, b, e = data["suite"], data["budget"], data["eval"]
    suite_given = given.get("suite") if isinstance(given.get("suite"), dict) else {}
    for key in ("name", "resolution", "datasets"):
        if key not in suite_given:
            problems.append(f"{where}: suite.{key}: missing (required)")
    if "name" in s and (why := suite_name_problem(s["name"])):
        problems.append(f"{where}: suite.name: {why}")
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
    if s.get("resize_filter", RESIZE_FILTERS[0]) not in RESIZE_FILTERS:
        allowed = ", ".join(RESIZE_FILTERS)
        problems.append(f"{where}: suite.resize_filter: {s['resize_filter']!r} not one of {allowed}")
    if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_SEED for x in s.get("seeds", [0])):
        problems.append(f"{where}: suite.seeds: expected a list of non-negative integers up to 2**32 - 1")
    if "reference_gpu" in s:
        try:
            get_profile(str(s["reference_gpu"]))
        except BenchError as exc:
            problems.append(f"{where}: suite.reference_gpu: {exc}")
    fr = e.get("fractions", spec_default("eval_fractions"))
    if not fr or not all(isinstance(f, int | float) and 0 < f <= 1 for f in fr):
        problems.append(f"{where}: eval.fractions: expected numbers in (0, 1], got {fr!r}")
    problems += check_compute(data, where) + check_rows(data, where, "study" in given)
    return problems + check_numbers(data, where) + check_models(data, where) + check_slurm(data, where)


def _budget_of(data: dict[str, Any], mt: dict[str, Any], where: str) -> dict[str, Any]:
    """The model's budget keys (its own winning over [budget]), as RunSpec fields; SuiteError when unusable."""
    b = data.get("budget", {})
    d = {
        "budget_hours": mt.get("budget_hours", b.get("hours")), "max_iters": mt.get("max_iters", b.get("max_iters")),
        "max_kimg": mt.get("max_kimg", b.get("max_kimg")), "budget_pin": mt.get("budget_pin", b.get("pin")),
    }  # fmt: skip
    if d["budget_hours"] is None and d["max_iters"] is None and d["max_kimg"] is None:
        raise SuiteError(f"{where}: no budget; set budget.compute_seconds, hours, max_iters or max_kimg")
    pin = d["budget_pin"]
    if pin is not None and d[f"max_{pin}"] is None:
        raise SuiteError(f"{where}: budget pinned to {pin} without max_{pin}; set max_{pin} (or drop the pin)")
    if d["budget_hours"] is not None:
        d["budget_hours"] = float(d["budget_hours"])  # `hours = 1` and `hours = 1.0`: one run id
    return d


class Converter(Protocol):
    """A speed ratio per configuration (bench.tools.conversion): ``(ratio, source code)``."""

    def __call__(self, model: str, resolution: int, kwargs: Mapping[str, Any], precision: str) -> tuple[float, str]:
        """This device's speed over the reference device's for one configuration, and where it came from."""
        ...


SpeedRatio = float | Converter | None


def _ratio(
    speed_ratio: SpeedRatio, data: dict[str, Any], model: str, kwargs: dict[str, Any], precision: str
) -> tuple[float, str]:
    """(ratio, source): a converter's, a given number's ('flag'), the suite's ('suite'), or 1 ('none')."""
    if callable(speed_ratio):
        return speed_ratio(model, data["suite"]["resolution"], kwargs, precision)
    if speed_ratio is not None:
        return float(speed_ratio), "flag"
    if "speed_ratio" in data.get("budget", {}):
        return float(data["budget"]["speed_ratio"]), "suite"
    return float(spec_default("speed_ratio")), "none"


def _expand(
    data: dict[str, Any], path: Path, budget_scale: float, speed_ratio: SpeedRatio, init_from: str | None,
    cost_cache: Path | None = None,
) -> list[Cell]:  # fmt: skip
    s, b, e = data["suite"], data.get("budget", {}), data.get("eval", {})
    fractions = tuple(sorted({float(f) for f in e.get("fractions", spec_default("eval_fractions"))} | {1.0}))
    prints = {dataset: _fingerprint(dataset) for dataset in s["datasets"]}
    if "compute_seconds" in b:
        count_ahead(b, s, [(row_model(k, mt), dict(mt.get("kwargs", {}))) for k, mt in data["models"].items()
                           if mt.get("needs") != "init_from"], cost_cache)  # fmt: skip
    cells = []
    for key, mt in data["models"].items():
        model, kwargs = row_model(key, mt), dict(mt.get("kwargs", {}))
        if mt.get("needs") == "init_from":
            if not init_from:
                continue
            kwargs["init_from"] = str(Path(init_from).resolve())
        where = f"{path}: models.{key}"
        if "compute_seconds" in b:
            try:
                budget = compute_budget(data["budget"], s, model, kwargs, cost_cache, row_multiple(mt))
            except BenchError as exc:
                raise SuiteError(f"{where}: {exc}") from None
        else:
            budget = _budget_of(data, mt, where)
        by_dataset = mt.get("max_kimg_by_dataset", b.get("max_kimg_by_dataset", {}))
        precision = mt.get("precision", spec_default("precision"))
        ratio, source = _ratio(speed_ratio, data, model, kwargs, precision)
        given = {  # keys the suite sets; RunSpec owns the defaults of the others
            "num_gpus": b.get("num_gpus"), "accelerator": b.get("accelerator"), "protocols": e.get("protocols"),
            "detector": e.get("detector"), "pr_detector": e.get("pr_detector"), "grid_size": e.get("grid_size"),
            "precision": mt.get("precision"), "compile": mt.get("compile"), "fused_adam": mt.get("fused_adam"),
            "resize_filter": s.get("resize_filter"),
            "cuda_graphs": mt.get("cuda_graphs"), "channels_last": mt.get("channels_last"),
        }  # fmt: skip
        given = {k: v for k, v in given.items() if v is not None}
        for dataset in s["datasets"]:
            for seed in s.get("seeds", [spec_default("seed")]):
                try:
                    spec = RunSpec(
                        data_fingerprint=prints[dataset],
                        suite=s["name"], model=model, dataset=dataset, resolution=s["resolution"], seed=seed,
                        model_kwargs=kwargs, speed_ratio=ratio, budget_source=source, budget_scale=budget_scale,
                        eval_fractions=fractions, **budget | {"max_kimg": by_dataset.get(dataset, budget["max_kimg"])},
                        **given,
                    )  # fmt: skip
                except BenchError as exc:
                    raise SuiteError(f"{where}: {exc}") from None
                cells.append(Cell(spec, row_label(key, mt), mt.get("group", ""), key))
    return cells


def _fingerprint(dataset: str) -> str | None:
    """The listing hash of a ``folder:PATH`` dataset (a changed folder gives new run ids), else None."""
    if not dataset.startswith(names.FOLDER_PREFIX):
        return None
    from bench.data.folders import folder_fingerprint

    return folder_fingerprint(dataset)


def load_suite(
    name_or_path: str,
    *,
    budget_scale: float = 1.0,
    speed_ratio: SpeedRatio = None,
    init_from: str | None = None,
    detector: str | None = None,
    pr_detector: str | None = None,
    cost_cache: Path | None = None,
    seeds: tuple[int, ...] | None = None,
) -> Suite:
    """Read, validate and expand a suite. Raises SuiteError listing every problem found.

    Args:
        budget_scale: multiplies every budget (>0).
        speed_ratio: this device's speed relative to the suite's reference GPU: one number, or a
            :class:`Converter` (one ratio per configuration, bench.tools.conversion); None = the
            suite's ``budget.speed_ratio``, else 1.
        init_from: checkpoint for cells whose model declares ``needs = "init_from"``.
        detector, pr_detector: replace the suite's ``eval.detector`` / ``eval.pr_detector`` (the
            ``--detector`` / ``--pr-detector`` flags; they change the run ids).
        cost_cache: where counted step costs are kept (a compute budget counts each model's step).
        seeds: replace the suite's ``suite.seeds`` (the ``--seeds`` flag; each seed is a run id of its own).
    """
    path = suite_path(name_or_path)
    given = read_toml(path)
    where = str(path)
    overrides = {k: v for k, v in {"detector": detector, "pr_detector": pr_detector}.items() if v is not None}
    problems, data = _check_types(given, where)
    problems += resolve_likes(data, where)
    if isinstance(protos := data.get("eval", {}).get("protocols"), list):  # former names read as current ones
        data["eval"]["protocols"] = [current(p) if isinstance(p, str) else p for p in protos]
    problems += _check_values(data, where, given) + _check_names(data, where) + _check_overrides(overrides)
    problems += seeds_problems(seeds)
    protocols = [str(p) for p in data["eval"].get("protocols", spec_default("protocols"))]
    suite_seeds = data["suite"].get("seeds", [spec_default("seed")])
    planned = ("--seeds", list(seeds)) if seeds is not None else ("suite.seeds", suite_seeds)
    study, study_problems = read_study(given.get("study"), list(data["models"]), protocols, where, planned)
    problems += study_problems
    if problems:
        raise SuiteError(f"{len(problems)} problem(s) in suite: " + "; ".join(problems))
    data["eval"] |= overrides
    s = data["suite"]
    if seeds is not None:
        s["seeds"] = list(seeds)
    cells = _expand(data, path, budget_scale, speed_ratio, init_from, cost_cache)
    check_distinct_runs(cells, where)
    return Suite(
        name=s["name"], path=path, description=s.get("description", ""),
        paper_table=s.get("paper_table"), datasets=list(s["datasets"]), cells=cells,
        slurm=dict(data.get("slurm", {})), reference_gpu=s.get("reference_gpu"), reading=s.get("reading", ""),
        study=study,
    )  # fmt: skip


def suite_budget_basis(name_or_path: str) -> tuple[str | None, bool]:
    """(the suite's reference_gpu, whether its budgets need no speed ratio: budget.speed_ratio pinned, or a
    compute budget), read before expanding it."""
    data = read_toml(suite_path(name_or_path))
    suite, budget = data.get("suite", {}), data.get("budget", {})
    ref = suite.get("reference_gpu") if isinstance(suite, dict) else None
    fixed = isinstance(budget, dict) and ("speed_ratio" in budget or "compute_seconds" in budget)
    return (str(ref) if ref is not None else None), fixed


def filter_cells(suite: Suite, models: list[str] | None, datasets: list[str] | None) -> list[Cell]:
    """The suite's cells restricted to ``models`` / ``datasets`` (each must be in the suite): a name in
    ``models`` selects the row of that key, else every row training that model."""
    keys = {c.key or c.spec.model for c in suite.cells}
    have_m, have_d = keys | {c.spec.model for c in suite.cells}, set(suite.datasets)
    for kind, wanted, have in (("--models", models, have_m), ("--datasets", datasets, have_d)):
        missing = sorted(set(wanted or []) - have)
        if missing:
            raise BenchError(
                f"{kind}: {', '.join(missing)} not in suite {suite.name!r} ({suite.path}); "
                f"choose from {', '.join(sorted(have))}"
            )
    rows = {m for m in models or [] if m in keys} | {c.key or c.spec.model for c in suite.cells
                                                     if c.spec.model in set(models or []) - keys}  # fmt: skip
    return [c for c in suite.cells if (not models or (c.key or c.spec.model) in rows)
            and (not datasets or c.spec.dataset in datasets)]  # fmt: skip
