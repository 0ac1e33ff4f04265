"""Where the study keeps its files, and how it writes and reads them safely: the data
folder, the trained-model cache, memoised results, the results ledger and benchmark rows.
A default run writes under $STUDYLIB_HOME only; the committed results (book/results/) are
read as a fallback and written by `studylib book sync` alone."""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from torch.torch_version import TorchVersion

# The committed `quick` run's results, in the repository.
COMMITTED = Path(__file__).resolve().parents[1] / "book" / "results"


def home() -> Path:
    """The cache folder: $STUDYLIB_HOME, else ~/.cache/studylib."""
    return Path(os.environ.get("STUDYLIB_HOME", Path.home() / ".cache" / "studylib")).expanduser()


def data_dir() -> Path | None:
    """$STUDYLIB_DATA (a folder holding MNIST/raw/ and cifar10.npz), or None to download."""
    value = os.environ.get("STUDYLIB_DATA")
    return Path(value).expanduser() if value else None


def models_dir() -> Path:
    """The trained-model cache: one folder per entry, named by its key."""
    return home() / "models"


def memo_dir() -> Path:
    """Memoised results (log-likelihoods, attacks, paths): $STUDYLIB_HOME/results."""
    return home() / "results"


def results_dir(profile: str | None = None) -> Path:
    """Where ledger files and benchmark rows are written: $STUDYLIB_RESULTS (a book run sets
    it), else $STUDYLIB_HOME/ledger/<profile> (quick when not given); never the package."""
    value = os.environ.get("STUDYLIB_RESULTS")
    return Path(value) if value else home() / "ledger" / (profile or "quick")


def recorded(path: str | Path) -> Path | None:
    """`path` (in the results folder, or relative to it) where it exists, else the committed
    copy (a run into an empty results folder still reads what was measured); else None."""
    folder, path = results_dir(), Path(path)
    relative = path.relative_to(folder) if path.is_relative_to(folder) else path
    return next((p for p in (folder / relative, COMMITTED / relative) if p.exists()), None)


def save_atomic(obj: object, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_safely(path: Path | io.BytesIO, map_location: str | torch.device = "cpu") -> object:
    """torch.load that runs no code: tensors and plain Python types only (weights_only), so a
    model file received from someone else cannot run anything on load. torch's own version
    string, which model entries saved before this recorded as its class, is allowed."""
    with torch.serialization.safe_globals([TorchVersion]):
        return torch.load(path, map_location=map_location, weights_only=True)
