"""Affine coupling (Dinh et al. 2017, Kingma & Dhariwal 2018) with a bounded scale."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studylib.models.flows.base import Flow


def coupling_net(in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    """conv3x3 - ReLU - conv1x1 - ReLU - conv3x3, the last zero-initialised so that a new
    coupling starts close to the identity."""
    last = nn.Conv2d(hidden, out_channels, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden, hidden, 1),
        nn.ReLU(),
        last,
    )


class AffineCoupling(Flow):
    """x = (x_a, x_b) along channels; z_b = (x_b + shift(x_a)) * sigmoid(raw(x_a) + 2),
    z_a = x_a. The sigmoid bounds the scale in (0, 1), which keeps training stable."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.half = channels // 2
        self.net = coupling_net(self.half, hidden, 2 * (channels - self.half))

    def _shift_scale(self, xa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(xa).to(xa.dtype)  # the net may run under bf16 autocast; the flow does not
        return h[:, 0::2], h[:, 1::2] + 2.0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xa, xb = x[:, : self.half], x[:, self.half :]
        shift, raw = self._shift_scale(xa)
        zb = (xb + shift) * torch.sigmoid(raw)
        return torch.cat([xa, zb], 1), F.logsigmoid(raw).sum(dim=(1, 2, 3))

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        za, zb = z[:, : self.half], z[:, self.half :]
        shift, raw = self._shift_scale(za)
        return torch.cat([za, zb / torch.sigmoid(raw) - shift], 1)
