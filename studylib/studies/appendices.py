"""Chapter 08: the paper's appendices. C: ideas that did not help (robust priors, label
smoothing in the latent, a conditional Flow-GAN); E: a conditional PixelCNN++. Each model is
measured as the flows are in chapters 2, 3 and 5: accuracy, bits/dim, the Figure 3 margin
against the spread of NLLs, and the share of interpolation paths that stay below T."""

from __future__ import annotations

import re
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch

from studylib.book import paper
from studylib.book.chapter import Params, check_seeds
from studylib.book.ledger import MARGINS, directional, load_all, quantitative, quoted, verdict
from studylib.book.tables import Table, counted, estimate, listed, signed, signed_estimate
from studylib.config import Profile, family
from studylib.measure import evaluate, interpolate
from studylib.measure.evaluate import bits_per_dim
from studylib.measure.uncertainty import t_interval, wilson
from studylib.progress import bar
from studylib.sizes import AppendixSizes, sizes
from studylib.studies.common import (
    eval_interpolations,
    eval_log_likelihoods,
    eval_set,
    image_estimate,
    metrics,
    seeds_difference,
    seeds_estimate,
    table_cells,
)
from studylib.training import zoo
from studylib.training.loop import TrainingDiverged

# Appendix C's variants of the reweighted model: one change to its class prior each.
VARIANTS: dict[str, dict] = {
    "Gaussian (chapter 2)": {},
    "Laplace": {"prior_family": "laplace"},
    "Cauchy": {"prior_family": "cauchy"},
    "Gaussian + Laplace": {"prior_family": "gaussian+laplace"},
    "Gaussian + Cauchy": {"prior_family": "gaussian+cauchy"},
    "label smoothing 0.1": {"label_smoothing": 0.1},
    "Flow-GAN, weight 0.1": {"gan_weight": 0.1},
}


def appendix_sizes(profile: str) -> AppendixSizes:
    """The appendix models' sizes at a profile."""
    return sizes(profile).appendix


def appendix_profile(profile: Profile, dataset: str, change: dict, pixelcnn: bool = False) -> Profile:
    """`profile` at the appendix models' size (batch 32) with one variant's `change`."""
    sizes = appendix_sizes(profile.name)
    arch, steps = (sizes.pixelcnn, sizes.pixelcnn_steps) if pixelcnn else (sizes.arch, sizes.train_steps)
    if arch is not None:
        fam = family(dataset)
        change = {
            "arch": {**profile.scale.arch, fam: arch},
            "batch_size": 32,
            **({"train_steps": {**profile.scale.train_steps, fam: steps}} if steps is not None else {}),
            **change,
        }
    if pixelcnn:
        change = {**change, "model_kind": "pixelcnn"}
    return profile.replace(**change)


def _todo(params: Params) -> list[tuple[str, str, Profile, float | None]]:
    """Every appendix model of the chapter: (name, objective, profile, cross-entropy weight)."""
    sizes = appendix_sizes(params.profile.name)
    todo = [
        (name, "reweighted", appendix_profile(params.profile, params.dataset, c), None) for name, c in VARIANTS.items()
    ]
    pixel = appendix_profile(params.profile, params.dataset, {}, pixelcnn=True)
    return todo + [
        ("PixelCNN++, alpha 0", "base", pixel, None),
        (f"PixelCNN++, alpha {sizes.alpha:g}", "reweighted", pixel, sizes.alpha),
    ]


def _get(
    params: Params, objective: str, prof: Profile, seed: int, weight: float | None
) -> torch.nn.Module | TrainingDiverged:
    """The model from the cache or trained now; a diverged training's `TrainingDiverged`."""
    try:
        return zoo.get_model(
            params.dataset, objective, prof, seed, params.device, ce_weight=weight, precision=params.precision
        )
    except TrainingDiverged as diverged:
        return diverged


def models(params: Params) -> dict[str, tuple[str, torch.nn.Module | TrainingDiverged]]:
    """Every appendix model of the chapter's dataset by name, with its objective: appendix
    C's reweighted variants, and appendix E's PixelCNN at alpha = 0 (base) and large alpha.
    A training that diverges (the NaN guard) is a result, not an error: its entry holds the
    `TrainingDiverged` (step and curve) in place of a model; the cache records it, so a re-run
    reports it without training again (resume is deterministic: it would diverge alike)."""
    return {
        name: (objective, _get(params, objective, prof, params.seed, weight))
        for name, objective, prof, weight in _todo(params)
    }


def seed_runs(params: Params, seeds: int = 1, train_seeds: bool = False) -> dict[str, list[dict]]:
    """Every appendix model at the seeds after the chapter's first (up to `seeds` in all):
    each read from the cache where it is settled there (trained, or its divergence
    recorded), trained only if `train_seeds`. Per model, one row per seed found: its
    accuracy (%) and bits/dim on the test subset, or the step its training diverged at. The
    seed-to-seed spread is what decides whether a variant's difference to the Gaussian
    prior, or a Table 4 cell, is the model's doing or the draw's."""
    check_seeds(seeds)
    test = eval_set(params)
    later = range(params.seed + 1, params.seed + seeds)
    todo = _todo(params)
    found: dict[str, list[dict]] = {name: [] for name, *_ in todo}
    for name, objective, prof, weight in bar(todo, desc="later seeds", disable=len(later) == 0):
        for seed in later:
            if not (train_seeds or zoo.is_settled(params.dataset, objective, prof, seed, weight)):
                continue
            model = _get(params, objective, prof, seed, weight)
            if isinstance(model, TrainingDiverged):
                found[name].append({"seed": seed, "diverged_at": model.step, "train_minutes": _minutes(model)})
            else:
                scores = metrics(params, model, test)
                found[name].append(
                    {
                        "seed": seed,
                        "accuracy": 100 * scores["accuracy"],
                        "bpd": scores["bpd"],
                        "train_minutes": _minutes(model),
                    }
                )
    return found


def measure(params: Params, model: torch.nn.Module, pairs: int, steps: int = 50) -> dict:
    """Accuracy and bits/dim on the test subset; the median margin between the correct and
    the best wrong class against the 5-95 % spread of the clean NLL (nats; Figure 3's
    reading); the share of interpolation paths between test images of two classes that
    stay below T (at the paper's recall) all the way (chapter 5)."""
    test = eval_set(params)
    ll, y = eval_log_likelihoods(params, model, test)
    summary = evaluate.summarize(ll, y, model.n_dims)
    correct, wrong = evaluate.correct_vs_wrong(ll, y)
    spread = (torch.quantile(correct, 0.95) - torch.quantile(correct, 0.05)).item()
    nll = evaluate.nll_bpd(ll, model.n_dims)
    t, _ = evaluate.threshold(nll, paper.THRESHOLD[family(params.dataset)][1])
    i0, i1 = interpolate.select_pairs(ll, y, nll, t, pairs, torch.Generator().manual_seed(params.seed))
    paths = eval_interpolations(params, model, test, i0, i1, steps, progress=False)
    return {
        "accuracy": 100 * summary["accuracy"],
        "bpd": summary["bpd"],
        "gap_nats": (wrong - correct).median().item(),
        "spread_nats": spread,
        "paths_below": 100 * paths.below(t).double().mean().item(),
        "paths_below_k": int(paths.below(t).sum()),
        "pairs": len(i0),
        "correct": (ll.argmax(1) == y).numpy(),
        "bpd_images": bits_per_dim(correct, model.n_dims).numpy(),
    }


def table(params: Params, found: dict[str, tuple[str, torch.nn.Module | TrainingDiverged]]) -> dict[str, dict]:
    """`measure` for every model, with its training time; a diverged training's row holds
    the step it diverged at and its minutes until then."""
    sizes = appendix_sizes(params.profile.name)
    rows = {}
    for name, (_, model) in bar(found.items(), desc="appendix models"):
        if isinstance(model, TrainingDiverged):
            rows[name] = {"diverged_at": model.step, "train_minutes": _minutes(model)}
        else:
            rows[name] = {**measure(params, model, sizes.pairs), "train_minutes": _minutes(model)}
    return rows


def _minutes(model: torch.nn.Module | TrainingDiverged) -> float:
    """Minutes a model trained for; a diverged training's until its last logged step."""
    if isinstance(model, TrainingDiverged):
        return (model.history[-1]["seconds"] if model.history else 0.0) / 60
    return model.info["train_seconds"] / 60


def results_table(rows: dict[str, dict]) -> Table:
    """One row per model: accuracy (Wilson) and bits/dim (bootstrap) with their 95 %
    intervals over the test images, margin against spread, paths below T (Wilson over the
    pairs), minutes of training; a diverged training says at which step."""
    out = []
    for name, r in rows.items():
        if "diverged_at" in r:
            out.append(
                (name, f"diverged at step {r['diverged_at']}", None, None, None, None, round(r["train_minutes"], 1))
            )
            continue
        acc, bpd = image_estimate(r, "accuracy"), image_estimate(r, "bits/dim")
        below = wilson(r["paths_below_k"], r["pairs"])
        out.append(
            (
                name,
                estimate(*acc[:3]),
                estimate(*bpd[:3], digits=3),
                round(r["gap_nats"], 1),
                round(r["spread_nats"], 1),
                estimate(*below, digits=0),
                round(r["train_minutes"], 1),
            )
        )
    columns = ("model", "accuracy (%)", "bits/dim", "gap", "spread", "paths below T (%)", "min")
    note = (
        "95 % intervals in brackets. gap: median NLL margin of the best wrong class (nats); spread: 5-95 % "
        "range of the clean NLL (nats); min: minutes of training; a diverged run stopped at a non-finite loss."
    )
    return Table(columns, out, note=note)


def results_figure(rows: dict[str, dict], seed_rows: dict[str, list[dict]] | None = None):
    """Each model's test accuracy with its 95 % Wilson interval over the first seed's test
    images and, for a variant measured at several seeds, its mean with the t interval over
    them; the Gaussian prior's interval as a band (over seeds where it has several):
    appendix C's "no significant difference" is a variant inside the band."""
    seed_rows = seed_rows or {}
    measured = {name: image_estimate(r, "accuracy")[:3] for name, r in rows.items() if "diverged_at" not in r}
    over_seeds = {name: t_interval(v) for name in rows if len(v := _seed_values(rows, seed_rows, name, "accuracy")) > 1}
    names = [n for n in rows if n in measured or n in over_seeds]
    fig, ax = plt.subplots(figsize=(6.5, 0.4 * len(names) + 1.8))
    shift = 0.15 if over_seeds else 0.0
    for series, offset, label in (
        (measured, -shift, "first seed, over its test images"),
        (over_seeds, shift, "mean over seeds"),
    ):
        shown = [(i, series[n]) for i, n in enumerate(names) if n in series]
        if not shown:
            continue
        at, values = np.array([i for i, _ in shown]) + offset, np.array([v for _, v in shown])
        xerr = [values[:, 0] - values[:, 1], values[:, 2] - values[:, 0]]
        ax.errorbar(values[:, 0], at, xerr=xerr, fmt="o", capsize=3, label=label if over_seeds else None)
    band = over_seeds.get(REFERENCE, measured.get(REFERENCE))
    if band is not None:
        which = " over seeds" if REFERENCE in over_seeds else ""
        ax.axvspan(*band[1:], color="tab:gray", alpha=0.25, label=f"Gaussian prior's interval{which}")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize="small", frameon=False)
    ax.set(yticks=range(len(names)), yticklabels=names, xlabel="test accuracy (%)", title="appendix models")
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def seed_table(rows: dict[str, dict], seed_rows: dict[str, list[dict]]) -> Table:
    """Per model with later seeds: how many seeds were measured, its accuracy at each, and its
    mean accuracy and bits/dim with the t interval over them; where a seed's training
    diverged, at which step. Empty, with a note, where no later seed is in the cache."""
    out = []
    for name, later in seed_rows.items():
        if not later:
            continue
        accuracy, bpd = (_seed_values(rows, seed_rows, name, m) for m in ("accuracy", "bits/dim"))
        cells = [
            estimate(*t_interval(v), digits=d) if len(v) > 1 else (round(v[0], d) if v else None)
            for v, d in ((accuracy, 1), (bpd, 3))
        ]
        first = rows.get(name, {})
        diverged = ", ".join(
            ([f"{first['diverged_at']} (first seed)"] if "diverged_at" in first else [])
            + [f"{r['diverged_at']} (seed {r['seed']})" for r in later if "diverged_at" in r]
        )
        by_seed = ", ".join(f"{v:.1f}" for v in accuracy)
        out.append((name, len(accuracy), by_seed, *cells, diverged or None))
    columns = ("model", "seeds", "accuracy by seed (%)", "accuracy (%)", "bits/dim", "diverged at step")
    note = (
        "Mean over the seeds measured, 95 % t interval over them in brackets."
        if out
        else "No later seed of the appendix models is in the cache: `train_seeds = True` trains them."
    )
    return Table(columns, out, note=note)


def _seed_values(rows: dict[str, dict], seed_rows: dict[str, list[dict]], name: str, metric: str) -> list[float]:
    """A variant's accuracy (%) or bits/dim at every seed measured: the first seed's row,
    then the later seeds' (a diverged training has no value)."""
    mean = _KEYS[metric]
    runs = [*([rows[name]] if name in rows else []), *seed_rows.get(name, [])]
    return [r[mean] for r in runs if "diverged_at" not in r]


def history_table(model: torch.nn.Module | TrainingDiverged, every: int = 5) -> Table:
    """A training run's logged curve (every `every`-th entry): loss, bits/dim, and the
    Flow-GAN's generator and discriminator losses where it has them; for a diverged run,
    the curve up to the step it diverged at."""
    history = model.history if isinstance(model, TrainingDiverged) else model.info["history"]
    rows = history[::every]
    keys = [k for k in ("loss", "bpd", "acc", "gan_generator", "gan_discriminator") if k in rows[0]]
    note = (
        f"diverged at step {model.step}: the loss or its gradient became non-finite"
        if isinstance(model, TrainingDiverged)
        else ""
    )
    return Table(("step", *keys), [(h["step"], *(round(h[k], 3) for k in keys)) for h in rows], note=note)


REFERENCE = "Gaussian (chapter 2)"
# A row's mean per metric.
_KEYS = {"accuracy": "accuracy", "bits/dim": "bpd"}
PIXELCNN = {"PixelCNN++, alpha 0": (25.48, 3.05), "PixelCNN++, alpha 1000": (85.78, 3.34)}  # Table 4, CIFAR-10
NEGATIVE = "Appendix C.1: in our experiments we did not see any significant difference from the Gaussian prior"
TABLE4 = (
    "Appendix E, Table 4: standard training, i.e. alpha = 0, results in very poor accuracy, while reweighting the "
    "classification score results in much better accuracy but worse NLL"
)


def claims(rows: dict[str, dict], dataset: str, seed_rows: dict[str, list[dict]] | None = None) -> list[dict]:
    """Appendix C: each variant's accuracy and bits/dim minus the Gaussian prior's against
    the paper's "no significant difference" in the trade-off between the two (0: it
    matches when 0 lies in our interval): over seeds (t) where the two were measured at
    three or more between them, else on the first seed's test images (a paired bootstrap).
    Appendix E on CIFAR-10: Table 4's cells and its reading, reweighting buys accuracy and
    pays bits/dim, over seeds alike where there are several (else Wilson or a bootstrap over
    the test images; paired for the reading). A diverged training has no measurement and no
    claim (the chapter reports it)."""
    out = []
    for name in VARIANTS:
        if name == REFERENCE:
            continue
        for metric, unit in (("accuracy", "points"), ("bits/dim", "bits/dim")):
            diff = _difference(rows, seed_rows or {}, name, REFERENCE, metric)
            if diff is None:
                continue
            value, low, high, n, of, method, note = diff
            out.append(
                quantitative(
                    f"{name}: {metric} minus the Gaussian prior's",
                    value,
                    (low, high),
                    0.0,
                    n=n,
                    of=of,
                    method=method,
                    unit=unit,
                    source=NEGATIVE,
                    note=note,
                )
            )
    if dataset == "cifar10" and PIXELCNN.keys() <= rows.keys():
        for name, numbers in PIXELCNN.items():
            out += table_cells(name, partial(_estimate, rows, seed_rows or {}, name), numbers, TABLE4)
        plain, reweighted = PIXELCNN  # its two names, alpha 0 first
        for metric, what, unit in (
            ("accuracy", "accuracy gained", "points"),
            ("bits/dim", "bits/dim paid", "bits/dim"),
        ):
            diff = _difference(rows, seed_rows or {}, reweighted, plain, metric)
            if diff is None:
                continue
            value, low, high, n, of, method, note = diff
            out.append(
                directional(
                    f"PixelCNN++ alpha 1000 over alpha 0: {what}",
                    value,
                    (low, high),
                    n=n,
                    of=of,
                    method=method,
                    statement="reweighting results in much better accuracy but worse NLL",
                    unit=unit,
                    source=TABLE4,
                    note=note,
                )
            )
    return out


def _estimate(rows: dict[str, dict], seed_rows: dict[str, list[dict]], name: str, metric: str) -> tuple:
    """A model's accuracy (%) or bits/dim with its interval over seeds or its first seed's
    test images: `seeds_estimate`."""
    return seeds_estimate(_seed_values(rows, seed_rows, name, metric), rows[name], metric)


def _difference(
    rows: dict[str, dict], seed_rows: dict[str, list[dict]], name: str, other: str, metric: str
) -> tuple | None:
    """Model `name`'s accuracy (points) or bits/dim minus model `other`'s over seeds or the
    first seed's test images (`seeds_difference`), with a note of the two means: (difference,
    low, high, n, of, method, note); None where either was not measured."""
    mine, theirs = (_seed_values(rows, seed_rows, n, metric) for n in (name, other))
    first, second = rows.get(name, {}), rows.get(other, {})
    several = len(mine) + len(theirs) >= 3
    if not (mine and theirs) or not (several or ("diverged_at" not in first and "diverged_at" not in second)):
        return None
    shown = (lambda v: f"{v:.1f} %") if metric == "accuracy" else (lambda v: f"{v:.3f}")
    value = seeds_difference(mine, theirs, first, second, metric)
    if several:
        note = f"{shown(np.mean(mine))} over {len(mine)} seeds against {shown(np.mean(theirs))} over {len(theirs)}"
    else:
        note = f"{shown(mine[0])} against {shown(theirs[0])}"
    return (*value, note)


def slug(name: str) -> str:
    """A model's name as a glue key: "Gaussian + Laplace" -> "gaussian_laplace"."""
    return re.sub(r"\W+", "_", name.lower()).strip("_")


def numbers(
    params: Params, rows: dict[str, dict], seed_rows: dict[str, list[dict]], claims: list[dict]
) -> dict[str, str]:
    """The chapter's figures for its prose (`chapter.glue`): the paper's Table 4; the cold
    training minutes (first seed, later seeds of appendix C and of the PixelCNNs); the
    variants' margin, spread and paths (ranges); per variant `<slug>` its accuracy and
    bits/dim difference to the Gaussian prior with its verdict (`acc_<slug>`, `bpd_<slug>`,
    `..._verdict`) and on the first seed alone (`seed0_<slug>`); accuracy by seed
    (`<slug>_by_seed`) and appendix C's largest seed-to-seed moves; the Flow-GAN's divergences and
    curve; the PixelCNNs' cells, their difference and their readings."""
    size = appendix_sizes(params.profile.name)
    pixel = [n for n, *_ in _todo(params) if n.startswith("PixelCNN")]
    variants = [n for n in VARIANTS if n != REFERENCE]
    measured = [rows[n] for n in [REFERENCE, *variants] if "accuracy" in rows.get(n, {})]
    by_name = {c["name"]: c for c in claims}
    out = {
        "paper_alpha0_acc": f"{PIXELCNN[pixel[0]][0]} %",
        "paper_alpha0_bpd": f"{PIXELCNN[pixel[0]][1]}",
        "paper_alpha_acc": f"{PIXELCNN['PixelCNN++, alpha 1000'][0]} %",
        "paper_alpha_bpd": f"{PIXELCNN['PixelCNN++, alpha 1000'][1]}",
        "pairs": str(size.pairs),
        "first_seed_min": f"{sum(r['train_minutes'] for r in rows.values()):.0f}",
        "later_c_min": f"{sum(r['train_minutes'] for n in VARIANTS for r in seed_rows.get(n, [])):.0f}",
        "later_pixel_min": f"{sum(r['train_minutes'] for n in pixel for r in seed_rows.get(n, [])):.0f}",
        "acc_margin": f"{MARGINS['accuracy difference'][0]:g}",
        "pixel_arch": f"{size.pixelcnn.steps} gated blocks of {size.pixelcnn.hidden} filters",
        "pixel_steps": str(size.pixelcnn_steps or params.profile.scale.train_steps[family(params.dataset)]),
        "base_bpd": _chapter2_base_bpd(params),
    }
    if measured:
        gaps, spreads = [r["gap_nats"] for r in measured], [r["spread_nats"] for r in measured]
        low = min(measured, key=lambda r: r["paths_below_k"])
        share, lo, hi = wilson(low["paths_below_k"], low["pairs"])
        out |= {
            "variants_gap": f"{signed(min(gaps))} to {signed(max(gaps))}",
            "variants_spread": f"{min(spreads):.0f} to {max(spreads):.0f}",
            "variants_paths": f"{share:.0f} % [{lo:.0f}, {hi:.0f}]",
        }
    bpds = [v for n in VARIANTS for v in _seed_values(rows, seed_rows, n, "bits/dim")]
    if bpds:
        out["variants_bpd"] = f"{min(bpds):.2f}–{max(bpds):.2f}"
    moves = {m: [] for m in _KEYS}
    for name in [*VARIANTS, *pixel]:
        key = slug(name)
        for metric in _KEYS:
            values = _seed_values(rows, seed_rows, name, metric)
            if len(values) > 1 and name in VARIANTS:
                moves[metric].append(max(values) - min(values))
        accuracy = _seed_values(rows, seed_rows, name, "accuracy")
        if accuracy:
            out[f"{key}_by_seed"] = listed([f"{v:.1f}" for v in accuracy]) + " %"
        for metric, short, digits in (("accuracy", "acc", 1), ("bits/dim", "bpd", 2)):
            c = by_name.get(f"{name}: {metric} minus the Gaussian prior's")
            if c is not None:
                out[f"{short}_{key}"] = quoted(c, digits, " points" if metric == "accuracy" else "")
                out[f"{short}_{key}_verdict"] = verdict(c)
        first = rows.get(name, {})
        if name in variants and "accuracy" in first and "accuracy" in rows.get(REFERENCE, {}):
            diff = seeds_difference(
                [first["accuracy"]], [rows[REFERENCE]["accuracy"]], first, rows[REFERENCE], "accuracy"
            )
            out[f"seed0_{key}"] = signed_estimate(*diff[:3])
    if moves["accuracy"]:
        out["acc_seed_move"] = f"{max(moves['accuracy']):.1f}"
    if moves["bits/dim"]:
        out["bpd_seed_move"] = f"{max(moves['bits/dim']):.2f}"
    accuracy_claims = [c for n in variants if (c := by_name.get(f"{n}: accuracy minus the Gaussian prior's"))]
    if accuracy_claims:
        half = np.mean([(c["high"] - c["low"]) / 2 for c in accuracy_claims])
        out["acc_halfwidth"] = f"{half:.0f}"
    for short, metric in (("acc", "accuracy"), ("bpd", "bits/dim")):
        found = [verdict(c) for n in variants if (c := by_name.get(f"{n}: {metric} minus the Gaussian prior's"))]
        out[f"{short}_verdicts"] = counted(found)
    gan = next(n for n in VARIANTS if "Flow-GAN" in n)
    runs = [(params.seed, rows[gan])] if gan in rows else []
    runs += [(r["seed"], r) for r in seed_rows.get(gan, [])]
    steps = size.train_steps or params.profile.scale.train_steps[family(params.dataset)]
    out["gan_runs"] = listed(
        [f"at step {r['diverged_at']} (seed {s})" if "diverged_at" in r else f"not (seed {s})" for s, r in runs]
    )
    out["gan_diverged"] = f"{sum('diverged_at' in r for _, r in runs)} of {len(runs)}"
    out["steps"] = str(steps)
    for name in pixel:
        key = "alpha0" if name == pixel[0] else "alpha"
        for metric, short, digits in (("accuracy", "acc", 1), ("bits/dim", "bpd", 3)):
            c = by_name.get(f"{name} {metric}")
            if c is not None:
                out[f"{key}_{short}"] = quoted(c, digits, " %" if metric == "accuracy" else "", sign=False)
                out[f"{key}_{short}_verdict"] = verdict(c)
        r = rows.get(name, {})
        if "accuracy" in r:
            share, lo, hi = wilson(r["paths_below_k"], r["pairs"])
            out |= {
                f"{key}_gap": signed(r["gap_nats"], 0),
                f"{key}_spread": f"{r['spread_nats']:.0f}",
                f"{key}_paths": f"{share:.0f} % [{lo:.0f}, {hi:.0f}]",
                f"{key}_min": f"{r['train_minutes']:.1f}",
            }
    for what, short, digits in (("accuracy gained", "gain", 1), ("bits/dim paid", "paid", 2)):
        c = by_name.get(f"PixelCNN++ alpha 1000 over alpha 0: {what}")
        if c is not None:
            out[f"alpha_{short}"] = quoted(c, digits, " points" if short == "gain" else " bits/dim")
            out[f"alpha_{short}_verdict"] = verdict(c)
    return out


def gan_curve(model: torch.nn.Module | TrainingDiverged) -> dict[str, str]:
    """The Flow-GAN's logged curve in words for the prose: the range its generator's and
    discriminator's losses moved in, and its bits/dim from the first logged value to the last."""
    history = model.history if isinstance(model, TrainingDiverged) else model.info["history"]
    out = {}
    for key in ("generator", "discriminator"):
        values = [h[f"gan_{key}"] for h in history]
        out[f"gan_{key}"] = f"{min(values):.1f} and {max(values):.1f}"
    out["gan_bpd"] = f"{history[0]['bpd']:.1f} to {history[-1]['bpd']:.1f}"
    return out


def _chapter2_base_bpd(params: Params) -> str:
    """Chapter 2's Base model's bits/dim on this dataset and profile, from the ledger."""
    for entry in load_all():
        if (entry["chapter"], entry["dataset"], entry["profile"]) == (
            "02_training",
            params.dataset,
            params.profile.name,
        ):
            for c in entry["claims"]:
                if c["name"] == "base bits/dim":
                    return f"{c['ours']:.2f}"
    return "(not in the ledger)"
