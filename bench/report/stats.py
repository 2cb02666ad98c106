"""Statistics over seeds: means with Student-t intervals, two-sample comparisons, Holm's correction,
the group of rows tied with the best, and a claim's verdict. Pure functions of plain numbers.

Facts used (``shared/reference/study_statistics.md``): with n seeds the 95 % interval of a mean is
``mean ± t(0.975, n−1) · s / √n`` (s the sample standard deviation); two rows are compared by the
difference of their means with its interval; several claims tested at once are corrected with
Holm–Bonferroni; "supported" needs the interval to exclude zero in the claimed direction.

**Whether the harness's seed pairs runs of different models: it does not, so Welch's unpaired t is
the default.** A run's seed (``RunSpec.seed``) sets (1) the global torch seed right before the model
is built (``bench.training.checkpoints.build_model``): G is built before D, so two rows whose
generators are the same network (Baseline and Baseline+decode; Baseline+Skip and FastGAN) start
from the same G weights, and rows of different architectures start from unrelated weights; (2) the
data sampler's own generator (``bench.data.sampler.Sampler``): the same order and flips of the
training images only when the two models use the same batch size; (3) the evaluation latents
(``bench.metrics.features.sample_latents``) and KID's subsets: the same z for the same z_dim, fed
to unrelated generators. Every draw made during training (latents per step, augmentation, noise
inputs, D's initial weights after a different G) comes from the global generator after model
construction, whose position differs as soon as the two models' parameters differ. GAN training
amplifies any difference within a few hundred steps, so the shared pieces are not what makes one
seed's FID differ from another's: per-seed differences would pair numbers that share nothing that
matters, and a paired test would claim a precision the design does not have. ``test = "paired"``
(a study key) remains for a design whose seed does pair runs (e.g. training latents and augmentation
drawn from a per-seed stream that every row shares); every output names the test used.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bench.plan.studies import ALPHA, TESTS

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive at this scale"
K = TypeVar("K", bound=Hashable)


def t_critical(df: float, alpha: float = ALPHA) -> float:
    """Student's t quantile ``t(1 − alpha/2, df)``: 4.303 for df = 2 at alpha = 0.05."""
    from scipy.special import stdtrit  # scipy.stats' t.ppf, without importing scipy.stats (most of a second)

    return float(stdtrit(df, 1.0 - alpha / 2.0))


@dataclass(frozen=True)
class Summary:
    """Mean over seeds with its sample standard deviation and Student-t interval."""

    n: int
    mean: float
    std: float | None  # sample standard deviation (n − 1); None for one value
    half: float | None  # half-width of the interval of the mean; None for one value
    level: float = 1.0 - ALPHA

    @property
    def lo(self) -> float | None:
        return None if self.half is None else self.mean - self.half

    @property
    def hi(self) -> float | None:
        return None if self.half is None else self.mean + self.half


def summarize(values: Sequence[float], alpha: float = ALPHA) -> Summary:
    """``mean ± t(1 − alpha/2, n−1) · s/√n`` over ``values`` (n ≥ 1; no interval for n = 1)."""
    if not values:
        raise ValueError("summarize: no values")
    n, mean = len(values), statistics.fmean(values)
    if n == 1:
        return Summary(1, mean, None, None, 1.0 - alpha)
    std = statistics.stdev(values)
    return Summary(n, mean, std, t_critical(n - 1, alpha) * std / math.sqrt(n), 1.0 - alpha)


@dataclass(frozen=True)
class Comparison:
    """Row A against row B: the difference of means ``A − B`` with its interval and two-sided test,
    or why there is none (``why``)."""

    test: str  # a key of TESTS
    n_a: int  # seeds A rests on (paired: the seeds both rows finished)
    n_b: int
    diff: float | None  # mean(A) − mean(B); None when a side has no value
    lo: float | None = None
    hi: float | None = None
    df: float | None = None
    t: float | None = None
    p: float | None = None  # two-sided
    why: str = ""  # why there is no interval ("" when there is one)

    @property
    def tested(self) -> bool:
        return self.p is not None

    def excludes_zero(self) -> int:
        """+1 when the interval lies above zero, −1 below, 0 when it holds zero or does not exist."""
        if self.lo is None or self.hi is None:
            return 0
        return 1 if self.lo > 0 else -1 if self.hi < 0 else 0


def _seed_word(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def _t_test(test: str, n_a: int, n_b: int, diff: float, se: float, df: float, alpha: float) -> Comparison:
    """The interval ``diff ± t(df)·se`` and the two-sided p of ``diff / se`` (se > 0)."""
    half = t_critical(df, alpha) * se
    t = diff / se
    from scipy.special import stdtr  # scipy.stats' t.sf(x, df) is stdtr(df, -x)

    return Comparison(test, n_a, n_b, diff, diff - half, diff + half, df, t, float(2.0 * stdtr(df, -abs(t))))


def welch(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> Comparison:
    """Welch's unpaired t: ``se = √(s_a²/n_a + s_b²/n_b)`` with Welch–Satterthwaite degrees of freedom
    ``se⁴ / ((s_a²/n_a)²/(n_a−1) + (s_b²/n_b)²/(n_b−1))``; no test with one seed on a side or no spread
    on either side."""
    n_a, n_b = len(a), len(b)
    if not n_a or not n_b:
        return Comparison("welch", n_a, n_b, None, why="no finished seed on a side")
    diff = statistics.fmean(a) - statistics.fmean(b)
    if min(n_a, n_b) < 2:
        return Comparison("welch", n_a, n_b, diff, why=f"{_seed_word(min(n_a, n_b))} on a side: no interval")
    va, vb = statistics.variance(a) / n_a, statistics.variance(b) / n_b
    if va + vb == 0.0:
        return Comparison("welch", n_a, n_b, diff, why="no spread over seeds on either side: no interval")
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    return _t_test("welch", n_a, n_b, diff, math.sqrt(va + vb), df, alpha)


def paired(a: Mapping[int, float], b: Mapping[int, float], alpha: float = ALPHA) -> Comparison:
    """One-sample t on the differences ``a[s] − b[s]`` over the seeds both rows finished (n − 1 df)."""
    seeds = sorted(set(a) & set(b))
    d = [a[s] - b[s] for s in seeds]
    n = len(d)
    if n == 0:
        return Comparison("paired", 0, 0, None, why="no seed finished by both rows")
    diff = statistics.fmean(d)
    if n < 2:
        return Comparison("paired", 1, 1, diff, why="1 seed finished by both rows: no interval")
    sd = statistics.stdev(d)
    if sd == 0.0:
        return Comparison("paired", n, n, diff, why="the same difference in every seed: no interval")
    return _t_test("paired", n, n, diff, sd / math.sqrt(n), n - 1, alpha)


def compare(a: Mapping[int, float], b: Mapping[int, float], test: str, alpha: float = ALPHA) -> Comparison:
    """Row A (seed -> value) against row B by ``test`` ('welch' or 'paired')."""
    if test == "paired":
        return paired(a, b, alpha)
    if test == "welch":
        return welch(list(a.values()), list(b.values()), alpha)
    raise ValueError(f"test must be one of {', '.join(TESTS)}, got {test!r}")


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order: the k-th smallest p (k = 1..m) times
    ``m − k + 1``, made non-decreasing along the sorted order and capped at 1. A hypothesis is
    rejected at level alpha exactly when its adjusted p is below alpha."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * m, 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class BestGroup:
    """The best row of a column and the rows that cannot be told apart from it."""

    best: Hashable | None  # the row with the best mean, of two seeds or more if any (None: no row has a value)
    tied: frozenset[Hashable]  # rows not significantly worse than the best (the best included)

    @property
    def clear(self) -> bool:
        """The best is significantly better than every other row (only then is it printed bold)."""
        return self.best is not None and self.tied == {self.best}


def best_group(
    rows: Mapping[K, Mapping[int, float]],
    *,
    lower_is_better: bool,
    test: str = "welch",
    alpha: float = ALPHA,
    never_best: frozenset[K] = frozenset(),
) -> BestGroup:
    """The row with the best mean among ``rows`` (seed -> value; empty rows ignored) that have two
    seeds or more (among all when none has), and every row whose comparison with it has no interval or
    an interval that holds zero (unadjusted: a tie is reported rather than a winner whenever the seeds
    do not separate two rows). A row of one seed can be told apart from none: it is always in the
    group, but never its anchor while a row with an interval exists (else every row would tie with it).
    Rows in ``never_best`` (the step-0 check's ‡) are never the anchor, but a winner must still be told
    apart from them: they join the group when their interval with the anchor holds zero."""
    means = {k: statistics.fmean(v.values()) for k, v in rows.items() if v}
    eligible = [k for k in means if k not in never_best]
    if not eligible:
        return BestGroup(None, frozenset())
    anchors = [k for k in eligible if len(rows[k]) >= 2] or eligible
    best = (min if lower_is_better else max)(anchors, key=lambda k: means[k])
    tied = {k for k in means if k == best or compare(rows[k], rows[best], test, alpha).excludes_zero() == 0}
    return BestGroup(best, frozenset(tied))


def verdict(comparison: Comparison, adjusted_p: float | None, *, lower_is_better: bool, alpha: float = ALPHA) -> str:
    """A claim "A is better than B" from ``comparison`` (A − B): supported when its (Holm-adjusted) p
    is below ``alpha`` and A's mean is the better one, contradicted when it is below ``alpha`` the
    other way, inconclusive otherwise. An adjusted p below alpha implies a raw p below alpha, so the
    1 − alpha interval then excludes zero in the same direction."""
    if not comparison.tested or adjusted_p is None or adjusted_p >= alpha or comparison.diff is None:
        return INCONCLUSIVE
    sign = comparison.excludes_zero()
    if sign == 0:  # cannot happen for adjusted_p < alpha; kept so a verdict never outruns its interval
        return INCONCLUSIVE
    return SUPPORTED if (sign < 0) == lower_is_better else CONTRADICTED
