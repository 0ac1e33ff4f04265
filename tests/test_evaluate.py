"""Evaluation: the log-likelihood matrix matches per-image evaluation; summaries by hand."""

from __future__ import annotations

import math

import pytest
import torch

from studylib import data
from studylib.config import Arch
from studylib.measure import evaluate
from studylib.models.flows import ConditionalGlow


def test_log_likelihood_matrix_matches_one_image_at_a_time():
    torch.manual_seed(0)
    model = ConditionalGlow(1, 10, Arch(2, 2, 8), "split")
    ds = data.load("mnist", "test", subset=20)
    x, y = ds.tensors()
    model.train()(x)  # actnorm init
    ll, labels = evaluate.log_likelihoods(model, ds, batch_size=8, progress=False)
    assert ll.shape == (20, 10) and ll.dtype == torch.float64 and torch.equal(labels, y)
    with torch.no_grad():
        single = torch.cat([model.log_prob(x[i : i + 1]) for i in range(20)]).double()
    assert torch.allclose(ll, single, atol=1e-2)
    assert torch.equal(ll.argsort(1), single.argsort(1))


def test_summary_by_hand():
    ll = torch.tensor([[-10.0, -12.0], [-30.0, -20.0], [-5.0, -4.0]], dtype=torch.float64)
    y = torch.tensor([0, 1, 0])
    s = evaluate.summarize(ll, y, dims=2)
    assert s["accuracy"] == pytest.approx(2 / 3)
    nll = (10 + 20 + 5) / 3
    assert s["bpd"] == pytest.approx((nll + 2 * math.log(256)) / (2 * math.log(2)))
    correct, wrong = evaluate.correct_vs_wrong(ll, y)
    assert correct.tolist() == [10.0, 20.0, 5.0] and wrong.tolist() == [12.0, 30.0, 4.0]


def test_an_unconditional_flow_has_no_accuracy_and_one_density():
    ll = torch.tensor([[-10.0], [-20.0]], dtype=torch.float64)
    s = evaluate.summarize(ll, torch.tensor([3, 7]), dims=2)  # labels in 0..9, one class scored
    assert s["accuracy"] is None and s["bpd"] == s["bpd_marginal"]
    assert s["bpd"] == pytest.approx((15 + 2 * math.log(256)) / (2 * math.log(2)))


def test_threshold_and_recall():
    nll = torch.arange(1, 101, dtype=torch.float64)
    t, recall = evaluate.threshold(nll, 0.95)
    assert t == pytest.approx(95.05) and recall == pytest.approx(0.95)
    assert evaluate.threshold(nll, 1.0) == (100.0, 1.0)
    with pytest.raises(ValueError, match="quantile"):
        evaluate.threshold(nll, 0.0)
