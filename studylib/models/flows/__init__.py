"""Invertible layers, the multi-scale conditional GLOW and RealNVP."""

from studylib.models.flows.actnorm import ActNorm
from studylib.models.flows.base import Flow, FlowSequence
from studylib.models.flows.coupling import AffineCoupling
from studylib.models.flows.glow import ConditionalGlow
from studylib.models.flows.invconv import InvConv1x1
from studylib.models.flows.realnvp import ChannelReverse, CheckerboardCoupling, RealNVP
from studylib.models.flows.reshape import ChannelPad, Split, Squeeze

# Model families by the name their saved config carries.
FLOWS = {"glow": ConditionalGlow, "realnvp": RealNVP}

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "ChannelPad",
    "ChannelReverse",
    "CheckerboardCoupling",
    "ConditionalGlow",
    "FLOWS",
    "Flow",
    "FlowSequence",
    "InvConv1x1",
    "RealNVP",
    "Split",
    "Squeeze",
]
