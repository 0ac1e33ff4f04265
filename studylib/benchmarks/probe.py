"""A profile's training run probed for a wall-clock budget on this machine: its throughput,
peak memory and where the run stands after the budget (test accuracy and bits/dim), and the
hours the whole run would take. Made for the `paper` profile on a GPU, where one full run
is days of a lent machine's time but a few minutes tell what it costs."""

from __future__ import annotations

import json
import math
import resource
import tempfile
from pathlib import Path

import torch

from studylib import data, storage
from studylib.book.tables import Table
from studylib.config import PRECISIONS, check_choice, cpu_capability, device_label, get_profile, resolve_device
from studylib.measure import evaluate
from studylib.training.loop import fit
from studylib.training.zoo import spec


def results_path(profile: str, device: str) -> Path:
    """Where `studylib probe` appends its rows (the ledger folder's bench/)."""
    return storage.results_dir() / "bench" / f"probe__{profile}__{device}.json"


def peak_memory_gib(device: torch.device) -> float:
    """Peak GPU memory allocated by torch on `device`, or the process's peak resident memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def probe(
    dataset: str = "mnist",
    objective: str = "split",
    profile: str = "paper",
    minutes: float = 3.0,
    device: str = "auto",
    seed: int = 0,
    test_subset: int | None = None,
    progress: bool = True,
    precision: str = "auto",
) -> dict:
    """Train `profile`'s model from scratch for `minutes` of training time, at the full
    run's learning-rate schedule and in `precision` (`config.resolve_precision`), then score
    it on the test set (all of it, or a seeded `test_subset`). Nothing is cached: the probe's
    checkpoint lives in a temporary folder. The row records the precision and the CPU's
    vector instructions as torch dispatches them."""
    if not (minutes > 0 and math.isfinite(minutes)):
        raise ValueError(f"minutes must be a positive number, got {minutes}")
    if test_subset is not None and test_subset < 1:
        raise ValueError(f"test_subset must be a positive number of test images, got {test_subset}")
    prof = get_profile(profile)
    model_spec = spec(dataset, objective, prof, seed)  # refuses a bad dataset or objective
    dev = resolve_device(device)
    check_choice("precision", precision, PRECISIONS)
    train_data = data.load(dataset, "train", seed=seed)
    test = data.load(dataset, "test", subset=test_subset, seed=seed)
    total = prof.steps_for(dataset)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with tempfile.TemporaryDirectory() as folder:
        model, result = fit(
            model_spec,
            prof,
            train_data,
            Path(folder) / "checkpoint.pt",
            dev,
            progress=progress,
            snapshot_dir=Path(folder),
            budget_seconds=60 * minutes,
            precision=precision,
        )
    steps, seconds, history = result["steps"], result["train_seconds"], result["history"]
    rate = steps * prof.scale.batch_size / seconds
    # The steady rate leaves out the first logged window (warm-up: allocator, kernel choice).
    first, last = history[0], history[-1]
    if last["step"] > first["step"]:
        steady = (last["step"] - first["step"]) * prof.scale.batch_size / (last["seconds"] - first["seconds"])
    else:
        steady = rate
    metrics = evaluate.evaluate(model, test, prof.scale.eval_batch_size, progress)
    return {
        "dataset": dataset,
        "objective": objective,
        "profile": profile,
        "arch": prof.arch_for(dataset).label(),
        "batch_size": prof.scale.batch_size,
        "device": dev.type,
        "device_name": device_label(dev),
        "torch": torch.__version__,
        "precision": result["precision"],
        "cpu": cpu_capability(),
        "minutes": minutes,
        "steps": steps,
        "total_steps": total,
        "epochs": round(steps * prof.scale.batch_size / len(train_data), 3),
        "lr": last["lr"],
        "train_seconds": round(seconds, 1),
        "images_per_s": round(rate, 1),
        "steady_images_per_s": round(steady, 1),
        "projected_hours": round(total * prof.scale.batch_size / steady / 3600, 2),
        "peak_memory_gib": round(peak_memory_gib(dev), 2),
        "peak_memory_of": "GPU, allocated by torch" if dev.type == "cuda" else "process, resident",
        "accuracy": round(100 * metrics["accuracy"], 2),
        "bpd": round(metrics["bpd"], 4),
        "n_test": metrics["n"],
        "final_train_bpd": round(last["bpd"], 4),
    }


def table(profile: str = "paper", device: str = "cuda") -> Table:
    """The rows `studylib probe` recorded for `profile` on `device`, as a table."""
    path = storage.recorded(results_path(profile, device))
    columns = (
        "model",
        "device",
        "minutes",
        "steps (epochs)",
        "images/s",
        "peak memory",
        "accuracy",
        "bits/dim",
        "whole run",
    )
    if path is None:
        missing = f"No probe of `{profile}` on {device} yet: run `studylib probe --profile {profile}`."
        return Table(columns, note=missing)
    rows = [
        (
            f"{r['dataset']} {r['objective']}, {r['arch']}, batch {r['batch_size']}",
            f"{r['device_name']}, {r.get('precision', 'fp32')}",  # rows before it was recorded: `paper`, fp32
            f"{r['train_seconds'] / 60:.1f}",
            f"{r['steps']:,} of {r['total_steps']:,} ({r['epochs']:.2f})",
            f"{r['steady_images_per_s']:.0f}",
            f"{r['peak_memory_gib']:.2f} GiB",
            f"{r['accuracy']:.1f} %",
            f"{r['bpd']:.3f}",
            f"{r['projected_hours']:.1f} h",
        )
        for r in json.loads(path.read_text())
    ]
    return Table(columns, rows)
