"""The adversarial half of a conditional Flow-GAN (Grover et al. 2018; the paper's appendix
C.3): a small class-conditional discriminator and the losses that train it against the
flow's samples, which the flow also trains by maximum likelihood."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studylib.models.flows import ConditionalGlow
from studylib.models.priors import select_rows


class Discriminator(nn.Module):
    """Three strided 3x3 convolutions (widths w, 2w, 4w) with LeakyReLU, then an unconditional
    score plus the features' projection on a learned class embedding (Miyato & Koyama 2018)."""

    def __init__(self, channels: int, num_classes: int, width: int = 32):
        super().__init__()
        layers, c = [], channels
        for w in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c = w
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.score = nn.Linear(c, 1)
        self.embed = nn.Embedding(num_classes, c)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B,) logits of 'real'."""
        h = self.features(x)
        return self.score(h).squeeze(1) + (select_rows(self.embed.weight, y) * h).sum(1)


def gan_losses(
    model: ConditionalGlow, disc: Discriminator, real: torch.Tensor, y: torch.Tensor, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(generator loss, discriminator loss) for one batch: the flow samples one image per
    label through its inverse, with gradients; the generator loss is the non-saturating
    -log D(fake), the discriminator's the cross-entropy of real against (detached) fake."""
    fake = model.inverse(model.prior.sample(y, temperature)).float()
    disc_loss = F.softplus(-disc(real, y)).mean() + F.softplus(disc(fake.detach(), y)).mean()
    gen_loss = F.softplus(-disc(fake, y)).mean()
    return gen_loss, disc_loss
