"""Appendix: the `quick` recipe. The lever ablation that chose it (`studylib ablate`, rows
committed under book/results/ablation/), read back and checked against our goals for a
`quick` model: it needs no trained model, so the page is re-run whenever a row lands."""

from __future__ import annotations

import json
import re
import statistics

from studylib import storage
from studylib.benchmarks import ablation, bench
from studylib.benchmarks.ablation import STRONGER, recipe_of, row_precision
from studylib.book import ledger, paper
from studylib.book.tables import Table, estimate, signed
from studylib.config import get_profile
from studylib.measure.uncertainty import seed_difference, t_interval
from studylib.studies.scale import parameter_ratio

# Our goals for a `quick` model on the whole test set: (accuracy %, bits/dim at most).
GOALS = {"mnist": (98.5, 1.20), "cifar10": (55.0, 4.00)}
# ... within this many minutes of 2 CPU cores per model (what `STRONGER_STEPS` was sized to).
GOAL_MINUTES = {"mnist": 30, "cifar10": 20}


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


# The `quick` recipe's rows, as bf16 (where native) trains it and with bf16 off.
QUICK_RECIPE = f"{STRONGER}, lowpass readout"
PRECISION_RECIPES = {"bf16": QUICK_RECIPE, "fp32": f"{QUICK_RECIPE}, fp32"}


def precision_draws(dataset: str = "mnist", objective: str = "split") -> dict[str, list[dict]]:
    """The `quick` recipe's full-budget rows by the precision their models trained in."""
    found = full_budget(rows(dataset, objective), dataset)
    return {
        name: [r for r in found if recipe_of(r["lever"]) == lever and row_precision(r) == name]
        for name, lever in PRECISION_RECIPES.items()
    }


def _spread(values: list[float], digits: int) -> str:
    """A mean with its t interval over seeds, or the one value."""
    return estimate(*t_interval(values), digits) if len(values) > 1 else f"{values[0]:.{digits}f}"


def precision(dataset: str = "mnist", objective: str = "split") -> Table:
    """The `quick` recipe trained in bf16 and in fp32, seed by seed, and fp32 minus bf16 with
    its t interval over seeds: does the precision move Table 1's cells beyond the seeds' spread?"""
    draws = precision_draws(dataset, objective)
    columns = ("precision", "CPU", "seeds", "acc % / bits/dim per seed", "accuracy %", "bits/dim", "min per model")
    table = [
        (
            name,
            ", ".join(sorted({r.get("cpu", "not recorded") for r in found})),
            ", ".join(str(_seed(r)) for r in found),
            ", ".join(f"{r['accuracy']:.2f} / {r['bpd']:.3f}" for r in found),
            _spread([r["accuracy"] for r in found], 2),
            _spread([r["bpd"] for r in found], 3),
            round(statistics.fmean(r["minutes"] for r in found)),
        )
        for name, found in draws.items()
        if found
    ]
    caption = f"{dataset}, the `quick` {objective} model on the whole test set; intervals: 95 % t over seeds"
    fp32, bf16 = draws["fp32"], draws["bf16"]
    if not fp32 or not bf16 or len(fp32) + len(bf16) < 3:
        return Table(columns, table, caption=caption, note="too few seeds for a difference: train more with fp32")
    notes = []
    for metric, label, digits in (("accuracy", "accuracy", 2), ("bpd", "bits/dim", 3)):
        diff, low, high, method = seed_difference([r[metric] for r in fp32], [r[metric] for r in bf16])
        within = "within the seeds' spread" if low <= 0 <= high else "beyond the seeds' spread"
        notes.append(f"fp32 − bf16 {label}: {estimate(diff, low, high, digits)} ({method}): {within}")
    paired = {_seed(r): r for r in bf16}
    same = [
        f"seed {_seed(r)} {r['accuracy'] - paired[_seed(r)]['accuracy']:+.2f} points, "
        f"{r['bpd'] - paired[_seed(r)]['bpd']:+.3f} bits/dim"
        for r in fp32
        if _seed(r) in paired
    ]
    if same:
        notes.append("the same seed in both precisions, fp32 − bf16: " + ", ".join(same))
    return Table(columns, table, caption=caption, note="; ".join(notes))


def _seed(row: dict) -> int:
    return int(row["change"].get("seed", 0))


def _peers_rows(profile: str) -> list[dict]:
    """Our model's fp32 and bf16 rows of chapter 2's peers run (`bench.peers_path`), in the
    rows' shape of `studylib bench`: measured before rows recorded their CPU, in NCHW."""
    path = storage.recorded(bench.peers_path(profile))
    if path is None:
        return []
    ours = [r for r in json.loads(path.read_text())["rows"] if r["model"] == "studylib"]
    batch = get_profile(profile).scale.batch_size
    return [
        {
            "config": f"{r['dataset']} {r['config'].split(',')[0]} batch {batch}, NCHW",
            "precision": precision,
            "cpu": "not recorded (chapter 2's peers run)",
            "train_images_per_s": r[f"train_{precision}"],
            "eval_images_per_s": r[f"eval_{precision}"],
        }
        for r in ours
        for precision in ("fp32", "bf16")
        if r[f"train_{precision}"] is not None
    ]


def precision_speed(profile: str = "quick") -> Table:
    """Training and evaluation images/s of the `quick` model in fp32 and bf16 on each kind
    of CPU measured (`studylib bench --out`, rows under book/results/bench/; and chapter 2's
    peers run), with bf16's ratio to fp32 on the same CPU in the same sitting."""
    relative = f"bench/precision__{profile}.json"
    measured = ledger.read_recorded(relative) + _peers_rows(profile)
    columns = ("CPU", "model", "precision", "train img/s", "eval img/s", "train ÷ fp32's")
    if not measured:
        return Table(columns, note=f"no precision rows yet: `studylib bench --out {storage.COMMITTED / relative}`")
    fp32 = {(r["cpu"], r["config"]): r["train_images_per_s"] for r in measured if r["precision"] == "fp32"}
    table = [
        (
            r["cpu"],
            r["config"],
            r["precision"],
            round(r["train_images_per_s"]),
            round(r["eval_images_per_s"]),
            round(r["train_images_per_s"] / fp32[r["cpu"], r["config"]], 2)
            if (r["cpu"], r["config"]) in fp32
            else None,
        )
        for r in measured
    ]
    return Table(columns, table, caption="one sitting per CPU, 2 threads: compare ratios, not rates across CPUs")


def slug(lever: str) -> str:
    """A row's name in glued names: 'stronger: combined, full budget, lowpass readout, seed 1'
    -> 'full_lowpass_readout_seed_1'."""
    short = lever.replace(STRONGER, "full").replace("combined: 5 levers", "combined").replace(" (MNIST)", "")
    return re.sub(r"[^a-z0-9]+", "_", short.lower()).strip("_")


_FULL = STRONGER
_LOW = f"{STRONGER}, lowpass readout"
_W128 = f"{STRONGER}, widths 32-64-128, lowpass readout"
_COS = f"{STRONGER}, widths 32-64-128, lowpass readout, cosine schedule, w = 0.3"
# Two rows the prose sets against each other: name -> (dataset, row, against).
CONTRASTS = {
    "corner_weight": ("mnist", f"{_FULL}, w = 0.3", _FULL),
    "lowpass_weight": ("mnist", f"{_LOW}, w = 0.3", _LOW),
    "width_weight": ("mnist", f"{_W128}, w = 0.3", _W128),
    "width": ("mnist", _W128, _LOW),
    "width_seed_1": ("mnist", f"{_W128}, w = 0.3, seed 1", f"{_W128}, w = 0.3"),
    "quick_seed_1": ("mnist", f"{_LOW}, seed 1", _LOW),
    "quick_seeds_1_2": ("mnist", f"{_LOW}, seed 1", f"{_LOW}, seed 2"),
    "no_crop": ("mnist", "no random crop (MNIST)", "baseline"),
    "level_1_width": ("mnist", "level-1 width 32", "baseline"),
    "cifar10_weight": ("cifar10", f"{_LOW}, w = 0.3", _LOW),
    "cifar10_width": ("cifar10", f"{STRONGER}, widths 32-64-128, lowpass readout", _LOW),
    "cifar10_seed_1": ("cifar10", f"{_LOW}, seed 1", _LOW),
}


def contrasts(objective: str = "split") -> dict[str, str]:
    """Each of `CONTRASTS` as the prose quotes it: `<name>_dacc` (points), `_dbpd` and
    `_dtrain_bpd` (test and final training bits/dim), `_fewer_steps` and `_faster` (%);
    the range over seeds of the cosine schedule against the step schedule (`cosine_dacc`,
    `cosine_dbpd`) and of seed 1's bits/dim above seed 0's (`seed_1_range`); the corner
    readout's accuracy ceiling over its full-budget variants (`corner_ceiling`); the quick
    recipe's learning-rate drop (`lr_drop`) and the paper's MNIST model's parameters as a
    multiple of ours (`paper_params`)."""
    by_name = {d: {r["lever"]: r for r in rows(d, objective)} for d in GOALS}
    found = {}
    for name, (dataset, lever, against) in CONTRASTS.items():
        a, b = by_name[dataset].get(lever), by_name[dataset].get(against)
        if a is None or b is None:
            continue
        found |= {
            f"{name}_dacc": signed(a["accuracy"] - b["accuracy"], 2),
            f"{name}_dbpd": signed(a["bpd"] - b["bpd"], 3),
            f"{name}_dtrain_bpd": signed(a["final_train_bpd"] - b["final_train_bpd"], 2),
            f"{name}_fewer_steps": f"{100 * (1 - a['steps'] / b['steps']):.0f} %",
            f"{name}_faster": f"{100 * (a['images_per_s'] / b['images_per_s'] - 1):.0f} %",
        }
    mnist = by_name["mnist"]
    pairs = [(mnist.get(f"{_COS}{s}"), mnist.get(f"{_W128}, w = 0.3{s}")) for s in ("", ", seed 1", ", seed 2")]
    pairs = [(c, s) for c, s in pairs if c and s]
    for key, digits in (("accuracy", 2), ("bpd", 3)):
        moves = [c[key] - s[key] for c, s in pairs]
        if moves:
            found[f"cosine_d{'acc' if key == 'accuracy' else 'bpd'}"] = (
                f"{signed(min(moves), digits)} to {signed(max(moves), digits)}"
            )
    above = [
        mnist[f"{lever}, seed 1"]["bpd"] - mnist[lever]["bpd"]
        for lever in (_LOW, f"{_LOW}, w = 0.3", f"{_W128}, w = 0.3", _COS)
        if lever in mnist and f"{lever}, seed 1" in mnist
    ]
    if above:
        found["seed_1_range"] = f"{min(above):.2f} to {max(above):.2f}"
    variants = (", w = 0.3", ", w = 1", ", widths 32-128-128", ", 30000 steps")
    ceiling = [mnist[f"{_FULL}{v}"]["accuracy"] for v in variants if f"{_FULL}{v}" in mnist]
    if ceiling:
        found["corner_ceiling"] = f"{min(ceiling):.1f}–{max(ceiling):.1f} %"
    found["lr_drop"] = f"{get_profile('quick').recipe.lr_milestones[0]:.0%}"
    found["paper_params"] = f"{parameter_ratio('mnist', objective, 'quick'):.1f}"
    return found


def numbers(objective: str = "split") -> dict[str, str]:
    """The figures this chapter's prose quotes, by name, for `chapter.glue`: per dataset and
    row `<dataset>_<slug>_` accuracy, bits/dim (more digits for the `stronger` rows), minutes,
    images/s and steps, and against the baseline of the short rows `_dacc` / `_dbpd`; for
    the `stronger` rows the points short of the accuracy goal (`_short`) and the change
    against the `stronger` row with the corner readout (`_dfull_acc`, `_dfull_bpd`); per
    recipe drawn from several seeds its mean (`_mean_acc`, `_mean_bpd`); the goals, the
    minutes the first recipe's whole run takes at the baseline's rate (`_first_quick_min`)
    and the paper's split-model numbers."""
    found: dict[str, str] = {}
    for dataset, (goal_acc, goal_bpd) in GOALS.items():
        paper_acc, paper_bpd = paper.TABLE1[dataset]["split"]
        found |= {
            f"{dataset}_goal_acc": f"{goal_acc:g} %",
            f"{dataset}_goal_bpd": f"{goal_bpd:.2f}",
            f"{dataset}_paper_acc": f"{paper_acc} %",
            f"{dataset}_paper_bpd": f"{paper_bpd:.2f}",
            f"{dataset}_goal_min": f"{GOAL_MINUTES[dataset]}",
        }
        measured = rows(dataset, objective)
        base = next((r for r in measured if r["lever"] == "baseline"), None)
        if base is not None:  # the baseline is the first recipe: its whole run at the baseline's rate
            images = ablation.FIRST_QUICK["train_steps"][dataset] * ablation.FIRST_QUICK["batch_size"]
            found[f"{dataset}_first_quick_min"] = f"{images / base['images_per_s'] / 60:.0f}"
        corner = next((r for r in measured if r["lever"] == STRONGER), None)  # the full budget, corner readout
        for r in measured:
            full = r["lever"].startswith(STRONGER)
            name, digits = f"{dataset}_{slug(r['lever'])}", (2, 3) if full else (1, 2)
            found |= {
                f"{name}_acc": f"{r['accuracy']:.{digits[0]}f} %",
                f"{name}_bpd": f"{r['bpd']:.{digits[1]}f}",
                f"{name}_min": f"{r['minutes']:.0f}",
                f"{name}_ips": f"{r['images_per_s']:.0f}",
                f"{name}_steps": f"{r['steps']}",
            }
            if base is not None and not full:
                found[f"{name}_dacc"] = signed(r["accuracy"] - base["accuracy"], 1)
                found[f"{name}_dbpd"] = signed(r["bpd"] - base["bpd"], 2)
            if full and corner is not None:
                found[f"{name}_short"] = f"{goal_acc - r['accuracy']:.2f}"
                found[f"{name}_dfull_acc"] = signed(r["accuracy"] - corner["accuracy"], 2)
                found[f"{name}_dfull_bpd"] = signed(r["bpd"] - corner["bpd"], 3)
        by_recipe: dict[str, list[dict]] = {}
        for r in measured:
            by_recipe.setdefault(recipe_of(r["lever"]), []).append(r)
        for lever, draws in by_recipe.items():
            if len(draws) > 1:
                name = f"{dataset}_{slug(lever)}"
                mean_bpd = statistics.mean([r["bpd"] for r in draws])
                found[f"{name}_mean_acc"] = f"{statistics.mean([r['accuracy'] for r in draws]):.2f} %"
                found[f"{name}_mean_bpd"] = f"{mean_bpd:.3f}"
                found[f"{name}_mean_over_goal"] = f"{mean_bpd - goal_bpd:.2f}"
                found[f"{name}_seeds"] = str(len(draws))
    return found | contrasts(objective)
