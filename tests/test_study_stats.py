"""bench.report.stats: intervals, Welch and paired t, Holm, ties and verdicts on hand-computed numbers.

Every expected value is computed here from its formula with explicit numbers (t quantiles from the
table in shared/reference/study_statistics.md); scipy's own tests are the independent check where
one exists (ttest_ind with equal_var=False, ttest_rel).
"""

from __future__ import annotations

import math

import pytest
from scipy import stats as sp

from bench.report import stats

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 9: 2.262}  # t(0.975, df), study_statistics.md


@pytest.mark.parametrize("df", sorted(T975))
def test_t_quantiles_match_the_table(df: int) -> None:
    assert stats.t_critical(df) == pytest.approx(T975[df], abs=5e-4)


def test_interval_of_three_seeds() -> None:
    """[10, 12, 14]: mean 12, s = 2, 95 % interval 12 ± 4.303 · 2 / √3 = 12 ± 4.968."""
    s = stats.summarize([10.0, 12.0, 14.0])
    assert (s.n, s.mean, s.std) == (3, 12.0, 2.0)
    assert s.half == pytest.approx(4.303 * 2 / math.sqrt(3), abs=1e-3)
    assert (s.lo, s.hi) == pytest.approx((12 - 4.9683, 12 + 4.9683), abs=1e-3)


def test_interval_of_two_seeds_is_wide() -> None:
    """n = 2: t(0.975, 1) = 12.706; [50, 54]: s = 2√2, half-width 12.706 · 2√2 / √2 = 25.41."""
    s = stats.summarize([50.0, 54.0])
    assert s.std == pytest.approx(2 * math.sqrt(2))
    assert s.half == pytest.approx(12.706 * 2, abs=2e-3)


def test_one_seed_has_no_interval() -> None:
    s = stats.summarize([42.0])
    assert (s.n, s.mean, s.std, s.half, s.lo, s.hi) == (1, 42.0, None, None, None, None)


def test_zero_spread_gives_a_zero_width_interval() -> None:
    s = stats.summarize([7.0, 7.0, 7.0])
    assert (s.std, s.half, s.lo, s.hi) == (0.0, 0.0, 7.0, 7.0)


def test_welch_by_hand() -> None:
    """a = [10, 12, 14] (s² = 4), b = [20, 22, 27] (mean 23, s² = 13): Δ = −11, se = √(4/3 + 13/3) = √(17/3),
    df = (17/3)² / ((4/3)²/2 + (13/3)²/2) = 3.124, t = −11 / √(17/3) = −4.6209."""
    c = stats.welch([10.0, 12.0, 14.0], [20.0, 22.0, 27.0])
    se = math.sqrt(17 / 3)
    df = (17 / 3) ** 2 / ((4 / 3) ** 2 / 2 + (13 / 3) ** 2 / 2)
    assert (c.test, c.n_a, c.n_b) == ("welch", 3, 3)
    assert c.diff == pytest.approx(-11.0)
    assert c.df == pytest.approx(df) and df == pytest.approx(3.1243, abs=1e-4)
    assert c.t == pytest.approx(-11 / se) and c.t == pytest.approx(-4.6209, abs=1e-4)
    half = sp.t.ppf(0.975, df) * se
    assert (c.lo, c.hi) == pytest.approx((-11 - half, -11 + half))
    assert c.p == pytest.approx(sp.ttest_ind([10, 12, 14], [20, 22, 27], equal_var=False).pvalue)
    assert c.p < 0.05 and c.excludes_zero() == -1


def test_welch_with_one_side_constant_has_that_sides_df() -> None:
    """s_b = 0: df = n_a − 1 = 2, se = s_a / √n_a = 2 / √3."""
    c = stats.welch([10.0, 12.0, 14.0], [20.0, 20.0, 20.0])
    assert c.df == pytest.approx(2.0)
    assert c.hi == pytest.approx(-8 + 4.303 * 2 / math.sqrt(3), abs=1e-3)


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        ([10.0], [20.0, 22.0, 27.0], "1 seed on a side: no interval"),
        ([10.0, 12.0], [20.0], "1 seed on a side: no interval"),
        ([10.0, 10.0], [20.0, 20.0, 20.0], "no spread over seeds on either side: no interval"),
        ([], [20.0, 22.0], "no finished seed on a side"),
    ],
)
def test_welch_refuses_what_it_cannot_estimate(a: list[float], b: list[float], why: str) -> None:
    c = stats.welch(a, b)
    assert c.why == why and not c.tested and c.excludes_zero() == 0
    assert (c.lo, c.hi, c.p) == (None, None, None)


def test_paired_by_hand_straddles_zero() -> None:
    """a − b per seed = [−1, −3, −2]: mean −2, s = 1, t = −2 / (1/√3) = −3.464 on 2 df,
    interval −2 ± 4.303/√3 = [−4.484, 0.484]: holds zero."""
    a, b = {0: 10.0, 1: 12.0, 2: 14.0}, {0: 11.0, 1: 15.0, 2: 16.0}
    c = stats.paired(a, b)
    assert (c.test, c.n_a, c.diff, c.df) == ("paired", 3, -2.0, 2)
    assert c.t == pytest.approx(-2 * math.sqrt(3))
    assert (c.lo, c.hi) == pytest.approx((-2 - 4.303 / math.sqrt(3), -2 + 4.303 / math.sqrt(3)), abs=1e-3)
    assert c.p == pytest.approx(sp.ttest_rel([10, 12, 14], [11, 15, 16]).pvalue)
    assert c.excludes_zero() == 0


def test_paired_uses_only_seeds_both_rows_finished() -> None:
    c = stats.paired({0: 10.0, 1: 12.0, 2: 14.0}, {1: 15.0, 2: 16.0, 3: 99.0})
    assert (c.n_a, c.n_b, c.diff) == (2, 2, -2.5)
    one = stats.paired({0: 10.0, 1: 12.0}, {1: 15.0})
    assert one.why == "1 seed finished by both rows: no interval" and one.diff == -3.0


def test_compare_names_its_test() -> None:
    a, b = {0: 1.0, 1: 2.0, 2: 4.0}, {0: 2.0, 1: 5.0, 2: 5.0}
    assert stats.compare(a, b, "welch").test == "welch"
    assert stats.compare(a, b, "paired").test == "paired"
    with pytest.raises(ValueError, match="welch, paired"):
        stats.compare(a, b, "mannwhitney")


def test_holm_on_a_known_example() -> None:
    """p = [0.01, 0.04, 0.03, 0.005], m = 4: sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06,
    0.04·1 = 0.04 -> max(0.06, 0.04) = 0.06 (monotone). At 0.05 only the first two sorted are rejected."""
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [p < 0.05 for p in adjusted] == [True, False, False, True]
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm([0.02]) == [0.02] and stats.holm([]) == []


def test_ties_are_shown_as_ties() -> None:
    """B's mean is best but A overlaps it: both tied, no clear winner; C is clearly worse."""
    rows = {"A": {0: 50.0, 1: 56.0, 2: 62.0}, "B": {0: 49.0, 1: 54.0, 2: 58.0}, "C": {0: 90.0, 1: 91.0, 2: 92.0}}
    g = stats.best_group(rows, lower_is_better=True)
    assert g.best == "B" and g.tied == {"A", "B"} and not g.clear


def test_a_clear_winner_is_alone_in_its_group() -> None:
    rows = {"A": {0: 50.0, 1: 51.0, 2: 52.0}, "B": {0: 70.0, 1: 71.0, 2: 73.0}, "C": {}}
    g = stats.best_group(rows, lower_is_better=True)
    assert g.best == "A" and g.tied == {"A"} and g.clear
    high = stats.best_group(rows, lower_is_better=False)  # precision/recall: higher is better
    assert high.best == "B" and high.clear


def test_a_flagged_row_is_never_best_but_still_blocks_a_winner() -> None:
    """A row the step-0 check flags (‡) cannot be the best, yet a winner must be told apart from it."""
    rows = {
        "A": {0: 650.0, 1: 675.0, 2: 700.0},
        "B": {0: 600.0, 1: 700.0, 2: 800.0},
        "C": {0: 900.0, 1: 905.0, 2: 910.0},
    }
    g = stats.best_group(rows, lower_is_better=True, never_best=frozenset({"B", "C"}))
    assert g.best == "A" and g.tied == {"A", "B"} and not g.clear  # B overlaps A: no bold
    assert stats.best_group(rows, lower_is_better=True, never_best=frozenset(rows)) == stats.BestGroup(
        None, frozenset()
    )


def test_a_row_of_one_seed_cannot_be_told_apart() -> None:
    rows = {"A": {0: 50.0, 1: 51.0, 2: 52.0}, "B": {0: 90.0}}
    g = stats.best_group(rows, lower_is_better=True)
    assert g.tied == {"A", "B"} and not g.clear
    assert stats.best_group({}, lower_is_better=True) == stats.BestGroup(None, frozenset())


def _claim(a: list[float], b: list[float]) -> stats.Comparison:
    return stats.welch(a, b)


@pytest.mark.parametrize(
    ("a", "b", "adjusted", "lower", "expected"),
    [
        ([10.0, 12.0, 14.0], [20.0, 22.0, 27.0], 0.01, True, stats.SUPPORTED),  # A clearly lower FID
        ([20.0, 22.0, 27.0], [10.0, 12.0, 14.0], 0.01, True, stats.CONTRADICTED),  # A clearly higher FID
        ([20.0, 22.0, 27.0], [10.0, 12.0, 14.0], 0.01, False, stats.SUPPORTED),  # higher is better (recall)
        ([10.0, 12.0, 14.0], [20.0, 22.0, 27.0], 0.06, True, stats.INCONCLUSIVE),  # not after Holm
        ([10.0, 12.0, 14.0], [11.0, 15.0, 16.0], 0.3, True, stats.INCONCLUSIVE),  # interval straddles zero
        ([10.0], [20.0, 22.0, 27.0], None, True, stats.INCONCLUSIVE),  # one seed: no test
    ],
)
def test_verdicts(a: list[float], b: list[float], adjusted: float | None, lower: bool, expected: str) -> None:
    assert stats.verdict(_claim(a, b), adjusted, lower_is_better=lower) == expected


def test_a_straddling_interval_is_inconclusive_whatever_the_p_passed() -> None:
    """The verdict never outruns its interval: a p below alpha with an interval holding zero stays inconclusive."""
    c = stats.welch([10.0, 12.0, 14.0], [11.0, 15.0, 16.0])
    assert c.excludes_zero() == 0 and c.p > 0.05
    assert stats.verdict(c, 0.001, lower_is_better=True) == stats.INCONCLUSIVE


def test_a_single_seed_row_never_anchors_the_tie() -> None:
    """One seed with the best mean cannot be compared: it ties with the best testable row, but a row
    that the testable best clearly separates stays out of the group."""
    rows = {"A": {0: 50.0, 1: 51.0, 2: 52.0}, "B": {0: 40.0}, "C": {0: 90.0, 1: 91.0, 2: 92.0}}
    g = stats.best_group(rows, lower_is_better=True)
    assert g.best == "A" and g.tied == {"A", "B"}
    only = stats.best_group({"B": {0: 40.0}, "D": {0: 45.0}}, lower_is_better=True)
    assert only.best == "B" and only.tied == {"B", "D"}
