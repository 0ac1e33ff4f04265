"""Profiles (smoke / quick / paper), the recipes they train, and validation of user-facing
parameters.

A `Recipe` says what a model is (kind, prior, loss terms); a `Profile` how big and how long
it trains (its sizes come from `sizes.SIZES`). Together they fix everything that determines
a trained model besides dataset, objective and seed, so that their hash keys the cache.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import warnings
from dataclasses import dataclass

import torch

from studylib.sizes import SIZES, Arch, Scale

DATASETS = ("mnist", "cifar10", "bg-mnist-0", "bg-mnist-1", "bg-mnist-5")
OBJECTIVES = ("base", "reweighted", "split")  # the classifiers' objectives
# Every training objective: the classifiers' and an unconditional flow (one class, chapter 7).
TRAIN_OBJECTIVES = (*OBJECTIVES, "unconditional")
MODEL_KINDS = ("glow", "realnvp", "pixelcnn")
NORMS = ("l2", "linf")
PROFILES = ("smoke", "quick", "paper")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")  # how a model trains; auto: bf16 where the hardware runs it natively
# The prior families of appendix C.1, and which coordinates of z the split prior reads as logits.
FAMILIES = ("gaussian", "laplace", "cauchy", "gaussian+laplace", "gaussian+cauchy")
READOUTS = ("corner", "lowpass")


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """Return `value` if it is one of `allowed`, else raise one clear ValueError naming them."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed values: {', '.join(allowed)}")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class Recipe:
    """What a model is, apart from its size: the model kind, the class prior's family and
    options, and the terms its loss adds to -log p(x|y)/D: w * CE (`ce_weight`), label
    smoothing, a PGD-attacked copy of the batch (`adversarial_*`) and a GAN critic's
    (`gan_weight`). The study's variants are recipes (`Profile.replace`); the cache key
    holds each field, those at their default left out so that older keys stay valid."""

    ce_weight: float
    lr: float
    lr_milestones: tuple[float, ...]
    lr_gamma: float
    clip_grad_norm: float
    bf16: bool
    lr_schedule: str = "step"
    ema_decay: float = 0.0
    augment_mnist: bool = True
    compile: bool = False
    model_kind: str = "glow"
    prior_family: str = "gaussian"
    label_smoothing: float = 0.0
    split_readout: str = "corner"
    adversarial_weight: float = 0.0
    adversarial_eps: float = 0.0
    adversarial_norm: str = "l2"
    adversarial_steps: int = 5
    gan_weight: float = 0.0

    def __post_init__(self) -> None:
        if not (self.ce_weight >= 0 and math.isfinite(self.ce_weight)):
            raise ValueError(f"ce_weight must be a finite number >= 0, got {self.ce_weight}")
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        check_choice("model_kind", self.model_kind, MODEL_KINDS)
        check_choice("prior_family", self.prior_family, FAMILIES)
        check_choice("split_readout", self.split_readout, READOUTS)
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        check_choice("adversarial_norm", self.adversarial_norm, NORMS)
        if not 0 <= self.adversarial_weight <= 1:
            raise ValueError(f"adversarial_weight must be in [0, 1], got {self.adversarial_weight}")
        if self.adversarial_weight > 0 and not (self.adversarial_eps > 0 and self.adversarial_steps >= 1):
            raise ValueError("adversarial training needs adversarial_eps > 0 and adversarial_steps >= 1")
        if not (self.gan_weight >= 0 and math.isfinite(self.gan_weight)):
            raise ValueError(f"gan_weight must be a finite number >= 0, got {self.gan_weight}")

    def prior_options(self, objective: str) -> dict:
        """The class prior's options for `objective`: appendix C's robust families and label
        smoothing (base, reweighted), or where the split prior reads its logits (split)."""
        options: dict = {}
        if self.prior_family != "gaussian":
            options["family"] = self.prior_family
        if self.label_smoothing > 0:
            options["smoothing"] = self.label_smoothing
        if self.model_kind == "pixelcnn" and objective not in ("base", "reweighted"):
            raise ValueError("the PixelCNN has no latent prior: train it with the base or reweighted objective")
        if options and objective == "split":
            raise ValueError("prior_family and label_smoothing apply to the base and reweighted objectives, not split")
        if objective == "split" and self.split_readout != "corner":
            options["readout"] = self.split_readout
        return options


@dataclass(frozen=True)
class Profile:
    """One scale of the study (smoke / quick / paper): a `recipe` trained at a `scale`
    (`sizes.SIZES`). `replace` makes a variant; `as_dict` is what keys the cache."""

    name: str
    recipe: Recipe
    scale: Scale

    def at_budget(self, budget: float) -> Profile:
        """This recipe trained `budget` times as long as the table says: its steps and warm-up
        scale together, and its learning-rate milestones and snapshots, fractions of the run,
        follow. At 1 it is the table's profile, cache keys unchanged (chapter 10's sweep)."""
        if not (isinstance(budget, (int, float)) and 0 < budget < math.inf):
            raise ValueError(f"budget must be a positive number, got {budget!r}")
        scale = self.scale
        ratio = budget / scale.budget
        steps = {k: max(1, round(v * ratio)) for k, v in scale.train_steps.items()}
        warmup = max(1, round(scale.warmup_steps * ratio)) if scale.warmup_steps else 0
        return self.replace(train_steps=steps, warmup_steps=warmup, budget=float(budget))

    def snapshot_steps(self, total: int) -> list[int]:
        """The steps of a `total`-step run at which training keeps a copy of the weights."""
        return sorted({max(1, round(f * total)) for f in self.scale.snapshots})

    def arch_for(self, dataset: str) -> Arch:
        """Architecture for `dataset` (BG-MNIST uses MNIST's)."""
        return self.scale.arch[family(dataset)]

    def steps_for(self, dataset: str) -> int:
        """Number of optimiser steps for `dataset`."""
        return self.scale.train_steps[family(dataset)]

    def replace(self, **change) -> Profile:
        """This profile with `change` applied, each setting where it lives, the recipe's or
        the scale's (a variant of the study: another prior, loss term, size or schedule),
        validated as a new one is; an unknown setting is a TypeError."""
        parts = {}
        for part in (Recipe, Scale):
            names = {f.name for f in dataclasses.fields(part)}
            parts[part] = {k: change.pop(k) for k in list(change) if k in names}
        recipe = dataclasses.replace(self.recipe, **parts[Recipe])
        return dataclasses.replace(self, recipe=recipe, scale=dataclasses.replace(self.scale, **parts[Scale]), **change)

    def as_dict(self, dataset: str) -> dict:
        """The settings that determine a model trained on `dataset` (used for cache keys): the
        recipe's and the scale's side by side, as when they were one."""
        d = {**dataclasses.asdict(self.recipe), **dataclasses.asdict(self.scale)}
        d["arch"] = dataclasses.asdict(self.arch_for(dataset))
        d["train_steps"] = self.steps_for(dataset)
        for k in _NOT_KEYED:
            d.pop(k)
        # Settings at their neutral default are left out, so keys of older models stay valid.
        for k, neutral in _NEUTRAL.items():
            if d[k] == neutral:
                d.pop(k)
        return d


_NOT_KEYED = ("checkpoint_every", "log_every", "eval_subset", "eval_batch_size", "table_subset")
# Every keyed setting with a default is left out of the key at that default (see `as_dict`).
_NEUTRAL = {
    f.name: f.default
    for f in (*dataclasses.fields(Recipe), *dataclasses.fields(Scale))
    if f.default is not dataclasses.MISSING and f.name not in _NOT_KEYED
}
LR_SCHEDULES = ("step", "cosine")


def model_config(
    kind: str, in_channels: int, num_classes: int, arch: Arch, prior: str, size: int, prior_options: dict | None
) -> dict:
    """What a saved model records so that the cache can build it again (`zoo`)."""
    return {
        "kind": kind,
        "in_channels": in_channels,
        "num_classes": num_classes,
        "arch": [arch.levels, arch.steps, arch.hidden],
        "prior": prior,
        "size": size,
        **({"prior_options": dict(prior_options)} if prior_options else {}),
    }


def family(dataset: str) -> str:
    """'mnist' for MNIST and BG-MNIST (grey digits), 'cifar10' for CIFAR-10."""
    return "cifar10" if dataset == "cifar10" else "mnist"


PROFILE_TABLE: dict[str, Profile] = {
    # Every code path in seconds; the numbers mean nothing, but the models classify a little
    # (~30 % on MNIST), enough for the chapters' selections of correctly classified images.
    "smoke": Profile(
        "smoke",
        # `quick`'s recipe (its lowpass readout), so that CI runs the chapters on it
        Recipe(
            ce_weight=0.1,
            lr=1e-3,
            lr_milestones=(0.8,),
            lr_gamma=0.1,
            clip_grad_norm=50.0,
            bf16=True,
            split_readout="lowpass",
        ),
        SIZES["smoke"].train,
    ),
    # The CPU-scale study: ~35 min per MNIST model, ~25 min per CIFAR-10 model on 2 cores.
    # Chosen by chapter 2's ablation: the first `quick` recipe (`ablation.FIRST_QUICK`)
    # with five levers (no MNIST crop, peak lr 2e-3, batch 32, EMA weights, level 1 at
    # width 32) and the steps they leave time for. ce_weight 0.1 instead of the paper's 1:
    # at this scale w=1 costs ~1 bpd on CIFAR-10 (design.md's probes) and the
    # likelihood-based chapters need the sharper density. The split prior reads its logits
    # at the last level's lowest spatial frequencies (the paper leaves it open; the corner
    # pixels a literal reading takes left the bottom third of the digit out of reach of the
    # classifier: +1.6 points at the same bits/dim). Every model keeps `sizes.SNAPSHOTS`.
    "quick": Profile(
        "quick",
        Recipe(
            ce_weight=0.1,
            lr=2e-3,
            lr_milestones=(0.8,),
            lr_gamma=0.1,
            clip_grad_norm=50.0,
            bf16=True,
            ema_decay=0.999,
            augment_mnist=False,
            split_readout="lowpass",
        ),
        SIZES["quick"].train,
    ),
    # Appendix B: 4 levels, MNIST 128 x 12, CIFAR-10 256 x 16, Adam 1e-3 /10 every
    # 60 epochs, 150 epochs (batch size unstated in the paper: 64), w = 1. For a GPU.
    "paper": Profile(
        "paper",
        Recipe(ce_weight=1.0, lr=1e-3, lr_milestones=(0.4, 0.8), lr_gamma=0.1, clip_grad_norm=50.0, bf16=False),
        SIZES["paper"].train,
    ),
}


def get_profile(profile: str | Profile | None = None) -> Profile:
    """The named profile; None means $STUDYLIB_PROFILE, else 'quick'."""
    if isinstance(profile, Profile):
        return profile
    name = profile if profile is not None else os.environ.get("STUDYLIB_PROFILE", "quick")
    return PROFILE_TABLE[check_choice("profile", name, PROFILES)]


def device_label(device: torch.device) -> str:
    """How benchmark rows name where they ran: the GPU's name, or the CPU's thread count."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"


def bf16_native(device: torch.device) -> bool:
    """Whether `device` runs bfloat16 arithmetic in hardware: on CUDA torch's own check; on an
    x86 CPU AVX512-BF16 or AMX, as torch dispatches (ATEN_CPU_CAPABILITY and
    ONEDNN_MAX_CPU_ISA can lower it, e.g. to see an AVX2 CPU on any machine); elsewhere oneDNN's."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if not any(tag in isa for tag in ("ALL", "BF16", "AMX", "AVX10")):
        return False
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        if torch.backends.cpu.get_cpu_capability() != "AVX512":
            return False
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def cpu_capability() -> str:
    """How benchmark rows name the CPU's vector instructions as torch dispatches them
    ("AVX2", "AVX512"), with " + native bf16" where `bf16_native` holds."""
    native = " + native bf16" if bf16_native(torch.device("cpu")) else ""
    return f"{torch.backends.cpu.get_cpu_capability()}{native}"


def resolve_precision(precision: str, device: torch.device, recipe_bf16: bool = True) -> str:
    """The precision a run trains in: 'auto' gives 'bf16' where the recipe allows it
    (`Recipe.bf16`) and `device` runs it natively, else 'fp32'; 'fp32' and 'bf16' force
    it (bf16 forced where it is emulated warns once: every step costs about ten times more)."""
    check_choice("precision", precision, PRECISIONS)
    if precision == "auto":
        return "bf16" if recipe_bf16 and bf16_native(device) else "fp32"
    if precision == "bf16" and not bf16_native(device):
        warnings.warn(
            f"bf16 forced on a {device.type} that emulates it ({cpu_capability()}): ~10x slower per step than fp32",
            stacklevel=2,
        )
    return precision


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda when present, else cpu; 'cuda' without a GPU is a clear error. A
    torch.device passes through as it is (its index kept): resolved once, it travels."""
    if not isinstance(device, torch.device):
        check_choice("device", device, DEVICES)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available; use 'cpu' or 'auto'")
    return device
