"""PGD: every iterate stays in its ball and the image bounds, the result is the best
iterate, and bad input is refused before any model call."""

from __future__ import annotations

import math

import pytest
import torch

from studylib.attacks.pgd import pgd, random_in_ball


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_stays_in_the_ball_and_the_bounds_and_raises_the_objective(norm):
    x = torch.rand(64, 1, 6, 6, generator=torch.Generator().manual_seed(0)) - 0.5
    target = torch.full_like(x, 0.5)
    seen = []

    def objective(images):  # move towards a corner of the image box
        seen.append(images.detach())
        return -(images - target).flatten(1).norm(dim=1)

    eps = 0.3 if norm == "linf" else 1.0
    out = pgd(objective, x, eps, norm, steps=10)
    for images in [out, *seen]:
        d = (images - x).flatten(1)
        size = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
        assert (size <= eps + 1e-6).all() and images.min() >= -0.5 and images.max() <= 0.5
    assert (objective(out) > objective(x)).all()
    assert len(seen) == 2 + 10 + 1  # each step's batch in one call (plus the two checks above)


def test_random_start_is_inside_the_ball_and_fills_it():
    gen = torch.Generator().manual_seed(0)
    points = random_in_ball(torch.Size([4000, 3]), 2.0, "l2", gen)
    size = points.norm(dim=1)
    assert size.max() <= 2.0 and (size < 1.0).double().mean().item() == pytest.approx(1 / 8, abs=0.02)


def test_the_best_iterate_is_returned():
    x, seen = torch.zeros(8, 1, 2, 2), []

    def objective(images):  # best at x itself: overshooting steps make later iterates worse
        value = -images.flatten(1).norm(dim=1)
        seen.append(value.detach())
        return value

    out = pgd(objective, x, 1.0, steps=3, step_size=0.9)
    best = torch.stack(seen).max(0).values
    torch.testing.assert_close(-out.flatten(1).norm(dim=1), best)
    assert (best > torch.stack(seen)[-1]).any()  # the last iterate was not always the best


@pytest.mark.parametrize(
    "kwargs, message",
    [({"norm": "l1"}, "unknown norm"), ({"eps": -1.0}, "eps must be"), ({"eps": math.inf}, "eps must be")],
)
def test_bad_input_is_refused_before_any_model_call(kwargs, message):
    args = {"eps": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        pgd(lambda images: pytest.fail("called the model"), torch.zeros(1, 1, 2, 2), **args)
