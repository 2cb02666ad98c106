"""Thin command-line interface: parse, call one function, print. ``run`` is the default command.

Bad input raises :class:`bench.errors.BenchError` (or a model configuration error); it is printed
as one line on stderr and the process exits with code 2. Each subcommand lives beside its
siblings in :mod:`bench.cli.suite_commands` (run, status, cancel, calibrate, report),
:mod:`bench.cli.train_command` (train: one run without a suite file) and
:mod:`bench.cli.tool_commands` (list, eval, generate, import-official, prepare, perf). Every
subcommand takes ``--plugin MODULE`` (:mod:`models.plugins`), imported before it runs.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings
from pathlib import Path
from typing import NoReturn

from bench.cli import suite_commands, tool_commands, train_command
from bench.cli.registry import COMMANDS
from bench.errors import BenchError, Renamed, prog_name
from bench.training.allocator import keep_freed_memory
from bench.training.threads import limit_threads


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: ...; see `PROG --help```) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree; every subcommand's options are documented in its --help."""
    parser = _Parser(prog=prog_name(), description="fewshot-gan-bench: train, evaluate and report few-shot GAN suites")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    suite_commands.add_parsers(sub)
    train_command.add_parsers(sub)
    tool_commands.add_parsers(sub)
    for p in sub.choices.values():
        p.add_argument(
            "--plugin", action="append", metavar="MODULE",
            help="import this module (a name or a .py file) first: it registers more models (repeatable)",
        )  # fmt: skip
    return parser


def _argv_with_default(argv: list[str]) -> list[str]:
    known = set(COMMANDS) | {"-h", "--help"}
    return argv if argv and argv[0] in known else ["run", *argv]


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code.

    Warnings raised while a command runs are held back and printed after its output as one line each
    (``warning: ...``; ``note: ...`` for an old name read), so a failing command's first stderr line is its
    one ``error:`` line.
    """
    argv = _argv_with_default(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    args.argv = argv
    limit_threads()  # before torch starts its thread pool; every command, every worker started through here
    keep_freed_memory()  # CPU steps and detector batches reuse their memory instead of page-faulting it anew
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", Renamed)  # a note, never an error (python -W error) nor hidden
        code, error = _run(args)
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
    for line in dict.fromkeys(_warning_line(w) for w in caught):
        print(line, file=sys.stderr)
    return code


def _run(args: argparse.Namespace) -> tuple[int, str | None]:
    """The command's exit code and, for bad input or an unmet precondition, its one-line message."""
    try:
        if args.plugin:
            from models.plugins import load_plugins

            load_plugins(args.plugin)
        return COMMANDS[args.command](args), None
    except BenchError as exc:
        return 2, " ".join(str(exc).split("\n"))
    except OSError as exc:
        from bench.results.io import DISK_FULL, disk_full_error

        if exc.errno in DISK_FULL:
            return 2, str(disk_full_error(exc.filename))
        if exc.errno == errno.EPIPE:  # the reader left (`list datasets | head`): stop quietly, as Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
            return 1, None
        if exc.filename is None:
            raise
        return 2, f"{exc.filename}: {exc.strerror}; check the path and its permissions"
    except Exception as exc:
        base = sys.modules.get("models.base")  # not imported: no model configuration was checked
        if base is None or not isinstance(exc, base.ModelConfigError):
            raise
        return 2, " ".join(str(exc).split("\n"))


def _warning_line(w: warnings.WarningMessage) -> str:
    """``warning: Category: message (file:line)`` on one line; an old name read: ``note: message``."""
    text = " ".join(str(w.message).split())
    if issubclass(w.category, Renamed):
        return f"note: {text}"
    return f"warning: {w.category.__name__}: {text} ({Path(w.filename).name}:{w.lineno})"


def exit_process(code: int) -> NoReturn:
    """End the process with ``code`` once its output is flushed, skipping the interpreter's teardown.

    Every command has finished its work when ``main`` returns (files written atomically, threads joined,
    child processes waited for); tearing down the modules torch loads then takes about a second (1.4-1.6 s
    measured beside a training run), paid at the end of every command and of every pool worker. Logging
    handlers and the standard streams are flushed first; a stream that cannot be flushed (its reader left)
    turns a success into exit code 120, as the interpreter's own exit would.
    """
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more reaches the reader
            code = code or 120
    os._exit(code)


def run() -> NoReturn:
    """The console entry (``run_bench.py``, ``fewshot-gan-bench``): :func:`main`, then :func:`exit_process`."""
    exit_process(main())
