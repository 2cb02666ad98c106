"""Where a suite's resolution makes its models' modules differ from their papers' (each family says
so itself: :meth:`models.GANModel.structure_notes`), for the table captions: e.g. at 32 px FastGAN's
generator has a 4→32 skip-layer excitation of this project's own, since none of the paper's fits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.report.tables import SuiteLike


def structure_note(suite: SuiteLike) -> str:
    """'Modules at this resolution: FastGAN at 32 px: G SLE 4→32 (...); ...' for the rows whose model
    reports a difference, each built (on the meta device: no memory, no weights) from its spec; rows
    whose model cannot be built are left out; '' when no row reports one."""
    import torch

    import models

    notes: dict[tuple[str, str], str] = {}
    for cell in suite.cells:
        spec, key = cell.spec, (cell.group, cell.label)
        if key in notes:
            continue
        kwargs = {k: v for k, v in spec.model_kwargs.items() if k != "init_from"}  # the same modules, no file read
        try:
            with models.structure_only(), torch.device("meta"):
                said = models.get_model(spec.model, resolution=spec.resolution, **kwargs).structure_notes()
        except (BenchError, ValueError, TypeError):
            continue
        if said:
            notes[key] = f"{cell.label} at {spec.resolution} px: {', '.join(said)}"
    return f"Modules at this resolution: {'; '.join(notes.values())}." if notes else ""
