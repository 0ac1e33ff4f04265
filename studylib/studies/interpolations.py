"""Chapter 05: interpolations between test images of different classes (Figures 1 and 4),
and the share of paths that stay below the detection threshold."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from studylib.book import paper, plots
from studylib.book.chapter import Params
from studylib.book.ledger import directional, quantitative
from studylib.book.tables import signed
from studylib.config import DATASETS, check_choice
from studylib.measure import evaluate, interpolate
from studylib.measure.uncertainty import bootstrap, difference_of_rates, wilson
from studylib.sizes import sizes
from studylib.studies.common import (
    auroc_text,
    eval_interpolations,
    eval_log_likelihoods,
    eval_set,
    model_for,
    roc_figure,
)


def default_pairs(profile: str) -> int:
    """How many interpolation paths per dataset a profile draws (chapters 5 and 6)."""
    return sizes(profile).paths


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
    clean_bpd: torch.Tensor  # the clean test NLL that set T

    def midpoints(self) -> torch.Tensor:
        """The NLL (bits/dim) of each path's middle image, alpha = 1/2."""
        return self.paths.nll[:, self.paths.nll.shape[1] // 2]

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
    paths = eval_interpolations(params, model, test, i0, i1, steps)
    return InterpolationStudy(dataset, t, recall, nll.std().item(), x[i0], x[i1], paths, nll)


def interpolation_strip(study, pair: int = 0, shown: int = 10):
    """Figure 1: images along one interpolation path with their NLL (bits/dim)."""
    steps = len(study.paths.alphas)
    cols = _even_indices(steps, shown)
    _, images = interpolate.path(study.x0[pair : pair + 1], study.x1[pair : pair + 1], steps)
    fig, axes = plt.subplots(1, len(cols), figsize=(1.3 * len(cols), 1.9))
    for ax, j in zip(axes, cols, strict=True):
        img = plots.to_image(images[0, j])
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


def report(studies: dict[str, InterpolationStudy]) -> tuple[str, list[dict]]:
    """Per dataset: T, the share of paths entirely below it (beside the paper's), the
    mid-path rise and the share of rising paths; and the ledger rows."""
    lines, claims = [], []
    for name, study in studies.items():
        s = study.summary()
        ref = paper.PATHS_BELOW_THRESHOLD.get(name)
        lines.append(
            f"{name}: T = {s['threshold_bpd']:.3f} bits/dim (recall {s['recall']:.1%}), {s['pairs']} pairs\n"
            f"  paths entirely below T     {100 * s['paths_below_threshold']:6.1f} %"
            + (f"   (paper {100 * ref:.1f} % of {paper.INTERPOLATION_PAIRS[name]})" if ref is not None else "")
            + f"\n  mid-path NLL rise          {s['mid_rise_bpd']:+.3f} bits/dim = {s['mid_rise_sd']:+.2f} clean-NLL sd"
            f"\n  paths whose middle rises   {100 * s['paths_rising']:6.1f} %"
        )
        below = study.paths.below(study.threshold_bpd)
        rate, low, high = wilson(int(below.sum()), len(below))
        if ref is not None:
            claims.append(
                quantitative(
                    f"{name}: paths entirely below T",
                    rate,
                    (low, high),
                    100 * ref,
                    n=len(below),
                    k=int(below.sum()),
                    of="interpolation pairs",
                    method="Wilson",
                    unit="%",
                    source=SOURCE,
                    note=f"T at the {s['recall']:.1%} recall; paper {paper.INTERPOLATION_PAIRS[name]} pairs",
                )
            )
        if name in RISE:
            sign, statement = RISE[name]

            def signed_mean(r, axis=-1, sign=sign):
                return sign * np.mean(r, axis=axis)

            value, low, high = bootstrap([study.paths.mid_rise().numpy()], signed_mean)
            claims.append(
                directional(
                    f"{name}: mid-path NLL rise" + (", negated" if sign < 0 else ""),
                    value,
                    (low, high),
                    n=len(below),
                    of="interpolation pairs",
                    method="bootstrap",
                    statement=statement,
                    unit="bits/dim",
                    source="Section 4.4, Figure 4",
                    note=f"{s['mid_rise_sd']:+.2f} clean-NLL sd",
                )
            )
    if {"mnist", "cifar10"} <= studies.keys():
        mnist, cifar = (studies[d].paths.below(studies[d].threshold_bpd).numpy() for d in ("mnist", "cifar10"))
        late, early = (studies[d].paths.departure().numpy() for d in ("cifar10", "mnist"))
        claims += [
            _cifar_minus_mnist(
                "paths entirely below T",
                difference_of_rates(cifar, mnist, paired=False),
                len(cifar) + len(mnist),
                statement="on MNIST few interpolation paths stay below T, on CIFAR-10 nearly all do",
                unit="points",
                source=SOURCE,
            ),
            _cifar_minus_mnist(
                "where along the path the endpoint classes are lost",
                bootstrap([late, early], lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis)),
                len(late) + len(early),
                statement="on CIFAR-10 a very smooth transition between classes, unlike the sharp drop on MNIST",
                unit="of the path",
                source=HANDOVER_SOURCE,
                note=f"mean alpha at p(endpoint class) < 1/2: CIFAR-10 {late.mean():.2f}, MNIST {early.mean():.2f}",
            ),
        ]
    return "\n".join(lines), claims


def _cifar_minus_mnist(name: str, estimate: tuple[float, float, float], n: int, **said: str) -> dict:
    """A directional claim on CIFAR-10's pairs against MNIST's: `estimate` is (difference,
    low, high) from a bootstrap; `said` gives its statement, unit, source and note."""
    value, low, high = estimate
    return directional(
        f"{name}: CIFAR-10 minus MNIST",
        value,
        (low, high),
        n=n,
        of="interpolation pairs (both datasets)",
        method="bootstrap",
        **said,
    )


def midpoint_roc(studies: dict[str, InterpolationStudy]):
    """The detector without one threshold: the ROC of the NLL, clean test images against the
    paths' middle images, one panel per dataset."""
    panels = {n: {"midpoints": (s.clean_bpd.numpy(), s.midpoints().numpy())} for n, s in studies.items()}
    return roc_figure(panels, "midpoints")


def numbers(studies: dict[str, InterpolationStudy], claims: list[dict]) -> dict[str, str]:
    """The chapter's figures for its prose (`chapter.glue`), per dataset `<name>_`: pairs,
    T and its recall, the share of paths entirely below T with its Wilson interval
    (`_below`) and the paper's (`_paper_below`, `_paper_pairs`), the mid-path rise with its
    bootstrap interval (`_rise`) and in clean-NLL standard deviations (`_rise_sd`), the
    share of rising paths (`_rising`), where the endpoint classes are lost (`_departure`), the
    AUROC of the NLL, clean test images against the midpoints (`_mid_auroc`); the two
    datasets' differences (`difference`, `departure_difference`)."""
    out = {}
    for name, study in studies.items():
        s = study.summary()
        below = study.paths.below(study.threshold_bpd)
        rate, low, high = wilson(int(below.sum()), len(below))
        rise = bootstrap([study.paths.mid_rise().numpy()], lambda r, axis=-1: np.mean(r, axis=axis))
        out |= {
            f"{name}_pairs": str(s["pairs"]),
            f"{name}_t": f"{s['threshold_bpd']:.3f}",
            f"{name}_recall": f"{s['recall']:.1%}",
            f"{name}_below": f"{rate:.1f} % [{low:.1f}, {high:.1f}]",
            f"{name}_rise": f"{signed(rise[0], 2)} bits/dim [{signed(rise[1], 2)}, {signed(rise[2], 2)}]",
            f"{name}_rise_sd": signed(s["mid_rise_sd"], 1),
            f"{name}_rising": f"{100 * s['paths_rising']:.1f} %",
            f"{name}_departure": "{:.2f} [{:.2f}, {:.2f}]".format(
                *bootstrap([study.paths.departure().numpy()], lambda d, axis=-1: np.mean(d, axis=axis))
            ),
            f"{name}_mid_auroc": auroc_text(study.clean_bpd.numpy(), study.midpoints().numpy()),
        }
        if name in paper.PATHS_BELOW_THRESHOLD:
            out[f"{name}_paper_below"] = f"{100 * paper.PATHS_BELOW_THRESHOLD[name]:g} %"
            out[f"{name}_paper_pairs"] = str(paper.INTERPOLATION_PAIRS[name])
    for c in claims:
        if c["name"].startswith("paths entirely below T: CIFAR-10 minus MNIST"):
            out["difference"] = f"{c['ours']:.1f} points [{c['low']:.1f}, {c['high']:.1f}]"
        if c["name"].startswith("where along the path"):
            out["departure_difference"] = f"{c['ours']:.2f} [{c['low']:.2f}, {c['high']:.2f}]"
    return out


SOURCE = (
    "Section 4.4 (MNIST): interpolations all stay above the detection threshold, i.e. all intermediate images "
    "are considered real by the model ... only in 0.5% of the cases; (CIFAR10) 100% of the interpolated images "
    "lay above the detection threshold and none are detected as a non-image"
)
HANDOVER_SOURCE = (
    "Section 4.4, Figure 4: (MNIST) the probability of both classes drop rapidly as the network predictions "
    "become less confident on the intermediate images; (CIFAR10) a very smooth transition between classes, "
    "unlike the sharp drop in the MNIST experiment"
)
# Section 4.4's reading of Figure 4, per dataset: the sign of the mid-path NLL rise it states.
RISE = {
    "mnist": (1, "the likelihood goes down as alpha moves away from the real images"),
    "cifar10": (-1, "the intermediate likelihood is even higher on average than on the real images"),
}
