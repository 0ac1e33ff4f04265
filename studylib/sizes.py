"""How big every run of the study is, per profile, in one table (`SIZES`).

A profile (smoke / quick / paper) fixes how much each study trains, scores and attacks;
the recipe (`config.Recipe`) fixes what is trained. The architectures and
steps here feed `config.PROFILE_TABLE`, so that the cache keys stay those of the profiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Arch:
    """GLOW size: levels L, steps per level K, hidden width H of the coupling networks
    (one width for every level, or one per level: level 1 runs at 32x32 and costs most)."""

    levels: int
    steps: int
    hidden: int | tuple[int, ...]

    def __post_init__(self) -> None:
        if isinstance(self.hidden, list):  # read back from a saved config (JSON has no tuples)
            object.__setattr__(self, "hidden", tuple(self.hidden))
        if isinstance(self.hidden, tuple) and len(self.hidden) != self.levels:
            raise ValueError(f"hidden widths {self.hidden} must give one width per level ({self.levels})")
        if min(self.hidden if isinstance(self.hidden, tuple) else (self.hidden,)) < 1:
            raise ValueError(f"hidden widths must be positive, got {self.hidden}")

    def hidden_at(self, level: int) -> int:
        """Coupling width at `level` (0-based)."""
        return self.hidden[level] if isinstance(self.hidden, tuple) else self.hidden

    def label(self) -> str:
        """L3K8H64, or L3K8H32-64-64 with per-level widths."""
        widths = "-".join(map(str, self.hidden)) if isinstance(self.hidden, tuple) else str(self.hidden)
        return f"L{self.levels}K{self.steps}H{widths}"


# Where along a run its weights are kept (fractions of its steps), weak to final: chapter 4
# attacks each to see detection change as the density sharpens.
SNAPSHOTS = (0.02, 0.05, 0.15, 0.4, 1.0)


@dataclass(frozen=True)
class Scale:
    """How big and how long the chapters' models train, and how much they are scored on:
    architecture and optimiser steps per dataset family, batch, warm-up steps, the seeded
    test subsets (None: the whole test set; `table_subset`: Tables 1 and 3), how often a
    run checkpoints and logs, where it keeps `snapshots` (fractions of its steps) and its
    training `budget`, a multiple of the table's steps (`config.Profile.at_budget`)."""

    arch: dict[str, Arch]
    batch_size: int
    train_steps: dict[str, int]
    warmup_steps: int
    eval_subset: int | None
    eval_batch_size: int
    checkpoint_every: int
    log_every: int
    table_subset: int | None = None
    snapshots: tuple[float, ...] = ()
    budget: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.budget, (int, float)) and 0 < self.budget < math.inf):
            raise ValueError(f"budget must be a positive number, got {self.budget!r}")
        if list(self.snapshots) != sorted(set(self.snapshots)) or not all(0 < f <= 1 for f in self.snapshots):
            raise ValueError(f"snapshots must be increasing fractions of training in (0, 1], got {self.snapshots}")


@dataclass(frozen=True)
class Budgets:
    """Attack budgets: CW optimiser steps per binary-search step, binary-search steps,
    boundary-attack queries per image, and DDN's and FMN's steps."""

    cw_steps: int = 100
    cw_search_steps: int = 5
    boundary_queries: int = 2000
    min_l2_steps: int = 200


@dataclass(frozen=True)
class AppendixSizes:
    """The appendix models' scale (None: the profile's own), the PixelCNN's (gated blocks per
    stream, filters), the large alpha of appendix E, and the interpolation pairs."""

    arch: Arch | None
    train_steps: int | None
    pixelcnn: Arch
    pixelcnn_steps: int | None
    alpha: float
    pairs: int

    def describe(self) -> str:
        """The sizes in words, in lines short enough for the book's page."""
        a, p = self.arch, self.pixelcnn
        flow = "the profile's size" if a is None else f"{a.levels} levels x {a.steps} flow steps, width {a.hidden}"
        return "\n".join(
            (
                f"appendix-C flows: {flow}; {_steps(self.train_steps)}",
                f"PixelCNN++: {p.steps} gated blocks of {p.hidden} filters; {_steps(self.pixelcnn_steps)}",
                f"large alpha of appendix E: {self.alpha:g}; interpolation paths per model: {self.pairs}",
            )
        )


def _steps(steps: int | None) -> str:
    return "the profile's steps" if steps is None else f"{steps} training steps"


@dataclass(frozen=True)
class LinearSizes:
    """How much of MNIST the linear study uses: training and test images, PCA dimensions,
    the L2 budgets, and L-BFGS iterations for the sample-specific adversarial fit."""

    train: int
    test: int
    dims: int
    eps: tuple[float, ...]
    fit_steps: int


@dataclass(frozen=True)
class DeepSizes:
    """The deep half's scale: the flows' architecture and training steps (batch 32; None:
    the profile's own), the attacked images per set, the budgets (L2 and L-infinity) and
    PGD steps of the attacks, the hybrid adversarial training's weight, L2 eps and steps, and
    the out-of-distribution attack at the abstract's strength: its steps and restarts, and
    the multiples of the largest L2 budget it grows through (to tenfold)."""

    arch: Arch | None
    train_steps: int | None
    images: int
    l2_eps: tuple[float, ...]
    linf_eps: tuple[float, ...]
    pgd_steps: int
    adv_weight: float = 0.5
    adv_eps: float = 1.0
    adv_steps: int = 3
    ood_steps: int = 100
    ood_restarts: int = 2
    ood_growth: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class SweepSizes:
    """Chapter 10's sweep: the training budgets (multiples of the profile's steps and
    schedule) and how many seeds each gets, counting from seed 0."""

    seeds: dict[float, int]

    @property
    def budgets(self) -> tuple[float, ...]:
        return tuple(sorted(self.seeds))


@dataclass(frozen=True)
class Sizes:
    """Every run size of one profile."""

    train: Scale  # the chapters' models
    monte_carlo: tuple[int, int]  # chapter 1: draws per KL estimate, attacked points per case
    attack: Budgets  # chapter 4
    attack_images: int  # chapter 4: images per model
    query_curve: tuple[int, int]  # chapter 4: images per model, queries per image of the budget curve
    cw_curve: tuple[tuple[int, int], ...]  # chapter 4: CW-L2's budgets (steps, searches) on those images
    paths: int  # chapters 5 and 6: interpolation paths per dataset
    appendix: AppendixSizes  # chapter 8
    linear: LinearSizes  # chapter 7, linear flows
    deep: DeepSizes  # chapter 7, deep flows
    sweep: SweepSizes  # chapter 10


_L2_EPS = (0.25, 0.5, 1.0, 2.0)
_LINF_EPS = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
_LINEAR_EPS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)

SIZES: dict[str, Sizes] = {
    # Every code path in seconds; the numbers mean nothing.
    "smoke": Sizes(
        train=Scale(
            arch={"mnist": Arch(2, 2, 16), "cifar10": Arch(2, 2, 16)},
            batch_size=32,
            train_steps={"mnist": 40, "cifar10": 40},
            warmup_steps=5,
            eval_subset=128,
            eval_batch_size=64,
            checkpoint_every=10,
            log_every=5,
            table_subset=128,
        ),
        monte_carlo=(200_000, 300),
        attack=Budgets(5, 2, 30, 5),
        attack_images=8,
        query_curve=(4, 60),
        cw_curve=((2, 1), (5, 2)),
        paths=16,
        appendix=AppendixSizes(Arch(2, 2, 16), 30, Arch(1, 1, 8), 10, 1000.0, 8),
        linear=LinearSizes(1000, 500, 10, (0.0, 1.0, 2.0), 20),
        deep=DeepSizes(
            Arch(2, 2, 16),
            30,
            8,
            (0.5, 2.0),
            (2 / 255,),
            2,
            adv_steps=1,
            ood_steps=3,
            ood_restarts=1,
            ood_growth=(1.0, 10.0),
        ),
        sweep=SweepSizes({0.125: 1, 0.25: 1, 0.5: 2, 1.0: 1}),
    ),
    # The CPU-scale study (~35 min per MNIST model, ~25 min per CIFAR-10 model on 2 cores);
    # the attacks take about 6 CPU minutes per model.
    "quick": Sizes(
        train=Scale(
            arch={"mnist": Arch(3, 8, (32, 64, 64)), "cifar10": Arch(3, 8, (32, 64, 64))},
            batch_size=32,
            train_steps={"mnist": 10_000, "cifar10": 5000},
            warmup_steps=200,
            eval_subset=2000,
            eval_batch_size=250,
            checkpoint_every=250,
            log_every=25,
            snapshots=SNAPSHOTS,
        ),
        monte_carlo=(1_000_000, 4_000),
        attack=Budgets(50, 4, 1000, 200),
        attack_images=100,
        query_curve=(20, 5000),
        cw_curve=((10, 1), (25, 2), (50, 4), (100, 6), (200, 9)),
        paths=500,
        appendix=AppendixSizes(Arch(3, 4, 32), 1500, Arch(1, 3, 32), 1500, 1000.0, 200),
        linear=LinearSizes(10_000, 2000, 50, _LINEAR_EPS, 100),
        deep=DeepSizes(Arch(3, 4, 32), 1500, 64, _L2_EPS, _LINF_EPS, 10),
        sweep=SweepSizes({0.25: 2, 0.5: 2, 1.0: 3, 2.0: 1, 4.0: 1}),
    ),
    # Appendix B: 4 levels, MNIST 128 x 12, CIFAR-10 256 x 16, 150 epochs at batch 64 (the
    # batch size is unstated in the paper). For a GPU.
    "paper": Sizes(
        train=Scale(
            arch={"mnist": Arch(4, 12, 128), "cifar10": Arch(4, 16, 256)},
            batch_size=64,
            train_steps={"mnist": 150 * (60_000 // 64), "cifar10": 150 * (50_000 // 64)},
            warmup_steps=500,
            eval_subset=None,
            eval_batch_size=500,
            checkpoint_every=2000,
            log_every=100,
        ),
        monte_carlo=(2_000_000, 6_000),
        attack=Budgets(200, 9, 10000, 1000),
        attack_images=1000,
        query_curve=(100, 25_000),
        cw_curve=((50, 2), (200, 9), (1000, 9)),
        paths=1500,
        appendix=AppendixSizes(None, None, Arch(1, 5, 160), None, 1000.0, 1000),
        linear=LinearSizes(60_000, 10_000, 100, _LINEAR_EPS, 200),
        deep=DeepSizes(None, None, 1000, _L2_EPS, _LINF_EPS, 40, ood_steps=400, ood_restarts=5),
        sweep=SweepSizes({0.125: 2, 0.25: 1, 0.5: 1, 1.0: 1}),
    ),
}


def sizes(profile: str) -> Sizes:
    """The run sizes of the profile named `profile`."""
    return SIZES[profile]
