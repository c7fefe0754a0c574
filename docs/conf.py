"""Sphinx configuration of skae's documentation site (``make docs``).

The site is built offline: intersphinx links to Python, NumPy, SciPy,
scikit-learn and PyTorch only for the inventories found in
``docs/_inventories/<name>.inv`` (none are shipped; with
``SKAE_DOCS_INTERSPHINX=online`` they are read from the projects' sites).
The gallery executes every script of ``docs/examples``; the MNIST ones need
the IDX files (``SKAE_DATA_HOME``) and are shown without output, with a
notice, when those are missing.
"""

import os
import re
import sys
from pathlib import Path

from skae import __version__

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))  # gallery_data, next to this file
sys.path.insert(0, str(DOCS / "examples"))  # the examples' shared module

from gallery_data import (  # noqa: E402
    NOT_IN_GALLERY,
    TightMatplotlibScraper,
    mnist_examples,
    mnist_found,
)

project = "skae"
copyright = "2026, the skae developers"
release = __version__
version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_design",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_inventories", "examples"]
templates_path = ["_templates"]

# The API reference: one page per public name, members documented by numpydoc.
autosummary_generate = True
autodoc_typehints = "none"  # the numpydoc sections say the types in words
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Markdown pages (the README's sections, the user guide, the changelog).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
suppress_warnings = ["myst.header"]  # included README sections start at level 2


def _intersphinx():
    projects = {
        "python": "https://docs.python.org/3",
        "numpy": "https://numpy.org/doc/stable",
        "scipy": "https://docs.scipy.org/doc/scipy",
        "sklearn": "https://scikit-learn.org/stable",
        "torch": "https://docs.pytorch.org/docs/stable",
    }
    online = os.environ.get("SKAE_DOCS_INTERSPHINX") == "online"
    mapping = {}
    for name, url in projects.items():
        shipped = DOCS / "_inventories" / f"{name}.inv"
        if online:
            mapping[name] = (url, None)
        elif shipped.is_file():
            mapping[name] = (url, str(shipped))
    return mapping


intersphinx_mapping = _intersphinx()


def _write_if_changed(path, text):
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _benchmark_result_pages():
    """One page per file of ``benchmarks/results``, where the README's links point.

    The pages (``docs/benchmarks/results/``, not committed) only include the
    files, so the site always shows the stored results.
    """
    pages = DOCS / "benchmarks" / "results"
    names = []
    results = sorted((ROOT / "benchmarks" / "results").glob("*.md"))
    for result in (path for path in results if path.name != "README.md"):
        names.append(result.stem)
        _write_if_changed(
            pages / result.name,
            f"# `benchmarks/results/{result.name}`\n\n"
            f"```{{include}} ../../../benchmarks/results/{result.name}\n```\n",
        )
    toctree = "\n".join(names)
    _write_if_changed(
        pages / "README.md",
        "```{include} ../../../benchmarks/results/README.md\n```\n\n"
        f"```{{toctree}}\n:maxdepth: 1\n\n{toctree}\n```\n",
    )


_benchmark_result_pages()

# Every cross-reference must resolve (with -W, a broken one fails the build),
# except those to other projects, which resolve only when their inventories do.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(sklearn|numpy|np|scipy|torch|pandas|matplotlib|dask)\b.*")]
toc_object_entries_show_parents = "hide"

# The gallery: every example runs; MNIST ones only when the files are found.
_executed = r"\.py$"
if not mnist_found():
    print(
        "skae docs: MNIST's IDX files were not found (set SKAE_DATA_HOME); the MNIST "
        "examples are rendered without running them.",
        file=sys.stderr,
    )
    skipped = "|".join(re.escape(stem) for stem in mnist_examples())
    _executed = r"/(?!(" + skipped + r")\.py$)[^/]*\.py$"

os.environ["SKAE_GALLERY"] = "1"  # the examples keep their figures open for the scraper
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": _executed,
    # Every build runs every example: an unchanged script's output goes stale
    # when skae or the examples' shared module changes.
    "run_stale_examples": True,
    "ignore_pattern": r"(^|/)(" + "|".join(NOT_IN_GALLERY) + r")\.py$",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "capture_repr": (),
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib",),
    "image_scrapers": (TightMatplotlibScraper(),),
    "min_reported_time": 1,
    "doc_module": ("skae",),
    "backreferences_dir": "generated/backreferences",
}

html_theme = "pydata_sphinx_theme"
html_title = f"skae {version}"
html_static_path = ["_static"]
html_css_files = ["skae.css"]
# Single pages with no sub-pages: no empty navigation column beside them.
html_sidebars = {
    page: []
    for page in [
        "getting_started",
        "user_guide",
        "moving_from_pca",
        "changelog",
        "development",
        "experiments",
    ]
}
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
html_context = {"default_mode": "light"}
