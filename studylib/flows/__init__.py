"""Invertible layers and the multi-scale conditional GLOW."""

from studylib.flows.actnorm import ActNorm
from studylib.flows.base import Flow, FlowSequence
from studylib.flows.coupling import AffineCoupling
from studylib.flows.glow import ConditionalGlow
from studylib.flows.invconv import InvConv1x1
from studylib.flows.reshape import ChannelPad, Split, Squeeze

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "ChannelPad",
    "ConditionalGlow",
    "Flow",
    "FlowSequence",
    "InvConv1x1",
    "Split",
    "Squeeze",
]
