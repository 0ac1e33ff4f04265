"""Invertible 1x1 convolution with an LU-parameterised weight (Kingma & Dhariwal 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studylib.models.flows.base import Flow


class InvConv1x1(Flow):
    """W = P L (U + diag(sign * exp(log_s))): log|det W| = sum(log_s), no slogdet needed.
    Starts at a random rotation (from the global torch RNG)."""

    def __init__(self, channels: int):
        super().__init__()
        w = torch.linalg.qr(torch.randn(channels, channels))[0]
        p, lower, upper = torch.linalg.lu(w)
        s = torch.diagonal(upper)
        self.register_buffer("p", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def weight(self) -> torch.Tensor:
        """The current C x C weight matrix."""
        eye = torch.eye(len(self.log_s), device=self.log_s.device, dtype=self.log_s.dtype)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(x.device.type, enabled=False):  # keep the bijection in fp32
            z = F.conv2d(x, self.weight()[:, :, None, None])
        logdet = self.log_s.sum() * x.shape[2] * x.shape[3]
        return z, logdet.expand(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        w_inv = torch.linalg.inv(self.weight().double()).to(z.dtype)
        return F.conv2d(z, w_inv[:, :, None, None])
