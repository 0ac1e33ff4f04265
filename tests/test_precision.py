"""Precision follows the hardware: bf16 only where it is native, fp32 elsewhere, forced
either way on request; a model's precision is recorded, not keyed, so one cache entry (and
one archive) serves every machine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from studylib import config, storage
from studylib.book.chapter import setup
from studylib.config import get_profile, resolve_precision
from studylib.studies import recipe
from studylib.training import archive, zoo

CPU = torch.device("cpu")
TINY = get_profile("smoke").replace(batch_size=8, train_steps={"mnist": 4, "cifar10": 4})


@pytest.fixture(params=[True, False], ids=["native", "emulated"])
def native(request, monkeypatch) -> bool:
    """bf16 native (as on Zen 4, AMX or a recent GPU) or emulated (AVX2), whatever this CPU is."""
    monkeypatch.setattr(config, "bf16_native", lambda device: request.param)
    return request.param


def test_auto_is_bf16_only_where_native_and_the_recipe_allows_it(native):
    assert resolve_precision("auto", CPU) == ("bf16" if native else "fp32")
    assert resolve_precision("auto", CPU, recipe_bf16=False) == "fp32"
    assert resolve_precision("fp32", CPU) == "fp32"


def test_forcing_bf16_where_it_is_emulated_warns_once(native, recwarn):
    assert resolve_precision("bf16", CPU) == "bf16"
    warned = [str(w.message) for w in recwarn if "bf16 forced" in str(w.message)]
    assert warned == ([] if native else [warned[0]]) and all("emulates it" in w for w in warned)


def test_a_bad_precision_is_refused_before_any_work(home):
    with pytest.raises(ValueError, match="unknown precision 'fp16'; allowed values: auto, fp32, bf16"):
        zoo.get_model("mnist", "split", TINY, progress=False, precision="fp16")
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        setup(precision="half")
    assert not home.exists()


@pytest.mark.parametrize("variables", [{"ATEN_CPU_CAPABILITY": "avx2"}, {"ONEDNN_MAX_CPU_ISA": "AVX2"}])
def test_the_avx2_variables_make_any_cpu_train_in_fp32(variables):
    """The variables that show an AVX2 CPU on any machine are honoured by the check."""
    code = "import torch; from studylib import config; print(config.resolve_precision('auto', torch.device('cpu')))"
    env = {**os.environ, **variables}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "fp32"


def test_precision_is_recorded_not_keyed(home, monkeypatch, recwarn):
    """A model trained in bf16 serves a machine that would train it in fp32 (and the other
    way round): same key, no training, its precision in the info, the listing and the archive."""
    monkeypatch.setattr(config, "bf16_native", lambda device: False)  # this machine: AVX2
    trained = zoo.get_model("mnist", "split", TINY, progress=False, precision="bf16")
    assert trained.info["precision"] == "bf16" and trained.info["key"] == zoo.cache_key(
        zoo.spec("mnist", "split", TINY, 0)
    )
    exported = archive.export(home / "models.tar.gz", [storage.models_dir() / trained.info["key"]])
    assert exported["entries"][0]["info"]["precision"] == "bf16"
    monkeypatch.setenv("STUDYLIB_HOME", str(home / "elsewhere"))
    archive.import_archive(home / "models.tar.gz")
    monkeypatch.setattr(zoo, "fit", lambda *a, **k: pytest.fail("retrained a model the archive holds"))
    for precision in config.PRECISIONS:
        loaded = zoo.get_model("mnist", "split", TINY, progress=False, precision=precision)
        assert loaded.info["precision"] == "bf16" and loaded.info["key"] == trained.info["key"]
    assert archive.trained_in(storage.models_dir() / trained.info["key"]) == "bf16 on cpu"


def test_entries_from_before_precision_was_recorded_read_as_their_profile_trained_them():
    settings = {"spec": {"settings": get_profile("quick").as_dict("mnist")}}
    assert zoo.trained_precision(settings) == "bf16"  # quick trained in bf16 everywhere then
    assert zoo.trained_precision({"spec": {"settings": get_profile("paper").as_dict("mnist")}}) == "fp32"
    assert zoo.trained_precision({**settings, "precision": "fp32"}) == "fp32"


def test_the_committed_quick_models_keep_their_keys():
    quick = get_profile("quick")
    keys = [zoo.cache_key(zoo.spec(d, "split", quick, 0)) for d in ("mnist", "cifar10")]
    assert keys == ["mnist-split-quick-59cd26ef082c", "cifar10-split-quick-c331c5a2cd98"]


def _row(seed: int, accuracy: float, bpd: float, precision: str | None) -> dict:
    lever = recipe.PRECISION_RECIPES[precision or "bf16"] + (f", seed {seed}" if seed else "")
    row = {"lever": lever, "change": {"seed": str(seed)}, "steps": 10_000, "minutes": 30.0}
    return {**row, "accuracy": accuracy, "bpd": bpd, **({"precision": precision} if precision else {})}


@pytest.mark.parametrize("shift, verdict", [(0.0, "within the seeds' spread"), (0.5, "beyond the seeds' spread")])
def test_the_precision_table_says_whether_fp32_moves_the_cells_beyond_the_seeds(monkeypatch, shift, verdict):
    bf16 = [_row(s, 98.0 + 0.1 * s, 1.15 + 0.02 * s, None) for s in range(3)]  # older rows: bf16
    fp32 = [_row(s, 98.05 + 0.1 * s, 1.16 + 0.02 * s + shift, "fp32") for s in range(2)]
    monkeypatch.setattr(recipe, "rows", lambda dataset, objective: bf16 + fp32)
    table = recipe.precision("mnist")
    assert [r[0] for r in table.rows] == ["bf16", "fp32"] and [r[2] for r in table.rows] == ["0, 1, 2", "0, 1"]
    accuracy, bits, paired = table.note.split("; ")
    assert "within the seeds' spread" in accuracy and verdict in bits
    assert paired.endswith(
        f"seed 0 +0.05 points, {0.01 + shift:+.3f} bits/dim, seed 1 +0.05 points, {0.01 + shift:+.3f} bits/dim"
    )


def test_a_resolved_device_travels_as_it_is():
    cpu = config.resolve_device("cpu")
    assert config.resolve_device(cpu) is cpu and config.resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            config.resolve_device(torch.device("cuda", 1))
    with pytest.raises(ValueError, match="device"):
        config.resolve_device("tpu")
