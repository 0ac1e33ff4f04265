"""The offline HTML book, opened in headless Chromium: every chapter page loads with its
title, its figures (non-zero size), its math rendered, no error output, and the values its prose pastes from the run."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import nbformat
import pytest

from studylib.book import runner

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = runner.ROOT / "artifacts"

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("STUDYLIB_REQUIRE_BROWSER"):
        pytest.fail("headless Chromium is required (apt-get install chromium chromium-driver)", pytrace=False)
    pytest.skip("Chromium not installed (apt-get install chromium chromium-driver)", allow_module_level=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the HTML and serve it on localhost."""
    out = runner.html(tmp_path_factory.mktemp("book") / "html")
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def _expected(md: Path) -> tuple[int, bool, int]:
    """Number of image outputs in the committed notebook, whether its text has math, and the
    number of its outputs that are Markdown tables (the study's computed tables)."""
    nb = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    outputs = [o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    images = sum(1 for data in outputs if "image/png" in data)
    tables = sum(1 for data in outputs if "\n|---" in data.get("text/markdown", ""))
    text = "".join(re.sub(r"`[^`]*`", "", c.source) for c in nb.cells if c.cell_type == "markdown")
    math = "$" in text
    return images, math, tables


def _glued(md: Path) -> list[str]:
    """The values the chapter's prose pastes ({glue:text}`name`), read from the committed
    notebook as myst-nb reads them."""
    from myst_nb.core.variables import format_plain_text

    nb = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    values = {
        o.metadata["scrapbook"]["name"]: format_plain_text(
            next(v for k, v in o.data.items() if k.endswith("text/plain")), ""
        )
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "scrapbook" in o.get("metadata", {})
    }
    text = "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return [values[name] for name in re.findall(r"\{glue:text\}`([^`:]+)", text)]


@pytest.mark.parametrize("md", runner.chapters(), ids=lambda p: p.stem)
def test_chapter_outputs_fit_the_page(site, browser, md):
    browser.get(f"{site}/{md.stem}.html")
    overflow = browser.execute_script(
        "return Array.from(document.querySelectorAll('main .cell_output pre, main .cell_output table'))"
        ".filter(p => p.scrollWidth > p.clientWidth + 1 || p.getBoundingClientRect().right >"
        " document.querySelector('main article, main .bd-article').getBoundingClientRect().right + 1)"
        ".map(p => [p.scrollWidth, p.clientWidth, p.textContent.slice(0, 80)]);"
    )
    assert not overflow, f"outputs scroll sideways (content, box, start): {overflow}"


@pytest.mark.parametrize("md", runner.chapters(), ids=lambda p: p.stem)
def test_chapter_page_renders(site, browser, md):
    browser.get(f"{site}/{md.stem}.html")
    title = next(line[2:] for line in md.read_text().splitlines() if line.startswith("# "))
    heading = browser.execute_script("return document.querySelector('main h1').textContent;")
    assert heading.strip().startswith(title.strip()), (heading, title)
    assert title.strip() in browser.title
    # wait for MathJax (served from _static, not a CDN) to finish typesetting
    browser.execute_async_script(
        "const done = arguments[0];"
        "if (window.MathJax && MathJax.startup) { MathJax.startup.promise.then(() => done(true)); }"
        "else { done(false); }"
    )
    images, has_math, tables = _expected(md)
    shown = browser.execute_script("return document.querySelectorAll('main .cell_output table').length;")
    assert shown >= tables, f"{shown} tables on the page, {tables} computed in the notebook (shown as text?)"
    sizes = browser.execute_script(
        "return Array.from(document.querySelectorAll('main img')).map(i => [i.naturalWidth, i.naturalHeight]);"
    )
    assert len(sizes) >= images, f"{len(sizes)} images on the page, {images} in the notebook"
    assert all(w > 0 and h > 0 for w, h in sizes), sizes
    math = browser.execute_script(
        "const m = Array.from(document.querySelectorAll('main .math'));"
        "return [m.length, m.filter(e => e.querySelector('mjx-container')).length,"
        " document.querySelectorAll('mjx-merror').length];"
    )
    assert math[0] == math[1], f"{math[0] - math[1]} of {math[0]} formulas were not typeset"
    assert math[2] == 0, "MathJax reported errors"
    assert math[0] > 0 or not has_math, "the chapter has math but the page shows none"
    overflow = browser.execute_script(
        "return Array.from(document.querySelectorAll('main pre'))"
        ".filter(p => !p.closest('.cell_output'))"
        ".filter(p => p.scrollWidth > p.clientWidth)"
        ".map(p => [p.scrollWidth, p.clientWidth, p.textContent.split('\\n').reduce("
        "(a, l) => l.length > a.length ? l : a, '')]);"
    )
    assert not overflow, f"code blocks scroll sideways (content, box, longest line): {overflow}"
    column, wide = browser.execute_script(
        "const article = document.querySelector('main article, main .bd-article');"
        "const width = article.clientWidth;"
        "return [width, Array.from(article.querySelectorAll('img'))"
        ".filter(i => i.getBoundingClientRect().width > width + 1).map(i => i.getBoundingClientRect().width)];"
    )
    assert not wide, f"figures wider than the text column ({column} px): {wide}"
    pasted = browser.execute_script(
        "return Array.from(document.querySelectorAll('main .pasted-text')).map(e => e.textContent);"
    )
    assert sorted(pasted) == sorted(_glued(md)), "the page does not show the values the run glued"
    errors = browser.find_elements("css selector", ".output.traceback, .output.error, .output.stderr .ansi-red-fg")
    assert not errors, [e.text[:200] for e in errors]
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{md.stem}.png"))
