"""One table of run sizes (`studylib.sizes`) and the training-budget knob (`Profile.at_budget`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import studylib
from studylib import sizes
from studylib.config import PROFILE_TABLE, PROFILES, get_profile
from studylib.training import zoo

PACKAGE = Path(studylib.__file__).parent
BOOK = PACKAGE.parent / "book"


def test_every_profile_has_its_sizes_and_trains_at_them():
    assert set(sizes.SIZES) == set(PROFILES)
    for name in PROFILES:
        train = sizes.sizes(name).train
        profile = get_profile(name)
        assert profile.scale == train  # the profile trains at its sizes, all of them


def test_no_study_or_chapter_keeps_a_table_of_sizes_of_its_own():
    """A literal keyed by the profiles' names belongs in `sizes.SIZES`, nowhere else."""
    keyed = re.compile(r"""["']smoke["']\s*:""")
    places = [*PACKAGE.rglob("*.py"), *BOOK.glob("*.md")]
    found = [p.name for p in places if keyed.search(p.read_text()) and p.name not in ("sizes.py", "config.py")]
    assert not found, f"tables of run sizes outside studylib/sizes.py: {found}"


def test_the_budget_scales_steps_and_warmup_and_keeps_one_times_keys():
    quick = get_profile("quick")
    assert quick.at_budget(1) == quick and quick.at_budget(0.5).at_budget(1.0) == quick
    key = zoo.cache_key(zoo.spec("mnist", "split", quick, 0))
    assert key == "mnist-split-quick-59cd26ef082c"  # the chapters' model, trained before the knob existed
    assert zoo.cache_key(zoo.spec("mnist", "split", quick.at_budget(1.0), 0)) == key
    quarter = quick.at_budget(0.25)
    assert quarter.scale.train_steps == {"mnist": 2500, "cifar10": 1250} and quarter.scale.warmup_steps == 50
    assert quarter.scale.snapshots == quick.scale.snapshots
    assert quarter.recipe.lr_milestones == quick.recipe.lr_milestones
    assert quarter.snapshot_steps(quarter.steps_for("mnist"))[-1] == 2500
    keys = {zoo.cache_key(zoo.spec("mnist", "split", quick.at_budget(b), 0)) for b in (0.25, 0.5, 1, 2, 4)}
    assert len(keys) == 5
    assert zoo.cache_key(zoo.spec("mnist", "split", quarter, 0)).startswith("mnist-split-quick-x0.25-")
    assert quick.at_budget(4).as_dict("mnist")["budget"] == 4.0


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "2"])
def test_a_budget_that_is_not_a_positive_number_is_refused(bad):
    with pytest.raises(ValueError, match="budget must be a positive number"):
        PROFILE_TABLE["smoke"].at_budget(bad)


def test_the_sweep_has_enough_budgets_to_fit_and_backtest():
    """Three parameters to fit after the largest budget is held out: at least four budgets;
    and one budget with two seeds, else no spread weighs the fit and nothing is fitted."""
    for name in PROFILES:
        scale = sizes.sizes(name).sweep
        assert 1.0 in scale.budgets and all(n >= 1 for n in scale.seeds.values())
        assert max(scale.seeds.values()) >= 2, name
    assert len(sizes.sizes("quick").sweep.budgets) >= 5 and all(
        len(sizes.sizes(n).sweep.budgets) >= 4 for n in PROFILES
    )
