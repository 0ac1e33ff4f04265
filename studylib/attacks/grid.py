"""8-bit images. A test image is x = (k + u) / 256 - 0.5 with integer levels k in 0..255 and
its fixed dequantisation offsets u in [0, 1); an adversarial example is a real image only
if it is one too: other levels, the same offsets, scored as the test images are."""

from __future__ import annotations

from collections.abc import Callable

import torch

LEVELS = 256


def offsets(x: torch.Tensor) -> torch.Tensor:
    """The dequantisation offsets u of dequantised images x (in [0, 1))."""
    scaled = (x + 0.5) * LEVELS
    return scaled - scaled.floor()


def levels(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The nearest integer levels k (0..255) of images x under offsets u."""
    return ((x + 0.5) * LEVELS - u).round().clamp(0, LEVELS - 1)


def image(k: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The dequantised image of levels k under offsets u, as `data.to_float` makes test images."""
    return (k + u) / LEVELS - 0.5


def project(adversarial: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The 8-bit image nearest to `adversarial` with the original images' offsets."""
    u = offsets(x)
    return image(levels(adversarial, u), u)


def level_distance(adversarial: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per image, the L2 distance in levels (1 = one pixel moved by one level)."""
    return (adversarial - x).flatten(1).norm(dim=1) * LEVELS


def repair(
    succeeds: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    adversarial: torch.Tensor,
    x: torch.Tensor,
    scales: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project each example to the 8-bit grid; where the projection no longer succeeds
    (`succeeds(candidates, index)`: per candidate, with the indices of its images),
    scale the attack's perturbation up, x + t (adversarial - x), and project again, keeping
    the smallest t that succeeds (t from 1 to 64 in steps of sqrt 2 by default). Returns
    (8-bit examples, success); a failure keeps its plain projection."""
    scales = torch.sqrt(torch.tensor(2.0)) ** torch.arange(13) if scales is None else scales
    delta = adversarial - x
    best = project(adversarial, x)
    done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for t in scales.tolist():
        todo = torch.nonzero(~done).squeeze(1)
        if len(todo) == 0:
            break
        candidate = project(x[todo] + t * delta[todo], x[todo])
        ok = succeeds(candidate, todo)
        best[todo[ok]] = candidate[ok]
        done[todo[ok]] = True
    return best, done
