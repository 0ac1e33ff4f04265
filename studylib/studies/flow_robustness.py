"""Chapter 07: the companion paper (Pope, Balaji & Feizi 2019). Linear flows: the exact
attacks, adversarial training and its trade-off, on a 2-D toy set and on PCA-reduced MNIST."""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from studylib import data
from studylib.chapter import Params
from studylib.linear_flow import LinearFlow, adversarial_fit, optimal_attack, universal_attack, worst_case_nll
from studylib.progress import bar


@dataclass(frozen=True)
class LinearSizes:
    """How much of MNIST the linear study uses: training and test images, PCA dimensions,
    the L2 budgets, and L-BFGS iterations for the sample-specific adversarial fit."""

    train: int
    test: int
    dims: int
    eps: tuple[float, ...]
    fit_steps: int


_SIZES = {
    "smoke": LinearSizes(1000, 500, 10, (0.0, 1.0, 2.0), 20),
    "quick": LinearSizes(10_000, 2000, 50, (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0), 100),
    "paper": LinearSizes(60_000, 10_000, 100, (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0), 200),
}
FITS = ("clean", "universal", "sample")  # which attack each fit was trained against


def linear_sizes(profile: str) -> LinearSizes:
    """The linear study's sizes at a profile."""
    return _SIZES[profile]


def toy_data(n: int = 400, seed: int = 0) -> torch.Tensor:
    """(n, 2) points from an elongated, rotated Gaussian: variances 4 and 0.16 at 30°."""
    angle = math.radians(30)
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    flow = LinearFlow(torch.tensor([1.0, 0.5]), rotation @ torch.diag(torch.tensor([4.0, 0.16])) @ rotation.T)
    return flow.sample(n, seed)


def fits(x: torch.Tensor, eps: float, steps: int = 100) -> dict[str, LinearFlow]:
    """The clean maximum-likelihood fit and the adversarial fits against each attack."""
    return {
        "clean": LinearFlow.fit(x),
        "universal": adversarial_fit(x, eps, "universal"),
        "sample": adversarial_fit(x, eps, "sample", steps=steps),
    }


def _ellipse(ax, flow: LinearFlow, radius: float, **style) -> None:
    t = torch.linspace(0, 2 * math.pi, 200, dtype=torch.float64)
    circle = torch.stack([t.cos(), t.sin()], 1) * radius
    points = circle @ flow.weight.T + flow.mean
    ax.plot(points[:, 0], points[:, 1], **style)


def toy_figure(x: torch.Tensor, eps: float, models: dict[str, LinearFlow], arrows: int = 14):
    """Left: the clean fit's 1- and 2-sigma ellipses, sample-specific attacks as arrows, the
    universal perturbation from the mean. Right: the clean and adversarially trained ellipses."""
    clean = models["clean"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    ax = axes[0]
    ax.scatter(x[:, 0], x[:, 1], s=4, color="grey", alpha=0.5)
    for r in (1, 2):
        _ellipse(ax, clean, r, color="C0")
    some = x[torch.linspace(0, len(x) - 1, arrows).long()]
    delta = optimal_attack(clean, some, eps)
    ax.quiver(*some.T, *delta.T, angles="xy", scale_units="xy", scale=1, color="C3", width=0.004)
    u = universal_attack(clean, eps)
    ax.quiver(*clean.mean, *u, angles="xy", scale_units="xy", scale=1, color="C2", width=0.008)
    ax.set(title=f"clean fit; attacks with eps = {eps:g} (red: per point, green: universal)", aspect="equal")
    ax = axes[1]
    ax.scatter(x[:, 0], x[:, 1], s=4, color="grey", alpha=0.5)
    for (name, flow), color in zip(models.items(), ("C0", "C2", "C3"), strict=True):
        _ellipse(ax, flow, 2, color=color, label=f"{name} fit (2 sigma)")
    ax.set(title="adversarial training widens the ellipse", aspect="equal")
    ax.legend(fontsize="small")
    for ax in axes:
        ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def mnist_pca(params: Params, sizes: LinearSizes) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, test, basis): MNIST images (dequantised, in [-0.5, 0.5]) projected onto the
    `sizes.dims` leading principal directions of the training images; basis is (784, dims).
    An L2 perturbation within that subspace has the same norm in pixel space."""
    train = data.load("mnist", "train", subset=sizes.train, seed=params.seed).tensors()[0].flatten(1).double()
    test = data.load("mnist", "test", subset=sizes.test, seed=params.seed).tensors()[0].flatten(1).double()
    centre = train.mean(0)
    _, _, v = torch.linalg.svd(train - centre, full_matrices=False)
    basis = v[: sizes.dims].T
    return (train - centre) @ basis, (test - centre) @ basis, basis


def tradeoff(train: torch.Tensor, test: torch.Tensor, eps_grid: tuple[float, ...], steps: int) -> list[dict]:
    """For each eps: every fit's mean test NLL (nats per image), clean and under both attacks
    at that eps, and its covariance spectrum."""
    rows = []
    for eps in bar(eps_grid, desc="adversarial fits"):
        for name, flow in fits(train, eps, steps).items():
            rows.append(
                {
                    "eps": eps,
                    "fit": name,
                    "clean": flow.nll(test).mean().item(),
                    "universal": worst_case_nll(flow, test, eps, "universal").mean().item(),
                    "sample": worst_case_nll(flow, test, eps, "sample").mean().item(),
                    "variances": flow.variances.tolist(),
                }
            )
    return rows


def tradeoff_text(rows: list[dict]) -> str:
    """Mean test NLL (nats per image) of each fit: clean, and under each attack at its eps."""
    lines = [f"{'eps':>5} {'fit':>10} {'clean NLL':>10} {'universal':>10} {'sample':>10}"]
    for r in rows:
        lines.append(f"{r['eps']:>5g} {r['fit']:>10} {r['clean']:>10.2f} {r['universal']:>10.2f} {r['sample']:>10.2f}")
    return "\n".join(lines)


def tradeoff_figure(rows: list[dict]):
    """Left: clean NLL against the worst-case NLL under the sample attack, one point per eps
    and fit. Right: the covariance spectra of the fits at the largest eps."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for fit, marker in zip(FITS, "os^", strict=True):
        mine = [r for r in rows if r["fit"] == fit]
        axes[0].plot([r["clean"] for r in mine], [r["sample"] for r in mine], marker + "-", label=f"{fit} fit")
        for r in mine:
            axes[0].annotate(
                f"{r['eps']:g}", (r["clean"], r["sample"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
    axes[0].set(xlabel="clean test NLL (nats per image)", ylabel="NLL under the sample attack", title="labels: eps")
    axes[0].legend(fontsize="small")
    largest = max(r["eps"] for r in rows)
    for r in rows:
        if r["eps"] == largest:
            axes[1].semilogy(np.arange(1, len(r["variances"]) + 1), r["variances"], label=f"{r['fit']} fit")
    axes[1].set(
        xlabel="eigenvalue rank (ascending)", ylabel="variance", title=f"spectrum of the fits at eps = {largest:g}"
    )
    axes[1].legend(fontsize="small")
    for ax in axes:
        ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def spectrum_change(rows: list[dict], eps: float) -> str:
    """Which directions adversarial training moves at `eps`: the variances it raises (how
    many, from what to what) and the share of the total variance it adds."""
    by_fit = {r["fit"]: torch.tensor(r["variances"]) for r in rows if r["eps"] == eps}
    clean = by_fit["clean"]
    lines = []
    for fit in ("universal", "sample"):
        adv = by_fit[fit]
        raised = adv > clean * 1.01
        lines.append(
            f"{fit} fit at eps = {eps:g}: {int(raised.sum())} of {len(clean)} variances raised by more than 1 % "
            f"(the smallest from {clean[0].item():.3g} to {adv[0].item():.3g}); total variance "
            f"+{(adv.sum() / clean.sum() - 1).item():.1%}"
        )
    return "\n".join(lines)


def claims(rows: list[dict], data_name: str) -> list[dict]:
    """Ledger rows: at each eps > 0, the robust fit's worst-case NLL gain and its clean cost."""
    from studylib.ledger import claim

    out = []
    for eps in sorted({r["eps"] for r in rows if r["eps"] > 0}):
        at = {r["fit"]: r for r in rows if r["eps"] == eps}
        clean, robust = at["clean"], at["sample"]
        out.append(
            claim(
                f"linear flow, {data_name}, eps {eps:g}: sample-attack NLL clean fit -> robust fit",
                f"{clean['sample']:.1f} -> {robust['sample']:.1f}",
                "trade-off (abstract)",
                "nats",
                f"clean NLL {clean['clean']:.1f} -> {robust['clean']:.1f}",
            )
        )
    return out
