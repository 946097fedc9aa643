"""Is a cell's pause longer than before? A nonparametric answer from repeated samples.

:func:`pause_shift` compares the pause samples of a cell in this run with those of a baseline run:

- **significance**: the one-sided Mann–Whitney U (Wilcoxon rank-sum) test of "this run's pauses tend to
  be larger". The p-value is exact (the permutation distribution of the rank sum, mid-ranks for ties)
  when there are at most :data:`EXACT_LIMIT` ways to split the pooled samples, else the normal
  approximation with tie correction and continuity correction;
- **effect**: the ratio of the medians (this run / baseline).

A pause regression is flagged only when both hold: ``p < alpha`` (default 0.01) *and* the median grew by
at least ``min_ratio`` (default 1.2, i.e. +20 %). With n samples on each side the smallest possible
one-sided p is 1 / C(2n, n): 0.05 for n = 3, 0.0079 for n = 5. So with fewer than 5 repetitions per
side a shift can never be significant at 0.01, however large: run ``--repeat 5`` (or more) on both
nights. Standard library only.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.01
MIN_RATIO = 1.2
EXACT_LIMIT = 10**12  # C(n1 + n2, n1) up to which the permutation distribution is computed exactly


@dataclass(frozen=True)
class Shift:
    """How this run's samples compare with the baseline's."""

    n_now: int
    n_before: int
    median_now: float
    median_before: float
    ratio: float  # median_now / median_before (inf when the baseline median is 0)
    p_value: float  # one-sided: P(rank sum >= observed) under "no difference"
    method: str  # "exact" | "normal" | "too few samples"
    regression: bool  # p < alpha and ratio >= min_ratio

    def describe(self) -> str:
        pct = (self.ratio - 1) * 100 if math.isfinite(self.ratio) else math.inf
        return (
            f"median {self.median_before:.1f} -> {self.median_now:.1f} ms ({pct:+.0f} %), "
            f"p = {self.p_value:.3g} ({self.method}, n = {self.n_before} / {self.n_now})"
        )


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values``, ties sharing their mean rank (mid-ranks)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mid = (i + j) / 2 + 1
        for k in range(i, j + 1):
            out[order[k]] = mid
        i = j + 1
    return out


def mann_whitney_greater(now: Sequence[float], before: Sequence[float]) -> tuple[float, str]:
    """One-sided p-value that ``now`` is stochastically greater than ``before``, and the method used."""
    n1, n2 = len(now), len(before)
    if n1 == 0 or n2 == 0:
        return 1.0, "too few samples"
    pooled = [*now, *before]
    r = ranks(pooled)
    observed = sum(r[:n1])
    total = math.comb(n1 + n2, n1)
    if total <= EXACT_LIMIT:
        return _exact_tail([round(2 * x) for x in r], n1, round(2 * observed)) / total, "exact"
    n = n1 + n2
    mean = n1 * (n + 1) / 2
    ties = _tie_counts(pooled)
    var = n1 * n2 / 12 * ((n + 1) - sum(t**3 - t for t in ties) / (n * (n - 1)))
    if var <= 0:
        return 1.0, "normal"
    z = (observed - mean - 0.5) / math.sqrt(var)
    return 0.5 * math.erfc(z / math.sqrt(2)), "normal"


def _exact_tail(doubled_ranks: list[int], n1: int, observed: int) -> int:
    """How many size-``n1`` subsets of ``doubled_ranks`` sum to at least ``observed`` (dynamic
    programming over (subset size, sum); ranks are doubled so that mid-ranks are integers)."""
    top = sum(sorted(doubled_ranks)[-n1:])
    ways = [[0] * (top + 1) for _ in range(n1 + 1)]
    ways[0][0] = 1
    for value in doubled_ranks:
        for k in range(n1, 0, -1):
            row, prev = ways[k], ways[k - 1]
            for s in range(top, value - 1, -1):
                if prev[s - value]:
                    row[s] += prev[s - value]
    return sum(ways[n1][max(observed, 0) :])


def _tie_counts(values: Sequence[float]) -> list[int]:
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return [c for c in counts.values() if c > 1]


def pause_shift(
    now: Sequence[float], before: Sequence[float], alpha: float = ALPHA, min_ratio: float = MIN_RATIO
) -> Shift:
    """Compare two sets of pause samples (ms); see the module docstring for the rule."""
    if not now or not before:
        nan = math.nan
        return Shift(len(now), len(before), nan, nan, nan, 1.0, "too few samples", False)
    m_now, m_before = statistics.median(now), statistics.median(before)
    ratio = m_now / m_before if m_before > 0 else (math.inf if m_now > 0 else 1.0)
    p, method = mann_whitney_greater(now, before)
    return Shift(len(now), len(before), m_now, m_before, ratio, p, method, p < alpha and ratio >= min_ratio)


def spread(samples: Sequence[float]) -> dict[str, float]:
    """``{"n", "median", "min", "max"}`` of a sample (empty dict for no samples)."""
    if not samples:
        return {}
    return {
        "n": float(len(samples)),
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
    }
