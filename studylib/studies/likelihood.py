"""Chapter 03, section 4.2: the NLL under the correct and the best wrong class (Figure 3),
and the margin argument computed from them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from studylib.book import paper
from studylib.book.chapter import Params
from studylib.book.ledger import directional
from studylib.book.tables import Table
from studylib.measure import evaluate
from studylib.measure.evaluate import bits_per_dim
from studylib.measure.uncertainty import bootstrap, wilson
from studylib.studies.common import auroc_text, eval_log_likelihoods, eval_set, model_for, roc_figure


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


def roc(results: dict[str, Margins]):
    """Section 4.2 without a threshold: the ROC of the NLL, each test image under its correct
    class against the same image under its most likely wrong class, one panel per dataset."""
    panels = {n: {"best wrong class": (m.correct_bpd.numpy(), m.wrong_bpd.numpy())} for n, m in results.items()}
    return roc_figure(panels, "wrong-class pairs")


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


CONFIDENCE_SOURCE = (
    "Section 4.2: in order for log(p(x|y_w)) to be considered an outlier the prediction needs to be "
    "extremely confident, much more than we expect it to be, considering test classification error"
)


def warranted_gap(errors: np.ndarray, axis: int = -1, classes: int = 10) -> np.ndarray:
    """The logit gap (nats) that a classifier with the error rate of `errors` (True where
    wrong, along `axis`) warrants: `Margins.needed_gap` at delta = that rate (at least
    1/(n+1), so that an error-free sample stays finite)."""
    rate = np.maximum(np.mean(errors, axis=axis), 1 / (errors.shape[axis] + 1))
    return np.log(classes - 1) + np.log((1 - rate) / rate)


def claims(results: dict[str, Margins], quantile: float) -> list[dict]:
    """Section 4.2's three claims per dataset, as directional hypotheses: the spread of the
    correct-class NLL (its standard deviation) exceeds the median gap to the best wrong
    class (a bootstrap over the test images); most wrong-class NLLs pass the detector at
    `quantile` (the share below T minus one half, Wilson's interval); and flagging the best
    wrong class as an outlier needs more confidence than the test error warrants: the
    median over images of T minus the correct-class NLL (nats: how far the wrong class
    must fall to exceed T) minus `warranted_gap` (a bootstrap over the test images)."""
    rows = []
    for name, m in results.items():
        correct, gap = m.correct_nats.numpy(), m.gap_nats.numpy()

        def spread_minus_gap(c, g, axis=-1):
            return np.std(c, axis=axis, ddof=1) - np.median(g, axis=axis)

        value, low, high = bootstrap([correct, gap], spread_minus_gap, paired=True)
        s = m.stats(quantile)
        n = len(correct)
        to_t = (s["threshold_bpd"] - m.correct_bpd.numpy()) * m.dims * math.log(2)  # nats below T

        def needed_minus_warranted(t, g, axis=-1):
            return np.median(t, axis=axis) - warranted_gap(g < 0, axis)

        confident = bootstrap([to_t, gap], needed_minus_warranted, paired=True)
        k = int((m.wrong_bpd <= s["threshold_bpd"]).sum())
        share, s_low, s_high = wilson(k, n)
        readings = (  # (claim, (value, low, high), method, the paper's statement, unit, source, note)
            (
                "NLL spread (std) minus the median wrong-vs-correct class gap",
                (value, low, high),
                "paired bootstrap",
                "the class gap is much smaller than the variation in likelihood values",
                "nats",
                SOURCE,
                f"std {s['nll_std_nats']:.1f}, median gap {s['median_gap_nats']:.2f} nats",
            ),
            (
                f"share of wrong-class NLLs below T ({quantile:.0%} quantile), above one half",
                (share - 50, s_low - 50, s_high - 50),
                "Wilson",
                "the pair (x, best wrong class) is not detected as an outlier",
                "points",
                SOURCE,
                f"{k} of {n} below T = {s['threshold_bpd']:.3f} bits/dim",
            ),
            (
                "median NLL margin below T minus the class gap the test error warrants",
                confident,
                "paired bootstrap",
                "an outlier needs a prediction far more confident than the test error warrants",
                "nats",
                CONFIDENCE_SOURCE,
                f"the error rate warrants {warranted_gap(gap < 0):.1f} nats",
            ),
        )
        rows += [
            directional(
                f"{name}: {claim}",
                v[0],
                v[1:],
                n=n,
                of="test images",
                method=method,
                statement=statement,
                unit=unit,
                source=source,
                note=note,
            )
            for claim, v, method, statement, unit, source, note in readings
        ]
    return rows


def numbers(results: dict[str, Margins], claims: list[dict], quantile: float) -> dict[str, str]:
    """The chapter's figures for its prose (`chapter.glue`), per dataset `<name>_`: the gap a
    confident classifier needs and the median gap (nats, bits/dim), the NLL's standard
    deviation and 5-95 % range, how many times the spread is the needed gap, the share of
    wrong-class NLLs below T, the test images, each claim's value with its interval
    (`_spread_claim`, `_share_claim`, `_confident_claim`), the gap the test error warrants
    (`_warranted`), the paper's histogram range (`_paper_range`), and the AUROC of the NLL,
    correct against best wrong class, with its bootstrap interval (`_auroc`)."""
    out = {"quantile": f"{quantile:.0%}"}
    for name, m in results.items():
        s = m.stats(quantile)
        spread, share, confident = (c for c in claims if c["name"].startswith(f"{name}:"))
        low, high = paper.FIGURE3_RANGE[name]
        out |= {
            f"{name}_images": str(len(m.correct_bpd)),
            f"{name}_needed": f"{s['needed_gap_nats']:.1f}",
            f"{name}_gap": f"{s['median_gap_nats']:.2f}",
            f"{name}_gap_bpd": f"{s['median_gap_bpd']:.2g}",
            f"{name}_std": f"{s['nll_std_nats']:.0f}",
            f"{name}_range": f"{s['nll_5_95_nats']:.0f}",
            f"{name}_times": f"{s['nll_std_nats'] / s['needed_gap_nats']:.0f}",
            f"{name}_wrong_below": f"{100 * s['wrong_below_threshold']:.1f} %",
            f"{name}_spread_claim": _in_nats(spread),
            f"{name}_share_claim": f"{share['ours']:.1f} points [{share['low']:.1f}, {share['high']:.1f}]",
            f"{name}_paper_range": f"{low:g} and {high:g}",
            f"{name}_warranted": f"{warranted_gap(m.gap_nats.numpy() < 0):.1f}",
            f"{name}_confident_claim": _in_nats(confident),
            f"{name}_auroc": auroc_text(m.correct_bpd.numpy(), m.wrong_bpd.numpy()),
        }
    return out


def _in_nats(claim: dict) -> str:
    return f"{claim['ours']:.0f} nats [{claim['low']:.0f}, {claim['high']:.0f}]"
