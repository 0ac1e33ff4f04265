"""Progress bars: tqdm, refreshed every 10 s when stderr is not a terminal (notebooks, logs),
so that saved notebook outputs and logs stay a few lines long."""

from __future__ import annotations

import sys

from tqdm import tqdm


def bar(*args, **kwargs) -> tqdm:
    """tqdm with a terminal-aware refresh interval; arguments as tqdm's."""
    kwargs.setdefault("mininterval", 0.1 if sys.stderr.isatty() else 10.0)
    return tqdm(*args, **kwargs)
