"""The book's machinery: the chapter list (from myst.yml), executing chapters with papermill
into a build folder, syncing a run's outputs into the committed notebooks, and the offline
HTML rendering (Sphinx + myst-nb + sphinx-book-theme, MathJax served locally)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from studylib.book import ledger
from studylib.config import PROFILES, check_choice

ROOT = Path(__file__).resolve().parents[2]
# Execution metadata papermill adds that the committed notebooks do not keep.
_VOLATILE = ("papermill", "execution", "widgets")


def chapters(root: Path = ROOT) -> list[Path]:
    """The chapters' .md sources in the order of myst.yml's toc."""
    toc = yaml.safe_load((root / "myst.yml").read_text())["project"]["toc"]
    return [root / entry["file"] for entry in toc]


def select(names: list[str] | None, root: Path = ROOT) -> list[Path]:
    """Chapters whose stem (e.g. '01_theory') or number ('01') is listed; all when None."""
    every = chapters(root)
    if not names:
        return every
    stems = {p.stem: p for p in every}
    picked = []
    for name in names:
        match = [p for s, p in stems.items() if s == name or s.split("_")[0] == name]
        if not match:
            raise ValueError(f"unknown chapter {name!r}; allowed values: {', '.join(stems)}")
        picked += match
    return picked


@contextmanager
def _env(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def peak_memory(interval: float = 0.2):
    """Samples the resident memory of this process's descendants (a chapter's kernel) every
    `interval` seconds while the block runs; yields a dict whose "mib" ends as the peak."""
    import psutil

    me, peak, stop = psutil.Process(), {"mib": 0.0}, threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            total = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            peak["mib"] = max(peak["mib"], total / 2**20)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def seed_results(committed_dir: Path, results: Path) -> None:
    """Copy the committed results files into a run's results folder where it lacks them or
    holds an older copy (a pulled commit's benchmark file replaces a stale one; a ledger file
    this folder's earlier run wrote after the checkout is kept), so that a partial run's
    overview shows the rest and chapter 2 the levers and benchmarks."""
    for committed in committed_dir.rglob("*.json"):
        copy = results / committed.relative_to(committed_dir)
        if not copy.exists() or committed.stat().st_mtime > copy.stat().st_mtime:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(committed, copy)


def run(profile: str, names: list[str] | None = None, out: Path | None = None, root: Path = ROOT) -> Path:
    """Execute chapters with papermill at `profile` into `out` (default build/book/<profile>),
    never in place. The profile reaches the chapters through $STUDYLIB_PROFILE (so no cell is
    injected) and their ledger files go to out/results, which starts with a copy of the
    committed ledger. The overview runs last, so its table shows this run's results beside
    the committed ones of chapters it did not run."""
    import jupytext
    import papermill

    check_choice("profile", profile, PROFILES)
    out = Path(out or root / "build" / "book" / profile).resolve()  # the kernels run in book/
    (out / "results").mkdir(parents=True, exist_ok=True)
    seed_results(root / "book" / "results", out / "results")
    todo = sorted(select(names, root), key=lambda p: p.stem.startswith("00_"))
    # Per chapter: seconds and the kernel's peak memory, kept as they come; chapters of
    # earlier runs into the same folder keep their rows.
    record = ledger.timings_path(profile, out / "results")
    timings = {r["chapter"]: r for r in json.loads(record.read_text())} if record.exists() else {}
    with _env(STUDYLIB_PROFILE=profile, STUDYLIB_RESULTS=str(out / "results")):
        for md in todo:
            source = out / f"{md.stem}.source.ipynb"
            jupytext.write(jupytext.read(md), source)
            started = time.perf_counter()
            print(f"running {md.stem} at {profile} ...", flush=True)
            with peak_memory() as peak, _env(STUDYLIB_CHAPTER=md.stem):  # the cache notes who used a model
                papermill.execute_notebook(source, out / f"{md.stem}.ipynb", cwd=str(md.parent), progress_bar=False)
            source.unlink()
            seconds = time.perf_counter() - started
            timings[md.stem] = {"chapter": md.stem, "seconds": round(seconds, 1), "peak_mib": round(peak["mib"])}
            print(f"  {md.stem}: {seconds:.0f} s, peak memory {peak['mib']:.0f} MiB", flush=True)
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(list(timings.values()), indent=1) + "\n")
    return out


def has_exercises(md: Path) -> bool:
    """Whether a chapter holds nbgrader cells (exercises with solutions and graded tests)."""
    import jupytext

    return any("nbgrader" in cell.metadata for cell in jupytext.read(md).cells)


def assignments(out: Path, names: list[str] | None = None, root: Path = ROOT) -> dict[str, Path]:
    """Write an nbgrader course folder at `out`: source/<chapter>/<chapter>.ipynb is the
    teacher edition (the chapter as written, solutions and hidden tests in), release/...
    the student edition made by nbgrader's own generate step, gradebook.db beside them.
    Returns the student editions by chapter."""
    import jupytext
    import nbformat
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    chosen = [md for md in select(names, root) if has_exercises(md)]
    if not chosen:
        raise ValueError("none of the chosen chapters has exercises")
    out = Path(out).resolve()
    for md in chosen:
        teacher = out / "source" / md.stem / f"{md.stem}.ipynb"
        teacher.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(jupytext.read(md), teacher)
    config = Config()
    config.CourseDirectory.root = str(out)
    config.CourseDirectory.db_url = f"sqlite:///{out / 'gradebook.db'}"
    api = NbGraderAPI(config=config)
    scripts = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from the PATH
    for md in chosen:
        with _env(PATH=os.pathsep.join([scripts, os.environ.get("PATH", "")])):
            result = api.generate_assignment(md.stem, force=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader could not generate {md.stem}: {result.get('error')}\n{result.get('log')}")
    return {md.stem: out / "release" / md.stem / f"{md.stem}.ipynb" for md in chosen}


def collapse_carriage_returns(text: str) -> str:
    """What a terminal shows of `text`: on each line only the part after its last carriage
    return, so a progress bar's redraws keep their final state only."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def _strip(nb) -> None:
    for key in _VOLATILE:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in _VOLATILE:
            cell.metadata.pop(key, None)
        if not cell.metadata.get("tags", True):  # papermill adds empty tag lists
            del cell.metadata["tags"]
        if "outputs" in cell:
            cell["outputs"] = _merge_streams(cell["outputs"])


def _merge_streams(outputs: list) -> list:
    """Join consecutive outputs of the same stream and collapse progress-bar redraws."""
    merged: list = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (
            output.get("output_type") == "stream"
            and last is not None
            and last.get("output_type") == "stream"
            and last["name"] == output["name"]
        ):
            last["text"] += output["text"]
        else:
            merged.append(output)
    for output in merged:
        if output.get("output_type") == "stream":
            output["text"] = collapse_carriage_returns(output["text"])
            if output["name"] == "stderr":
                output["text"] = drop_progress_bars(output["text"])
    return [o for o in merged if o.get("output_type") != "stream" or o["text"].strip()]


_BAR = re.compile(r"\d+%\|.*\|\s*\S+/\S+ \[|^[^:\n]*: \d+it \[")  # tqdm: "desc: 40%|####  | 4/10 [..."


def drop_progress_bars(text: str) -> str:
    """A stream's text without tqdm's bars and cursor moves: the committed notebooks keep
    what a chapter printed, not how long each loop took on the machine that ran it."""
    text = text.replace("\x1b[A", "")
    return "\n".join(line for line in text.split("\n") if not _BAR.search(line))


def sync(profile: str = "quick", names: list[str] | None = None, out: Path | None = None, root: Path = ROOT) -> None:
    """Copy a run's executed notebooks over the committed book/*.ipynb (outputs refreshed,
    execution metadata dropped) and its ledger files into book/results/."""
    import jupytext
    import nbformat

    out = Path(out or root / "build" / "book" / profile).resolve()
    for md in select(names, root):
        executed = out / f"{md.stem}.ipynb"
        if not executed.exists():
            raise FileNotFoundError(f"{executed} not found; run `studylib book run --profile {profile}` first")
        nb = nbformat.read(executed, as_version=4)
        _strip(nb)
        if [c.source for c in nb.cells] != [c.source for c in jupytext.read(md).cells]:
            raise ValueError(f"{executed} was run from another version of {md.name}; run the chapter again")
        nbformat.write(nb, md.with_suffix(".ipynb"))
    results = out / "results"
    if results.is_dir():
        (root / "book" / "results").mkdir(exist_ok=True)
        for f in results.glob("*.json"):
            shutil.copy2(f, root / "book" / "results" / f.name)


# The computed tables fit the text column (columns share its width, long cells wrap), and so
# do printed outputs and the package code a chapter includes (long lines wrap).
BOOK_CSS = """
.cell_output table { table-layout: fixed; width: 100%; font-size: 0.8em; }
.cell_output table th, .cell_output table td { overflow-wrap: anywhere; padding: 0.25em 0.4em; }
.highlight-python pre { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.8em; }
.cell_output pre { white-space: pre-wrap; overflow-wrap: anywhere; }
"""


def html(out: Path | None = None, notebooks: Path | None = None, root: Path = ROOT) -> Path:
    """Render executed notebooks (default: the committed book/*.ipynb; or a run's folder) to
    offline HTML with Sphinx + myst-nb + sphinx-book-theme, nothing executed, MathJax served
    from the site itself; returns the folder holding index.html."""
    from sphinx.application import Sphinx

    out = Path(out or root / "build" / "html").resolve()
    tree = out.parent / "html-src"  # the repository's layout, so `../studylib/...` includes resolve
    shutil.rmtree(tree, ignore_errors=True)
    src = tree / "book"
    src.mkdir(parents=True)
    shutil.copytree(root / "studylib", tree / "studylib", ignore=shutil.ignore_patterns("__pycache__"))
    project = yaml.safe_load((root / "myst.yml").read_text())["project"]
    notebooks = Path(notebooks or root / "book")
    names = []
    for md in chapters(root):
        shutil.copy2(notebooks / f"{md.stem}.ipynb", src / f"{md.stem}.ipynb")
        names.append(md.stem)
    (src / "_static").mkdir()
    (src / "_static" / "studylib.css").write_text(BOOK_CSS)
    toctree = "\n".join(names)
    (src / "index.md").write_text(
        f"# {project['title']}\n\n{project.get('subtitle', '')}\n\n```{{toctree}}\n:maxdepth: 1\n\n{toctree}\n```\n"
    )
    app = Sphinx(
        srcdir=str(src),
        confdir=None,
        outdir=str(out),
        doctreedir=str(out.parent / "doctrees"),
        buildername="html",
        confoverrides={
            "project": project["title"],
            "author": ", ".join(a["name"] for a in project.get("authors", [])),
            "extensions": ["myst_nb", "sphinx-mathjax-offline"],
            "html_theme": "sphinx_book_theme",
            "nb_execution_mode": "off",
            "nb_render_markdown_format": "myst",  # outputs' Markdown tables as tables (commonmark has none)
            "html_static_path": ["_static"],
            "html_css_files": ["studylib.css"],
            "myst_enable_extensions": ["dollarmath", "amsmath"],
            "html_title": project["title"],
            "exclude_patterns": ["**.ipynb_checkpoints"],
        },
        status=None,
        warningiserror=False,
    )
    app.build()
    return out
