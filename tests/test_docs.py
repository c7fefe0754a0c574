"""The documentation site's sources: the API reference lists every public name."""

import importlib
import inspect
import re
from pathlib import Path

import skae
import skae.datasets
import skae.inspection
import skae.metrics
import skae.plotting

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.rst"


def public_modules():
    modules = [skae, skae.metrics, skae.inspection, skae.plotting, skae.datasets]
    try:
        return [*modules, importlib.import_module("skae.onnx")]
    except ImportError:  # skl2onnx absent
        return modules


def test_every_public_name_has_a_page_in_the_api_reference():
    text = API_PAGE.read_text()
    listed = set()
    # Each autosummary's entries belong to the module of the currentmodule above it.
    for module, block in re.findall(
        r"currentmodule:: (\S+)\n(.*?)(?=currentmodule::|\Z)", text, re.S
    ):
        for entry in re.findall(r"^   (\w+)$", block, re.M):
            listed.add(f"{module}.{entry}")
    modules = public_modules()
    listed = {name for name in listed if name.rsplit(".", 1)[0] in {m.__name__ for m in modules}}
    expected = {
        f"{module.__name__}.{name}"
        for module in modules
        for name in module.__all__
        if not inspect.ismodule(getattr(module, name))
    }
    assert expected - listed == set(), "missing from docs/api.rst"
    assert listed - expected == set(), "listed in docs/api.rst but not public"
