"""Where the study keeps its files: the data folder and the trained-model cache."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The cache folder: $STUDYLIB_HOME, else ~/.cache/studylib."""
    return Path(os.environ.get("STUDYLIB_HOME", Path.home() / ".cache" / "studylib")).expanduser()


def data_dir() -> Path | None:
    """$STUDYLIB_DATA (a folder holding MNIST/raw/ and cifar10.npz), or None to download."""
    value = os.environ.get("STUDYLIB_DATA")
    return Path(value).expanduser() if value else None
