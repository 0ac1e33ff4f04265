"""Training losses (Base, Reweighted, Split prior) and bits per dimension."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from studylib.config import TRAIN_OBJECTIVES, check_choice
from studylib.measure.evaluate import bits_per_dim


def prior_for(objective: str) -> str:
    """The prior an objective trains: the split prior for 'split', else one Gaussian per class."""
    return "split" if check_choice("objective", objective, TRAIN_OBJECTIVES) == "split" else "gaussian"


def num_classes(objective: str) -> int:
    """Classes of the prior: one for the unconditional flow, ten otherwise."""
    return 1 if check_choice("objective", objective, TRAIN_OBJECTIVES) == "unconditional" else 10


def loss_and_stats(
    log_pxy: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, objective: str, ce_weight: float, dims: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """The objective's loss and the batch's bpd / accuracy.

    base:       -log p(x|y) / D
    reweighted: -log p(x|y) / D + w * CE(log p(.|x), y)     (paper eq. 6 has w = 1)
    split:      -log p(x|y) / D + w * CE(z_s logits, y)     (appendix A.4)
    unconditional: -log p(x) / D                        (one class; labels unused)
    """
    check_choice("objective", objective, TRAIN_OBJECTIVES)
    if objective == "unconditional":
        y = torch.zeros_like(y)
    nll = -log_pxy.gather(1, y[:, None]).squeeze(1)
    loss = nll.mean() / dims
    if objective not in ("base", "unconditional"):
        loss = loss + ce_weight * F.cross_entropy(log_pxy if objective == "reweighted" else logits, y)
    stats = {
        "loss": loss.item(),
        "bpd": float(bits_per_dim(nll.mean().item(), dims)),
        "acc": (log_pxy.argmax(1) == y).float().mean().item(),
    }
    return loss, stats
