"""Chapter 10's fits: the power law, its backtest, the bootstrap, and the "gap closes" verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studylib.book import ledger
from studylib.studies import scale

SEEDS = {0.25: 2, 0.5: 2, 1.0: 3, 2.0: 1, 4.0: 1}


def rows_from(law, noise: float, seed: int = 0, dataset: str = "mnist", objective: str = "split") -> list[dict]:
    """A sweep's rows drawn from a known curve: accuracy = law(budget) + noise."""
    rng = np.random.default_rng(seed)
    return [
        {
            "dataset": dataset,
            "objective": objective,
            "budget": b,
            "seed": s,
            "accuracy": law(b) + rng.normal(0, noise),
            "bits/dim": 1.0 + 0.2 * b**-0.5 + rng.normal(0, noise / 100),
            "train_seconds": 3600 * b,
        }
        for b, n in SEEDS.items()
        for s in range(n)
    ]


def test_the_fit_recovers_a_known_curve_and_its_backtest_predicts_the_held_out_budget():
    def law(b):
        return scale.power_law(b, 99.0, -4.0, 0.6)

    found = scale.curve(rows_from(law, 0.05), "mnist", "split", "accuracy", "quick")
    limit, amplitude, exponent = found.params
    assert abs(limit - 99.0) < 0.4 and abs(amplitude + 4.0) < 0.4 and abs(exponent - 0.6) < 0.15
    assert abs(found.backtest["predicted"] - law(4.0)) < 0.3
    value, low, high = found.extrapolated
    assert low <= law(found.target) <= high and low < value < high
    assert found.asymptote[1] <= 99.0 <= found.asymptote[2]
    steep = scale.curve(rows_from(lambda b: 130.0 - 40.0 * b**-0.2, 0.05), "mnist", "split", "accuracy", "quick")
    assert steep.asymptote[0] <= 100.0 and steep.asymptote[2] <= 100.0  # no accuracy above 100 %


def test_the_paper_budget_is_counted_in_images_seen():
    assert scale.paper_budget("mnist", "quick") == pytest.approx(150 * (60_000 // 64) * 64 / (10_000 * 32))
    assert scale.paper_budget("cifar10", "quick") == pytest.approx(150 * (50_000 // 64) * 64 / (5000 * 32))
    assert scale.paper_budget("bg-mnist-5", "quick") == scale.paper_budget("mnist", "quick")


def _claim(interval, asymptote, paper=99.3):
    ours = sum(interval) / 2 if math.isfinite(sum(interval)) else 0.0
    return ledger.closes(
        "x", ours, interval, asymptote, paper, n=9, of="models", method="m", unit="%", source="Table 1"
    )


def test_the_gap_closes_verdict_can_come_out_each_way():
    band_low, band_high = ledger.band(_claim((99.0, 99.4), (99.0, 99.5)))
    assert _claim((99.0, 99.4), (98.9, 99.6))["verdict"] == "holds"
    assert _claim((95.0, 96.0), (96.0, 97.0))["verdict"] == "fails"
    assert _claim((95.0, 96.0), (97.0, 100.0))["verdict"] == "inconclusive"
    assert band_high < 100.0 and _claim((95.0, 96.0), (band_low, band_high))["verdict"] == "inconclusive"
    assert _claim((-math.inf, math.inf), (-math.inf, math.inf))["verdict"] == "inconclusive"  # no fit


def test_no_fit_without_two_seeds_at_some_budget():
    rows = [r for r in rows_from(lambda b: 98.0 - b**-0.5, 0.1) if r["seed"] == 0]  # five budgets, one seed each
    found = scale.curve(rows, "mnist", "split", "accuracy", "quick")
    assert np.isnan(found.spread) and found.params is None and all(np.isnan(found.extrapolated))


def test_a_curve_the_data_cannot_fit_says_so():
    rows = [r for r in rows_from(lambda b: 98.0, 0.1) if r["budget"] in (1.0, 2.0)]
    found = scale.curve(rows, "mnist", "split", "accuracy", "quick")
    assert found.params is None and all(np.isnan(found.extrapolated))
    (claim,) = [c for c in scale.claims([found])]
    assert claim["verdict"] == "inconclusive" and claim["low"] == -math.inf
    assert scale.numbers([found], [claim], rows, [], "quick")["mnist_split_acc_there"] == "no fit"


def test_the_bootstrap_is_seeded_and_widens_with_the_spread():
    def law(b):
        return scale.power_law(b, 99.0, -4.0, 0.6)

    quiet = scale.curve(rows_from(law, 0.05), "mnist", "split", "accuracy", "quick")
    again = scale.curve(rows_from(law, 0.05), "mnist", "split", "accuracy", "quick")
    loud = scale.curve(rows_from(law, 0.5), "mnist", "split", "accuracy", "quick")
    assert quiet.extrapolated == again.extrapolated
    assert np.diff(loud.extrapolated[1:]) > np.diff(quiet.extrapolated[1:])


def test_the_missing_models_are_listed_as_the_commands_that_train_them():
    text = scale.train_commands([("cifar10", "split", 0.25, 1), ("mnist", "base", 2.0, 0)], "quick")
    assert text.splitlines() == [
        "studylib train --profile quick --dataset cifar10 --objective split --budget 0.25 --seed 1",
        "studylib train --profile quick --dataset mnist --objective base --budget 2 --seed 0",
    ]


def test_the_sweeps_hours_come_from_the_pace_its_measured_models_trained_at():
    rows = [
        {"dataset": "cifar10", "budget": 0.5, "train_seconds": 1800},  # one hour per 1x model
        {"dataset": "cifar10", "budget": 1.0, "train_seconds": 3600},
        {"dataset": "cifar10", "budget": 1.0, "train_seconds": 9000},  # shared the machine: slower
    ]
    missing = [("cifar10", "base", 4.0, 0), ("mnist", "split", 1.0, 0)]
    assert scale.hours_per_model(rows) == {"cifar10": 1.0}
    hours, unmeasured = scale.sweep_hours(rows, missing)
    assert hours == pytest.approx(0.5 + 1.0 + 1.0 + 4.0) and unmeasured == ["mnist"]
    said = scale.numbers([], [], rows, missing, "quick")
    assert said["sweep_hours"] == "6 (without MNIST)" and said["sweep_pace"] == "CIFAR-10 1.0 hours per 1× model"


def test_the_derived_quantities_are_fitted_on_the_split_models_against_the_papers_own_numbers():
    rows = rows_from(lambda b: 90 - 10 * b**-0.5, noise=1.0, objective="split")
    for r in rows:  # chapter 4's CW-L2 rate and chapter 5's share of paths, falling with the budget
        r[scale.CW_UNDETECTED] = 20 * r["budget"] ** -0.5
        r[scale.PATHS_BELOW] = 10 * r["budget"] ** -0.5 + 0.1 * r["seed"]
    found = scale.curves(rows, ["mnist", "cifar10"], "quick")
    kinds = {(c.dataset, c.objective, c.quantity) for c in found}
    assert ("mnist", "split", scale.CW_UNDETECTED) in kinds and ("cifar10", "split", scale.CW_UNDETECTED) not in kinds
    assert ("cifar10", "split", scale.PATHS_BELOW) in kinds and ("mnist", "base", scale.PATHS_BELOW) not in kinds
    cw = next(c for c in found if c.quantity == scale.CW_UNDETECTED)
    paths = next(c for c in found if (c.dataset, c.quantity) == ("mnist", scale.PATHS_BELOW))
    assert cw.paper == 1.0 and paths.paper == 0.5  # Table 2's split cell; section 4.4's 0.5 % of MNIST paths
    claims = {c["name"]: c for c in scale.claims(found)}
    assert ledger.quantity(claims[scale._claim_name(cw)]) == "attack rate"
    assert ledger.quantity(claims[scale._claim_name(paths)]) == "share of paths"
    assert scale._fmt(-1e-9, scale.PATHS_BELOW) == "0.0" and scale._fmt(-0.04, "bits/dim") == "-0.040"
