"""Linear flows x = W z + b, z ~ N(0, I), and their exact adversarial attacks and training
(Pope, Balaji & Feizi 2019, derived here from the abstract).

x ~ N(b, Σ) with Σ = W Wᵀ, and -log p(x) = ½ (x-b)ᵀ Σ⁻¹ (x-b) + ½ log det(2πΣ). Raising it
by a perturbation ‖δ‖ ≤ ε maximises a convex quadratic over a ball: a trust-region problem,
solved exactly in Σ's eigenbasis from a one-dimensional secular equation. Everything is
computed in float64."""

from __future__ import annotations

import math

import torch

ATTACKS = ("universal", "sample")


class LinearFlow:
    """x = W z + b with W = V diag(√s) (Σ = V diag(s) Vᵀ); `mean` is b, `cov` is Σ."""

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor) -> None:
        self.mean = mean.double()
        self.cov = ((cov + cov.T) / 2).double()
        self.variances, self.directions = torch.linalg.eigh(self.cov)  # ascending variances
        if not self.variances[0] > 0:
            raise ValueError(
                f"the covariance must be positive definite (smallest eigenvalue {self.variances[0].item():.3g}); "
                "add shrinkage or reduce the dimension"
            )

    @classmethod
    def fit(cls, x: torch.Tensor, shrinkage: float = 0.0) -> LinearFlow:
        """The maximum-likelihood fit of (N, D) data: the sample mean and the (1/N) sample
        covariance, plus `shrinkage` x I where the data do not span every direction."""
        x = _rows(x)
        centred = x - x.mean(0)
        return cls(x.mean(0), centred.T @ centred / len(x) + shrinkage * torch.eye(x.shape[1], dtype=x.dtype))

    @property
    def dims(self) -> int:
        return len(self.mean)

    @property
    def weight(self) -> torch.Tensor:
        """W with W Wᵀ = Σ (the symmetric choice is one of many; the density is the same)."""
        return self.directions * self.variances.sqrt()

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """-log p(x) in nats for each row of (N, D) `x`."""
        coords = (_rows(x) - self.mean) @ self.directions
        log_det = self.variances.log().sum()
        return 0.5 * ((coords**2 / self.variances).sum(1) + log_det + self.dims * math.log(2 * math.pi))

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """n draws x = W z + b (seeded)."""
        z = torch.randn(n, self.dims, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        return z @ self.weight.T + self.mean


def _rows(x: torch.Tensor) -> torch.Tensor:
    if x.ndim != 2:
        raise ValueError(f"expected data of shape (N, D), got {tuple(x.shape)}")
    return x.double()


def _check_eps(eps: float) -> None:
    if not (isinstance(eps, int | float) and eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")


def optimal_attack(flow: LinearFlow, x: torch.Tensor, eps: float, iterations: int = 200) -> torch.Tensor:
    """(N, D) perturbations δ, ‖δ‖₂ ≤ eps, each the exact maximiser of nll(x + δ) for its row.

    With u = x - b in Σ's eigenbasis and a = 1/s the precisions, the maximiser lies on the
    sphere and solves (λ - a_i) δ_i = a_i u_i with λ > a_max and ‖δ‖ = eps: λ is the root of
    the secular equation Σ (a_i u_i)² / (λ - a_i)² = eps², found by bisection. In the hard
    case (u has no component along the weakest direction, the smallest variance, and the
    other components cannot use up the budget) λ = a_max and the rest of the budget goes
    along that direction."""
    _check_eps(eps)
    x = _rows(x)
    if x.shape[1] != flow.dims:
        raise ValueError(f"x has {x.shape[1]} dimensions, the flow {flow.dims}")
    a = 1 / flow.variances  # precisions, descending
    u = (x - flow.mean) @ flow.directions
    if eps == 0:
        return torch.zeros_like(x)
    gap = a[0] - a  # >= 0; zero on the weakest direction's eigenspace
    top = gap <= a[0] * 1e-9
    g = a * u  # the gradient of ½ uᵀAu in the eigenbasis

    def norm_sq(mu: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:  # ‖δ‖² at λ = a_max + mu
        return (grad / (mu[:, None] + gap)).pow(2).sum(1)

    rest = torch.where(top, 0.0, g) / torch.where(top, 1.0, gap)  # δ off v_min's eigenspace at mu = 0
    hard = (g[:, top].norm(dim=1) <= 1e-12 * g.norm(dim=1)) & (rest.pow(2).sum(1) <= eps**2)
    # ‖δ‖ falls as mu grows; bisect log(mu) between e^-700 and ‖g‖ e / eps (where ‖δ‖ < eps).
    low = torch.full_like(u[:, 0], -700.0)
    high = (g.norm(dim=1) / eps).clamp_min(1e-300).log() + 1
    for _ in range(iterations):
        mid = (low + high) / 2
        big = norm_sq(mid.exp(), g) > eps**2
        low, high = torch.where(big, mid, low), torch.where(big, high, mid)
    delta = g / (high.exp()[:, None] + gap)
    if hard.any():  # λ = a_max: the other directions as at the limit, the rest of eps along v_min
        slack = (eps**2 - rest[hard].pow(2).sum(1)).clamp_min(0).sqrt()
        along = top.double() / math.sqrt(int(top.sum()))
        delta[hard] = rest[hard] + slack[:, None] * along
    return delta @ flow.directions.T


def universal_attack(flow: LinearFlow, eps: float, x: torch.Tensor | None = None) -> torch.Tensor:
    """(D,) the single δ, ‖δ‖₂ ≤ eps, that most raises the mean NLL of `x` (by default the
    flow's own fitted distribution). The mean increase is ½(ū+δ)ᵀA(ū+δ) - ½ūᵀAū with ū the
    data mean minus b, the sample problem for one row ū: for the fitted data ū = 0 and δ
    lies along the direction of least variance, ±eps v_min."""
    centre = flow.mean if x is None else _rows(x).mean(0)
    return optimal_attack(flow, centre[None], eps)[0]


def worst_case_nll(flow: LinearFlow, x: torch.Tensor, eps: float, attack: str = "sample") -> torch.Tensor:
    """(N,) NLL of each row after the `attack` (sample-specific, or one universal δ for all)."""
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; allowed values: {', '.join(ATTACKS)}")
    x = _rows(x)
    delta = optimal_attack(flow, x, eps) if attack == "sample" else universal_attack(flow, eps, x)
    return flow.nll(x + delta)


def adversarial_fit(
    x: torch.Tensor, eps: float, attack: str = "universal", steps: int = 300, shrinkage: float = 0.0
) -> LinearFlow:
    """The linear flow minimising the worst-case mean NLL of `x` under `attack` within eps.

    Universal attack, closed form: b is the data mean, Σ keeps the data covariance's
    eigenvectors, and its eigenvalues c_i below a floor t are raised to t, where
    t = (eps² + Σ_{c_i<t} c_i) / k for the k raised ones: water-filling that adds eps² of
    variance in total to the weakest directions. Sample-specific attack: no closed form;
    L-BFGS over (b, Cholesky factor of Σ) from the clean fit, the inner maximisation exact
    (`optimal_attack`, whose maximiser's gradient is the max's gradient by Danskin)."""
    _check_eps(eps)
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; allowed values: {', '.join(ATTACKS)}")
    clean = LinearFlow.fit(x, shrinkage)
    if attack == "universal":
        return LinearFlow(clean.mean, _water_fill(clean, eps))
    x = _rows(x)
    mean = clean.mean.clone().requires_grad_(True)
    chol = torch.linalg.cholesky(clean.cov)
    diag = chol.diagonal().log().clone().requires_grad_(True)
    lower = torch.tril(chol, -1).clone().requires_grad_(True)
    opt = torch.optim.LBFGS([mean, diag, lower], lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def factor() -> torch.Tensor:
        return torch.tril(lower, -1) + torch.diag(diag.exp())

    def robust_loss() -> torch.Tensor:
        opt.zero_grad()
        L = factor()
        with torch.no_grad():
            delta = optimal_attack(LinearFlow(mean.detach(), L.detach() @ L.detach().T), x, eps)
        r = torch.linalg.solve_triangular(L, (x + delta - mean).T, upper=False)
        loss = 0.5 * (r.pow(2).sum(0).mean() + 2 * diag.sum() + len(mean) * math.log(2 * math.pi))
        loss.backward()
        return loss

    opt.step(robust_loss)
    with torch.no_grad():
        L = factor()
        return LinearFlow(mean.detach(), L @ L.T)


def _water_fill(flow: LinearFlow, eps: float) -> torch.Tensor:
    """Σ with the eigenvalues of `flow`'s covariance below the floor t raised to t."""
    c = flow.variances  # ascending
    totals = torch.cumsum(c, 0)
    k = torch.arange(1, len(c) + 1, dtype=c.dtype)
    floors = (eps**2 + totals) / k
    upper = torch.cat([c[1:], torch.tensor([math.inf], dtype=c.dtype)])
    valid = (floors >= c) & (floors <= upper)
    t = floors[int(torch.nonzero(valid)[0])]
    return flow.directions @ torch.diag(torch.maximum(c, t)) @ flow.directions.T
