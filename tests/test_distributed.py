"""torchrun with two gloo processes on the CPU: the run follows the one-process run on the
same global batches, resumes a one-process checkpoint, and leaves a usable cache entry."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studylib.training import loop, zoo

TORCHRUN = Path(sys.executable).with_name("torchrun")


def _interrupt_at(step_to_stop: int):
    def on_step(step: int) -> None:
        if step == step_to_stop:
            os.kill(os.getpid(), signal.SIGINT)

    return on_step


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not beside this Python")
def test_two_processes_resume_and_follow_the_one_process_run(home, monkeypatch, tmp_path):
    reference = zoo.get_model("mnist", "split", "smoke", progress=False)
    other = tmp_path / "two-processes"
    monkeypatch.setenv("STUDYLIB_HOME", str(other))
    monkeypatch.setattr(loop, "train", functools.partial(loop.train, on_step=_interrupt_at(20)))
    with pytest.raises(KeyboardInterrupt, match="step 20"):
        zoo.get_model("mnist", "split", "smoke", progress=False)  # one process, stopped half-way
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "studylib", "train"]
    cmd += ["--dataset", "mnist", "--objective", "split", "--profile", "smoke", "--device", "cpu"]
    env = {**os.environ, "STUDYLIB_HOME": str(other), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["cache_key"] == reference.info["key"]  # rank 0 alone prints
    monkeypatch.setattr(zoo, "fit", lambda *a, **k: pytest.fail("the two-process entry was not usable"))
    resumed = zoo.get_model("mnist", "split", "smoke", progress=False)
    assert resumed.info["processes"] == 2 and resumed.info["batch_per_process"] == 16
    ref_loss = [h["loss"] for h in reference.info["history"]]
    two_loss = [h["loss"] for h in resumed.info["history"]]
    assert two_loss == pytest.approx(ref_loss, rel=1e-3, abs=1e-3)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a.float(), b.float(), atol=1e-2, rtol=1e-2)
