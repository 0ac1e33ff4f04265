"""Results ledger: each chapter records the papers' claims it tests as a small JSON file:
our value with its 95 % interval and what it was computed over, the paper's value or
statement, and a verdict computed from them by one rule (`RULE`, `verdict`). The overview
gathers them into a scorecard and one "paper vs ours" table.

Files go to $STUDYLIB_RESULTS, else the repository's book/results/ (the committed `quick`
run; another profile's run writes under build/results/<profile>/ instead)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from studylib.book.tables import Table, fmt

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


def results_dir(profile: str | None = None) -> Path:
    """Where ledger files are read and written: $STUDYLIB_RESULTS, else the committed run's
    folder, which only `quick` runs write; another profile's run writes under build/results/."""
    value = os.environ.get("STUDYLIB_RESULTS")
    if value:
        return Path(value)
    return COMMITTED if profile in (None, "quick") else COMMITTED.parents[1] / "build" / "results" / profile


def read_recorded(relative: str) -> list:
    """The JSON rows at `relative` in the results folder, else the committed ones (a run into
    an empty results folder still reads what was measured); empty when none were recorded."""
    found = next((p for p in (results_dir() / relative, COMMITTED / relative) if p.exists()), None)
    return json.loads(found.read_text()) if found else []


# Verdicts, decided by `verdict` from a claim's interval; the overview states the rule.
QUANTITATIVE_VERDICTS = ("matches", "differs")
DIRECTIONAL_VERDICTS = ("holds", "fails", "inconclusive")
RULE = (
    "A quantitative claim (a number the paper reports) *matches* when the paper's value lies "
    "inside our 95 % interval and *differs* otherwise (the gap is ours minus the paper's). A "
    "directional claim (an ordering the paper states in words) is measured as a difference in "
    "the claimed direction: it *holds* when the difference's 95 % interval lies wholly on the "
    "claimed side of zero, *fails* when it lies wholly on the other side, and is *inconclusive* "
    "otherwise."
)


def quantitative(
    name: str,
    ours: float,
    interval: tuple[float, float],
    paper: float,
    *,
    n: int,
    of: str,
    method: str,
    k: int | None = None,
    unit: str = "",
    source: str = "",
    note: str = "",
) -> dict:
    """A number the paper reports, beside ours with its 95 % interval over `n` `of` (and, for
    a rate, its count `k`), computed by `method`; `source` quotes where the paper says it."""
    return _checked(
        {
            "kind": "quantitative",
            "name": name,
            "ours": ours,
            "low": interval[0],
            "high": interval[1],
            "n": n,
            "of": of,
            "k": k,
            "method": method,
            "paper": paper,
            "unit": unit,
            "source": source,
            "note": note,
        }
    )


def directional(
    name: str,
    difference: float,
    interval: tuple[float, float],
    *,
    n: int,
    of: str,
    method: str,
    statement: str,
    unit: str = "",
    source: str = "",
    note: str = "",
) -> dict:
    """An ordering the paper states in words, measured as a `difference` that is positive
    when the statement is true, with its 95 % interval over `n` `of`."""
    return _checked(
        {
            "kind": "directional",
            "name": name,
            "ours": difference,
            "low": interval[0],
            "high": interval[1],
            "n": n,
            "of": of,
            "k": None,
            "method": method,
            "paper": statement,
            "unit": unit,
            "source": source,
            "note": note,
        }
    )


def _checked(c: dict) -> dict:
    if not c["low"] <= c["ours"] <= c["high"]:
        raise ValueError(f"{c['name']}: {c['ours']} lies outside its interval [{c['low']}, {c['high']}]")
    if c["n"] < 1:
        raise ValueError(f"{c['name']}: n must be >= 1, got {c['n']}")
    c["verdict"] = verdict(c)
    return c


def verdict(c: dict) -> str:
    """The verdict the rule (`RULE`) gives a claim (one made by `quantitative` or `directional`)."""
    if c.get("kind") == "quantitative":
        return "matches" if c["low"] <= c["paper"] <= c["high"] else "differs"
    if c.get("kind") == "directional":
        if c["low"] > 0:
            return "holds"
        return "fails" if c["high"] < 0 else "inconclusive"
    raise ValueError(f"{c['name']}: a claim without an interval (recorded before issue 32); re-run its chapter")


def describe(claims: list[dict]) -> Table:
    """The chapter's claims as a table: ours with its 95 % interval and what it was computed
    over, the paper's value (or 'says so' for an ordering), and the verdict."""
    rows = []
    for c in claims:
        paper = _with_unit(c["paper"], c["unit"]) if c["kind"] == "quantitative" else "says so"
        rows.append(
            (
                c["name"],
                _with_unit(c["ours"], c["unit"]),
                _interval(c["low"], c["high"]),
                _count(c),
                paper,
                c["verdict"],
            )
        )
    return Table(("claim", "ours", "95 % interval", "over", "paper", "verdict"), rows)


def scorecard(entries: list[dict]) -> list[dict]:
    """Per chapter: how many of its claims match / differ, hold / fail / are inconclusive."""
    out = []
    for chapter in CHAPTERS[1:]:
        counts = dict.fromkeys((*QUANTITATIVE_VERDICTS, *DIRECTIONAL_VERDICTS), 0)
        for e in entries:
            if e["chapter"] == chapter:
                for c in e["claims"]:
                    counts[verdict(c)] += 1
        out.append({"chapter": chapter, **counts})
    return out


def scorecard_markdown(entries: list[dict]) -> str:
    """The scorecard as a Markdown table, one row per chapter and the total."""
    rows = scorecard(entries)
    keys = (*QUANTITATIVE_VERDICTS, *DIRECTIONAL_VERDICTS)
    body = [(r["chapter"], *(r[k] for k in keys)) for r in rows]
    body.append(("all", *(sum(r[k] for r in rows) for k in keys)))
    return Table(("chapter", *keys), body).markdown()


def record(chapter: str, claims: list[dict], *, profile: str, seed: int = 0, dataset: str = "-") -> Path:
    """Write the chapter's claims for one (dataset, profile, seed); returns the file's path."""
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; allowed values: {', '.join(CHAPTERS)}")
    folder = results_dir(profile)
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
                        "interval": (c["low"], c["high"]),
                        "n": _count(c),
                        "unit": c["unit"],
                        "verdict": verdict(c),
                        "note": c["note"],
                    }
                )
    return rows


def markdown(rows: list[dict]) -> str:
    """The rows of `table` as a Markdown table: paper, ours with its 95 % interval, over what, verdict."""
    body = []
    for r in rows:
        ours = "" if "ours" not in r else _with_unit(r["ours"], r["unit"])
        paper = "" if "paper" not in r else _with_unit(r["paper"], r["unit"] if r["paper"] is not None else "")
        interval = _interval(*r["interval"]) if r.get("interval") else ""
        body.append(
            (
                r["chapter"],
                r["dataset"],
                r["profile"],
                r["quantity"],
                paper,
                ours,
                interval,
                r.get("n", ""),
                r.get("verdict", ""),
                r.get("note", ""),
            )
        )
    columns = ("chapter", "dataset", "profile", "quantity", "paper", "ours", "95 % interval", "over", "verdict", "note")
    return Table(columns, body).markdown()


def _with_unit(value: object, unit: str) -> str:
    return f"{fmt(value)} {unit}".strip()


def _interval(low: float, high: float) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"


def _count(c: dict) -> str:
    """'k of n units' for a rate, 'n units' otherwise."""
    return f"{c['k']} of {c['n']} {c['of']}" if c.get("k") is not None else f"{c['n']} {c['of']}"


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
    body = [(r["chapter"], _duration(r["seconds"]), f"{r['peak_mib'] / 1024:.1f} GiB") for r in rows]
    peak = max(r["peak_mib"] for r in rows) / 1024
    body.append((f"all {len(rows)}", _duration(sum(r["seconds"] for r in rows)), f"{peak:.1f} GiB"))
    return Table(("chapter", "wall time", "peak memory"), body).markdown()


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
