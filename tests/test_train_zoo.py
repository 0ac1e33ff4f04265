"""Training and the model cache at the smoke profile: determinism, resume after Ctrl-C,
the NaN guard, corrupt entries, and bad input."""

from __future__ import annotations

import copy
import functools
import math
import os
import pickle
import signal
import subprocess
import sys

import pytest
import torch
from conftest import RunsCode

from studylib import data, storage
from studylib.benchmarks import ablation
from studylib.config import get_profile
from studylib.training import build, loop, zoo

SMOKE = get_profile("smoke")
# Smaller than smoke: these tests train a dozen models; 20 steps keep them to seconds.
TINY = SMOKE.replace(batch_size=16, train_steps={"mnist": 20, "cifar10": 20})


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_learning_rate_warms_up_then_decays():
    total = 100
    lrs = [loop.learning_rate(s, SMOKE, total) for s in range(total)]
    assert lrs[0] == pytest.approx(SMOKE.recipe.lr / SMOKE.scale.warmup_steps)
    assert lrs[SMOKE.scale.warmup_steps] == pytest.approx(SMOKE.recipe.lr)
    assert lrs[-1] == pytest.approx(SMOKE.recipe.lr * SMOKE.recipe.lr_gamma)


def test_same_seed_gives_the_same_model(home, monkeypatch, tmp_path):
    a = zoo.get_model("mnist", "split", TINY, seed=1, progress=False)
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path / "other"))
    b = zoo.get_model("mnist", "split", TINY, seed=1, progress=False)
    assert _states_equal(a, b)
    assert [h["loss"] for h in a.info["history"]] == [h["loss"] for h in b.info["history"]]
    c = zoo.get_model("mnist", "split", TINY, seed=2, progress=False)
    assert not _states_equal(a, c)


def test_cached_model_is_reused_not_retrained(home, monkeypatch):
    a = zoo.get_model("cifar10", "base", TINY, progress=False)
    monkeypatch.setattr(loop, "train", lambda *a, **k: pytest.fail("retrained a cached model"))
    b = zoo.get_model("cifar10", "base", TINY, progress=False)
    assert _states_equal(a, b) and not b.training


def _interrupt_at(step_to_stop: int):
    def on_step(step: int) -> None:
        if step == step_to_stop:
            os.kill(os.getpid(), signal.SIGINT)

    return on_step


@pytest.mark.parametrize(
    "change",
    [{}, {"gan_weight": 0.1}, {"adversarial_weight": 0.5, "adversarial_eps": 0.5, "adversarial_steps": 1}],
    ids=["plain", "flow-gan", "adversarial"],
)
def test_ctrl_c_keeps_a_checkpoint_and_resume_matches_an_uninterrupted_run(home, monkeypatch, tmp_path, change):
    profile = TINY.replace(**change)
    reference = zoo.get_model("mnist", "reweighted", profile, progress=False)
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path / "interrupted"))
    monkeypatch.setattr(loop, "train", functools.partial(loop.train, on_step=_interrupt_at(17)))
    with pytest.raises(KeyboardInterrupt, match="step 17"):
        zoo.get_model("mnist", "reweighted", profile, progress=False)
    (entry,) = storage.models_dir().iterdir()
    assert torch.load(entry / "checkpoint.pt", weights_only=False)["step"] == 17
    assert not (entry / "model.pt").exists()
    monkeypatch.setattr(loop, "train", loop.train)
    resumed = zoo.get_model("mnist", "reweighted", profile, progress=False)
    assert _states_equal(reference, resumed)
    assert [h["loss"] for h in resumed.info["history"]] == [h["loss"] for h in reference.info["history"]]
    assert not (entry / "checkpoint.pt").exists()


def test_nan_guard_stops_with_a_clear_message_and_keeps_the_last_checkpoint(home, monkeypatch):
    original = data.ImageDataset.batch
    calls = {"n": 0}

    def poisoned(self, index, generator, augment=True):
        calls["n"] += 1
        x, y = original(self, index, generator, augment)
        return (x * float("nan") if calls["n"] > 12 else x), y

    monkeypatch.setattr(data.ImageDataset, "batch", poisoned)
    with pytest.raises(loop.TrainingDiverged, match="non-finite loss or gradient at step 12.*checkpoint") as err:
        zoo.get_model("mnist", "base", TINY, progress=False)
    assert err.value.step == 12  # a study reports where it failed, and the curve up to there
    assert err.value.history and all(0 < h["step"] <= 12 for h in err.value.history)
    (entry,) = storage.models_dir().iterdir()
    state = torch.load(entry / "checkpoint.pt", weights_only=False)
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    # The divergence is recorded: asking again reports it at once, without training again.
    assert zoo.is_settled("mnist", "base", TINY, 0) and not zoo.is_cached("mnist", "base", TINY, 0)
    monkeypatch.setattr(loop, "train", lambda *a, **k: pytest.fail("trained again"))
    with pytest.raises(loop.TrainingDiverged, match="step 12.*delete it to train again") as again:
        zoo.get_model("mnist", "base", TINY, progress=False)
    assert again.value.step == 12 and again.value.history == err.value.history


def test_corrupt_cache_entry_is_reported_and_rebuilt(home):
    good = zoo.get_model("mnist", "base", TINY, progress=False)
    (entry,) = storage.models_dir().iterdir()
    weights = entry / "model.pt"
    weights.write_bytes(weights.read_bytes()[:-100] + b"x" * 100)
    with pytest.warns(UserWarning, match="corrupt cache entry"):
        rebuilt = zoo.get_model("mnist", "base", TINY, progress=False)
    assert _states_equal(good, rebuilt)


def test_corrupt_checkpoint_is_reported_and_training_restarts(home):
    reference = zoo.get_model("mnist", "base", TINY, seed=3, progress=False)
    (entry,) = storage.models_dir().iterdir()
    for f in entry.iterdir():
        f.unlink()
    (entry / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="corrupt checkpoint"):
        rebuilt = zoo.get_model("mnist", "base", TINY, seed=3, progress=False)
    assert _states_equal(reference, rebuilt)


def test_files_whose_pickle_would_run_code_are_refused_and_run_nothing(home, tmp_path):
    marker = tmp_path / "ran"
    zoo.get_model("mnist", "base", TINY, progress=False)
    (entry,) = storage.models_dir().iterdir()
    weights = entry / "model.pt"
    saved = torch.load(weights, weights_only=False)  # our own file, to build the hostile one from
    torch.save({**saved, "info": {**saved["info"], "note": RunsCode(marker)}}, weights)
    (entry / "model.sha256").write_text(zoo._sha256(weights))  # a matching checksum does not help
    with pytest.warns(UserWarning, match="corrupt cache entry"):
        zoo.get_model("mnist", "base", TINY, progress=False)  # refused, then trained again
    assert not marker.exists()
    # a resume from a checkpoint that would run code: refused by the loop, nothing runs
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"model": RunsCode(marker)}, checkpoint)
    model = build.build_model(
        "mnist", "base", TINY.arch_for("mnist"), TINY.recipe.model_kind, TINY.recipe.prior_options("base")
    )
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        loop.train(
            model,
            data.load("mnist", "train", subset=64),
            objective="base",
            profile=TINY,
            total_steps=4,
            ce_weight=0.0,
            seed=0,
            checkpoint=checkpoint,
            device=torch.device("cpu"),
            progress=False,
        )
    assert not marker.exists()
    # and get_model discards such a checkpoint before it resumes
    for f in entry.iterdir():
        f.unlink()
    torch.save({"model": RunsCode(marker)}, entry / "checkpoint.pt")
    with pytest.warns(UserWarning, match="corrupt checkpoint"):
        zoo.get_model("mnist", "base", TINY, progress=False)
    assert not marker.exists()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"dataset": "svhn"}, "unknown dataset 'svhn'; allowed values: mnist, cifar10, bg-mnist-0"),
        ({"objective": "hybrid"}, "unknown objective 'hybrid'; allowed values: base, reweighted, split"),
        ({"profile": "huge"}, "unknown profile 'huge'; allowed values: smoke, quick, paper"),
        ({"device": "tpu"}, "unknown device 'tpu'; allowed values: auto, cpu, cuda"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"ce_weight": -1.0}, "ce_weight must be a non-negative number"),
    ],
)
def test_bad_input_is_one_clear_error_and_writes_nothing(home, kwargs, message):
    args = {"dataset": "mnist", "objective": "base", "profile": TINY, **kwargs}
    with pytest.raises(ValueError, match=message):
        zoo.get_model(**args, progress=False)
    assert not home.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(home):
    with pytest.raises(ValueError, match="no CUDA GPU"):
        zoo.get_model("mnist", "base", TINY, device="cuda", progress=False)
    assert not home.exists()


def test_cache_key_changes_with_everything_that_determines_the_model():
    base = zoo.spec("mnist", "split", SMOKE, 0)
    keys = {
        zoo.cache_key(s)
        for s in [
            base,
            zoo.spec("mnist", "split", SMOKE, 1),
            zoo.spec("mnist", "reweighted", SMOKE, 0),
            zoo.spec("cifar10", "split", SMOKE, 0),
            zoo.spec("mnist", "split", get_profile("quick"), 0),
            zoo.spec("mnist", "split", SMOKE, 0, ce_weight=5.0),
        ]
    }
    assert len(keys) == 6
    assert zoo.cache_key(zoo.spec("mnist", "split", SMOKE, 0)) == zoo.cache_key(base)


def test_cosine_schedule_warms_up_then_falls_to_zero():
    cosine = SMOKE.replace(lr_schedule="cosine")
    total = 100
    lrs = [loop.learning_rate(s, cosine, total) for s in range(total + 1)]
    assert lrs[cosine.scale.warmup_steps] == pytest.approx(cosine.recipe.lr)
    after = lrs[cosine.scale.warmup_steps :]
    assert all(a >= b for a, b in zip(after, after[1:], strict=False)) and lrs[-1] == pytest.approx(0)
    assert lrs[(total + cosine.scale.warmup_steps) // 2] == pytest.approx(cosine.recipe.lr / 2, rel=0.05)


def test_ema_model_carries_the_moving_average_of_the_trained_weights(tmp_path):
    decay, steps = 0.5, 6
    ema_profile = TINY.replace(ema_decay=decay)
    train_data = data.load("mnist", "train", subset=64)

    def run(profile, on_step=None):
        torch.manual_seed(0)
        model = build.build_model("mnist", "split", profile.arch_for("mnist"))
        checkpoint = tmp_path / f"{profile.recipe.ema_decay}.pt"
        loop.train(
            model, train_data, objective="split", profile=profile, total_steps=steps, ce_weight=0.1,
            seed=0, checkpoint=checkpoint, device=torch.device("cpu"), progress=False,
            on_step=on_step and (lambda step: on_step(model)),
        )  # fmt: skip
        return model

    raw = []
    run(TINY, lambda m: raw.append([p.detach().clone() for p in m.parameters()]))
    expected = raw[0]
    for n, params in enumerate(raw[1:], start=1):
        rate = min(decay, (1 + n) / (10 + n))  # the ramp: 0.18, 0.25, 0.31, ... capped at decay
        expected = [rate * e + (1 - rate) * p for e, p in zip(expected, params, strict=True)]
    averaged = run(ema_profile)
    for mine, hand in zip(averaged.parameters(), expected, strict=True):
        torch.testing.assert_close(mine, hand)
    assert not all(torch.equal(a, b) for a, b in zip(averaged.parameters(), raw[-1], strict=True))


def test_a_variant_changes_the_recipe_and_the_key_reads_as_before():
    quick = get_profile("quick")
    variant = quick.replace(gan_weight=0.1, batch_size=8)  # one recipe field, one size
    assert variant.recipe.gan_weight == 0.1 and variant.scale.batch_size == 8
    assert quick.recipe.gan_weight == 0.0 and quick.scale.batch_size == 32  # the table's profile untouched
    settings = variant.as_dict("mnist")
    assert "recipe" not in settings and settings["gan_weight"] == 0.1 and settings["ce_weight"] == 0.1
    assert "gan_weight" not in quick.as_dict("mnist")  # at its default, out of the key as before
    with pytest.raises(ValueError, match="gan_weight"):
        quick.replace(gan_weight=-1.0)
    with pytest.raises(TypeError):
        quick.replace(no_such_setting=1)


def test_new_profile_settings_leave_existing_cache_keys_alone():
    quick = ablation.baseline(get_profile("quick"))  # the first quick recipe: every setting neutral
    settings = quick.as_dict("mnist")
    new = {
        "lr_schedule",
        "ema_decay",
        "augment_mnist",
        "snapshots",
        "model_kind",
        "adversarial_weight",
        "adversarial_eps",
    }
    assert not (new | {"adversarial_norm", "adversarial_steps"}) & settings.keys()
    assert zoo.cache_key(zoo.spec("mnist", "split", quick, 0)) == "mnist-split-quick-65bcbb558393"  # as before
    changed = quick.replace(ema_decay=0.999, augment_mnist=False).as_dict("mnist")
    assert changed["ema_decay"] == 0.999 and changed["augment_mnist"] is False
    assert zoo.cache_key(zoo.spec("mnist", "split", quick, 0)) != zoo.cache_key(
        {**zoo.spec("mnist", "split", quick, 0), "settings": changed}
    )
    with pytest.raises(ValueError, match="unknown lr_schedule 'linear'"):
        quick.replace(lr_schedule="linear")
    with pytest.raises(ValueError, match="ema_decay must be in"):
        quick.replace(ema_decay=1.0)


def test_no_crop_trains_on_the_images_as_they_are(monkeypatch, tmp_path):
    seen = []
    original = data.ImageDataset.batch

    def spy(self, index, generator, augment=True):
        seen.append(augment)
        return original(self, index, generator, augment)

    monkeypatch.setattr(data.ImageDataset, "batch", spy)
    for dataset, profile in [("mnist", TINY.replace(augment_mnist=False)), ("cifar10", TINY)]:
        model = build.build_model(dataset, "base", profile.arch_for(dataset))
        loop.train(
            model, data.load(dataset, "train", subset=64), objective="base", profile=profile, total_steps=2,
            ce_weight=0.0, seed=0, checkpoint=tmp_path / f"{dataset}.pt", device=torch.device("cpu"), progress=False,
        )  # fmt: skip
    assert seen == [False, False, True, True]


def test_per_level_widths_build_an_invertible_model():
    from studylib.config import Arch

    arch = Arch(2, 1, (8, 16))
    model = build.build_model("mnist", "split", arch).eval()
    widths = [level.flows[0].flows[2].net[0].out_channels for level in model.steps]
    assert widths == [8, 16]
    x = data.load("mnist", "test", subset=4).tensors()[0]
    with torch.no_grad():
        assert torch.allclose(model.inverse(model(x)[0]), x, atol=1e-4)
    assert arch.label() == "L2K1H8-16" and Arch(3, 8, 64).label() == "L3K8H64"
    with pytest.raises(ValueError, match="one width per level"):
        Arch(3, 8, (32, 64))
    for bad in (0, (8, -1)):
        with pytest.raises(ValueError, match="hidden widths must be positive"):
            Arch(2, 1, bad)


@pytest.mark.parametrize("kind", ["glow", "realnvp"])
def test_models_keep_their_convolutions_channels_last_with_the_same_numbers(kind):
    from studylib.config import Arch

    torch.manual_seed(0)
    model = build.build_model("mnist", "split", Arch(2, 2, 8), kind).eval()
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert not all(w.is_contiguous() for w in weights)
    plain = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    for layer in plain.modules():  # non-zero last layers, so that the couplings matter
        if isinstance(layer, torch.nn.Conv2d):
            torch.nn.init.normal_(layer.weight, std=0.05)
    model.load_state_dict(plain.state_dict())
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)  # kept on loading
    x = data.load("mnist", "test", subset=4).tensors()[0]
    with torch.no_grad():
        torch.testing.assert_close(model.log_prob(x), plain.log_prob(x), rtol=1e-5, atol=1e-3)


def test_snapshots_keep_the_weights_of_their_step_along_one_run(home):
    home.mkdir()
    profile = TINY.replace(snapshots=(0.25, 0.5, 1.0))
    assert profile.snapshot_steps(20) == [5, 10, 20]
    assert "snapshots" in profile.as_dict("mnist") and "snapshots" not in TINY.as_dict("mnist")
    seen = {}
    model = build.build_model("mnist", "split", profile.arch_for("mnist"))
    torch.manual_seed(0)
    loop.train(
        model, data.load("mnist", "train", subset=64), objective="split", profile=profile, total_steps=20,
        ce_weight=0.1, seed=0, checkpoint=home / "c.pt", device=torch.device("cpu"), progress=False,
        on_step=lambda step: seen.update({step: {k: v.clone() for k, v in model.state_dict().items()}}),
        snapshot_dir=home,
    )  # fmt: skip
    saved = torch.load(home / "snapshot-10.pt", weights_only=False)
    assert saved["step"] == 10
    assert all(torch.equal(saved["state_dict"][k], seen[10][k]) for k in seen[10])

    snaps = zoo.get_snapshots("mnist", "split", profile, progress=False)
    assert [m.info["step"] for m in snaps] == [5, 10, 20]
    assert _states_equal(snaps[-1], zoo.get_model("mnist", "split", profile, progress=False))
    assert not _states_equal(snaps[0], snaps[-1])


@pytest.mark.parametrize("fractions", [(0.5, 0.25), (0.0, 1.0), (1.5,)])
def test_snapshot_fractions_must_increase_within_training(fractions):
    with pytest.raises(ValueError, match="snapshots must be increasing"):
        TINY.replace(snapshots=fractions)


def test_snapshots_need_a_profile_that_keeps_them(home):
    with pytest.raises(ValueError, match="keeps no snapshots"):
        zoo.get_snapshots("mnist", "split", TINY)


def test_unconditional_realnvp_trains_through_the_cache_and_reloads_as_realnvp(home):
    profile = TINY.replace(model_kind="realnvp")
    model = zoo.get_model("mnist", "unconditional", profile, progress=False)
    assert type(model).__name__ == "RealNVP" and model.info["spec"]["ce_weight"] == 0.0
    x, _ = data.load("mnist", "test", subset=4).tensors()
    with torch.no_grad():
        ll = model.log_prob(x)
    assert ll.shape == (4, 1) and torch.isfinite(ll).all()
    again = zoo.get_model("mnist", "unconditional", profile, progress=False)  # from the cache
    assert type(again).__name__ == "RealNVP" and _states_equal(model, again)
    assert zoo.cache_key(zoo.spec("mnist", "unconditional", profile, 0)) != zoo.cache_key(
        zoo.spec("mnist", "unconditional", TINY, 0)
    )


def test_hybrid_adversarial_training_trains_on_attacked_images_too(home):
    profile = TINY.replace(adversarial_weight=0.5, adversarial_eps=1.0, adversarial_steps=2)
    model = zoo.get_model("mnist", "unconditional", profile, progress=False)
    history = model.info["history"]
    assert all(h["adv_bpd"] > h["bpd"] for h in history)  # the attack raises the NLL it trains on
    plain = zoo.get_model("mnist", "unconditional", TINY, progress=False)
    assert not _states_equal(model, plain)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"adversarial_weight": 1.5, "adversarial_eps": 1.0}, "adversarial_weight must be in"),
        ({"adversarial_weight": 0.5}, "needs adversarial_eps > 0"),
        ({"adversarial_norm": "l1"}, "unknown adversarial_norm"),
        ({"model_kind": "maf"}, "unknown model_kind"),
        ({"split_readout": "centre"}, "unknown split_readout"),
    ],
)
def test_bad_flow_or_adversarial_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        TINY.replace(**change)


def test_robust_prior_and_label_smoothing_train_through_the_cache_and_reload(home):
    profile = TINY.replace(prior_family="gaussian+cauchy", label_smoothing=0.1)
    model = zoo.get_model("mnist", "reweighted", profile, progress=False)
    assert model.prior.family == "gaussian+cauchy" and model.prior.smoothing == 0.1
    again = zoo.get_model("mnist", "reweighted", profile, progress=False)
    assert again.prior.family == "gaussian+cauchy" and _states_equal(model, again)
    assert zoo.cache_key(zoo.spec("mnist", "reweighted", profile, 0)) != zoo.cache_key(
        zoo.spec("mnist", "reweighted", TINY, 0)
    )
    with pytest.raises(ValueError, match="not split"):
        zoo.get_model("mnist", "split", profile, progress=False)
    assert not any(p.name.startswith("mnist-split") for p in (home / "models").iterdir())


def test_lowpass_readout_trains_through_the_cache_and_only_split_models_change_key(home):
    profile, corner = (TINY.replace(split_readout=r) for r in ("lowpass", "corner"))
    model = zoo.get_model("mnist", "split", profile, progress=False)
    again = zoo.get_model("mnist", "split", profile, progress=False)
    assert again.prior.readout == "lowpass" and again.prior.head == model.out_shapes[0]
    assert _states_equal(model, again)
    x, _ = data.load("mnist", "test", subset=4).tensors()
    torch.testing.assert_close(model.log_prob(x), again.log_prob(x))
    for objective, changes in [("split", True), ("reweighted", False), ("base", False)]:
        keys = {zoo.cache_key(zoo.spec("mnist", objective, p, 0)) for p in (corner, profile)}
        assert (len(keys) == 2) == changes


def test_flow_gan_trains_a_discriminator_beside_the_flow(home):
    profile = TINY.replace(gan_weight=0.1)
    model = zoo.get_model("mnist", "base", profile, progress=False)
    history = model.info["history"]
    assert all(math.isfinite(h["gan_generator"]) and math.isfinite(h["gan_discriminator"]) for h in history)
    assert not _states_equal(model, zoo.get_model("mnist", "base", TINY, progress=False))
    with pytest.raises(ValueError, match="gan_weight must be"):
        TINY.replace(gan_weight=-1.0)


def test_compiled_training_goes_through_torch_compile_and_is_another_cache_entry(home, monkeypatch):
    """`compile` trains through torch.compile (here dynamo with its eager backend: the real
    compiler takes minutes); the model is cached and reloads like any other, under its own key."""
    compiled, real_compile = [], torch.compile

    def trace(module):
        compiled.append(module)
        return real_compile(module, backend="eager")

    monkeypatch.setattr(torch, "compile", trace)
    fast = TINY.replace(compile=True)
    assert fast.as_dict("mnist")["compile"] is True and "compile" not in TINY.as_dict("mnist")
    model = zoo.get_model("mnist", "split", fast, progress=False)
    assert len(compiled) == 1 and all(math.isfinite(h["loss"]) for h in model.info["history"])
    assert zoo.get_model("mnist", "split", fast, progress=False).info["key"] == model.info["key"]
    assert len(compiled) == 1  # read from the cache, not trained again
    assert model.info["key"] != zoo.cache_key(zoo.spec("mnist", "split", TINY, 0))


TWO_PROCESSES = """
import functools, os, sys, time
from studylib.training import zoo

real = zoo.fit


def counted(*args, **kwargs):
    with open(sys.argv[1], "a") as log:
        log.write(f"{os.getpid()}\\n")
    time.sleep(5)  # hold the lock long enough for the other process to ask for the model
    return real(*args, **kwargs)


zoo.fit = counted
model = zoo.get_model("mnist", "base", "smoke", progress=False)
print(model.info["sha256"])
"""


def test_two_processes_asking_for_one_model_train_it_once(home, tmp_path):
    log = tmp_path / "trained.log"
    env = {**os.environ, "STUDYLIB_HOME": str(home), "OMP_NUM_THREADS": "1"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", TWO_PROCESSES, str(log)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=240) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in outputs]
    assert len(log.read_text().split()) == 1  # exactly one trained
    (first, _), (second, _) = outputs
    assert first.strip() == second.strip() != ""  # both ended with the same model
    assert "waiting for process" in "".join(err for _, err in outputs)  # the other one said whom it waited for


def test_a_lock_left_by_a_dead_process_is_taken_over(home, tmp_path):
    folder = storage.models_dir() / "some-entry"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\nfrom studylib.training import zoo\n"
            "with zoo.entry_lock(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(60)\n",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    holder.kill()  # dies holding the lock
    holder.wait()
    with zoo.entry_lock(folder):  # the operating system released it: taken at once
        assert (folder / zoo.LOCK).read_text().startswith(f"process {os.getpid()}")
