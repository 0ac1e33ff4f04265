"""Invertible layers, the multi-scale conditional GLOW and RealNVP."""

from studylib.flows.actnorm import ActNorm
from studylib.flows.base import Flow, FlowSequence
from studylib.flows.coupling import AffineCoupling
from studylib.flows.glow import ConditionalGlow
from studylib.flows.invconv import InvConv1x1
from studylib.flows.realnvp import ChannelReverse, CheckerboardCoupling, RealNVP
from studylib.flows.reshape import ChannelPad, Split, Squeeze

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
