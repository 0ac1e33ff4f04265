"""Figure and table helpers every study uses: the seaborn theme, aligned plain-text tables,
image grids. Each chapter's own figures live in its study module (studylib/studies/)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

sns.set_theme(context="notebook", style="whitegrid")


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """An aligned plain-text table of `rows` (dicts); floats with 5 significant digits, deterministic."""
    columns = columns or list(rows[0])
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    """One table cell: floats with 5 significant digits, everything else as str()."""
    return f"{value:.5g}" if isinstance(value, float) else str(value)


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
