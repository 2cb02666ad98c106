"""Per-key checks of a suite's numbers, models and ``[slurm]`` block (:mod:`bench.plan.suites` runs
them with the others, so every problem in a file is reported at once)."""

from __future__ import annotations

import math
from typing import Any

from bench.errors import BenchError
from bench.plan.compute import compute_device
from bench.plan.launching import LaunchSettings
from bench.plan.specs import MAX_KIMG, PINS, PRECISIONS, number_problem


def check_numbers(data: dict[str, Any], where: str) -> list[str]:
    """Every number that reaches a budget or a count: finite and > 0 (TOML allows nan and inf), caps in range."""
    b, e = data.get("budget", {}), data.get("eval", {})
    numbers = [("budget.hours", b.get("hours")), ("budget.max_iters", b.get("max_iters")),
               ("budget.compute_seconds", b.get("compute_seconds")),
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


# the [budget] and [models.X] keys a compute budget excludes
SUITE_BUDGETS = ("hours", "max_iters", "max_kimg", "max_kimg_by_dataset", "pin", "speed_ratio")
MODEL_BUDGETS = ("budget_hours", "max_iters", "max_kimg", "max_kimg_by_dataset", "budget_pin")


def check_compute(data: dict[str, Any], where: str) -> list[str]:
    """A compute budget (``budget.compute_seconds``) is the suite's only budget, on a known device."""
    b = data.get("budget", {})
    if "compute_seconds" not in b:
        return [f"{where}: budget.compute_device: set without budget.compute_seconds; add the budget or drop "
                "the device"] if "compute_device" in b else []  # fmt: skip
    others = [f"budget.{k}" for k in SUITE_BUDGETS if k in b]
    others += [f"models.{m}.{k}" for m, mt in model_tables(data) for k in MODEL_BUDGETS if k in mt]
    if others:
        return [f"{where}: budget.compute_seconds: a compute budget is the suite's one budget for every row, "
                f"mixed here with {', '.join(others)}; remove those keys or budget.compute_seconds"]  # fmt: skip
    device = b.get("compute_device", data.get("suite", {}).get("reference_gpu"))
    if device is None:
        return [
            f"{where}: budget.compute_device: missing; name the device whose seconds compute_seconds counts "
            "(a devices.toml profile, e.g. 'rtx-2080-ti' or 'cpu-epyc-zen4 x2'), or set suite.reference_gpu"
        ]
    try:
        compute_device(str(device))
    except BenchError as exc:
        key = "budget.compute_device" if "compute_device" in b else "suite.reference_gpu"
        return [f"{where}: {key}: {exc}"]
    return []


def check_slurm(data: dict[str, Any], where: str) -> list[str]:
    """The ``[slurm]`` block as :class:`LaunchSettings` validates it (finite, in range)."""
    try:
        LaunchSettings.merged(data.get("slurm", {}))
    except BenchError as exc:
        return [f"{where}: slurm: {exc}"]
    return []
