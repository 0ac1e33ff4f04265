"""RealNVP (Dinh et al. 2017): checkerboard and channel-wise affine couplings, multi-scale,
on the skeleton of our GLOW (noise padding, split + squeeze between levels, the prior)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from studylib.models.flows.actnorm import ActNorm
from studylib.models.flows.base import Flow, FlowSequence
from studylib.models.flows.coupling import AffineCoupling, coupling_net
from studylib.models.flows.glow import ConditionalGlow


def checkerboard(height: int, width: int, parity: int, like: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) mask, 1 where (row + column) % 2 == parity."""
    rows, cols = torch.arange(height, device=like.device), torch.arange(width, device=like.device)
    return ((rows[:, None] + cols) % 2 == parity).to(like.dtype)[None, None]


class CheckerboardCoupling(Flow):
    """The pixels of one checkerboard colour condition an affine map of the others, every
    channel: z = m x + (1 - m) (x + shift(m x)) sigmoid(raw(m x) + 2), bounded as ours."""

    def __init__(self, channels: int, hidden: int, parity: int):
        super().__init__()
        self.parity = parity
        self.net = coupling_net(channels, hidden, 2 * channels)

    def _parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = checkerboard(x.shape[2], x.shape[3], self.parity, x)
        h = self.net(x * mask).to(x.dtype)
        return mask, h[:, 0::2], h[:, 1::2] + 2.0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask, shift, raw = self._parts(x)
        z = mask * x + (1 - mask) * ((x + shift) * torch.sigmoid(raw))
        return z, ((1 - mask) * F.logsigmoid(raw)).sum(dim=(1, 2, 3))

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        mask, shift, raw = self._parts(z)  # z and x agree where the mask is 1
        return mask * z + (1 - mask) * (z / torch.sigmoid(raw) - shift)


class ChannelReverse(Flow):
    """Reverses the channel order, so successive channel-wise couplings alternate halves."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.flip(1), x.new_zeros(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z.flip(1)


class RealNVP(ConditionalGlow):
    """Each level: K/2 checkerboard couplings of alternating colour, then K/2 channel-wise
    couplings of alternating halves, each after an actnorm (RealNVP's batch norm, in the
    form GLOW uses); no invertible 1x1 convolutions. Dinh et al. squeeze between the two
    kinds; we keep GLOW's squeeze at the end of the level."""

    kind = "realnvp"

    def level(self, channels: int, hidden: int, steps: int) -> FlowSequence:
        board = [
            FlowSequence(ActNorm(channels), CheckerboardCoupling(channels, hidden, i % 2))
            for i in range(max(1, steps // 2))
        ]
        wise = [
            FlowSequence(ActNorm(channels), ChannelReverse(), AffineCoupling(channels, hidden))
            for _ in range(max(1, steps - steps // 2))
        ]
        return FlowSequence(*board, *wise)
