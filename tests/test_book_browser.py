"""The built book in a real browser: Debian's chromium driven by Playwright, served locally.

The book is built once a session (only when its HTML is missing or older than its sources,
the records or the library). Screenshots of every page go to ``book/_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import statistics
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

from tlcourse.book import build
from tlcourse.protocols import DEFAULT_PROTOCOL
from tlcourse.report import load_records

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
HTML = BOOK / "_build" / "html"
SCREENSHOTS = BOOK / "_build" / "screenshots"
CHROMIUM = Path(os.environ.get("TLCOURSE_CHROMIUM", "/usr/bin/chromium"))
CHAPTERS = [
    line.split("file:")[1].strip()
    for line in (BOOK / "_toc.yml").read_text().splitlines()
    if "file:" in line
]


def _newest(*folders: Path) -> float:
    times = [
        p.stat().st_mtime
        for folder in folders
        for p in folder.rglob("*")
        if p.is_file() and "_build" not in p.parts and "__pycache__" not in p.parts
    ]
    return max(times)


@pytest.fixture(scope="session")
def book_html(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The book's HTML, built now if missing or older than what it is made from."""
    index = HTML / "index.html"
    sources = (BOOK, ROOT / "results", ROOT / "exercises", ROOT / "tlcourse")
    if not index.is_file() or index.stat().st_mtime < _newest(*sources):
        saved = {k: os.environ.get(k) for k in ("TLCOURSE_DATA", "TLCOURSE_WEIGHTS")}
        os.environ["TLCOURSE_DATA"] = str(shared_dir / "data" / "cifar10-jpeg.tar.xz")
        os.environ["TLCOURSE_WEIGHTS"] = str(shared_dir / "weights" / "squeezenet1_1_imagenet.npz")
        try:
            build(BOOK)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return HTML


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="session")
def server(book_html: Path) -> str:
    """The built HTML served on 127.0.0.1 (a free port); yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(book_html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.is_file():
        raise FileNotFoundError(
            f"{CHROMIUM} is missing: the book's browser tests drive Debian's chromium "
            "(apt-get install chromium; .ci/run installs it)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server: str):
    """A fresh page that never leaves 127.0.0.1 (CI has no internet)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if urlparse(route.request.url).hostname in ("127.0.0.1", None)
            else route.abort()
        ),
    )
    yield page
    context.close()


def _local(url: str) -> bool:
    return urlparse(url).hostname == "127.0.0.1"


@pytest.mark.parametrize("chapter", ["index", *CHAPTERS, "search", "genindex"])
def test_page_loads_without_errors_and_every_image_shows(page, server: str, chapter: str):
    errors: list[str] = []
    page.on(
        "console",
        lambda msg: (
            errors.append(f"{msg.text} ({msg.location.get('url')})")
            if msg.type == "error" and _local(msg.location.get("url") or server)
            else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = page.goto(f"{server}{chapter}.html", wait_until="load")
    assert response is not None and response.status == 200
    page.wait_for_load_state("networkidle")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{chapter}.png"), full_page=True)
    assert errors == [], f"console errors on {chapter}.html: {errors}"
    images = page.eval_on_selector_all(
        "main img", "imgs => imgs.map(i => [i.currentSrc, i.complete, i.naturalWidth])"
    )
    broken = [src for src, complete, width in images if not complete or width == 0]
    assert broken == [], f"images that did not load on {chapter}.html: {broken}"


@pytest.mark.parametrize(
    "chapter", ["02-squeezenet", "03-cifar10", "05-experiments", "06-results", "07-doing-better"]
)
def test_figure_chapters_show_figures(page, server: str, chapter: str):
    page.goto(f"{server}{chapter}.html")
    widths = page.eval_on_selector_all("main img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths and all(w > 100 for w in widths)


def _ids(html: str) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', html))


def test_every_internal_link_resolves(page, server: str):
    pages: dict[str, str] = {}

    def fetch(url: str) -> str:
        if url not in pages:
            with urllib.request.urlopen(url) as response:  # raises on 404
                assert response.status == 200, url
                pages[url] = response.read().decode("utf-8", errors="replace")
        return pages[url]

    checked = 0
    for chapter in CHAPTERS:  # index.html only redirects to the first of them
        page.goto(f"{server}{chapter}.html")
        hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
        for href in hrefs:
            if not _local(href):
                continue
            target, fragment = urldefrag(href)
            body = fetch(target)
            if fragment and target.endswith(".html"):
                assert fragment in _ids(body), f"{chapter}.html links to missing #{fragment}"
            checked += 1
    assert checked > 50


def test_search_finds_fire_module(page, server: str):
    page.goto(f"{server}search.html?q=fire+module")
    page.wait_for_selector("ul.search li a", timeout=30_000)
    hits = page.eval_on_selector_all("ul.search li a", "as => as.map(a => a.href)")
    assert any("02-squeezenet.html" in hit for hit in hits), hits


def _expected_cell(values: list[float]) -> str:
    pct = [100 * v for v in values]
    if not pct:
        return "-"
    if len(pct) == 1:
        return f"{pct[0]:.2f}"
    return f"{statistics.mean(pct):.2f} ± {statistics.stdev(pct):.2f} (n={len(pct)})"


def test_experiments_table_shows_the_recorded_numbers(page, server: str):
    records = load_records(ROOT / "results")
    budget = "paper" if any(r["budget"] == "paper" for r in records) else "smoke"
    expected = {}
    for r in records:
        if r["budget"] == budget and r["protocol"] in ("study", DEFAULT_PROTOCOL):
            expected.setdefault((r["experiment"], r["protocol"]), []).append(r)
    page.goto(f"{server}05-experiments.html")
    tables = page.eval_on_selector_all(
        "main table",
        """ts => ts.map(t => Array.from(t.querySelectorAll('tr')).map(
              tr => Array.from(tr.children).map(c => c.innerText.trim())))""",
    )
    table = next(t for t in tables if "Ours val %" in t[0])
    header, rows = table[0], table[1:]
    shown = {(row[header.index("Experiment")], row[header.index("Protocol")]): row for row in rows}
    assert set(shown) == set(expected)
    for key, runs in expected.items():
        row = dict(zip(header, shown[key], strict=True))
        ok = [r for r in runs if r["status"] == "ok"]
        tested = [r["final"]["test_accuracy"] for r in ok]
        tested = [t for t in tested if t is not None]
        assert row["Ours val %"] == _expected_cell([r["final"]["val_accuracy"] for r in ok]), key
        assert row["Ours test %"] == _expected_cell(tested), key
        assert row["Runs collapsed"] == f"{len(runs) - len(ok)} of {len(runs)}", key
        assert row["Budget"] == budget


def test_exercise_downloads_serve_the_notebooks(page, server: str):
    page.goto(f"{server}08-exercises.html")
    links = page.eval_on_selector_all(
        "a[href$='.ipynb']", "as => as.map(a => [a.innerText.trim(), a.href])"
    )
    notebooks = sorted((ROOT / "exercises").glob("*/*.ipynb"))
    assert len(notebooks) >= 3
    served = {Path(urlparse(href).path).name: href for _, href in links}
    for notebook in notebooks:
        assert notebook.name in served, f"no download link for {notebook.name}"
        with urllib.request.urlopen(served[notebook.name]) as response:
            body = response.read()
        assert body == notebook.read_bytes()
        assert json.loads(body)["nbformat"] == 4
