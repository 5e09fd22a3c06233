"""The paired comparison of the evidence tables against scipy's paired t
test."""
import math

import numpy as np
import pytest
from scipy import stats

from mmimb.utils import paired_difference


def test_interval_matches_scipy_paired_t_test():
    method = [71.2, 69.8, 73.5, 70.1, 72.0]
    baseline = [70.0, 70.1, 71.9, 68.7, 71.1]
    got = paired_difference(method, baseline)
    reference = stats.ttest_rel(method, baseline).confidence_interval(0.95)
    diffs = np.subtract(method, baseline)
    assert got.mean == pytest.approx(diffs.mean())
    assert (got.low, got.high) == pytest.approx(
        (reference.low, reference.high))
    assert got.n == 5
    narrower = paired_difference(method, baseline, level=0.5)
    assert got.low < narrower.low < narrower.high < got.high


def test_pairs_are_not_pooled():
    # The same spread of each method alone, but a constant difference per
    # seed: an unpaired interval would include 0, the paired one is a point.
    got = paired_difference([10, 20, 30], [9, 19, 29])
    assert (got.mean, got.low, got.high) == pytest.approx((1, 1, 1))


def test_one_pair_has_no_interval():
    got = paired_difference([3.0], [1.0])
    assert got.mean == 2.0 and got.low == -math.inf and got.high == math.inf
    assert 'no interval' in str(got)


@pytest.mark.parametrize('values, baseline, level, match', [
    ([1, 2], [1], 0.95, 'as many'),
    ([], [], 0.95, 'as many'),
    ([1, 2], [1, 2], 1.0, 'level=1.0'),
])
def test_bad_input(values, baseline, level, match):
    with pytest.raises(ValueError, match=match):
        paired_difference(values, baseline, level)
