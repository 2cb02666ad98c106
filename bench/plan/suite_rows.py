"""A suite's rows: each ``[models.<row>]`` table is one row of the report, named by its key.

A row trains ``model`` (a registered name; default: the row's key), so one model can appear in two
rows. ``like = "<row>"`` makes a row that row's table with its own keys on top (one spelling of the
shared settings). ``budget_multiple = k`` trains the row at k times the suite's compute budget
(``budget.compute_seconds``): the row's label says so ("…, 4× compute"), and the report sets it apart
from the rows at the suite's budget and never ranks it against them. The demo uses it to show that a
family which does not learn within the equal budget does learn, and what that costs::

    [models.stylegan2-diffaug-x4]
    like = "stylegan2-diffaug"
    budget_multiple = 4

A suite with a ``[study]`` compares its rows as models over seeds at one budget: its rows are keyed by
their model (no ``model`` key naming another, so no model twice) and at the suite's budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.errors import SuiteError
from bench.plan.specs import number_problem


def row_model(key: str, table: dict[str, Any]) -> str:
    """The registered model row ``key`` trains."""
    return str(table.get("model", key))


def row_multiple(table: dict[str, Any]) -> float:
    """The row's budget in multiples of the suite's compute budget (1: the suite's budget)."""
    return float(table.get("budget_multiple", 1.0))


def multiple_words(multiple: float) -> str:
    """'4× compute': how a row at a multiple of the suite's budget is labelled."""
    return f"{multiple:g}× compute"


def row_label(key: str, table: dict[str, Any]) -> str:
    """The row's name in tables, plots and budget rows: its label (default its key), with its budget
    multiple when it is not 1."""
    label = str(table.get("label", key))
    multiple = row_multiple(table)
    return label if multiple == 1 else f"{label}, {multiple_words(multiple)}"


def resolve_likes(data: dict[str, Any], where: str) -> list[str]:
    """Replace each row that names ``like`` by that row's table with its own keys on top (in place, in
    ``data["models"]``); the problems: an unknown row, itself, or a row that is itself a ``like``."""
    rows = data.get("models", {})
    problems, resolved = [], {}
    for key, table in rows.items():
        if "like" not in table:
            continue
        other = table["like"]
        if other == key or other not in rows:
            choices = ", ".join(k for k in rows if k != key)
            problems.append(f"{where}: models.{key}.like: {other!r} is not another row of the suite; name one of: "
                            f"{choices or '(no other row)'}")  # fmt: skip
        elif "like" in rows[other]:
            problems.append(f"{where}: models.{key}.like: models.{other} is itself a 'like' row; name the row it "
                            f"copies ({rows[other]['like']!r})")  # fmt: skip
        else:
            own = {k: v for k, v in table.items() if k != "like"}
            resolved[key] = rows[other] | {"model": row_model(other, rows[other])} | own
    rows.update(resolved)
    return problems


def check_rows(data: dict[str, Any], where: str, study: bool) -> list[str]:
    """Each row's ``budget_multiple`` (a finite number > 0, under a compute budget only) and, in a suite with
    a ``[study]`` (``study``), rows keyed by their model at the suite's budget."""
    problems = []
    compute = "compute_seconds" in data.get("budget", {})
    for key, table in data.get("models", {}).items():
        name = f"{where}: models.{key}"
        if "budget_multiple" in table:
            if (problem := number_problem(table["budget_multiple"])) is not None:
                problems.append(f"{name}.budget_multiple: {problem}")
            elif not compute:
                problems.append(f"{name}.budget_multiple: multiplies a compute budget; set budget.compute_seconds, "
                                "or give the row its own budget keys (max_iters, hours, ...)")  # fmt: skip
            elif study and row_multiple(table) != 1:
                problems.append(f"{name}.budget_multiple: a [study] compares its rows at the suite's one budget; "
                                "drop budget_multiple or the [study]")  # fmt: skip
        if study and row_model(key, table) != key:
            problems.append(f"{name}: trains {row_model(key, table)!r} under another name; a [study] names "
                            "each row by its model (no model twice): key the row by its model, or drop "
                            "the [study]")  # fmt: skip
    return problems


def check_distinct_runs(cells: Sequence[Any], where: str) -> None:
    """SuiteError when two rows would train the same runs (the same model, settings and budget): one run
    folder cannot be two rows."""
    rows: dict[str, str] = {}
    for c in cells:
        other = rows.setdefault(c.spec.run_id, c.key)
        if other != c.key:
            raise SuiteError(f"{where}: models.{c.key}: the same runs as models.{other} (model, kwargs and budget "
                             "alike); change its kwargs or budget_multiple, or drop the row")  # fmt: skip
