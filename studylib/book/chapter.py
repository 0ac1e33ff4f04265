"""What every chapter's first code cell calls: validate the papermill parameters once,
with one clear error naming the allowed values, and fix the seeds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from studylib.config import DATASETS, OBJECTIVES, PRECISIONS, Profile, check_choice, get_profile, resolve_device


@dataclass(frozen=True)
class Params:
    """A chapter's resolved parameters."""

    dataset: str
    objective: str
    profile: Profile
    device: torch.device
    seed: int
    precision: str = "auto"  # how a model the cache lacks trains (`config.resolve_precision`)

    def describe(self) -> str:
        return (
            f"dataset={self.dataset} objective={self.objective} profile={self.profile.name} "
            f"device={self.device} seed={self.seed} precision={self.precision}"
        )


def setup(
    dataset: str = "mnist",
    objective: str = "split",
    profile: str | None = None,
    device: str = "auto",
    seed: int = 0,
    precision: str = "auto",
) -> Params:
    """Validate a chapter's parameters and seed torch and NumPy. `profile=None` means
    $STUDYLIB_PROFILE, else 'quick'; `precision` is how models the cache lacks train."""
    check_choice("dataset", dataset, DATASETS)
    check_choice("objective", objective, OBJECTIVES)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    check_choice("precision", precision, PRECISIONS)
    params = Params(dataset, objective, get_profile(profile), resolve_device(device), seed, precision)
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_flush_denormal(True)
    return params


def check_datasets(names: list[str]) -> list[str]:
    """Validate a chapter's list of datasets (one clear error naming the allowed values)."""
    return [check_choice("dataset", name, DATASETS) for name in names]


def check_seeds(seeds: object) -> int:
    """Validate a chapter's number of seeds: return it if it is a positive integer, else raise one clear ValueError."""
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    return seeds


def glue(**values: object) -> None:
    """Store each value under its name in the notebook's outputs, for the prose's
    {glue:text}`name` (myst-nb): a number in the text then comes from the run that shows it.
    Each is glued as the string `str(value)`, which the role pastes exactly as it reads."""
    from myst_nb import glue as store

    for name, value in values.items():
        store(name, str(value), display=False)


class NotAnswered(AssertionError):
    """An exercise's answer is missing: its cell was not run or still holds the stub."""


def answer(namespace: dict, name: str) -> object:
    """The value an exercise asks for, looked up by `name` in the notebook's `namespace`
    (its globals()); NotAnswered, saying "<name>: not answered", where it is missing."""
    if name not in namespace:
        raise NotAnswered(f"{name}: not answered")
    return namespace[name]
