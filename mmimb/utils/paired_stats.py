"""Paired comparison of two methods run with the same seeds."""
import math
from dataclasses import dataclass
from typing import Sequence


@dataclass
class PairedDifference:
    """Mean of the per-seed differences ``method - baseline`` and its
    two-sided confidence interval (Student's t with n - 1 degrees of
    freedom; for n = 1 the interval is unbounded).

    Attributes:
        mean: Mean difference.
        low, high: Interval bounds.
        n: Number of pairs.
        level: Confidence level of the interval.
    """
    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def __str__(self) -> str:
        if self.n < 2:
            return f'{self.mean:+.2f} (one pair, no interval)'
        return f'{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}]'


def paired_difference(values: Sequence[float],
                      baseline: Sequence[float],
                      level: float = 0.95) -> PairedDifference:
    """Mean difference of paired results and its t interval.

    Args:
        values: The method's result per seed.
        baseline: The baseline's result for the same seeds, in the same
            order.
        level: Confidence level, in (0, 1).

    Returns:
        PairedDifference: ``mean(values - baseline)`` with its interval.

    Raises:
        ValueError: If the lengths differ, there is no pair, or ``level``
            is outside (0, 1).
    """
    from scipy.stats import t
    if len(values) != len(baseline) or not values:
        raise ValueError(f'paired_difference needs as many results as '
                         f'baseline results, at least one; got '
                         f'{len(values)} and {len(baseline)}')
    if not 0 < level < 1:
        raise ValueError(f'level={level}: expected a value in (0, 1)')
    diffs = [a - b for a, b in zip(values, baseline)]
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return PairedDifference(mean, -math.inf, math.inf, n, level)
    sd = math.sqrt(sum((d - mean)**2 for d in diffs) / (n - 1))
    half = t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return PairedDifference(mean, mean - half, mean + half, n, level)
