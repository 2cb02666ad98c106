"""User-facing errors: one line naming the file or key and the fix; the CLI exits with code 2. A fix that is
a command names the program as the user runs it (:func:`prog_name`, :func:`command_line`)."""

from __future__ import annotations

import sys
from pathlib import Path

CONSOLE_SCRIPT = "fewshot-gan-bench"  # pyproject's [project.scripts] name for bench.cli:main


def prog_name() -> str:
    """The command as the user typed it: the console script, else ``run_bench.py`` (usage, errors, hints)."""
    return CONSOLE_SCRIPT if Path(sys.argv[0]).name == CONSOLE_SCRIPT else "run_bench.py"


def command_line(words: str) -> str:
    """``words`` after the program as the user runs it: ``fewshot-gan-bench ...`` or ``python run_bench.py ...``."""
    prog = prog_name()
    return f"{prog} {words}" if prog == CONSOLE_SCRIPT else f"python {prog} {words}"


class BenchError(Exception):
    """Bad input or an unmet precondition the user can fix. ``str(exc)`` is the one-line message."""


class DataError(BenchError):
    """A dataset cannot be built, prepared or loaded."""


class SuiteError(BenchError):
    """A suite file is invalid (the message lists every problem with file and key)."""


class CheckpointError(BenchError):
    """A checkpoint cannot be used (corrupt, wrong model or resolution)."""


class OfflineError(BenchError):
    """A file that must be downloaded is missing and the network is unreachable."""


class NonFiniteError(BenchError):
    """A generator or a detector returned NaN or infinite values: nothing can be scored from them."""


class NonFiniteImages(NonFiniteError):
    """A generator returned NaN or infinite pixels (in training: the run diverged)."""


class Renamed(UserWarning):
    """An old name was read (e.g. a protocol's, bench.plan.protocol_names): the CLI prints ``note: ...``."""
