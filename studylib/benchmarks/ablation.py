"""Training levers measured one at a time at a fixed wall-clock budget.

Each lever changes one setting of a profile. Its training throughput is measured first in a
short benchmark (so a faster variant gets proportionally more steps), then the variant trains
for budget x images/s / batch steps and is evaluated on the full test set. Rows are appended
to a JSON file as they finish, so an interrupted sweep keeps what it measured and resumes at
the next lever (a lever's own training resumes from its checkpoint)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from studylib import data, storage
from studylib.benchmarks import bench
from studylib.book import ledger
from studylib.config import (
    PRECISIONS,
    Arch,
    Profile,
    check_choice,
    cpu_capability,
    family,
    get_profile,
    resolve_precision,
)
from studylib.measure import evaluate
from studylib.sizes import SNAPSHOTS
from studylib.training.build import new_model
from studylib.training.zoo import get_model, spec, trained_precision

# One setting changed per lever, against the profile's `baseline`.
LEVERS: dict[str, dict] = {
    "baseline": {},
    "no random crop (MNIST)": {"augment_mnist": False},
    "EMA weights (0.999)": {"ema_decay": 0.999},
    "cosine schedule": {"lr_schedule": "cosine"},
    "peak lr 2e-3": {"lr": 2e-3},
    "batch 32": {"batch_size": 32},
    "w = 1": {"ce_weight": 1.0},
    "level-1 width 32": {"hidden_level1": 32},
    # Chosen after the single levers: those that helped at this budget, together.
    "combined: 5 levers": {  # no crop, lr 2e-3, batch 32, EMA, level-1 width 32
        "augment_mnist": False,
        "lr": 2e-3,
        "batch_size": 32,
        "ema_decay": 0.999,
        "hidden_level1": 32,
    },
}
# The combined levers at the full budget on 2 cores: steps that take about 30 (MNIST)
# and 20 (CIFAR-10) minutes at their measured 181 and 137 images/s, as multiples of the
# baseline's. At `quick` this recipe with the lowpass readout is the profile itself
# (chapter 2 adopted both: `run_stronger(readout="lowpass")` trains `quick`'s split model).
STRONGER_STEPS = {"mnist": 10_000 / 6000, "cifar10": 5000 / 2600}
STRONGER = "stronger: combined, full budget"  # the rows of that recipe are named from this
# The first `quick` recipe, which the levers were measured against before `quick` adopted them.
FIRST_QUICK = {
    "arch": {"mnist": Arch(3, 8, 64), "cifar10": Arch(3, 8, 64)},
    "batch_size": 64,
    "train_steps": {"mnist": 6000, "cifar10": 2600},
    "lr": 1e-3,
    "ema_decay": 0.0,
    "augment_mnist": True,
    "snapshots": (),
    "split_readout": "corner",
}


def results_path(dataset: str, objective: str, profile: str) -> Path:
    """Where a sweep's rows are kept: the ledger folder's ablation/ (committed for `quick`)."""
    return storage.results_dir() / "ablation" / f"{dataset}__{objective}__{profile}.json"


def recorded(dataset: str, objective: str = "split", profile: str = "quick") -> list[dict]:
    """The ablation rows of the results folder, else the committed ones (a run into an empty
    results folder still reads what was measured); empty when none were measured."""
    return ledger.read_recorded(results_path(dataset, objective, profile))


def profile_model_row(dataset: str, objective: str, profile: str, seed: int) -> dict | None:
    """The ablation row that measured `profile`'s own model of `objective` drawn from `seed`
    on the whole test set, or None: the `stronger` recipe with the lowpass readout, when its
    model spec is the profile's (at `quick` it is; checked here, not assumed)."""
    prof = get_profile(profile)
    recipe = stronger(prof, dataset).replace(split_readout="lowpass")
    if objective != "split" or spec(dataset, objective, recipe, seed) != spec(dataset, objective, prof, seed):
        return None
    name = seeded(f"{STRONGER}, lowpass readout", seed)
    return next((r for r in recorded(dataset, objective, profile) if r["lever"] == name), None)


def baseline(profile: Profile) -> Profile:
    """What the levers change: at `quick` the first `quick` recipe, else `profile` itself."""
    return profile.replace(**FIRST_QUICK) if profile.name == "quick" else profile


def variant(profile: Profile, dataset: str, change: dict) -> Profile:
    """`profile` with one lever's change applied (`hidden_level1` sets level 1's coupling
    width, `hidden` one width per level)."""
    change = dict(change)
    arch = profile.arch_for(dataset)
    widths = change.pop("hidden", None)
    if "hidden_level1" in change:
        widths = (change.pop("hidden_level1"), *(arch.hidden_at(i) for i in range(1, arch.levels)))
    if widths is not None:
        change["arch"] = {**profile.scale.arch, family(dataset): Arch(arch.levels, arch.steps, tuple(widths))}
    return profile.replace(**change)


def stronger(profile: Profile, dataset: str) -> Profile:
    """The `baseline` with the combined levers and `STRONGER_STEPS` times its steps, keeping
    `SNAPSHOTS`: at `quick` the profile's own recipe (at `smoke`, a smoke-sized run of it)."""
    prof = variant(baseline(profile), dataset, LEVERS["combined: 5 levers"])
    steps = {k: max(1, round(v * STRONGER_STEPS[k])) for k, v in prof.scale.train_steps.items()}
    return prof.replace(train_steps=steps, snapshots=SNAPSHOTS)


def images_per_second(profile: Profile, dataset: str, objective: str, iterations: int = 12) -> float:
    """Training images/s (forward + backward + Adam) of `profile`'s model on this machine,
    timed by the benchmark's own loop (`bench.measure`)."""
    torch.set_flush_denormal(True)
    model = new_model(dataset, objective, profile, seed=0)
    x, y = data.load(dataset, "test", subset=profile.scale.batch_size).tensors()
    variant = bench.flow_contender("variant", model)
    bf16 = resolve_precision("auto", torch.device("cpu"), profile.recipe.bf16) == "bf16"  # as its training will run
    return bench.measure([variant], x, y, {"variant": bf16}, iterations, repeats=1)["variant"]["train"]


def run_lever(
    lever: str,
    dataset: str = "mnist",
    objective: str = "split",
    profile: str = "quick",
    minutes: float = 8.0,
    rate: float | None = None,
    seed: int = 0,
    test_subset: int | None = None,
) -> dict:
    """Train `lever`'s variant for `minutes` of this machine's time at its measured
    throughput (or `rate` images/s) and evaluate it on the whole test set (or a seeded
    `test_subset`)."""
    if lever not in LEVERS:
        raise ValueError(f"unknown lever {lever!r}; allowed values: {', '.join(LEVERS)}")
    prof = variant(baseline(get_profile(profile)), dataset, LEVERS[lever])
    test = data.load(dataset, "test", subset=test_subset, seed=seed)
    rate = rate or images_per_second(prof, dataset, objective)
    steps = int(minutes * 60 * rate / prof.scale.batch_size)
    if steps < 1:
        raise ValueError(f"{minutes} minutes at {rate:.0f} images/s is less than one training step")
    prof = prof.replace(train_steps={**prof.scale.train_steps, family(dataset): steps})
    return _row(lever, LEVERS[lever], prof, dataset, objective, profile, seed, test, minutes, rate)


def run_stronger(
    dataset: str = "mnist",
    objective: str = "split",
    profile: str = "quick",
    seed: int = 0,
    test_subset: int | None = None,
    ce_weight: float | None = None,
    hidden: tuple[int, ...] | None = None,
    compiled: bool = False,
    steps: int | None = None,
    readout: str | None = None,
    schedule: str | None = None,
    precision: str = "auto",
) -> dict:
    """The row of the `stronger` recipe (the combined levers at the full CPU budget, a fixed
    number of steps), at cross-entropy weight `ce_weight` and coupling widths per level
    `hidden` (None: the profile's), through torch.compile if `compiled`, for `steps`
    optimiser steps (None: the budget's; more asks what a larger budget buys), with the
    split prior's logits read at `readout` and the learning rate following `schedule` (None:
    the profile's), from initial weights and batches drawn with `seed` (rows of seeds other
    than 0 say so), in `precision` ("fp32": the recipe with bf16 off, its own model and row on
    every machine; "auto" / "bf16": the recipe's model, trained as `config.resolve_precision`
    says where the cache lacks it; the row records which): trained through the cache like any
    model (the model a chapter gets with that weight), its minutes and images/s as this
    machine measured them while training."""
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be a positive number of training steps, got {steps}")
    prof = stronger(get_profile(profile), dataset)
    lever = STRONGER
    if steps is not None:
        prof = prof.replace(train_steps={**prof.scale.train_steps, family(dataset): steps})
        lever += f", {steps} steps"
    change = {**LEVERS["combined: 5 levers"], "train_steps": prof.steps_for(dataset)}
    if hidden is not None:
        prof = variant(prof, dataset, {"hidden": hidden})
        change["hidden"] = tuple(hidden)
        lever += f", widths {'-'.join(map(str, hidden))}"
    if compiled:
        prof = prof.replace(compile=True)
        change["compile"] = True
        lever += ", torch.compile"
    if readout is not None and readout != prof.recipe.split_readout:
        prof = prof.replace(split_readout=readout)  # validates the name
        change["split_readout"] = readout
        lever += f", {readout} readout"
    if schedule is not None and schedule != prof.recipe.lr_schedule:
        prof = prof.replace(lr_schedule=schedule)  # validates the name
        change["lr_schedule"] = schedule
        lever += f", {schedule} schedule"
    check_choice("precision", precision, PRECISIONS)
    if precision == "fp32" and prof.recipe.bf16:
        prof = prof.replace(bf16=False)
        change["bf16"] = False
        lever += ", fp32"
    spec(dataset, objective, prof, seed, ce_weight)  # refuses a bad weight before any work
    test = data.load(dataset, "test", subset=test_subset, seed=seed)
    if ce_weight is not None:
        change["ce_weight"] = ce_weight
        lever += f", w = {ce_weight:g}"
    if seed != 0:  # another draw of the same recipe: its own row
        change["seed"] = seed
    return _row(
        seeded(lever, seed),
        change,
        prof,
        dataset,
        objective,
        profile,
        seed,
        test,
        ce_weight=ce_weight,
        precision=precision,
    )


def seeded(lever: str, seed: int) -> str:
    """The row name of `lever`'s recipe drawn from `seed` (seed 0 keeps the plain name)."""
    return lever if seed == 0 else f"{lever}, seed {seed}"


def row_precision(row: dict) -> str:
    """The precision a row's model trained in: rows from before it was recorded trained in
    bf16 (every profile that rows were measured for had bf16 on, and it was forced then)."""
    return row.get("precision", "bf16")


def recipe_of(lever: str) -> str:
    """A row's recipe: its name without the seed `seeded` appended."""
    return re.sub(r", seed \d+$", "", lever)


def _row(
    lever: str,
    change: dict,
    prof: Profile,
    dataset: str,
    objective: str,
    profile: str,
    seed: int,
    test: data.ImageDataset,
    minutes: float | None = None,
    rate: float | None = None,
    ce_weight: float | None = None,
    precision: str = "auto",
) -> dict:
    """Train (or read from the cache) `prof`'s model and score it on `test`: one table row."""
    model = get_model(dataset, objective, prof, seed, "cpu", ce_weight, precision=precision)  # cached, resumable
    metrics = evaluate.evaluate(model, test, prof.scale.eval_batch_size)
    result = model.info
    steps = prof.steps_for(dataset)
    return {
        "lever": lever,
        "change": {k: str(v) for k, v in change.items()},
        "dataset": dataset,
        "objective": objective,
        "profile": profile,
        "arch": prof.arch_for(dataset).label(),
        "minutes": minutes if minutes is not None else result["train_seconds"] / 60,
        "images_per_s": round(rate or steps * prof.scale.batch_size / result["train_seconds"], 1),
        "steps": steps,
        "train_seconds": round(result["train_seconds"], 1),
        "accuracy": round(100 * metrics["accuracy"], 2),
        "bpd": round(metrics["bpd"], 4),
        "n_test": metrics["n"],
        "final_train_bpd": round(result["history"][-1]["bpd"], 4),
        "precision": trained_precision(result),
        "cpu": cpu_capability(),
    }


def sweep(levers: list[str], out: Path, **kwargs) -> list[dict]:
    """Run `levers` in turn, appending each row to `out` (JSON list); levers already in
    `out` for the same dataset/objective/profile/minutes are skipped. Every lever's
    throughput is measured first, back to back, so that training runs cannot disturb it."""
    rows = json.loads(out.read_text()) if out.exists() else []
    todo = [
        lever
        for lever in levers
        if not any(r["lever"] == lever and all(r[k] == v for k, v in kwargs.items() if k in r) for r in rows)
    ]
    dataset, objective = kwargs.get("dataset", "mnist"), kwargs.get("objective", "split")
    base = baseline(get_profile(kwargs.get("profile", "quick")))
    rates = {lever: images_per_second(variant(base, dataset, LEVERS[lever]), dataset, objective) for lever in todo}
    for lever in todo:
        rows.append(run_lever(lever, rate=rates[lever], **kwargs))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=1))
    return rows
