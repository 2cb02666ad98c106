"""Per-key checks of a suite's numbers, models and ``[slurm]`` block (:mod:`bench.plan.suites` runs
them with the others, so every problem in a file is reported at once)."""

from __future__ import annotations

import math
from typing import Any

from bench.errors import BenchError
from bench.plan.launching import LaunchSettings
from bench.plan.specs import MAX_KIMG, PINS, PRECISIONS, number_problem


def check_numbers(data: dict[str, Any], where: str) -> list[str]:
    """Every number that reaches a budget or a count: finite and > 0 (TOML allows nan and inf), caps in range."""
    b, e = data.get("budget", {}), data.get("eval", {})
    numbers = [("budget.hours", b.get("hours")), ("budget.max_iters", b.get("max_iters")),
               ("budget.max_kimg", b.get("max_kimg")), ("budget.speed_ratio", b.get("speed_ratio")),
               ("budget.num_gpus", b.get("num_gpus")), ("eval.grid_size", e.get("grid_size"))]  # fmt: skip
    tables = [("budget", b)] + [(f"models.{m}", mt) for m, mt in model_tables(data)]
    for m, mt in model_tables(data):
        numbers += [(f"models.{m}.{k}", mt.get(k)) for k in ("budget_hours", "max_iters", "max_kimg")]
    problems = []
    for key, value in numbers:
        high = MAX_KIMG if key.endswith("max_kimg") else math.inf
        if isinstance(value, int | float) and (problem := number_problem(value, high=high)) is not None:
            problems.append(f"{where}: {key}: {problem}")
    datasets = data.get("suite", {}).get("datasets", [])
    for name, table in tables:
        for dataset, kimg in table.get("max_kimg_by_dataset", {}).items():
            key = f"{where}: {name}.max_kimg_by_dataset.{dataset}"
            if dataset not in datasets:
                problems.append(f"{key}: not one of suite.datasets; name a dataset of the suite")
            elif (problem := number_problem(kimg, high=MAX_KIMG)) is not None:
                problems.append(f"{key}: {problem}")
    return problems


def model_tables(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(m, mt) for m, mt in data.get("models", {}).items() if isinstance(mt, dict)]


def check_models(data: dict[str, Any], where: str) -> list[str]:
    """Per-model values, and one report row per model: (group, label) pairs are unique."""
    problems, rows = [], {}
    pin = data.get("budget", {}).get("pin")
    if pin is not None and pin not in PINS:
        problems.append(f"{where}: budget.pin: {pin!r} not one of {', '.join(PINS)} (the one limit that applies)")
    for m, mt in model_tables(data):
        if mt.get("budget_pin") is not None and mt["budget_pin"] not in PINS:
            pins = ", ".join(PINS)
            problems.append(f"{where}: models.{m}.budget_pin: {mt['budget_pin']!r} not one of {pins}")
        if mt.get("precision", "fp32") not in PRECISIONS:
            problems.append(f"{where}: models.{m}.precision: {mt['precision']!r} not one of {', '.join(PRECISIONS)}")
        if mt.get("needs", "init_from") != "init_from":
            problems.append(f"{where}: models.{m}.needs: {mt['needs']!r} unknown; the only one is 'init_from'")
        row = (mt.get("group", ""), mt.get("label", m))
        if row in rows:
            group = f" in group {row[0]!r}" if row[0] else ""
            problems.append(
                f"{where}: models.{m}.label: {row[1]!r}{group} is also models.{rows[row]}'s label; the report would "
                "average the two models as seeds of one; give each model its own label"
            )
        rows.setdefault(row, m)
    return problems


def check_slurm(data: dict[str, Any], where: str) -> list[str]:
    """The ``[slurm]`` block as :class:`LaunchSettings` validates it (finite, in range)."""
    try:
        LaunchSettings.merged(data.get("slurm", {}))
    except BenchError as exc:
        return [f"{where}: slurm: {exc}"]
    return []
