"""Lever ablation: each lever changes one setting, trains through the model cache for a
fixed wall-clock budget, and a sweep resumes where it stopped."""

from __future__ import annotations

import functools
import json

import pytest
import torch

from studylib.benchmarks import ablation
from studylib.config import READOUTS, cpu_capability, get_profile, resolve_precision
from studylib.sizes import SNAPSHOTS


def test_variant_changes_one_setting():
    quick = ablation.baseline(get_profile("quick"))
    narrow = ablation.variant(quick, "mnist", ablation.LEVERS["level-1 width 32"])
    assert narrow.arch_for("mnist").label() == "L3K8H32-64-64"
    assert narrow.arch_for("cifar10") == quick.arch_for("cifar10")
    assert ablation.variant(quick, "mnist", ablation.LEVERS["baseline"]) == quick
    assert ablation.variant(quick, "mnist", ablation.LEVERS["w = 1"]).recipe.ce_weight == 1.0


def test_sweep_trains_each_lever_once_and_resumes(home, tmp_path, monkeypatch):
    out = tmp_path / "ablation.json"
    kwargs = {"dataset": "mnist", "objective": "split", "profile": "smoke", "minutes": 0.05, "test_subset": 200}
    rates = {"L2K2H16": 200.0, "L2K2H32-16": 300.0}  # images/s, fixed so the steps are too
    monkeypatch.setattr(ablation, "images_per_second", lambda prof, *a: rates[prof.arch_for("mnist").label()])
    rows = ablation.sweep(["baseline", "level-1 width 32"], out, **kwargs)
    assert [r["lever"] for r in rows] == ["baseline", "level-1 width 32"]
    assert rows[1]["arch"] == "L2K2H32-16" and rows[0]["arch"] == "L2K2H16"
    for r in rows:
        assert r["steps"] == int(0.05 * 60 * r["images_per_s"] / 32) and r["n_test"] == 200
        assert 0 <= r["accuracy"] <= 100 and r["bpd"] > 0
    assert [r["steps"] for r in rows] == [18, 28]  # the faster variant gets more steps
    assert json.loads(out.read_text()) == rows
    assert len(list((home / "models").iterdir())) == 2  # ordinary cache entries
    monkeypatch.setattr(ablation, "run_lever", lambda *a, **k: pytest.fail("ran a lever twice"))
    assert ablation.sweep(["baseline"], out, **kwargs) == rows


def test_throughput_is_measured_and_too_short_a_budget_refused(home, monkeypatch):
    smoke = get_profile("smoke")
    assert ablation.images_per_second(smoke, "mnist", "split", iterations=1) > 0
    monkeypatch.setattr(ablation, "images_per_second", lambda *a: 10.0)
    with pytest.raises(ValueError, match="less than one training step"):
        ablation.run_lever("baseline", profile="smoke", minutes=0.01)
    assert not (home / "models").exists()


def test_quick_is_the_stronger_recipe_the_levers_chose(home):
    smoke, quick = get_profile("smoke"), get_profile("quick")
    first = ablation.baseline(quick)
    assert (
        first.scale.batch_size == 64
        and first.recipe.lr == 1e-3
        and first.recipe.augment_mnist
        and not first.scale.snapshots
    )
    assert ablation.baseline(smoke) == smoke
    for dataset in ("mnist", "cifar10"):  # the combined levers at more steps: quick itself
        recipe = ablation.stronger(quick, dataset).replace(split_readout="lowpass")
        assert recipe.as_dict(dataset) == quick.as_dict(dataset)
    assert quick.steps_for("mnist") == 10_000 and quick.steps_for("cifar10") == 5000
    assert (
        quick.scale.batch_size == 32
        and quick.recipe.lr == 2e-3
        and not quick.recipe.augment_mnist
        and quick.recipe.ema_decay == 0.999
    )
    assert quick.arch_for("cifar10").label() == "L3K8H32-64-64" and quick.scale.snapshots == SNAPSHOTS
    row = ablation.run_stronger("mnist", "split", "smoke", test_subset=100)
    assert row["steps"] == ablation.stronger(smoke, "mnist").steps_for("mnist") == 67
    assert row["minutes"] > 0 and row["images_per_s"] > 0 and row["n_test"] == 100
    assert row["lever"].startswith("stronger")
    assert row["precision"] == resolve_precision("auto", torch.device("cpu"))  # bf16 only where native
    # Each variant below against the same recipe at the same few steps (seconds, not minutes).
    short = functools.partial(ablation.run_stronger, "mnist", "split", "smoke", test_subset=100, steps=10)
    base = short()
    assert base["steps"] == 10 and base["lever"] == row["lever"] + ", 10 steps"
    assert base["change"]["train_steps"] == "10"
    weighted = short(ce_weight=0.3)
    assert weighted["lever"].endswith("w = 0.3") and weighted["change"]["ce_weight"] == "0.3"
    assert weighted["bpd"] != base["bpd"]  # another model: the cache entry of w = 0.3
    with pytest.raises(ValueError, match="non-negative"):
        ablation.run_stronger("mnist", "split", "smoke", ce_weight=-1)
    wide = short(hidden=(16, 32))
    assert wide["arch"] == "L2K2H16-32" and wide["lever"].endswith("widths 16-32")
    with pytest.raises(ValueError, match="steps must be a positive number"):
        ablation.run_stronger("mnist", "split", "smoke", steps=0)
    other = next(r for r in READOUTS if r != smoke.recipe.split_readout)
    moved = short(readout=other)
    assert moved["lever"].endswith(f"{other} readout") and moved["change"]["split_readout"] == other
    assert moved["bpd"] != base["bpd"]  # another model: its logits are read elsewhere
    cosine = short(schedule="cosine")
    assert cosine["lever"].endswith("cosine schedule") and cosine["change"]["lr_schedule"] == "cosine"
    assert cosine["bpd"] != base["bpd"]  # another model: its learning rate decays smoothly
    again = short(seed=1)
    assert again["lever"] == base["lever"] + ", seed 1" and again["change"]["seed"] == "1"
    assert ablation.recipe_of(again["lever"]) == ablation.recipe_of(base["lever"]) == base["lever"]
    assert again["bpd"] != base["bpd"]  # another draw of the same recipe
    fp32 = short(precision="fp32")
    assert fp32["lever"] == base["lever"] + ", fp32" and fp32["change"]["bf16"] == "False"
    assert fp32["precision"] == "fp32" and fp32["cpu"] == cpu_capability()


def test_a_seeded_name_reads_back_as_its_recipe():
    name = "stronger: combined, full budget, w = 0.3"
    assert ablation.seeded(name, 0) == name and ablation.seeded(name, 12) == name + ", seed 12"
    assert ablation.recipe_of(ablation.seeded(name, 12)) == name
    assert ablation.recipe_of("a, seed 3 lever") == "a, seed 3 lever"  # only a trailing seed is a draw
