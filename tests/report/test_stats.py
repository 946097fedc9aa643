"""The pause-regression test on synthetic samples with known shifts: its false-positive rate at the
stated level, its power, and the exact p-values against hand-counted cases."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from harness.report.stats import ALPHA, mann_whitney_greater, pause_shift, ranks, spread


def test_ranks_share_ties() -> None:
    assert ranks([3.0, 1.0, 2.0]) == [3.0, 1.0, 2.0]
    assert ranks([5.0, 5.0, 1.0, 7.0]) == [2.5, 2.5, 1.0, 4.0]


def _brute_force(now: list[float], before: list[float]) -> float:
    r = ranks([*now, *before])
    observed = sum(r[: len(now)])
    combos = list(itertools.combinations(range(len(r)), len(now)))
    return sum(sum(r[i] for i in c) >= observed - 1e-9 for c in combos) / len(combos)


@pytest.mark.parametrize(
    ("now", "before"),
    [
        ([4.0, 5.0, 6.0], [1.0, 2.0, 3.0]),  # complete separation: p = 1/20
        ([1.0, 5.0, 6.0], [2.0, 3.0, 4.0]),
        ([2.0, 2.0, 3.0, 9.0], [1.0, 2.0, 2.0]),  # ties across the groups
        ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),  # all equal: p = 1
    ],
)
def test_exact_p_value_matches_counting_every_split(now: list[float], before: list[float]) -> None:
    p, method = mann_whitney_greater(now, before)
    assert method == "exact" and math.isclose(p, _brute_force(now, before))
    assert math.isclose(mann_whitney_greater([4.0, 5.0, 6.0], [1.0, 2.0, 3.0])[0], 1 / 20)


def test_normal_approximation_agrees_with_the_exact_test_for_mid_sizes() -> None:
    rng = random.Random(7)
    now = [rng.gauss(11, 1) for _ in range(12)]
    before = [rng.gauss(10, 1) for _ in range(12)]
    exact, _ = mann_whitney_greater(now, before)
    import harness.report.stats as stats

    limit, stats.EXACT_LIMIT = stats.EXACT_LIMIT, 0
    try:
        approx, method = mann_whitney_greater(now, before)
    finally:
        stats.EXACT_LIMIT = limit
    assert method == "normal" and abs(approx - exact) < 0.01


def test_false_positive_rate_on_identical_distributions_is_at_most_alpha() -> None:
    """2000 trials of two samples of 8 from one noisy distribution: flagged at most alpha (+ binomial
    slack of 3 standard deviations), whatever the effect threshold."""
    rng = random.Random(1234)
    trials, flagged_p = 2000, 0
    for _ in range(trials):
        now = [rng.lognormvariate(math.log(50), 0.3) for _ in range(8)]
        before = [rng.lognormvariate(math.log(50), 0.3) for _ in range(8)]
        shift = pause_shift(now, before, min_ratio=1.0)  # significance alone
        flagged_p += shift.p_value < ALPHA
    slack = 3 * math.sqrt(ALPHA * (1 - ALPHA) / trials)
    assert flagged_p / trials <= ALPHA + slack, flagged_p


def test_a_known_shift_is_found_and_a_small_one_is_not_called_a_regression() -> None:
    rng = random.Random(99)
    found = small = 0
    for _ in range(300):
        before = [rng.lognormvariate(math.log(50), 0.1) for _ in range(8)]
        slower = [rng.lognormvariate(math.log(50 * 1.5), 0.1) for _ in range(8)]  # +50 %
        slightly = [rng.lognormvariate(math.log(50 * 1.05), 0.01) for _ in range(8)]  # +5 %, tight
        found += pause_shift(slower, before).regression
        small += pause_shift(slightly, before).regression
    assert found >= 290  # power close to 1 for +50 % with 8 samples a side
    assert small == 0  # significant maybe, but below the +20 % effect: never flagged


def test_three_samples_a_side_can_never_reach_one_percent() -> None:
    shift = pause_shift([100.0, 101.0, 102.0], [1.0, 2.0, 3.0])
    assert shift.p_value == pytest.approx(0.05) and not shift.regression
    assert pause_shift([9.0] * 5, [1.0] * 5).p_value == pytest.approx(1 / 252)


def test_empty_and_spread() -> None:
    assert not pause_shift([], [1.0]).regression and pause_shift([], [1.0]).method == "too few samples"
    assert spread([3.0, 1.0, 2.0]) == {"n": 3.0, "median": 2.0, "min": 1.0, "max": 3.0}
    assert spread([]) == {}
    assert "+100 %" in pause_shift([2.0] * 5, [1.0] * 5).describe()
