"""Results ledger: each chapter records its key numbers beside the paper's as a small JSON
file, which the overview chapter gathers into one "paper vs ours" table.

Files go to $STUDYLIB_RESULTS, else the repository's book/results/ (the committed `quick`
run). `studylib book run` points STUDYLIB_RESULTS elsewhere, so a smoke run never
overwrites the committed results."""

from __future__ import annotations

import json
import os
from pathlib import Path

CHAPTERS = (
    "00_overview",
    "01_theory",
    "02_training",
    "03_likelihood",
    "04_attacks",
    "05_interpolations",
    "06_bg_mnist",
    "07_flow_robustness",
    "08_appendices",
)


# The committed `quick` run's results, in the repository.
COMMITTED = Path(__file__).resolve().parents[2] / "book" / "results"


def results_dir() -> Path:
    """Where ledger files are read and written."""
    value = os.environ.get("STUDYLIB_RESULTS")
    return Path(value) if value else COMMITTED


def claim(name: str, ours: float | str, paper: float | str | None = None, unit: str = "", note: str = "") -> dict:
    """One row of the results table: a quantity, our value, the paper's value (None if the
    paper gives none) and a short note (e.g. how our setting departs from the paper's)."""
    return {"name": name, "ours": ours, "paper": paper, "unit": unit, "note": note}


def record(chapter: str, claims: list[dict], *, profile: str, seed: int = 0, dataset: str = "-") -> Path:
    """Write the chapter's claims for one (dataset, profile, seed); returns the file's path."""
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; allowed values: {', '.join(CHAPTERS)}")
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{chapter}__{dataset}__{profile}__seed{seed}.json"
    entry = {"chapter": chapter, "dataset": dataset, "profile": profile, "seed": seed, "claims": claims}
    path.write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n")
    return path


def load_all(folder: Path | None = None) -> list[dict]:
    """Every ledger entry in `folder` (default: results_dir()), sorted by chapter and dataset."""
    folder = folder or results_dir()
    entries = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(entries, key=lambda e: (e["chapter"], e["dataset"], e["profile"], e["seed"]))


def table(entries: list[dict]) -> list[dict]:
    """Flat rows (chapter, dataset, profile, quantity, paper, ours, unit, note) for display;
    chapters without an entry get one row saying 'not yet run'."""
    rows = []
    for chapter in CHAPTERS[1:]:
        mine = [e for e in entries if e["chapter"] == chapter]
        if not mine:
            rows.append({"chapter": chapter, "dataset": "", "profile": "", "quantity": "not yet run"})
        for e in mine:
            for c in e["claims"]:
                rows.append(
                    {
                        "chapter": chapter,
                        "dataset": e["dataset"],
                        "profile": e["profile"],
                        "quantity": c["name"],
                        "paper": c["paper"],
                        "ours": c["ours"],
                        "unit": c["unit"],
                        "note": c["note"],
                    }
                )
    return rows


def markdown(rows: list[dict]) -> str:
    """The rows of `table` as a Markdown table (paper and ours side by side)."""
    lines = ["| chapter | dataset | profile | quantity | paper | ours | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ours = "" if "ours" not in r else f"{_fmt(r['ours'])} {r['unit']}".strip()
        paper = "" if "paper" not in r else f"{_fmt(r['paper'])} {r['unit'] if r['paper'] is not None else ''}".strip()
        cells = [r["chapter"], r["dataset"], r["profile"], r["quantity"], paper, ours, r.get("note", "")]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def timings_path(profile: str, folder: Path | None = None) -> Path:
    """Where `studylib book run` records each chapter's wall time and its kernel's peak
    memory at `profile` (in `folder`, default: results_dir())."""
    return (folder or results_dir()) / "bench" / f"book__{profile}.json"


def timings_markdown(profile: str) -> str:
    """The recorded book run at `profile` as a Markdown table, chapters in order, with the
    total; a sentence where none is recorded."""
    path = timings_path(profile)
    if not path.exists():
        return f"No `studylib book run --profile {profile}` recorded in {path.parent} yet."
    rows = sorted(json.loads(path.read_text()), key=lambda r: r["chapter"])
    lines = ["| chapter | wall time | peak memory |", "|---|---:|---:|"]
    lines += [f"| {r['chapter']} | {_duration(r['seconds'])} | {r['peak_mib'] / 1024:.1f} GiB |" for r in rows]
    peak = max(r["peak_mib"] for r in rows) / 1024
    lines.append(f"| all {len(rows)} | {_duration(sum(r['seconds'] for r in rows))} | {peak:.1f} GiB |")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
