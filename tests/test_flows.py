"""Invertibility and exact log-determinants of every flow layer and of the whole GLOW."""

from __future__ import annotations

import pytest
import torch

from studylib.config import Arch
from studylib.models.flows import (
    FLOWS,
    ActNorm,
    AffineCoupling,
    ChannelPad,
    ChannelReverse,
    CheckerboardCoupling,
    ConditionalGlow,
    FlowSequence,
    InvConv1x1,
    Split,
    Squeeze,
)


def _randomise(module: torch.nn.Module, scale: float = 0.1, seed: int = 0) -> None:
    """Move every parameter off its (often zero) initial value, so the checks are not trivial."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


class _Flatten(torch.nn.Module):
    """Split's output pair joined back into one tensor, so it can be tested like the others."""

    def __init__(self, split: Split):
        super().__init__()
        self.split = split

    def forward(self, x):
        (a, b), logdet = self.split(x)
        return torch.cat([a, b], 1), logdet

    def inverse(self, z):
        half = self.split.half
        return self.split.inverse((z[:, :half], z[:, half:]))


def _layers(channels: int = 4):
    torch.manual_seed(0)
    return {
        "actnorm": ActNorm(channels),
        "invconv": InvConv1x1(channels),
        "coupling": AffineCoupling(channels, 8),
        "squeeze": Squeeze(),
        "split": _Flatten(Split(channels, 8)),
        "step": FlowSequence(ActNorm(channels), InvConv1x1(channels), AffineCoupling(channels, 8)),
        "checkerboard-0": CheckerboardCoupling(channels, 8, 0),
        "checkerboard-1": CheckerboardCoupling(channels, 8, 1),
        "reverse": ChannelReverse(),
    }


@pytest.mark.parametrize("name", list(_layers()))
def test_layer_inverts(name):
    layer = _layers()[name]
    _randomise(layer)
    x = torch.randn(3, 4, 8, 8)
    z, logdet = layer(x)
    assert logdet.shape == (3,)
    assert (layer.inverse(z) - x).abs().max() < 1e-4


@pytest.mark.parametrize("name", list(_layers()))
def test_layer_logdet_matches_autograd_jacobian(name):
    layer = _layers()[name].double()
    _randomise(layer)
    layer.eval()
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v.reshape(x.shape))[0].flatten(), x.flatten())
    expected = torch.linalg.slogdet(jac)[1]
    assert layer(x)[1].item() == pytest.approx(expected.item(), abs=1e-8)


def test_channel_pad_logdet_is_the_noise_scaling():
    pad = ChannelPad(3, 8, scale=2 / 256)
    pad.eval()
    x = torch.rand(2, 3, 8, 8) - 0.5
    z, logdet = pad(x)
    assert z.shape == (2, 6, 8, 8)
    assert torch.equal(z[:, :3], x) and torch.equal(pad.inverse(z), x)
    assert z[:, 3:].min() >= 0 and z[:, 3:].max() <= 2 / 256
    assert torch.allclose(logdet, torch.full((2,), 3 * 64 * torch.log(torch.tensor(2 / 256)).item()))


def test_actnorm_initialises_from_data_and_survives_state_dict():
    torch.manual_seed(0)
    layer = ActNorm(3)
    x = 2.0 + 3.0 * torch.randn(64, 3, 8, 8)
    z, _ = layer.train()(x)
    assert z.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert (z.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-4
    copy = ActNorm(3)
    copy.load_state_dict(layer.state_dict())
    assert bool(copy.initialized)
    copy.train()(x + 100)  # must not re-initialise on new data
    assert torch.equal(copy.loc, layer.loc) and torch.equal(copy.log_scale, layer.log_scale)


@pytest.mark.parametrize("flow", list(FLOWS))
@pytest.mark.parametrize("prior", ["gaussian", "split"])
@pytest.mark.parametrize("channels", [1, 3])
def test_glow_inverts_and_shapes(flow, prior, channels):
    torch.manual_seed(0)
    model = FLOWS[flow](channels, 10, Arch(3, 2, 16), prior)
    assert model.config["kind"] == flow
    x = torch.rand(4, channels, 32, 32) - 0.5
    model.train()(x)  # actnorm init
    _randomise(model, scale=0.01)
    model.eval()
    with torch.no_grad():
        z, logdet = model(x)
        assert z.shape == (4, 2 * channels * 32 * 32)
        assert (model.inverse(z) - x).abs().max() < 1e-4
        assert model.log_prob(x).shape == (4, 10)
        samples = model.sample(torch.arange(10), temperature=0.5)
    assert samples.shape == (10, channels, 32, 32) and torch.isfinite(samples).all()


def test_glow_log_prob_is_deterministic_in_eval_mode():
    torch.manual_seed(0)
    model = ConditionalGlow(1, 10, Arch(2, 2, 8)).eval()
    x = torch.rand(5, 1, 32, 32) - 0.5
    with torch.no_grad():
        assert torch.equal(model.log_prob(x), model.log_prob(x))
        # one image's value does not depend on the rest of its batch
        assert torch.allclose(model.log_prob(x)[2], model.log_prob(x[2:3])[0], atol=1e-3)


@pytest.mark.parametrize("flow", list(FLOWS))
def test_training_forward_traces_as_one_graph_for_torch_compile(flow):
    """No graph break (ActNorm's first-batch branch included): torch.compile can fuse the
    whole flow, as `studylib bench --peers --compile` measures."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = FLOWS[flow](1, 10, Arch(2, 1, 8), "split").train()
    x = torch.rand(4, 1, 32, 32) - 0.5
    model(x)  # actnorm init, outside the trace
    explained = torch._dynamo.explain(model.scores)(x)
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
    assert explained.graph_count == 1
