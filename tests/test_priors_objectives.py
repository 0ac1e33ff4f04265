"""Priors give log p(z|y) for all classes in one call; losses and bits/dim."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from studylib.objectives import bits_per_dim, loss_and_stats
from studylib.priors import ClassGaussianPrior, SplitPrior


def _randomised(prior: torch.nn.Module) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return prior


def test_gaussian_prior_matches_one_class_at_a_time():
    prior = _randomised(ClassGaussianPrior(20, 4))
    z = torch.randn(6, 20)
    all_classes = prior.log_prob(z)
    for y in range(4):
        single = Normal(prior.mean[y], prior.log_std[y].exp()).log_prob(z).sum(1)
        assert torch.allclose(all_classes[:, y], single, atol=1e-4)
    assert torch.equal(all_classes.argmax(1), torch.stack([all_classes[:, y] for y in range(4)], 1).argmax(1))


def test_split_prior_matches_its_factorisation_one_class_at_a_time():
    prior = _randomised(SplitPrior(20, 4))
    z = torch.randn(6, 20)
    zs, zn = z[:, :4], z[:, 4:]
    all_classes = prior.log_prob(z)
    sigma = prior.log_sigma.exp()
    shift, log_std_shift = prior.proj(zs).chunk(2, -1)
    for y in range(4):
        log_zs = Normal(torch.eye(4)[y], sigma).log_prob(zs).sum(1)
        mean = shift + prior.class_mean[y]
        std = (log_std_shift + prior.class_log_std[y]).exp()
        single = log_zs + Normal(mean, std).log_prob(zn).sum(1)
        assert torch.allclose(all_classes[:, y], single, atol=1e-4)
    # z_s act as logits: log p(z_s|y) - log p(z_s|y') = (z_s[y] - z_s[y']) / sigma^2
    logits = prior.logits(z, all_classes)
    assert torch.allclose(logits[:, 0] - logits[:, 1], (zs[:, 0] - zs[:, 1]) / sigma**2, atol=1e-5)


@pytest.mark.parametrize("cls", [ClassGaussianPrior, SplitPrior])
def test_prior_samples_come_from_the_requested_class(cls):
    torch.manual_seed(0)
    prior = _randomised(cls(12, 3))
    y = torch.tensor([0, 1, 2] * 200)
    z = prior.sample(y, temperature=0.5)
    assert z.shape == (600, 12)
    assert (prior.log_prob(z).argmax(1) == y).float().mean() > 0.8


def test_bits_per_dim_by_hand():
    # A uniform density on the unit cube (NLL 0) is 8 bits per 8-bit dimension.
    assert bits_per_dim(0.0, 3072) == pytest.approx(8.0)
    # Each extra nat per dimension costs 1/ln 2 bits.
    assert bits_per_dim(1024 * math.log(2), 1024) == pytest.approx(9.0)
    assert bits_per_dim(-1024 * 5 * math.log(2), 1024) == pytest.approx(3.0)


def test_losses_by_objective():
    log_pxy = torch.tensor([[-10.0, -12.0], [-20.0, -19.0]])
    logits = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    base, stats = loss_and_stats(log_pxy, logits, y, "base", 5.0, 10)
    assert base.item() == pytest.approx((10 + 19) / 2 / 10)
    assert stats["acc"] == 1.0
    ce = torch.nn.functional.cross_entropy
    reweighted, _ = loss_and_stats(log_pxy, logits, y, "reweighted", 0.5, 10)
    assert reweighted.item() == pytest.approx(base.item() + 0.5 * ce(log_pxy, y).item())
    split, _ = loss_and_stats(log_pxy, logits, y, "split", 0.5, 10)
    assert split.item() == pytest.approx(base.item() + 0.5 * ce(logits, y).item())
    with pytest.raises(ValueError, match="allowed values: base, reweighted, split"):
        loss_and_stats(log_pxy, logits, y, "bayes", 1.0, 10)
