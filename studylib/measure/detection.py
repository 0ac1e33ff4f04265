"""How well the likelihood separates clean images from others without fixing one threshold:
the ROC curve of "NLL above t" over every t, and its area (AUROC) with a bootstrap interval."""

from __future__ import annotations

import numpy as np
from scipy import stats

from studylib.measure.uncertainty import bootstrap


def roc_curve(clean: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) of flagging NLL > t, as t falls through
    every observed value: the share of clean images flagged against the share of `other`."""
    clean, other = np.asarray(clean, dtype=float), np.asarray(other, dtype=float)
    cuts = np.unique(np.concatenate([clean, other]))[::-1]
    fpr = (clean[None, :] >= cuts[:, None]).mean(1)
    tpr = (other[None, :] >= cuts[:, None]).mean(1)
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


def auroc(clean: np.ndarray, other: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """P(NLL of `other` > NLL of a clean image), ties counting half: the Mann-Whitney U of
    scipy over n_clean * n_other, with a bootstrap interval over both samples. 0.5: the
    likelihood cannot tell them apart; 1: any threshold between them separates all. Each
    sample needs two values at least (the bootstrap resamples them)."""

    def area(other, clean, axis=-1):
        u = stats.mannwhitneyu(other, clean, axis=axis).statistic
        return u / (other.shape[axis] * clean.shape[axis])

    return bootstrap([other, clean], area, seed=seed, resamples=1000)
