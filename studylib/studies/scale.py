"""Chapter 10: is it scale? Table 1's cells measured against the training budget, a
saturating power law fitted to each, backtested on the largest budget, and extrapolated
to the paper's budget with a bootstrap over seeds."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from studylib.book import paper
from studylib.book.chapter import Params
from studylib.book.ledger import closes
from studylib.book.tables import Table
from studylib.config import family, get_profile
from studylib.measure.uncertainty import t_interval
from studylib.progress import bar
from studylib.sizes import sizes
from studylib.studies import attacks, interpolations
from studylib.studies.common import eval_set, metrics
from studylib.training import zoo
from studylib.training.build import new_model
from studylib.training.loop import TrainingDiverged

OBJECTIVES = ("base", "split")  # the sweep's objectives (the issue's: the two ends of Table 1)
CW_UNDETECTED, PATHS_BELOW = "CW-L2 undetected", "paths below T"
# Table 1's two quantities, and two the later chapters derive from a model, measured on the
# sweep's split models: chapter 4's plain CW-L2 on MNIST and chapter 5's share of paths.
QUANTITIES = {"accuracy": "%", "bits/dim": "bits/dim", CW_UNDETECTED: "%", PATHS_BELOW: "%"}
DERIVED = {CW_UNDETECTED: ("mnist",), PATHS_BELOW: ("mnist", "cifar10")}  # quantity: its datasets
LIMITS = {"accuracy": (0.0, 100.0), "bits/dim": (0.0, np.inf), CW_UNDETECTED: (0.0, 100.0), PATHS_BELOW: (0.0, 100.0)}
SHORT = {"accuracy": "acc", "bits/dim": "bpd", CW_UNDETECTED: "cw", PATHS_BELOW: "paths"}  # in glued names
# What a derived claim is over, which sets its margin (`ledger.quantity`: an attack rate, a share of paths).
DERIVED_OF = {CW_UNDETECTED: "attacked images", PATHS_BELOW: "interpolation pairs"}
BOOTSTRAP = 400  # refits per curve
SOURCE = "Table 1 (appendix B's model, 150 epochs)"
DERIVED_SOURCE = {
    CW_UNDETECTED: "Table 2: CW-L2 on the MNIST split model, successful and undetected within eps",
    PATHS_BELOW: "Section 4.4: the share of interpolation paths that stay below the threshold",
}
DATASET_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10"}


def paper_budget(dataset: str, profile: str) -> float:
    """The paper's training (appendix B: 150 epochs at batch 64) in multiples of `profile`'s
    1x budget, counted in images seen (optimiser steps x batch)."""
    theirs, ours = sizes("paper").train, sizes(profile).train
    fam = family(dataset)
    return theirs.train_steps[fam] * theirs.batch_size / (ours.train_steps[fam] * ours.batch_size)


def parameter_ratio(dataset: str, objective: str, profile: str) -> float:
    """How many times our model's parameters appendix B's model of `objective` has (width and
    depth: what more steps cannot give a model)."""
    count = [
        sum(p.numel() for p in new_model(dataset, objective, get_profile(name), 0).parameters())
        for name in ("paper", profile)
    ]
    return count[0] / count[1]


def seeds_per_budget(profile: str) -> dict[float, int]:
    """The sweep's budgets, each with how many seeds it trains (from seed 0)."""
    return sizes(profile).sweep.seeds


def planned(params: Params, datasets: list[str], objectives: tuple[str, ...] = OBJECTIVES) -> list[tuple]:
    """The sweep's models, (dataset, objective, budget, seed), at the profile's budgets and seeds."""
    scale = sizes(params.profile.name).sweep
    return [(d, o, b, s) for d in datasets for o in objectives for b in scale.budgets for s in range(scale.seeds[b])]


def sweep(params: Params, datasets: list[str], train_missing: bool = True) -> tuple[list[dict], list[tuple]]:
    """One row per model of the sweep (dataset, objective, budget, seed, steps, accuracy in %,
    bits/dim on Table 1's test images, training seconds), and the models left out: those the
    cache lacks when `train_missing` is False (they train one at a time otherwise)."""
    rows, missing = [], []
    for d, o, b, s in bar(planned(params, datasets), desc="sweep"):
        profile = params.profile.at_budget(b)
        if not train_missing and not zoo.is_cached(d, o, profile, s):
            missing.append((d, o, b, s))
            continue
        try:
            model = zoo.get_model(d, o, profile, s, params.device, precision=params.precision)
        except TrainingDiverged:
            missing.append((d, o, b, s))
            continue
        m = metrics(params, model, eval_set(params, d, table=True))
        rows.append(
            {
                "dataset": d,
                "objective": o,
                "budget": b,
                "seed": s,
                "steps": profile.steps_for(d),
                "accuracy": 100 * m["accuracy"],
                "bits/dim": m["bpd"],
                "n_test": m["n"],
                "train_seconds": model.info["train_seconds"],
            }
        )
    return rows, missing


def hours_per_model(rows: list[dict]) -> dict[str, float]:
    """Per dataset, the CPU hours of training one model at 1x at the pace of its fastest
    measured model (training seconds divided by budget): other jobs on the machine, or a
    paused run, only ever slow a model down, so the fastest is nearest the machine's pace."""
    paces: dict[str, list[float]] = {}
    for r in rows:
        paces.setdefault(r["dataset"], []).append(r["train_seconds"] / r["budget"] / 3600)
    return {d: min(p) for d, p in paces.items()}


def sweep_hours(rows: list[dict], missing: list[tuple]) -> tuple[float, list[str]]:
    """The CPU hours of the whole sweep (the measured models and the missing ones) at the pace
    of `hours_per_model`, and the datasets that pace leaves out (none of their models measured)."""
    pace = hours_per_model(rows)
    jobs = [(r["dataset"], r["budget"]) for r in rows] + [(d, b) for d, _, b, _ in missing]
    unmeasured = sorted({d for d, _ in jobs if d not in pace})
    return sum(b * pace[d] for d, b in jobs if d in pace), unmeasured


def derive(params: Params, rows: list[dict]) -> list[dict]:
    """The derived quantities (`DERIVED`) of each split model of the sweep, added to its row:
    chapter 4's plain CW-L2 (its images and budgets at the profile, the paper's detector) and
    chapter 5's interpolation paths (its number of pairs), at the model's own budget and
    seed. Both are memoised per model (the 1x MNIST CW-L2 is chapter 4's own run)."""
    name = params.profile.name
    for r in bar([r for r in rows if r["objective"] == "split"], desc="derived quantities"):
        at = replace(params, dataset=r["dataset"], profile=params.profile.at_budget(r["budget"]), seed=r["seed"])
        if r["dataset"] in DERIVED[CW_UNDETECTED]:
            budgets = attacks.default_budgets(name)
            table = attacks.run(at, ["split"], attacks.default_images(name), budgets, attacks=("CW-L2",))
            hit = table.outcomes["split"]["CW-L2"].hits(table.eps)[0]
            r[CW_UNDETECTED] = 100 * hit.double().mean().item()
        study = interpolations.interpolation_study(at, r["dataset"], "split", interpolations.default_pairs(name))
        r[PATHS_BELOW] = 100 * study.paths.below(study.threshold_bpd).double().mean().item()
    return rows


def train_commands(jobs: list[tuple], profile: str) -> str:
    """The command lines that train the sweep's models `jobs`, (dataset, objective, budget, seed)."""
    return "\n".join(
        f"studylib train --profile {profile} --dataset {d} --objective {o} --budget {b:g} --seed {s}"
        for d, o, b, s in jobs
    )


def power_law(budget: np.ndarray, limit: float, amplitude: float, exponent: float) -> np.ndarray:
    """The saturating power law value = limit + amplitude * budget^-exponent."""
    return limit + amplitude * np.power(budget, -exponent)


def fit(
    budgets: np.ndarray, values: np.ndarray, sigma: np.ndarray, limits: tuple[float, float] = (-np.inf, np.inf)
) -> np.ndarray | None:
    """(limit, amplitude, exponent) by weighted least squares (`scipy.optimize.curve_fit`,
    the limit within `limits`, the exponent within [0.05, 3]), or None where there are fewer
    budgets than parameters or the fit does not converge."""
    if len(np.unique(budgets)) < 3:
        return None
    order = np.argsort(budgets)
    start = (np.clip(values[order[-1]], *limits), values[order[0]] - values[order[-1]], 0.5)
    bounds = ([limits[0], -np.inf, 0.05], [limits[1], np.inf, 3.0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            found, _ = curve_fit(
                power_law, budgets, values, p0=start, sigma=sigma, absolute_sigma=True, bounds=bounds, maxfev=20_000
            )
    except (RuntimeError, ValueError):
        return None
    return found


@dataclass
class Curve:
    """One quantity of one (dataset, objective) against the budget: the seeds' values per
    budget, the fit, its backtest on the largest budget, and the extrapolation."""

    dataset: str
    objective: str
    quantity: str
    values: dict[float, list[float]]  # per budget, one value per seed
    spread: float  # the pooled seed-to-seed standard deviation
    params: np.ndarray | None
    backtest: dict
    target: float  # the paper's budget, in multiples of ours
    extrapolated: tuple[float, float, float]  # value, low, high at `target`
    asymptote: tuple[float, float, float]  # limit, low, high

    @property
    def paper(self) -> float:
        if self.quantity == CW_UNDETECTED:
            return float(paper.TABLE2[self.dataset]["CW-L2"][self.objective][0])
        if self.quantity == PATHS_BELOW:
            return 100 * paper.PATHS_BELOW_THRESHOLD[self.dataset]
        return paper.TABLE1[self.dataset][self.objective][0 if self.quantity == "accuracy" else 1]

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        b = np.array(sorted(self.values))
        return b, np.array([np.mean(self.values[x]) for x in b])


def _points(values: dict[float, list[float]], spread: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every seed's value as a point, each weighted by the pooled seed spread."""
    b = np.array([x for x in sorted(values) for _ in values[x]], dtype=float)
    y = np.array([v for x in sorted(values) for v in values[x]], dtype=float)
    return b, y, np.full_like(y, spread)


def pooled_spread(values: dict[float, list[float]]) -> float:
    """The seed-to-seed standard deviation pooled over the budgets with two seeds or more
    (a floor of 1e-6 keeps the weights finite when seeds agree exactly); NaN where no budget
    has two seeds: then nothing says how far one run lies from another, and `curve` fits nothing."""
    groups = [np.asarray(v, dtype=float) for v in values.values() if len(v) > 1]
    dof = sum(len(g) - 1 for g in groups)
    if dof == 0:
        return float("nan")
    return max(float(np.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / dof)), 1e-6)


def curve(rows: list[dict], dataset: str, objective: str, quantity: str, profile: str, seed: int = 0) -> Curve:
    """Fit, backtest and extrapolate one quantity. The bootstrap resamples the seeds at each
    budget with two or more, and draws the one seed of the others from a normal with the
    pooled spread (a parametric step: one seed has no spread of its own), then refits."""
    values: dict[float, list[float]] = {}
    for r in rows:
        if (r["dataset"], r["objective"]) == (dataset, objective) and quantity in r:
            values.setdefault(r["budget"], []).append(r[quantity])
    spread, limits = pooled_spread(values), LIMITS[quantity]
    b, y, sigma = _points(values, spread)
    found = fit(b, y, sigma, limits) if np.isfinite(spread) else None
    largest = max(values) if values else 0.0
    held = b < largest
    early = fit(b[held], y[held], sigma[held], limits) if np.isfinite(spread) else None
    measured = values.get(largest, [np.nan])
    if len(measured) > 1:
        interval = t_interval(measured)[1:]
    else:  # one seed: its interval from the pooled spread
        interval = (measured[0] - 1.96 * spread, measured[0] + 1.96 * spread)
    backtest = {
        "budget": largest,
        "predicted": float(power_law(largest, *early)) if early is not None else np.nan,
        "measured": float(np.mean(measured)),
        "interval": interval,
    }
    target = paper_budget(dataset, profile)
    rng = np.random.default_rng(seed)
    at_target, asymptotes = [], []
    for _ in range(BOOTSTRAP if found is not None else 0):
        drawn = {
            x: list(rng.choice(v, len(v))) if len(v) > 1 else [rng.normal(v[0], spread)] for x, v in values.items()
        }
        refit = fit(*_points(drawn, spread), limits)
        if refit is not None:
            at_target.append(float(power_law(target, *refit)))
            asymptotes.append(float(refit[0]))
    if found is None or len(at_target) < BOOTSTRAP // 2:
        nan = (np.nan, np.nan, np.nan)
        return Curve(dataset, objective, quantity, values, spread, found, backtest, target, nan, nan)
    extrapolated = (float(power_law(target, *found)), *np.percentile(at_target, [2.5, 97.5]))
    asymptote = (float(found[0]), *np.percentile(asymptotes, [2.5, 97.5]))
    return Curve(dataset, objective, quantity, values, spread, found, backtest, target, extrapolated, asymptote)


def curves(rows: list[dict], datasets: list[str], profile: str) -> list[Curve]:
    """Every (dataset, objective, quantity) of the sweep, fitted where its rows allow: Table
    1's two per objective, the derived ones (`DERIVED`) on the split models."""
    wanted = [(d, o, q) for d in datasets for o in OBJECTIVES for q in ("accuracy", "bits/dim")]
    wanted += [(d, "split", q) for q, on in DERIVED.items() for d in datasets if d in on]
    return [curve(rows, d, o, q, profile) for d, o, q in wanted]


def figure(found: list[Curve]) -> plt.Figure:
    """One panel per (dataset, quantity): each objective's seeds against the budget (log
    axis), its fitted curve carried to the paper's budget, and the paper's value there."""
    panels = list(dict.fromkeys((c.dataset, c.quantity) for c in found))
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (dataset, quantity) in zip(axes.flat, panels, strict=False):  # the last row may have room to spare
        for i, c in enumerate(x for x in found if (x.dataset, x.quantity) == (dataset, quantity)):
            color = f"C{i}"
            b, y, _ = _points(c.values, c.spread)
            ax.plot(b, y, "o", color=color, alpha=0.6, label=c.objective)
            if c.params is not None:
                grid = np.geomspace(min(b), c.target, 100)
                ax.plot(grid, power_law(grid, *c.params), "-", color=color, lw=1)
            ax.plot([c.target], [c.paper], "*", color=color, ms=11, mec="black")
        ax.set_xscale("log")
        ax.set_xlabel("training budget (x ours; the star: the paper's)")
        ax.set_title(f"{dataset}: {quantity}")
        ax.legend(fontsize=8)
    for row in axes:
        row[0].set_ylabel("measured (dots), fitted (line), paper (star)")
    fig.tight_layout()
    return fig


def _fmt(value: float, quantity: str) -> str:
    if not np.isfinite(value):
        return "–"
    text = f"{value:.3f}" if quantity == "bits/dim" else f"{value:.1f}"
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.0"


def _interval(values: tuple[float, float, float], quantity: str) -> str:
    value, low, high = values
    if not np.isfinite(value):
        return "no fit"
    return f"{_fmt(value, quantity)} [{_fmt(low, quantity)}, {_fmt(high, quantity)}]"


def _told(text: str, quantity: str) -> str:
    """A figure for the prose with its unit ("98.0 %", "1.127 bits/dim"; "no fit" as it is)."""
    return text if text in ("–", "no fit") else f"{text} {QUANTITIES[quantity]}"


def table(found: list[Curve], claims: list[dict]) -> Table:
    """The extrapolations: per curve the 1x measurement, the backtest, the value at the
    paper's budget and the asymptote with their intervals, the paper's value and the verdict."""
    verdicts = {c["name"]: c["verdict"] for c in claims}
    rows = []
    for c in found:
        one = c.values.get(1.0, [np.nan])
        bt = c.backtest
        backtest = f"{_fmt(bt['predicted'], c.quantity)} vs {_fmt(bt['measured'], c.quantity)} at {bt['budget']:g}x"
        rows.append(
            (
                c.dataset,
                c.objective,
                c.quantity,
                _fmt(float(np.mean(one)), c.quantity),
                backtest if bt["budget"] else "–",
                f"{c.target:.1f}x",
                _interval(c.extrapolated, c.quantity),
                _interval(c.asymptote, c.quantity),
                _fmt(c.paper, c.quantity),
                verdicts.get(_claim_name(c), "no models"),
            )
        )
    heads = ("dataset", "objective", "quantity", "1x", "backtest", "paper's budget", "there", "asymptote")
    return Table((*heads, "paper", "the gap closes"), rows)


def _claim_name(c: Curve) -> str:
    return f"{c.dataset} {c.objective} {c.quantity}: the gap closes with scale"


def _over(quantity: str) -> str:
    """What a claim's n counts: models; for a derived quantity, what each of them was measured on."""
    return (f"{DERIVED_OF[quantity]} at each of the " if quantity in DERIVED else "") + "models (budgets x seeds)"


def claims(found: list[Curve]) -> list[dict]:
    """One claim per curve with a model that the gap to the paper closes with scale
    (`ledger.closes`); a curve that could not be fitted reads inconclusive over an
    unbounded interval."""
    out = []
    for c in found:
        n = sum(len(v) for v in c.values.values())
        if n == 0:
            continue
        if np.isfinite(c.extrapolated[0]):
            value, low, high = c.extrapolated
            limits = c.asymptote[1:]
            method = "power law fitted by curve_fit, bootstrap over seeds"
        else:
            value, low, high, limits = 0.0, -np.inf, np.inf, (-np.inf, np.inf)
            method = "no fit (too few budgets, or no convergence)"
        out.append(
            closes(
                _claim_name(c),
                value,
                (low, high),
                limits,
                c.paper,
                n=n,
                of=_over(c.quantity),
                method=method,
                unit=QUANTITIES[c.quantity],
                source=DERIVED_SOURCE.get(c.quantity, SOURCE),
                note=f"the paper's budget is {c.target:.1f}x ours in images seen",
            )
        )
    return out


def numbers(
    found: list[Curve], claims: list[dict], rows: list[dict], missing: list[tuple], profile: str
) -> dict[str, str]:
    """The chapter's figures for its prose (`chapter.glue`): per curve `<dataset>_<objective>_
    <acc|bpd|cw|paths>_` + `one` (1x), `there` (at the paper's budget), `limit` (asymptote), `paper`;
    the paper's budget per dataset (`<dataset>_target`) and its parameters per (dataset,
    objective) as a multiple of ours (`_params`); how many models were fitted and left out;
    how many claims hold, fail or are inconclusive; the sweep's CPU hours at the pace its
    measured models trained (`sweep_hours`, `sweep_pace`)."""
    verdicts = [c["verdict"] for c in claims]
    out = {"models": str(len(rows)), "missing": str(len(missing))}
    hours, unmeasured = sweep_hours(rows, missing)
    pace = ", ".join(f"{DATASET_NAMES[d]} {h:.1f}" for d, h in hours_per_model(rows).items())
    left_out = ", ".join(DATASET_NAMES[d] for d in unmeasured)
    out["sweep_hours"] = f"{hours:.0f}" + (f" (without {left_out})" if left_out else "")
    out["sweep_pace"] = f"{pace} hours per 1× model" if pace else "no model measured yet"
    out |= {f"n_{v}": str(verdicts.count(v)) for v in ("holds", "fails", "inconclusive")}
    for c in found:
        key = f"{c.dataset}_{c.objective}_{SHORT[c.quantity]}"
        q = c.quantity
        out |= {
            f"{key}_one": _told(_fmt(float(np.mean(c.values.get(1.0, [np.nan]))), q), q),
            f"{key}_there": _told(_interval(c.extrapolated, q), q),
            f"{key}_limit": _told(_interval(c.asymptote, q), q),
            f"{key}_paper": _told(_fmt(c.paper, q), q),
        }
        out[f"{c.dataset}_target"] = f"{c.target:.0f}"
        out[f"{c.dataset}_{c.objective}_params"] = f"{parameter_ratio(c.dataset, c.objective, profile):.1f}"
    return out
