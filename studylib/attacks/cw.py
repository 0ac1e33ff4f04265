"""Carlini & Wagner's L2 attack (2017b), untargeted, batched; optionally detection-aware
(2017a): the loss gains c * max(0, -log p(x') - T), and a success must also be undetected."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from studylib.attacks.detector import Detector, Target
from studylib.progress import bar as tqdm

LOW, HIGH = -0.5, 0.5  # the pixel box of the study's images


@dataclass
class AttackResult:
    """Per image: the closest successful adversarial found (the original where none was),
    whether one was found, its L2 distance (inf where none), model queries spent, and the
    L2 distance of the closest misclassified point seen, detected or not (inf where none)."""

    adversarial: torch.Tensor
    success: torch.Tensor
    l2: torch.Tensor
    queries: torch.Tensor
    fooled_l2: torch.Tensor


def margin(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Score of the true class minus the best other class: > 0 means correctly classified.
    A difference of scores, so it is right whatever their sign (flow scores are large and negative)."""
    true = scores.gather(1, y[:, None]).squeeze(1)
    other = scores.scatter(1, y[:, None], float("-inf")).max(1).values
    return true - other


def cw_lr(eps: float) -> float:
    """CW-L2's Adam step for an L2 budget eps: eps / 150 (0.01 on MNIST as in Carlini & Wagner,
    8.6e-4 on CIFAR-10). Adam's step sets how finely CW resolves a distance: on a quick
    CIFAR-10 model, steps of 0.01 / 0.002 / 0.0005 returned adversarial examples at L2 of
    about 0.22 / 0.046 / 0.011 for the same images, against eps = 0.13."""
    return eps / 150


def _to_tanh(x: torch.Tensor) -> torch.Tensor:
    scaled = (x - (LOW + HIGH) / 2) / ((HIGH - LOW) / 2)
    return torch.atanh(scaled.clamp(-1 + 1e-6, 1 - 1e-6))


def _from_tanh(w: torch.Tensor) -> torch.Tensor:
    return (LOW + HIGH) / 2 + (HIGH - LOW) / 2 * torch.tanh(w)


def cw_l2(
    target: Target,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 100,
    search_steps: int = 5,
    c_init: float = 1e-3,
    lr: float = 0.01,
    kappa: float = 0.0,
    detector: Detector | None = None,
    warm_start: torch.Tensor | None = None,
    progress: bool = True,
) -> AttackResult:
    """Untargeted CW-L2 in tanh space: minimise ||x' - x||^2 + c * max(0, margin + kappa)
    [+ c * max(0, NLL(x') - T) in nats when `detector` is given] with Adam, a binary search
    over c per image, and the best (smallest-L2) success tracked per image. A success is a
    misclassification, and with a detector also NLL(x') <= T.

    c starts small and grows tenfold until it succeeds (Carlini & Wagner's 1e-3): a flow's
    margin is a difference of log-likelihoods in nats, so a c near 1 makes the margin's
    gradient dwarf that of ||x' - x||^2, Adam's second-moment estimate is set by it, and
    once across the boundary the steps that pull x' back are too small to matter; on a
    quick MNIST model that left CW ten times farther from the image than foolbox's.
    `warm_start` (images like `x`, e.g. the plain attack's result) are candidates counted
    before the search: a detection-aware attack never does worse than an undetected one it
    was handed."""
    if steps < 1 or search_steps < 1:
        raise ValueError(f"steps and search_steps must be >= 1, got {steps}, {search_steps}")
    if c_init <= 0:
        raise ValueError(f"c_init must be positive, got {c_init}")
    if warm_start is not None and warm_start.shape != x.shape:
        raise ValueError(f"warm_start must have the images' shape {tuple(x.shape)}, got {tuple(warm_start.shape)}")
    n = len(x)
    w0 = _to_tanh(x)
    c = torch.full((n,), float(c_init), device=x.device)
    lower = torch.zeros(n, device=x.device)
    upper = torch.full((n,), float("inf"), device=x.device)
    best = x.clone()
    best_l2 = torch.full((n,), float("inf"), device=x.device)
    fooled_l2 = best_l2.clone()
    queries = torch.zeros(n, dtype=torch.long, device=x.device)
    if warm_start is not None:
        with torch.no_grad():
            scores, nll = target(warm_start)
        queries += 1
        ok = margin(scores, y) < 0
        l2 = (warm_start - x).flatten(1).norm(dim=1)
        fooled_l2 = torch.where(ok, l2, fooled_l2)
        if detector is not None:
            ok = ok & ~detector.detected(nll)
        best[ok], best_l2[ok] = warm_start[ok], l2[ok]
    desc = "CW-L2" + (" (detection-aware)" if detector else "")
    bar = tqdm(total=steps * search_steps, desc=desc, disable=not progress)
    with bar:
        for _ in range(search_steps):
            w = w0.clone().requires_grad_(True)
            optimizer = torch.optim.Adam([w], lr=lr)
            found = torch.zeros(n, dtype=torch.bool, device=x.device)
            for _ in range(steps):
                adv = _from_tanh(w)
                scores, nll = target(adv)
                queries += 1
                m = margin(scores, y)
                l2 = (adv - x).flatten(1).norm(dim=1)
                loss = l2**2 + c * torch.relu(m + kappa)
                success = m < 0
                fooled_l2 = torch.where(success, torch.minimum(fooled_l2, l2.detach()), fooled_l2)
                if detector is not None:
                    loss = loss + c * detector.excess_nats(nll)
                    success = success & ~detector.detected(nll)
                with torch.no_grad():
                    better = success & (l2 < best_l2)
                    best[better] = adv[better].detach()
                    best_l2[better] = l2[better].detach()
                    found |= success
                optimizer.zero_grad()
                loss.sum().backward()
                optimizer.step()
                bar.update(1)
            # binary search on c: smaller after a success, larger (x10 until bracketed) after none
            upper = torch.where(found, torch.minimum(upper, c), upper)
            lower = torch.where(found, lower, torch.maximum(lower, c))
            c = torch.where(torch.isinf(upper), c * 10, (lower + upper) / 2)
    return AttackResult(best, torch.isfinite(best_l2), best_l2, queries, fooled_l2)
