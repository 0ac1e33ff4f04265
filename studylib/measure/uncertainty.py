"""95 % intervals by the textbook method for each kind of number: Wilson's score interval
for a rate (k of n), and a bootstrap over the measured units (images, pairs) for means,
medians and differences; both from scipy.stats."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """A rate of k in n, in %, with Wilson's score interval: (rate, low, high)."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"a rate needs 0 <= k <= n and n >= 1, got k={k}, n={n}")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return 100 * k / n, float(100 * ci.low), float(100 * ci.high)


def bootstrap(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., float],
    *,
    paired: bool = False,
    confidence: float = CONFIDENCE,
    resamples: int = 4000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """`statistic(*samples)` with a percentile-bootstrap interval over the samples' units,
    resampled together when `paired` (the same images under two attacks), else each on its
    own: (value, low, high). Percentile rather than BCa, so that a sample of identical
    values (every image fooled) gives a point interval instead of nan."""
    arrays = [np.asarray(s, dtype=float) for s in samples]
    if any(len(a) < 1 for a in arrays):
        raise ValueError("every sample needs at least one unit")
    value = float(statistic(*arrays))
    result = stats.bootstrap(
        arrays,
        lambda *a, axis=-1: statistic(*a, axis=axis),
        paired=paired,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        vectorized=True,
        random_state=np.random.default_rng(seed),
    )
    return value, float(result.confidence_interval.low), float(result.confidence_interval.high)


def mean_interval(values: np.ndarray) -> tuple[float, float, float]:
    """The mean of per-unit values (bits/dim per image, rise per path) with its bootstrap
    interval over the units: (mean, low, high)."""
    return bootstrap([values], lambda x, axis=-1: np.mean(x, axis=axis))


def difference_of_rates(
    first: np.ndarray, second: np.ndarray, *, paired: bool, seed: int = 0
) -> tuple[float, float, float]:
    """Rate of `first` minus rate of `second` (0/1 outcomes per unit), in points, with a
    bootstrap interval: paired when both were measured on the same units."""

    def diff(a, b, axis=-1):
        return 100 * (np.mean(a, axis=axis) - np.mean(b, axis=axis))

    return bootstrap([first, second], diff, paired=paired, seed=seed)


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """The mean of a few repeated measurements (seeds) with Student's t interval: (mean, low, high)."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        raise ValueError(f"a t interval needs at least two measurements, got {len(a)}")
    if np.ptp(a) == 0:  # identical measurements: no spread to scale t by
        return float(a[0]), float(a[0]), float(a[0])
    low, high = stats.t.interval(confidence, len(a) - 1, loc=a.mean(), scale=stats.sem(a))
    return float(a.mean()), float(low), float(high)


def seed_difference(
    first: Sequence[float], second: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float, str]:
    """Mean of `first` minus mean of `second` (e.g. two recipes over seeds) with its t
    interval: Welch's where both sides have several seeds; Student's pooled one where only
    one side has (its seed spread stands in for the other's, which a single run cannot
    measure). Returns (difference, low, high, method)."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if len(a) < 1 or len(b) < 1 or len(a) + len(b) < 3:
        raise ValueError("a t interval over seeds needs one side with at least two measurements")
    welch = len(a) > 1 and len(b) > 1
    method = "Welch t over seeds" if welch else "pooled t over seeds"
    diff = float(a.mean() - b.mean())
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # no spread on either side
        return diff, diff, diff, method
    ci = stats.ttest_ind(a, b, equal_var=not welch).confidence_interval(confidence)
    return diff, float(ci.low), float(ci.high), method
