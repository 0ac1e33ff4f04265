"""The peer benchmark: our GLOW and the same configuration built from normflows and FrEIA
(the bench extra), compared side by side; its last line is what scripts read."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch

from studylib.benchmarks import bench, reference_attacks
from studylib.config import Arch, cpu_capability
from studylib.measure import evaluate

pytest.importorskip("normflows")
pytest.importorskip("FrEIA")


@pytest.mark.parametrize("channels", [1, 3])
def test_peers_build_the_same_configuration(channels):
    arch = Arch(2, 2, 8)
    torch.manual_seed(0)
    contenders = [build(channels, arch) for build in bench.BUILDERS.values()]
    x, y = torch.rand(4, channels, 32, 32) - 0.5, torch.arange(4)
    ours = contenders[0].parameters
    for c in contenders:
        assert abs(c.parameters - ours) / ours < 0.02, (c.name, c.parameters, ours)
        c.module.train()
        nll = c.nll(x, y)
        assert nll.shape == (4,) and torch.isfinite(nll).all()
        nll.mean().backward()
        assert all(p.grad is not None for p in c.module.parameters() if p.requires_grad), c.name


def test_a_gpu_run_is_recorded_beside_the_cpu_one_and_cuda_without_a_gpu_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYLIB_RESULTS", str(tmp_path))
    assert bench.peers_path("paper").name == "peers__paper.json"
    assert bench.peers_path("paper", "cuda").name == "peers__paper__cuda.json"
    assert "No peer benchmark for smoke on cuda yet" in bench.peers_table("smoke", "cuda").markdown()
    assert "NVIDIA" in bench.peers_table("paper", "cuda").markdown()  # none here: the committed rows
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            bench.peers("smoke", iterations=1, repeats=1, device="cuda", progress=False)


def test_peers_table_shows_every_setting_and_one_config_line_per_dataset_when_they_differ(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYLIB_RESULTS", str(tmp_path))
    base = {"parameters": 1000, "train_bf16": None, "eval_fp32": 50.0, "best_setting": "fp32, NCHW"}
    rows = [
        {**base, "dataset": d, "model": m, "config": f"{d} arch", "train_fp32": t, "train_best": t}
        for d in ("mnist", "cifar10")
        for m, t in (("studylib", 100.0), ("FrEIA", 200.0))
    ]
    path = bench.peers_path("paper", "cuda")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"rows": rows, "speedups": bench.speedups(rows)}))
    table = bench.peers_table("paper", "cuda")
    assert not any("compiled" in c for c in table.columns) and len(table.rows) == 4
    assert table.rows[0] == ("mnist", "studylib", "1,000", 100, "fails", 50, 100, "fp32, NCHW")
    assert table.note.startswith("Images/s; mnist: mnist arch; cifar10: cifar10 arch; fp32 and bf16 with NCHW weights.")
    assert "mnist: ours over the faster peer 0.50x in float32, 0.50x each at its best." in table.note


def test_speedups_divide_by_the_faster_peer():
    rows = [
        {"dataset": "mnist", "model": "studylib", "train_fp32": 300.0, "train_best": 600.0},
        {"dataset": "mnist", "model": "normflows", "train_fp32": 200.0, "train_best": 200.0},
        {"dataset": "mnist", "model": "FrEIA", "train_fp32": 100.0, "train_best": 150.0},
    ]
    assert bench.speedups(rows) == {"mnist": {"float32": 1.5, "best": 3.0}}


def test_bench_peers_command_reports_and_records(tmp_path):
    out = tmp_path / "peers.json"
    cmd = [sys.executable, "-m", "studylib"]
    done = subprocess.run(
        cmd
        + ["bench", "--peers", "--profile", "smoke", "--iterations", "1", "--repeats", "1", "--batch-size", "4"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"train speedup over the faster peer: \d+\.\d\d× \(float32\), \d+\.\d\d× \(best\)", last)
    recorded = json.loads(out.read_text())
    assert {r["model"] for r in recorded["rows"]} == {"studylib", "normflows", "FrEIA"}
    assert set(recorded["speedups"]) == {"mnist", "cifar10"}
    for r in recorded["rows"]:  # the best setting is one of those measured, and at least as fast
        assert r["train_best"] >= max(r["train_fp32"], r["train_bf16"] or 0)
        assert re.fullmatch(r"(fp32|bf16), (NCHW|channels_last)", r["best_setting"])
        assert r["cpu"] == cpu_capability() and ", batch 4," in r["config"]  # --batch-size reaches the peers


def test_compiled_settings_are_measured_for_every_library_and_can_be_the_best(monkeypatch):
    """The plumbing of `--compile`, with torch.compile stubbed (compiling takes minutes; that
    our flow traces as one graph is tested in test_flows)."""
    pytest.importorskip("normflows")
    pytest.importorskip("FrEIA")
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda f: compiled.append(f) or f)
    assert bench.settings() == [(p, layout, False) for layout in bench.LAYOUTS for p in bench.PRECISIONS]
    assert bench.settings(compiled=True)[-2:] == [("fp32", "NCHW", True), ("bf16", "NCHW", True)]
    rows = bench.peers("smoke", iterations=1, repeats=1, batch_size=4, compiled=True, progress=False)
    assert {r["model"] for r in rows} == {"studylib", "normflows", "FrEIA"}
    assert len(compiled) == 2 * 2 * 3  # both datasets, both precisions, every library
    for r in rows:
        assert r["train_fp32_compiled"] > 0 and r["train_bf16_compiled"] > 0
        assert r["train_best"] >= max(r["train_fp32_compiled"], r["train_bf16_compiled"], r["train_fp32"])
        assert re.fullmatch(r"(fp32|bf16), (NCHW|channels_last)(, torch.compile)?", r["best_setting"])


def test_compile_without_peers_is_refused():
    done = subprocess.run([sys.executable, "-m", "studylib", "bench", "--compile"], capture_output=True, text=True)
    assert done.returncode == 1 and "--compile applies to --peers only" in done.stderr


def test_boundary_comparison_counts_both_attacks_on_the_same_images(home):
    pytest.importorskip("foolbox")
    from studylib import data
    from studylib.training import zoo

    model = zoo.get_model("mnist", "split", "smoke", progress=False)
    x, y = data.load("mnist", "test", subset=4).tensors()
    theirs, ours, hop = reference_attacks.boundary_vs_foolbox(model, x, y, eps=1.5, steps=20, hsj_steps=2)
    assert theirs["images"] == ours["images"] == hop["images"] == 4
    assert hop["attack"] == "foolbox HopSkipJumpAttack" and hop["images_scored"] >= 4 * 50  # one gradient estimate
    assert theirs["model_calls"] > 0 and theirs["images_scored"] >= 4 * 20
    assert ours["images_scored"] <= theirs["images_scored"] // 3 + 4  # a third of foolbox's queries
    assert 0 <= ours["success_within_eps"] <= 100


def test_cw_comparison_scores_both_attacks_alike(home):
    pytest.importorskip("foolbox")
    from studylib import data
    from studylib.attacks.detector import Detector
    from studylib.training import zoo

    model = zoo.get_model("mnist", "split", "smoke", progress=False)
    x, y = data.load("mnist", "test", subset=4).tensors()
    with torch.no_grad():
        ll = model.log_prob(x)
    nll = evaluate.nll_bpd(ll, model.n_dims)
    det = Detector.fit(nll, 1.0, model.n_dims)
    theirs, ours = reference_attacks.cw_vs_foolbox(model, x, y, 1.5, det, steps=5, search_steps=2, lr=0.01)
    assert theirs["attack"].startswith("foolbox") and ours["attack"] == "studylib cw_l2"
    for row in (theirs, ours):
        assert row["images"] == 4 and 0 <= row["undetected_within_eps"] <= row["fooled"] <= 100
        assert row["median_l2"] is None or row["median_l2"] > 0
        assert row["undetected_count"] == round(row["undetected_within_eps"] * 4 / 100)
