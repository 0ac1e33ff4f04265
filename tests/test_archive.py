"""Trained models that travel: export, import with every check refusing a hostile archive
before anything is written, the cache listing where models came from, and a cache clear
that selects and asks."""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import subprocess
import sys
import tarfile

import pytest
import torch
from conftest import RunsCode

from studylib import storage
from studylib.cli import main
from studylib.config import get_profile, resolve_precision
from studylib.training import archive, zoo

TINY = get_profile("smoke").replace(batch_size=16, train_steps={"mnist": 10, "cifar10": 10})


def _cli(*args: str, home: pathlib.Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {"STUDYLIB_HOME": str(home), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "studylib", "cache", *args], capture_output=True, text=True, env=env, input=stdin
    )


@pytest.fixture
def exported(home, tmp_path):
    """One trained tiny model, exported: (its key, the archive, the model's state)."""
    model = zoo.get_model("mnist", "base", TINY, progress=False)
    out = tmp_path / "models.tar.gz"
    archive.export(out, archive.Selection().entries())
    return model.info["key"], out, model.state_dict()


def _members(path: pathlib.Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def _write(path: pathlib.Path, members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> pathlib.Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        for info in extra:
            tar.addfile(info)
    return path


def _manifest(members: dict[str, bytes]) -> dict:
    return json.loads(members[archive.MANIFEST])


def _refused(path: pathlib.Path, reason: str) -> None:
    before = sorted(p.name for p in storage.models_dir().iterdir())
    with pytest.raises(archive.ArchiveRefused, match=reason):
        archive.import_archive(path, replace=True)
    assert sorted(p.name for p in storage.models_dir().iterdir()) == before  # nothing written


def test_export_then_import_into_a_fresh_cache_needs_no_training(exported, tmp_path, monkeypatch):
    key, out, state = exported
    manifest = _manifest(_members(out))
    (entry,) = manifest["entries"]
    assert entry["key"] == key and entry["spec"]["profile"] == "smoke" and "model.pt" in entry["files"]
    assert entry["info"]["steps"] == 10 and entry["info"]["device"] == "cpu" and entry["info"]["torch"]
    fresh = tmp_path / "fresh"
    monkeypatch.setenv("STUDYLIB_HOME", str(fresh))
    imported, kept = archive.import_archive(out)
    assert imported == [key] and kept == []
    monkeypatch.setattr(zoo, "fit", lambda *a, **k: pytest.fail("trained instead of using the import"))
    model = zoo.get_model("mnist", "base", TINY, progress=False)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert archive.origin(storage.models_dir() / key).startswith(f"imported from {out.resolve()}")
    assert archive.import_archive(out) == ([], [key])  # already there: kept
    assert archive.import_archive(out, replace=True) == ([key], [])


def test_members_outside_their_entry_are_refused(exported, tmp_path):
    key, out, _ = exported
    members = _members(out)
    name = f"models/{key}/model.pt"
    for bad in (f"/abs/{key}/model.pt", f"models/{key}/../../escape.pt", "models/model.pt"):
        moved = {**{k: v for k, v in members.items() if k != name}, bad: members[name]}
        _refused(_write(tmp_path / "bad.tar.gz", moved), "lies outside its entry's folder")
    for kind in (tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.DIRTYPE):
        odd = tarfile.TarInfo(f"models/{key}/odd")
        odd.type, odd.linkname = kind, "/etc/passwd"
        _refused(_write(tmp_path / "odd.tar.gz", members, [odd]), "not a regular file")


def test_a_file_that_differs_from_the_manifest_is_refused(exported, tmp_path):
    key, out, _ = exported
    members = _members(out)
    members[f"models/{key}/spec.json"] = members[f"models/{key}/spec.json"].replace(b"smoke", b"quick")
    _refused(_write(tmp_path / "bad.tar.gz", members), "sha256 differs from the manifest's")
    members = _members(out)
    members[f"models/{key}/extra.pt"] = b"unlisted"
    _refused(_write(tmp_path / "extra.tar.gz", members), "not listed in the manifest")
    members = _members(out)
    del members[archive.MANIFEST]
    _refused(_write(tmp_path / "none.tar.gz", members), "manifest.json: missing")


def test_a_model_posing_as_another_is_refused(exported, tmp_path):
    key, out, _ = exported
    members = _members(out)
    manifest = _manifest(members)
    other = zoo.cache_key({**manifest["entries"][0]["spec"], "seed": 7})
    renamed = {n.replace(key, other): b for n, b in members.items() if n != archive.MANIFEST}
    manifest["entries"][0]["key"] = other  # the file claims the seed-7 model's folder
    renamed[archive.MANIFEST] = json.dumps(manifest).encode()
    _refused(_write(tmp_path / "pose.tar.gz", renamed), "the key does not match its spec")


def test_a_model_file_that_would_run_code_is_refused_and_runs_nothing(exported, tmp_path):
    key, out, _ = exported
    marker = tmp_path / "ran"
    members = _members(out)
    buffer = io.BytesIO()
    torch.save({"config": {}, "state_dict": {}, "info": {"payload": RunsCode(marker)}}, buffer)
    members[f"models/{key}/model.pt"] = buffer.getvalue()
    manifest = _manifest(members)
    manifest["entries"][0]["files"]["model.pt"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    members[archive.MANIFEST] = json.dumps(manifest).encode()
    _refused(_write(tmp_path / "code.tar.gz", members), "does not load as plain tensors")
    assert not marker.exists()


def test_the_command_line_refuses_in_one_line_and_clear_selects_and_asks(exported, tmp_path, capsys):
    key, out, _ = exported
    home = storage.models_dir().parent
    members = _members(out)
    members[f"models/{key}/spec.json"] = b"{}"
    bad = _write(tmp_path / "bad.tar.gz", members)
    done = _cli("import", str(bad), home=home)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "sha256 differs" in done.stderr
    assert "Traceback" not in done.stderr
    refused = _cli("clear", home=home)  # not a terminal, no --yes
    assert refused.returncode == 1 and "add --yes" in refused.stderr and (storage.models_dir() / key).exists()
    # The rest in this process (the same command line, without a torch import per call):
    assert main(["cache", "list"]) == 0
    listed = capsys.readouterr().out
    trained = f"trained ({resolve_precision('auto', torch.device('cpu'))} on cpu)"  # bf16 where native
    assert key in listed and "trained here" in listed and trained in listed
    assert main(["cache", "export", "--out", str(tmp_path / "none.tar.gz"), "--datasets", "cifar10"]) == 1
    assert main(["cache", "clear", "--datasets", "cifar10", "--yes"]) == 0
    assert "0 entries" in capsys.readouterr().out and (storage.models_dir() / key).exists()
    assert main(["cache", "clear", "--profile", "smoke", "--yes"]) == 0
    assert "removed 1 cache entries" in capsys.readouterr().out
    assert not (storage.models_dir() / key).exists()


def test_a_chapter_selects_the_models_it_used(home, monkeypatch):
    monkeypatch.setenv("STUDYLIB_CHAPTER", "04_attacks")
    zoo.get_model("mnist", "base", TINY, progress=False)
    monkeypatch.setenv("STUDYLIB_CHAPTER", "02_training")
    zoo.get_model("mnist", "base", TINY, progress=False)
    (entry,) = archive.Selection().entries()
    assert zoo.used_by(entry) == ["02_training", "04_attacks"]
    assert archive.Selection(chapters=("04_attacks",)).entries() == [entry]
    assert archive.Selection(chapters=("05_interpolations",)).entries() == []
