"""The overview chapter's reading of the recorded benchmarks: what the `paper` profile costs
on a GPU (`studylib probe`) and the peer libraries on that GPU (`studylib bench --peers`)."""

from __future__ import annotations

from studylib.benchmarks import bench, probe
from studylib.book.tables import Table


def at_scale(profile: str = "paper", device: str = "cuda") -> tuple[Table, Table]:
    """(Table of the probe rows, table of the peer benchmark) recorded for
    `profile` on `device`; each says how to make it when it is missing."""
    return probe.table(profile, device), bench.peers_table(profile, device)
