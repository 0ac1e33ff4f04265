"""Interpolation paths and their statistics."""

from __future__ import annotations

import pytest
import torch

from studylib.config import Arch
from studylib.measure import interpolate
from studylib.models.flows import ConditionalGlow


def test_path_endpoints_are_the_inputs_and_alphas_are_monotone():
    x0, x1 = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    alphas, images = interpolate.path(x0, x1, 7)
    assert images.shape == (3, 7, 1, 4, 4)
    assert torch.equal(images[:, 0], x0) and torch.allclose(images[:, -1], x1)
    assert (alphas.diff() > 0).all() and alphas[0] == 0 and alphas[-1] == 1
    assert torch.allclose(images[:, 3], (x0 + x1) / 2)
    with pytest.raises(ValueError, match="steps must be >= 2"):
        interpolate.path(x0, x1, 1)


def test_pairs_are_correct_below_threshold_and_of_different_classes():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 4
    ll = torch.nn.functional.one_hot(y, 4).double() * 5
    ll[::5] = torch.nn.functional.one_hot((y[::5] + 1) % 4, 4).double() * 5  # misclassified
    nll = torch.linspace(0, 2, 40)
    i0, i1 = interpolate.select_pairs(ll, y, nll, 1.0, 10, gen)
    assert len(i0) == 10
    assert (y[i0] != y[i1]).all() and (nll[i0] <= 1).all() and (nll[i1] <= 1).all()
    assert (ll[i0].argmax(1) == y[i0]).all() and (ll[i1].argmax(1) == y[i1]).all()


def test_path_statistics_by_hand():
    nll = torch.tensor([[1.0, 2.0, 1.0], [1.0, 0.5, 1.2]], dtype=torch.float64)
    paths = interpolate.Paths(torch.tensor([0.0, 0.5, 1.0]), nll, torch.zeros(2, 3), torch.zeros(2, 3))
    assert paths.below(1.5).tolist() == [False, True]
    assert torch.allclose(paths.mid_rise(), torch.tensor([1.0, -0.6], dtype=torch.float64))
    s = paths.summary(1.5, clean_sd_bpd=0.2)
    assert s["paths_below_threshold"] == 0.5 and s["paths_rising"] == 0.5
    assert s["mid_rise_bpd"] == pytest.approx(0.2) and s["mid_rise_sd"] == pytest.approx(1.0)


def test_interpolate_on_a_model_matches_direct_evaluation():
    torch.manual_seed(0)
    model = ConditionalGlow(1, 10, Arch(2, 1, 8)).eval()
    x0, x1 = torch.rand(2, 1, 32, 32) - 0.5, torch.rand(2, 1, 32, 32) - 0.5
    y0, y1 = torch.tensor([0, 1]), torch.tensor([2, 3])
    paths = interpolate.interpolate(model, x0, x1, y0, y1, steps=5, batch_size=3, progress=False)
    assert paths.nll.shape == (2, 5) and paths.p_y0.shape == (2, 5)
    with torch.no_grad():
        ll = model.log_prob(x1).double()
    assert torch.allclose(paths.p_y1[:, -1], torch.softmax(ll, 1)[[0, 1], [2, 3]], atol=1e-4)
    assert ((paths.p_y0 >= 0) & (paths.p_y0 <= 1)).all()


def test_pairs_from_a_useless_classifier_ignore_correctness_with_a_warning():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(20) % 2
    ll = torch.zeros(20, 2, dtype=torch.float64)
    ll[:, 0] = 1.0  # predicts class 0 for everything
    with pytest.warns(UserWarning, match="ignoring correctness"):
        i0, i1 = interpolate.select_pairs(ll, y, torch.zeros(20), 1.0, 5, gen)
    assert len(i0) == 5 and (y[i0] != y[i1]).all()
    with pytest.raises(ValueError, match="all of one class"):
        interpolate.select_pairs(ll, torch.zeros(20, dtype=torch.long), torch.zeros(20), 1.0, 5, gen)
