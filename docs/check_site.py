"""Check the built documentation site as a reader would (``make docs`` runs it).

Two passes over ``docs/_build/html``:

1. Every page is parsed (``html.parser``): each internal link must lead to
   a file that exists, and to an element with that id when it names one;
   each image must exist; the search index must hold every public name; and
   every gallery page must show output from a real run (printed text, and a
   figure where the script draws one; MNIST examples are not checked for
   output when MNIST is absent and they could not run).
2. The pages a reader starts from (home, gallery, an example, the API, a
   class's page, Moving from PCA, and a search) are opened in headless Chromium through
   Playwright, served from 127.0.0.1: they must render with no JavaScript
   error, no broken image and no table wider than the page, and a search
   must list the estimator.
   Screenshots go to ``docs/_build/screenshots``. Chromium is found at
   ``--chromium`` or ``/usr/bin/chromium`` (Debian's ``chromium`` package);
   without it, or without Playwright, this pass is skipped with a notice,
   or fails with ``--strict`` (what CI passes; it also fails when the MNIST
   examples could not run for want of their data).

Run ``python docs/check_site.py [--strict]`` after the build.
"""

import argparse
import functools
import http.server
import importlib
import importlib.util
import re
import shutil
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gallery_data import EXAMPLES, gallery_scripts, mnist_examples, mnist_found

DOCS = Path(__file__).resolve().parent
SITE = DOCS / "_build" / "html"
SCREENSHOTS = DOCS / "_build" / "screenshots"


class Page(HTMLParser):
    """The ids, links, images and text of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.images = set(), [], []
        self._in_output = 0
        self.output_text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            (self.images if tag == "img" else self.links).append(attrs["src"])
        classes = attrs.get("class", "") or ""
        if self._in_output or (tag == "div" and "sphx-glr-script-out" in classes):
            self._in_output += 1

    def handle_endtag(self, tag):
        if self._in_output:
            self._in_output -= 1

    def handle_data(self, data):
        if self._in_output:
            self.output_text.append(data)


@functools.cache
def parse(path):
    """The :class:`Page` of the HTML file at ``path``, parsed once."""
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def is_internal(url):
    """Whether ``url`` points into the site (a relative URL)."""
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and not url.startswith(("mailto:", "data:"))


def target_of(page_path, url):
    """The file and fragment a relative URL on ``page_path`` points to."""
    parts = urlsplit(url)
    path = page_path if not parts.path else (page_path.parent / unquote(parts.path)).resolve()
    if path.is_dir():
        path = path / "index.html"
    return path, unquote(parts.fragment)


def check_links_and_images(pages):
    """Every internal link and image of every page resolves; returns the problems."""
    problems = []
    for path in pages:
        page = parse(path)
        where = path.relative_to(SITE)
        for url in page.links:
            if not is_internal(url):
                continue
            target, fragment = target_of(path, url)
            if not target.is_file():
                problems.append(f"{where}: link to a missing file: {url}")
            elif fragment and target.suffix == ".html" and fragment not in parse(target).ids:
                problems.append(f"{where}: link to a missing anchor: {url}")
        for src in page.images:
            if is_internal(src) and not target_of(path, src)[0].is_file():
                problems.append(f"{where}: missing image: {src}")
    return problems


def public_names():
    """Every name in the ``__all__`` of skae's public modules."""
    modules = ["skae", "skae.metrics", "skae.plotting", "skae.datasets", "skae.onnx"]
    return sorted({name for module in modules for name in importlib.import_module(module).__all__})


def check_search_index():
    """The search index was built and holds every public name."""
    index = SITE / "searchindex.js"
    if not index.is_file():
        return ["searchindex.js was not built"]
    text = index.read_text(encoding="utf-8")
    return [f"the search index lacks {name}" for name in public_names() if name not in text]


def check_gallery(not_run=()):
    """Each example has a page with its printed output, and its figures where it draws.

    The scripts named in ``not_run`` (they could not run) need only a page.
    """
    problems = []
    for script in gallery_scripts():
        page_path = SITE / "auto_examples" / script.relative_to(EXAMPLES).with_suffix(".html")
        if not page_path.is_file():
            problems.append(f"gallery: no page for {script.name}")
            continue
        page = parse(page_path)
        if script.stem in not_run:
            continue
        output = "".join(page.output_text)
        if not output.strip():
            problems.append(f"gallery: {script.name} shows no output from a run")
        if "Traceback (most recent call last)" in output:
            problems.append(f"gallery: {script.name} shows a failed run")
        draws = re.search(r"\bsave\(|figure\(|subplots\(", script.read_text(encoding="utf-8"))
        figures = [src for src in page.images if "sphx_glr_" in src]
        if draws and not figures:
            problems.append(f"gallery: {script.name} draws a figure but its page shows none")
    return problems


def serve(root):
    """Serve the folder ``root`` on a free port of 127.0.0.1 from a thread."""
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that logs nothing."""

    def log_message(self, *args):
        pass


class BrowserUnavailable(RuntimeError):
    """Chromium or Playwright is missing, or Chromium does not start."""


def check_in_browser(chromium):
    """Render the reader's first pages in headless Chromium; returns the problems."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    server = serve(SITE)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    pages = {
        "home": "index.html",
        "gallery": "auto_examples/index.html",
        "example": "auto_examples/demo.html",  # runs without MNIST; draws two figures
        "api": "api.html",
        "class": "generated/skae.AutoencoderTransformer.html",
        "moving_from_pca": "moving_from_pca.html",
    }
    problems = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Chromium's own background connections are refused on a closed network.
    flags = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    try:
        with sync_playwright() as playwright:
            try:
                browser = playwright.chromium.launch(executable_path=chromium, args=flags)
            except PlaywrightError as error:
                raise BrowserUnavailable(
                    f"Chromium at {chromium} did not start: {error}"
                ) from error
            view = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            view.on("pageerror", lambda error: errors.append(str(error)))
            for name, url in pages.items():
                errors.clear()
                response = view.goto(base + url, wait_until="networkidle")
                if response is None or response.status != 200:
                    problems.append(f"browser: {url} answered {response and response.status}")
                    continue
                broken = view.evaluate(
                    "Array.from(document.images)"
                    ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
                )
                problems += [f"browser: {url}: image not drawn: {src}" for src in broken]
                clipped = view.evaluate(
                    "Array.from(document.querySelectorAll('.pst-scrollable-table-container'))"
                    ".filter(e => e.scrollWidth > e.clientWidth + 1).length"
                )
                if clipped:
                    problems.append(f"browser: {url}: {clipped} tables wider than the page")
                problems += [f"browser: {url}: JavaScript error: {e}" for e in errors]
                if not view.locator("main h1").first.is_visible():
                    problems.append(f"browser: {url}: no visible title")
                view.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
            view.goto(base + "search.html?q=AutoencoderTransformer", wait_until="networkidle")
            try:
                view.locator("#search-results li").first.wait_for(timeout=15_000)
            except PlaywrightTimeout:
                problems.append("browser: searching AutoencoderTransformer found nothing")
            view.screenshot(path=str(SCREENSHOTS / "search.png"))
            browser.close()
    finally:
        server.shutdown()
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail when Chromium or Playwright is missing, or when the MNIST examples did not run",
    )
    args = parser.parse_args(argv)
    if not (SITE / "index.html").is_file():
        sys.exit(f"No site at {SITE}: build it first (make docs).")
    pages = sorted(p for p in SITE.rglob("*.html") if "_static" not in p.parts)
    problems = check_links_and_images(pages) + check_search_index()
    not_run = () if mnist_found() else mnist_examples()
    if not_run:
        notice = f"MNIST was not found (SKAE_DATA_HOME), so these examples did not run: {not_run}"
        problems += [notice] if args.strict else []
        print(notice)
    problems += check_gallery(not_run)
    print(f"Parsed {len(pages)} pages: links, anchors, images, search index, gallery output.")
    try:
        if importlib.util.find_spec("playwright") is None or not Path(args.chromium).is_file():
            raise BrowserUnavailable(
                f"Chromium at {args.chromium} and Playwright are needed "
                "(apt-get install chromium; pip install playwright)"
            )
        problems += check_in_browser(args.chromium)
        print(
            f"Rendered the reader's first pages in {args.chromium}; screenshots in {SCREENSHOTS}."
        )
    except BrowserUnavailable as missing:
        notice = f"No headless browser: {missing}. The pages were only parsed."
        problems += [notice] if args.strict else []
        print(notice)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(f"{len(problems)} problems in the built site.")
    print("The site checks passed.")


if __name__ == "__main__":
    main()
