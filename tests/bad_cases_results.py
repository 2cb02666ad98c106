"""Stored results edited by hand (issue 29, the reader of stored results): kind ``stored results``.

A row of ``evals.jsonl`` with a value of -5, ``true``, ``"abc"``, ``{}``, NaN or a step of ``"abc"``, a
``spec.json`` whose ``model_kwargs`` is a list, a ``state.json`` whose ``step`` is text. Each is checked
once, when the results are read (bench.results.rows): the run shows as unreadable, named with the line
and the fix, and the rest of the suite is reported (exit 0); a suite whose only run is unreadable has
nothing to tabulate: one error line, exit 2, nothing written. Never a traceback, never a number shown.
"""

from __future__ import annotations

import json
from pathlib import Path

from bad_inputs import Builder, Case, Ctx, write

REPORT_FILES = ["results/tables/*", "results/plots/*", "results/plots/*/*"]
FIX = "restore the line or delete it"


def _edited(ctx: Ctx, run: Path, **change: object) -> None:
    """The run's first evaluation row with ``change`` applied (as a hand edit leaves it)."""
    lines = (run / "evals.jsonl").read_text().splitlines()
    lines[0] = json.dumps(json.loads(lines[0]) | change)
    write(run / "evals.jsonl", ("\n".join(lines) + "\n").encode())


def _report_row(change: dict[str, object], problem: str) -> Builder:
    """``report`` of the evaluated suite, its one run's first row edited: nothing to tabulate (exit 2)."""

    def build(ctx: Ctx) -> Case:
        argv = ["report", *ctx.copy_evaluated()]
        _edited(ctx, next((ctx.out / "runs" / "tiny").glob("*/")), **change)
        return Case(argv, ["no readable evaluation row", "evals.jsonl line 1", problem, FIX])

    return build


def _status_row(change: dict[str, object], problem: str) -> Builder:
    """``status`` of the evaluated suite with its run's first row edited: the run named unreadable (exit 0)."""

    def build(ctx: Ctx) -> Case:
        argv = ["status", *ctx.copy_evaluated()]
        _edited(ctx, next((ctx.out / "runs" / "tiny").glob("*/")), **change)
        return Case(argv, ["unreadable: ", "evals.jsonl line 1", problem, FIX], code=0)

    return build


def _stray_row(command: str, change: dict[str, object], problem: str) -> Builder:
    """``status`` or ``report`` of the healthy evaluated run beside a copy of it (another run folder) with
    an edited row: the healthy run's numbers are reported, the copy named unreadable in a warning."""

    def build(ctx: Ctx) -> Case:
        argv = [command, *ctx.copy_evaluated()]
        run = next((ctx.out / "runs" / "tiny").glob("*/"))
        stray = ctx.out / "runs" / "tiny" / "stray"
        for name in ("spec.json", "state.json", "evals.jsonl"):
            write(stray / name, (run / name).read_bytes())
        _edited(ctx, stray, **change)
        shown = "kid8_full" if command == "report" else "| Baseline | "
        return Case(argv, [shown, "stray/evals.jsonl line 1", problem], code=0, allow_new=REPORT_FILES)

    return build


def _eval_row(change: dict[str, object], problem: str) -> Builder:
    """``eval --run`` of the evaluated run, its first row edited: refused before anything is scored (the
    new rows copy their snapshot's training position from it)."""

    def build(ctx: Ctx) -> Case:
        ctx.copy_evaluated()
        run = next((ctx.out / "runs" / "tiny").glob("*/"))
        _edited(ctx, run, **change)
        return Case(["eval", "--run", str(run), "--out", str(ctx.out)], ["evals.jsonl line 1", problem, FIX])

    return build


def _run_file(command: str, name: str, data: bytes, expect: list[str], code: int) -> Builder:
    """``status`` or ``report`` of the evaluated suite with one file of its run replaced by ``data``."""

    def build(ctx: Ctx) -> Case:
        argv = [command, *ctx.copy_evaluated()]
        write(next((ctx.out / "runs" / "tiny").glob("*/")) / name, data)
        return Case(argv, expect, code=code, allow_new=REPORT_FILES if code == 0 else [])

    return build


def _spec_kwargs(command: str, expect: list[str], code: int) -> Builder:
    """``status`` or ``report`` of the evaluated suite, its run's spec.json holding ``model_kwargs = [1, 2]``."""

    def build(ctx: Ctx) -> Case:
        argv = [command, *ctx.copy_evaluated()]
        run = next((ctx.out / "runs" / "tiny").glob("*/"))
        doc = json.loads((run / "spec.json").read_bytes())
        doc["spec"]["model_kwargs"] = [1, 2]
        write(run / "spec.json", json.dumps(doc).encode())
        return Case(argv, expect, code=code)

    return build


KID = "a KID this far below 0 is not estimation noise"
NOT_A_NUMBER = "value: expected a finite number"
STORED: dict[str, Builder] = {
    "report: a value of -5": _report_row({"value": -5}, KID),
    "report: a value of true": _report_row({"value": True}, f"{NOT_A_NUMBER}, got True"),
    "report: a value of 'abc'": _report_row({"value": "abc"}, f"{NOT_A_NUMBER}, got 'abc'"),
    "report: a value of {}": _report_row({"value": {}}, f"{NOT_A_NUMBER}, got {{}}"),
    "report: a value of NaN": _report_row({"value": float("nan")}, f"{NOT_A_NUMBER}, got nan"),
    "report: a step of 'abc'": _report_row({"step": "abc"}, "step: expected a whole number >= 0, got 'abc'"),
    "report: a grid outside the run": _report_row({"grid": "../../x.png"}, "grid: expected a path inside the run"),
    "status: a value of 'abc'": _status_row({"value": "abc"}, f"{NOT_A_NUMBER}, got 'abc'"),
    "status: a value of -5": _status_row({"value": -5}, KID),
    "report: another run's value of true": _stray_row("report", {"value": True}, NOT_A_NUMBER),
    "status: another run's step of 'abc'": _stray_row("status", {"step": "abc"}, "step: expected a whole number"),
    "eval --run: a kimg of 'abc'": _eval_row({"kimg": "abc"}, "kimg: expected a finite number >= 0, got 'abc'"),
    "report: spec.json model_kwargs [1, 2]": _spec_kwargs(
        "report", ["no readable evaluation row", "spec.json: not a run's spec", "model_kwargs must be dict"], 2
    ),
    "status: spec.json model_kwargs [1, 2]": _spec_kwargs(
        "status", ["run skipped", "model_kwargs must be dict, got [1, 2]", "restore the file"], 0
    ),
    "status: state.json step 'x'": _run_file(
        "status", "state.json", b'{"status": "done", "step": "x"}', ["| unreadable ", "step: expected a whole"], 0
    ),
    "report: state.json step 'x'": _run_file(
        "report", "state.json", b'{"status": "done", "step": "x"}', ["run state unreadable", "step: expected"], 0
    ),
}

CASES: dict[str, dict[str, Builder]] = {"stored results": STORED}
