"""`studylib probe`: a profile's run trained for a time budget, scored, and projected."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from studylib import storage
from studylib.benchmarks import probe
from studylib.config import cpu_capability, get_profile, resolve_precision
from studylib.training.loop import learning_rate


def test_a_spent_budget_stops_the_run_at_its_own_schedule_and_caches_nothing(home):
    row = probe.probe("mnist", "split", "smoke", minutes=1e-6, device="cpu", test_subset=64, progress=False)
    smoke = get_profile("smoke")
    assert row["steps"] == 1 and row["total_steps"] == smoke.scale.train_steps["mnist"]
    assert row["lr"] == learning_rate(0, smoke, row["total_steps"])  # the full run's warm-up, not a shorter one
    assert row["epochs"] == pytest.approx(smoke.scale.batch_size / 60_000, abs=1e-3)
    assert row["n_test"] == 64 and 0 <= row["accuracy"] <= 100 and row["bpd"] > 0
    whole = row["total_steps"] * smoke.scale.batch_size / row["steady_images_per_s"] / 3600
    assert row["projected_hours"] == pytest.approx(whole, abs=0.01) and row["peak_memory_gib"] > 0
    assert not (home / "models").exists()


def test_a_budget_longer_than_the_run_trains_it_all(home):
    row = probe.probe("mnist", "base", "smoke", minutes=60, device="cpu", test_subset=64, progress=False)
    assert row["steps"] == row["total_steps"] == 40
    assert row["steady_images_per_s"] > 0 and row["train_seconds"] < 60 * 60  # within its budget
    assert row["precision"] == resolve_precision("auto", torch.device("cpu")) and row["cpu"] == cpu_capability()


def test_table_reads_the_recorded_rows_or_says_how_to_make_them(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYLIB_RESULTS", str(tmp_path))
    assert "No probe of `smoke` on cuda yet: run `studylib probe" in probe.table("smoke", "cuda").markdown()
    committed = probe.table("paper", "cuda")  # none in this results folder: the committed rows
    assert committed.rows and "NVIDIA" in committed.rows[0][1]
    row = {
        "dataset": "mnist", "objective": "split", "arch": "L4K12H128", "batch_size": 64, "device_name": "a GPU",
        "train_seconds": 150.0, "steps": 775, "total_steps": 140550, "epochs": 0.83, "steady_images_per_s": 329.1,
        "peak_memory_gib": 1.26, "accuracy": 73.32, "bpd": 2.5616, "projected_hours": 7.59,
    }  # fmt: skip
    path = probe.results_path("paper", "cuda")
    assert path.parent == storage.results_dir() / "bench"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps([row]))
    table = probe.table("paper", "cuda").markdown().splitlines()
    assert len(table) == 3
    assert table[2] == (
        "| mnist split, L4K12H128, batch 64 | a GPU, fp32 | 2.5 | 775 of 140,550 (0.83) | 329 | 1.26 GiB | 73.3 % "
        "| 2.562 | 7.6 h |"
    )  # a row from before the precision was recorded: `paper` trains in fp32
    path.write_text(json.dumps([{**row, "precision": "bf16"}]))
    assert "| a GPU, bf16 |" in probe.table("paper", "cuda").markdown()


def test_the_gpu_check_script_parses_and_runs_the_probe_at_paper_scale():
    script = Path(__file__).resolve().parents[1] / "tools" / "gpu_checks.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "studylib probe --profile paper" in text and "bench --peers --profile paper --device cuda" in text
