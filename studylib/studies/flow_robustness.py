"""Chapter 07: the companion paper (Pope, Balaji & Feizi 2019). Linear flows: the exact
attacks, adversarial training and its trade-off, on a 2-D toy set and on PCA-reduced MNIST.
Deep flows: PGD likelihood attacks on unconditional GLOW and RealNVP, in-distribution and
out-of-distribution, and hybrid adversarial training."""

from __future__ import annotations

import dataclasses
import math
import re
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch

from studylib import data
from studylib.attacks.detector import FlowTarget
from studylib.attacks.pgd import pgd
from studylib.book.chapter import Params
from studylib.book.ledger import directional
from studylib.book.tables import Table
from studylib.config import Profile, family
from studylib.measure import evaluate
from studylib.measure.uncertainty import bootstrap
from studylib.models.linear_flow import LinearFlow, adversarial_fit, optimal_attack, universal_attack, worst_case_nll
from studylib.progress import bar
from studylib.sizes import DeepSizes, LinearSizes, sizes
from studylib.training import zoo
from studylib.training.memo import memo

FITS = ("clean", "universal", "sample")  # which attack each fit was trained against


def linear_sizes(profile: str) -> LinearSizes:
    """The linear study's sizes at a profile."""
    return sizes(profile).linear


def toy_data(n: int = 400, seed: int = 0) -> torch.Tensor:
    """(n, 2) points from an elongated, rotated Gaussian: variances 4 and 0.16 at 30°."""
    angle = math.radians(30)
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    flow = LinearFlow(torch.tensor([1.0, 0.5]), rotation @ torch.diag(torch.tensor([4.0, 0.16])) @ rotation.T)
    return flow.sample(n, seed)


def fits(x: torch.Tensor, eps: float, steps: int = 100) -> dict[str, LinearFlow]:
    """The clean maximum-likelihood fit and the adversarial fits against each attack."""
    return {
        "clean": LinearFlow.fit(x),
        "universal": adversarial_fit(x, eps, "universal"),
        "sample": adversarial_fit(x, eps, "sample", steps=steps),
    }


def _ellipse(ax, flow: LinearFlow, radius: float, **style) -> None:
    t = torch.linspace(0, 2 * math.pi, 200, dtype=torch.float64)
    circle = torch.stack([t.cos(), t.sin()], 1) * radius
    points = circle @ flow.weight.T + flow.mean
    ax.plot(points[:, 0], points[:, 1], **style)


def toy_figure(x: torch.Tensor, eps: float, models: dict[str, LinearFlow], arrows: int = 14):
    """Left: the clean fit's 1- and 2-sigma ellipses, sample-specific attacks as arrows, the
    universal perturbation from the mean. Right: the clean and adversarially trained ellipses."""
    clean = models["clean"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    ax = axes[0]
    ax.scatter(x[:, 0], x[:, 1], s=4, color="grey", alpha=0.5)
    for r in (1, 2):
        _ellipse(ax, clean, r, color="C0")
    some = x[torch.linspace(0, len(x) - 1, arrows).long()]
    delta = optimal_attack(clean, some, eps)
    ax.quiver(*some.T, *delta.T, angles="xy", scale_units="xy", scale=1, color="C3", width=0.004)
    u = universal_attack(clean, eps)
    ax.quiver(*clean.mean, *u, angles="xy", scale_units="xy", scale=1, color="C2", width=0.008)
    ax.set(title=f"clean fit; attacks with eps = {eps:g} (red: per point, green: universal)", aspect="equal")
    ax = axes[1]
    ax.scatter(x[:, 0], x[:, 1], s=4, color="grey", alpha=0.5)
    for (name, flow), color in zip(models.items(), ("C0", "C2", "C3"), strict=True):
        _ellipse(ax, flow, 2, color=color, label=f"{name} fit (2 sigma)")
    ax.set(title="adversarial training widens the ellipse", aspect="equal")
    ax.legend(fontsize="small")
    for ax in axes:
        ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def mnist_pca(params: Params, sizes: LinearSizes) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, test, basis): MNIST images (dequantised, in [-0.5, 0.5]) projected onto the
    `sizes.dims` leading principal directions of the training images; basis is (784, dims).
    An L2 perturbation within that subspace has the same norm in pixel space."""
    train = data.load("mnist", "train", subset=sizes.train, seed=params.seed).tensors()[0].flatten(1).double()
    test = data.load("mnist", "test", subset=sizes.test, seed=params.seed).tensors()[0].flatten(1).double()
    centre = train.mean(0)
    _, _, v = torch.linalg.svd(train - centre, full_matrices=False)
    basis = v[: sizes.dims].T
    return (train - centre) @ basis, (test - centre) @ basis, basis


def tradeoff(train: torch.Tensor, test: torch.Tensor, eps_grid: tuple[float, ...], steps: int) -> list[dict]:
    """For each eps: every fit's mean test NLL (nats per image), clean and under both attacks
    at that eps, and its covariance spectrum."""
    rows = []
    for eps in bar(eps_grid, desc="adversarial fits"):
        for name, flow in fits(train, eps, steps).items():
            clean, sample = flow.nll(test), worst_case_nll(flow, test, eps, "sample")
            rows.append(
                {
                    "eps": eps,
                    "fit": name,
                    "clean": clean.mean().item(),
                    "universal": worst_case_nll(flow, test, eps, "universal").mean().item(),
                    "sample": sample.mean().item(),
                    "clean_points": clean.numpy(),
                    "sample_points": sample.numpy(),
                    "variances": flow.variances.tolist(),
                }
            )
    return rows


def tradeoff_table(rows: list[dict]) -> Table:
    """Mean test NLL (nats per image) of each fit: clean, and under each attack at its eps."""
    body = [(r["eps"], r["fit"], round(r["clean"], 2), round(r["universal"], 2), round(r["sample"], 2)) for r in rows]
    return Table(("eps", "fit", "clean NLL", "universal", "sample"), body)


def tradeoff_figure(rows: list[dict]):
    """Left: clean NLL against the worst-case NLL under the sample attack, one point per eps
    and fit. Right: the covariance spectra of the fits at the largest eps."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for fit, marker in zip(FITS, "os^", strict=True):
        mine = [r for r in rows if r["fit"] == fit]
        axes[0].plot([r["clean"] for r in mine], [r["sample"] for r in mine], marker + "-", label=f"{fit} fit")
        for r in mine:
            axes[0].annotate(
                f"{r['eps']:g}", (r["clean"], r["sample"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
    axes[0].set(xlabel="clean test NLL (nats per image)", ylabel="NLL under the sample attack", title="labels: eps")
    axes[0].legend(fontsize="small")
    largest = max(r["eps"] for r in rows)
    for r in rows:
        if r["eps"] == largest:
            axes[1].semilogy(np.arange(1, len(r["variances"]) + 1), r["variances"], label=f"{r['fit']} fit")
    axes[1].set(
        xlabel="eigenvalue rank (ascending)", ylabel="variance", title=f"spectrum of the fits at eps = {largest:g}"
    )
    axes[1].legend(fontsize="small")
    for ax in axes:
        ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def spectrum_change(rows: list[dict], eps: float) -> Table:
    """Which directions adversarial training moves at `eps`: the variances it raises (how
    many, from what to what) and the share of the total variance it adds."""
    body = [
        (
            fit,
            f"{c['raised']} of {c['dims']}",
            f"{c['smallest_before']:.3g} -> {c['smallest']:.3g}",
            f"+{c['total']:.1%}",
        )
        for fit, c in _spectrum(rows, eps).items()
    ]
    columns = ("fit", "variances raised > 1 %", "smallest", "total variance")
    return Table(columns, body, caption=f"The adversarially trained fits against the clean one at eps = {eps:g}:")


def _spectrum(rows: list[dict], eps: float) -> dict[str, dict]:
    """Per adversarially trained fit at `eps`: how many variances it raises by over 1 %, the
    smallest variance before and after, and the share of total variance it adds."""
    by_fit = {r["fit"]: torch.tensor(r["variances"]) for r in rows if r["eps"] == eps}
    clean = by_fit["clean"]
    return {
        fit: {
            "raised": int((by_fit[fit] > clean * 1.01).sum()),
            "dims": len(clean),
            "smallest_before": clean[0].item(),
            "smallest": by_fit[fit][0].item(),
            "total": (by_fit[fit].sum() / clean.sum() - 1).item(),
        }
        for fit in ("universal", "sample")
    }


def sizes_table(linear: LinearSizes, deep: DeepSizes) -> Table:
    """The chapter's scale at its profile: each setting of the linear and the deep half."""

    def value(v: object) -> str:
        return ", ".join(f"{x:.4g}" for x in v) if isinstance(v, tuple) else str(v)

    rows = [
        (half, f.name, value(getattr(sizes, f.name)))
        for half, sizes in (("linear", linear), ("deep", deep))
        for f in dataclasses.fields(sizes)
    ]
    return Table(("half", "setting", "value"), rows)


ABSTRACT = "Pope, Balaji & Feizi (2019), abstract"


def _paired(first: np.ndarray, second: np.ndarray) -> tuple[float, float, float]:
    """Mean of first minus mean of second over the same points, with a paired bootstrap."""
    return bootstrap([first, second], lambda a, b, axis=-1: np.mean(a - b, axis=axis), paired=True)


def claims(rows: list[dict], data_name: str) -> list[dict]:
    """The abstract's "fundamental trade-off between model robustness and accuracy" for the
    linear flow, at each eps > 0 as two directional claims over the same test points (paired
    bootstrap): the adversarially trained fit lowers the worst-case (sample-specific attack)
    NLL, and it raises the clean NLL."""
    out = []
    for eps in sorted({r["eps"] for r in rows if r["eps"] > 0}):
        at = {r["fit"]: r for r in rows if r["eps"] == eps}
        clean, robust = at["clean"], at["sample"]
        n = len(clean["clean_points"])
        said = {"n": n, "of": "test points", "method": "paired bootstrap", "unit": "nats", "source": ABSTRACT}
        gain = _paired(clean["sample_points"], robust["sample_points"])
        cost = _paired(robust["clean_points"], clean["clean_points"])
        out += [
            directional(
                f"linear flow, {data_name}, eps {eps:g}: attacked NLL the robust fit saves",
                *_split(gain),
                statement="adversarial training buys robustness (the trade-off's one side)",
                **said,
            ),
            directional(
                f"linear flow, {data_name}, eps {eps:g}: clean NLL the robust fit pays",
                *_split(cost),
                statement="robustness costs accuracy: a fundamental trade-off",
                **said,
            ),
        ]
    return out


def _split(estimate: tuple[float, float, float]) -> tuple[float, tuple[float, float]]:
    return estimate[0], (estimate[1], estimate[2])


def _in_bits(
    name: str,
    estimate: tuple[float, float, float],
    n: int,
    of: str,
    statement: str,
    *,
    method: str = "paired bootstrap",
    source: str = ABSTRACT,
    note: str = "",
) -> dict:
    """A directional claim of the deep half: a difference in bits/dim with its interval."""
    return directional(
        name,
        *_split(estimate),
        n=n,
        of=of,
        method=method,
        statement=statement,
        unit="bits/dim",
        source=source,
        note=note,
    )


# ---- Deep flows -------------------------------------------------------------------------


DEEP_FLOWS = ("glow", "realnvp")
ROBUST = " + adversarial training"  # the name of a flow's adversarially trained twin


def deep_sizes(profile: str) -> DeepSizes:
    """The deep half's sizes at a profile."""
    return sizes(profile).deep


def deep_profile(profile: Profile, dataset: str, flow: str, adversarial: bool, weight: float | None = None) -> Profile:
    """The training profile of one unconditional flow: `profile` at the deep half's size,
    with hybrid adversarial training if `adversarial`: the loss mixes the clean NLL and the
    NLL after PGD as (1 - weight) and weight (default `DeepSizes.adv_weight`)."""
    sizes = deep_sizes(profile.name)
    change: dict = {"model_kind": flow}
    if sizes.arch is not None:
        change |= {
            "arch": {**profile.scale.arch, family(dataset): sizes.arch},
            "train_steps": {**profile.scale.train_steps, family(dataset): sizes.train_steps},
            "batch_size": 32,
        }
    if adversarial:
        change |= {
            "adversarial_weight": sizes.adv_weight if weight is None else weight,
            "adversarial_eps": sizes.adv_eps,
            "adversarial_steps": sizes.adv_steps,
        }
    return profile.replace(**change)


def deep_models(params: Params, weight: float | None = None) -> dict[str, torch.nn.Module]:
    """The four unconditional flows of the chapter's dataset, by name ("glow", "glow +
    adversarial training", ...), the adversarial ones at mixing `weight`: trained once,
    then read from the cache."""
    models = {}
    for flow in DEEP_FLOWS:
        for adversarial in (False, True):
            prof = deep_profile(params.profile, params.dataset, flow, adversarial, weight)
            name = flow + (ROBUST if adversarial else "")
            models[name] = zoo.get_model(
                params.dataset, "unconditional", prof, params.seed, params.device, precision=params.precision
            )
    return models


def _grey_or_colour(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Images with `channels` channels: colour averaged to grey, grey repeated to colour."""
    if images.shape[1] == channels:
        return images
    return images.mean(1, keepdim=True) if channels == 1 else images.repeat(1, channels, 1, 1)


def image_sets(params: Params, n: int) -> dict[str, torch.Tensor]:
    """In-distribution test images first, then the out-of-distribution sets the model did
    not see: for a CIFAR-10 model MNIST (3 channels), BG-MNIST-0 and uniform noise; for an
    MNIST model greyscale CIFAR-10 and uniform noise. n seeded images each, in [-0.5, 0.5]."""
    own = params.dataset
    channels = 3 if family(own) == "cifar10" else 1
    others = ["mnist", "bg-mnist-0"] if family(own) == "cifar10" else ["cifar10"]
    sets = {own: data.load(own, "test", subset=n, seed=params.seed).tensors()[0]}
    for name in others:
        images = data.load(name, "test", subset=n, seed=params.seed).tensors()[0]
        sets[name + (" (grey)" if channels == 1 else "")] = _grey_or_colour(images, channels)
    gen = torch.Generator().manual_seed(params.seed)
    sets["uniform noise"] = torch.rand(n, channels, 32, 32, generator=gen) - 0.5
    return sets


def likelihood_attacks(
    params: Params, models: dict[str, torch.nn.Module], sets: dict[str, torch.Tensor], sizes: DeepSizes
) -> list[dict]:
    """PGD on each model and set, at each budget of both norms: raise the NLL of the
    in-distribution images (the first set), lower it for the others. Per row: mean bits/dim
    before and after, and the share of images whose NLL ends below the model's median NLL of
    the clean in-distribution images."""
    own = next(iter(sets))
    budgets = [("l2", e) for e in sizes.l2_eps] + [("linf", e) for e in sizes.linf_eps]
    rows = []
    work = [(m, s, b) for m in models for s in sets for b in budgets]
    targets = {m: FlowTarget(model, params.profile.scale.eval_batch_size) for m, model in models.items()}
    with torch.no_grad():  # the clean NLLs, once per model and set
        clean = {(m, s): targets[m](x.to(params.device))[1] for m in models for s, x in sets.items()}
    for model_name, set_name, (norm, eps) in bar(work, desc="PGD attacks"):
        target = targets[model_name]
        x = sets[set_name].to(params.device)
        sign = 1.0 if set_name == own else -1.0  # raise the NLL of real images, lower the others'
        before, median = clean[model_name, set_name], clean[model_name, own].median()
        key = _pgd_key(models[model_name], set_name, x, params.seed, norm, eps, sizes.pgd_steps, sign)
        after = memo("pgd-nll", key, partial(_attacked_nll, target, x, sign, eps, norm, sizes.pgd_steps, params.seed))
        after = after["nll"].to(before.device)
        rows.append(
            {
                "model": model_name,
                "set": set_name,
                "norm": norm,
                "eps": eps,
                "before": before.mean().item(),
                "after": after.mean().item(),
                "before_images": before.cpu().numpy(),
                "after_images": after.cpu().numpy(),
                "below_median_before": 100 * (before < median).double().mean().item(),
                "below_median_after": 100 * (after < median).double().mean().item(),
            }
        )
    return rows


def _pgd_key(
    model: torch.nn.Module,
    set_name: str,
    x: torch.Tensor,
    seed: int,
    norm: str,
    eps: float,
    steps: int,
    sign: float,
    restarts: int = 1,
) -> dict:
    """The memo key of one PGD run on a model and image set (restarts keyed beyond one)."""
    key = {"model": model.info["sha256"], "set": [set_name, len(x), seed], "budget": [norm, eps, steps], "sign": sign}
    return key | ({"restarts": restarts} if restarts > 1 else {})


def _attacked_nll(
    target: FlowTarget,
    x: torch.Tensor,
    sign: float,
    eps: float,
    norm: str,
    steps: int,
    seed: int,
    restarts: int = 1,
    judge: FlowTarget | None = None,
) -> dict[str, torch.Tensor]:
    """PGD on `target` moving the NLL of `x` in the direction of `sign`, from `restarts`
    random starts: per image the best end's NLL (bits/dim, on the CPU) as `judge` scores it
    (default `target`; another model: a transfer attack), as the memo stores it."""
    judge = judge or target
    best = None
    for restart in range(restarts):
        attacked = pgd(_signed_nll(target, sign), x, eps, norm, steps, seed=seed + restart)
        with torch.no_grad():
            nll = judge(attacked)[1].cpu()
        best = nll if best is None else torch.where(sign * nll > sign * best, nll, best)
    return {"nll": best}


def _signed_nll(target: FlowTarget, sign: float):
    """The PGD objective: sign x each image's NLL in bits/dim."""
    return lambda images: sign * target(images)[1]


def _eps_label(norm: str, eps: float) -> str:
    return f"L2 {eps:g}" if norm == "l2" else f"Linf {eps * 255:g}/255"


def attacks_table(rows: list[dict]) -> Table:
    """Bits/dim before -> after each attack, and (for the out-of-distribution sets) the share
    of images below the in-distribution median NLL before -> after."""
    body = [
        (
            r["model"],
            r["set"],
            _eps_label(r["norm"], r["eps"]),
            f"{r['before']:.2f} -> {r['after']:.2f}",
            f"{r['below_median_before']:.0f} -> {r['below_median_after']:.0f}",
        )
        for r in rows
    ]
    return Table(("model", "set", "budget", "bits/dim", "below median %"), body)


def attacks_figure(rows: list[dict], norm: str = "l2"):
    """Mean bits/dim after PGD against its budget, one panel per image set, one line per
    model (the first panel's attack raises the NLL, the others' lower it)."""
    sets = list(dict.fromkeys(r["set"] for r in rows))
    fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets), 3.4), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        for model in dict.fromkeys(r["model"] for r in rows):
            mine = [r for r in rows if r["set"] == name and r["model"] == model and r["norm"] == norm]
            eps = [0.0] + [r["eps"] for r in mine]
            ax.plot(eps, [mine[0]["before"]] + [r["after"] for r in mine], "o-", label=model, markersize=3)
        ax.set(title=name, xlabel=f"{norm.upper()} budget", ylabel="bits/dim after PGD")
        ax.title.set_fontsize(9)
    axes[0][0].legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def deep_claims(rows: list[dict], dataset: str) -> list[dict]:
    """The abstract's claims on the deep flows at the largest L2 budget, over the same attacked
    images (paired bootstrap): each model is "extremely sensitive" (PGD raises the NLL of its
    own test images and lowers that of the other sets), and hybrid adversarial training
    "significantly boosts the robustness" (its model's NLL after the attack on its own images
    is lower than the plain model's)."""
    largest = max(r["eps"] for r in rows if r["norm"] == "l2")
    at = [r for r in rows if r["norm"] == "l2" and r["eps"] == largest]
    own = at[0]["set"]
    out = []
    for r in at:
        mine = r["set"] == own
        moved = (
            _paired(r["after_images"], r["before_images"]) if mine else _paired(r["before_images"], r["after_images"])
        )
        out.append(
            _in_bits(
                f"PGD L2 {largest:g} on {r['model']}, {r['set']} ({dataset} model): bits/dim "
                + ("raised" if mine else "lowered"),
                moved,
                len(r["before_images"]),
                "attacked images",
                "GLOW and RealNVP are extremely sensitive to both types of attacks",
                note=f"{r['before']:.2f} -> {r['after']:.2f}; below the in-distribution median "
                f"{r['below_median_before']:.0f} -> {r['below_median_after']:.0f} %",
            )
        )
    by_model = {r["model"]: r for r in at if r["set"] == own}
    for name, robust in by_model.items():
        plain = by_model.get(name.removesuffix(ROBUST)) if name.endswith(ROBUST) else None
        if plain is not None:
            out.append(
                _in_bits(
                    f"{name} on {own}: bits/dim after PGD L2 {largest:g}, saved over the plain model",
                    _paired(plain["after_images"], robust["after_images"]),
                    len(plain["after_images"]),
                    "attacked images (the same for both)",
                    "hybrid adversarial training significantly boosts the robustness",
                )
            )
    return out


def ood_strength(
    params: Params, models: dict[str, torch.nn.Module], sets: dict[str, torch.Tensor], sizes: DeepSizes
) -> list[dict]:
    """The out-of-distribution attack at the abstract's strength, on the plain flows: PGD
    with `ood_steps` steps from `ood_restarts` random starts lowers the NLL of each other set
    at L2 budgets growing from the chapter's largest to tenfold (`ood_growth`), and stops at
    the first budget where some image gets below the model's median NLL of its own test
    images. One row per budget tried: the attacked NLLs beside that median, and the median L2
    distance from an image of the set to its nearest in-distribution image (a budget that
    large could swap the image for a real one)."""
    own, base = next(iter(sets)), max(sizes.l2_eps)
    plain = [m for m in models if not m.endswith(ROBUST)]
    medians = {}
    with torch.no_grad():
        for m in plain:
            medians[m] = FlowTarget(models[m], params.profile.scale.eval_batch_size)(sets[own].to(params.device))[1]
    rows, reached = [], set()
    work = [(m, s, g) for m in plain for s in sets if s != own for g in sizes.ood_growth]
    for m, set_name, growth in bar(work, desc="PGD at the abstract's strength"):
        if (m, set_name) in reached:
            continue
        target, x = FlowTarget(models[m], params.profile.scale.eval_batch_size), sets[set_name].to(params.device)
        eps, steps, restarts = growth * base, sizes.ood_steps, sizes.ood_restarts
        key = _pgd_key(models[m], set_name, x, params.seed, "l2", eps, steps, -1.0, restarts)
        run = partial(_attacked_nll, target, x, -1.0, eps, "l2", steps, params.seed, restarts)
        after = memo("pgd-nll", key, run)["nll"].numpy()
        median = medians[m].median().item()
        nearest = torch.cdist(sets[set_name].flatten(1), sets[own].flatten(1)).min(1).values.median().item()
        rows.append(
            {"model": m, "set": set_name, "eps": eps, "growth": growth, "steps": steps, "restarts": restarts}
            | {"median": median, "after_images": after, "reached": int((after < median).sum()), "nearest": nearest}
        )
        if rows[-1]["reached"]:
            reached.add((m, set_name))
    return rows


def ood_table(rows: list[dict]) -> Table:
    """Per model, set and budget tried: the attacked images' median bits/dim against the
    in-distribution median, how many got below it, and the set's median L2 distance to the
    nearest in-distribution image."""
    body = [
        (
            r["model"],
            r["set"],
            f"L2 {r['eps']:g} ({r['growth']:g}x)",
            f"{np.median(r['after_images']):.2f}",
            f"{r['median']:.2f}",
            f"{r['reached']} of {len(r['after_images'])}",
            f"{r['nearest']:.1f}",
        )
        for r in rows
    ]
    columns = ("model", "set", "budget", "median bits/dim after", "in-distribution median", "below it", "L2 to nearest")
    return Table(columns, body)


def ood_claims(rows: list[dict], dataset: str) -> list[dict]:
    """The abstract's second attack at its strength, per plain flow and other set at the last
    budget tried: the in-distribution median NLL minus the attacked images' median (bootstrap
    over the images), positive when the typical attacked image passes for an in-distribution one."""
    last = {(r["model"], r["set"]): r for r in rows}
    out = []
    for (model, set_name), r in last.items():
        gap = bootstrap([r["median"] - r["after_images"]], np.median)
        out.append(
            _in_bits(
                f"PGD L2 {r['eps']:g} ({r['steps']} steps x {r['restarts']}) on {model}, {set_name} "
                f"({dataset} model): bits/dim below the in-distribution median",
                gap,
                len(r["after_images"]),
                "attacked images",
                "GLOW and RealNVP are extremely sensitive to both types of attacks: "
                "out-of-distribution images made as likely as in-distribution ones",
                method="bootstrap (median)",
                note=f"{r['reached']} of {len(r['after_images'])} below the median {r['median']:.2f}",
            )
        )
    return out


def masking_check(
    params: Params, models: dict[str, torch.nn.Module], sets: dict[str, torch.Tensor], sizes: DeepSizes
) -> list[dict]:
    """Is the robust flows' gain gradient masking? On the in-distribution images at the
    largest L2 budget, per adversarially trained flow: its NLL after the chapter's PGD, after
    PGD at the abstract's strength (`ood_steps` x `ood_restarts`), and on the examples the
    chapter's PGD crafted against its plain twin (a transfer attack, blind to its gradients)."""
    own, eps = next(iter(sets)), max(sizes.l2_eps)
    x = sets[own].to(params.device)
    rows = []
    for name in bar([m for m in models if m.endswith(ROBUST)], desc="gradient-masking check"):
        robust, plain = (
            FlowTarget(models[m], params.profile.scale.eval_batch_size) for m in (name, name.removesuffix(ROBUST))
        )
        found = {}
        for what, steps, restarts in (("white", sizes.pgd_steps, 1), ("strong", sizes.ood_steps, sizes.ood_restarts)):
            key = _pgd_key(models[name], own, x, params.seed, "l2", eps, steps, 1.0, restarts)
            run = partial(_attacked_nll, robust, x, 1.0, eps, "l2", steps, params.seed, restarts)
            found[what] = memo("pgd-nll", key, run)["nll"].numpy()
        key = _pgd_key(plain.model, own, x, params.seed, "l2", eps, sizes.pgd_steps, 1.0) | {
            "judge": models[name].info["sha256"]
        }
        run = partial(_attacked_nll, plain, x, 1.0, eps, "l2", sizes.pgd_steps, params.seed, judge=robust)
        found["transfer"] = memo("pgd-nll", key, run)["nll"].numpy()
        rows.append({"model": name, "eps": eps, "steps": sizes.pgd_steps, "strong_steps": sizes.ood_steps} | found)
    return rows


def masking_table(rows: list[dict]) -> Table:
    """The robust flows' mean bits/dim after each attack of `masking_check`."""
    body = [
        (r["model"], f"{r['white'].mean():.2f}", f"{r['strong'].mean():.2f}", f"{r['transfer'].mean():.2f}")
        for r in rows
    ]
    heads = ("model", "PGD (chapter's steps)", "PGD (abstract's strength)", "transferred from the plain flow")
    return Table(heads, body, note=f"Mean bits/dim after an L2 {rows[0]['eps']:g} attack." if rows else "")


def masking_claims(rows: list[dict], dataset: str) -> list[dict]:
    """No sign of gradient masking: the white-box attack at the abstract's strength raises
    each robust flow's NLL more than the transfer from its plain twin (paired bootstrap)."""
    return [
        _in_bits(
            f"{r['model']} ({dataset}): white-box PGD L2 {r['eps']:g} beats the transfer from the plain flow, bits/dim",
            _paired(r["strong"], r["transfer"]),
            len(r["strong"]),
            "attacked images (the same for both)",
            "hybrid adversarial training significantly boosts the robustness "
            "(checked for gradient masking: a gradient-free transfer attack is weaker)",
        )
        for r in rows
    ]


def clean_nll(params: Params, models: dict[str, torch.nn.Module], n: int | None = None) -> dict[str, np.ndarray]:
    """Each model's NLL (bits/dim) of the same test images, image by image."""
    test = data.load(params.dataset, "test", subset=n or params.profile.scale.eval_subset, seed=params.seed)
    found = {}
    for name, model in models.items():
        ll, _ = evaluate.log_likelihoods(model, test, params.profile.scale.eval_batch_size, progress=False)
        found[name] = evaluate.nll_bpd(ll, model.n_dims).numpy()
    return found


def clean_cost(nll: dict[str, np.ndarray], models: dict[str, torch.nn.Module]) -> Table:
    """Clean test bits/dim of each model, its steps and training minutes: what the
    adversarial training costs."""
    body = [
        (
            name,
            round(float(nll[name].mean()), 3),
            model.info["spec"]["settings"]["train_steps"],
            round(model.info["train_seconds"] / 60, 1),
        )
        for name, model in models.items()
    ]
    return Table(
        ("model", "clean bits/dim", "steps", "minutes"), body, note=f"On {len(next(iter(nll.values())))} test images."
    )


def cost_claims(nll: dict[str, np.ndarray], rows: list[dict], dataset: str) -> list[dict]:
    """Two consequences of hybrid adversarial training on the deep flows, paired over the same
    images: the clean NLL it pays (the abstract's trade-off, where it could fail: training on
    attacked images might as well regularise), and, for each other set, how much likelier it
    makes those images before any attack (this book's finding, not the abstract's)."""
    own = rows[0]["set"]
    before = {(r["model"], r["set"]): r["before_images"] for r in rows}
    out = []
    for name in (m for m in nll if m.endswith(ROBUST)):
        plain = name.removesuffix(ROBUST)
        out.append(
            _in_bits(
                f"{name} ({dataset}): clean bits/dim paid over the plain flow",
                _paired(nll[name], nll[plain]),
                len(nll[name]),
                "test images",
                "robustness costs accuracy: a fundamental trade-off (deep flows)",
            )
        )
        for set_name in dict.fromkeys(s for _, s in before if s != own):
            out.append(
                _in_bits(
                    f"{name} on {set_name} ({dataset} model): clean bits/dim lower than the plain flow's",
                    _paired(before[plain, set_name], before[name, set_name]),
                    len(before[name, set_name]),
                    "images of the other set",
                    "adversarial training makes out-of-distribution images likelier",
                    source="this book, chapter 7 (not in the abstract)",
                )
            )
    return out


# ---- The figures the prose quotes ----------------------------------------------------------


def _slug(name: str) -> str:
    """A glue name's part for a model, set or budget: "glow + adversarial training" -> "glow_adv"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower().replace("adversarial training", "adv")).strip("_")


def _tag(eps: float) -> str:
    return f"{eps:g}".replace(".", "p")


def _interval(estimate: tuple[float, float, float], digits: int = 2) -> str:
    value, low, high = estimate
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def linear_numbers(rows: list[dict], tag: str, digits: int) -> dict[str, str]:
    """The linear half's figures for `chapter.glue`, named `<tag>_<fit>_<eps>_<clean|universal|
    sample>` (mean test NLL, nats; `top` for the largest eps too), per eps > 0 the clean fit's gains under each attack
    (`<tag>_gain_<attack>_<eps>`) and the robust fit's saving and price with their intervals
    (`<tag>_saved_<eps>`, `<tag>_paid_<eps>`), and the spectrum at the largest eps
    (`<tag>_<fit>_raised`, `_smallest`, `_total`; `<tag>_smallest_before`)."""
    found, top = {}, max(r["eps"] for r in rows)
    for r in rows:
        for what in ("clean", "universal", "sample"):
            for e in (_tag(r["eps"]),) + (("top",) if r["eps"] == top else ()):
                found[f"{tag}_{r['fit']}_{e}_{what}"] = f"{r[what]:.{digits}f}"
    for eps in sorted({r["eps"] for r in rows if r["eps"] > 0}):
        at, e = {r["fit"]: r for r in rows if r["eps"] == eps}, _tag(eps)
        for attack in ("universal", "sample"):
            found[f"{tag}_gain_{attack}_{e}"] = f"{at['clean'][attack] - at['clean']['clean']:.{digits}f}"
        found[f"{tag}_saved_{e}"] = _interval(_paired(at["clean"]["sample_points"], at["sample"]["sample_points"]))
        found[f"{tag}_paid_{e}"] = _interval(_paired(at["sample"]["clean_points"], at["clean"]["clean_points"]))
    for fit, c in _spectrum(rows, top).items():
        found |= {
            f"{tag}_{fit}_raised": f"{c['raised']} of {c['dims']}",
            f"{tag}_{fit}_smallest": f"{c['smallest']:.3g}",
        }
        found |= {
            f"{tag}_{fit}_total": f"{100 * c['total']:.1f} %",
            f"{tag}_smallest_before": f"{c['smallest_before']:.3g}",
        }
    return found


def deep_numbers(
    rows: list[dict],
    nll: dict[str, np.ndarray],
    models: dict[str, torch.nn.Module],
    ood_rows: list[dict],
    masking_rows: list[dict],
) -> dict[str, str]:
    """The deep half's figures for `chapter.glue`, named by model and set slug (`glow_adv`,
    `own` for the in-distribution set, `cifar10_grey`, `uniform_noise`): mean bits/dim before
    (`<model>_<set>_before`) and after each budget (`<model>_<set>_l2_0p25`, `_linf_8` in
    levels), the images below the in-distribution median after the largest L2 budget
    (`<model>_<set>_below`), the clean NLL and training minutes (`<model>_clean`,
    `<model>_minutes`), the robust flows' price, OOD likening and saving with intervals
    (`<model>_paid`, `<model>_<set>_likelier`, `<model>_saved`), the abstract-strength OOD
    attack (`ood_<model>_<set>_eps`, `_reached`, `_after`, `_gap`, `_nearest`; `ood_<model>_median`) and
    the masking check (`mask_<model>_white`, `_strong`, `_transfer`, `_beats`)."""
    own = rows[0]["set"]
    largest = max(r["eps"] for r in rows if r["norm"] == "l2")
    found = {}
    for r in rows:
        m, s = _slug(r["model"]), "own" if r["set"] == own else _slug(r["set"])
        budget = f"l2_{_tag(r['eps'])}" if r["norm"] == "l2" else f"linf_{round(r['eps'] * 255)}"
        found |= {f"{m}_{s}_before": f"{r['before']:.2f}", f"{m}_{s}_{budget}": f"{r['after']:.2f}"}
        if r["norm"] == "l2" and r["eps"] == largest:
            found[f"{m}_{s}_below"] = f"{r['below_median_after']:.0f} %"
            first, second = (r["after_images"], r["before_images"])[:: 1 if s == "own" else -1]
            found[f"{m}_{s}_moved"] = _interval(_paired(first, second))  # raised (own) or lowered
    at = {(r["model"], r["set"]): r for r in rows if r["norm"] == "l2" and r["eps"] == largest}
    for name, model in models.items():
        m = _slug(name)
        found |= {f"{m}_clean": f"{nll[name].mean():.3f}", f"{m}_minutes": f"{model.info['train_seconds'] / 60:.1f}"}
        if name.endswith(ROBUST):
            plain = name.removesuffix(ROBUST)
            found[f"{m}_paid"] = _interval(_paired(nll[name], nll[plain]), 3)
            found[f"{m}_saved"] = _interval(_paired(at[plain, own]["after_images"], at[name, own]["after_images"]), 1)
            for s in dict.fromkeys(s for _, s in at if s != own):
                likelier = _paired(at[plain, s]["before_images"], at[name, s]["before_images"])
                found[f"{m}_{_slug(s)}_likelier"] = _interval(likelier, 1)
    for r in ood_rows:
        key = f"ood_{_slug(r['model'])}_{_slug(r['set'])}"
        found |= {f"{key}_eps": f"{r['eps']:g}", f"{key}_reached": f"{r['reached']} of {len(r['after_images'])}"}
        found[f"{key}_nearest"] = f"{r['nearest']:.1f}"
        found[f"{key}_after"] = f"{np.median(r['after_images']):.2f}"
        found[f"{key}_gap"] = _interval(bootstrap([r["median"] - r["after_images"]], np.median))
        found[f"ood_{_slug(r['model'])}_median"] = f"{r['median']:.2f}"
    for r in masking_rows:
        key = f"mask_{_slug(r['model'])}"
        found |= {f"{key}_{what}": f"{r[what].mean():.2f}" for what in ("white", "strong", "transfer")}
        found[f"{key}_beats"] = _interval(_paired(r["strong"], r["transfer"]))
    return found
