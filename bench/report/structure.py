"""Where a suite's resolution makes its models' modules differ from their papers' (each family says
so itself: :meth:`models.GANModel.structure_notes`), for the table captions: e.g. at 32 px FastGAN's
generator has a 4→32 skip-layer excitation of this project's own, since none of the paper's fits."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError
from bench.plan import names

if TYPE_CHECKING:
    from bench.report.tables import CellLike, SuiteLike


def structure_note(suite: SuiteLike) -> str:
    """'Modules at this resolution: FastGAN at 32 px: G SLE 4→32 (...); ...' for the rows whose model
    reports a difference (:func:`built_facts`); rows whose model cannot be built are left out; '' when no
    row reports one."""
    notes: dict[tuple[str, str], str] = {}
    for cell in suite.cells:
        spec, key = cell.spec, (cell.group, cell.label)
        if key in notes:
            continue
        facts = built_facts(spec.model, spec.resolution, _module_kwargs(spec.model_kwargs))
        if facts and (said := facts["notes"]):
            notes[key] = f"{cell.label} at {spec.resolution} px: {', '.join(said)}"
    return f"Modules at this resolution: {'; '.join(notes.values())}." if notes else ""


def remember_built(cells: Iterable[CellLike]) -> None:
    """:func:`built_facts` of every cell's model, computed now and remembered, for the report to read back
    (a pool runs this on the CPU its first finished worker leaves free)."""
    for spec in (c.spec for c in cells):
        built_facts(spec.model, spec.resolution, _module_kwargs(spec.model_kwargs))


def _module_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A row's kwargs without ``init_from``: the same modules, and no checkpoint read to build them."""
    return {k: v for k, v in kwargs.items() if k != "init_from"}


def built_facts(model: str, resolution: int, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """What the model built at ``resolution`` with ``kwargs`` says of itself: ``notes`` (its
    :meth:`~models.GANModel.structure_notes`) and ``hparams`` (its resolved hyper-parameters, as a run's
    spec.json records them); None when it cannot be built. Built on the meta device (no memory, no weights)
    and remembered until a source file changes (:func:`bench.plan.names.remembered`): a warm report or
    status imports neither torch nor the models. A plugin's model (its files do not key the cache) is built
    each time."""
    if not names.model_from_sources(model):
        return _built(model, resolution, kwargs)
    return names.remembered("built", built_key(model, resolution, kwargs), lambda: _built(model, resolution, kwargs))


def built_key(model: str, resolution: int, kwargs: dict[str, Any]) -> str:
    """The key :func:`built_facts` are remembered under (section ``built``)."""
    return json.dumps([model, resolution, kwargs], sort_keys=True, default=str)


def _built(model: str, resolution: int, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    import torch

    import models

    try:
        with models.structure_only(), torch.device("meta"):
            built = models.get_model(model, resolution=resolution, **kwargs)
    except (BenchError, ValueError, TypeError):
        return None
    return {"notes": list(built.structure_notes()), "hparams": json.loads(json.dumps(built.hparams, default=str))}
