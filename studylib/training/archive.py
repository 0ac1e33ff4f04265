"""Trained models that travel: `export` writes chosen cache entries into one tar archive
with a manifest (each entry's key, spec, the sha256 of each file, where and how it was
trained); `import_archive` checks the whole archive before writing anything and writes
nothing when a check fails, naming the member and the reason."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from studylib.storage import load_safely, models_dir
from studylib.training import zoo

MANIFEST = "manifest.json"
ORIGIN = "origin.json"  # in an imported entry: the archive it came from, and when
FORMAT = 1
SKIPPED = (zoo.LOCK,)  # never carried: the lock belongs to the machine that trained


class ArchiveRefused(ValueError):
    """An archive failed a check; nothing was written."""


@dataclass(frozen=True)
class Selection:
    """Which cache entries a command acts on: all, or those of a profile / datasets /
    chapters (a chapter's entries are those it asked for when it last ran here)."""

    profile: str | None = None
    datasets: tuple[str, ...] = ()
    chapters: tuple[str, ...] = ()

    def entries(self) -> list[Path]:
        folder = models_dir()
        found = []
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            spec = _read_json(entry / "spec.json")
            if self.profile and spec.get("profile") != self.profile:
                continue
            if self.datasets and spec.get("dataset") not in self.datasets:
                continue
            if self.chapters and not set(self.chapters) & set(zoo.used_by(entry)):
                continue
            found.append(entry)
        return found


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(entry: Path) -> list[Path]:
    return sorted(f for f in entry.iterdir() if f.is_file() and f.name not in SKIPPED and not f.name.endswith(".tmp"))


def export(out: Path, entries: list[Path]) -> dict:
    """Write `entries` (trained ones only) and a manifest into the tar archive `out`; the manifest."""
    done = [e for e in entries if (e / "model.pt").exists()]
    if not done:
        raise ValueError("no trained models selected: nothing to export")
    manifest = {"format": FORMAT, "entries": []}
    for entry in done:
        info = load_safely(entry / "model.pt")["info"]
        manifest["entries"].append(
            {
                "key": entry.name,
                "spec": _read_json(entry / "spec.json"),
                "files": {f.name: _sha256(f.read_bytes()) for f in _files(entry)},
                "info": {
                    **{k: info.get(k) for k in ("steps", "torch", "device", "train_seconds", "processes")},
                    "precision": zoo.trained_precision(info),
                },
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        blob = json.dumps(manifest, indent=1).encode()
        member = tarfile.TarInfo(MANIFEST)
        member.size = len(blob)
        tar.addfile(member, io.BytesIO(blob))
        for entry in done:
            for f in _files(entry):
                tar.add(f, arcname=f"models/{entry.name}/{f.name}", recursive=False)
    os.replace(tmp, out)
    return manifest


def check(path: Path) -> tuple[dict, dict[str, dict[str, bytes]]]:
    """Every check of the archive, before anything is written: (manifest, files by entry).
    Raises `ArchiveRefused` naming the first member that fails and why."""
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 - the with below closes it
    except (tarfile.TarError, OSError) as err:
        raise ArchiveRefused(f"{path}: not a readable archive ({err})") from err
    with tar:
        members = tar.getmembers()
        for m in members:
            _check_member(m)
        by_name = {m.name: m for m in members}
        if MANIFEST not in by_name:
            raise ArchiveRefused(f"{MANIFEST}: missing")
        manifest = _parse_manifest(tar.extractfile(by_name[MANIFEST]).read())
        expected = {
            f"models/{e['key']}/{name}": (e["key"], name, digest)
            for e in manifest["entries"]
            for name, digest in e["files"].items()
        }
        files: dict[str, dict[str, bytes]] = {e["key"]: {} for e in manifest["entries"]}
        for m in members:
            if m.name == MANIFEST:
                continue
            if m.name not in expected:
                raise ArchiveRefused(f"{m.name}: not listed in the manifest")
            key, name, digest = expected[m.name]
            blob = tar.extractfile(m).read()
            if _sha256(blob) != digest:
                raise ArchiveRefused(f"{m.name}: sha256 differs from the manifest's")
            files[key][name] = blob
    for e in manifest["entries"]:
        _check_entry(e, files[e["key"]])
    return manifest, files


def _check_member(m: tarfile.TarInfo) -> None:
    """A member is a regular file at manifest.json or models/<key>/<file>, nothing else."""
    p = PurePosixPath(m.name)
    if not m.isfile():
        raise ArchiveRefused(f"{m.name}: not a regular file (links, folders and devices are refused)")
    if p.is_absolute() or ".." in p.parts or m.name.startswith("/") or "\\" in m.name:
        raise ArchiveRefused(f"{m.name}: lies outside its entry's folder")
    if m.name != MANIFEST and (len(p.parts) != 3 or p.parts[0] != "models"):
        raise ArchiveRefused(f"{m.name}: lies outside its entry's folder")


def _parse_manifest(blob: bytes) -> dict:
    try:
        manifest = json.loads(blob)
        assert manifest["format"] == FORMAT and isinstance(manifest["entries"], list)
        for e in manifest["entries"]:
            assert isinstance(e["key"], str) and isinstance(e["spec"], dict) and isinstance(e["files"], dict)
    except (ValueError, KeyError, TypeError, AssertionError) as err:
        raise ArchiveRefused(f"{MANIFEST}: not a studylib manifest of format {FORMAT}") from err
    return manifest


def _check_entry(entry: dict, files: dict[str, bytes]) -> None:
    """Its key is the one its spec gives (as get_model computes it), every listed file is
    there, and every model, checkpoint and snapshot loads without running code."""
    key = entry["key"]
    if "/" in key or key in (".", "..") or zoo.cache_key(entry["spec"]) != key:
        raise ArchiveRefused(f"models/{key}: the key does not match its spec (a file cannot pose as another model)")
    missing = set(entry["files"]) - set(files)
    if missing:
        raise ArchiveRefused(f"models/{key}/{sorted(missing)[0]}: listed in the manifest but missing")
    if "model.pt" not in files:
        raise ArchiveRefused(f"models/{key}/model.pt: missing (only trained models travel)")
    if "spec.json" in files and json.loads(files["spec.json"]) != entry["spec"]:
        raise ArchiveRefused(f"models/{key}/spec.json: differs from the manifest's spec")
    for name, blob in files.items():
        if name.endswith(".pt"):
            try:
                load_safely(io.BytesIO(blob))
            except Exception as err:  # noqa: BLE001 - any file that does not load safely is refused
                raise ArchiveRefused(f"models/{key}/{name}: does not load as plain tensors ({err})") from err


def import_archive(path: Path, replace: bool = False) -> tuple[list[str], list[str]]:
    """Check `path` entirely, then write its entries into the cache, each atomically; entries
    already there are kept unless `replace`. Returns (imported keys, kept keys)."""
    manifest, files = check(path)
    stamp = {"imported_from": str(Path(path).resolve()), "at": datetime.datetime.now().isoformat(timespec="seconds")}
    imported, kept = [], []
    for entry in manifest["entries"]:
        target = models_dir() / entry["key"]
        if (target / "model.pt").exists() and not replace:
            kept.append(entry["key"])
            continue
        tmp = target.with_name(target.name + ".importing")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, blob in files[entry["key"]].items():
            (tmp / name).write_bytes(blob)
        (tmp / ORIGIN).write_text(json.dumps(stamp))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        imported.append(entry["key"])
    return imported, kept


def trained_in(entry: Path) -> str:
    """How a trained entry was trained, as `cache list` shows it: "bf16 on cpu"."""
    info = load_safely(entry / "model.pt")["info"]
    return f"{zoo.trained_precision(info)} on {info.get('device', '?')}"


def origin(entry: Path) -> str:
    """Where an entry came from: 'trained here', or the archive it was imported from."""
    stamp = _read_json(entry / ORIGIN)
    return f"imported from {stamp['imported_from']} ({stamp['at']})" if stamp else "trained here"
