"""Appendix: the `quick` recipe. The lever ablation that chose it (`studylib ablate`, rows
committed under book/results/ablation/), read back and checked against our goals for a
`quick` model: it needs no trained model, so the page is re-run whenever a row lands."""

from __future__ import annotations

import statistics

from studylib.benchmarks import ablation
from studylib.benchmarks.ablation import recipe_of
from studylib.book.tables import Table
from studylib.config import get_profile

# Our goals for a `quick` model on the whole test set: (accuracy %, bits/dim at most).
GOALS = {"mnist": (98.5, 1.20), "cifar10": (55.0, 4.00)}


def rows(dataset: str = "mnist", objective: str = "split", profile: str = "quick") -> list[dict]:
    """The lever ablation's rows (measured into the results folder, else the committed ones)."""
    return ablation.recorded(dataset, objective, profile)


def levers(dataset: str = "mnist", objective: str = "split", profile: str = "quick") -> Table:
    """The lever ablation as a table: each lever's throughput, steps within the budget, test
    bits/dim and accuracy, and the change against the baseline row."""
    found = rows(dataset, objective, profile)
    columns = ("lever", "model", "min", "img/s", "steps", "bits/dim", "acc %", "d bits/dim", "d acc")
    if not found:
        name = ablation.results_path(dataset, objective, profile).name
        return Table(
            columns, note=f"no lever ablation for {dataset}/{objective}/{profile} yet: run `studylib ablate` ({name})"
        )
    base = next((r for r in found if r["lever"] == "baseline"), None)
    table = [
        (
            r["lever"],
            r["arch"],
            round(r["minutes"]),
            round(r["images_per_s"]),
            r["steps"],
            round(r["bpd"], 3),
            round(r["accuracy"], 1),
            f"{r['bpd'] - base['bpd']:+.3f}" if base else None,
            f"{r['accuracy'] - base['accuracy']:+.1f}" if base else None,
        )
        for r in found
    ]
    caption = (
        f"{dataset}, {objective} objective, {profile} profile, {found[0]['n_test']} test images; "
        "min: CPU minutes of training on the machine that measured the row; d: against the baseline row"
    )
    return Table(columns, table, caption=caption)


def full_budget(found: list[dict], dataset: str) -> list[dict]:
    """The rows trained for as many steps as the `quick` recipe's model (its budget on the
    machine it was sized on), whatever else they change."""
    steps = get_profile("quick").steps_for(dataset)
    return [r for r in found if r["lever"].startswith("stronger") and r["steps"] == steps]


def against_goals(dataset: str = "mnist", objective: str = "split") -> Table:
    """Which full-budget recipes meet the bits/dim goal on average over the seeds measured,
    and how far the best of them is from the accuracy goal: one lucky draw is not a recipe."""
    accuracy, bpd = GOALS[dataset]
    columns = ("recipe", "seeds", "acc % / bits/dim per seed", "mean acc %", "mean bits/dim", "within bits/dim goal")
    seeds: dict[str, list[dict]] = {}
    for r in full_budget(rows(dataset, objective), dataset):
        seeds.setdefault(recipe_of(r["lever"]), []).append(r)
    if not seeds:
        return Table(columns, note=f"{dataset}: no full-budget row measured yet")
    means = {
        name: (statistics.fmean(r["accuracy"] for r in draws), statistics.fmean(r["bpd"] for r in draws))
        for name, draws in seeds.items()
    }
    dense = [name for name, (_, b) in means.items() if b <= bpd]
    table = [
        (
            name,
            len(draws),
            ", ".join(f"{r['accuracy']:.2f} / {r['bpd']:.3f}" for r in draws),
            round(means[name][0], 2),
            round(means[name][1], 3),
            "yes" if name in dense else "no",
        )
        for name, draws in seeds.items()
    ]
    caption = (
        f"{dataset}, goal {accuracy:g} % at {bpd:.2f} bits/dim or less: {len(means)} full-budget recipes, "
        f"{len(dense)} within the bits/dim goal (the mean over the seeds measured)"
    )
    note = ""
    if dense:
        best = max(dense, key=lambda name: means[name][0])
        mean_acc, mean_bpd = means[best]
        gap = accuracy - mean_acc
        verdict = "meets the goal" if gap <= 0 else f"{gap:.2f} points short"
        note = f"best of them: {best!r}, {mean_acc:.2f} % at {mean_bpd:.3f}: {verdict}"
    return Table(columns, table, caption=caption, note=note)
