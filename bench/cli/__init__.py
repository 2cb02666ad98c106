"""Thin command-line interface: parse, call one function, print. ``run`` is the default command.

Bad input raises :class:`bench.errors.BenchError` (or a model configuration error); it is printed
as one line on stderr and the process exits with code 2. Each subcommand lives beside its
siblings in :mod:`bench.cli.suite_commands` (run, status, cancel, calibrate, report) and
:mod:`bench.cli.tool_commands` (list, eval, generate, import-official, prepare, perf).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from bench.cli import suite_commands, tool_commands
from bench.cli.registry import COMMANDS
from bench.errors import BenchError
from bench.training.threads import limit_threads


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: ...; see `PROG --help```) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree; every subcommand's options are documented in its --help."""
    parser = _Parser(
        prog="run_bench.py", description="fewshot-gan-bench: train, evaluate and report few-shot GAN suites"
    )
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    suite_commands.add_parsers(sub)
    tool_commands.add_parsers(sub)
    return parser


def _argv_with_default(argv: list[str]) -> list[str]:
    known = set(COMMANDS) | {"-h", "--help"}
    return argv if argv and argv[0] in known else ["run", *argv]


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code."""
    argv = _argv_with_default(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    args.argv = argv
    limit_threads()  # before torch starts its thread pool; every command, every worker started through here
    from models import ModelConfigError

    try:
        return COMMANDS[args.command](args)
    except (BenchError, ModelConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        from bench.results.io import DISK_FULL, disk_full_error

        if exc.errno not in DISK_FULL:
            raise
        print(f"error: {disk_full_error(exc.filename)}", file=sys.stderr)
        return 2
