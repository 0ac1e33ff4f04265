"""ActNorm (Kingma & Dhariwal 2018): per-channel affine map, initialised from the first batch."""

from __future__ import annotations

import torch
from torch import nn

from studylib.models.flows.base import Flow


class ActNorm(Flow):
    """z = (x + loc) * exp(log_scale); the first training batch sets z to zero mean, unit
    variance per channel. `initialized` is a buffer so it survives state_dict round trips."""

    def __init__(self, channels: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))
        self.ready = False  # `initialized` as a Python bool: a branch torch.compile can guard on

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Data-dependent init from the batch `x`."""
        self.loc.copy_(-x.mean(dim=(0, 2, 3), keepdim=True))
        self.log_scale.copy_(-torch.log(x.std(dim=(0, 2, 3), keepdim=True) + 1e-6))
        self.initialized.fill_(True)
        self.ready = True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.ready = bool(self.initialized)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not self.ready:
            self.initialize(x)
        z = (x + self.loc) * torch.exp(self.log_scale)
        logdet = self.log_scale.sum() * x.shape[2] * x.shape[3]
        return z, logdet.expand(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * torch.exp(-self.log_scale) - self.loc
