"""8-bit images (`attacks.grid`): what an adversarial example becomes when it must be a real image."""

from __future__ import annotations

import torch

from studylib import data
from studylib.attacks import grid


def _images(n: int = 6) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (n, 1, 32, 32), generator=gen, dtype=torch.uint8)
    return data.to_float(pixels, torch.rand(pixels.shape, generator=gen))


def _is_8bit_image_of(adv: torch.Tensor, x: torch.Tensor) -> bool:
    k = (adv + 0.5) * 256 - grid.offsets(x)
    on_grid = (k - k.round()).abs().max() < 1e-3
    return bool(on_grid and k.round().min() >= 0 and k.round().max() <= 255)


def test_a_test_image_is_its_own_projection_and_its_levels_are_recovered():
    gen = torch.Generator().manual_seed(1)
    pixels = torch.randint(0, 256, (4, 3, 32, 32), generator=gen, dtype=torch.uint8)
    noise = torch.rand(pixels.shape, generator=gen)
    x = data.to_float(pixels, noise)
    wrong = grid.levels(x, grid.offsets(x)) != pixels.float()
    # float32 cannot tell level k at offset ~1 from level k + 1 at offset ~0: the same image
    assert (torch.minimum(noise, 1 - noise)[wrong] < 1e-3).all()
    assert wrong.double().mean() < 1e-3
    assert torch.allclose(grid.project(x, x), x, atol=1e-6)


def test_a_projected_example_is_an_8bit_image_with_the_originals_offsets():
    x = _images()
    adv = (x + 0.03 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(-0.6, 0.6)
    projected = grid.project(adv, x)
    assert _is_8bit_image_of(projected, x)
    assert projected.min() >= -0.5 and projected.max() < 0.5
    assert not _is_8bit_image_of(adv, x)  # the check can fail


def test_a_perturbation_under_half_a_level_rounds_back_to_the_original():
    x = _images()
    adv = x + 0.49 / 256 * torch.sign(torch.randn(x.shape, generator=torch.Generator().manual_seed(3)))
    assert torch.allclose(grid.project(adv, x), x, atol=1e-6)
    one_level = x[:1] + 1 / 256 * (torch.arange(1024) == 0).view(1, 1, 32, 32)
    assert torch.allclose(grid.level_distance(one_level, x[:1]), torch.ones(1))


def test_repair_scales_the_perturbation_until_the_8bit_image_succeeds():
    """A linear 'classifier' flipped by the mean pixel: the continuous example crosses by a
    hair that rounding erases; repair finds the smallest scale that crosses on the grid."""
    x = _images(4)
    w = torch.ones(1024) / 1024

    def score(images):
        return images.flatten(1) @ w

    margin = 0.3 / 256  # a uniform shift of 0.3 levels crosses: rounding undoes it
    adv = x + margin
    assert (score(adv) > score(x)).all()

    def succeeds(candidates, idx):
        return score(candidates) >= score(x[idx]) + margin

    assert not succeeds(grid.project(adv, x), torch.arange(4)).any()
    repaired, ok = grid.repair(succeeds, adv, x)
    assert ok.all() and _is_8bit_image_of(repaired, x)
    assert (score(repaired) >= score(x) + margin).all()
    # 0.3 levels x 1.4 still rounds to 0: the scale repair needed was 2
    smaller, ok_smaller = grid.repair(succeeds, adv, x, scales=torch.tensor([1.0, 1.4]))
    assert not ok_smaller.any()
