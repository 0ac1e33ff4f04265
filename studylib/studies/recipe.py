"""Appendix: the `quick` recipe. The lever ablation that chose it (`studylib ablate`, rows
committed under book/results/ablation/), read back and checked against our goals for a
`quick` model: it needs no trained model, so the page is re-run whenever a row lands."""

from __future__ import annotations

import json
import statistics

from studylib.benchmarks import ablation
from studylib.benchmarks.ablation import recipe_of
from studylib.book import ledger
from studylib.config import get_profile

# Our goals for a `quick` model on the whole test set: (accuracy %, bits/dim at most).
GOALS = {"mnist": (98.5, 1.20), "cifar10": (55.0, 4.00)}


def rows(dataset: str = "mnist", objective: str = "split", profile: str = "quick") -> list[dict]:
    """The ablation rows of the results folder, else the committed ones (a run into an empty
    results folder still reads what was measured); empty when none were measured."""
    path = ablation.results_path(dataset, objective, profile)
    committed = ledger.COMMITTED / path.relative_to(ledger.results_dir())
    found = next((p for p in (path, committed) if p.exists()), None)
    return json.loads(found.read_text()) if found else []


def levers(dataset: str = "mnist", objective: str = "split", profile: str = "quick") -> str:
    """The lever ablation as a table: each lever's throughput, steps within the budget, test
    bits/dim and accuracy, and the change against the baseline row."""
    found = rows(dataset, objective, profile)
    if not found:
        name = ablation.results_path(dataset, objective, profile).name
        return f"no lever ablation for {dataset}/{objective}/{profile} yet: run `studylib ablate` ({name})"
    base = next((r for r in found if r["lever"] == "baseline"), None)
    width = max(len("lever"), *(len(r["lever"]) for r in found))
    lines = [
        f"{dataset}, {objective} objective, {profile} profile, {found[0]['n_test']} test images; "
        "min: CPU minutes of training on the machine that measured the row",
        f"{'lever':<{width}} {'model':<15} {'min':>4} {'img/s':>6} {'steps':>6} {'bpd':>6} {'acc %':>6} "
        f"{'d bpd':>7} {'d acc':>6}",
    ]
    for r in found:
        d_bpd = f"{r['bpd'] - base['bpd']:+.3f}" if base else ""
        d_acc = f"{r['accuracy'] - base['accuracy']:+.1f}" if base else ""
        lines.append(
            f"{r['lever']:<{width}} {r['arch']:<15} {r['minutes']:>4.0f} {r['images_per_s']:>6.0f} {r['steps']:>6} "
            f"{r['bpd']:>6.3f} {r['accuracy']:>6.1f} {d_bpd:>7} {d_acc:>6}"
        )
    return "\n".join(lines)


def full_budget(found: list[dict], dataset: str) -> list[dict]:
    """The rows trained for as many steps as the `quick` recipe's model (its budget on the
    machine it was sized on), whatever else they change."""
    steps = get_profile("quick").steps_for(dataset)
    return [r for r in found if r["lever"].startswith("stronger") and r["steps"] == steps]


def against_goals(dataset: str = "mnist", objective: str = "split") -> str:
    """Which full-budget recipes meet the bits/dim goal on average over the seeds measured,
    and how far the best of them is from the accuracy goal: one lucky draw is not a recipe."""
    accuracy, bpd = GOALS[dataset]
    seeds: dict[str, list[dict]] = {}
    for r in full_budget(rows(dataset, objective), dataset):
        seeds.setdefault(recipe_of(r["lever"]), []).append(r)
    if not seeds:
        return f"{dataset}: no full-budget row measured yet"
    means = {
        name: (statistics.fmean(r["accuracy"] for r in draws), statistics.fmean(r["bpd"] for r in draws))
        for name, draws in seeds.items()
    }
    dense = [name for name, (_, b) in means.items() if b <= bpd]
    lines = [
        f"{dataset}, goal {accuracy:g} % at {bpd:.2f} bits/dim or less: {len(means)} full-budget recipes, "
        f"{len(dense)} within the bits/dim goal (the mean over the seeds measured)"
    ]
    for name, draws in seeds.items():
        if len(draws) > 1:
            each = ", ".join(f"{r['accuracy']:.2f} % / {r['bpd']:.3f}" for r in draws)
            lines.append(f"{name!r}: {len(draws)} seeds ({each}), mean {means[name][0]:.2f} % / {means[name][1]:.3f}")
    if dense:
        best = max(dense, key=lambda name: means[name][0])
        mean_acc, mean_bpd = means[best]
        gap = accuracy - mean_acc
        verdict = "meets the goal" if gap <= 0 else f"{gap:.2f} points short"
        lines.append(f"best of them: {best!r}, {mean_acc:.2f} % at {mean_bpd:.3f}: {verdict}")
    return "\n".join(lines)
