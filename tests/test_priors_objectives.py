"""Priors give log p(z|y) for all classes in one call; losses and bits/dim."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from studylib.measure.evaluate import bits_per_dim
from studylib.models.priors import ClassGaussianPrior, SplitPrior, dct_matrix
from studylib.training.objectives import loss_and_stats


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
    both, logits = prior.scores(z)
    assert torch.equal(both, all_classes)
    assert torch.allclose(logits[:, 0] - logits[:, 1], (zs[:, 0] - zs[:, 1]) / sigma**2, atol=1e-5)


def test_lowpass_readout_is_an_exact_rotation_whose_logits_see_the_whole_map():
    head = (3, 4, 4)  # the last level's map, first in z; 12 more coordinates follow
    corner = _randomised(SplitPrior(60, 4))
    lowpass = SplitPrior(60, 4, readout="lowpass", head=head)
    lowpass.load_state_dict(corner.state_dict(), strict=False)
    dct = dct_matrix(4)
    assert torch.allclose(dct @ dct.T, torch.eye(4), atol=1e-6)
    z = torch.randn(5, 60)
    rotated = torch.cat([(dct @ z[:, :48].reshape(5, 3, 4, 4) @ dct.T).permute(0, 2, 3, 1).flatten(1), z[:, 48:]], 1)
    # unit Jacobian: the lowpass density of z is the corner density of the rotated z
    assert torch.allclose(lowpass.log_prob(z), corner.log_prob(rotated), atol=1e-4)
    # its logits are the channels' means (DC) then their first cosines: every pixel counts
    zs = rotated[:, :4]
    assert torch.allclose(zs[:, :3], z[:, :48].reshape(5, 3, 16).sum(-1) / 4, atol=1e-5)
    bottom_right = torch.zeros(1, 60)
    bottom_right[0, 15] = 1.0  # channel 0, last pixel of the map
    assert torch.equal(corner.scores(bottom_right)[1], corner.scores(torch.zeros(1, 60))[1])
    assert not torch.allclose(lowpass.scores(bottom_right)[1], lowpass.scores(torch.zeros(1, 60))[1])


@pytest.mark.parametrize(
    "cls, options",
    [(ClassGaussianPrior, {}), (SplitPrior, {}), (SplitPrior, {"readout": "lowpass", "head": (2, 2, 2)})],
)
def test_prior_samples_come_from_the_requested_class(cls, options):
    torch.manual_seed(0)
    prior = _randomised(cls(12, 3, **options))
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


def _reference_log_prob(prior: ClassGaussianPrior, y: int, z: torch.Tensor) -> torch.Tensor:
    """Class y's per-coordinate log-density written with torch.distributions."""
    from torch.distributions import Cauchy, Laplace

    kinds = {"gaussian": Normal, "laplace": Laplace, "cauchy": Cauchy}
    first, _, second = prior.family.partition("+")
    loc = prior.mean[y]
    log_p = kinds[first](loc, prior.log_std[y].exp()).log_prob(z)
    if second:  # the same location, its own scale, a learned weight per coordinate
        weight = torch.sigmoid(prior.mix_logit[y])
        other = kinds[second](loc, prior.log_scale2[y].exp()).log_prob(z)
        log_p = torch.logaddexp(weight.log() + log_p, (1 - weight).log() + other)
    return log_p


@pytest.mark.parametrize("family", ["gaussian", "laplace", "cauchy", "gaussian+laplace", "gaussian+cauchy"])
def test_robust_priors_match_torch_distributions_one_class_at_a_time(family):
    prior = _randomised(ClassGaussianPrior(20, 4, family))
    z = 2 * torch.randn(6, 20)
    all_classes = prior.log_prob(z)
    for y in range(4):
        expected = _reference_log_prob(prior, y, z).sum(1)
        torch.testing.assert_close(all_classes[:, y], expected, atol=1e-4, rtol=1e-5)
    samples = prior.sample(torch.tensor([0, 1, 2, 3] * 50), temperature=1.0)
    assert samples.shape == (200, 20) and torch.isfinite(samples).all()


def test_robust_prior_samples_have_the_right_spread():
    torch.manual_seed(0)
    prior = ClassGaussianPrior(1, 1, "laplace")
    draws = prior.sample(torch.zeros(20_000, dtype=torch.long)).squeeze(1)
    assert draws.abs().mean().item() == pytest.approx(1.0, abs=0.03)  # E|Laplace(0, 1)| = 1
    prior = ClassGaussianPrior(1, 1, "cauchy")
    draws = prior.sample(torch.zeros(20_000, dtype=torch.long)).squeeze(1)
    assert draws.abs().median().item() == pytest.approx(1.0, abs=0.05)  # median |Cauchy(0, 1)| = 1


def test_label_smoothing_marginalises_the_latent_cluster():
    eps = 0.1
    plain = _randomised(ClassGaussianPrior(8, 3))
    smooth = ClassGaussianPrior(8, 3, smoothing=eps)
    smooth.load_state_dict(plain.state_dict(), strict=False)
    z = torch.randn(5, 8)
    p = plain.log_prob(z).exp().double()
    weights = torch.full((3, 3), eps / 2, dtype=torch.float64).fill_diagonal_(1 - eps)
    torch.testing.assert_close(smooth.log_prob(z).double(), (p @ weights.T).log(), rtol=1e-4, atol=1e-4)
    # a confident mistake costs at most log(eps / (C - 1)) more than the best class
    far = plain.mean[0].detach()[None] + 0.0
    gap = smooth.log_prob(far).max() - smooth.log_prob(far)
    assert gap.max().item() <= -math.log(eps / 2) + 1e-4


@pytest.mark.parametrize(
    "kwargs, message",
    [({"family": "student"}, "unknown prior family"), ({"smoothing": 1.0}, "label smoothing must be")],
)
def test_bad_prior_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClassGaussianPrior(4, 3, **kwargs)
    with pytest.raises(ValueError, match="unknown split readout 'centre'"):
        SplitPrior(20, 4, readout="centre", head=(1, 4, 4))
    with pytest.raises(ValueError, match="needs the last level's map"):
        SplitPrior(20, 4, readout="lowpass", head=(1, 1, 1))
