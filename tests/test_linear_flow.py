"""Linear flows: the closed-form fit, the exact attacks against brute force and projected
gradient ascent, and adversarial training (closed form against a numerical optimiser)."""

from __future__ import annotations

import math

import pytest
import torch

from studylib.attacks.pgd import pgd
from studylib.models.linear_flow import LinearFlow, adversarial_fit, optimal_attack, universal_attack, worst_case_nll


def _flow(dims: int, seed: int = 0) -> LinearFlow:
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(dims, dims, generator=gen, dtype=torch.float64)
    return LinearFlow(torch.randn(dims, generator=gen, dtype=torch.float64), w @ w.T / dims + 0.05 * torch.eye(dims))


def test_closed_form_fit_matches_gradient_descent_on_the_nll():
    data = _flow(3).sample(400, seed=1)
    fitted = LinearFlow.fit(data)
    mean = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    raw = torch.eye(3, dtype=torch.float64).requires_grad_(True)
    opt = torch.optim.Adam([mean, raw], lr=0.05)
    for _ in range(1500):
        w = torch.tril(raw)
        nll = -torch.distributions.MultivariateNormal(mean, scale_tril=w).log_prob(data).mean()
        opt.zero_grad()
        nll.backward()
        opt.step()
    w = torch.tril(raw).detach()
    torch.testing.assert_close(mean.detach(), fitted.mean, atol=1e-4, rtol=0)
    torch.testing.assert_close(w @ w.T, fitted.cov, atol=1e-4, rtol=0)
    assert fitted.nll(data).mean().item() <= nll.item() + 1e-9
    torch.testing.assert_close(fitted.weight @ fitted.weight.T, fitted.cov)
    reference = torch.distributions.MultivariateNormal(fitted.mean, fitted.cov).log_prob(data)
    torch.testing.assert_close(fitted.nll(data), -reference)


@pytest.mark.parametrize(
    "x, eps",
    [
        ([0.3, 1.0], 0.5),  # the easy case
        ([0.0, 1.0], 0.5),  # u orthogonal to the weakest direction, budget used up off it
        ([0.0, 1.0], 2.0),  # the hard case: λ = a_max, the rest of eps along v_min
        ([0.0, 0.0], 1.0),  # x at the mean
    ],
)
def test_exact_attack_matches_brute_force_on_the_circle(x, eps):
    flow = LinearFlow(torch.zeros(2), torch.diag(torch.tensor([1.0, 4.0])))
    x = torch.tensor([x], dtype=torch.float64)
    angle = torch.linspace(0, 2 * math.pi, 100_001, dtype=torch.float64)
    circle = torch.stack([angle.cos(), angle.sin()], 1)
    delta = optimal_attack(flow, x, eps)
    assert delta.norm().item() == pytest.approx(eps)
    assert flow.nll(x + delta).item() >= flow.nll(x + eps * circle).max().item() - 1e-9


def test_exact_attack_matches_brute_force_on_the_sphere_in_3d():
    flow, x = _flow(3), _flow(3, seed=5).sample(4)
    points = torch.randn(200_000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    sphere = points / points.norm(dim=1, keepdim=True)
    best = torch.stack([flow.nll(row + 0.7 * sphere).max() for row in x])
    ours = flow.nll(x + optimal_attack(flow, x, 0.7))
    assert (ours >= best - 1e-9).all() and (ours - best).max() < 1e-3  # the grid comes close


def test_exact_attack_is_never_worse_than_projected_gradient_ascent_in_60d():
    flow, eps = _flow(60), 0.8
    x = _flow(60, seed=3).sample(32)
    ascent = pgd(flow.nll, x, eps, steps=300, step_size=0.05, bounds=(-math.inf, math.inf))
    exact = flow.nll(x + optimal_attack(flow, x, eps))
    assert (exact >= flow.nll(ascent) - 1e-9).all()
    assert (exact - flow.nll(ascent)).max() < 1e-3 * exact.abs().max()  # PGD gets close here


def test_universal_attack_goes_along_the_least_variance_and_beats_every_direction():
    flow = _flow(5)
    delta = universal_attack(flow, 0.5)
    weakest = flow.directions[:, 0]
    assert delta.norm().item() == pytest.approx(0.5)
    assert abs(delta @ weakest).item() == pytest.approx(0.5)
    data = flow.sample(2000, seed=4)
    gain = worst_case_nll(flow, data, 0.5, "universal").mean() - flow.nll(data).mean()
    others = torch.randn(500, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    others = 0.5 * others / others.norm(dim=1, keepdim=True)
    assert all(gain >= flow.nll(data + d).mean() - flow.nll(data).mean() - 1e-9 for d in others)
    # the sample-specific attack, free to choose per image, does better still
    assert worst_case_nll(flow, data, 0.5).mean() > worst_case_nll(flow, data, 0.5, "universal").mean()


def _robust_universal_objective(mean, cov, data, eps):
    """Worst-case mean NLL under one universal δ (its exact inner max)."""
    flow = LinearFlow(mean, cov)
    return worst_case_nll(flow, data, eps, "universal").mean().item()


def test_universal_adversarial_fit_closed_form_matches_a_numerical_optimiser():
    data, eps = _flow(4, seed=6).sample(300, seed=2), 0.6
    closed = adversarial_fit(data, eps, "universal")
    clean = LinearFlow.fit(data)
    # the closed form: the smallest variances raised to a floor, eps² of variance added in all
    added = closed.variances - clean.variances
    assert added.sum().item() == pytest.approx(eps**2) and (added >= -1e-12).all()
    assert torch.allclose(closed.variances[added > 1e-12], closed.variances[0])
    # a numerical optimiser over (b, any Σ) of the min-max finds nothing better
    mean = clean.mean.clone().requires_grad_(True)
    raw = torch.linalg.cholesky(clean.cov).clone().requires_grad_(True)
    opt = torch.optim.Adam([mean, raw], lr=0.01)
    for _ in range(1500):
        w = torch.tril(raw)
        cov = w @ w.T
        precision_max = 1 / torch.linalg.eigvalsh(cov)[0]
        nll = -torch.distributions.MultivariateNormal(mean, scale_tril=w).log_prob(data).mean()
        robust = nll + 0.5 * eps**2 * precision_max  # the universal attack's worst case at b = mean
        opt.zero_grad()
        robust.backward()
        opt.step()
    ours = _robust_universal_objective(closed.mean, closed.cov, data, eps)
    numeric = _robust_universal_objective(mean.detach(), (w @ w.T).detach(), data, eps)
    assert ours <= numeric + 1e-6 and numeric - ours < 1e-3


def test_sample_adversarial_fit_lowers_the_worst_case_and_costs_clean_likelihood():
    data, eps = _flow(3, seed=7).sample(200, seed=3), 0.5
    clean, robust = LinearFlow.fit(data), adversarial_fit(data, eps, "sample", steps=100)
    universal = adversarial_fit(data, eps, "universal")
    worst = {name: worst_case_nll(f, data, eps).mean().item() for name, f in [("clean", clean), ("robust", robust)]}
    worst["universal"] = worst_case_nll(universal, data, eps).mean().item()
    assert worst["robust"] < worst["clean"] and worst["robust"] < worst["universal"]
    assert robust.nll(data).mean() > clean.nll(data).mean()  # the trade-off


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: optimal_attack(_flow(2), torch.zeros(3, 2), -1.0), "eps must be"),
        (lambda: optimal_attack(_flow(2), torch.zeros(3, 4), 1.0), "dimensions"),
        (lambda: LinearFlow.fit(torch.zeros(5)), "shape"),
        (lambda: LinearFlow.fit(torch.zeros(5, 3)), "positive definite"),
        (lambda: adversarial_fit(torch.randn(20, 2), 1.0, "pgd"), "unknown attack"),
    ],
)
def test_bad_input_is_one_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
