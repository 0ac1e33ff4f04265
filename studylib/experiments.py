"""The studies behind chapters 2, 3, 5 and 6, as plain functions returning rows and arrays,
so the chapters only call, print and plot."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import torch

from studylib import data, evaluate, interpolate, paper, zoo
from studylib.chapter import Params
from studylib.config import DATASETS, OBJECTIVES, check_choice
from studylib.flows import ConditionalGlow
from studylib.ledger import claim
from studylib.memo import memo
from studylib.objectives import bits_per_dim


def eval_set(params: Params, dataset: str | None = None) -> data.ImageDataset:
    """The profile's seeded test subset (all of the test set where the profile sets none)."""
    return data.load(dataset or params.dataset, "test", subset=params.profile.eval_subset, seed=params.seed)


def model_for(params: Params, objective: str, seed: int, ce_weight: float | None = None, dataset: str | None = None):
    """The chapter's model of `objective` (trained once, then read from the cache)."""
    return zoo.get_model(
        dataset or params.dataset, objective, params.profile, seed, str(params.device.type), ce_weight=ce_weight
    )


def eval_log_likelihoods(
    params: Params, model: ConditionalGlow, test: data.ImageDataset
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) log p(x|y) of the profile's test subset `test` under `model`, and its labels;
    memoised on disk, since every chapter scores the same images with the same models."""
    key = {"model": model.info["sha256"], "test": [test.name, params.profile.eval_subset, params.seed]}
    stored = memo(
        "test-ll",
        key,
        lambda: dict(
            zip(("ll", "y"), evaluate.log_likelihoods(model, test, params.profile.eval_batch_size), strict=True)
        ),
    )
    return stored["ll"], stored["y"]


def _metrics(params: Params, model: ConditionalGlow, test: data.ImageDataset) -> dict:
    return evaluate.summarize(*eval_log_likelihoods(params, model, test), model.n_dims)


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

    def text(self) -> str:
        """Table 1 as aligned text: the paper's numbers beside ours."""
        lines = [
            f"Table 1, {self.dataset}, profile {self.profile}, {self.n_test} test images",
            f"{'objective':<11} {'paper acc %':>11} {'ours acc %':>12} {'paper bpd':>10} {'ours bpd':>12} "
            f"{'seeds':>5} {'train min':>9} {'on':>4}",
        ]
        for objective, s in self.summary().items():
            sd_a = f"±{s['accuracy_sd']:.1f}" if s["accuracy_sd"] is not None else ""
            sd_b = f"±{s['bpd_sd']:.2f}" if s["bpd_sd"] is not None else ""
            lines.append(
                f"{objective:<11} {s['paper'][0]:>11.1f} {s['accuracy']:>7.1f}{sd_a:>5} {s['paper'][1]:>10.2f} "
                f"{s['bpd']:>7.2f}{sd_b:>5} {s['seeds']:>5} {s['train_minutes']:>9.1f} {s['trained_on']:>4}"
            )
        return "\n".join(lines)

    def ordering(self) -> str:
        """Whether the paper's ordering holds: Base has the worst accuracy; Split is at least
        as good as Reweighted on both accuracy and bits/dim."""
        s = self.summary()
        verdicts = []
        if {"base", "reweighted", "split"} <= s.keys():
            worst = min(s, key=lambda k: s[k]["accuracy"])
            verdicts.append(f"lowest accuracy: {worst} (paper: base) -> {'holds' if worst == 'base' else 'differs'}")
            acc_ok = s["split"]["accuracy"] >= s["reweighted"]["accuracy"]
            bpd_ok = s["split"]["bpd"] <= s["reweighted"]["bpd"]
            verdicts.append(f"split >= reweighted in accuracy: {'holds' if acc_ok else 'differs'}")
            verdicts.append(f"split <= reweighted in bits/dim: {'holds' if bpd_ok else 'differs'}")
            cost = s["reweighted"]["bpd"] - s["base"]["bpd"]
            paper_cost = s["reweighted"]["paper"][1] - s["base"]["paper"][1]
            verdicts.append(f"bits/dim the reweighted objective pays over base: {cost:+.3f} (paper {paper_cost:+.2f})")
        return "\n".join(verdicts) or "ordering needs all three objectives"

    def claims(self) -> list[dict]:
        """Ledger rows: accuracy and bits/dim per objective, beside the paper's."""
        rows = []
        for objective, s in self.summary().items():
            rows.append(claim(f"{objective} accuracy", round(s["accuracy"], 2), s["paper"][0], "%"))
            rows.append(claim(f"{objective} bits/dim", round(s["bpd"], 3), s["paper"][1], "bpd"))
        return rows


def table1(params: Params, objectives: list[str], seeds: int = 1) -> Table1:
    """Train (or load) each objective for `seeds` seeds and evaluate it on the test subset."""
    for objective in objectives:
        check_choice("objective", objective, OBJECTIVES)
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    test = eval_set(params)
    result = Table1(params.dataset, params.profile.name, len(test))
    for objective in objectives:
        for seed in range(params.seed, params.seed + seeds):
            model = model_for(params, objective, seed)
            metrics = _metrics(params, model, test)
            result.rows.append({"objective": objective, "seed": seed, **metrics, **_train_info(model)})
            result.models[f"{objective} seed {seed}"] = model
    return result


def _train_info(model: ConditionalGlow) -> dict:
    return {
        "train_seconds": model.info["train_seconds"],
        "trained_on": model.info.get("device", "cpu"),
        "ce_weight": model.info["spec"]["ce_weight"],
    }


def tradeoff(params: Params, weights: list[float]) -> list[dict]:
    """Test accuracy and bits/dim of MNIST models as the cross-entropy weight w grows
    (w = 0 is the Base model, plus the profile's reweighted model and `weights`)."""
    test = eval_set(params, "mnist")
    points = []
    for objective, w in [("base", None), ("reweighted", None), *[("reweighted", float(w)) for w in weights]]:
        model = model_for(params, objective, params.seed, ce_weight=w, dataset="mnist")
        points.append({**_metrics(params, model, test), **_train_info(model)})
    unique = {p["ce_weight"]: p for p in points}
    return [unique[w] for w in sorted(unique)]


@dataclass
class Margins:
    """Section 4.2: how far apart the correct and the best wrong class are in NLL, against
    how much NLL varies between images."""

    dataset: str
    dims: int
    correct_bpd: torch.Tensor
    wrong_bpd: torch.Tensor
    correct_nats: torch.Tensor
    gap_nats: torch.Tensor

    @staticmethod
    def needed_gap(classes: int = 10, delta: float = 1e-5) -> float:
        """Logit gap (nats) over every other class that guarantees p(y|x) >= 1 - delta:
        log(C - 1) + log((1 - delta) / delta)."""
        return math.log(classes - 1) + math.log((1 - delta) / delta)

    def stats(self, quantile: float = 0.95) -> dict[str, float]:
        t, recall = evaluate.threshold(self.correct_bpd, quantile)
        nll = self.correct_nats
        return {
            "needed_gap_nats": self.needed_gap(),
            "median_gap_nats": self.gap_nats.median().item(),
            "nll_std_nats": nll.std().item(),
            "nll_5_95_nats": (torch.quantile(nll, 0.95) - torch.quantile(nll, 0.05)).item(),
            "median_gap_bpd": (self.wrong_bpd - self.correct_bpd).median().item(),
            "threshold_bpd": t,
            "threshold_recall": recall,
            "wrong_below_threshold": (self.wrong_bpd <= t).double().mean().item(),
        }


def margins(params: Params, dataset: str, objective: str) -> Margins:
    """NLL under the correct and under the most likely wrong class over the test subset."""
    model = model_for(params, objective, params.seed, dataset=dataset)
    ll, y = eval_log_likelihoods(params, model, eval_set(params, dataset))
    correct, wrong = evaluate.correct_vs_wrong(ll, y)
    to_bpd = lambda nats: bits_per_dim(nats, model.n_dims)  # noqa: E731
    return Margins(dataset, model.n_dims, to_bpd(correct), to_bpd(wrong), correct, wrong - correct)


@dataclass
class InterpolationStudy:
    """Chapter 5/6: interpolation paths on one dataset with the detector threshold they are
    judged against."""

    dataset: str
    threshold_bpd: float
    recall: float
    clean_sd_bpd: float
    x0: torch.Tensor
    x1: torch.Tensor
    paths: interpolate.Paths

    def summary(self) -> dict[str, float]:
        return {
            "threshold_bpd": self.threshold_bpd,
            "recall": self.recall,
            **self.paths.summary(self.threshold_bpd, self.clean_sd_bpd),
        }


def interpolation_study(
    params: Params, dataset: str, objective: str, n_pairs: int, steps: int = 100, quantile: float | None = None
) -> InterpolationStudy:
    """Interpolate between `n_pairs` random pairs of correctly classified, below-threshold
    test images of different classes. T is the `quantile` of the clean test NLL (default:
    the paper's recall for the dataset, 100 % where the paper gives none)."""
    check_choice("dataset", dataset, DATASETS)
    model = model_for(params, objective, params.seed, dataset=dataset)
    test = eval_set(params, dataset)
    ll, y = eval_log_likelihoods(params, model, test)
    nll = evaluate.nll_bpd(ll, model.n_dims)
    q = quantile if quantile is not None else paper.THRESHOLD.get(dataset, (None, 1.0))[1]
    t, recall = evaluate.threshold(nll, q)
    i0, i1 = interpolate.select_pairs(ll, y, nll, t, n_pairs, torch.Generator().manual_seed(params.seed))
    x, _ = test.tensors()
    key = {
        "model": model.info["sha256"],
        "test": [params.profile.eval_subset, params.seed],
        "i0": i0.tolist(),
        "i1": i1.tolist(),
        "steps": steps,
    }
    stored = memo(
        "interpolation",
        key,
        lambda: vars(interpolate.interpolate(model, x[i0], x[i1], y[i0], y[i1], steps, params.profile.eval_batch_size)),
    )
    return InterpolationStudy(dataset, t, recall, nll.std().item(), x[i0], x[i1], interpolate.Paths(**stored))


def table3(params: Params, datasets: list[str], objective: str = "reweighted") -> list[dict]:
    """Accuracy and bits/dim per dataset (the paper's Table 3: MNIST, BG-MNIST-5/1/0, CIFAR-10)."""
    rows = []
    for name in datasets:
        check_choice("dataset", name, DATASETS)
        model = model_for(params, objective, params.seed, dataset=name)
        metrics = _metrics(params, model, eval_set(params, name))
        rows.append({"dataset": name, **metrics, "paper": paper.TABLE3.get(name), **_train_info(model)})
    return rows
