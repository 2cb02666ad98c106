"""What each row of a table trained under, as caption text: how long it trained (reference-GPU
hours, or a pinned length in kimg or iterations, per dataset when they differ) and where its
recipe comes from, one source per setting group (``models.model_info(name).sources``)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from bench.plan.specs import RunSpec


def spec_length(spec: RunSpec) -> str:
    """E.g. '20 h', '300 kimg (pinned)', '5 h or 2,000 it, the first reached' (budget scale applied)."""
    scale = spec.budget_scale
    iters = f"{math.ceil(spec.max_iters * scale):,} it" if spec.max_iters is not None else None
    kimg = f"{spec.max_kimg * scale:g} kimg" if spec.max_kimg is not None else None
    if spec.budget_pin is not None:
        return f"{iters if spec.budget_pin == 'iters' else kimg} (pinned)"
    hours = f"{spec.budget_hours * scale:g} h" if spec.budget_hours is not None else None
    limits = [x for x in (hours, iters, kimg) if x is not None]
    return limits[0] if len(limits) == 1 else " or ".join(limits) + ", the first reached"


def row_length(specs: Sequence[RunSpec]) -> str:
    """One row's length: the commonest over its cells, then the datasets that differ, e.g.
    '300 kimg (pinned); animalface-dog, animalface-cat: 500 kimg (pinned)'."""
    by_text: dict[str, list[str]] = {}
    for spec in specs:
        datasets = by_text.setdefault(spec_length(spec), [])
        if spec.dataset not in datasets:
            datasets.append(spec.dataset)
    counts = Counter({text: len(datasets) for text, datasets in by_text.items()})
    common = counts.most_common(1)[0][0]
    others = [f"{', '.join(datasets)}: {text}" for text, datasets in by_text.items() if text != common]
    return "; ".join([common, *others])


def grouped(labels_to_text: dict[str, str]) -> str:
    """'text (label, label); text (label)': rows that share a text named together, first seen first."""
    by_text: dict[str, list[str]] = {}
    for label, text in labels_to_text.items():
        if text:
            by_text.setdefault(text, []).append(label)
    return "; ".join(f"{', '.join(labels)}: {text}" for text, labels in by_text.items())


def recipe_text(model: str | None) -> str:
    """A row's recipe sources in one line (``models.recipe_summary``, from the cached registry listing);
    '' for a row mixing models or a model that names no per-group sources."""
    from bench.plan import names

    return names.registry()["models"].get(model, {}).get("sources", "") if model is not None else ""
