"""Building the models the study trains: a flow or the conditional PixelCNN++ of a
profile's architecture and an objective's prior, new or from a saved entry's config."""

from __future__ import annotations

import torch

from studylib.config import Arch, Profile, family
from studylib.models.flows import FLOWS, ConditionalGlow
from studylib.models.pixelcnn import ConditionalPixelCNN
from studylib.training.objectives import num_classes, prior_for

# Every model family the cache can hold, by the name its saved config carries.
MODELS = {**FLOWS, "pixelcnn": ConditionalPixelCNN}


def build_model(
    dataset: str, objective: str, arch: Arch, kind: str = "glow", prior_options: dict | None = None
) -> ConditionalGlow:
    """An untrained model of `kind` (GLOW, RealNVP, or the conditional PixelCNN++) for
    `dataset` with the objective's prior and its options (appendix C's robust families,
    label smoothing); uses the global torch RNG."""
    channels = 3 if family(dataset) == "cifar10" else 1
    return construct(kind, channels, num_classes(objective), arch, prior_for(objective), prior_options=prior_options)


def construct(kind: str, *args, **kwargs) -> ConditionalGlow:
    """A model of `kind` with its convolution weights in channels_last: oneDNN's CPU
    convolutions train 10-20 % faster on them here (bf16 and float32, `studylib bench`)."""
    return MODELS[kind](*args, **kwargs).to(memory_format=torch.channels_last)


def new_model(dataset: str, objective: str, profile: Profile, seed: int) -> ConditionalGlow:
    """`profile`'s untrained model for `dataset` and `objective`, its weights drawn from `seed`."""
    torch.manual_seed(seed)
    return build_model(
        dataset,
        objective,
        profile.arch_for(dataset),
        profile.recipe.model_kind,
        profile.recipe.prior_options(objective),
    )


def from_config(config: dict) -> ConditionalGlow:
    """The untrained model a saved entry's config describes (its weights loaded after)."""
    cfg = dict(config)
    kind = cfg.get("kind", "glow")  # entries saved before RealNVP existed are GLOWs
    return construct(
        kind,
        cfg["in_channels"],
        cfg["num_classes"],
        Arch(*cfg["arch"]),
        cfg["prior"],
        cfg["size"],
        cfg.get("prior_options"),
    )
