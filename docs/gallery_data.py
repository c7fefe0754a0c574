"""Which scripts are gallery pages, which of them need MNIST, and whether it is here.

Shared by ``conf.py`` (which runs the MNIST examples only when the files
are found) and ``check_site.py`` (which then expects no output from them).
"""

import re
from pathlib import Path

from skae.datasets import load_mnist

EXAMPLES = Path(__file__).resolve().parent / "examples"
# Not gallery pages: the examples' shared module, and the torchrun example
# (it needs a process group; the test suite runs it).
NOT_IN_GALLERY = ("_shared", "distributed_fit")


def gallery_scripts():
    """The scripts of ``docs/examples`` that are gallery pages."""
    return [p for p in sorted(EXAMPLES.rglob("*.py")) if p.stem not in NOT_IN_GALLERY]


def mnist_examples():
    """Stems of the gallery scripts that read MNIST."""
    pattern = r"\b(mnist_example|load_mnist_split|load_mnist)\("
    return [p.stem for p in gallery_scripts() if re.search(pattern, p.read_text())]


def mnist_found():
    """Whether MNIST's IDX files are where ``load_mnist`` looks (``SKAE_DATA_HOME``)."""
    try:
        load_mnist(return_X_y=True)
    except FileNotFoundError:
        return False
    return True


class TightMatplotlibScraper:
    """sphinx-gallery's matplotlib scraper, saving figures cropped to what they draw.

    The examples title their figures above the axes (``_shared.save``), where
    only a tight crop keeps the title. A class, not a function, so that
    Sphinx can pickle the configuration that holds it.
    """

    def __repr__(self):
        return "TightMatplotlibScraper"

    def __call__(self, block, block_vars, gallery_conf):
        from sphinx_gallery.scrapers import matplotlib_scraper

        return matplotlib_scraper(
            block, block_vars, gallery_conf, bbox_inches="tight", pad_inches=0.08
        )
