"""Evaluation: per-class log-likelihood matrices, accuracy and bits per dimension."""

from __future__ import annotations

import math

import torch

from studylib.data import ImageDataset
from studylib.models.flows import ConditionalGlow
from studylib.progress import bar as tqdm


def bits_per_dim(nll_nats: torch.Tensor | float, dims: int) -> torch.Tensor | float:
    """bpd of 8-bit images scaled to unit-width intervals and dequantised with U(0, 1/256):
    (NLL + D ln 256) / (D ln 2), D the unpadded dimension."""
    return (nll_nats + dims * math.log(256)) / (dims * math.log(2))


@torch.no_grad()
def log_likelihoods(
    model: ConditionalGlow, dataset: ImageDataset, batch_size: int = 250, progress: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) log p(x|y) in nats for every item and class (float64, on the CPU), and labels (N,).

    Batched on the model's device, one flow pass per batch; the model is put in eval mode."""
    torch.set_flush_denormal(True)
    model.eval()
    device = next(model.parameters()).device
    x_all, y_all = dataset.tensors()
    out = []
    for start in tqdm(range(0, len(y_all), batch_size), desc=f"evaluate {dataset.name}", disable=not progress):
        out.append(model.log_prob(x_all[start : start + batch_size].to(device)).double().cpu())
    return torch.cat(out), y_all


def summarize(ll: torch.Tensor, y: torch.Tensor, dims: int) -> dict[str, float]:
    """Accuracy of Bayes' rule with a uniform class prior; bits/dim under the true class,
    log p(x|y), and under the marginal log p(x) = logsumexp_y log p(x|y) - log C. An
    unconditional flow (one class) has no accuracy, and its one density for both."""
    if ll.shape[1] == 1:
        bpd = float(bits_per_dim(-ll[:, 0].mean().item(), dims))
        return {"n": len(y), "accuracy": None, "bpd": bpd, "bpd_marginal": bpd}
    nll_true = -ll.gather(1, y[:, None]).squeeze(1)
    return {
        "n": len(y),
        "accuracy": (ll.argmax(1) == y).double().mean().item(),
        "bpd": float(bits_per_dim(nll_true.mean().item(), dims)),
        "bpd_marginal": nll_bpd(ll, dims).mean().item(),
    }


def evaluate(model: ConditionalGlow, dataset: ImageDataset, batch_size: int = 250, progress: bool = True) -> dict:
    """Accuracy and bits/dim of `model` on `dataset`."""
    ll, y = log_likelihoods(model, dataset, batch_size, progress)
    return summarize(ll, y, model.n_dims)


def nll_bpd(ll: torch.Tensor, dims: int) -> torch.Tensor:
    """Bits/dim of the marginal p(x) = mean_y p(x|y), the quantity a likelihood detector thresholds."""
    return bits_per_dim(-(torch.logsumexp(ll, 1) - math.log(ll.shape[1])), dims)


def correct_vs_wrong(ll: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """NLL (nats) under the correct class and under the most likely wrong class (Figure 3)."""
    correct = -ll.gather(1, y[:, None]).squeeze(1)
    wrong = ll.scatter(1, y[:, None], float("-inf")).max(1).values
    return correct, -wrong


def threshold(nll_bpd_clean: torch.Tensor, quantile: float) -> tuple[float, float]:
    """Detection threshold T (bits/dim) at `quantile` of the clean NLL, and its recall: the
    fraction of clean images with NLL <= T (an input is 'detected' when NLL > T)."""
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    t = torch.quantile(nll_bpd_clean.double(), quantile).item()
    return t, (nll_bpd_clean <= t).double().mean().item()
