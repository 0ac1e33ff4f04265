"""Shape-changing flows: squeeze, multi-scale split, and channel padding with noise."""

from __future__ import annotations

import contextlib
import math

import torch

from studylib.models.flows.base import Flow
from studylib.models.flows.coupling import AffineCoupling


class Squeeze(Flow):
    """Space to depth: (B, C, H, W) -> (B, 4C, H/2, W/2); volume preserving."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        z = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return z.reshape(b, 4 * c, h // 2, w // 2), x.new_zeros(b)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        b, c, h, w = z.shape
        x = z.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(b, c // 4, 2 * h, 2 * w)


class Split(Flow):
    """Multi-scale split: half the channels leave the flow here. Their learned Gaussian
    prior conditioned on the kept half (as in GLOW) is written as an affine coupling, so the
    leaving half is standardised and the class-conditional prior at the end sees all of z.
    forward(x) -> ((kept, leaving), logdet); inverse((kept, leaving)) -> x."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.half = channels // 2
        self.coupling = AffineCoupling(channels, hidden)

    def forward(self, x: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        z, logdet = self.coupling(x)
        return (z[:, : self.half], z[:, self.half :]), logdet

    def inverse(self, z: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.coupling.inverse(torch.cat(z, 1))


class ChannelPad(Flow):
    """Doubles the channels with U(0, 1) noise scaled to [0, scale] (appendix A.3/B).

    The noise has unit density, so log p(x) = log p(x, u) and the scaling's log-det,
    (number of padded values) * log(scale), enters the Jacobian term. In eval mode the
    noise is a fixed seeded buffer, which makes log-likelihoods deterministic."""

    def __init__(self, channels: int, size: int, scale: float = 2 / 256, seed: int = 0):
        super().__init__()
        self.channels = channels
        self.scale = scale
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("fixed_noise", torch.rand(channels, size, size, generator=gen))
        self._given: torch.Tensor | None = None

    @contextlib.contextmanager
    def given(self, noise: torch.Tensor):
        """Use `noise` instead of a fresh draw while training (a rank's slice of the noise a
        one-process step would draw for the whole batch)."""
        self._given = noise
        try:
            yield
        finally:
            self._given = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            noise = self._given if self._given is not None else torch.rand_like(x)
        else:
            noise = self.fixed_noise.expand_as(x)
        logdet = x.new_full((x.shape[0],), x[0].numel() * math.log(self.scale))
        return torch.cat([x, noise * self.scale], 1), logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, : self.channels]
