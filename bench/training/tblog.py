"""Optional live logging: TensorBoard event files per run (``--tensorboard``), beside the JSONL files.

The JSONL files (``evals.jsonl``, ``events.jsonl``, ``state.json``) stay the source of truth; the
events are a view for ``tensorboard --logdir results/runs``: the mean training losses at every log
step (``loss/<name>``), every metric at each evaluation (``metric/<metric>``, KID's ``.../std`` too;
x axis: the training step) and each sample grid (``samples``). Nothing is written when it is off.
A resumed run starts a new event file with ``purge_step`` just after its checkpoint's step, so
TensorBoard drops what the interrupted process logged after the checkpoint (it is logged again).

Needs the ``tensorboard`` package (``pip install 'fewshot-gan-bench[tensorboard]'``);
:func:`check_tensorboard` says so in one line before a run starts.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.errors import BenchError

FOLDER = "tensorboard"  # under the run folder


def tensorboard_installed() -> bool:
    """Whether the ``tensorboard`` package can be imported (without importing it)."""
    return importlib.util.find_spec("tensorboard") is not None


def check_tensorboard() -> None:
    """Raise a one-line :class:`BenchError` when the ``tensorboard`` package is not installed."""
    if not tensorboard_installed():
        raise BenchError(
            "--tensorboard: the tensorboard package is not installed; pip install 'fewshot-gan-bench[tensorboard]' "
            "(or pip install tensorboard), or drop --tensorboard"
        )


class TensorBoardLog:
    """One run's event writer: losses, metric rows and sample grids, each at its training step."""

    def __init__(self, run_dir: Path, start_step: int) -> None:
        """Events go to ``<run_dir>/tensorboard/``; ``start_step`` > 0 (a resume from that step's checkpoint)
        purges the events logged after it."""
        check_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        purge = start_step + 1 if start_step > 0 else None
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / FOLDER), purge_step=purge)

    def losses(self, step: int, values: Mapping[str, float]) -> None:
        """Mean losses since the last log step."""
        for name, value in values.items():
            self.writer.add_scalar(f"loss/{name}", value, step)

    def evaluation(self, step: int, rows: Sequence[dict[str, Any]], grid_png: bytes | None) -> None:
        """An evaluation's metric rows (``metric``, ``value``, ``std``) and its sample grid (PNG bytes)."""
        for row in rows:
            self.writer.add_scalar(f"metric/{row['metric']}", row["value"], step)
            if row.get("std") is not None:
                self.writer.add_scalar(f"metric/{row['metric']}/std", row["std"], step)
        if grid_png is not None:
            import numpy as np
            from PIL import Image

            grid = np.asarray(Image.open(io.BytesIO(grid_png)).convert("RGB"))
            self.writer.add_image("samples", grid, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def open_log(enabled: bool, run_dir: Path, start_step: int) -> TensorBoardLog | None:
    """A :class:`TensorBoardLog` when ``enabled``, else None (nothing is written)."""
    return TensorBoardLog(run_dir, start_step) if enabled else None
