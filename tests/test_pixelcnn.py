"""The conditional PixelCNN++: a normalised likelihood, the autoregressive order, and
training through the model cache."""

from __future__ import annotations

import pytest
import torch

from studylib.config import Arch, get_profile
from studylib.models.pixelcnn import ConditionalPixelCNN, discretized_logistic_log_prob
from studylib.training import zoo

LEVELS = torch.arange(256, dtype=torch.float64) * 2 / 255 - 1


def _model(channels: int, classes: int = 3) -> ConditionalPixelCNN:
    torch.manual_seed(0)
    model = ConditionalPixelCNN(channels, classes, Arch(1, 2, 8)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("mean, log_scale", [(0.0, -3.0), (0.7, -5.0), (-0.99, -1.0), (0.2, -8.0)])
def test_discretised_logistic_sums_to_one_over_the_256_levels(mean, log_scale):
    log_p = discretized_logistic_log_prob(LEVELS, torch.tensor(mean).double(), torch.tensor(log_scale).double())
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=2e-3)


def test_each_class_distribution_over_every_two_pixel_image_sums_to_one():
    model = _model(1)
    a, b = torch.meshgrid(LEVELS, LEVELS, indexing="ij")
    images = torch.stack([a.flatten(), b.flatten()], 1).reshape(-1, 1, 1, 2)  # all 65 536 images
    with torch.no_grad():
        log_p = model._log_prob_levels(images)  # (65536, classes)
    total = torch.logsumexp(log_p, 0).exp()
    torch.testing.assert_close(total, torch.ones(3, dtype=torch.float64), atol=5e-3, rtol=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_a_pixel_depends_only_on_the_pixels_before_it(channels):
    model = _model(channels)
    levels = (torch.rand(1, channels, 5, 5, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    for i, j in [(0, 0), (2, 3), (4, 4), (3, 0)]:
        (grad,) = torch.autograd.grad(model._parameters_of(levels)[..., i, j].sum(), levels)
        rows, cols = torch.meshgrid(torch.arange(5), torch.arange(5), indexing="ij")
        later = (rows > i) | ((rows == i) & (cols >= j))
        assert grad[:, :, later].abs().max() == 0
        if (i, j) != (0, 0):
            assert grad[:, :, ~later].abs().max() > 0  # and it does see earlier pixels


def test_colour_channels_follow_one_another_within_a_pixel():
    model = _model(3)
    levels = (torch.rand(1, 3, 3, 3, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    log_p = model._log_prob_levels(levels)
    # the red value's log-probability at the last pixel cannot depend on its green or blue
    params = model._parameters_of(levels)
    red = discretized_logistic_log_prob(levels[:, None, 0, 2, 2], params[:, :, 0, 2, 2], params[:, :, 3, 2, 2])
    (grad,) = torch.autograd.grad(red.sum(), levels)
    assert grad[0, 1:, 2, 2].abs().max() == 0
    assert log_p.shape == (1, 3)


def test_pixelcnn_trains_through_the_cache_as_reweighted_and_refuses_a_latent_prior(home):
    tiny = get_profile("smoke").replace(batch_size=8, train_steps={"mnist": 4, "cifar10": 4}, model_kind="pixelcnn")
    model = zoo.get_model("mnist", "reweighted", tiny, progress=False)
    assert type(model).__name__ == "ConditionalPixelCNN" and model.log_prob(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    assert type(zoo.get_model("mnist", "reweighted", tiny, progress=False)).__name__ == "ConditionalPixelCNN"
    with pytest.raises(ValueError, match="no latent prior"):
        zoo.get_model("mnist", "split", tiny, progress=False)
    assert not any(p.name.startswith("mnist-split") for p in (home / "models").iterdir())  # refused first
    samples = model.sample(torch.tensor([0, 1]))
    assert samples.shape == (2, 1, 32, 32) and samples.min() >= -0.5 and samples.max() <= 0.5
