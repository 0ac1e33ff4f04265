"""Results ledger: each chapter records the papers' claims it tests as a small JSON file:
our value with its 95 % interval and what it was computed over, the paper's value or
statement, and a verdict computed from them by one rule (`RULE`, `verdict`). The overview
gathers them into a scorecard and one "paper vs ours" table.

Files go to `storage.results_dir`: $STUDYLIB_RESULTS (a book run's folder), else under
$STUDYLIB_HOME; the committed `quick` run's, in book/results/, are read beside them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist

from statsmodels.stats.multitest import multipletests

from studylib import storage
from studylib.book import paper, tables
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
    "10_scale",
)


def read_recorded(path: str | Path) -> list:
    """The JSON rows at `path` (`storage.recorded`: the results folder's, else the committed
    ones); empty when none were recorded."""
    found = storage.recorded(path)
    return json.loads(found.read_text()) if found else []


# Verdicts, decided by `verdict` (one claim) and `decide` (the whole ledger) from each
# claim's interval; the overview states the rule.
QUANTITATIVE_VERDICTS = ("matches", "differs", "inconclusive")
DIRECTIONAL_VERDICTS = ("holds", "fails", "inconclusive")
Z = NormalDist().inv_cdf(0.975)  # the 95 % intervals' half-width in standard errors

# Equivalence margins per kind of quantity: (margin, why). Each is no wider than the
# smallest difference the paper itself reads as meaningful.
MARGINS = {
    "accuracy": (0.3, "Table 1's smallest gap between objectives: MNIST split over reweighted, 99.3 against 99.0 %"),
    "accuracy difference": (0.3, "the same, for appendix C's differences against the Gaussian prior"),
    "bits/dim": (0.03, "the smallest gap between Table 1's objectives the paper reads as a difference"),
    "attack rate": (7.0, "Table 2's smallest gap the paper reads: the boundary attack at 43 and 36 %"),
    "share of paths": (5.0, "a small fraction of the contrast section 4.4 draws (0.5 % on MNIST, 100 % on CIFAR-10)"),
}
TEST_IMAGES = 10_000  # the paper's test sets, over which its Tables 1, 3 and 4 report accuracy

RULE = (
    "A quantitative claim (a number the paper reports) *matches* when our 95 % interval lies "
    "inside the paper's value plus or minus a margin fixed in advance for its kind of quantity "
    "(the table below) widened by the paper's own uncertainty (half a unit of its last printed "
    "digit, and for an accuracy over its 10 000 test images a binomial 95 % half-width): an "
    "equivalence test, two one-sided tests at 2.5 % each. It *differs* when the interval lies "
    "wholly outside that band, and is *inconclusive* otherwise. A directional claim (an ordering "
    "the paper states in words) is measured as a difference in the claimed direction: it "
    "*holds* when the difference is above zero and *fails* when below, at a family-wise error "
    "rate of 5 % over all the ledger's orderings (Holm's correction of the two-sided p-values, "
    "read from each interval under a normal approximation), and is *inconclusive* otherwise. "
    "An exact check (a closed form or an extreme over the drawn points) is decided by its sign "
    "and takes no part in the correction. A claim that a gap closes with scale (chapter 10) "
    "*holds* when the 95 % interval of the fitted curve at the paper's budget meets the "
    "paper's band above, *fails* when that of the curve's asymptote lies wholly outside it, "
    "and is *inconclusive* otherwise (or when both hold: the fit then contradicts itself). "
    "A paper value marked as a misprint is shown but not counted."
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


def closes(
    name: str,
    extrapolated: float,
    interval: tuple[float, float],
    asymptote: tuple[float, float],
    paper: float,
    note: str = "",
    **measured: object,
) -> dict:
    """That a gap to the paper's number closes with the training budget: our fitted curve at
    the paper's budget, `extrapolated` with its 95 % `interval`, and the 95 % interval of the
    curve's `asymptote`; `measured` gives `quantitative`'s n, of, method, unit and source."""
    claim = quantitative(name, extrapolated, interval, paper, **measured) | {"kind": "scale", "note": note}
    return _checked(claim | {"asymptote_low": asymptote[0], "asymptote_high": asymptote[1]})


def _checked(c: dict) -> dict:
    if not c["low"] <= c["ours"] <= c["high"]:
        raise ValueError(f"{c['name']}: {c['ours']} lies outside its interval [{c['low']}, {c['high']}]")
    if c["n"] < 1:
        raise ValueError(f"{c['name']}: n must be >= 1, got {c['n']}")
    c["verdict"] = verdict(c)
    return c


def quantity(c: dict) -> str:
    """A quantitative claim's kind of quantity, which sets its margin (`MARGINS`)."""
    if c["unit"] == "bits/dim":
        return "bits/dim"
    if c["unit"] == "points":
        return "accuracy difference"
    if c["unit"] == "%":
        if c["of"].startswith("attacked images"):
            return "attack rate"
        if c["of"].startswith("interpolation pairs"):
            return "share of paths"
        return "accuracy"
    raise ValueError(f"{c['name']}: no margin for a quantity in {c['unit']!r}")


def paper_uncertainty(c: dict) -> float:
    """The paper value's own uncertainty: half a unit of its last printed digit (bits/dim are
    printed to two decimals at least), plus for an accuracy over the paper's 10 000 test
    images (Tables 1, 3 and 4) the binomial 95 % half-width. Table 2's and section 4.4's
    sample sizes are not stated, so they carry the rounding only."""
    text = repr(float(c["paper"])).rstrip("0").rstrip(".")
    decimals = len(text.split(".")[1]) if "." in text else 0
    if c["unit"] == "bits/dim":
        decimals = max(decimals, 2)
    error = 0.5 * 10.0**-decimals
    if quantity(c) == "accuracy" and "Table" in c["source"]:
        p = c["paper"] / 100
        error += 100 * Z * math.sqrt(p * (1 - p) / TEST_IMAGES)
    return error


def band(c: dict, scale: float = 1.0) -> tuple[float, float]:
    """The values a quantitative claim's interval must lie within to match: the paper's value
    plus or minus `scale` times its margin and its own uncertainty."""
    width = scale * MARGINS[quantity(c)][0] + paper_uncertainty(c)
    return c["paper"] - width, c["paper"] + width


def is_exact(c: dict) -> bool:
    """An exact check: a closed form or an extreme over the drawn points, not a 95 % interval."""
    return "exact" in c["method"] or c["low"] == c["high"]


def p_value(c: dict) -> float:
    """A directional claim's two-sided p-value for a zero difference, read from its 95 %
    interval under a normal approximation (the standard error is its half-width / 1.96)."""
    se = (c["high"] - c["low"]) / (2 * Z)
    if se == 0:
        return 0.0 if c["ours"] != 0 else 1.0
    return 2 * (1 - NormalDist().cdf(abs(c["ours"]) / se))


def detectable(c: dict) -> float:
    """The smallest difference the claim's data could detect: 2.8 standard errors (a two-sided
    test at 5 % with 80 % power), in the claim's unit."""
    return 2.8 * (c["high"] - c["low"]) / (2 * Z)


def verdict(c: dict, scale: float = 1.0) -> str:
    """The verdict the rule (`RULE`) gives one claim, before the correction over the ledger
    (which `decide` applies to the orderings): margins scaled by `scale`."""
    if "low" not in c:
        raise ValueError(f"{c['name']}: a claim without an interval (recorded before issue 32); re-run its chapter")
    if c.get("kind") == "quantitative":
        low, high = band(c, scale)
        if low <= c["low"] and c["high"] <= high:
            return "matches"
        return "differs" if c["high"] < low or c["low"] > high else "inconclusive"
    if c.get("kind") == "scale":
        low, high = band(c, scale)
        bounded = math.isfinite(c["low"]) and math.isfinite(c["high"])  # unbounded: no curve was fitted
        meets = bounded and c["low"] <= high and c["high"] >= low
        excluded = c["asymptote_high"] < low or c["asymptote_low"] > high
        return {(True, False): "holds", (False, True): "fails"}.get((meets, excluded), "inconclusive")
    if c.get("kind") == "directional":
        if c["low"] > 0:
            return "holds"
        return "fails" if c["high"] < 0 else "inconclusive"
    raise ValueError(f"{c['name']}: unknown kind {c.get('kind')!r}")


def misprint(entry: dict, c: dict) -> str | None:
    """Why the paper's value of this claim is taken as a misprint (`paper.MISPRINTS`), if it is."""
    return paper.MISPRINTS.get((entry["chapter"], entry["dataset"], c["name"]))


def decide(entries: list[dict], scale: float = 1.0) -> list[list[str]]:
    """Every claim's verdict under the rule, per entry and claim: quantitative ones by their
    band (margins times `scale`), misprints as 'misprint', orderings at a family-wise 5 % by
    Holm's correction over all of them (exact checks by their sign alone)."""
    verdicts = [[verdict(c, scale) for c in e["claims"]] for e in entries]
    tested = [
        (i, j)
        for i, e in enumerate(entries)
        for j, c in enumerate(e["claims"])
        if c["kind"] == "directional" and not is_exact(c)
    ]
    if tested:
        rejected = multipletests([p_value(entries[i]["claims"][j]) for i, j in tested], method="holm")[0]
        for (i, j), reject in zip(tested, rejected, strict=True):
            c = entries[i]["claims"][j]
            verdicts[i][j] = ("holds" if c["ours"] > 0 else "fails") if reject else "inconclusive"
    for i, e in enumerate(entries):
        for j, c in enumerate(e["claims"]):
            if misprint(e, c):
                verdicts[i][j] = "misprint"
    return verdicts


def describe(claims: list[dict]) -> Table:
    """The chapter's claims as a table: ours with its 95 % interval and what it was computed
    over, the paper's value (or 'says so' for an ordering), and the verdict."""
    rows = []
    for c in claims:
        paper = "says so" if c["kind"] == "directional" else _with_unit(c["paper"], c["unit"])
        rows.append(
            (
                c["name"],
                _with_unit(c["ours"], c["unit"]),
                _interval(c["low"], c["high"]),
                _count(c),
                paper,
                verdict(c),
            )
        )
    return Table(("claim", "ours", "95 % interval", "over", "paper", "verdict"), rows)


SCORE_COLUMNS = ("matches", "differs", "inconclusive", "holds", "fails", "inconclusive ")  # the last: orderings
# How the scorecard heads them: numbers, then orderings and chapter 10's "the gap closes with scale".
SCORE_HEADS = ("matches", "differs", "inconclusive", "holds", "fails", "inconclusive (orderings, scale)")


def scorecard(entries: list[dict], scale: float = 1.0) -> list[dict]:
    """Per chapter: how many of its numbers match, differ or are inconclusive, and how many of
    its orderings hold, fail or are inconclusive after the correction (`decide`), with the
    margins times `scale`; misprints are not counted."""
    decided = decide(entries, scale)
    out = []
    for chapter in CHAPTERS[1:]:
        counts = dict.fromkeys(SCORE_COLUMNS, 0)
        for e, verdicts in zip(entries, decided, strict=True):
            if e["chapter"] == chapter:
                for c, v in zip(e["claims"], verdicts, strict=True):
                    if v != "misprint":
                        counts[v + (" " if c["kind"] != "quantitative" and v == "inconclusive" else "")] += 1
        out.append({"chapter": chapter, **counts})
    return out


def scorecard_markdown(entries: list[dict], scale: float = 1.0) -> str:
    """The scorecard as a Markdown table, one row per chapter and the total: numbers
    (matches, differs, inconclusive), then orderings and scale claims (holds, fails, inconclusive)."""
    rows = scorecard(entries, scale)
    body = [(r["chapter"], *(r[k] for k in SCORE_COLUMNS)) for r in rows]
    body.append(("all", *(sum(r[k] for r in rows) for k in SCORE_COLUMNS)))
    return Table(("chapter", *SCORE_HEADS), body).markdown()


def margins_markdown() -> str:
    """The equivalence margins, one row per kind of quantity, with the reason for each."""
    return Table(("quantity", "margin", "why"), [(k, fmt(m), why) for k, (m, why) in MARGINS.items()]).markdown()


def sensitivity_markdown(entries: list[dict]) -> str:
    """The scorecard's totals with the margins halved, as chosen, and doubled."""
    rows = []
    for scale in (0.5, 1.0, 2.0):
        card = scorecard(entries, scale)
        rows.append((f"{scale:g} x", *(sum(r[k] for r in card) for k in SCORE_COLUMNS)))
    return Table(("margins", *SCORE_HEADS), rows).markdown()


def moved(entries: list[dict]) -> list[tuple[str, str, str, str]]:
    """The claims whose verdict the correction over the ledger changed: (chapter, claim, before, after)."""
    out = []
    for e, verdicts in zip(entries, decide(entries), strict=True):
        for c, after in zip(e["claims"], verdicts, strict=True):
            before = verdict(c)
            if before != after and after != "misprint":
                out.append((e["chapter"], c["name"], before, after))
    return out


def redecide(folder: Path | None = None) -> int:
    """Rewrite every recorded claim's verdict in `folder` (default: storage.results_dir()) by the
    current rule, after the rule changed; returns how many changed."""
    changed = 0
    for path in sorted((folder or storage.results_dir()).glob("*.json")):
        entry = json.loads(path.read_text())
        for c in entry["claims"]:
            new = verdict(c)
            changed += c.get("verdict") != new
            c["verdict"] = new
        path.write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n")
    return changed


def moved_markdown(entries: list[dict]) -> str:
    """`moved` as a Markdown table: the claims the correction over the ledger changed."""
    found = moved(entries)
    if not found:
        return "The correction changed no verdict."
    return Table(("chapter", "claim", "alone", "corrected"), found).markdown()


def record(
    chapter: str,
    claims: list[dict],
    *,
    profile: str,
    seed: int = 0,
    dataset: str = "-",
    numbers: dict[str, str] | None = None,
) -> Path:
    """Write the chapter's claims for one (dataset, profile, seed), and the figures its prose
    quotes (`numbers`, as glued) so that a run on another dataset can quote them; returns the
    file's path."""
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; allowed values: {', '.join(CHAPTERS)}")
    folder = storage.results_dir(profile)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{chapter}__{dataset}__{profile}__seed{seed}.json"
    entry = {"chapter": chapter, "dataset": dataset, "profile": profile, "seed": seed, "claims": claims}
    if numbers:
        entry["numbers"] = numbers
    path.write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n")
    return path


def quoted(c: dict, digits: int, unit: str = "", sign: bool = True) -> str:
    """A claim's value and interval as prose quotes it: "+0.48 bits/dim [+0.42, +0.53]"
    (`sign`: with its sign, as a difference), "29.3 % [24.4, 34.1]"."""
    shown = tables.signed_estimate if sign else tables.estimate
    return shown(c["ours"], c["low"], c["high"], digits).replace(" [", f"{unit} [", 1)


def load_all(folder: Path | None = None) -> list[dict]:
    """Every ledger entry in `folder`, sorted by chapter and dataset; by default the committed
    run's, each replaced by the results folder's file of the same name where it has one."""
    folders = [folder] if folder else [storage.COMMITTED, storage.results_dir()]
    found = {p.name: p for f in folders if f.is_dir() for p in sorted(f.glob("*.json"))}
    entries = [json.loads(p.read_text()) for p in found.values()]
    return sorted(entries, key=lambda e: (e["chapter"], e["dataset"], e["profile"], e["seed"]))


def table(entries: list[dict]) -> list[dict]:
    """Flat rows (chapter, dataset, profile, quantity, paper, ours, unit, the smallest
    detectable difference, the verdict after the correction, note) for display; chapters
    without an entry get one row saying 'not yet run'."""
    rows = []
    decided = {id(e): v for e, v in zip(entries, decide(entries), strict=True)}
    for chapter in CHAPTERS[1:]:
        mine = [e for e in entries if e["chapter"] == chapter]
        if not mine:
            rows.append({"chapter": chapter, "dataset": "", "profile": "", "quantity": "not yet run"})
        for e in mine:
            for c, v in zip(e["claims"], decided[id(e)], strict=True):
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
                        "verdict": v,
                        "detectable": detectable(c),
                        "note": misprint(e, c) or c["note"],
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
                fmt(round(r["detectable"], 3)) if "detectable" in r else "",
                r.get("verdict", ""),
                r.get("note", ""),
            )
        )
    columns = (
        "chapter",
        "dataset",
        "profile",
        "quantity",
        "paper",
        "ours",
        "95 % interval",
        "over",
        "detectable",
        "verdict",
        "note",
    )
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
    memory at `profile` (in `folder`, default: storage.results_dir())."""
    return (folder or storage.results_dir()) / "bench" / f"book__{profile}.json"


def timings_markdown(profile: str) -> str:
    """The recorded book run at `profile` as a Markdown table, chapters in order, with the
    total; a sentence where none is recorded."""
    path = storage.recorded(timings_path(profile))
    if path is None:
        return f"No `studylib book run --profile {profile}` recorded in {timings_path(profile).parent} yet."
    rows = sorted(json.loads(path.read_text()), key=lambda r: r["chapter"])
    body = [(r["chapter"], _duration(r["seconds"]), f"{r['peak_mib'] / 1024:.1f} GiB") for r in rows]
    peak = max(r["peak_mib"] for r in rows) / 1024
    body.append((f"all {len(rows)}", _duration(sum(r["seconds"] for r in rows)), f"{peak:.1f} GiB"))
    return Table(("chapter", "wall time", "peak memory"), body).markdown()


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
