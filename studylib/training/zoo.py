"""Trained-model cache: `get_model` returns a trained conditional GLOW, training it only
when $STUDYLIB_HOME lacks it. Entries are keyed by a hash of everything that determines
the model; a corrupt entry is reported and rebuilt, never silently used."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from studylib import data
from studylib.config import PRECISIONS, Profile, check_choice, get_profile, resolve_device
from studylib.models.flows import ConditionalGlow
from studylib.storage import load_safely, models_dir, save_atomic
from studylib.training import distributed
from studylib.training.build import from_config
from studylib.training.loop import TrainingDiverged, fit
from studylib.training.objectives import prior_for

# Bump when a change to the model or training code changes what a cached model would be.
MODEL_VERSION = 1
# An entry whose training diverged holds this record (message, step, curve) instead of a model.
DIVERGED = "diverged.json"
LOCK = "lock"  # held (flock) by the process training the entry
USED_BY = "used_by.json"  # the chapters that asked for the entry under `studylib book run`


class CorruptEntry(RuntimeError):
    """A cache entry that cannot be read or whose checksum does not match."""


def spec(dataset: str, objective: str, profile: Profile, seed: int, ce_weight: float | None = None) -> dict:
    """Everything that determines a trained model (validated)."""
    check_choice("dataset", dataset, data.DATASETS)
    prior_for(objective)
    profile.recipe.prior_options(objective)  # refuses options the objective's prior does not take
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    weight = profile.recipe.ce_weight if ce_weight is None else float(ce_weight)
    if not weight >= 0:  # also refuses NaN
        raise ValueError(f"ce_weight must be a non-negative number, got {ce_weight!r}")
    if objective in ("base", "unconditional"):
        weight = 0.0
    settings = profile.as_dict(dataset)
    if objective != "split":  # only the split prior reads it: the other models keep their keys
        settings.pop("split_readout", None)
    return {
        "dataset": dataset,
        "objective": objective,
        "ce_weight": weight,
        "profile": profile.name,
        "settings": settings,
        "seed": seed,
        "model_version": MODEL_VERSION,
    }


def cache_key(model_spec: dict) -> str:
    """A short hash of the spec; names the entry's folder (with the training budget where it
    is not 1, `Profile.at_budget`: mnist-split-quick-x0.25-<hash>)."""
    blob = json.dumps(model_spec, sort_keys=True).encode()
    budget = model_spec["settings"].get("budget", 1.0)
    scaled = f"x{budget:g}-" if budget != 1.0 else ""
    return (
        f"{model_spec['dataset']}-{model_spec['objective']}-{model_spec['profile']}-{scaled}"
        + hashlib.sha256(blob).hexdigest()[:12]
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_entry(folder: Path, device: torch.device) -> ConditionalGlow:
    weights, checksum = folder / "model.pt", folder / "model.sha256"
    expected = checksum.read_text().strip() if checksum.exists() else None
    try:
        if expected != _sha256(weights):
            raise CorruptEntry(f"checksum mismatch for {weights}")
        saved = load_safely(weights, device)
        model = from_config(saved["config"])
        model.load_state_dict(saved["state_dict"])
    except CorruptEntry:
        raise
    except Exception as err:  # any unreadable file is a corrupt entry
        raise CorruptEntry(f"cannot read {weights}: {err}") from err
    model.info = {**saved["info"], "sha256": expected}
    return model.to(device).eval()


def trained_precision(info: dict) -> str:
    """The precision a model was trained in: recorded in its info; entries trained before
    it was recorded used their profile's `bf16` as it stood then (bf16 on every machine)."""
    return info.get("precision") or ("bf16" if info["spec"]["settings"].get("bf16") else "fp32")


def _raise_if_diverged(folder: Path) -> None:
    """Raise the recorded `TrainingDiverged` of an entry whose training diverged: resume is
    deterministic, so training again would diverge at the same step (`studylib cache
    clear`, or deleting the record, trains it again)."""
    record_path = folder / DIVERGED
    if record_path.exists():
        record = json.loads(record_path.read_text())
        message = f"{record['message']} (recorded in {record_path}: delete it to train again)"
        raise TrainingDiverged(message, step=record["step"], history=record["history"])


def _discard_if_unreadable(checkpoint: Path) -> None:
    """Report and delete a training checkpoint that cannot be loaded (training restarts)."""
    if not checkpoint.exists():
        return
    try:
        load_safely(checkpoint)
    except Exception as err:
        warnings.warn(f"corrupt checkpoint {checkpoint} ({err}); training from scratch", stacklevel=3)
        checkpoint.unlink()


@contextlib.contextmanager
def entry_lock(folder: Path) -> Iterator[None]:
    """Hold the entry's lock while training it, so that one process trains a model and any
    other that asks for it waits, then loads it. The lock is the operating system's (flock):
    a process that dies releases it, and the next one resumes from its checkpoint. Under
    torchrun rank 0 holds it for all ranks."""
    if not distributed.is_main():
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle) or "another process"
            print(f"waiting for {holder}, which is training {folder.name}", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)  # until it finishes, or dies and the OS releases it
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holder(handle, patience: float = 1.0) -> str:
    """Who holds the lock, as it wrote itself into the lock file: it writes just after taking
    the lock, so a waiter that comes in between gives it `patience` seconds to do so."""
    deadline = time.monotonic() + patience
    while True:
        handle.seek(0)
        holder = handle.read().strip()
        if holder or time.monotonic() > deadline:
            return holder
        time.sleep(0.05)


def used_by(folder: Path) -> list[str]:
    """The chapters that asked for this entry while `studylib book run` ran them here."""
    path = folder / USED_BY
    return json.loads(path.read_text()) if path.exists() else []


def _note_use(folder: Path) -> None:
    """Record the running chapter ($STUDYLIB_CHAPTER, set by the book runner) as a user of the entry."""
    chapter = os.environ.get("STUDYLIB_CHAPTER")
    if not chapter or not distributed.is_main() or chapter in used_by(folder):
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / USED_BY).write_text(json.dumps(sorted({*used_by(folder), chapter})))


def is_cached(
    dataset: str, objective: str, profile: str | Profile | None, seed: int, ce_weight: float | None = None
) -> bool:
    """Whether the cache holds the trained model `get_model` would return (no training)."""
    return (_entry(dataset, objective, profile, seed, ce_weight) / "model.pt").exists()


def is_settled(
    dataset: str, objective: str, profile: str | Profile | None, seed: int, ce_weight: float | None = None
) -> bool:
    """Whether `get_model` answers without training: the cache holds the trained model, or
    the recorded divergence it raises."""
    folder = _entry(dataset, objective, profile, seed, ce_weight)
    return (folder / "model.pt").exists() or (folder / DIVERGED).exists()


def _entry(dataset: str, objective: str, profile: str | Profile | None, seed: int, ce_weight: float | None) -> Path:
    """The cache folder of a model's entry."""
    return models_dir() / cache_key(spec(dataset, objective, get_profile(profile), seed, ce_weight))


def get_model(
    dataset: str,
    objective: str,
    profile: str | Profile | None = "quick",
    seed: int = 0,
    device: str | torch.device = "auto",
    ce_weight: float | None = None,
    progress: bool = True,
    precision: str = "auto",
) -> ConditionalGlow:
    """A trained conditional GLOW in eval mode: from the cache, or trained now and stored.

    `ce_weight` overrides the profile's cross-entropy weight w (reweighted/split only).
    `precision` is how a model missing from the cache trains (`config.resolve_precision`);
    it is not part of the key: a cached model is returned whatever precision trained it.
    The model's `info` holds its spec, training history, time and precision."""
    prof = get_profile(profile)
    model_spec = spec(dataset, objective, prof, seed, ce_weight)
    dev = resolve_device(device)
    check_choice("precision", precision, PRECISIONS)  # resolved by the training loop, if it trains
    folder = models_dir() / cache_key(model_spec)
    _note_use(folder)
    if (folder / "model.pt").exists():
        try:
            return _load_entry(folder, dev)
        except CorruptEntry as err:
            warnings.warn(f"corrupt cache entry {folder.name} ({err}); rebuilding it", stacklevel=2)
            shutil.rmtree(folder)
    _raise_if_diverged(folder)
    train_data = data.load(dataset, "train", seed=seed)  # fails before anything is written
    with entry_lock(folder):
        if (folder / "model.pt").exists():  # another process trained it while this one waited
            return _load_entry(folder, dev)
        _raise_if_diverged(folder)
        return _train_entry(folder, model_spec, prof, train_data, dev, progress, precision)


def _train_entry(
    folder: Path,
    model_spec: dict,
    prof: Profile,
    train_data: data.ImageDataset,
    dev: torch.device,
    progress: bool,
    precision: str,
) -> ConditionalGlow:
    """Train the model of `model_spec` into its entry `folder` (resuming its checkpoint) and load it."""
    checkpoint = folder / "checkpoint.pt"
    if distributed.is_main():  # under torchrun, rank 0 alone writes the entry
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "spec.json").write_text(json.dumps(model_spec, indent=2, sort_keys=True))
        _discard_if_unreadable(checkpoint)
    distributed.barrier()
    try:
        model, result = fit(
            model_spec,
            prof,
            train_data,
            checkpoint,
            dev,
            progress=progress,
            snapshot_dir=folder,
            precision=precision,
        )
    except TrainingDiverged as err:
        if distributed.is_main():
            record = {"message": str(err), "step": err.step, "history": err.history}
            (folder / DIVERGED).write_text(json.dumps(record, indent=1))
        raise
    info = {"spec": model_spec, "key": folder.name, "device": dev.type, "torch": str(torch.__version__), **result}
    info["processes"] = distributed.world()[1]
    if distributed.is_main():
        save_atomic({"config": model.config, "state_dict": model.cpu().state_dict(), "info": info}, folder / "model.pt")
        (folder / "model.sha256").write_text(_sha256(folder / "model.pt"))
        checkpoint.unlink(missing_ok=True)
    distributed.barrier()
    return _load_entry(folder, dev)


def get_snapshots(
    dataset: str,
    objective: str,
    profile: str | Profile | None = "quick",
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    precision: str = "auto",
) -> list[ConditionalGlow]:
    """The models saved along one training run at the profile's `snapshots` (fractions of
    its steps), weakest first, in eval mode; each `info` adds its "step". Trains the run
    (through `get_model`, cached like any model) when the cache lacks it."""
    prof = get_profile(profile)
    if not prof.scale.snapshots:
        raise ValueError(f"profile {prof.name!r} keeps no snapshots: give it snapshots=(fractions of training)")
    final = get_model(dataset, objective, prof, seed, device, progress=progress, precision=precision)
    folder = models_dir() / final.info["key"]
    where = next(final.parameters()).device
    models = []
    for step in prof.snapshot_steps(prof.steps_for(dataset)):
        path = folder / f"snapshot-{step}.pt"
        try:
            saved = load_safely(path, where)
            model = from_config(final.config)
            model.load_state_dict(saved["state_dict"])
        except Exception as err:
            raise CorruptEntry(f"cannot read snapshot {path} ({err}); delete {folder} to retrain the run") from err
        model.info = {**final.info, "step": step, "sha256": _sha256(path)}
        models.append(model.to(where).eval())
    return models
