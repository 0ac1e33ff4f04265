"""The book's machinery: the toc, Jupytext pairs in sync, parameters cells, bad parameters
through papermill, and the ledger the overview reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jupytext
import numpy as np
import pytest

from studylib import storage
from studylib.book import ledger, runner
from studylib.book.tables import Table

CHAPTERS = runner.chapters()


def test_toc_lists_existing_chapters_in_order():
    assert CHAPTERS, "myst.yml lists no chapters"
    assert [p.stem for p in CHAPTERS] == sorted(p.stem for p in CHAPTERS)
    for md in CHAPTERS:
        assert md.exists(), md
    on_disk = {p.stem for p in (runner.ROOT / "book").glob("[0-9][0-9]_*.md")}
    assert on_disk == {p.stem for p in CHAPTERS}, "every chapter file must be in myst.yml's toc"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_pair_is_in_sync(md):
    nb = md.with_suffix(".ipynb")
    assert nb.exists(), f"{nb.name} missing: run 'jupytext --sync {md}'"
    cells = lambda p: [(c.cell_type, c.source.strip()) for c in jupytext.read(p).cells]  # noqa: E731
    assert cells(md) == cells(nb), f"{md.name} and {nb.name} differ: run 'jupytext --sync {md}'"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_parameters_cell(md):
    code = [c for c in jupytext.read(md).cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    for name in ("dataset", "objective", "profile", "device", "seed"):
        assert f"{name} = " in code[0].source
    assert "setup(" in code[1].source, "the second code cell validates the parameters"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter(md, caplog):
    """papermill infers each parameter's name, type and help from the cell; a comment it
    cannot parse (a quote in it) drops the parameter from `papermill --help-notebook` and
    prints a warning on every run."""
    import papermill

    source = jupytext.read(md).cells
    code = next(c for c in source if c.cell_type == "code")
    names = [line.split("=")[0].strip() for line in code.source.splitlines() if " = " in line]
    inferred = papermill.inspect_notebook(str(md.with_suffix(".ipynb")))
    assert "Unable to parse" not in caplog.text
    assert list(inferred) == names


def test_run_with_a_relative_out_folder_keeps_the_ledger_there(tmp_path, monkeypatch):
    """The kernels run in book/, so a relative --out must not become a relative ledger path:
    the overview must read the committed ledger copied into <out>/results."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path / "home"))
    out = runner.run("smoke", ["00"], Path("relative-out"))
    assert out == tmp_path / "relative-out"
    committed = sorted(p.name for p in (runner.ROOT / "book" / "results").glob("*.json"))
    assert committed and sorted(p.name for p in (out / "results").glob("*.json")) == committed
    shown = (out / "00_overview.ipynb").read_text()
    assert "02_training |" in shown and "02_training |  |  | not yet run" not in shown
    timings = json.loads((out / "results" / "bench" / "book__smoke.json").read_text())
    (timing,) = [t for t in timings if t["chapter"] == "00_overview"]
    assert timing["seconds"] > 0
    assert timing["peak_mib"] > 50  # the kernel's own resident memory, sampled while it ran


def test_chapter_selection():
    assert runner.select(["00"]) == [CHAPTERS[0]]
    assert runner.select([CHAPTERS[0].stem]) == [CHAPTERS[0]]
    with pytest.raises(ValueError, match="unknown chapter '99'; allowed values: 00_overview"):
        runner.select(["99"])


def test_bad_parameter_through_papermill_fails_with_the_allowed_values(tmp_path):
    source = tmp_path / "overview.ipynb"
    jupytext.write(jupytext.read(CHAPTERS[0]), source)
    out = subprocess.run(
        [sys.executable, "-m", "papermill", str(source), str(tmp_path / "out.ipynb"), "-p", "profile", "fast"],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "unknown profile 'fast'; allowed values: smoke, quick, paper" in out.stdout + out.stderr


def test_ledger_round_trip_and_table(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYLIB_RESULTS", str(tmp_path))
    acc = ledger.quantitative("acc", 94.0, (93.0, 95.0), 94.5, n=8, of="draws", method="t", unit="%", note="derived")
    path = ledger.record("01_theory", [acc], profile="smoke")
    assert json.loads(path.read_text())["claims"][0]["ours"] == 94
    rows = ledger.table(ledger.load_all(tmp_path))
    assert rows[0]["chapter"] == "01_theory" and rows[0]["ours"] == 94
    assert {"chapter": "02_training", "dataset": "", "profile": "", "quantity": "not yet run"} in rows
    text = ledger.markdown(rows)
    assert (
        "| 01_theory | - | smoke | acc | 94.5 % | 94 % | [93, 95] | 8 draws | 1.429 | inconclusive | derived |" in text
    )
    with pytest.raises(ValueError, match="unknown chapter"):
        ledger.record("99_nothing", [], profile="smoke")


def test_a_table_renders_as_markdown_in_a_notebook_and_aligned_in_a_terminal():
    table = Table(("claim", "ours", "over"), [("a|b", 1.23456, "3 of 4"), ("c", None, "")], caption="Cap", note="n.b.")
    md = table._repr_markdown_()
    assert md.splitlines()[:4] == ["Cap", "", "| claim | ours | over |", "|---|---:|---|"]
    assert "| a\\|b | 1.235 | 3 of 4 |" in md and "| c | — |  |" in md and md.endswith("\n\nn.b.")
    assert str(table).splitlines() == ["Cap", "claim   ours  over", "a|b    1.235  3 of 4", "c          —", "n.b."]
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        Table(("a", "b", "c"), [(1, 2)])


def test_ledger_describe_shows_each_claim_with_its_interval_count_and_verdict():
    rate = ledger.quantitative("undetected", 59.0, (49.2, 68.1), 1, n=100, of="images", method="Wilson", k=59, unit="%")
    row = ledger.describe([rate]).rows[0]
    assert row == ("undetected", "59 %", "[49.2, 68.1]", "59 of 100 images", "1 %", "differs")


def test_book_timings_table_orders_chapters_and_adds_the_total(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYLIB_RESULTS", str(tmp_path))
    assert "No `studylib book run --profile smoke` recorded" in ledger.timings_markdown("smoke")
    rows = [
        {"chapter": "04_attacks", "seconds": 832.0, "peak_mib": 1089},
        {"chapter": "00_overview", "seconds": 3.4, "peak_mib": 625},
    ]
    ledger.timings_path("quick").parent.mkdir()
    ledger.timings_path("quick").write_text(json.dumps(rows))
    lines = ledger.timings_markdown("quick").splitlines()
    assert lines[2] == "| 00_overview | 3 s | 0.6 GiB |" and lines[3] == "| 04_attacks | 13.9 min | 1.1 GiB |"
    assert lines[-1] == "| all 2 | 13.9 min | 1.1 GiB |"


def test_progress_bar_redraws_collapse_to_their_last_state():
    text = "train:  10%|#  | 1/10\rtrain:  50%|#####  | 5/10\rtrain: 100%|##########| 10/10\ndone\n"
    assert runner.collapse_carriage_returns(text) == "train: 100%|##########| 10/10\ndone\n"


def test_seeding_a_run_folder_replaces_older_copies_and_keeps_newer_ones(tmp_path):
    """A benchmark file updated by a pull must replace the run folder's stale copy; a ledger
    file the folder's own later run wrote must survive."""
    committed, results = tmp_path / "committed", tmp_path / "results"
    (committed / "bench").mkdir(parents=True)
    (results / "bench").mkdir(parents=True)
    for name, text, age in [("bench/peers.json", "new", 0), ("ledger.json", "committed", 100), ("only.json", "x", 0)]:
        (committed / name).write_text(text)
        os.utime(committed / name, (1_000_000 - age, 1_000_000 - age))
    (results / "bench" / "peers.json").write_text("stale")
    os.utime(results / "bench" / "peers.json", (999_000, 999_000))
    (results / "ledger.json").write_text("this run")
    os.utime(results / "ledger.json", (1_000_000, 1_000_000))
    runner.seed_results(committed, results)
    assert (results / "bench" / "peers.json").read_text() == "new"
    assert (results / "ledger.json").read_text() == "this run"
    assert (results / "only.json").read_text() == "x"


def _rate(ours, low, high, paper, of="attacked images", unit="%", source="Table 2"):
    return ledger.quantitative(
        "rate", ours, (low, high), paper, n=100, of=of, method="Wilson", unit=unit, source=source
    )


def test_a_number_matches_inside_the_margin_differs_outside_and_is_otherwise_inconclusive():
    # attack rates: margin 7 points, the paper's integer printed +-0.5: band [paper - 7.5, paper + 7.5]
    assert _rate(3.0, 1.0, 7.0, 1)["verdict"] == "matches"
    assert _rate(60.0, 50.0, 69.0, 1)["verdict"] == "differs"
    assert _rate(10.0, 5.0, 20.0, 1)["verdict"] == "inconclusive"  # straddles the band's edge
    assert _rate(99.0, 94.0, 100.0, 100)["verdict"] == "matches"  # the old rule said differs
    # accuracy over the paper's 10 000 test images: margin 0.3 + rounding 0.05 + binomial 0.16
    acc = _rate(99.3, 99.1, 99.5, 99.3, of="test images", source="Table 1, mnist")
    assert ledger.band(acc) == pytest.approx((99.3 - 0.3 - 0.05 - 0.1634, 99.3 + 0.3 + 0.05 + 0.1634), abs=1e-3)
    assert acc["verdict"] == "matches"
    bits = ledger.quantitative("bpd", 1.02, (1.01, 1.03), 1.0, n=3, of="seeds", method="t", unit="bits/dim")
    assert ledger.band(bits) == pytest.approx((1.0 - 0.035, 1.0 + 0.035))  # printed 1.00: +-0.005
    assert bits["verdict"] == "matches" and ledger.verdict(bits, scale=0.5) == "inconclusive"  # band +-0.02
    with pytest.raises(ValueError, match="no margin"):
        ledger.quantitative("x", 1.0, (0.0, 2.0), 1.0, n=3, of="seeds", method="t", unit="nats")


def test_a_match_is_an_equivalence_test_as_statsmodels_makes_it():
    """Our 95 % t interval inside paper +- margin is TOST at 2.5 % per side (statsmodels)."""
    from statsmodels.stats.weightstats import DescrStatsW

    from studylib.measure.uncertainty import t_interval

    rng = np.random.default_rng(0)
    for shift in np.linspace(-0.4, 0.4, 17):
        seeds = 1.0 + shift + 0.02 * rng.standard_normal(4)
        mean, low, high = t_interval(seeds)
        claim = ledger.quantitative("bpd", mean, (low, high), 1.0, n=4, of="seeds", method="t", unit="bits/dim")
        lo, hi = ledger.band(claim)
        p = DescrStatsW(seeds).ttost_mean(lo, hi)[0]
        assert (claim["verdict"] == "matches") == (p < 0.025), (shift, p, claim["verdict"])


def test_orderings_are_decided_with_holms_correction_across_the_ledger():
    said = {"n": 10, "of": "pairs", "method": "bootstrap", "statement": "a > b"}
    weak = ledger.directional("weak", 1.0, (0.05, 1.95), **said)  # p just under 0.05 alone
    twin = ledger.directional("twin", 1.0, (0.05, 1.95), **said)
    strong = ledger.directional("strong", 5.0, (4.0, 6.0), **said)
    worse = ledger.directional("worse", -5.0, (-6.0, -4.0), **said)
    exact = ledger.directional("exact", 0.5, (0.5, 0.5), n=1, of="draws", method="extreme (exact)", statement="a > b")
    entries = [{"chapter": "04_attacks", "dataset": "mnist", "claims": [weak, twin, strong, worse, exact]}]
    assert weak["verdict"] == "holds"  # alone, uncorrected
    assert ledger.p_value(weak) == pytest.approx(0.0391, abs=1e-3)
    # Holm over 4 tests: the two p of 0.039 come third and fourth, 0.039 x 2 > 0.05
    assert ledger.decide(entries) == [["inconclusive", "inconclusive", "holds", "fails", "holds"]]
    assert ledger.moved(entries) == [
        ("04_attacks", "weak", "holds", "inconclusive"),
        ("04_attacks", "twin", "holds", "inconclusive"),
    ]
    assert ledger.detectable(strong) == pytest.approx(2.8 * 1.0 / 1.96, rel=1e-3)


def test_a_misprint_is_shown_but_not_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYLIB_RESULTS", str(tmp_path))
    name = "CW-L2 vs split: fooling the classifier within eps"
    claim = ledger.quantitative(name, 100.0, (96.3, 100.0), 0, n=100, of="attacked images", method="Wilson", unit="%")
    ledger.record("04_attacks", [claim], profile="quick", dataset="cifar10")
    entries = ledger.load_all(tmp_path)
    assert ledger.decide(entries) == [["misprint"]]
    card = {r["chapter"]: r for r in ledger.scorecard(entries)}["04_attacks"]
    assert sum(card[k] for k in ledger.SCORE_COLUMNS) == 0
    (row,) = [r for r in ledger.table(entries) if r["chapter"] == "04_attacks"]
    assert row["verdict"] == "misprint" and row["note"].startswith("misprint")


def test_recorded_verdicts_are_the_rules():
    """A verdict in a committed ledger file is never typed by hand: it is what `verdict` gives."""
    for entry in ledger.load_all(storage.COMMITTED):
        for c in entry["claims"]:
            if "verdict" in c:
                assert c["verdict"] == ledger.verdict(c), (entry["chapter"], c["name"])


def test_scorecard_counts_verdicts_per_chapter(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYLIB_RESULTS", str(tmp_path))
    said = {"n": 10, "of": "pairs", "method": "bootstrap", "statement": "a > b"}
    claims = [
        _rate(97.0, 96.0, 98.0, 80),
        ledger.directional("a - b", 2.0, (0.5, 3.0), **said),
    ]
    ledger.record("04_attacks", claims, profile="quick", dataset="mnist")
    card = {r["chapter"]: r for r in ledger.scorecard(ledger.load_all(tmp_path))}
    assert card["04_attacks"] == {
        "chapter": "04_attacks",
        "matches": 0,
        "differs": 1,
        "inconclusive": 0,
        "holds": 1,
        "fails": 0,
        "inconclusive ": 0,
    }
    text = ledger.scorecard_markdown(ledger.load_all(tmp_path))
    assert "| 04_attacks | 0 | 1 | 0 | 1 | 0 | 0 |" in text and text.endswith("| all | 0 | 1 | 0 | 1 | 0 | 0 |")
    table = ledger.markdown(ledger.table(ledger.load_all(tmp_path)))
    assert "| 80 % | 97 % | [96, 98] | 100 attacked images | 1.429 | differs |" in table
    assert "| 1 x | 0 | 1 | 0 | 1 | 0 | 0 |" in ledger.sensitivity_markdown(ledger.load_all(tmp_path))
    assert "attack rate" in ledger.margins_markdown()


def test_a_default_run_writes_under_the_home_and_reads_the_committed_ledger_beside(monkeypatch, home):
    monkeypatch.delenv("STUDYLIB_RESULTS", raising=False)
    assert storage.results_dir() == storage.results_dir("quick") == home / "ledger" / "quick"
    assert storage.results_dir("smoke") == home / "ledger" / "smoke"
    committed = ledger.load_all(storage.COMMITTED)
    mine = committed[0]
    claim = ledger.quantitative("acc", 94.0, (93.0, 95.0), 94.5, n=8, of="draws", method="t", unit="%")
    path = ledger.record(mine["chapter"], [claim], profile=mine["profile"], seed=mine["seed"], dataset=mine["dataset"])
    assert path.parent == home / "ledger" / mine["profile"]
    if mine["profile"] == "quick":  # the default results folder: its file replaces the committed one
        entries = ledger.load_all()
        assert len(entries) == len(committed) and [c["name"] for c in entries[0]["claims"]] == ["acc"]
    assert ledger.load_all(storage.COMMITTED) == committed  # the package's files are untouched


def test_progress_bars_and_cursor_moves_leave_the_committed_outputs():
    text = "CW-L2: 100%|######| 10/10 [00:00<00:00, 52.9it/s]\n\x1b[Adone\nsnapshots: 3it [00:01, 2.1it/s]\n50% kept\n"
    assert runner.drop_progress_bars(text) == "done\n50% kept\n"
    outputs = [{"output_type": "stream", "name": "stderr", "text": "CW-L2:  10%|#  | 1/10 [00:01<00:09]\r"}]
    assert runner._merge_streams(outputs) == []  # a stream of nothing but bars goes entirely


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_committed_outputs_carry_no_progress_bar_and_no_machine_path(md):
    nb = json.loads(md.with_suffix(".ipynb").read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join("".join(v) for v in out.get("data", {}).values())
            assert "it/s]" not in text and "█" not in text, f"a progress bar in {md.stem}: {text[:200]}"
            assert "PosixPath(" not in text and str(runner.ROOT) not in text, f"a path in {md.stem}: {text[:200]}"
