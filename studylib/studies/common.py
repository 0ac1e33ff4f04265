"""Helpers the chapter studies share: the profile's test subset, a chapter's model, the
memoised test log-likelihoods and interpolation paths, a model's training facts, and the
class-sample figure."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import torch

from studylib import data
from studylib.book import plots, tables
from studylib.book.chapter import Params
from studylib.book.ledger import quantitative
from studylib.measure import evaluate, interpolate
from studylib.measure.detection import auroc, roc_curve
from studylib.measure.evaluate import bits_per_dim
from studylib.measure.uncertainty import bootstrap, mean_interval, seed_difference, t_interval, wilson
from studylib.models.flows import ConditionalGlow
from studylib.training import zoo
from studylib.training.memo import memo


def eval_set(params: Params, dataset: str | None = None, table: bool = False) -> data.ImageDataset:
    """The profile's seeded test subset (all of the test set where the profile sets none);
    with `table`, that of the paper's accuracy tables (`Scale.table_subset`)."""
    subset = params.profile.scale.table_subset if table else params.profile.scale.eval_subset
    return data.load(dataset or params.dataset, "test", subset=subset, seed=params.seed)


def auroc_text(clean: np.ndarray, other: np.ndarray) -> str:
    """The AUROC of a threshold on the NLL, `clean` against `other`, with its 95 % bootstrap
    interval, e.g. "0.52 [0.50, 0.54]"."""
    return tables.estimate(*auroc(clean, other), digits=2)


def roc_figure(panels: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], flagged: str):
    """ROC curves of a threshold on the NLL, one panel per key and one curve per (clean,
    other) pair: the share of clean images flagged against the share of `flagged`; the
    legend gives each curve's AUROC with its 95 % bootstrap interval."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items(), strict=True):
        for label, (clean, other) in curves.items():
            ax.plot(*roc_curve(clean, other), label=f"{label}: {auroc_text(clean, other)}")
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.5)
        ax.set(xlabel="clean images flagged", ylabel=f"{flagged} flagged", title=title)
        ax.legend(fontsize="x-small", title="AUROC [95 %]", title_fontsize="x-small")
    fig.tight_layout()
    return fig


def model_for(params: Params, objective: str, seed: int, ce_weight: float | None = None, dataset: str | None = None):
    """The chapter's model of `objective` (trained once, then read from the cache)."""
    return zoo.get_model(
        dataset or params.dataset,
        objective,
        params.profile,
        seed,
        params.device,
        ce_weight=ce_weight,
        precision=params.precision,
    )


def eval_log_likelihoods(
    params: Params, model: ConditionalGlow, test: data.ImageDataset
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) log p(x|y) of the profile's test subset `test` under `model`, and its labels;
    memoised on disk, since every chapter scores the same images with the same models."""
    key = {"model": model.info["sha256"], "test": [test.name, test.subset, params.seed]}
    stored = memo(
        "test-ll",
        key,
        lambda: dict(
            zip(("ll", "y"), evaluate.log_likelihoods(model, test, params.profile.scale.eval_batch_size), strict=True)
        ),
    )
    return stored["ll"], stored["y"]


def eval_interpolations(
    params: Params,
    model: ConditionalGlow,
    test: data.ImageDataset,
    i0: torch.Tensor,
    i1: torch.Tensor,
    steps: int,
    progress: bool = True,
) -> interpolate.Paths:
    """The paths between test images `i0` and `i1` (indices into `test`) under `model`;
    memoised on disk like the test log-likelihoods."""
    x, y = test.tensors()
    key = {
        "model": model.info["sha256"],
        "test": [params.profile.scale.eval_subset, params.seed],  # the model's sha names the data set
        "i0": i0.tolist(),
        "i1": i1.tolist(),
        "steps": steps,
    }
    batch = params.profile.scale.eval_batch_size
    stored = memo(
        "interpolation",
        key,
        lambda: vars(interpolate.interpolate(model, x[i0], x[i1], y[i0], y[i1], steps, batch, progress)),
    )
    return interpolate.Paths(**stored)


def metrics(params: Params, model: ConditionalGlow, test: data.ImageDataset) -> dict:
    """Accuracy and bits/dim of `model` on the test subset (from the memoised log-likelihoods)."""
    return evaluate.summarize(*eval_log_likelihoods(params, model, test), model.n_dims)


def per_image(params: Params, model: ConditionalGlow, test: data.ImageDataset) -> dict:
    """Per test image: classified correctly, and bits/dim under the true class (the units an
    interval of accuracy or bits/dim is computed over)."""
    ll, y = eval_log_likelihoods(params, model, test)
    return {
        "correct": (ll.argmax(1) == y).numpy(),
        "bpd_images": bits_per_dim(-ll.gather(1, y[:, None]).squeeze(1), model.n_dims).numpy(),
    }


def image_estimate(row: dict, metric: str) -> tuple:
    """Accuracy (%, Wilson) or mean bits/dim (bootstrap) of one model over its test images,
    from `per_image`'s arrays in `row`: (value, low, high, n, of, k, method)."""
    if metric == "accuracy":
        k, n = int(row["correct"].sum()), len(row["correct"])
        return (*wilson(k, n), n, "test images", k, "Wilson")
    return (*mean_interval(row["bpd_images"]), len(row["bpd_images"]), "test images", None, "bootstrap")


def seeds_estimate(values: list[float], first: dict, metric: str) -> tuple:
    """Accuracy (%) or bits/dim of one model recipe from its `values` per seed, with its 95 %
    interval, (value, low, high, n, of, k, method): t over the seeds where there are several
    (the seed-to-seed spread is part of the uncertainty), else over the test images of the
    one run, `first` (its `per_image` row: Wilson; bootstrap)."""
    if len(values) > 1:
        return (*t_interval(values), len(values), "seeds", None, "t over seeds")
    return image_estimate(first, metric)


def seeds_difference(a: list[float], b: list[float], first: dict, second: dict, metric: str) -> tuple:
    """Mean of `a` minus mean of `b` (two recipes' accuracy in %, or bits/dim, per seed) with
    its 95 % interval, (difference, low, high, n, of, method): a t interval over the seeds
    where the two have three or more between them, else a paired bootstrap over the test
    images of their single runs `first` and `second` (`per_image` rows, the same images)."""
    if len(a) + len(b) >= 3:
        diff, low, high, method = seed_difference(a, b)
        return diff, low, high, len(a) + len(b), "seeds", method
    key, scale = ("correct", 100) if metric == "accuracy" else ("bpd_images", 1)

    def gain(x, y, axis=-1):
        return scale * (np.mean(x, axis=axis) - np.mean(y, axis=axis))

    value = bootstrap([first[key], second[key]], gain, paired=True)
    return (*value, len(first[key]), "test images (the same for both)", "paired bootstrap")


def table_cells(name: str, estimate: Callable[[str], tuple], paper: tuple, source: str) -> list[dict]:
    """One row of a paper's results table, its accuracy (%) and bits/dim, as two quantitative
    claims against the paper's pair `paper`; `estimate(metric)` gives (value, low, high, n,
    of, k, method) as `image_estimate` and `seeds_estimate` do."""
    cells = []
    for metric, column, unit in (("accuracy", 0, "%"), ("bits/dim", 1, "bits/dim")):
        value, low, high, n, of, k, method = estimate(metric)
        cells.append(
            quantitative(
                f"{name} {metric}",
                value,
                (low, high),
                paper[column],
                n=n,
                k=k,
                of=of,
                method=method,
                unit=unit,
                source=source,
            )
        )
    return cells


def train_info(model: ConditionalGlow) -> dict:
    """How a model was trained: seconds, device, cross-entropy weight."""
    return {
        "train_seconds": model.info["train_seconds"],
        "trained_on": model.info.get("device", "cpu"),
        "ce_weight": model.info["spec"]["ce_weight"],
    }


def class_samples(model, per_class: int, temperature: float, classes: tuple[str, ...]):
    """A grid of samples from p(x|y), one row per class (seeded, so the figure is stable)."""
    torch.manual_seed(0)
    y = torch.arange(len(classes), device=next(model.parameters()).device).repeat_interleave(per_class)
    images = model.sample(y, temperature=temperature)
    return plots.image_grid(
        images, nrow=per_class, title=f"samples at temperature {temperature}", row_labels=list(classes)
    )
