"""The detector judged without one threshold (`measure.detection`): ROC and AUROC."""

from __future__ import annotations

import numpy as np
import pytest

from studylib.measure.detection import auroc, roc_curve


def test_auroc_is_the_probability_that_the_other_scores_higher_ties_half():
    clean = np.array([1.0, 2.0, 3.0, 3.0])
    other = np.array([3.0, 4.0])
    pairs = [(o > c) + 0.5 * (o == c) for o in other for c in clean]
    value, low, high = auroc(clean, other)
    assert value == pytest.approx(np.mean(pairs))  # 7 / 8
    assert low <= value <= high


def test_the_roc_curve_runs_from_0_to_1_and_its_area_is_the_auroc():
    rng = np.random.default_rng(0)
    clean, other = rng.normal(0, 1, 500), rng.normal(1, 1, 80)
    fpr, tpr = roc_curve(clean, other)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    assert np.trapezoid(tpr, fpr) == pytest.approx(auroc(clean, other)[0])


def test_auroc_reads_separated_and_identical_samples():
    rng = np.random.default_rng(1)
    assert auroc(np.arange(10.0), np.arange(10.0) + 100) == (1.0, 1.0, 1.0)
    same = rng.normal(0, 1, 400)
    value, low, high = auroc(same[:200], same[200:])
    assert low < 0.5 < high and abs(value - 0.5) < 0.1
