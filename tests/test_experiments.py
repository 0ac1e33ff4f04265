"""Chapter 2 and 3 studies: Table 1 summaries and verdicts, the margin argument."""

from __future__ import annotations

import math

import pytest
import torch

from studylib import evaluate, experiments
from studylib.chapter import setup


def _row(objective, seed, acc, bpd):
    return {
        "objective": objective,
        "seed": seed,
        "accuracy": acc,
        "bpd": bpd,
        "train_seconds": 60.0,
        "trained_on": "cpu",
    }


def test_table1_summary_spread_text_and_claims():
    t = experiments.Table1("mnist", "quick", 100)
    t.rows = [
        _row("base", 0, 0.90, 1.50),
        _row("base", 1, 0.92, 1.54),
        _row("reweighted", 0, 0.97, 1.60),
        _row("split", 0, 0.98, 1.58),
    ]
    s = t.summary()
    assert s["base"]["accuracy"] == pytest.approx(91.0) and s["base"]["accuracy_sd"] == pytest.approx(math.sqrt(2))
    assert s["split"]["accuracy_sd"] is None and s["split"]["paper"] == (99.3, 1.00)
    text = t.text()
    assert "base" in text and "96.9" in text and "±1.4" in text
    assert "lowest accuracy: base (paper: base) -> holds" in t.ordering()
    assert "split <= reweighted in bits/dim: holds" in t.ordering()
    assert "pays over base: +0.080 (paper +0.15)" in t.ordering()
    claims = {c["name"]: c for c in t.claims()}
    assert claims["split accuracy"]["ours"] == 98.0 and claims["split accuracy"]["paper"] == 99.3


def test_ordering_reports_a_differing_result():
    t = experiments.Table1("cifar10", "quick", 100)
    t.rows = [_row("base", 0, 0.6, 4.0), _row("reweighted", 0, 0.5, 4.2), _row("split", 0, 0.55, 4.3)]
    verdict = t.ordering()
    assert "lowest accuracy: reweighted (paper: base) -> differs" in verdict
    assert "split <= reweighted in bits/dim: differs" in verdict
    assert "pays over base: +0.200 (paper +0.07)" in verdict


def test_needed_gap_and_margin_statistics():
    assert experiments.Margins.needed_gap(10, 1e-5) == pytest.approx(13.71, abs=0.01)
    correct = torch.linspace(1.0, 2.0, 101, dtype=torch.float64)
    m = experiments.Margins("mnist", 1024, correct, correct + 0.001, correct * 700, torch.full((101,), 0.7))
    s = m.stats(0.95)
    assert s["threshold_bpd"] == pytest.approx(1.95) and s["threshold_recall"] == pytest.approx(96 / 101)
    assert s["wrong_below_threshold"] == pytest.approx(95 / 101)
    assert s["median_gap_nats"] == pytest.approx(0.7) and s["median_gap_bpd"] == pytest.approx(0.001)


def test_table1_on_smoke_models(home):
    params = setup(dataset="mnist", objective="split", profile="smoke", device="cpu", seed=0)
    t = experiments.table1(params, ["base", "split"], seeds=1)
    assert [r["objective"] for r in t.rows] == ["base", "split"] and t.n_test == 128
    assert set(t.models) == {"base seed 0", "split seed 0"}
    split, test = t.models["split seed 0"], experiments.eval_set(params)
    assert len(list((home / "results").glob("test-ll-*.pt"))) == 2  # one memo per model
    ll, y = experiments.eval_log_likelihoods(params, split, test)
    fresh, labels = evaluate.log_likelihoods(split, test)
    assert torch.allclose(ll, fresh) and torch.equal(y, labels)
    m = experiments.margins(params, "mnist", "split")
    assert len(m.correct_bpd) == 128 and torch.all(m.wrong_bpd >= m.correct_bpd - 1)
    with pytest.raises(ValueError, match="allowed values: base, reweighted, split"):
        experiments.table1(params, ["nope"])
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        experiments.table1(params, ["base"], seeds=0)
