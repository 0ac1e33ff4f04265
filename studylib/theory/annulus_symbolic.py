"""The annulus counter-example derived with sympy: densities, Lemma 1's posteriors, the exact KLs by
integrating region by region over radial shells, and the bounds of Lemmas 2 and 3.

Every density is constant on the three regions ball (0 <= r <= 1), shell (1 < r <= 1+Delta) and outer
(2 < r <= 3), so an integral over R^d is a sum over regions of integrals against the radial volume element
d c_d r^(d-1) dr, with c_d the volume of the unit ball (it cancels). V stands for (1+Delta)^d.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

r = sp.Symbol("r", positive=True)
d = sp.Symbol("d", integer=True, positive=True)
Delta = sp.Symbol("Delta", positive=True)
delta = sp.Symbol("delta", positive=True)
eps = sp.Symbol("epsilon", positive=True)
lam1 = sp.Symbol("lambda_1", positive=True)
lam2 = sp.Symbol("lambda_2", positive=True)
c_d = sp.Symbol("c_d", positive=True)
V = sp.Symbol("V", positive=True)

REGIONS = {"ball": (sp.Integer(0), sp.Integer(1)), "shell": (sp.Integer(1), 1 + Delta), "outer": (2, 3)}
KL_PAIRS = {"p||q": ("p", "q"), "q||p": ("q", "p")}
KL_NAMES = {
    "p||q": ("KL(p(x|0)||q(x|0))", r"\mathrm{KL}(p(x|0)\,\|\,q(x|0))"),
    "q||p": ("KL(q(x|0)||p(x|0))", r"\mathrm{KL}(q(x|0)\,\|\,p(x|0))"),
}
JOINT_NAMES = {
    "p||q": ("KL(p(x,y)||q(x,y))", r"\mathrm{KL}(p(x,y)\,\|\,q(x,y))"),
    "q||p": ("KL(q(x,y)||p(x,y))", r"\mathrm{KL}(q(x,y)\,\|\,p(x,y))"),
}


@dataclass(frozen=True)
class Equations:
    """Named sympy results: LaTeX in a notebook, deterministic plain text everywhere else."""

    rows: tuple[tuple[str, str, object], ...]  # (plain name, LaTeX name, expression)
    sep: str = "="  # "=" for equations, ":" for named conditions

    def _repr_latex_(self) -> str:
        lines = [rf"{tex} &{self.sep} {sp.latex(expr)}" for _, tex, expr in self.rows]
        return r"$\begin{aligned}" + r" \\ ".join(lines) + r"\end{aligned}$"

    def __repr__(self) -> str:
        return "\n".join(f"{name} {self.sep} {sp.sstr(expr)}" for name, _, expr in self.rows)


def uniform_annulus(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """The density of U(a, b) on its annulus: 1 / (c_d (b^d - a^d))."""
    return 1 / (c_d * (b**d - a**d))


def _in_v(expr: sp.Expr) -> sp.Expr:
    """Write (1+Delta)^d as V and pull common factors out (a readable form, not a canonical one)."""
    return sp.factor_terms(sp.sympify(expr).subs((1 + Delta) ** d, V))


def densities() -> dict[tuple[str, int], dict[str, sp.Expr]]:
    """The value of p(x|y) and q(x|y) on each region, keyed by (model, y) then region; V = (1+Delta)^d."""
    p0 = {"ball": lam1 * uniform_annulus(0, 1), "shell": (1 - lam1) * uniform_annulus(1, 1 + Delta), "outer": 0}
    q0 = {"ball": uniform_annulus(0, 1 + Delta), "shell": uniform_annulus(0, 1 + Delta), "outer": 0}
    p1 = {"ball": lam2 * uniform_annulus(0, 1), "shell": 0, "outer": (1 - lam2) * uniform_annulus(2, 3)}
    return {
        key: {region: _in_v(value) for region, value in values.items()}
        for key, values in {("p", 0): p0, ("q", 0): q0, ("p", 1): p1, ("q", 1): p1}.items()
    }


def density_table() -> Equations:
    """Every density on every region."""
    return Equations(
        tuple(
            (f"{model}(x|{y}) on {region}", rf"{model}(x \mid {y})\ \text{{on the {region}}}", value)
            for (model, y), values in densities().items()
            for region, value in values.items()
        )
    )


def posteriors_in_ball() -> dict[str, sp.Expr]:
    """Lemma 1 by Bayes' rule with p(y) = q(y) = 1/2, for |x| <= 1: p(0|x) and q(0|x), keyed 'p' and 'q'."""
    out = {}
    for model in ("p", "q"):
        joint0, joint1 = (densities()[(model, y)]["ball"] / 2 for y in (0, 1))
        out[model] = sp.cancel(joint0 / (joint0 + joint1))
    return out


def confident_threshold() -> sp.Expr:
    """The lam1 at which q(0|x) = delta in the ball once lam2 = lam1 delta/(1-delta); q(0|x) <= delta above it."""
    q0 = posteriors_in_ball()["q"].subs(lam2, lam1 * delta / (1 - delta))
    (root,) = sp.solve(sp.Eq(q0, delta), lam1)
    return sp.factor(root)


def lemma1() -> Equations:
    """Lemma 1's posteriors, and Proposition 1's choice lam2 = lam1 delta/(1-delta) plugged in."""
    post = posteriors_in_ball()
    truth = sp.simplify(post["p"].subs(lam2, lam1 * delta / (1 - delta)))
    return Equations(
        (
            ("p(0|x), |x| <= 1", r"p(0 \mid x),\ \|x\| \le 1", post["p"]),
            ("q(0|x), |x| <= 1", r"q(0 \mid x),\ \|x\| \le 1", post["q"]),
            (
                "p(0|x) with lambda_2 = lambda_1 delta/(1-delta)",
                r"p(0 \mid x)\ \text{with}\ "
                r"\lambda_2 = \tfrac{\lambda_1 \delta}{1-\delta}",
                truth,
            ),
            (
                "lambda_1 at which q(0|x) = delta",
                r"\lambda_1\ \text{at which}\ q(0 \mid x) = \delta",
                confident_threshold(),
            ),
        )
    )


def radial_integral(value: sp.Expr, region: str) -> sp.Expr:
    """The integral over `region` of a function of value `value` there, against d c_d r^(d-1) dr."""
    a, b = REGIONS[region]
    return sp.integrate(value * d * c_d * r ** (d - 1), (r, a, b))


def kl_by_region(direction: str, y: int) -> dict[str, sp.Expr]:
    """Each region's contribution to KL(first(x|y) || second(x|y)): the integral of first * log(first/second)
    over the regions where first > 0."""
    first, second = (densities()[(model, y)] for model in KL_PAIRS[direction])
    return {
        region: _in_v(radial_integral(first[region] * sp.log(first[region] / second[region]), region))
        for region in REGIONS
        if first[region] != 0
    }


def class_kl(direction: str, y: int) -> sp.Expr:
    """KL(p(x|y) || q(x|y)) (direction 'p||q') or KL(q(x|y) || p(x|y)) ('q||p'), summed over regions."""
    return _in_v(sum(kl_by_region(direction, y).values()))


def joint_kl(direction: str) -> sp.Expr:
    """The joint KL by the chain rule: KL of the label marginals (0, both are 1/2) plus the label-average of
    the class KLs."""
    return _in_v(sum(sp.Rational(1, 2) * class_kl(direction, y) for y in (0, 1)))


def closed_form_kl(direction: str) -> sp.Expr:
    """The class-0 KLs of appendix D in closed form."""
    if direction == "p||q":
        return lam1 * sp.log(lam1 * V) + (1 - lam1) * sp.log((1 - lam1) * V / (V - 1))
    return sp.log(1 / (lam1 * V)) / V + (V - 1) / V * sp.log((V - 1) / ((1 - lam1) * V))


def equal(a: sp.Expr, b: sp.Expr) -> bool:
    """Whether sympy simplifies a - b to 0; logs are expanded as for positive arguments, which all of ours
    are (0 < lam1 < 1 < V)."""
    return sp.simplify(sp.expand_log(a - b, force=True)) == 0


def kl_derivation(direction: str) -> Equations:
    """Region-by-region integrals, their sum, the closed form, the class-1 term and the joint KL."""
    name, tex = KL_NAMES[direction]
    rows = [
        (f"{name} from the {region}", rf"{tex}\ \text{{from the {region}}}", value)
        for region, value in kl_by_region(direction, 0).items()
    ]
    rows += [
        (f"{name} (sum)", rf"{tex}\ \text{{(sum)}}", class_kl(direction, 0)),
        (f"{name} (closed form)", rf"{tex}\ \text{{(closed form)}}", closed_form_kl(direction)),
        (
            "sum equals closed form",
            r"\text{sum equals closed form}",
            equal(class_kl(direction, 0), closed_form_kl(direction)),
        ),
        (f"{name.replace('0', '1')}", tex.replace("0", "1"), class_kl(direction, 1)),
        (JOINT_NAMES[direction][0], JOINT_NAMES[direction][1], joint_kl(direction)),
        (
            "joint equals closed form / 2",
            r"\text{joint equals closed form} / 2",
            equal(joint_kl(direction), closed_form_kl(direction) / 2),
        ),
    ]
    return Equations(tuple(rows))


# ---------------------------------------------------------------- Lemmas 2 and 3

_s = sp.Symbol("s", nonnegative=True)  # lam1 V = 1 + s >= 1
_t = sp.Symbol("t", positive=True)  # lam1 = 1 / (1 + t) in (0, 1)
_w = sp.Symbol("w", positive=True)  # V = 1 + w > 1


def lemma2() -> Equations:
    """Lemma 2: -log(1 - lam1) - KL(q(x|0)||p(x|0)) splits into three terms, each >= 0 when lam1 V >= 1
    (sympy decides each sign after writing lam1 V = 1 + s, V = 1 + w, lam1 = 1/(1 + t) with s >= 0, w, t > 0).
    So lam1 <= 1 - e^-eps gives a class-0 KL <= eps, and a joint KL <= eps/2."""
    gap = -sp.log(1 - lam1) - closed_form_kl("q||p")
    terms = [
        (sp.log(lam1 * V) / V, {lam1: (1 + _s) / V}),
        ((V - 1) / V * sp.log(V / (V - 1)), {V: 1 + _w}),
        (-sp.log(1 - lam1) / V, {lam1: 1 / (1 + _t)}),
    ]
    rows = [("-log(1 - lambda_1) - KL(q(x|0)||p(x|0))", r"-\log(1-\lambda_1) - \mathrm{KL}(q(x|0)\,\|\,p(x|0))", gap)]
    rows += [(f"term {i}", rf"\text{{term {i}}}", term) for i, (term, _) in enumerate(terms, 1)]
    rows += [("sum of the terms equals it", r"\text{sum of the terms equals it}", equal(gap, sum(t for t, _ in terms)))]
    rows += [
        (f"term {i} >= 0", rf"\text{{term {i}}} \ge 0", bool(term.subs(sub).is_nonnegative))
        for i, (term, sub) in enumerate(terms, 1)
    ]
    return Equations(tuple(rows))


def lemma3() -> Equations:
    """Lemma 3: f(lam1) = KL(p(x|0)||q(x|0)) - lam1 log V is convex on (0, 1) (f'' > 0), f(1/V) = -log(V)/V <= 0
    and f -> 0 as lam1 -> 1, so f <= 0 on [1/V, 1): the KL is <= lam1 d log(1+Delta)."""
    f = closed_form_kl("p||q") - lam1 * sp.log(V)
    second = sp.simplify(sp.diff(f, lam1, 2))
    return Equations(
        (
            ("f = KL(p(x|0)||q(x|0)) - lambda_1 log V", r"f = \mathrm{KL}(p(x|0)\,\|\,q(x|0)) - \lambda_1 \log V", f),
            ("f''(lambda_1)", r"f''(\lambda_1)", second),
            ("f'' > 0 on (0, 1)", r"f'' > 0\ \text{on}\ (0, 1)", bool(second.subs(lam1, 1 / (1 + _t)).is_positive)),
            ("f(1/V)", r"f(1/V)", sp.simplify(f.subs(lam1, 1 / V))),
            ("lim f as lambda_1 -> 1", r"\lim_{\lambda_1 \to 1^-} f", sp.limit(f, lam1, 1, "-")),
        )
    )


def grid_check(n: int = 300) -> dict[str, bool]:
    """Both lemmas' inequalities on an n x n grid of log V in [1e-3, 50] and lam1 = V^-s, s in (0, 1]
    (so lam1 in [1/V, 1)), evaluating the sympy closed forms: the check where sympy's own reasoning stops."""
    log_v, s = np.meshgrid(np.geomspace(1e-3, 50, n), np.linspace(1 / n, 1, n))
    values = {V: np.exp(log_v), lam1: np.exp(-s * log_v)}
    evaluate = {k: sp.lambdify([V, lam1], closed_form_kl(k), "numpy") for k in KL_PAIRS}
    kl_qp, kl_pq = (evaluate[k](values[V], values[lam1]) for k in ("q||p", "p||q"))
    return {
        "Lemma 2: KL(q(x|0)||p(x|0)) <= -log(1 - lambda_1)": bool(np.all(kl_qp <= -np.log1p(-values[lam1]) + 1e-12)),
        "Lemma 3: KL(p(x|0)||q(x|0)) <= lambda_1 log V": bool(np.all(kl_pq <= values[lam1] * log_v + 1e-12)),
    }


# ---------------------------------------------------------------- Proposition 1


def proposition_conditions() -> Equations:
    """Proposition 1's conditions on lam1 and, with x = d log(1+Delta), the threshold beyond which Lemma 3's
    bound admits the smallest confident lam1: x - log x >= 2 log((1-delta)/delta) + log(1/eps), whose larger
    root is x = -W_{-1}(-eps delta^2/(1-delta)^2) (Lambert W, lower branch)."""
    x = sp.Symbol("x", positive=True)
    lower = confident_threshold()
    return Equations(
        (
            ("confidently wrong, q(0|x) <= delta", r"\text{confidently wrong},\ q(0 \mid x) \le \delta", lam1 >= lower),
            ("Lemma 2, KL(q||p) <= eps", r"\text{Lemma 2},\ \mathrm{KL}(q\|p) \le \epsilon", lam1 <= 1 - sp.exp(-eps)),
            (
                "Lemma 3, KL(p||q) <= eps",
                r"\text{Lemma 3},\ \mathrm{KL}(p\|q) \le \epsilon",
                lam1 <= eps / (d * sp.log(1 + Delta)),
            ),
            ("a third of p attackable", r"\text{a third of}\ p\ \text{attackable}", lam1 <= sp.Rational(1, 3)),
            (
                "Lemma 3 meets the lower bound iff",
                r"\text{Lemma 3 meets the lower bound iff}",
                x - sp.log(x) >= 2 * sp.log((1 - delta) / delta) + sp.log(1 / eps),
            ),
            (
                "larger root, x = d log(1+Delta)",
                r"\text{larger root},\ x = d \log(1+\Delta)",
                -sp.LambertW(-eps * delta**2 / (1 - delta) ** 2, -1),
            ),
        ),
        sep=":",
    )
