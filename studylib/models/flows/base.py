"""The flow interface: forward(x) -> (z, logdet per sample), inverse(z) -> x."""

from __future__ import annotations

import torch
from torch import nn


class Flow(nn.Module):
    """An invertible layer; `forward` returns the output and log|det J| of shape (B,)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class FlowSequence(Flow):
    """Flows applied in order; log-dets add up, the inverse runs them backwards."""

    def __init__(self, *flows: Flow):
        super().__init__()
        self.flows = nn.ModuleList(flows)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for flow in self.flows:
            x, ld = flow(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        for flow in reversed(self.flows):
            z = flow.inverse(z)
        return z
