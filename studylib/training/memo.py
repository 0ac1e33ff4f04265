"""An on-disk memo for expensive, deterministic results (test-set log-likelihoods,
interpolation paths, attack outcomes), keyed by everything they depend on, so a rerun or a
later chapter reads them instead of recomputing."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from studylib.storage import load_safely, memo_dir, save_atomic


def memo_path(kind: str, key: dict) -> Path:
    """Where the result of `kind` for `key` is kept: $STUDYLIB_HOME/results/<kind>-<hash>.pt."""
    blob = json.dumps({"kind": kind, **key}, sort_keys=True).encode()
    return memo_dir() / f"{kind}-{hashlib.sha256(blob).hexdigest()[:16]}.pt"


def stored_results() -> list[Path]:
    """Every memoised result on disk (what `studylib cache clear` removes with the models)."""
    return sorted(memo_dir().glob("*.pt")) if memo_dir().is_dir() else []


def memo(kind: str, key: dict, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """`compute()` once per `key` (a JSON-able dict); later calls load the stored tensors.
    An unreadable file is recomputed with a warning."""
    path = memo_path(kind, key)
    if path.exists():
        try:
            return load_safely(path)
        except Exception as err:  # noqa: BLE001 - any unreadable file is recomputed
            warnings.warn(f"unreadable stored result {path.name} ({err}); recomputing it", stacklevel=2)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(value, path)
    return value
