"""The documentation site's sources: the API reference lists every public name."""

import importlib
import inspect
import re
import subprocess
import sys
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


def test_the_readme_clone_folder_does_not_shadow_the_installed_package(tmp_path):
    # The README's clone, as git makes it, with Python run from the folder above.
    readme = (API_PAGE.parents[1] / "README.md").read_text()
    folder = re.search(r"git clone <this repository> (\S+) && cd \1", readme).group(1)
    (tmp_path / folder / "skae").mkdir(parents=True)
    (tmp_path / folder / "skae" / "__init__.py").write_text("")
    code = "import skae; print(skae.AutoencoderTransformer.__name__)"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "AutoencoderTransformer"
