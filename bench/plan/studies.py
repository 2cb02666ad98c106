"""A suite's study as data: the ``[study]`` table and its ``[[study.claims]]`` (tasks-as-data).

A study compares the suite's rows over its seeds and answers declared claims with a verdict
computed from the numbers (:mod:`bench.report.study`)::

    [study]
    metric = "fid500_full_clean"  # the metric verdicts and comparisons use (default: the suite's first FID)
    selection = "last"       # value per run: "last" evaluation within budget, "mean-last-K", or "best"
    test = "welch"           # "welch" (unpaired; the harness's seeds do not pair models) or "paired"
    alpha = 0.05             # intervals at 1 − alpha; verdicts at alpha after Holm over the claims
    ladder = ["baseline", "baseline-skip", "baseline-decode", "fastgan"]  # adjacent rows compared
    eval_repeats = 5         # the evaluation's own spread: one final snapshot per row re-scored 5 more times
    tuned = "StyleGAN2's config: DiffAugment's low-shot one over stylegan2-ada's auto and cifar, on final FID"
    tuning_seeds = [101]     # the seeds the tuning ran on: refused when one is also a seed of the study

    [[study.claims]]
    name = "skip-layer excitation helps"
    better = "baseline-skip"  # model keys of the suite: this row's metric is the better one ...
    than = "baseline"         # ... than this row's (lower FID/KID, higher precision/recall)
    source = "FastGAN paper, Table 1"

Hyper-parameters are fixed before the study's seeds run: what was tuned, if anything, is stated in
``tuned`` with the seeds it ran on (``tuning_seeds``), and a suite whose tuning seeds overlap the seeds
of the study (``suite.seeds`` or ``--seeds``) is refused: a study cannot tune itself to its own answer.

Every problem is reported with the others of the suite file (:func:`read_study`), one line each,
naming the key and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bench.plan.protocol_names import PR_PARTS, current_metric

ALPHA = 0.05  # default level: two-sided tests, intervals at 1 − ALPHA
TESTS = {"welch": "Welch's unpaired t", "paired": "paired t on per-seed differences"}  # study.test -> its name
SELECTIONS = ("last", "best")  # and "mean-last-K" (K >= 2): the mean of each run's last K evaluations
_MEAN_LAST = re.compile(r"mean-last-([2-9]|[1-9][0-9])")
MAX_EVAL_REPEATS = 50  # re-scorings of one snapshot with other evaluation seeds (each costs one evaluation)
_KEYS = {"metric": str, "selection": str, "test": str, "alpha": (int, float), "ladder": list, "claims": list,
         "eval_repeats": int, "tuned": str, "tuning_seeds": list}  # fmt: skip
_CLAIM_KEYS = {"name": str, "better": str, "than": str, "source": str}


@dataclass(frozen=True)
class Claim:
    """'``better`` beats ``than``' on the study's metric (model keys of the suite)."""

    name: str
    better: str
    than: str
    source: str = ""


@dataclass(frozen=True)
class Study:
    """A validated ``[study]`` table."""

    metric: str | None = None  # None: the suite's first FID-kind metric present in the results
    selection: str = "last"
    test: str = "welch"
    alpha: float = ALPHA
    ladder: tuple[str, ...] = ()
    claims: tuple[Claim, ...] = ()
    eval_repeats: int = 0  # after the runs: each row's lowest-seed final snapshot re-scored with this many other seeds
    tuned: str = ""  # what was tuned before the study ("": nothing declared)
    tuning_seeds: tuple[int, ...] = ()  # the seeds the tuning ran on (none of the study's)

    @property
    def last_k(self) -> int | None:
        """K of a "mean-last-K" selection, else None."""
        m = _MEAN_LAST.fullmatch(self.selection)
        return int(m.group(1)) if m else None

    def pairs(self) -> list[tuple[str, str]]:
        """Model pairs compared in the study's comparison table: adjacent ladder rows (the later one
        first: its effect over the row below it), then each claim's pair, without repeats."""
        ladder = [(b, a) for a, b in zip(self.ladder, self.ladder[1:], strict=False)]
        return list(dict.fromkeys([*ladder, *((c.better, c.than) for c in self.claims)]))


def _typed(table: Any, schema: dict[str, Any], name: str, where: str, problems: list[str]) -> dict[str, Any]:
    """Known keys of the right type; every other key is a problem."""
    if not isinstance(table, dict):
        problems.append(f"{where}: {name}: expected a table")
        return {}
    kept = {}
    for key, value in table.items():
        want = schema.get(key)
        if want is None:
            problems.append(f"{where}: {name}.{key}: unknown key; allowed: {', '.join(schema)}")
        elif not isinstance(value, want) or isinstance(value, bool):
            kind = " or ".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
            problems.append(f"{where}: {name}.{key}: expected {kind}, got {value!r}")
        else:
            kept[key] = value
    return kept


def _model_problems(names: list[Any], key: str, models: list[str], where: str) -> list[str]:
    """Entries of ``names`` that are not model keys of the suite."""
    have = ", ".join(models)
    return [
        f"{where}: {key}: {name!r} is not a model of this suite; use one of its [models.<name>] keys: {have}"
        for name in names
        if name not in models
    ]


def _claims(raw: list[Any], models: list[str], where: str, problems: list[str]) -> tuple[Claim, ...]:
    claims, names = [], set()
    for i, entry in enumerate(raw):
        key = f"study.claims[{i}]"
        t = _typed(entry, _CLAIM_KEYS, key, where, problems)
        missing = [k for k in ("name", "better", "than") if k not in t]
        problems += [f"{where}: {key}.{k}: missing (required)" for k in missing if isinstance(entry, dict)]
        if missing:
            continue
        bad = _model_problems([t["better"]], f"{key}.better", models, where)
        bad += _model_problems([t["than"]], f"{key}.than", models, where)
        if t["better"] == t["than"]:
            bad.append(f"{where}: {key}: better and than both name {t['better']!r}; a claim compares two rows")
        if t["name"] in names:
            bad.append(f"{where}: {key}.name: {t['name']!r} names another claim too; give each claim its own name")
        names.add(t["name"])
        problems += bad
        if not bad:
            claims.append(Claim(t["name"], t["better"], t["than"], t.get("source", "")))
    return tuple(claims)


def study_metrics(protocols: list[str]) -> list[str]:
    """Metric names the protocols give (a precision/recall protocol gives ``<name>_precision`` and ``_recall``)."""
    from bench.plan import names  # the protocols' kinds, remembered: no torch for a warm suite

    known = names.registry()["protocols"]
    pr = [p for p in protocols if p in known and known[p]["kind"] == "pr"]
    return [*protocols, *(p + part for p in pr for part in PR_PARTS)]


def _tuning_problems(t: dict[str, Any], seeds: tuple[str, list[Any]], where: str) -> list[str]:
    """``tuned`` and ``tuning_seeds`` go together, and no tuning seed is a seed of the study (``seeds``:
    the key they come from, ``suite.seeds`` or ``--seeds``, and its list)."""
    tuned, tuning = t.get("tuned"), t.get("tuning_seeds")
    if tuning is not None and not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in tuning):
        return [f"{where}: study.tuning_seeds: expected a list of non-negative integers, e.g. [101, 102]"]
    if (tuned is None) != (tuning is None) or tuning == [] or tuned == "":
        return [f"{where}: study.tuned and study.tuning_seeds: give both (what was tuned, and the seeds it ran on)"]
    key, study_seeds = seeds
    if both := sorted(set(tuning or ()) & {s for s in study_seeds if isinstance(s, int)}):
        return [
            f"{where}: study.tuning_seeds: {', '.join(map(str, both))} also a seed of the study ({key}); "
            "the study's seeds must be new to the tuning: run the study on other seeds (--seeds)"
        ]
    return []


def read_study(
    raw: Any, models: list[str], protocols: list[str], where: str, seeds: tuple[str, list[Any]] = ("suite.seeds", [])
) -> tuple[Study | None, list[str]]:
    """The suite's ``[study]`` table (``raw``; None when the suite has none) validated against its
    model keys, evaluation protocols and ``seeds`` (the key they come from and the study's seeds):
    (the study or None, problems)."""
    if raw is None:
        return None, []
    problems: list[str] = []
    t = _typed(raw, _KEYS, "study", where, problems)
    metrics = study_metrics(protocols)
    if isinstance(t.get("metric"), str):
        t["metric"] = current_metric(t["metric"])  # a former protocol name: the current one
    if "metric" in t and t["metric"] not in metrics:
        problems.append(
            f"{where}: study.metric: {t['metric']!r} is not one of eval.protocols ({', '.join(protocols)}); "
            "name a protocol the suite evaluates (precision/recall: <protocol>_precision or _recall)"
        )
    selection = t.get("selection", "last")
    if selection not in SELECTIONS and not _MEAN_LAST.fullmatch(selection):
        problems.append(f"{where}: study.selection: {selection!r}; use last, best or mean-last-K (K from 2 to 99)")
    if t.get("test", "welch") not in TESTS:
        problems.append(f"{where}: study.test: {t['test']!r} not one of {', '.join(TESTS)}")
    alpha = t.get("alpha", ALPHA)
    if not 0 < alpha < 0.5:
        problems.append(f"{where}: study.alpha: {alpha!r}; use a level between 0 and 0.5 (e.g. 0.05)")
    ladder = t.get("ladder", [])
    problems += _model_problems(ladder, "study.ladder", models, where)
    if len(set(map(str, ladder))) < len(ladder):
        problems.append(f"{where}: study.ladder: a model listed twice; list each rung once")
    claims = _claims(t.get("claims", []), models, where, problems)
    repeats = t.get("eval_repeats", 0)
    if not 0 <= repeats <= MAX_EVAL_REPEATS:
        problems.append(f"{where}: study.eval_repeats: {repeats}; use 0 (none) to {MAX_EVAL_REPEATS}, e.g. 5")
    problems += _tuning_problems(t, seeds, where)
    if problems:
        return None, problems
    study = Study(t.get("metric"), selection, t.get("test", "welch"), float(alpha), tuple(ladder), claims, repeats,
                  t.get("tuned", ""), tuple(t.get("tuning_seeds", ())))  # fmt: skip
    return study, []
