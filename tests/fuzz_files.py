"""Hypothesis fuzzing of skae model files (see ``tests/file_mutations.py`` for the rule).

Not collected by ``pytest`` itself (the name does not start with ``test_``):
``tests/test_persistence_fuzz.py`` runs it in a subprocess, so that a file
that crashes the process fails a test instead of ending the run. Run it
alone with ``python -m pytest tests/fuzz_files.py``; ``SKAE_FUZZ_EXAMPLES``
sets the examples per test (default 25).
"""

import os

import pytest
from file_mutations import (
    CONTRADICTIONS,
    MAP_MODELS,
    MODELS,
    REPLACEMENTS,
    TENSOR_EDITS,
    add_json_field,
    behaviour_of,
    contradicted,
    data,
    edit_json,
    edit_tensors,
    flipped,
    header_length,
    json_paths,
    outcome,
    read,
    truncated,
    write,
    write_models,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("SKAE_FUZZ_EXAMPLES", "25"))
fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
model_names = st.sampled_from(sorted(MODELS))


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Each model's file, bytes, parts and behaviour."""
    X = data()
    paths = write_models(tmp_path_factory.mktemp("originals"))
    return X, {
        name: {
            "path": path,
            "bytes": open(path, "rb").read(),
            "parts": read(path),
            "behaviour": behaviour_of(path, X),
        }
        for name, path in paths.items()
    }


@pytest.fixture(scope="module")
def map_parts(tmp_path_factory):
    """The parts of each of MAP_MODELS' files."""
    paths = write_models(tmp_path_factory.mktemp("maps"), MAP_MODELS)
    return {name: read(path) for name, path in paths.items()}


def check(path, X, behaviour=None):
    result = outcome(path, X, behaviour)
    assert not result.failed, result


@fuzz_settings
@given(name=model_names, position=st.integers(0, 10**9), mask=st.integers(1, 255))
def test_a_flipped_byte_is_rejected_or_harmless(originals, tmp_path, name, position, mask):
    X, files = originals
    original = files[name]
    path = tmp_path / "flipped.skae"
    path.write_bytes(flipped(original["bytes"], position, mask))
    check(path, X, original["behaviour"])


@fuzz_settings
@given(name=model_names, offset=st.integers(0, 10**9), mask=st.integers(1, 255))
def test_a_flipped_header_byte_is_rejected_or_harmless(originals, tmp_path, name, offset, mask):
    X, files = originals
    original = files[name]
    data_ = original["bytes"]
    position = 8 + offset % header_length(data_)
    path = tmp_path / "flipped.skae"
    path.write_bytes(flipped(data_, position, mask))
    check(path, X, original["behaviour"])


@fuzz_settings
@given(name=model_names, length=st.integers(0, 10**9))
def test_a_truncated_file_is_rejected(originals, tmp_path, name, length):
    X, files = originals
    original = files[name]
    path = tmp_path / "truncated.skae"
    path.write_bytes(truncated(original["bytes"], length))
    check(path, X, original["behaviour"])


@fuzz_settings
@given(
    name=model_names,
    choice=st.integers(0, 10**9),
    replacement=st.sampled_from([*REPLACEMENTS, KeyError]),
)
def test_an_edited_header_field_is_rejected_or_works(
    originals, tmp_path, name, choice, replacement
):
    X, files = originals
    metadata, tensors, document = files[name]["parts"]
    paths = [p for p in json_paths(document) if p]
    text = edit_json(document, paths[choice % len(paths)], replacement)
    path = tmp_path / "edited.skae"
    write(path, {**metadata, "estimator": text}, tensors)
    check(path, X)


@fuzz_settings
@given(
    name=model_names,
    choice=st.integers(0, 10**9),
    field=st.sampled_from(["extra", "__tuple__", "state"]),
    value=st.sampled_from(REPLACEMENTS[:18]),
)
def test_an_added_header_field_is_rejected_or_works(
    originals, tmp_path, name, choice, field, value
):
    X, files = originals
    metadata, tensors, document = files[name]["parts"]
    containers = [p for p in json_paths(document) if isinstance(_at(document, p), (dict, list))]
    text = add_json_field(document, containers[choice % len(containers)], field, value)
    path = tmp_path / "added.skae"
    write(path, {**metadata, "estimator": text}, tensors)
    check(path, X)


@fuzz_settings
@given(name=model_names, choice=st.integers(0, 10**9), how=st.sampled_from(TENSOR_EDITS))
def test_an_edited_tensor_is_rejected_or_works(originals, tmp_path, name, choice, how):
    X, files = originals
    metadata, tensors, _ = files[name]["parts"]
    names = sorted(tensors)
    path = tmp_path / "edited.skae"
    write(path, metadata, edit_tensors(tensors, names[choice % len(names)], how))
    check(path, X)


def _at(document, path):
    for key in path:
        document = document[key]
    return document


@pytest.mark.parametrize("contradiction", sorted(CONTRADICTIONS))
def test_a_file_that_contradicts_itself_is_rejected(originals, map_parts, tmp_path, contradiction):
    X, files = originals
    parts = {**{name: file["parts"] for name, file in files.items()}, **map_parts}
    applied = 0
    for name in sorted(parts):
        changed = contradicted(parts[name], contradiction)
        if changed is None:
            continue
        metadata, tensors, document = changed
        path = tmp_path / f"{name}.skae"
        write(path, metadata, tensors, document)
        result = outcome(path, X)
        assert result.kind == "rejected", (name, result)
        applied += 1
    assert applied
