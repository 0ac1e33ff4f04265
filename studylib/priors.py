"""Class-conditional priors on the flattened latent z. Each returns log p(z|y) for ALL
classes at once, so one flow pass classifies (Bayes' rule with p(y) = 1/C)."""

from __future__ import annotations

import math

import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Diagonal Gaussian log-density summed over the last axis (broadcasting)."""
    return -0.5 * (((z - mean) * torch.exp(-log_std)) ** 2 + 2 * log_std + LOG_2PI).sum(-1)


class ClassGaussianPrior(nn.Module):
    """p(z|y) = N(mean_y, diag(std_y^2)): one learned diagonal Gaussian per class (Base and
    Reweighted objectives)."""

    def __init__(self, dims: int, num_classes: int):
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(num_classes, dims))
        self.log_std = nn.Parameter(torch.zeros(num_classes, dims))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, C) log p(z|y)."""
        return gaussian_log_prob(z[:, None, :], self.mean, self.log_std)

    def logits(self, z: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
        """The scores whose cross-entropy the reweighted objective trains: log p(z|y) itself."""
        return log_prob

    def sample(self, y: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        eps = torch.randn(len(y), self.mean.shape[1], device=self.mean.device)
        return self.mean[y] + temperature * torch.exp(self.log_std[y]) * eps


class SplitPrior(nn.Module):
    """Appendix A.4: z = (z_s, z_n) with z_s of size C.

    p(z_s|y) = N(e_y, sigma^2 I), so log p(z_s|y) = z_s[y]/sigma^2 + terms free of y: z_s
    are logits whose cross-entropy can be up-weighted. p(z_n|z_s, y) is a diagonal Gaussian
    whose mean and log-std are a linear function of z_s plus a per-class offset."""

    def __init__(self, dims: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        rest = dims - num_classes
        self.log_sigma = nn.Parameter(torch.zeros(()))
        self.proj = nn.Linear(num_classes, 2 * rest)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.class_mean = nn.Parameter(torch.zeros(num_classes, rest))
        self.class_log_std = nn.Parameter(torch.zeros(num_classes, rest))
        self.register_buffer("onehot", torch.eye(num_classes))

    def _zs_log_prob(self, zs: torch.Tensor) -> torch.Tensor:
        return gaussian_log_prob(zs[:, None, :], self.onehot, self.log_sigma.expand(self.num_classes))

    def _zn_params(self, zs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(zs.device.type, enabled=False):
            mean, log_std = self.proj(zs).chunk(2, dim=-1)
        return mean[:, None, :] + self.class_mean, log_std[:, None, :] + self.class_log_std

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, C) log p(z_s|y) + log p(z_n|z_s, y)."""
        zs, zn = z[:, : self.num_classes], z[:, self.num_classes :]
        mean, log_std = self._zn_params(zs)
        return self._zs_log_prob(zs) + gaussian_log_prob(zn[:, None, :], mean, log_std)

    def logits(self, z: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
        """log p(z_s|y): the up-weighted logits of the split objective."""
        return self._zs_log_prob(z[:, : self.num_classes])

    def sample(self, y: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        zs = self.onehot[y] + temperature * torch.exp(self.log_sigma) * torch.randn_like(self.onehot[y])
        mean, log_std = self._zn_params(zs)
        idx = torch.arange(len(y), device=y.device)
        mean, log_std = mean[idx, y], log_std[idx, y]
        zn = mean + temperature * torch.exp(log_std) * torch.randn_like(mean)
        return torch.cat([zs, zn], 1)


PRIORS = {"gaussian": ClassGaussianPrior, "split": SplitPrior}
