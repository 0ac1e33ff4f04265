"""Chapter 03, section 4.2: the NLL under the correct and the best wrong class (Figure 3),
and the margin argument computed from them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from studylib.book.chapter import Params
from studylib.book.ledger import directional
from studylib.book.tables import Table
from studylib.measure import evaluate
from studylib.measure.evaluate import bits_per_dim
from studylib.measure.uncertainty import bootstrap, wilson
from studylib.studies.common import eval_log_likelihoods, eval_set, model_for


@dataclass
class Margins:
    """Section 4.2: how far apart the correct and the best wrong class are in NLL, against
    how much NLL varies between images."""

    dataset: str
    dims: int
    correct_bpd: torch.Tensor
    wrong_bpd: torch.Tensor
    correct_nats: torch.Tensor
    gap_nats: torch.Tensor

    @staticmethod
    def needed_gap(classes: int = 10, delta: float = 1e-5) -> float:
        """Logit gap (nats) over every other class that guarantees p(y|x) >= 1 - delta:
        log(C - 1) + log((1 - delta) / delta)."""
        return math.log(classes - 1) + math.log((1 - delta) / delta)

    def stats(self, quantile: float = 0.95) -> dict[str, float]:
        t, recall = evaluate.threshold(self.correct_bpd, quantile)
        nll = self.correct_nats
        return {
            "needed_gap_nats": self.needed_gap(),
            "median_gap_nats": self.gap_nats.median().item(),
            "nll_std_nats": nll.std().item(),
            "nll_5_95_nats": (torch.quantile(nll, 0.95) - torch.quantile(nll, 0.05)).item(),
            "median_gap_bpd": (self.wrong_bpd - self.correct_bpd).median().item(),
            "threshold_bpd": t,
            "threshold_recall": recall,
            "wrong_below_threshold": (self.wrong_bpd <= t).double().mean().item(),
        }


def margins(params: Params, dataset: str, objective: str) -> Margins:
    """NLL under the correct and under the most likely wrong class over the test subset."""
    model = model_for(params, objective, params.seed, dataset=dataset)
    ll, y = eval_log_likelihoods(params, model, eval_set(params, dataset))
    correct, wrong = evaluate.correct_vs_wrong(ll, y)
    to_bpd = lambda nats: bits_per_dim(nats, model.n_dims)  # noqa: E731
    return Margins(dataset, model.n_dims, to_bpd(correct), to_bpd(wrong), correct, wrong - correct)


def nll_histograms(panels: dict[str, tuple]):
    """Figure 3: histograms of NLL (bits/dim) under the correct class and under the most
    likely wrong class, one panel per dataset."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    for ax, (name, (correct, wrong)) in zip(axes[0], panels.items(), strict=True):
        bins = np.histogram_bin_edges(np.concatenate([correct, wrong]), bins=40)
        ax.hist(wrong, bins=bins, alpha=0.6, label="NLL top wrong class")
        ax.hist(correct, bins=bins, alpha=0.6, label="NLL correct class")
        ax.set(xlabel="negative log-likelihood (bits/dim)", ylabel="images", title=name)
        ax.legend()
    fig.tight_layout()
    return fig


def margins_table(results: dict[str, Margins], quantile: float) -> Table:
    """Section 4.2's numbers, one column per dataset: the logit gap a confident classifier
    needs, the gap the model has, and how widely the NLL varies between images."""
    stats = {name: m.stats(quantile) for name, m in results.items()}
    rows = [
        ("test images", *(len(m.correct_bpd) for m in results.values())),
        ("gap needed for p(y|x) >= 1 - 1e-5 (nats)", *(round(s["needed_gap_nats"], 1) for s in stats.values())),
        ("median gap, best wrong - correct (nats)", *(round(s["median_gap_nats"], 2) for s in stats.values())),
        ("the same in bits/dim", *(round(s["median_gap_bpd"], 5) for s in stats.values())),
        ("std of the correct-class NLL (nats)", *(round(s["nll_std_nats"], 1) for s in stats.values())),
        ("its 5-95 % range (nats)", *(round(s["nll_5_95_nats"], 1) for s in stats.values())),
        (f"T at the {quantile:.0%} quantile (bits/dim)", *(round(s["threshold_bpd"], 3) for s in stats.values())),
        ("recall of T", *(round(s["threshold_recall"], 3) for s in stats.values())),
        ("wrong-class NLL below T (%)", *(round(100 * s["wrong_below_threshold"], 1) for s in stats.values())),
    ]
    return Table(("", *results), rows)


SOURCE = (
    "Section 4.2: the gap log(p(x|y_c)) - log(p(x|y_w)) is much smaller than the variation in likelihood "
    "values; the pair {x, y_w} cannot be detected as an outlier according to the joint distribution"
)


def claims(results: dict[str, Margins], quantile: float) -> list[dict]:
    """Section 4.2's two claims per dataset, as directional hypotheses: the spread of the
    correct-class NLL (its standard deviation) exceeds the median gap to the best wrong
    class (a bootstrap over the test images); and most wrong-class NLLs pass the detector
    at `quantile` (the share below T minus one half, Wilson's interval)."""
    rows = []
    for name, m in results.items():
        correct, gap = m.correct_nats.numpy(), m.gap_nats.numpy()

        def spread_minus_gap(c, g, axis=-1):
            return np.std(c, axis=axis, ddof=1) - np.median(g, axis=axis)

        value, low, high = bootstrap([correct, gap], spread_minus_gap, paired=True)
        s = m.stats(quantile)
        n = len(correct)
        k = int((m.wrong_bpd <= s["threshold_bpd"]).sum())
        share, s_low, s_high = wilson(k, n)
        rows += [
            directional(
                f"{name}: NLL spread (std) minus the median wrong-vs-correct class gap",
                value,
                (low, high),
                n=n,
                of="test images",
                method="paired bootstrap",
                statement="the class gap is much smaller than the variation in likelihood values",
                unit="nats",
                source=SOURCE,
                note=f"std {s['nll_std_nats']:.1f}, median gap {s['median_gap_nats']:.2f} nats",
            ),
            directional(
                f"{name}: share of wrong-class NLLs below T ({quantile:.0%} quantile), above one half",
                share - 50,
                (s_low - 50, s_high - 50),
                n=n,
                of="test images",
                method="Wilson",
                statement="the pair (x, best wrong class) is not detected as an outlier",
                unit="points",
                source=SOURCE,
                note=f"{k} of {n} below T = {s['threshold_bpd']:.3f} bits/dim",
            ),
        ]
    return rows
