"""The subcommand registry: ``@command("name")`` on a handler ``fn(args) -> exit code``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    """Register a subcommand handler under ``name``."""

    def deco(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn

    return deco
