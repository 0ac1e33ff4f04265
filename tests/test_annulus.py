"""The annulus counter-example: exact KLs, d_min, Lemma 1, the sampler, the attack and the sympy derivation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from studylib.theory import annulus

NOTES_TABLE = [
    (0.1, 0.1, 1.0, 13),
    (0.1, 0.1, 0.1, 94),
    (0.1, 0.1, 0.01, 893),
    (0.01, 0.01, 0.1, 175),
    (0.01, 0.01, 0.01, 1669),
]
# besides the notes' cases: Lemma 2's bound binds, the 1/3 bound binds, a large Delta
OTHER_CASES = [(0.4, 0.49, 0.5), (3.0, 0.4, 0.5), (0.05, 0.2, 2.0)]


def _naive_interval(eps: float, delta: float, Delta: float, d: int) -> tuple[float, float]:
    """Proposition 1's interval for lam1, written directly (forms (1+Delta)^d: small d only)."""
    lo = ((1 - delta) / delta) ** 2 / (1 + Delta) ** d
    return lo, min(eps / (d * math.log(1 + Delta)), 1 - math.exp(-eps), 1 / 3)


def _naive_feasible(case: tuple[float, float, float], d: int) -> bool:
    lo, hi = _naive_interval(*case, d)
    return lo <= hi


def _naive_kls(lam1: float, d: int, Delta: float) -> tuple[float, float]:
    """The joint KLs (p||q, q||p) from the notes' formulas, forming V directly."""
    v = (1 + Delta) ** d
    pq = lam1 * math.log(lam1 * v) + (1 - lam1) * math.log((1 - lam1) * v / (v - 1))
    qp = math.log(1 / (lam1 * v)) / v + (v - 1) / v * math.log((v - 1) / ((1 - lam1) * v))
    return pq / 2, qp / 2


def _check_kls(lam1: float, lam2: float, d: int, Delta: float, n: int = 200_000) -> None:
    """Exact joint KLs within 4 standard errors of Monte Carlo (n draws), and equal to the notes' direct formulas."""
    rng = np.random.default_rng(1)
    exact = {"p||q": annulus.kl_data_model(lam1, d, Delta), "q||p": annulus.kl_model_data(lam1, d, Delta)}
    for direction, value in exact.items():
        estimate, se = annulus.kl_monte_carlo(direction, n, d, lam1, lam2, Delta, rng)
        assert se < 0.1 * value  # precise enough to catch a factor-of-two slip
        assert abs(estimate - value) < 4 * se, (direction, estimate, value, se)
    assert np.allclose([exact["p||q"], exact["q||p"]], _naive_kls(lam1, d, Delta), rtol=1e-9)


def test_exact_kls_match_monte_carlo_for_an_arbitrary_mixture():
    _check_kls(lam1=0.3, lam2=0.1, d=5, Delta=0.5)


@pytest.mark.parametrize("case", [(0.1, 0.1, 0.1), (0.01, 0.01, 0.01)])
def test_exact_kls_match_monte_carlo_at_d_min(case):
    d, lam1, lam2 = annulus.construction(*case)
    _check_kls(lam1, lam2, d, case[2], n=1_000_000)  # KL(p||q) lives on the ball, of mass lam1 < 0.01


def test_kls_are_finite_for_huge_d():
    kl = [annulus.kl_data_model(0.01, 10**6, 0.01), annulus.kl_model_data(0.01, 10**6, 0.01)]
    assert np.all(np.isfinite(kl)) and kl[0] > 0 and kl[1] > 0
    assert kl[0] == pytest.approx(0.5 * 0.01 * 10**6 * math.log1p(0.01), rel=1e-3)  # ~ lam1 log V / 2


@pytest.mark.parametrize("case", [c[:3] for c in NOTES_TABLE] + OTHER_CASES)
def test_min_dimension_matches_brute_force(case):
    brute = next(d for d in range(1, 100_000) if _naive_feasible(case, d))
    assert annulus.min_dimension(*case) == brute
    assert math.ceil(annulus.min_dimension_real(*case)) == brute
    assert all(_naive_feasible(case, d) for d in range(brute, brute + 200))  # feasibility is monotone


def test_min_dimension_reproduces_the_notes_table():
    assert [annulus.min_dimension(*c[:3]) for c in NOTES_TABLE] == [c[3] for c in NOTES_TABLE]


@pytest.mark.parametrize("case", [c[:3] for c in NOTES_TABLE[:4]] + OTHER_CASES)
def test_min_dimension_exact_matches_brute_force(case):
    eps, delta, Delta = case

    def feasible(d: int) -> bool:
        lam1 = ((1 - delta) / delta) ** 2 / (1 + Delta) ** d
        return lam1 <= 1 / 3 and max(_naive_kls(lam1, d, Delta)) <= eps

    assert annulus.min_dimension_exact(*case) == next(d for d in range(1, 100_000) if feasible(d))
    assert annulus.min_dimension_exact(*case) <= annulus.min_dimension(*case)


def test_min_dimension_rejects_unconfident_truth():
    with pytest.raises(ValueError, match="delta"):
        annulus.min_dimension(0.1, 0.5, 0.1)


def test_lemma1_posteriors_match_bayes_rule_on_samples():
    d, lam1, lam2, Delta = 10, 0.3, 0.1, 0.2
    rng = np.random.default_rng(2)
    truth, model = annulus.lemma1_posteriors(d, lam1, lam2, Delta)
    for which, expected in (("p", truth), ("q", model)):
        r, y = annulus.sample_radii(which, 100_000, d, lam1, lam2, Delta, rng)
        ball = r <= 1
        assert np.allclose(annulus.posterior0(which, r[ball], d, lam1, lam2, Delta), expected, rtol=1e-12)
        share, n = (y[ball] == 0).mean(), ball.sum()  # the posterior as a frequency among sampled points
        assert abs(share - expected) < 4 * math.sqrt(expected * (1 - expected) / n), (which, share, expected)
    assert truth == pytest.approx(0.75) and model == pytest.approx(1 / (1 + 0.1 * 1.2**10))
    outside = annulus.posterior0("q", np.array([1.05, 2.5]), d, lam1, lam2, Delta)
    assert outside.tolist() == [1.0, 0.0]  # the shell is all class 0, the outer annulus all class 1


@pytest.mark.parametrize("d, n", [(3, 3000), (2000, 1500)])
def test_sampler_radii_follow_their_cdf(d, n):
    lam1, lam2, Delta = 0.3, 0.2, 0.05
    points, labels = annulus.sample_data(n, d, lam1, lam2, Delta, np.random.default_rng(3))
    assert points.shape == (n, d) and points.dtype == np.float64 and set(np.unique(labels)) == {0, 1}
    radii = np.linalg.norm(points, axis=1)

    def cdf(r: np.ndarray, dimension: int = d) -> np.ndarray:
        return annulus.radius_cdf("p", r, None, dimension, lam1, lam2, Delta)

    assert stats.kstest(radii, cdf).pvalue > 0.01
    assert stats.kstest(radii, lambda r: cdf(r, 2 * d)).pvalue < 1e-6  # the test has power


def test_shell_radii_in_thousands_of_dimensions():
    d, a, b = 5000, 1.0, 1.01
    r = annulus.annulus_radii(np.full(4000, a), np.full(4000, b), d, np.random.default_rng(4))
    assert np.all((r > a) & (r <= b))
    shell_cdf = ((r / b) ** d - (a / b) ** d) / (1 - (a / b) ** d)
    assert stats.kstest(shell_cdf, "uniform").pvalue > 0.01


@pytest.mark.parametrize("case, n", [((0.1, 0.1, 0.1), 3000), ((0.01, 0.01, 0.01), 800)])
def test_attack_meets_proposition_1_at_d_min(case, n):
    check = annulus.check_proposition(*case, n_kl=20_000, n_points=n, rng=np.random.default_rng(5))
    assert check.d == annulus.min_dimension(*case)
    assert all(check.claims().values()), check.claims()
    assert check.attack.fraction_attacked == pytest.approx((1 - check.lam1) / 2, abs=4 / math.sqrt(n))


def test_attack_claims_fail_without_the_construction():
    # d far below d_min with lam2 = lam1 delta/(1-delta): the model stays right in the ball, so nothing flips
    lam1, Delta, delta = 0.2, 0.1, 0.1
    points, labels = annulus.sample_data(2000, 5, lam1, lam1 * delta / (1 - delta), Delta, np.random.default_rng(6))
    measured = annulus.attack_statistics(points, labels, lam1, lam1 * delta / (1 - delta), Delta)
    assert measured.fraction_flipped == 0.0 and measured.min_wrong_confidence < 1 - delta
    assert measured.max_move <= Delta and measured.min_log_q_gain > 0
    with pytest.raises(ValueError, match="no lam1"):
        annulus.construction(0.1, delta, Delta, d=5)


def test_symbolic_kls_equal_numeric_closed_forms():
    sp = pytest.importorskip("sympy")
    from studylib.theory import annulus_symbolic as sym

    for lam1, d, Delta in [(0.3, 5, 0.5), (0.9, 2, 1.0), (0.0112, 893, 0.01)]:
        at = {sym.lam1: lam1, sym.V: (1 + Delta) ** d}
        assert float(sym.joint_kl("p||q").subs(at)) == pytest.approx(annulus.kl_data_model(lam1, d, Delta), rel=1e-10)
        assert float(sym.joint_kl("q||p").subs(at)) == pytest.approx(annulus.kl_model_data(lam1, d, Delta), rel=1e-10)
        posteriors = sym.posteriors_in_ball()
        lam2 = lam1 / 7
        numeric = annulus.lemma1_posteriors(d, lam1, lam2, Delta)
        symbolic = [float(posteriors[m].subs({**at, sym.lam2: lam2})) for m in ("p", "q")]
        assert symbolic == pytest.approx(numeric, rel=1e-12)
    assert sp.simplify(sym.confident_threshold() - (1 - sym.delta) ** 2 / (sym.delta**2 * sym.V)) == 0


def test_symbolic_lemmas_and_grid_hold():
    pytest.importorskip("sympy")
    from studylib.theory import annulus_symbolic as sym

    checks = [expr for eqs in (sym.lemma2(), sym.lemma3()) for _, _, expr in eqs.rows if isinstance(expr, bool)]
    assert len(checks) == 5 and all(checks)
    assert all(sym.grid_check(100).values())
    for direction in ("p||q", "q||p"):
        rows = {name: expr for name, _, expr in sym.kl_derivation(direction).rows}
        assert rows["sum equals closed form"] is True and rows["joint equals closed form / 2"] is True


def test_conditions_6_and_7_in_closed_form():
    """A uniform ball of radius 1 has total variation d (its surface over its volume); the
    construction's mass in a Delta-ball shrinks with d, its total variation grows."""
    from studylib.studies import theory

    for d in (1, 2, 7, 300):
        assert annulus.total_variation(d, 1.0, 1.0, 0.5) == pytest.approx(d)  # p = U(0, 1)
    assert math.exp(annulus.log_ball_mass_bound(1, 1.0, 1.0, 0.5)) == pytest.approx(0.5)  # half of (-1, 1)
    rows = theory.regularity(0.1, 0.1, 0.5)
    assert [r["d"] for r in rows] == [rows[0]["d"] * k for k in theory.GROWTH]
    six, seven = theory.regularity_claims(rows, 0.1, 0.1, 0.5)
    assert six["verdict"] == "holds" and seven["verdict"] == "fails"
    per_d = 0.5 / 1.5 + 1 / 6  # the shell 1 < r <= 1.5 and the outer annulus 2 < r <= 3, each at half weight
    assert rows[-1]["total_variation"] == pytest.approx(per_d * rows[-1]["d"], rel=1e-3)
