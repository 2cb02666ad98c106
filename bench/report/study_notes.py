"""The words around a study's tables (:mod:`bench.report.study_render`), as :mod:`bench.report.render` writes
them for the other tables: a caption of about 40 words, then notes under the table (the protocol in one
line, the value taken per run, the rule behind the digits, the seeds and the tie rule, ONE warning for a
non-standard detector, the compute budget, the modules the resolution changes, the step-0 legend), and the
table of the evaluation's own spread beside the spread over seeds (:mod:`bench.report.study_spread`).
"""

from __future__ import annotations

from bench.plan.studies import TESTS, Study
from bench.report import gain
from bench.report.study import StudyResult, StudyTable
from bench.report.study_spread import Spread
from bench.report.tables import num_gen_of
from bench.report.words import DIGITS_RULE, SIGN_RULE, fmt_number

TIE = "(tie)"  # beside the best mean and the rows that cannot be told apart from it


def _level(result: StudyResult) -> str:
    return f"{1 - result.study.alpha:.0%}"


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def seeds_text(seeds: tuple[int, ...]) -> str:
    """'seed 4', 'seeds 0, 1, 2'."""
    return f"seed{'s' * (len(seeds) != 1)} {', '.join(map(str, seeds))}"


def tuning_text(study: Study) -> str:
    """What was tuned before the study and on which seeds (``[study] tuned``, ``tuning_seeds``)."""
    if not study.tuned:
        return ("none declared: the rows run the settings the suite states (`[study] tuned` and `tuning_seeds` say "
                "what was tuned and on which other seeds)")  # fmt: skip
    return f"{study.tuned}; on {seeds_text(study.tuning_seeds)}, none of them a seed of this study"


def caption(result: StudyResult, table: StudyTable) -> str:
    """What the table's numbers are, in about 40 words."""
    better = "Lower" if table.lower_is_better else "Higher"
    return (
        f"{result.suite}: {table.unit} ({table.metric}, {', '.join(table.detectors)}) over {_seeds(len(table.seeds))}: "
        f"mean ± std [{_level(result)} t-interval], n = seeds finished; {result.selection_short}. {better} is better; "
        f"bold: significantly best; {TIE}: not told apart from the best."
    )


def notes(result: StudyResult, table: StudyTable) -> list[tuple[str, str]]:
    """The lines under a table as (bold lead, text)."""
    n = num_gen_of(table.key) if table.key is not None else None
    places = {0: "no decimals", 1: "one decimal"}.get(table.digits, f"{table.digits} decimals")
    images = f" (n = {n:,} generated images)" if n else ""
    seeds = ", ".join(map(str, table.seeds))
    signs = f"; {SIGN_RULE} (comparisons, verdicts)" if table is result.main and result.pairs else ""
    out = [
        ("Protocol:", f"{table.protocol}."),
        ("Value per run:", f"{result.selection_text}."),
        ("", f"Digits: {places}, {DIGITS_RULE[table.kind]}{images}{signs}."),
        ("Seeds:", f"{seeds} (`--seeds` reruns with others). Bold only when the best mean is significantly better "
                   f"than every other row ({TESTS[result.study.test]}, {_level(result)}, unadjusted); otherwise the "
                   f"best and every row not told apart from it carry {TIE}; a row of one seed is told apart from "
                   "none."),
        ("Tuning:", f"{tuning_text(result.study)}."),
    ]  # fmt: skip
    if table.nonstandard:
        warning = (f"({', '.join(table.nonstandard)}): these numbers rank this study's rows against each other only; "
                   f"they are not comparable to published {table.unit} values.")  # fmt: skip
        out.append(("Non-standard detector", warning))
    out += [("", note) for note in result.notes]
    if any(c.flat for r in table.rows for c in r.cells):
        out.append(("", f"{gain.LEGEND}; such a row is never the best."))
    return out


def spread_head(result: StudyResult) -> list[str]:
    """The columns of the spread table."""
    unit = result.main.unit
    return ["Model", "Dataset", f"evaluation std ({unit})", "std over seeds", "training part", "re-scored run"]


def spread_cells(result: StudyResult, s: Spread) -> list[str]:
    """One row of the spread table."""
    table = result.main

    def num(value: float | None, n: int) -> str:
        return "--" if value is None else f"{fmt_number(value, table.kind, max(table.digits, 1))} (n={n})"

    training = "--" if s.training_std is None else fmt_number(s.training_std, table.kind, max(table.digits, 1))
    return [result.labels.get(s.model, s.model), s.dataset, num(s.eval_std, len(s.evaluations)),
            num(s.seed_std, s.seeds), training, s.run_id]  # fmt: skip


def spread_caption(result: StudyResult) -> str:
    """What the spread table compares."""
    return (
        f"How much of the spread is the evaluation's ({result.main.metric}): one finished run per row (its lowest "
        "seed), its last snapshot scored again with other evaluation seeds (other latents and KID subsets; "
        "bench/tools/evalnoise.py); evaluation std over those scores (its training-time score included) beside the "
        "std of the study's values over training seeds; training part √(max(seeds² − evaluation², 0)), the spread "
        "the evaluation does not explain."
    )
