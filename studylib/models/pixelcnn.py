"""A class-conditional PixelCNN++ (Salimans et al. 2017) as in the paper's appendix E:
instead of a learned mixture of logistics per pixel, one component per class, so one pass
gives log p(x|y) for every class, (B, C), like the flows' `log_prob`.

The network never sees the label; the class only picks the output component. Down- and
down-right-shifted convolutions in two streams keep every output causal (no blind spot):
the distribution of pixel (i, j) depends on the rows above and the pixels to its left, and
for colour images its channels follow one another through linear coefficients."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from studylib.config import Arch, model_config


def discretized_logistic_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log P(x) of 8-bit values scaled to [-1, 1] under a logistic discretised to 256 bins,
    the end bins taking the tails (PixelCNN++'s likelihood), elementwise."""
    centred = x - mean
    inv = torch.exp(-log_scale)
    plus, minus = inv * (centred + 1 / 255), inv * (centred - 1 / 255)
    log_cdf_plus = plus - F.softplus(plus)  # log sigmoid(plus): the lowest bin
    log_one_minus_cdf_minus = -F.softplus(minus)  # the highest bin
    delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = inv * centred
    log_pdf_mid = mid - log_scale - 2 * F.softplus(mid) - math.log(127.5)  # for tiny bins, the density
    inner = torch.where(delta > 1e-5, torch.log(delta.clamp_min(1e-12)), log_pdf_mid)
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_minus, inner))


class _ShiftedConv(nn.Module):
    """A convolution padded so that output (i, j) sees only rows <= i ("down") and, for
    "down-right", only columns <= j as well."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], right: bool = False):
        super().__init__()
        kh, kw = kernel
        self.pad = (kw - 1, 0, kh - 1, 0) if right else ((kw - 1) // 2, (kw - 1) // 2, kh - 1, 0)
        self.conv = nn.Conv2d(cin, cout, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


def _down_shift(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def _right_shift(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


class _GatedResnet(nn.Module):
    """x + gated(conv(elu(conv(elu(x)) [+ aux]))), the convolutions shifted as the stream's."""

    def __init__(self, filters: int, right: bool, aux: bool):
        super().__init__()
        kernel = (2, 2) if right else (2, 3)
        self.first = _ShiftedConv(2 * filters, filters, kernel, right)
        self.aux = nn.Conv2d(2 * filters, filters, 1) if aux else None
        self.second = _ShiftedConv(2 * filters, 2 * filters, kernel, right)

    def forward(self, x: torch.Tensor, aux: torch.Tensor | None = None) -> torch.Tensor:
        h = self.first(F.elu(torch.cat([x, -x], 1)))
        if self.aux is not None:
            h = h + self.aux(F.elu(torch.cat([aux, -aux], 1)))
        a, b = self.second(F.elu(torch.cat([h, -h], 1))).chunk(2, 1)
        return x + a * torch.sigmoid(b)


class ConditionalPixelCNN(nn.Module):
    """`arch.steps` gated residual blocks per stream of `arch.hidden` filters (no
    down-sampling: `arch.levels` is unused). Trains with the base or reweighted objective:
    -log p(x|y)/D + alpha CE(log p(.|x), y), the paper's appendix E."""

    kind = "pixelcnn"

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
        if prior != "gaussian" or prior_options:
            raise ValueError("the PixelCNN has no latent prior: train it with the base or reweighted objective")
        filters = arch.hidden_at(0)
        self.config = model_config(self.kind, in_channels, num_classes, arch, prior, size, None)
        self.channels, self.num_classes, self.size = in_channels, num_classes, size
        self.n_dims = in_channels * size * size
        self.u_start = _ShiftedConv(in_channels + 1, filters, (2, 3))
        self.ul_down = _ShiftedConv(in_channels + 1, filters, (1, 3))
        self.ul_right = _ShiftedConv(in_channels + 1, filters, (2, 1), right=True)
        self.u_blocks = nn.ModuleList(_GatedResnet(filters, right=False, aux=False) for _ in range(arch.steps))
        self.ul_blocks = nn.ModuleList(_GatedResnet(filters, right=True, aux=True) for _ in range(arch.steps))
        # per class: a mean and log-scale per channel, and for colour 3 channel coefficients
        self.per_class = 2 * in_channels + (3 if in_channels == 3 else 0)
        self.out = nn.Conv2d(filters, num_classes * self.per_class, 1)

    @staticmethod
    def to_levels(x: torch.Tensor) -> torch.Tensor:
        """Dequantised images in [-0.5, 0.5] -> their 8-bit values scaled to [-1, 1]."""
        return 2 * torch.floor((x + 0.5) * 256).clamp(0, 255) / 255 - 1

    def _parameters_of(self, levels: torch.Tensor) -> torch.Tensor:
        """(B, C, per_class, H, W) output parameters for images given as levels in [-1, 1]."""
        ones = torch.ones_like(levels[:, :1])  # marks the image inside the zero padding
        x = torch.cat([levels, ones], 1)
        u = _down_shift(self.u_start(x))
        ul = _down_shift(self.ul_down(x)) + _right_shift(self.ul_right(x))
        for u_block, ul_block in zip(self.u_blocks, self.ul_blocks, strict=True):
            u = u_block(u)
            ul = ul_block(ul, u)
        h = self.out(F.elu(ul)).float()
        return h.reshape(len(levels), self.num_classes, self.per_class, *levels.shape[2:])

    def _log_prob_levels(self, levels: torch.Tensor) -> torch.Tensor:
        params = self._parameters_of(levels)
        c = self.channels
        means, log_scales = params[:, :, :c], params[:, :, c : 2 * c].clamp(min=-7.0)
        x = levels[:, None]
        if c == 3:  # green and blue means move linearly with the channels before them
            coeff = torch.tanh(params[:, :, 6:9])
            r, g = x[:, :, 0], x[:, :, 1]
            means = torch.stack(
                [
                    means[:, :, 0],
                    means[:, :, 1] + coeff[:, :, 0] * r,
                    means[:, :, 2] + coeff[:, :, 1] * r + coeff[:, :, 2] * g,
                ],
                2,
            )
        return discretized_logistic_log_prob(x, means, log_scales).sum(dim=(2, 3, 4))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C) log p(x|y) in nats as a density on the dequantised [-0.5, 0.5] pixels (the
        bin probability times 256^D), so bits/dim read as for the flows."""
        return self._log_prob_levels(self.to_levels(x)) + self.n_dims * math.log(256)

    def scores(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(x|y), the logits of the reweighted objective's cross-entropy: the same)."""
        ll = self.log_prob(x)
        return ll, ll

    @torch.no_grad()
    def sample(self, y: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Images from p(x|y), one pixel and channel at a time (H x W network passes), with
        the logistic's scale multiplied by `temperature`; in [-0.5, 0.5]."""
        levels = torch.zeros(len(y), self.channels, self.size, self.size, device=y.device)
        idx = torch.arange(len(y), device=y.device)
        for i in range(self.size):
            for j in range(self.size):
                params = self._parameters_of(levels)[idx, y, :, i, j]  # (B, per_class)
                for ch in range(self.channels):
                    mean = params[:, ch]
                    if self.channels == 3 and ch > 0:
                        coeff = torch.tanh(params[:, 6:9])
                        mean = mean + (coeff[:, 0] * levels[:, 0, i, j] if ch == 1 else 0)
                        if ch == 2:
                            mean = mean + coeff[:, 1] * levels[:, 0, i, j] + coeff[:, 2] * levels[:, 1, i, j]
                    u = torch.rand_like(mean).clamp(1e-5, 1 - 1e-5)
                    value = mean + temperature * params[:, self.channels + ch].clamp(min=-7).exp() * (
                        u.log() - (-u).log1p()
                    )
                    levels[:, ch, i, j] = torch.round((value.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1
        return (levels + 1) / 2 * (255 / 256) - 0.5 + 0.5 / 256
