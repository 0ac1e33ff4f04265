"""Interpolations between test images of different classes (section 4.4, Figures 1, 4, 6):
x_a = a * x1 + (1 - a) * x0, and what the model thinks along the path."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from studylib.measure.evaluate import nll_bpd
from studylib.models.flows import ConditionalGlow
from studylib.progress import bar as tqdm


def path(x0: torch.Tensor, x1: torch.Tensor, steps: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """(alphas (S,), images (P, S, c, H, W)): the straight lines from each x0 to its x1."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    alphas = torch.linspace(0, 1, steps, device=x0.device)
    a = alphas.view(1, -1, *([1] * (x0.dim() - 1)))
    return alphas, a * x1[:, None] + (1 - a) * x0[:, None]


def select_pairs(
    ll: torch.Tensor, y: torch.Tensor, nll: torch.Tensor, threshold_bpd: float, n_pairs: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (i0, i1) of up to n_pairs random pairs of correctly classified test images of
    different classes whose NLL is below the threshold (both endpoints "look real"). A model
    too weak for that (its correct, below-threshold images all of one class, as at the smoke
    profile) gets pairs that ignore correctness, with a warning."""
    below = nll <= threshold_bpd
    good = torch.nonzero((ll.argmax(1) == y) & below).squeeze(1)
    if len(y[good].unique()) < 2:
        warnings.warn(
            "too few correctly classified images for pairs of different classes; ignoring correctness", stacklevel=2
        )
        good = torch.nonzero(below).squeeze(1)
    if len(y[good].unique()) < 2:
        raise ValueError("the test images below the threshold are all of one class")
    i0 = good[torch.randint(len(good), (4 * n_pairs,), generator=gen)]
    i1 = good[torch.randint(len(good), (4 * n_pairs,), generator=gen)]
    keep = y[i0] != y[i1]
    return i0[keep][:n_pairs], i1[keep][:n_pairs]


@dataclass
class Paths:
    """NLL (bits/dim) and class posteriors along interpolation paths."""

    alphas: torch.Tensor  # (S,)
    nll: torch.Tensor  # (P, S) bits/dim of p(x_a)
    p_y0: torch.Tensor  # (P, S) p(y0 | x_a)
    p_y1: torch.Tensor  # (P, S) p(y1 | x_a)

    def below(self, threshold_bpd: float) -> torch.Tensor:
        """Per path: does every point stay at or below the threshold (look "real")?"""
        return (self.nll <= threshold_bpd).all(1)

    def mid_rise(self) -> torch.Tensor:
        """Per path: NLL at the middle of the path minus the mean NLL of its two ends (bits/dim);
        > 0 means the model finds the in-between image less likely than the real ones."""
        mid = self.nll[:, self.nll.shape[1] // 2]
        return mid - (self.nll[:, 0] + self.nll[:, -1]) / 2

    def departure(self) -> torch.Tensor:
        """Per path: how far along it the endpoint classes are lost, the mean of the first
        alpha at which p(y0 | x_a) falls below one half and of 1 minus the last alpha at which
        p(y1 | x_a) is below one half. Near 0: a sharp drop as the path leaves the real
        images; near 0.5: a smooth hand-over from one class to the other (Figure 4)."""
        first = (self.p_y0 < 0.5).float().argmax(1)  # exists: x1 is classified y1, so p(y0 | x1) < 1/2
        last = self.p_y1.shape[1] - 1 - (self.p_y1 < 0.5).flip(1).float().argmax(1)
        return (self.alphas[first] + 1 - self.alphas[last]) / 2

    def summary(self, threshold_bpd: float, clean_sd_bpd: float) -> dict[str, float]:
        """The numbers the chapters report: % of paths entirely below T, the mid-path rise in
        bits/dim and in units of the clean test NLL's standard deviation, % of paths rising."""
        rise = self.mid_rise()
        return {
            "pairs": len(rise),
            "paths_below_threshold": self.below(threshold_bpd).double().mean().item(),
            "mid_rise_bpd": rise.mean().item(),
            "mid_rise_sd": rise.mean().item() / clean_sd_bpd,
            "paths_rising": (rise > 0).double().mean().item(),
        }


@torch.no_grad()
def interpolate(
    model: ConditionalGlow,
    x0: torch.Tensor,
    x1: torch.Tensor,
    y0: torch.Tensor,
    y1: torch.Tensor,
    steps: int = 100,
    batch_size: int = 500,
    progress: bool = True,
) -> Paths:
    """Evaluate the model along the paths from x0 to x1 (one flow pass per image, batched)."""
    device = next(model.parameters()).device
    model.eval()
    alphas, images = path(x0, x1, steps)
    flat = images.flatten(0, 1)
    ll = torch.cat(
        [
            model.log_prob(chunk.to(device)).double().cpu()
            for chunk in tqdm(flat.split(batch_size), desc="interpolate", disable=not progress)
        ]
    )
    post = torch.softmax(ll, 1).view(len(x0), steps, -1)
    nll = nll_bpd(ll, model.n_dims).view(len(x0), steps)
    pick = lambda y: post.gather(2, y.cpu().view(-1, 1, 1).expand(-1, steps, 1)).squeeze(2)  # noqa: E731
    return Paths(alphas.cpu(), nll, pick(y0), pick(y1))
