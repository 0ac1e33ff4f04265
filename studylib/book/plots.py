"""Figure and table helpers every study uses: the seaborn theme, aligned plain-text tables,
image grids. Each chapter's own figures live in its study module (studylib/studies/)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

sns.set_theme(context="notebook", style="whitegrid")


def image_grid(images, nrow: int, title: str = "", row_labels: list[str] | None = None):
    """Images in [-0.5, 0.5] of shape (N, c, H, W) as a grid with `nrow` images per row."""
    import torchvision  # imported here: it takes a second

    grid = torchvision.utils.make_grid(images.detach().cpu().clamp(-0.5, 0.5) + 0.5, nrow=nrow, padding=2)
    fig, ax = plt.subplots(figsize=(nrow * 0.7, len(images) / nrow * 0.7 + 0.4))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_title(title)
    image_axis(ax)
    if row_labels:
        step = grid.shape[1] / len(row_labels)
        ax.set_yticks([step * (i + 0.5) for i in range(len(row_labels))], row_labels)
    fig.tight_layout()
    return fig


def image_axis(ax) -> None:
    """An axis that shows an image: no ticks, and none of the theme's grid lines across it."""
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])


def to_image(x) -> np.ndarray:
    """(c, H, W) in [-0.5, 0.5] -> (H, W) or (H, W, 3) in [0, 1] for imshow."""
    img = (x.detach().cpu().clamp(-0.5, 0.5) + 0.5).numpy()
    return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
