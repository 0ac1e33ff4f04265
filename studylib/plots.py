"""Figures and plain-text tables for the chapters (seaborn / matplotlib): the chapters call these, so that
they hold no plotting code of their own."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from studylib.theory import annulus

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


def plot_construction_2d(points: np.ndarray, labels: np.ndarray, Delta: float, arrows: int = 25) -> plt.Figure:
    """A 2-d sample of the data p (the paper's Figure 2) with the attack drawn as arrows on a few class-0 points
    of the shell 1 < |x| <= 1 + Delta."""
    moved, attacked = annulus.attack(points, labels, Delta)
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    palette = sns.color_palette(n_colors=2)
    for y in (0, 1):
        ax.scatter(*points[labels == y].T, s=4, alpha=0.5, color=palette[y], label=f"class {y}")
    for radius in (1.0, 1.0 + Delta, 2.0, 3.0):
        ax.add_patch(plt.Circle((0, 0), radius, fill=False, lw=0.8, ls="--", color="grey"))
    for start, end in list(zip(points[attacked], moved[attacked], strict=True))[:arrows]:
        ax.annotate("", end, start, arrowprops={"arrowstyle": "->", "color": "crimson", "lw": 1.0})
    ax.set(aspect="equal", xlim=(-3.2, 3.2), ylim=(-3.2, 3.2), title="data p in d = 2; attack in red")
    ax.legend(loc="upper right", markerscale=3)
    return fig


def plot_dimension_scaling(sweeps: dict[str, dict[str, np.ndarray]], fixed: dict[str, str]) -> plt.Figure:
    """For each sweep (from annulus.dimension_sweep, keyed by its x-axis label): d_min with the exact real
    threshold and the leading-order formula over it (log-log), and below both formulas' relative errors."""
    fig, axes = plt.subplots(2, len(sweeps), figsize=(5.5 * len(sweeps), 7), sharex="col", squeeze=False)
    for (label, sweep), (top, bottom) in zip(sweeps.items(), axes.T, strict=True):
        x = sweep["values"]
        top.loglog(x, sweep["d_min"], "o", ms=4, label="$d_{min}$ (exact search)")
        top.loglog(x, sweep["real"], "-", label="real threshold (Lambert W)")
        top.loglog(
            x,
            sweep["asymptotic"],
            "--",
            label=r"$(2\log\frac{1-\delta}{\delta} + \log\frac{1}{\epsilon})/\log(1+\Delta)$",
        )
        top.set(ylabel="dimension", title=fixed[label])
        for key, style, name in (("real", "-", "real threshold"), ("asymptotic", "--", "leading order")):
            bottom.loglog(x, np.abs(sweep[key] - sweep["d_min"]) / sweep["d_min"], style, label=name)
        bottom.loglog(x, 1 / sweep["d_min"], ":", color="grey", label="$1/d_{min}$ (rounding up)")
        bottom.set(xlabel=label, ylabel="|formula - $d_{min}$| / $d_{min}$")
        top.legend(fontsize=8)
        bottom.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_attack(points: np.ndarray, labels: np.ndarray, lam1: float, lam2: float, Delta: float) -> plt.Figure:
    """Left: the radii of class-0 points before and after the attack. Right: the share of the sample at each
    level of the model density q(x), before and after: the attacked points land on the highest level."""
    d = points.shape[1]
    moved, attacked = annulus.attack(points, labels, Delta)
    radius, radius_moved = np.linalg.norm(points, axis=1), np.linalg.norm(moved, axis=1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    bins = np.linspace(min(radius[labels == 0].min(), 1 - Delta), 1 + Delta, 60)
    left.hist(radius[labels == 0], bins=bins, alpha=0.6, label="class 0, before")
    left.hist(radius_moved[labels == 0], bins=bins, alpha=0.6, label="class 0, after")
    for edge in (1.0, 1.0 + Delta):
        left.axvline(edge, color="grey", ls="--", lw=0.8)
    left.set(xlabel="|x|", ylabel="count", title=f"d = {d}: shell points moved just inside the unit ball")
    left.legend()
    regions = {"|x| <= 1": (0.0, 1.0), "1 < |x| <= 1+Delta": (1.0, 1.0 + Delta), "2 < |x| <= 3": (2.0, 3.0)}
    mids = np.array([(a + b) / 2 for a, b in regions.values()])
    levels = annulus.log_marginal("q", mids, d, lam1, lam2, Delta)
    width = 0.4
    for shift, r, name in ((-width / 2, radius, "before"), (width / 2, radius_moved, "after")):
        shares = [((r > a) & (r <= b)).mean() for a, b in regions.values()]
        right.bar(np.arange(len(regions)) + shift, shares, width=width, label=name)
    ticks = [f"{name}\nlog q {level - levels[1]:+.3g}" for name, level in zip(regions, levels, strict=True)]
    right.set_xticks(np.arange(len(regions)), ticks)
    right.set(ylabel="share of the sample", title="model density q(x) by region (log q relative to the shell)")
    right.legend()
    fig.tight_layout()
    return fig


def training_curves(histories: dict[str, list[dict]]):
    """Loss, bits/dim and accuracy against optimiser steps, one line per model (Chapter 2)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for label, history in histories.items():
        steps = [h["step"] for h in history]
        for ax, key in zip(axes, ("loss", "bpd", "acc"), strict=True):
            ax.plot(steps, [h[key] for h in history], label=label)
    for ax, title in zip(axes, ("training loss", "bits/dim (train batches)", "accuracy (train batches)"), strict=True):
        ax.set(xlabel="step", title=title)
    axes[0].legend()
    fig.tight_layout()
    return fig


def image_grid(images, nrow: int, title: str = "", row_labels: list[str] | None = None):
    """Images in [-0.5, 0.5] of shape (N, c, H, W) as a grid with `nrow` images per row."""
    import torchvision

    grid = torchvision.utils.make_grid(images.detach().cpu().clamp(-0.5, 0.5) + 0.5, nrow=nrow, padding=2)
    fig, ax = plt.subplots(figsize=(nrow * 0.7, len(images) / nrow * 0.7 + 0.4))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    if row_labels:
        step = grid.shape[1] / len(row_labels)
        ax.set_yticks([step * (i + 0.5) for i in range(len(row_labels))], row_labels)
    else:
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def tradeoff(points: list[dict]):
    """Accuracy against bits/dim as the cross-entropy weight w grows (Chapter 2)."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot([p["bpd"] for p in points], [100 * p["accuracy"] for p in points], "o-")
    for p in points:
        ax.annotate(f"w={p['ce_weight']:g}", (p["bpd"], 100 * p["accuracy"]), textcoords="offset points", xytext=(5, 5))
    ax.set(xlabel="bits/dim (test)", ylabel="accuracy (%)", title="classification vs likelihood")
    fig.tight_layout()
    return fig


def nll_histograms(panels: dict[str, tuple]):
    """Figure 3: histograms of NLL (bits/dim) under the correct class and under the most
    likely wrong class, one panel per dataset."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    for ax, (name, (correct, wrong)) in zip(axes[0], panels.items(), strict=True):
        bins = np.histogram_bin_edges(np.concatenate([correct, wrong]), bins=40)
        ax.hist(wrong, bins=bins, alpha=0.6, label="NLL top wrong class")
        ax.hist(correct, bins=bins, alpha=0.6, label="NLL correct class")
        ax.set(xlabel="negative log-likelihood (bits/dim)", ylabel="images", title=name)
        ax.legend()
    fig.tight_layout()
    return fig


def class_samples(model, per_class: int, temperature: float, classes: tuple[str, ...]):
    """A grid of samples from p(x|y), one row per class (seeded, so the figure is stable)."""
    import torch

    torch.manual_seed(0)
    y = torch.arange(len(classes), device=next(model.parameters()).device).repeat_interleave(per_class)
    images = model.sample(y, temperature=temperature)
    return image_grid(images, nrow=per_class, title=f"samples at temperature {temperature}", row_labels=list(classes))


def success_curves(curves: dict[str, dict[str, list[float]]], eps_grid: np.ndarray, eps: float):
    """% of attacks that succeed undetected against the L2 budget, one panel per model (Chapter 4)."""
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 3.6), squeeze=False)
    for ax, (objective, by_attack) in zip(axes[0], curves.items(), strict=True):
        for attack, values in by_attack.items():
            ax.plot(eps_grid, values, label=attack)
        ax.axvline(eps, color="grey", linestyle="--", label=f"eps = {eps:.3g}")
        ax.set(xlabel="L2 distance", ylabel="successful and undetected (%)", title=objective, ylim=(-2, 102))
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def attack_examples(table, per_attack: int = 4):
    """Originals and their adversarial examples for each attack on the first model, titled
    with the predicted class and the NLL in bits/dim (Chapter 4)."""
    objective, outcomes = next(iter(table.outcomes.items()))
    x, y = table.originals[objective]
    det = table.detectors[objective]
    k = min(per_attack, len(x))
    fig, axes = plt.subplots(2 * len(outcomes), k, figsize=(1.9 * k, 4.2 * len(outcomes)), squeeze=False)
    for row, (attack, out) in enumerate(outcomes.items()):
        for i in range(k):
            for r, image, label in ((2 * row, x[i], f"y={int(y[i])}"), (2 * row + 1, out.result.adversarial[i], "")):
                ax = axes[r][i]
                ax.imshow(_to_image(image), cmap="gray" if image.shape[0] == 1 else None, vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if label:
                    ax.set_title(label, fontsize=8)
                else:
                    status = "ok" if out.result.success[i] and out.undetected[i] else "failed"
                    ax.set_title(f"{status}, L2 {out.result.l2[i]:.2f}\nNLL {out.nll[i]:.2f}", fontsize=7)
            axes[2 * row][0].set_ylabel(attack, fontsize=8)
    fig.suptitle(f"{objective} model; detector T = {det.threshold_bpd:.2f} bits/dim", fontsize=9)
    fig.tight_layout()
    return fig


def _to_image(x) -> np.ndarray:
    """(c, H, W) in [-0.5, 0.5] -> (H, W) or (H, W, 3) in [0, 1] for imshow."""
    img = (x.detach().cpu().clamp(-0.5, 0.5) + 0.5).numpy()
    return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)


def attack_nll(table):
    """NLL (bits/dim) of each attack's successful adversarial examples beside the threshold T (Chapter 4)."""
    fig, axes = plt.subplots(1, len(table.outcomes), figsize=(5.5 * len(table.outcomes), 3.6), squeeze=False)
    for ax, (objective, outcomes) in zip(axes[0], table.outcomes.items(), strict=True):
        for attack, out in outcomes.items():
            values = out.nll[out.result.success].numpy()
            ax.hist(values, bins=20, histtype="step", linewidth=1.5, label=f"{attack} ({len(values)})")
        ax.axvline(table.detectors[objective].threshold_bpd, color="black", linestyle="--", label="threshold T")
        ax.set(xlabel="NLL of the returned image (bits/dim)", title=objective)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def interpolation_strip(study, pair: int = 0, shown: int = 10):
    """Figure 1: images along one interpolation path with their NLL (bits/dim)."""
    from studylib.interpolate import path

    steps = len(study.paths.alphas)
    cols = _even_indices(steps, shown)
    _, images = path(study.x0[pair : pair + 1], study.x1[pair : pair + 1], steps)
    fig, axes = plt.subplots(1, len(cols), figsize=(1.3 * len(cols), 1.9))
    for ax, j in zip(axes, cols, strict=True):
        img = _to_image(images[0, j])
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(f"a={study.paths.alphas[j]:.2f}\n{study.paths.nll[pair, j]:.2f}", fontsize=7)
        ax.axis("off")
    fig.suptitle(f"{study.dataset}: NLL (bits/dim) along a path; T = {study.threshold_bpd:.2f}", fontsize=9)
    fig.tight_layout()
    return fig


def _even_indices(steps: int, shown: int) -> list[int]:
    """`shown` evenly spaced indices into a path of `steps` points, ends included."""
    return [round(i * (steps - 1) / (shown - 1)) for i in range(shown)]


def interpolation_curves(studies: dict):
    """Figure 4 / 6: mean NLL with a 10-90 % band, and mean p(y0|x_a), p(y1|x_a), against a,
    one column per dataset, the detection threshold dashed."""
    fig, axes = plt.subplots(2, len(studies), figsize=(4.5 * len(studies), 5.5), squeeze=False)
    for col, (name, study) in enumerate(studies.items()):
        a = study.paths.alphas.numpy()
        nll = study.paths.nll.numpy()
        ax = axes[0][col]
        ax.plot(a, nll.mean(0), label="mean NLL")
        ax.fill_between(a, np.quantile(nll, 0.1, axis=0), np.quantile(nll, 0.9, axis=0), alpha=0.3, label="10-90 %")
        ax.axhline(study.threshold_bpd, color="black", linestyle="--", label="threshold T")
        ax.set(title=f"{name} ({nll.shape[0]} pairs)", ylabel="NLL (bits/dim)")
        ax.legend(fontsize="small")
        ax = axes[1][col]
        ax.plot(a, study.paths.p_y0.numpy().mean(0), label="p(y0 | x_a)")
        ax.plot(a, study.paths.p_y1.numpy().mean(0), label="p(y1 | x_a)")
        ax.set(xlabel="alpha", ylabel="class probability", ylim=(-0.02, 1.02))
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
