"""The estimators' docstrings: every parameter documented, shared text shared."""

import inspect

import pytest

from skae import AutoencoderTransformer, VAETransformer
from skae._docstrings import _descriptions, with_shared_descriptions


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_every_parameter_is_documented(cls):
    documented = inspect.cleandoc(cls.__doc__)
    for name in inspect.signature(cls).parameters:
        assert f"\n{name} : " in documented, name


@pytest.mark.parametrize("name", ["optimizer", "device", "warm_start", "validation_fraction"])
def test_the_vae_shares_the_autoencoders_text(name):
    shared = _descriptions(inspect.cleandoc(AutoencoderTransformer.__doc__), "Parameters")
    assert _descriptions(VAETransformer.__doc__, "Parameters")[name] == shared[name]
    assert shared[name]


def test_own_descriptions_are_kept_and_bare_entries_filled():
    source = """Source.

    Parameters
    ----------
    a : int
        Source's a.
    b : int
        Source's b.

    Attributes
    ----------
    c_ : float
        Source's c.
    """
    doc = """Target.

    Parameters
    ----------
    a : int
    b : int
        Target's own b.
    d : int

    Attributes
    ----------
    c_ : float
    """
    filled = with_shared_descriptions(doc, source)
    assert "a : int\n    Source's a.\nb : int\n    Target's own b.\nd : int" in filled
    assert "c_ : float\n    Source's c." in filled


# ------------------------------------------------ numpydoc, as scikit-learn's


# Not required of every public object: an extended summary, a See Also
# section, examples, and a bare type on the Returns line.
NUMPYDOC_IGNORED = {"GL08", "ES01", "SA01", "EX01", "RT02"}


def public_names():
    """Dotted names of skae's public classes, functions, methods and properties."""
    import skae.datasets
    import skae.inspection
    import skae.metrics
    import skae.plotting

    modules = [skae, skae.metrics, skae.inspection, skae.plotting, skae.datasets]
    try:
        import skae.onnx

        modules.append(skae.onnx)
    except ImportError:
        pass
    names = set()
    for module in modules:
        for name in getattr(module, "__all__", [n for n in dir(module) if not n.startswith("_")]):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not getattr(obj, "__module__", "").startswith("skae"):
                continue
            names.add(f"{obj.__module__}.{obj.__qualname__}")
            if not inspect.isclass(obj):
                continue
            for member in dir(obj):
                owner = next((k for k in obj.__mro__ if member in vars(k)), None)
                if member.startswith("_") or not owner.__module__.startswith("skae"):
                    continue
                value = vars(owner)[member]
                if callable(value) or isinstance(value, property):
                    names.add(f"{owner.__module__}.{owner.__qualname__}.{member}")
    return sorted(names)


@pytest.mark.parametrize("name", public_names())
def test_public_docstrings_pass_numpydoc_validation(name):
    validate = pytest.importorskip("numpydoc.validate").validate
    try:
        report = validate(name)
    except StopIteration:
        pytest.skip("numpydoc cannot find this property's source line")
    errors = [f"{code}: {message}" for code, message in report["errors"]]
    errors = [error for error in errors if error[:4] not in NUMPYDOC_IGNORED]
    assert not errors, "\n".join(errors)
