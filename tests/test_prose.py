"""The chapters' prose against the run: measured numbers come from the notebook's outputs
({glue:text}`name`, stored by `chapter.glue`), and the code a chapter shows is included from
the package, so neither can drift from what ran."""

from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))

# Numbers the prose may type: settings and definitions, not measurements.
CONSTANTS = {
    "95 %",  # the confidence of every interval
    "78.6 %",  # CIFAR-10's recall in the paper's detector
    "1.5",  # MNIST's epsilon
    "0.129",  # 33/255, CIFAR-10's epsilon
    "0.1",  # epsilon = delta = 0.1 in chapter 1, w = 0.1
    "2.3",  # log 10 nats
    "0.5",  # an AUROC at chance
    "0.3",  # w = 0.3, a cross-entropy weight
}

# Hand-typed measured numbers still in each chapter's prose, to be glued when the chapter
# is next re-run at `quick` (its models are in the cache). The test asks for the exact
# count, so gluing a number means lowering it here; a chapter at 0 is done.
HAND_TYPED = {
    "00_overview": 0,
    "01_theory": 0,
    "02_training": 210,
    "03_likelihood": 0,
    "04_attacks": 0,
    "05_interpolations": 0,
    "06_bg_mnist": 89,
    "07_flow_robustness": 0,
    "08_appendices": 0,
    "09_recipe": 0,
    "10_scale": 0,
}

GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)(?::[^`]*)?`")
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:\s?%)?")
# A whole number is a measurement too when a unit of time, throughput or memory follows it
# (a range's first end included): "27–28 minutes", "312 images/s", "41 minutes".
UNIT = r"(?:CPU\s)?(?:images/s|minutes?|hours?|seconds?|MiB|GiB)\b"
MEASURED = re.compile(r"(?<![\w.])\d[\d ]*(?:\s?[–-]\s?\d+)?\s" + UNIT)


def prose(text: str) -> str:
    """The Markdown a reader reads as text: no front matter, fenced blocks, maths, inline
    code, glued values, or exercise labels (**1.2**)."""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    text = re.sub(r"^(`{3,}).*?^\1", "", text, flags=re.S | re.M)
    text = re.sub(r"\$\$.*?\$\$", "", text, flags=re.S)
    text = re.sub(r"\$[^$\n]*\$", "", text)
    text = GLUE_ROLE.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"https?://\S+|arXiv:?\s*\d{4}\.\d{4,5}", "", text)
    text = re.sub(r"[Ss]ections? \d+(?:\.\d+)+(?:(?:,| and| or|–)\s*\d+(?:\.\d+)+)*", "", text)
    return re.sub(r"\*\*\d+\.\d+\*\*", "", text)


def hand_typed(text: str) -> list[str]:
    """The decimals, percentages and measured whole numbers (`MEASURED`) in the prose that
    are not glued and not constants."""
    text = prose(text)
    found = [n for n in NUMBER.findall(text) if "." in n or "%" in n]
    found = [n for n in found if re.sub(r"\s?%", " %", n) not in CONSTANTS]
    return found + MEASURED.findall(text)  # its look-behind already skips a decimal's digits


def glued_names(notebook: Path) -> set[str]:
    """The names `chapter.glue` stored in a notebook's outputs (myst-nb's scrapbook metadata)."""
    nb = json.loads(notebook.read_text())
    return {
        out["metadata"]["scrapbook"]["name"]
        for cell in nb["cells"]
        for out in cell.get("outputs", [])
        if "scrapbook" in out.get("metadata", {})
    }


def test_the_prose_scanner_sees_numbers_and_skips_the_rest():
    text = (
        "---\na: 1.5\n---\nWe saw 97.96 % and 1.126 {glue:text}`acc` bits, $x = 0.3$, `0.4`.\n"
        "```\n0.5\n```\n**1.2** Ask, in section 4.3. It took 27–28 minutes at 190 images/s, {glue:text}`m` minutes."
    )
    assert hand_typed(text) == ["97.96 %", "1.126", "27–28 minutes", "190 images/s"]
    assert GLUE_ROLE.findall("{glue:text}`cw_split:.1f` and {glue}`other`") == ["cw_split", "other"]


def test_every_chapter_is_counted():
    assert set(HAND_TYPED) == {md.stem for md in CHAPTERS}


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_no_measured_number_is_typed_by_hand(md):
    found = hand_typed(md.read_text())
    assert len(found) == HAND_TYPED[md.stem], (
        f"{md.name}: {len(found)} hand-typed numbers in the prose, {HAND_TYPED[md.stem]} allowed; "
        f"glue them from the run (chapter.glue, {{glue:text}}) and lower HAND_TYPED: {found[:12]}"
    )


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_every_glued_name_is_in_the_committed_outputs(md):
    wanted = set(GLUE_ROLE.findall(prose_with_glue(md.read_text())))
    missing = wanted - glued_names(md.with_suffix(".ipynb"))
    assert not missing, f"{md.name} cites {sorted(missing)}, which its committed run did not glue"


def prose_with_glue(text: str) -> str:
    """The prose with its glue roles kept (fenced blocks and front matter dropped)."""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    return re.sub(r"^(`{3,}).*?^\1", "", text, flags=re.S | re.M)


INCLUDE = re.compile(r"^```\{literalinclude\} (\S+)\n((?::[\w-]+:.*\n)*)```", re.M)


def includes() -> list[tuple[Path, Path, dict[str, str]]]:
    found = []
    for md in CHAPTERS:
        for target, options in INCLUDE.findall(md.read_text()):
            opts = dict(re.findall(r"^:([\w-]+): (.*)$", options, flags=re.M))
            found.append((md, (md.parent / target).resolve(), opts))
    return found


def test_the_book_shows_the_key_code():
    shown = {(md.stem, path.name) for md, path, _ in includes()}
    assert {
        ("02_training", "priors.py"),
        ("02_training", "objectives.py"),
        ("04_attacks", "cw.py"),
        ("04_attacks", "detector.py"),
        ("04_attacks", "boundary.py"),
    } <= shown


@pytest.mark.parametrize("md, path, opts", includes(), ids=lambda v: v.name if isinstance(v, Path) else "")
def test_included_code_is_found_once_and_parses(md, path, opts):
    """start-at / end-before (what both Sphinx and `myst build` understand) each match once,
    in order, and cut out whole Python statements."""
    source = path.read_text()
    start, end = opts["start-at"], opts.get("end-before")
    assert source.count(start) == 1, f"{md.name}: {start!r} must occur once in {path.name}"
    begin = source.index(start)
    if end is not None:
        assert source.count(end) == 1, f"{md.name}: {end!r} must occur once in {path.name}"
        assert source.index(end) > begin
    stop = source.index(end) if end is not None else len(source)
    line_start = source.rfind("\n", 0, begin) + 1
    ast.parse(textwrap.dedent(source[line_start:stop]))


def test_the_readme_quotes_the_committed_scorecard():
    """The README's "Today:" totals are the committed ledger's, decided by the overview's rule."""
    from studylib.book import ledger

    entries = ledger.load_all(ROOT / "book" / "results")
    counts: dict[tuple[str, str], int] = {}
    for e, verdicts in zip(entries, ledger.decide(entries), strict=True):
        for c, v in zip(e["claims"], verdicts, strict=True):
            kind = {"quantitative": "numbers", "scale": "scale"}.get(c["kind"], "orderings")
            counts[kind, v] = counts.get((kind, v), 0) + 1
    told = re.sub(r"\s+", " ", (ROOT / "README.md").read_text())
    numbers = re.search(r"of (\d+) numbers (\d+) match the paper's, (\d+) differ, (\d+) are inconclusive", told)
    orderings = re.search(r"of (\d+) orderings (\d+) hold, (\d+) fail .*?, (\d+) are inconclusive", told)
    scale = re.search(r"claims, (\d+) holds? and (\d+) (?:is|are) inconclusive", told)
    assert numbers and orderings and scale, "the README's scorecard sentence changed shape: update this test"
    match, differ, unsure = (counts.get(("numbers", v), 0) for v in ("matches", "differs", "inconclusive"))
    assert [int(g) for g in numbers.groups()] == [match + differ + unsure, match, differ, unsure]
    hold, fail, open_ = (counts.get(("orderings", v), 0) for v in ("holds", "fails", "inconclusive"))
    assert [int(g) for g in orderings.groups()] == [hold + fail + open_, hold, fail, open_]
    assert [int(g) for g in scale.groups()] == [counts.get(("scale", v), 0) for v in ("holds", "inconclusive")]
