"""Figure helpers: image grids show the images, not the theme's grid lines across them."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from studylib.book import plots  # noqa: E402


def _grid_lines_shown(ax) -> bool:
    return any(line.get_visible() for line in [*ax.get_xgridlines(), *ax.get_ygridlines()])


def test_image_grid_draws_no_grid_lines_over_the_images():
    images = torch.rand(20, 1, 32, 32) - 0.5
    for labels in (None, [str(i) for i in range(2)]):
        fig = plots.image_grid(images, nrow=10, title="t", row_labels=labels)
        ax = fig.axes[0]
        assert not _grid_lines_shown(ax)
        assert len(ax.images) == 1
    ax = matplotlib.pyplot.figure().add_subplot()
    ax.set_yticks([0.5])
    assert _grid_lines_shown(ax), "the theme draws grid lines by default: the check above can fail"


def test_image_axis_leaves_an_image_without_ticks_or_grid_lines():
    ax = matplotlib.pyplot.figure().add_subplot()
    ax.imshow(torch.rand(8, 8).numpy())
    assert _grid_lines_shown(ax)
    plots.image_axis(ax)
    assert not _grid_lines_shown(ax)
    assert len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0
