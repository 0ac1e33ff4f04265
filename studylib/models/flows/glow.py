"""The multi-scale conditional GLOW of appendix B, with the squeeze at the END of each level."""

from __future__ import annotations

import torch
from torch import nn

from studylib.config import Arch, model_config
from studylib.models.flows.actnorm import ActNorm
from studylib.models.flows.base import Flow, FlowSequence
from studylib.models.flows.coupling import AffineCoupling
from studylib.models.flows.invconv import InvConv1x1
from studylib.models.flows.reshape import ChannelPad, Split, Squeeze
from studylib.models.priors import PRIORS


def flow_step(channels: int, hidden: int) -> FlowSequence:
    """One GLOW step: actnorm, invertible 1x1 convolution, affine coupling."""
    return FlowSequence(ActNorm(channels), InvConv1x1(channels), AffineCoupling(channels, hidden))


class ConditionalGlow(Flow):
    """Class-conditional GLOW: the image is padded with noise channels, passed through L
    levels of K steps (each level but the last ends with split + squeeze), and the
    flattened latent z gets a class-conditional prior. Class information enters only
    through the prior, so `log_prob` gives log p(x|y) for every class in one pass."""

    kind = "glow"

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        arch: Arch,
        prior: str = "gaussian",
        size: int = 32,
        prior_options: dict | None = None,
    ):
        super().__init__()
        self.config = model_config(self.kind, in_channels, num_classes, arch, prior, size, prior_options)
        self.num_classes = num_classes
        self.n_dims = in_channels * size * size
        self.pad = ChannelPad(in_channels, size)
        self.steps = nn.ModuleList()
        self.splits = nn.ModuleList()
        self.squeeze = Squeeze()
        channels = 2 * in_channels
        self.out_shapes: list[tuple[int, int, int]] = []
        for level in range(arch.levels):
            hidden = arch.hidden_at(level)
            self.steps.append(self.level(channels, hidden, arch.steps))
            if level < arch.levels - 1:
                self.splits.append(Split(channels, hidden))
                self.out_shapes.append((channels - channels // 2, size, size))
                channels, size = 4 * (channels // 2), size // 2
        # The last level's output goes first in z, so the split prior's z_s is its start.
        self.out_shapes.insert(0, (channels, size, size))
        head = {"head": self.out_shapes[0]} if prior == "split" else {}  # where the split prior reads z_s
        self.prior = PRIORS[prior](2 * self.n_dims, num_classes, **head, **(prior_options or {}))

    def level(self, channels: int, hidden: int, steps: int) -> FlowSequence:
        """The flow steps of one level: `steps` GLOW steps."""
        return FlowSequence(*(flow_step(channels, hidden) for _ in range(steps)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, c, H, W) -> flattened z (B, 2cHW) and log|det dz/dx| (B,)."""
        h, logdet = self.pad(x)
        leaving = []
        for i, steps in enumerate(self.steps):
            h, ld = steps(h)
            logdet = logdet + ld
            if i < len(self.splits):
                (h, out), ld = self.splits[i](h)
                logdet = logdet + ld
                leaving.append(out)
                h, _ = self.squeeze(h)
        return torch.cat([t.flatten(1) for t in [h, *leaving]], 1), logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        sizes = [c * hh * ww for c, hh, ww in self.out_shapes]
        parts = [p.reshape(-1, *s) for p, s in zip(z.split(sizes, 1), self.out_shapes, strict=True)]
        h, leaving = parts[0], parts[1:]
        for i in reversed(range(len(self.steps))):
            if i < len(self.splits):
                h = self.splits[i].inverse((self.squeeze.inverse(h), leaving[i]))
            h = self.steps[i].inverse(h)
        return self.pad.inverse(h)

    def scores(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(x|y) for all classes, the logits the objective's cross-entropy uses)."""
        z, logdet = self(x)
        log_pz, logits = self.prior.scores(z)
        return log_pz + logdet[:, None], logits

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C) log p(x|y) in nats over the unpadded image, one flow pass."""
        z, logdet = self(x)
        return self.prior.log_prob(z) + logdet[:, None]

    @torch.no_grad()
    def sample(self, y: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Images drawn from p(x|y) with the prior's spread scaled by `temperature`."""
        return self.inverse(self.prior.sample(y, temperature))
