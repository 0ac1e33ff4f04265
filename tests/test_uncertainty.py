"""The intervals: Wilson's against its closed form, the bootstrap's pairing and edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studylib.measure.uncertainty import bootstrap, difference_of_rates, wilson


@pytest.mark.parametrize(("k", "n"), [(28, 100), (0, 25), (25, 25), (7, 9)])
def test_wilson_is_the_textbook_score_interval(k, n):
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    rate, low, high = wilson(k, n)
    assert rate == pytest.approx(100 * p)
    assert low == pytest.approx(100 * (centre - half), abs=1e-9) and high == pytest.approx(100 * (centre + half))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson(5, 4)


def test_pairing_narrows_the_interval_of_a_difference_on_the_same_images():
    rng = np.random.default_rng(0)
    base = rng.random(200) < 0.5
    other = base | (rng.random(200) < 0.2)  # mostly the same images, a few more
    paired = difference_of_rates(other, base, paired=True)
    unpaired = difference_of_rates(other, base, paired=False)
    assert paired[0] == unpaired[0] > 0
    assert paired[2] - paired[1] < unpaired[2] - unpaired[1]
    assert paired[1] > 0  # the paired interval sees the gain
    assert difference_of_rates(np.ones(5), np.ones(5), paired=True) == (0.0, 0.0, 0.0)


def test_bootstrap_of_a_median_covers_it_and_is_reproducible():
    values = np.arange(101.0)
    first = bootstrap([values], lambda x, axis=-1: np.median(x, axis=axis))
    assert first[0] == 50.0 and first[1] < 50.0 < first[2]
    assert bootstrap([values], lambda x, axis=-1: np.median(x, axis=axis)) == first


def test_t_and_welch_intervals_over_seeds():
    from scipy import stats

    from studylib.measure.uncertainty import seed_difference, t_interval

    mean, low, high = t_interval([97.97, 98.34, 97.62])
    half = stats.t.ppf(0.975, 2) * np.std([97.97, 98.34, 97.62], ddof=1) / math.sqrt(3)
    assert mean == pytest.approx(97.9767, abs=1e-4) and high - mean == pytest.approx(half)
    diff, low, high, method = seed_difference([98.56, 98.36, 98.56], [97.97, 98.34, 97.62])
    assert diff == pytest.approx(98.4933 - 97.9767, abs=1e-4) and low < diff < high and method.startswith("Welch")
    one = [97.2]  # a single run against three seeds: their spread stands in for its own
    diff, low, high, method = seed_difference(one, [97.97, 98.34, 97.62])
    pooled = stats.ttest_ind(one, [97.97, 98.34, 97.62], equal_var=True).confidence_interval(0.95)
    assert method == "pooled t over seeds" and (low, high) == pytest.approx((pooled.low, pooled.high))
    sd = np.std([97.97, 98.34, 97.62], ddof=1)  # by hand: s * sqrt(1/1 + 1/3), t with 2 degrees of freedom
    assert high - diff == pytest.approx(stats.t.ppf(0.975, 2) * sd * math.sqrt(1 + 1 / 3))
    with pytest.raises(ValueError, match="one side with at least two"):
        seed_difference([1.0], [2.0])
    with pytest.raises(ValueError, match="at least two"):
        t_interval([1.0])
