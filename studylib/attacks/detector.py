"""The likelihood detector and the (C+1)-way classifier built on it.

An input is "detected" when its NLL (bits/dim of the marginal p(x)) exceeds a threshold T
set at a quantile of the clean test NLL. Attacks see a model through a `Target`: a function
x -> (class scores (B, C), NLL in bits/dim (B,))."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from studylib.measure.evaluate import nll_bpd, threshold
from studylib.models.flows import ConditionalGlow

Target = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Detector:
    """Flags inputs whose NLL exceeds `threshold_bpd`; `recall` is the share of clean test
    images at or below it (those it lets through), `quantile` the quantile that set it."""

    threshold_bpd: float | torch.Tensor  # one T, or one per image (`own_likelihood`)
    recall: float
    quantile: float
    dims: int

    @classmethod
    def fit(cls, clean_nll_bpd: torch.Tensor, quantile: float, dims: int) -> Detector:
        """T at `quantile` of the clean NLL (bits/dim)."""
        t, recall = threshold(clean_nll_bpd, quantile)
        return cls(t, recall, quantile, dims)

    @classmethod
    def own_likelihood(cls, clean_nll_bpd: torch.Tensor, dims: int) -> Detector:
        """A detector per image that flags anything less likely than that image itself: the
        constraint NLL(x') <= NLL(x) of Proposition 1's adaptive attacker."""
        return cls(clean_nll_bpd, 1.0, 1.0, dims)

    def of(self, index: torch.Tensor) -> Detector:
        """The detector for the images at `index` (the same one where T is shared)."""
        if isinstance(self.threshold_bpd, torch.Tensor):
            return Detector(
                self.threshold_bpd[index.to(self.threshold_bpd.device)], self.recall, self.quantile, self.dims
            )
        return self

    def detected(self, nll: torch.Tensor) -> torch.Tensor:
        """True where NLL (bits/dim) > T."""
        return nll > self.threshold_bpd

    def excess_nats(self, nll: torch.Tensor) -> torch.Tensor:
        """max(0, -log p(x) - T) in nats: the detection term of Carlini & Wagner (2017a)."""
        return torch.relu(nll - self.threshold_bpd) * self.dims * math.log(2)


def augmented_scores(scores: torch.Tensor, nll: torch.Tensor, threshold_bpd: float) -> torch.Tensor:
    """(B, C+1) scores whose last class, "non-image", wins exactly when NLL > T.

    The extra score is the best real score shifted by sign(NLL - T) * (1 + |NLL - T|): an
    additive shift, so it is right for the large negative log-likelihoods a flow gives
    (scaling the max score, as in C&W 2017a's (Z_D + 1) * max Z, flips sign for negative
    scores), and at least 1 away from the best real score, so float32 rounding at scores
    near -1000 cannot turn a detected input into a tie. At NLL = T the two tie and argmax
    picks the real class: not detected."""
    top = scores.max(1).values
    excess = nll - threshold_bpd
    return torch.cat([scores, (top + excess.sign() * (1 + excess.abs()))[:, None]], 1)


class FlowTarget:
    """A trained conditional flow as an attack target: scores are log p(x|y) (one flow pass
    for all classes) and the NLL is that of p(x) = mean_y p(x|y) in bits/dim. Counts queries
    (images passed through the flow)."""

    def __init__(self, model: ConditionalGlow, batch_size: int = 500):
        self.model = model.eval()
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self.queries = 0

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.queries += len(x)
        chunks = x.split(self.batch_size)
        ll = torch.cat([self.model.log_prob(c.to(self.device)) for c in chunks]).to(x.device)
        return ll, nll_bpd(ll, self.model.n_dims)
