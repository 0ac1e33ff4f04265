"""The `studylib` command line as a user runs it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import torch

from studylib.cli import main

ONLY_STRONGER = (
    "--ce-weight, --hidden, --compile, --steps, --readout, --schedule, --seed and --precision apply to --stronger only"
)


def run(*args: str, home=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if home is not None:
        env["STUDYLIB_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "studylib", *args], capture_output=True, text=True, env=env)


def test_help_names_the_commands():
    out = run("--help")
    assert out.returncode == 0
    for word in ("train", "evaluate", "cache", "bench", "STUDYLIB_DATA", "smoke"):
        assert word in out.stdout


def test_unknown_choice_exits_non_zero_naming_the_allowed_values(home):
    out = run("train", "--dataset", "svhn", "--objective", "base", home=home)
    assert out.returncode != 0
    assert "invalid choice: 'svhn'" in out.stderr and "'mnist', 'cifar10'" in out.stderr
    assert not home.exists()


def test_missing_data_folder_says_how_to_set_it(home, tmp_path):
    env_data = os.environ.get("STUDYLIB_DATA")
    os.environ["STUDYLIB_DATA"] = str(tmp_path / "missing")
    try:
        out = run("train", "--dataset", "mnist", "--objective", "base", "--profile", "smoke", home=home)
    finally:
        if env_data is None:
            del os.environ["STUDYLIB_DATA"]
        else:
            os.environ["STUDYLIB_DATA"] = env_data
    assert out.returncode == 1
    assert "set STUDYLIB_DATA" in out.stderr and "Traceback" not in out.stderr
    assert not home.exists()


def test_train_then_bench_foolbox_then_cache_list_and_clear(home, tmp_path):
    out = run("train", "--dataset", "mnist", "--objective", "split", "--profile", "smoke", home=home)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert 0 <= result["accuracy"] <= 1 and result["bpd"] > 0 and result["n"] == 128
    _bench_foolbox_runs_chapter_4s_comparison_on(home, tmp_path / "foolbox.json")
    listed = run("cache", "list", home=home)
    assert result["cache_key"] in listed.stdout and "trained" in listed.stdout
    (home / "results").mkdir(exist_ok=True)
    (home / "results" / "test-ll-0123.pt").write_bytes(b"a memoised result")
    memoised = len(list((home / "results").iterdir()))
    assert run("cache", "clear", home=home).returncode == 1  # not a terminal: it asks for --yes
    cleared = run("cache", "clear", "--yes", home=home)
    assert "removed 1 cache entries" in cleared.stdout and f"and {memoised} memoised results" in cleared.stdout
    assert not list((home / "results").iterdir())
    assert "no trained models" in run("cache", "list", home=home).stdout


def _bench_foolbox_runs_chapter_4s_comparison_on(home, out):
    """`bench --foolbox` end to end on the model the cache holds (chapter 4's path)."""
    args = ("--profile", "smoke", "--images", "2", "--attack-steps", "2", "--out", str(out))
    done = run("bench", "--foolbox", *args, home=home)
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    names = [r["attack"] for r in record["boundary"] + record["cw"] + record["minimal_l2"]]
    assert names == [
        "foolbox BoundaryAttack",
        "studylib boundary_attack",
        "foolbox HopSkipJumpAttack",
        "foolbox L2CarliniWagnerAttack",
        "studylib cw_l2",
        "foolbox DDN",
        "foolbox FMN",
    ]
    assert all(r["images"] == 2 for r in record["cw"] + record["minimal_l2"])
    assert record["boundary"][2]["budget"] == "1 steps"  # HopSkipJump's steps scale with foolbox's (2 of 1000)
    assert "foolbox DDN" in done.stdout and f"rows in {out}" in done.stdout
    refused = run("bench", "--foolbox", "--profile", "smoke", "--images", "0", home=home)
    assert refused.returncode == 1 and "n_images and boundary_steps must be positive" in refused.stderr


def test_train_an_unconditional_flow_for_eq_4(home):
    out = run("train", "--dataset", "mnist", "--objective", "unconditional", "--profile", "smoke", home=home)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["accuracy"] is None and result["bpd"] > 0 and "-unconditional-smoke-" in result["cache_key"]


def test_bench_reports_images_per_second_with_its_precision_and_cpu():
    args = ("--levels", "2", "--steps", "1", "--batch-size", "8", "--iterations", "2", "--precision", "fp32")
    out = run("bench", *args, "--hidden", "8,16")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["train_images_per_s"] > 0 and result["eval_images_per_s"] > 0
    assert result["config"] == "mnist L2K1H8-16 batch 8" and result["precision"] == "fp32"
    assert result["cpu"].startswith(torch.backends.cpu.get_cpu_capability())


def test_bench_refuses_a_bad_size_in_one_line(capsys):
    for args, message in [
        (("--levels", "0"), "studylib: error: --levels, --steps and --batch-size must be positive integers"),
        (("--levels", "2", "--hidden", "8,8,8"), "must give one width per level (2)"),
        (("--hidden", "8,x"), "expected a width or widths like 32,64,64"),
    ]:
        with contextlib.suppress(SystemExit):  # argparse's refusals exit with status 2
            assert main(["bench", *args]) == 1
        stderr = capsys.readouterr().err
        assert message in stderr and "Traceback" not in stderr


def test_probe_appends_its_row_and_says_what_the_whole_run_would_take(home, tmp_path):
    out = tmp_path / "probe.json"
    args = ("--profile", "smoke", "--minutes", "1e-6", "--subset", "32", "--device", "cpu", "--out", str(out))
    for _ in range(2):
        done = run("probe", *args, home=home)
        assert done.returncode == 0, done.stderr
        assert "after 1 of 40 steps" in done.stdout and "the whole run: about" in done.stdout
    assert [r["steps"] for r in json.loads(out.read_text())] == [1, 1]
    assert not (home / "models").exists()


def test_bad_numbers_are_refused_before_any_training(home, capsys):
    for args, message in [
        (("train", "--ce-weight", "-1"), "ce_weight must be a non-negative number"),
        (("train", "--budget", "0"), "budget must be a positive number, got 0.0"),
        (("evaluate", "--budget", "inf"), "budget must be a positive number, got inf"),
        (("evaluate", "--subset", "0"), "--subset must be a positive number"),
        (("ablate", "--minutes", "0"), "--minutes must be positive"),
        (("ablate", "--levers", "faster"), "unknown lever 'faster'; allowed values: baseline"),
        (
            ("ablate", "--ce-weight", "0.3"),
            ONLY_STRONGER,
        ),
        (
            ("ablate", "--compile"),
            ONLY_STRONGER,
        ),
        (
            ("ablate", "--steps", "100"),
            ONLY_STRONGER,
        ),
        (
            ("ablate", "--readout", "lowpass"),
            ONLY_STRONGER,
        ),
        (
            ("ablate", "--schedule", "cosine"),
            ONLY_STRONGER,
        ),
        (("ablate", "--seed", "1"), ONLY_STRONGER),
        (("ablate", "--precision", "fp32"), ONLY_STRONGER),
        (("ablate", "--stronger", "--seed", "-1"), "seed must be a non-negative integer, got -1"),
        (("ablate", "--stronger", "--steps", "0"), "--steps must be a positive number of training steps, got 0"),
        (("ablate", "--stronger", "--hidden", "32", "64", "64"), "must give one width per level (2)"),
        (("ablate", "--stronger", "--hidden", "32", "0"), "hidden widths must be positive, got (32, 0)"),
        (("ablate", "--stronger", "--ce-weight", "-1"), "ce_weight must be a non-negative number"),
        (("probe", "--minutes", "0"), "minutes must be a positive number"),
        (("probe", "--minutes", "nan"), "minutes must be a positive number"),
        (("probe", "--subset", "0"), "test_subset must be a positive number"),
    ]:
        cmd = [*args, "--dataset", "mnist", "--objective", "split", "--profile", "smoke"]
        assert main(cmd) == 1, args  # in this process: the command line's own handling, without
        stderr = capsys.readouterr().err  # a torch import per case (the subprocess tests above)
        assert message in stderr and "Traceback" not in stderr
        assert not home.exists(), f"{args} wrote to the cache before refusing"
