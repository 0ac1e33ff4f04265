"""Chapter 02: the conditional flow as a classifier. Table 1 (Base / Reweighted / Split),
the accuracy-vs-bits/dim trade-off, training curves, class samples, where the split
prior reads its logits, and throughput against the peer libraries."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch

from studylib import data
from studylib.benchmarks import ablation, bench
from studylib.book import paper, plots
from studylib.book.chapter import Params, check_seeds
from studylib.book.ledger import directional
from studylib.book.tables import Table, estimate
from studylib.config import OBJECTIVES, check_choice
from studylib.models.flows import ConditionalGlow
from studylib.studies.common import (
    class_samples,
    eval_set,
    metrics,
    model_for,
    per_image,
    seeds_difference,
    seeds_estimate,
    table_cells,
    train_info,
)
from studylib.training import zoo


@dataclass
class Table1:
    """Test accuracy and bits/dim per objective and seed (the paper's Table 1)."""

    dataset: str
    profile: str
    n_test: int
    rows: list[dict] = field(default_factory=list)
    models: dict[str, ConditionalGlow] = field(default_factory=dict)

    def summary(self) -> dict[str, dict]:
        """Per objective: mean and spread over seeds, and the paper's values."""
        out = {}
        for objective in dict.fromkeys(r["objective"] for r in self.rows):
            mine = [r for r in self.rows if r["objective"] == objective]
            acc = [100 * r["accuracy"] for r in mine]
            bpd = [r["bpd"] for r in mine]
            out[objective] = {
                "accuracy": statistics.fmean(acc),
                "accuracy_sd": statistics.stdev(acc) if len(acc) > 1 else None,
                "bpd": statistics.fmean(bpd),
                "bpd_sd": statistics.stdev(bpd) if len(bpd) > 1 else None,
                "seeds": len(mine),
                "train_minutes": statistics.fmean(r["train_seconds"] for r in mine) / 60,
                "trained_on": "/".join(sorted({r["trained_on"] for r in mine})),
                "paper": paper.TABLE1[self.dataset][objective],
            }
        return out

    def table(self) -> Table:
        """Table 1: the paper's numbers beside ours, each of ours with its 95 % interval (over
        seeds where there are several, else over the test images)."""
        rows = []
        for objective, s in self.summary().items():
            acc, bpd = (self._estimate(objective, m) for m in ("accuracy", "bits/dim"))
            rows.append(
                (
                    objective,
                    f"{s['paper'][0]:.1f}",
                    estimate(*acc[:3]),
                    f"{s['paper'][1]:.2f}",
                    estimate(*bpd[:3], digits=3),
                    s["seeds"],
                    round(s["train_minutes"], 1),
                    s["trained_on"],
                )
            )
        recorded = sorted({f"{r['objective']} seed {r['seed']}" for r in self.rows if r.get("recorded")})
        note = (
            f"Read from chapter 9's ablation rows (the same recipe, trained and scored on another machine, "
            f"its test images dequantised with the row's seed): {', '.join(recorded)}."
            if recorded
            else ""
        )
        columns = (
            "objective",
            "accuracy: paper",
            "accuracy: ours",
            "bits/dim: paper",
            "bits/dim: ours",
            "seeds",
            "min",
            "on",
        )
        caption = (
            f"Table 1, {self.dataset}, profile {self.profile}, {self.n_test} test images "
            "(accuracy in %; 95 % intervals in brackets; min: minutes of training per model)"
        )
        return Table(columns, rows, caption=caption, note=note)

    def claims(self) -> list[dict]:
        """Table 1's cells (accuracy and bits/dim per objective) against the paper's, and
        section 4.1's orderings: the reweighted and split objectives classify better than
        Base and pay bits/dim for it; the split prior beats the reweighted objective on both.
        Over seeds where there are several (t; for a difference Welch's, or the pooled t where
        one side has a single seed), else over the test images of the first seed (Wilson;
        bootstrap, paired for a difference)."""
        rows = []
        for objective, s in self.summary().items():
            rows += table_cells(objective, partial(self._estimate, objective), s["paper"], f"Table 1, {self.dataset}")
        present = {r["objective"] for r in self.rows}
        for better, worse, metric, statement in ORDERINGS:
            if {better, worse} <= present:
                diff, low, high, n, of, method = self._difference(better, worse, metric)
                rows.append(
                    directional(
                        f"{better} over {worse}: {'accuracy gained' if metric == 'accuracy' else 'bits/dim saved'}",
                        diff,
                        (low, high),
                        n=n,
                        of=of,
                        method=method,
                        statement=statement,
                        unit="points" if metric == "accuracy" else "bits/dim",
                        source=SECTION_41,
                    )
                )
        return rows

    def _seeds(self, objective: str) -> list[dict]:
        return [r for r in self.rows if r["objective"] == objective]

    def _values(self, objective: str, metric: str) -> list[float]:
        return _values(self._seeds(objective), metric)

    def _estimate(self, objective: str, metric: str) -> tuple:
        """(value, low, high, n, of, k, method) of one Table 1 cell."""
        return runs_estimate(self._seeds(objective), metric)

    def _difference(self, better: str, worse: str, metric: str) -> tuple:
        """How far `better` beats `worse` on `metric` (accuracy up, bits/dim down), with its
        interval: (difference, low, high, n, of, method). Over seeds where either side has
        several (a single run's numbers hide the seed-to-seed spread, which is larger than
        the test images' on the whole test set), else over the first seeds' test images."""
        up, down = (better, worse) if metric == "accuracy" else (worse, better)
        return seeds_difference(
            self._values(up, metric), self._values(down, metric), self._seeds(up)[0], self._seeds(down)[0], metric
        )


def _values(runs: list[dict], metric: str) -> list[float]:
    return [100 * r["accuracy"] if metric == "accuracy" else r["bpd"] for r in runs]


def runs_estimate(runs: list[dict], metric: str) -> tuple:
    """Accuracy (%) or bits/dim of one model recipe over its runs (one per seed), with its
    95 % interval: `seeds_estimate`."""
    return seeds_estimate(_values(runs, metric), runs[0], metric)


SECTION_41 = (
    "Section 4.1: pushing up the accuracy ... already results in non-negligible deterioration to the likelihood "
    "values; the split prior achieves better NLL and better accuracy in both experiments"
)
# (better, worse, metric, the paper's statement): each a directional claim, positive when it holds.
ORDERINGS = (
    ("reweighted", "base", "accuracy", "the reweighted objective classifies better than Base"),
    ("split", "base", "accuracy", "the split prior classifies better than Base"),
    ("base", "reweighted", "bits/dim", "the reweighted objective pays bits/dim for its accuracy"),
    ("base", "split", "bits/dim", "the split prior pays bits/dim for its accuracy"),
    ("split", "reweighted", "accuracy", "the split prior achieves better accuracy than the reweighted one"),
    ("split", "reweighted", "bits/dim", "the split prior achieves better NLL than the reweighted one"),
)


def table1(params: Params, objectives: list[str], seeds: int = 1, train_seeds: bool = False) -> Table1:
    """Each objective from `seeds` seeds, scored on the tables' test set: the first seed is
    trained (or loaded); a later one is loaded from the cache, else read from chapter 9's
    ablation row of the same model (scored there on the same whole test set), else trained
    if `train_seeds`, else left out (the table counts the seeds of each row)."""
    for objective in objectives:
        check_choice("objective", objective, OBJECTIVES)
    check_seeds(seeds)
    test = eval_set(params, table=True)
    result = Table1(params.dataset, params.profile.name, len(test))
    for objective in objectives:
        for seed in range(params.seed, params.seed + seeds):
            cached = zoo.is_cached(params.dataset, objective, params.profile, seed)
            row = None if cached or seed == params.seed else _recorded(params, objective, seed, len(test))
            if row is not None:
                result.rows.append(row)
            elif cached or seed == params.seed or train_seeds:
                model = model_for(params, objective, seed)
                scores = {**metrics(params, model, test), **per_image(params, model, test)}
                result.rows.append({"objective": objective, "seed": seed, **scores, **train_info(model)})
                result.models[f"{objective} seed {seed}"] = model
    return result


def _recorded(params: Params, objective: str, seed: int, n_test: int) -> dict | None:
    """A Table 1 row from chapter 9's ablation row of the profile's model (None when there is
    none on a test set of `n_test` images, the whole test set)."""
    row = ablation.profile_model_row(params.dataset, objective, params.profile.name, seed)
    if row is None or row["n_test"] != n_test or params.profile.scale.table_subset is not None:
        return None
    return {
        "objective": objective,
        "seed": seed,
        "accuracy": row["accuracy"] / 100,
        "bpd": row["bpd"],
        "train_seconds": row["train_seconds"],
        "trained_on": "cpu",
        "recorded": True,
    }


def tradeoff(params: Params, weights: list[float], seeds: int = 1, train_seeds: bool = False) -> list[dict]:
    """Test accuracy and bits/dim of MNIST models as the cross-entropy weight w grows (w = 0
    is the Base model, plus the profile's reweighted model and `weights`): per w, its first
    seed trained or loaded and later ones (up to `seeds`) loaded where cached, or trained
    if `train_seeds`. One point per w: its mean "accuracy" (a fraction) and "bpd" over the
    seeds, and "runs", one row per seed."""
    check_seeds(seeds)
    test = eval_set(params, "mnist", table=True)
    points = {}
    for objective, w in [("base", None), ("reweighted", None), *[("reweighted", float(w)) for w in weights]]:
        runs = []
        for seed in range(params.seed, params.seed + seeds):
            if seed == params.seed or train_seeds or zoo.is_cached("mnist", objective, params.profile, seed, w):
                model = model_for(params, objective, seed, ce_weight=w, dataset="mnist")
                runs.append({**metrics(params, model, test), **per_image(params, model, test), **train_info(model)})
        points.setdefault(runs[0]["ce_weight"], runs)
    return [
        {
            "ce_weight": w,
            "accuracy": statistics.fmean(r["accuracy"] for r in points[w]),
            "bpd": statistics.fmean(r["bpd"] for r in points[w]),
            "runs": points[w],
        }
        for w in sorted(points)
    ]


def tradeoff_table(points: list[dict]) -> Table:
    """One row per weight w: test accuracy and bits/dim with their 95 % intervals (over
    seeds where there are several, else over the test images)."""
    rows = []
    for p in points:
        acc, bpd = (runs_estimate(p["runs"], metric) for metric in ("accuracy", "bits/dim"))
        rows.append((p["ce_weight"], estimate(*acc[:3]), estimate(*bpd[:3], digits=3), f"{acc[3]} {acc[4]}"))
    return Table(("w", "accuracy (%)", "bits/dim", "over"), rows)


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


def tradeoff_figure(points: list[dict]):
    """Accuracy against bits/dim as the cross-entropy weight w grows, each point with its 95 %
    intervals (over seeds where there are several, else over the test images) (Chapter 2)."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    acc = np.array([runs_estimate(p["runs"], "accuracy")[:3] for p in points])
    bpd = np.array([runs_estimate(p["runs"], "bits/dim")[:3] for p in points])
    ax.errorbar(
        bpd[:, 0],
        acc[:, 0],
        xerr=[bpd[:, 0] - bpd[:, 1], bpd[:, 2] - bpd[:, 0]],
        yerr=[acc[:, 0] - acc[:, 1], acc[:, 2] - acc[:, 0]],
        fmt="o-",
        capsize=3,
    )
    for p, x, y in zip(points, bpd[:, 0], acc[:, 0], strict=True):
        seeds = f", {len(p['runs'])} seeds" if len(p["runs"]) > 1 else ""
        ax.annotate(f"w={p['ce_weight']:g}{seeds}", (x, y), textcoords="offset points", xytext=(5, 5))
    ax.set(xlabel="bits/dim (test)", ylabel="accuracy (%)", title="classification vs likelihood")
    fig.tight_layout()
    return fig


@dataclass
class Reach:
    """Where a split model's classifier looks: the mean |d log p(y|x) / d x| over test images
    of their own class's log-softmax (the split objective's logits), per pixel, summing to 1."""

    readout: str
    sensitivity: torch.Tensor  # (H, W)
    mean_image: torch.Tensor  # (c, H, W), in [-0.5, 0.5]

    def thirds(self) -> list[float]:
        """The shares of the sensitivity in the image's top, middle and bottom third of rows."""
        rows = self.sensitivity.sum(1)
        cut = [0, round(len(rows) / 3), round(2 * len(rows) / 3), len(rows)]
        return [rows[a:b].sum().item() for a, b in zip(cut, cut[1:], strict=False)]

    def text(self) -> str:
        top, middle, bottom = (100 * t for t in self.thirds())
        return (
            f"{self.readout} readout: the classifier's input sensitivity lies\n"
            f"{top:.0f} % in the top third of the image, {middle:.0f} % in the middle,\n"
            f"{bottom:.0f} % in the bottom third"
        )

    def figure(self):
        fig, axes = plt.subplots(1, 2, figsize=(6, 3.2))
        axes[0].imshow(plots.to_image(self.mean_image), cmap="gray", vmin=0, vmax=1)
        axes[0].set_title("mean test image")
        axes[1].imshow(self.sensitivity.numpy(), cmap="magma")
        axes[1].set_title(f"|d log p(y|x)/dx|, {self.readout} readout")
        for ax in axes:
            plots.image_axis(ax)
        fig.tight_layout()
        return fig


def reach(params: Params, n: int = 128) -> Reach:
    """`Reach` of the chapter's split model on `n` test images (one batched backward pass)."""
    model = model_for(params, "split", params.seed)
    x, y = eval_set(params).tensors()
    x, y = x[:n].to(params.device).requires_grad_(True), y[:n].to(params.device)
    _, logits = model.scores(x)
    (grad,) = torch.autograd.grad(torch.log_softmax(logits, 1).gather(1, y[:, None]).sum(), x)
    sensitivity = grad.abs().mean((0, 1)).cpu()
    return Reach(model.prior.readout, sensitivity / sensitivity.sum(), x.detach().mean(0).cpu())


def samples(params: Params, temperature: float, per_class: int = 8):
    """Samples of the chapter's model from p(x|y), one row per class."""
    model = model_for(params, params.objective, params.seed)
    return class_samples(model, per_class, temperature, data.CLASSES[params.dataset])


def throughput(profile: str = "quick") -> Table:
    """Training and evaluation images/s of our GLOW against normflows and FrEIA at the
    profile's configurations on this CPU, as `studylib bench --peers` recorded them."""
    return bench.peers_table(profile)
