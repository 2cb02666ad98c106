"""The subcommand registry: ``@command("name")`` on a handler ``fn(args) -> exit code``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Handler] = {}
CONSOLE_SCRIPT = "fewshot-gan-bench"  # pyproject's [project.scripts] name for main


def prog_name() -> str:
    """The command as the user typed it: the console script, else ``run_bench.py`` (usage, errors, hints)."""
    return CONSOLE_SCRIPT if Path(sys.argv[0]).name == CONSOLE_SCRIPT else "run_bench.py"


def command(name: str) -> Callable[[Handler], Handler]:
    """Register a subcommand handler under ``name``."""

    def deco(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn

    return deco
