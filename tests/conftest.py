"""Shared fixtures: a private model cache per test and the offline data beside the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if "STUDYLIB_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["STUDYLIB_DATA"] = str(SHARED_DATA)

# Two cores: one test at a time on both, or (under `pytest -n 2`, as `make test` runs) one
# per worker, each on one, so that the workers do not fight over the cores.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, torch.get_num_threads()))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # and the command lines, kernels and training processes a test starts, one thread each too
    # (two-thread torch processes beside the other worker spin-wait for a core)
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty $STUDYLIB_HOME for the test."""
    folder = tmp_path / "home"
    monkeypatch.setenv("STUDYLIB_HOME", str(folder))
    return folder


class RunsCode:
    """A pickle payload that creates `marker` when unpickled: what a hostile model file carries."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))
