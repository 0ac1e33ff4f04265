"""The numbers the papers report, in one place, for the chapters' "paper vs ours" tables.
Source: Fetaya et al. (ICLR 2020), Tables 1-3 and sections 4.2-4.4."""

from __future__ import annotations

# Table 1: (accuracy %, bits/dim) by dataset and objective.
TABLE1 = {
    "mnist": {"base": (96.9, 0.95), "reweighted": (99.0, 1.10), "split": (99.3, 1.00)},
    "cifar10": {"base": (56.8, 3.47), "reweighted": (83.2, 3.54), "split": (84.0, 3.53)},
}

# Section 4.3 / appendix B: detection thresholds (bits/dim) and the share of clean test
# images below them.
THRESHOLD = {"mnist": (1.4, 1.00), "cifar10": (4.0, 0.786)}

# Section 4.4: share of interpolation paths whose every point stays below the threshold.
PATHS_BELOW_THRESHOLD = {"mnist": 0.005, "cifar10": 1.0}
INTERPOLATION_PAIRS = {"mnist": 1487, "cifar10": 1179}

# Table 3: (accuracy %, bits/dim).
TABLE3 = {
    "mnist": (99, 1.10),
    "bg-mnist-5": (99, 1.67),
    "bg-mnist-1": (99, 3.30),
    "bg-mnist-0": (98, 4.58),
    "cifar10": (84, 3.53),
}
