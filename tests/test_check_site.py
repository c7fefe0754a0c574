"""docs/check_site.py, the built-site check that CI runs, fails on what it is for."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
check_site = pytest.importorskip("check_site")


def write(path, body):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<html><body>{body}</body></html>", encoding="utf-8")
    return path


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "html"
    monkeypatch.setattr(check_site, "SITE", root)
    return root


def test_broken_links_anchors_and_images_are_reported(site):
    write(site / "_images" / "drawn.png", "")
    target = write(site / "b.html", '<h1 id="here">B</h1>')
    page = write(
        site / "a.html",
        '<a href="b.html">ok</a> <a href="b.html#here">ok</a> <a href="#top" id="top">ok</a>'
        '<a href="https://example.org/x.html">outside</a> <img src="_images/drawn.png">'
        '<a href="missing.html">x</a> <a href="b.html#nowhere">x</a> <img src="_images/gone.png">',
    )
    problems = check_site.check_links_and_images([page, target])
    assert problems == [
        "a.html: link to a missing file: missing.html",
        "a.html: link to a missing anchor: b.html#nowhere",
        "a.html: missing image: _images/gone.png",
    ]


def test_a_search_index_without_the_public_names_is_reported(site):
    assert check_site.check_search_index() == ["searchindex.js was not built"]
    write(site / "searchindex.js", "AutoencoderTransformer")
    missing = check_site.check_search_index()
    assert "the search index lacks VAETransformer" in missing
    assert not any("AutoencoderTransformer" in problem for problem in missing)


def test_gallery_pages_without_output_figures_or_with_a_traceback_are_reported(
    site, tmp_path, monkeypatch
):
    examples = tmp_path / "examples"
    examples.mkdir()
    scripts = []
    for name, source in [
        ("good", "fig, ax = plt.subplots()"),
        ("silent", "x = 1"),
        ("failed", "x = 1"),
        ("no_figure", "fig, ax = plt.subplots()"),
        ("absent", "x = 1"),
        ("not_run", "x = 1"),
    ]:
        scripts.append(examples / f"{name}.py")
        scripts[-1].write_text(source)
    monkeypatch.setattr(check_site, "EXAMPLES", examples)
    monkeypatch.setattr(check_site, "gallery_scripts", lambda: scripts)
    output = '<div class="sphx-glr-script-out"><pre>{}</pre></div>'
    pages = site / "auto_examples"
    write(pages / "good.html", output.format("0.95") + '<img src="images/sphx_glr_good_001.png">')
    write(pages / "silent.html", "")
    write(pages / "failed.html", output.format("Traceback (most recent call last):"))
    write(pages / "no_figure.html", output.format("0.95"))
    write(pages / "not_run.html", "")
    assert check_site.check_gallery(not_run=["not_run"]) == [
        "gallery: silent.py shows no output from a run",
        "gallery: failed.py shows a failed run",
        "gallery: no_figure.py draws a figure but its page shows none",
        "gallery: no page for absent.py",
    ]
