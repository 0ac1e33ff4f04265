"""Chapter 01: the annulus counter-example's figures and tables. The derivations and
numbers are the `studylib.theory` component's, re-exported here as `annulus` and
`symbolic` so the chapter imports one study module."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from studylib.book.ledger import directional
from studylib.book.tables import Table
from studylib.measure.uncertainty import wilson
from studylib.sizes import sizes
from studylib.theory import annulus
from studylib.theory import annulus_symbolic as symbolic

__all__ = [
    "annulus",
    "symbolic",
    "table",
    "plot_construction_2d",
    "plot_dimension_scaling",
    "plot_attack",
    "proposition_claims",
    "monte_carlo_sizes",
    "regularity",
    "regularity_claims",
    "regularity_table",
]


def monte_carlo_sizes(profile: str) -> tuple[int, int]:
    """A profile's draws per KL estimate and attacked points per case."""
    return sizes(profile).monte_carlo


def table(rows: list[dict]) -> Table:
    """The chapter's tables (one dict per row), rendered as tables in the book."""
    return Table.from_records(rows)


def plot_construction_2d(points: np.ndarray, labels: np.ndarray, Delta: float, arrows: int = 25) -> plt.Figure:
    """A 2-d sample of the data p (the paper's Figure 2) with the attack drawn as arrows on a few class-0 points
    of the shell 1 < |x| <= 1 + Delta."""
    moved, attacked = annulus.attack(points, labels, Delta)
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    palette = sns.color_palette(n_colors=2)
    for y in (0, 1):
        ax.scatter(*points[labels == y].T, s=4, alpha=0.5, color=palette[y], label=f"class {y}")
    for radius in (1.0, 1.0 + Delta, 2.0, 3.0):
        ax.add_patch(plt.Circle((0, 0), radius, fill=False, lw=0.8, ls="--", color="grey"))
    for start, end in list(zip(points[attacked], moved[attacked], strict=True))[:arrows]:
        ax.annotate("", end, start, arrowprops={"arrowstyle": "->", "color": "crimson", "lw": 1.0})
    ax.set(aspect="equal", xlim=(-3.2, 3.2), ylim=(-3.2, 3.2), title="data p in d = 2; attack in red")
    ax.legend(loc="upper right", markerscale=3)
    return fig


def plot_dimension_scaling(sweeps: dict[str, dict[str, np.ndarray]], fixed: dict[str, str]) -> plt.Figure:
    """For each sweep (from annulus.dimension_sweep, keyed by its x-axis label): d_min with the exact real
    threshold and the leading-order formula over it (log-log), and below both formulas' relative errors."""
    fig, axes = plt.subplots(2, len(sweeps), figsize=(5.5 * len(sweeps), 7), sharex="col", squeeze=False)
    for (label, sweep), (top, bottom) in zip(sweeps.items(), axes.T, strict=True):
        x = sweep["values"]
        top.loglog(x, sweep["d_min"], "o", ms=4, label="$d_{min}$ (exact search)")
        top.loglog(x, sweep["real"], "-", label="real threshold (Lambert W)")
        top.loglog(
            x,
            sweep["asymptotic"],
            "--",
            label=r"$(2\log\frac{1-\delta}{\delta} + \log\frac{1}{\epsilon})/\log(1+\Delta)$",
        )
        top.set(ylabel="dimension", title=fixed[label])
        for key, style, name in (("real", "-", "real threshold"), ("asymptotic", "--", "leading order")):
            bottom.loglog(x, np.abs(sweep[key] - sweep["d_min"]) / sweep["d_min"], style, label=name)
        bottom.loglog(x, 1 / sweep["d_min"], ":", color="grey", label="$1/d_{min}$ (rounding up)")
        bottom.set(xlabel=label, ylabel="|formula - $d_{min}$| / $d_{min}$")
        top.legend(fontsize=8)
        bottom.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_attack(points: np.ndarray, labels: np.ndarray, lam1: float, lam2: float, Delta: float) -> plt.Figure:
    """Left: the radii of class-0 points before and after the attack. Right: the share of the sample at each
    level of the model density q(x), before and after: the attacked points land on the highest level."""
    d = points.shape[1]
    moved, attacked = annulus.attack(points, labels, Delta)
    radius, radius_moved = np.linalg.norm(points, axis=1), np.linalg.norm(moved, axis=1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    bins = np.linspace(min(radius[labels == 0].min(), 1 - Delta), 1 + Delta, 60)
    left.hist(radius[labels == 0], bins=bins, alpha=0.6, label="class 0, before")
    left.hist(radius_moved[labels == 0], bins=bins, alpha=0.6, label="class 0, after")
    for edge in (1.0, 1.0 + Delta):
        left.axvline(edge, color="grey", ls="--", lw=0.8)
    left.set(xlabel="|x|", ylabel="count", title=f"d = {d}: shell points moved just inside the unit ball")
    left.legend()
    regions = {"|x| <= 1": (0.0, 1.0), "1 < |x| <= 1+Delta": (1.0, 1.0 + Delta), "2 < |x| <= 3": (2.0, 3.0)}
    mids = np.array([(a + b) / 2 for a, b in regions.values()])
    levels = annulus.log_marginal("q", mids, d, lam1, lam2, Delta)
    width = 0.4
    for shift, r, name in ((-width / 2, radius, "before"), (width / 2, radius_moved, "after")):
        shares = [((r > a) & (r <= b)).mean() for a, b in regions.values()]
        right.bar(np.arange(len(regions)) + shift, shares, width=width, label=name)
    ticks = [f"{name}\nlog q {level - levels[1]:+.3g}" for name, level in zip(regions, levels, strict=True)]
    right.set_xticks(np.arange(len(regions)), ticks)
    right.set(ylabel="share of the sample", title="model density q(x) by region (log q relative to the shell)")
    right.legend()
    fig.tight_layout()
    return fig


PROPOSITION = "Proposition 1 (appendix D): KL(q||p) < eps, KL(p||q) < eps, but with probability greater then 1/3"


def proposition_claims(check: annulus.PropositionCheck, n_points: int, n_kl: int) -> list[dict]:
    """Proposition 1's claims on one realised construction, each a directional claim whose
    measured margin is positive when the claim holds: the share of samples attacked over 1/3
    (a rate, Wilson's interval), the worst wrong-class confidence over 1 - delta, Delta over
    the largest move, the smallest rise of log q (exact over the drawn points: a point
    interval), and eps over each KL (Monte Carlo mean +- 1.96 standard errors)."""
    a = check.attack
    k = round(a.fraction_attacked * n_points)
    rate, low, high = wilson(k, n_points)
    where = f"eps = {check.eps}, delta = {check.delta}, Delta = {check.Delta}, d = {check.d}"
    drawn = {"n": n_points, "of": "points drawn from p", "source": PROPOSITION, "note": where}
    exact = {**drawn, "method": "extreme over the drawn points (exact given the draw)"}
    claims = [
        directional(
            "share of samples attacked, above 1/3",
            rate - 100 / 3,
            (low - 100 / 3, high - 100 / 3),
            method="Wilson",
            statement="with probability greater than 1/3 over x ~ p there is an adversarial example",
            unit="points",
            **drawn,
        ),
        directional(
            "worst wrong-class confidence q(1|x') above 1 - delta",
            *_point(a.min_wrong_confidence - (1 - check.delta)),
            statement="the model predicts the wrong class with confidence at least 1 - delta",
            **exact,
        ),
        directional(
            "Delta minus the largest move |x' - x|",
            *_point(check.Delta - a.max_move),
            statement="the adversarial example lies within Delta of x",
            **exact,
        ),
        directional(
            "smallest rise of log q from x to x'",
            *_point(a.min_log_q_gain),
            statement="the adversarial example is not detectable: q(x') is at least q(x)",
            unit="nats",
            **exact,
        ),
    ]
    for name, (mean, se) in (("KL(p||q)", check.kl_data_model_mc), ("KL(q||p)", check.kl_model_data_mc)):
        claims.append(
            directional(
                f"eps minus {name}",
                check.eps - mean,
                (check.eps - mean - 1.96 * se, check.eps - mean + 1.96 * se),
                n=n_kl,
                of="Monte Carlo draws",
                method="Monte Carlo mean +- 1.96 standard errors",
                statement=f"{name} < eps",
                unit="nats",
                source=PROPOSITION,
                note=f"{where}; exact {name} = {getattr(check, _EXACT[name]):.4g}",
            )
        )
    return claims


_EXACT = {"KL(p||q)": "kl_data_model", "KL(q||p)": "kl_model_data"}

CONDITIONS = (
    "Appendix D, conditions 6 and 7: for Delta < 1 the probability in any Delta radius ball can be made as "
    "small as desired; the total variation of the distribution can be made as small as desired"
)
GROWTH = (1, 2, 10)  # the construction realised at these multiples of its smallest dimension


def regularity(eps: float, delta: float, Delta: float) -> list[dict]:
    """Appendix D's conditions 6 and 7 on the construction realised at 1, 2 and 10 times its
    smallest dimension (lam1, lam2 re-chosen for each d): the log10 of a bound on the mass p
    puts in any ball of radius Delta, and the total variation of p(x), the integral of its
    gradient's norm (both closed forms, `annulus.log_ball_mass_bound`, `annulus.total_variation`)."""
    d_min = annulus.min_dimension(eps, delta, Delta)
    rows = []
    for k in GROWTH:
        d, lam1, lam2 = annulus.construction(eps, delta, Delta, k * d_min)
        rows.append(
            {
                "d": d,
                "log10_ball_mass": annulus.log_ball_mass_bound(d, lam1, lam2, Delta) / math.log(10),
                "total_variation": annulus.total_variation(d, lam1, lam2, Delta),
            }
        )
    return rows


def regularity_table(rows: list[dict]) -> tuple[Table, dict[str, str]]:
    """Conditions 6 and 7 per dimension as a table, and the figures the prose quotes
    (`chapter.glue`): the dimensions, the mass bound's decades and the total variation at the
    smallest and the largest."""
    body = [(r["d"], f"{r['log10_ball_mass']:.0f}", f"{r['total_variation']:.1f}") for r in rows]
    table = Table(("d", "log10 of the largest mass in a Delta-ball (bound)", "total variation of p(x)"), body)
    first, last = rows[0], rows[-1]
    told = {
        "reg_d": str(first["d"]),
        "reg_d10": str(last["d"]),
        "reg_mass": f"{-first['log10_ball_mass']:.0f}",
        "reg_mass10": f"{-last['log10_ball_mass']:.0f}",
        "reg_tv": f"{first['total_variation']:.1f}",
        "reg_tv10": f"{last['total_variation']:.1f}",
        "reg_tv_per_d": f"{last['total_variation'] / last['d']:.3f}",
    }
    return table, told


def regularity_claims(rows: list[dict], eps: float, delta: float, Delta: float) -> list[dict]:
    """Conditions 6 and 7 as exact checks, each positive when the quantity shrinks from the
    smallest dimension to ten times it, as "can be made as small as desired" needs."""
    first, last = rows[0], rows[-1]
    where = f"eps = {eps}, delta = {delta}, Delta = {Delta}; d = {first['d']} and {last['d']}"
    exact = {"n": 2, "of": "dimensions", "method": "exact (closed form)", "source": CONDITIONS, "note": where}
    return [
        directional(
            f"log10 of the largest mass in a Delta-ball, at d = {first['d']} minus at {last['d']}",
            *_point(first["log10_ball_mass"] - last["log10_ball_mass"]),
            statement="the probability in any Delta radius ball can be made as small as desired",
            unit="decades",
            **exact,
        ),
        directional(
            f"total variation of p(x), at d = {first['d']} minus at {last['d']}",
            *_point(first["total_variation"] - last["total_variation"]),
            statement="the total variation of the distribution can be made as small as desired",
            **exact,
        ),
    ]


def _point(value: float) -> tuple[float, tuple[float, float]]:
    return value, (value, value)
