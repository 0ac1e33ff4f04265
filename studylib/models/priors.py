"""Class-conditional priors on the flattened latent z. Each returns log p(z|y) for ALL
classes at once, so one flow pass classifies (Bayes' rule with p(y) = 1/C)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from studylib.config import FAMILIES, READOUTS

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Diagonal Gaussian log-density summed over the last axis (broadcasting)."""
    return _gaussian_log_prob(z, mean, log_std).sum(-1)


def _laplace_log_prob(z: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    return -(z - mean).abs() * torch.exp(-log_scale) - log_scale - math.log(2)


def _cauchy_log_prob(z: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    return -torch.log1p(((z - mean) * torch.exp(-log_scale)) ** 2) - log_scale - math.log(math.pi)


def _gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    return -0.5 * (((z - mean) * torch.exp(-log_scale)) ** 2 + 2 * log_scale + LOG_2PI)


# Per-coordinate log-densities of the robust priors of appendix C.1 (location, log-scale).
_DENSITIES = {"gaussian": _gaussian_log_prob, "laplace": _laplace_log_prob, "cauchy": _cauchy_log_prob}


def select_rows(table: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """table[y] as a one-hot weighted sum: exact, in the table's precision, and with a
    deterministic backward (indexing's backward accumulates in a thread-dependent order)."""
    return (F.one_hot(y, len(table)).to(table.dtype)[:, :, None] * table).sum(1)


class ClassGaussianPrior(nn.Module):
    """p(z|y): one learned factorised density per class (Base and Reweighted objectives).

    `family` is the Gaussian N(mean_y, std_y^2), or appendix C.1's robust alternatives: a
    Laplace, a Cauchy, or per coordinate a mixture of the Gaussian with a Laplace or Cauchy
    at the same location (its own scale and a learned weight). `smoothing` eps is appendix
    C.2's label smoothing in the latent: the cluster is the label with probability 1 - eps
    and any other class with eps / (C - 1), marginalised, so log p(z|y) becomes
    logsumexp_c log W[y, c] + log p(z|c)."""

    def __init__(self, dims: int, num_classes: int, family: str = "gaussian", smoothing: float = 0.0):
        super().__init__()
        if family not in FAMILIES:
            raise ValueError(f"unknown prior family {family!r}; allowed values: {', '.join(FAMILIES)}")
        if not 0 <= smoothing < 1 or (smoothing > 0 and num_classes < 2):
            raise ValueError(f"label smoothing must be in [0, 1) with two or more classes, got {smoothing}")
        self.family, self.smoothing = family, smoothing
        self.mean = nn.Parameter(torch.zeros(num_classes, dims))
        self.log_std = nn.Parameter(torch.zeros(num_classes, dims))
        if "+" in family:  # the second component's scale and the mixing weight's logit
            self.log_scale2 = nn.Parameter(torch.zeros(num_classes, dims))
            self.mix_logit = nn.Parameter(torch.zeros(num_classes, dims))
        if smoothing > 0:
            eye = torch.eye(num_classes)
            weights = (1 - smoothing) * eye + smoothing / (num_classes - 1) * (1 - eye)
            self.register_buffer("log_smoothing", weights.log())

    def _coordinates(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, D) log-density of each coordinate under each class."""
        z = z[:, None, :]
        first, _, second = self.family.partition("+")
        log_p = _DENSITIES[first](z, self.mean, self.log_std)
        if second:
            other = _DENSITIES[second](z, self.mean, self.log_scale2)
            log_p = torch.logaddexp(F.logsigmoid(self.mix_logit) + log_p, F.logsigmoid(-self.mix_logit) + other)
        return log_p

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, C) log p(z|y)."""
        per_class = self._coordinates(z).sum(-1)
        if self.smoothing > 0:
            per_class = torch.logsumexp(per_class[:, None, :] + self.log_smoothing, -1)
        return per_class

    def scores(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(z|y), the logits whose cross-entropy the reweighted objective trains: the same)."""
        log_p = self.log_prob(z)
        return log_p, log_p

    def sample(self, y: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Draws from p(z|y) with every scale multiplied by `temperature`."""
        if self.smoothing > 0:  # the latent cluster first
            y = torch.multinomial(self.log_smoothing[y].exp(), 1).squeeze(1)
        first, _, second = self.family.partition("+")
        mean = select_rows(self.mean, y)
        draw = self._standard(first, mean) * torch.exp(select_rows(self.log_std, y))
        if second:
            other = self._standard(second, mean) * torch.exp(select_rows(self.log_scale2, y))
            draw = torch.where(torch.rand_like(draw) < torch.sigmoid(select_rows(self.mix_logit, y)), draw, other)
        return mean + temperature * draw

    @staticmethod
    def _standard(family: str, like: torch.Tensor) -> torch.Tensor:
        if family == "gaussian":
            return torch.randn_like(like)
        u = torch.rand_like(like).clamp(1e-6, 1 - 1e-6) - 0.5
        if family == "laplace":
            return -u.sign() * torch.log1p(-2 * u.abs())
        return torch.tan(math.pi * u)  # Cauchy


class SplitPrior(nn.Module):
    """Appendix A.4: z = (z_s, z_n) with z_s of size C.

    p(z_s|y) = N(e_y, sigma^2 I), so log p(z_s|y) = z_s[y]/sigma^2 + terms free of y: z_s
    are logits whose cross-entropy can be up-weighted. p(z_n|z_s, y) is a diagonal Gaussian
    whose mean and log-std are a linear function of z_s plus a per-class offset.

    Which C coordinates are z_s (the paper leaves it open): `readout="corner"` takes the
    first C of z, pixels in the top-left corner of the last level's map `head` (C, S, S),
    which a shallow flow's couplings barely connect to the lower part of the image;
    `"lowpass"` first rotates the head by an orthonormal 2-D DCT per channel, so z_s are
    its lowest spatial frequencies, each a readout of the whole map. The rotation has unit
    Jacobian: the density stays exact."""

    def __init__(self, dims: int, num_classes: int, readout: str = "corner", head: tuple[int, int, int] = (0, 0, 0)):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown split readout {readout!r}; allowed values: {', '.join(READOUTS)}")
        channels, size, _ = head
        if readout == "lowpass" and channels * size * size < num_classes:
            raise ValueError(f"the lowpass readout needs the last level's map {head} to hold {num_classes} values")
        self.num_classes, self.readout, self.head = num_classes, readout, tuple(head)
        if readout == "lowpass":
            self.register_buffer("dct", dct_matrix(size))
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

    def _rotate(self, z: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        """The lowpass readout's rotation of the head (frequency-major order), or its inverse."""
        if self.readout == "corner":
            return z
        c, s, _ = self.head
        head, rest = z[:, : c * s * s], z[:, c * s * s :]
        if inverse:
            h = head.reshape(-1, s, s, c).permute(0, 3, 1, 2)
            h = self.dct.T @ h @ self.dct
        else:
            h = (self.dct @ head.reshape(-1, c, s, s) @ self.dct.T).permute(0, 2, 3, 1)
        return torch.cat([h.flatten(1), rest], 1)

    def scores(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) -> (log p(z|y) = log p(z_s|y) + log p(z_n|z_s, y), the logits log p(z_s|y)
        that the split objective up-weights), both (B, C), from one rotation of z."""
        z = self._rotate(z)
        zs, zn = z[:, : self.num_classes], z[:, self.num_classes :]
        mean, log_std = self._zn_params(zs)
        logits = self._zs_log_prob(zs)
        return logits + gaussian_log_prob(zn[:, None, :], mean, log_std), logits

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, C) log p(z|y)."""
        return self.scores(z)[0]

    def sample(self, y: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        zs = self.onehot[y] + temperature * torch.exp(self.log_sigma) * torch.randn_like(self.onehot[y])
        mean, log_std = self._zn_params(zs)
        idx = torch.arange(len(y), device=y.device)
        mean, log_std = mean[idx, y], log_std[idx, y]
        zn = mean + temperature * torch.exp(log_std) * torch.randn_like(mean)
        return self._rotate(torch.cat([zs, zn], 1), inverse=True)


def dct_matrix(size: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix: row k is the k-th cosine over `size` points."""
    n = torch.arange(size, dtype=torch.float64)
    rows = torch.cos(math.pi * (n[None, :] + 0.5) * n[:, None] / size) * math.sqrt(2 / size)
    rows[0] /= math.sqrt(2)
    return rows.float()


PRIORS = {"gaussian": ClassGaussianPrior, "split": SplitPrior}
