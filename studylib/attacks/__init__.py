"""Adversarial attacks on conditional-flow classifiers and the likelihood detector:
CW-L2 and the boundary attack, each with a detection-aware variant (section 4.3)."""

from studylib.attacks.boundary import boundary_attack
from studylib.attacks.cw import cw_l2
from studylib.attacks.detector import Detector, FlowTarget, augmented_scores

__all__ = ["Detector", "FlowTarget", "augmented_scores", "boundary_attack", "cw_l2"]
