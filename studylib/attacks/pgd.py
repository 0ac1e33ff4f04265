"""Projected gradient ascent within an L2 or L-infinity ball (Madry et al. 2018), for any
per-image objective: raise a flow's NLL of real images, lower it for out-of-distribution
ones, or a training loss in adversarial training."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

NORMS = ("l2", "linf")


def random_in_ball(shape: torch.Size, eps: float, norm: str, generator: torch.Generator) -> torch.Tensor:
    """Points drawn uniformly from the eps-ball of `norm` (one per leading index)."""
    if norm == "linf":
        return (torch.rand(shape, generator=generator) * 2 - 1) * eps
    direction = torch.randn(shape, generator=generator)
    direction = direction / direction.flatten(1).norm(dim=1).view(-1, *[1] * (len(shape) - 1))
    dims = math.prod(shape[1:])
    radius = eps * torch.rand(shape[0], generator=generator) ** (1 / dims)
    return direction * radius.view(-1, *[1] * (len(shape) - 1))


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """The nearest point of the eps-ball of `norm` to `delta` (per image)."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    size = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    return delta * (eps / size).clamp(max=1).view(-1, *[1] * (delta.ndim - 1))


def pgd(
    objective: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    eps: float,
    norm: str = "l2",
    steps: int = 20,
    step_size: float | None = None,
    random_start: bool = True,
    seed: int = 0,
    bounds: tuple[float, float] = (-0.5, 0.5),
) -> torch.Tensor:
    """Images x' with ‖x' - x‖ ≤ eps in `norm`, inside `bounds`, that locally maximise
    `objective(x')` (shape (B,), one value per image) by `steps` projected gradient steps
    (normalised for L2, signed for L-infinity; default step 2.5 eps / steps). The best
    iterate per image is returned, so more steps never give a worse result."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; allowed values: {', '.join(NORMS)}")
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    step_size = 2.5 * eps / max(steps, 1) if step_size is None else step_size
    x = x.detach()
    delta = torch.zeros_like(x)
    if random_start and eps > 0:
        gen = torch.Generator().manual_seed(seed)
        delta = random_in_ball(x.shape, eps, norm, gen).to(x)
    delta = (x + delta).clamp(*bounds) - x
    best, best_value = x + delta, torch.full((len(x),), -math.inf, device=x.device)
    for step in range(steps + 1):
        delta.requires_grad_(True)
        value = objective(x + delta)
        better = value.detach() > best_value
        best = torch.where(better.view(-1, *[1] * (x.ndim - 1)), (x + delta).detach(), best)
        best_value = torch.where(better, value.detach(), best_value)
        if step == steps:
            break
        (grad,) = torch.autograd.grad(value.sum(), delta)
        with torch.no_grad():
            if norm == "linf":
                move = grad.sign()
            else:
                move = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.ndim - 1))
            delta = project(delta + step_size * move, eps, norm)
            delta = (x + delta).clamp(*bounds) - x
    return best
