"""The annulus counter-example (Fetaya et al. 2020, section 2 and appendix D), numerically.

With U(a, b) the uniform density on the annulus {x in R^d : a < |x| <= b}, p(y) = q(y) = 1/2 and
V = (1 + Delta)^d, the data p and the model q are

    p(x|0) = lam1 U(0, 1) + (1 - lam1) U(1, 1 + Delta)      q(x|0) = U(0, 1 + Delta)
    p(x|1) = lam2 U(0, 1) + (1 - lam2) U(2, 3)              q(x|1) = p(x|1).

Every density is radial, so everything below is a function of the radius r = |x| (exactly). Large d is
handled in logs (log V = d log(1 + Delta)); V itself is never formed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import lambertw

Component = tuple[float, float, float]
"""(weight w, inner radius a, outer radius b) of one mixture component w U(a, b)."""

LOG_HALF = math.log(0.5)
KL_DIRECTIONS = {"p||q": ("p", "q"), "q||p": ("q", "p")}


# ---------------------------------------------------------------- densities


def mixture(which: str, label: int, lam1: float, lam2: float, Delta: float) -> list[Component]:
    """The components of p(x|label) (which='p') or q(x|label) (which='q')."""
    if which not in ("p", "q") or label not in (0, 1):
        raise ValueError(f"which must be 'p' or 'q' and label 0 or 1, got {which!r}, {label!r}")
    if label == 1:
        return [(lam2, 0.0, 1.0), (1.0 - lam2, 2.0, 3.0)]
    if which == "q":
        return [(1.0, 0.0, 1.0 + Delta)]
    return [(lam1, 0.0, 1.0), (1.0 - lam1, 1.0, 1.0 + Delta)]


def log_ball_volume(d: int) -> float:
    """log c_d, the log volume of the unit ball in R^d."""
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def log_annulus_volume(d: int, a: float, b: float) -> float:
    """log of c_d (b^d - a^d), the volume of {a < |x| <= b}, without forming b^d."""
    shrink = d * math.log(a / b) if a > 0 else -math.inf
    return log_ball_volume(d) + d * math.log(b) + math.log(-math.expm1(shrink))


def log_density(which: str, r: np.ndarray, label: int, d: int, lam1: float, lam2: float, Delta: float) -> np.ndarray:
    """log p(x|label) or log q(x|label) at points of radius r (-inf outside the support)."""
    r = np.asarray(r, dtype=float)
    out = np.full(r.shape, -np.inf)
    for weight, a, b in mixture(which, label, lam1, lam2, Delta):
        level = math.log(weight) - log_annulus_volume(d, a, b)
        out = np.where((r > a) & (r <= b), np.logaddexp(out, level), out)
    return out


def log_joint(
    which: str, r: np.ndarray, labels: np.ndarray, d: int, lam1: float, lam2: float, Delta: float
) -> np.ndarray:
    """log p(x, y) or log q(x, y) at radii r with labels y."""
    by_class = [log_density(which, r, y, d, lam1, lam2, Delta) for y in (0, 1)]
    return LOG_HALF + np.where(np.asarray(labels) == 0, *by_class)


def log_marginal(which: str, r: np.ndarray, d: int, lam1: float, lam2: float, Delta: float) -> np.ndarray:
    """log p(x) or log q(x): what a likelihood-threshold detector looks at."""
    return LOG_HALF + np.logaddexp(*(log_density(which, r, y, d, lam1, lam2, Delta) for y in (0, 1)))


def posterior0(which: str, r: np.ndarray, d: int, lam1: float, lam2: float, Delta: float) -> np.ndarray:
    """p(y=0|x) or q(y=0|x) by Bayes' rule at radii r (nan outside the support)."""
    log_class0 = LOG_HALF + log_density(which, r, 0, d, lam1, lam2, Delta)
    return np.exp(log_class0 - log_marginal(which, r, d, lam1, lam2, Delta))


def lemma1_posteriors(d: int, lam1: float, lam2: float, Delta: float) -> tuple[float, float]:
    """Lemma 1, for |x| <= 1: p(0|x) = lam1 / (lam1 + lam2) and q(0|x) = 1 / (1 + lam2 V)."""
    log_lam2_v = math.log(lam2) + d * math.log1p(Delta)
    return lam1 / (lam1 + lam2), math.exp(-np.logaddexp(0.0, log_lam2_v))


# ---------------------------------------------------------------- exact KLs


def _bernoulli_kl(log_s: np.ndarray, log_1ms: np.ndarray, log_t: np.ndarray, log_1mt: np.ndarray) -> np.ndarray:
    """KL(Bern(s) || Bern(t)) from the logs of s, 1 - s, t, 1 - t (stable when s or t is tiny)."""
    return np.exp(log_s) * (log_s - log_t) + np.exp(log_1ms) * (log_1ms - log_1mt)


def _ball_mass_logs(lam1: np.ndarray, d: np.ndarray, Delta: float) -> tuple[tuple, tuple]:
    """((log lam1, log(1 - lam1)), (log 1/V, log(1 - 1/V))): the unit ball's mass and its complement's
    under p(x|0) and under q(x|0)."""
    lam1 = np.asarray(lam1, dtype=float)
    log_v = np.asarray(d, dtype=float) * math.log1p(Delta)
    return (np.log(lam1), np.log1p(-lam1)), (-log_v, np.log(-np.expm1(-log_v)))


def kl_data_model(lam1: float | np.ndarray, d: int | np.ndarray, Delta: float) -> np.ndarray:
    """KL(p(x,y) || q(x,y)) in nats. Both class-0 densities are constant on the ball and on the shell, so the
    class-0 KL is KL(Bern(lam1) || Bern(1/V)); class 1 adds nothing and p(y) = 1/2 halves it."""
    data, model = _ball_mass_logs(lam1, d, Delta)
    return 0.5 * _bernoulli_kl(*data, *model)


def kl_model_data(lam1: float | np.ndarray, d: int | np.ndarray, Delta: float) -> np.ndarray:
    """KL(q(x,y) || p(x,y)) in nats: half of KL(Bern(1/V) || Bern(lam1)), as in kl_data_model."""
    data, model = _ball_mass_logs(lam1, d, Delta)
    return 0.5 * _bernoulli_kl(*model, *data)


# ---------------------------------------------------------------- sampling


def annulus_radii(a: np.ndarray, b: np.ndarray, d: int, rng: np.random.Generator) -> np.ndarray:
    """Radii of uniform draws from {a < |x| <= b} in R^d by the inverse CDF r = (a^d + u (b^d - a^d))^(1/d),
    written b (u + (1 - u) (a/b)^d)^(1/d) so that d in the thousands neither overflows nor rounds to b."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    u = 1.0 - rng.random(np.shape(b))  # in (0, 1]: never the radius 0
    return b * np.exp(np.log(u + (1.0 - u) * (a / b) ** d) / d)


def sample_radii(
    which: str, n: int, d: int, lam1: float, lam2: float, Delta: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(radii, labels) of n draws from p(x, y) or q(x, y): all that the densities depend on."""
    labels = rng.integers(0, 2, size=n)
    inner, outer = np.empty(n), np.empty(n)
    for y in (0, 1):
        weights, a, b = np.array(mixture(which, y, lam1, lam2, Delta)).T
        k = rng.choice(len(weights), size=n, p=weights)
        inner = np.where(labels == y, a[k], inner)
        outer = np.where(labels == y, b[k], outer)
    return annulus_radii(inner, outer, d, rng), labels


def sample_data(
    n: int, d: int, lam1: float, lam2: float, Delta: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(points (n, d), labels (n,)) drawn from p(x, y): a radius from sample_radii, a uniform direction."""
    radii, labels = sample_radii("p", n, d, lam1, lam2, Delta, rng)
    directions = rng.standard_normal((n, d))
    directions *= (radii / np.linalg.norm(directions, axis=1))[:, None]
    return directions, labels


def radius_cdf(
    which: str, r: np.ndarray, label: int | None, d: int, lam1: float, lam2: float, Delta: float
) -> np.ndarray:
    """CDF of |x| under p(x|label) or q(x|label), or under the marginal p(x) or q(x) if label is None."""
    if label is None:
        return 0.5 * sum(radius_cdf(which, r, y, d, lam1, lam2, Delta) for y in (0, 1))
    r = np.asarray(r, dtype=float)
    cdf = np.zeros(r.shape)
    for weight, a, b in mixture(which, label, lam1, lam2, Delta):
        floor = (a / b) ** d
        cdf += weight * ((np.clip(r / b, a / b, 1.0) ** d - floor) / (1.0 - floor))
    return cdf


def kl_monte_carlo(
    direction: str, n: int, d: int, lam1: float, lam2: float, Delta: float, rng: np.random.Generator
) -> tuple[float, float]:
    """(estimate, standard error) of KL(p||q) (direction 'p||q') or KL(q||p) ('q||p') between the joints,
    averaging the log-ratio over n draws from the first argument."""
    first, second = KL_DIRECTIONS[direction]
    r, y = sample_radii(first, n, d, lam1, lam2, Delta, rng)
    log_ratio = log_joint(first, r, y, d, lam1, lam2, Delta) - log_joint(second, r, y, d, lam1, lam2, Delta)
    return float(log_ratio.mean()), float(log_ratio.std(ddof=1) / math.sqrt(n))


# ---------------------------------------------------------------- Proposition 1


def _check_parameters(eps: float, delta: float, Delta: float) -> None:
    """Proposition 1 needs eps > 0, a confident truth (0 < delta < 1/2) and a perturbation size Delta > 0."""
    if not (eps > 0 and 0 < delta < 0.5 and Delta > 0):
        raise ValueError(f"need eps > 0, 0 < delta < 1/2 and Delta > 0; got {eps}, {delta}, {Delta}")


def _log_confident_lower(delta: float, Delta: float, d: int | np.ndarray) -> float | np.ndarray:
    """log of ((1-delta)/delta)^2 / V, the smallest lam1 with q(0|x) <= delta in the unit ball."""
    return 2 * math.log((1 - delta) / delta) - d * math.log1p(Delta)


def lambda_interval(eps: float, delta: float, Delta: float, d: int) -> tuple[float, float]:
    """The lam1 meeting Proposition 1's conditions in dimension d form [lo, hi] (empty if lo > hi):
    lo = ((1-delta)/delta)^2 / V, i.e. q(0|x) <= delta in the ball (it implies the lemmas' lam1 >= 1/V);
    hi = min(1 - e^-eps (Lemma 2), eps / (d log(1+Delta)) (Lemma 3), 1/3 (a third of p is attackable))."""
    _check_parameters(eps, delta, Delta)
    lo = math.exp(_log_confident_lower(delta, Delta, d))
    return lo, min(-math.expm1(-eps), eps / (d * math.log1p(Delta)), 1 / 3)


def conditions_hold(eps: float, delta: float, Delta: float, d: int) -> bool:
    """Whether some lam1 meets all of Proposition 1's conditions in dimension d (non-strict inequalities)."""
    lo, hi = lambda_interval(eps, delta, Delta, d)
    return lo <= hi


def dimension_thresholds(eps: float, delta: float, Delta: float) -> dict[str, float]:
    """The real d beyond which lo = ((1-delta)/delta)^2 / V drops below each of the three upper bounds on lam1.
    With x = d log(1+Delta) and c = 2 log((1-delta)/delta): x >= c + log(1/bound) for the constant bounds, and
    for Lemma 3's eps / x the larger root of x - log x = c + log(1/eps), x = -W_{-1}(-eps e^-c) (Lambert W)."""
    _check_parameters(eps, delta, Delta)
    c = 2 * math.log((1 - delta) / delta)
    scale = math.log1p(Delta)
    lemma3_root = c - math.log(eps)  # x - log x >= 1 always: no constraint unless the right side exceeds 1
    lemma3 = -float(lambertw(-math.exp(-lemma3_root), -1).real) if lemma3_root > 1 else 0.0
    return {
        "Lemma 2": (c - math.log(-math.expm1(-eps))) / scale,  # lam1 <= 1 - e^-eps
        "Lemma 3": lemma3 / scale,  # lam1 d log(1+Delta) <= eps
        "1/3 attackable": (c + math.log(3)) / scale,  # lam1 <= 1/3
    }


def min_dimension_real(eps: float, delta: float, Delta: float) -> float:
    """The real d at which Proposition 1's conditions start to hold: the largest of dimension_thresholds."""
    return max(dimension_thresholds(eps, delta, Delta).values())


def min_dimension(eps: float, delta: float, Delta: float) -> int:
    """Smallest d in which some lam1 meets all of Proposition 1's conditions (non-strict inequalities).

    Feasibility is monotone in d: while d log(1+Delta) <= 1 the bound lam1 <= 1/3 fails, and beyond that no
    condition gets harder as d grows. So d_min = ceil(min_dimension_real); the loops only absorb rounding."""
    d = max(1, math.ceil(min_dimension_real(eps, delta, Delta)))
    while not conditions_hold(eps, delta, Delta, d):
        d += 1
    while d > 1 and conditions_hold(eps, delta, Delta, d - 1):
        d -= 1
    return d


def min_dimension_exact(eps: float, delta: float, Delta: float) -> int:
    """Smallest d in which the conditions hold with the exact joint KLs in place of the lemmas' bounds: with
    lam1 = ((1-delta)/delta)^2 / V (the smallest lam1 with q(0|x) <= delta; both KLs grow with lam1 >= 1/V),
    lam1 <= 1/3 and both joint KLs <= eps. Shows what the lemmas' bounds cost."""
    start = max(1, math.floor(dimension_thresholds(eps, delta, Delta)["1/3 attackable"]))  # below: lam1 > 1/3
    d = np.arange(start, min_dimension(eps, delta, Delta) + 1)  # the lemmas' conditions imply the exact ones
    lam1 = np.exp(_log_confident_lower(delta, Delta, d))
    ok = (lam1 <= 1 / 3) & (kl_data_model(lam1, d, Delta) <= eps) & (kl_model_data(lam1, d, Delta) <= eps)
    return int(d[ok.argmax()])


def asymptotic_dimension(eps: float, delta: float, Delta: float) -> float:
    """The leading-order growth of d_min: (2 log((1-delta)/delta) + log(1/eps)) / log(1+Delta)."""
    return (2 * math.log((1 - delta) / delta) - math.log(eps)) / math.log1p(Delta)


def dimension_summary(eps: float, delta: float, Delta: float) -> dict[str, float | int | str]:
    """One row of the d_min table: d_min, the real threshold and which condition sets it, the leading-order
    formula, and d_min with the exact KLs in place of the lemmas' bounds."""
    thresholds = dimension_thresholds(eps, delta, Delta)
    return {
        "eps": eps,
        "delta": delta,
        "Delta": Delta,
        "d_min": min_dimension(eps, delta, Delta),
        "real threshold": max(thresholds.values()),
        "binding": max(thresholds, key=thresholds.get),
        "leading order": asymptotic_dimension(eps, delta, Delta),
        "d_min, exact KLs": min_dimension_exact(eps, delta, Delta),
    }


def min_perturbation(eps: float, delta: float, d: int) -> float:
    """The smallest Delta for which the construction works in dimension d: every threshold is X / log(1+Delta)
    with X independent of Delta, so the conditions hold iff log(1+Delta) >= X / d."""
    return math.expm1(min_dimension_real(eps, delta, math.e - 1) / d)  # log(1 + (e - 1)) = 1: the real is X


def dimension_sweep(vary: str, values: np.ndarray, eps: float, delta: float, Delta: float) -> dict[str, np.ndarray]:
    """d_min, min_dimension_real and asymptotic_dimension as one of eps, delta, Delta (named by vary) runs
    over values, the other two fixed."""
    fixed = {"eps": eps, "delta": delta, "Delta": Delta}
    if vary not in fixed:
        raise ValueError(f"vary must be one of {', '.join(fixed)}, got {vary!r}")
    settings = [{**fixed, vary: float(v)} for v in values]
    return {
        "values": np.asarray(values, dtype=float),
        "d_min": np.array([min_dimension(**s) for s in settings], dtype=float),
        "real": np.array([min_dimension_real(**s) for s in settings]),
        "asymptotic": np.array([asymptotic_dimension(**s) for s in settings]),
    }


def construction(eps: float, delta: float, Delta: float, d: int | None = None) -> tuple[int, float, float]:
    """(d, lam1, lam2) realising Proposition 1: d = d_min unless given; lam1 the geometric mean of the feasible
    interval (strictly inside it, so every bound holds with room for rounding); lam2 = lam1 delta / (1 - delta),
    which makes the truth p(0|x) = 1 - delta in the ball."""
    d = min_dimension(eps, delta, Delta) if d is None else d
    lo, hi = lambda_interval(eps, delta, Delta, d)
    if lo > hi:
        raise ValueError(f"no lam1 meets the conditions in dimension {d} (lam1 >= {lo:.3g} > {hi:.3g})")
    lam1 = math.exp(0.5 * (_log_confident_lower(delta, Delta, d) + math.log(hi)))
    return d, lam1, lam1 * delta / (1 - delta)


# ---------------------------------------------------------------- appendix D's conditions 6 and 7


def _log_shell_share(d: int, a: float, b: float, r: float) -> float:
    """log of r^(d-1) / (b^d - a^d): a uniform shell's density times the area of the sphere of
    radius r, both divided by c_d (which cancels), in logs for large d."""
    inner = math.log(-math.expm1(d * math.log(a / b))) if a > 0 else 0.0  # log(1 - (a/b)^d)
    return (d - 1) * math.log(r) - d * math.log(b) - inner


def log_ball_mass_bound(d: int, lam1: float, lam2: float, Delta: float) -> float:
    """log of an upper bound on the mass p(x) puts in any ball of radius Delta (condition 6):
    each component w U(a, b) puts at most w * min(1, Delta^d / (b^d - a^d)) there."""
    parts = [
        math.log(0.5 * w) + min(0.0, d * math.log(Delta) + _log_shell_share(d, a, b, 1.0))
        for label in (0, 1)
        for w, a, b in mixture("p", label, lam1, lam2, Delta)
        if w > 0
    ]
    return float(np.logaddexp.reduce(parts))


def total_variation(d: int, lam1: float, lam2: float, Delta: float) -> float:
    """The total variation of the data density, the integral of |grad p(x)| (condition 7). p is
    radial and piecewise constant, so by the divergence theorem it is the sum over the spheres
    where p jumps of |jump| times the sphere's area d c_d r^(d-1); c_d cancels against the
    densities' 1 / c_d."""
    components = [(0.5 * w, a, b) for label in (0, 1) for w, a, b in mixture("p", label, lam1, lam2, Delta)]
    radii = sorted({r for _, a, b in components for r in (a, b) if r > 0})
    total = 0.0
    for r in radii:  # the jump at r: shells ending there minus shells starting there
        ends = [(w, a, b) for w, a, b in components if r in (a, b)]
        jump = sum(w * math.exp(_log_shell_share(d, a, b, r)) * ((b == r) - (a == r)) for w, a, b in ends)
        total += d * abs(jump)
    return total


# ---------------------------------------------------------------- the attack


def attack(points: np.ndarray, labels: np.ndarray, Delta: float, margin: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """The paper's attack: class-0 points with 1 < |x| <= 1 + Delta move radially to radius
    max(1 - margin, |x| - Delta), just inside the unit ball and never farther than Delta.
    Returns the moved points (others unchanged) and the mask of attacked points."""
    r = np.linalg.norm(points, axis=1)
    attacked = (labels == 0) & (r > 1) & (r <= 1 + Delta)
    target = np.where(attacked, np.maximum(1 - margin, r - Delta), r)
    return points * (target / r)[:, None], attacked


@dataclass(frozen=True)
class AttackStats:
    """What the attack achieved on a sample from p, next to Proposition 1's claims."""

    fraction_attacked: float  # share of all samples attacked; the paper: >= 1/3
    min_original_confidence: float  # min q(0|x) before the attack: correct and confident
    fraction_flipped: float  # share of attacked points the model now assigns to class 1
    min_wrong_confidence: float  # min q(1|x') after the attack; the paper: >= 1 - delta
    min_true_confidence: float  # min p(0|x'): the truth still says class 0
    max_move: float  # max |x' - x|; the paper: <= Delta
    min_log_q_gain: float  # min log q(x') - log q(x); >= 0: the model's density never decreases
    density_quantile: float  # share of the sample with q(x) <= min q(x'); >= 1/2: above the median


def attack_statistics(points: np.ndarray, labels: np.ndarray, lam1: float, lam2: float, Delta: float) -> AttackStats:
    """Attack a sample from p and measure every claim of Proposition 1 about it."""
    args = (points.shape[1], lam1, lam2, Delta)
    moved, hit = attack(points, labels, Delta)
    r, r_moved = np.linalg.norm(points[hit], axis=1), np.linalg.norm(moved[hit], axis=1)
    log_q = log_marginal("q", np.linalg.norm(points, axis=1), *args)
    log_q_moved = log_marginal("q", r_moved, *args)
    q0_moved = posterior0("q", r_moved, *args)
    return AttackStats(
        fraction_attacked=float(hit.mean()),
        min_original_confidence=float(posterior0("q", r, *args).min()),
        fraction_flipped=float((q0_moved < 0.5).mean()),
        min_wrong_confidence=float((1 - q0_moved).min()),
        min_true_confidence=float(posterior0("p", r_moved, *args).min()),
        max_move=float(np.linalg.norm(moved[hit] - points[hit], axis=1).max()),
        min_log_q_gain=float((log_q_moved - log_q[hit]).min()),
        density_quantile=float((log_q <= log_q_moved.min()).mean()),
    )


@dataclass(frozen=True)
class PropositionCheck:
    """Proposition 1 realised at (eps, delta, Delta) in dimension d: exact and Monte Carlo KLs (estimate,
    standard error) and the attack's statistics on a sample from p."""

    eps: float
    delta: float
    Delta: float
    d: int
    lam1: float
    lam2: float
    kl_data_model: float
    kl_data_model_mc: tuple[float, float]
    kl_model_data: float
    kl_model_data_mc: tuple[float, float]
    attack: AttackStats

    def kl_row(self) -> dict[str, float | int]:
        """Exact KLs next to their Monte Carlo estimates, with the gap in standard errors (z)."""
        (pq, pq_se), (qp, qp_se) = self.kl_data_model_mc, self.kl_model_data_mc
        return {
            "eps": self.eps,
            "d": self.d,
            "lam1": self.lam1,
            "KL(p||q)": self.kl_data_model,
            "MC p||q": pq,
            "se p||q": pq_se,
            "z p||q": (pq - self.kl_data_model) / pq_se,
            "KL(q||p)": self.kl_model_data,
            "MC q||p": qp,
            "se q||p": qp_se,
            "z q||p": (qp - self.kl_model_data) / qp_se,
        }

    def attack_row(self) -> dict[str, float | int]:
        """The attack's statistics, scaled so that Proposition 1 reads: attacked >= 1/3, flipped = 1,
        min q(1|x') - (1-delta) >= 0, max move / Delta <= 1, min log q gain >= 0, q quantile >= 1/2."""
        a = self.attack
        return {
            "delta": self.delta,
            "Delta": self.Delta,
            "d": self.d,
            "attacked": a.fraction_attacked,
            "flipped": a.fraction_flipped,
            "min q(1|x') - (1-delta)": a.min_wrong_confidence - (1 - self.delta),
            "max move / Delta": a.max_move / self.Delta,
            "min log q gain": a.min_log_q_gain,
            "q quantile": a.density_quantile,
        }

    def claims(self, rounding: float = 1e-12) -> dict[str, bool]:
        """Proposition 1's claims, each checked on this realisation (`rounding` absorbs float error where the
        construction meets a bound with equality)."""
        a = self.attack
        return {
            "KL(p||q) <= eps": self.kl_data_model <= self.eps,
            "KL(q||p) <= eps": self.kl_model_data <= self.eps,
            "fraction attacked >= 1/3": a.fraction_attacked >= 1 / 3,
            "originals: q(0|x) >= 1 - delta": a.min_original_confidence >= 1 - self.delta,
            "every attacked prediction flips": a.fraction_flipped == 1.0,
            "q(1|x') >= 1 - delta": a.min_wrong_confidence >= 1 - self.delta,
            "truth unchanged: p(0|x') >= 1 - delta": a.min_true_confidence >= 1 - self.delta - rounding,
            "|x' - x| <= Delta": a.max_move <= self.Delta + rounding,
            "q(x') >= q(x)": a.min_log_q_gain >= 0,
            "q(x') >= median of q": a.density_quantile >= 0.5,
        }


def check_proposition(
    eps: float, delta: float, Delta: float, n_kl: int, n_points: int, rng: np.random.Generator
) -> PropositionCheck:
    """Build the construction at d_min, estimate both KLs from n_kl draws and attack n_points points of p."""
    d, lam1, lam2 = construction(eps, delta, Delta)
    points, labels = sample_data(n_points, d, lam1, lam2, Delta, rng)
    return PropositionCheck(
        eps=eps,
        delta=delta,
        Delta=Delta,
        d=d,
        lam1=lam1,
        lam2=lam2,
        kl_data_model=float(kl_data_model(lam1, d, Delta)),
        kl_data_model_mc=kl_monte_carlo("p||q", n_kl, d, lam1, lam2, Delta, rng),
        kl_model_data=float(kl_model_data(lam1, d, Delta)),
        kl_model_data_mc=kl_monte_carlo("q||p", n_kl, d, lam1, lam2, Delta, rng),
        attack=attack_statistics(points, labels, lam1, lam2, Delta),
    )
