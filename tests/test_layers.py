"""The package's layers: no import cycle, and no import from a lower layer up.

A module may import modules of its own layer or of the layers below it (at
the top of the file or inside a function alike). The layers, from the top
(see docs/development.md, "Architecture"):
"""

import ast
import pathlib

import pytest

LAYERS = [
    # The public API beside the estimators: helpers that take a fitted estimator.
    ("public", {"__init__", "_loading", "onnx", "plotting", "inspection", "metrics", "datasets"}),
    # The estimators: parameters, validation of the data, the fitted state's surface.
    ("estimators", {"_autoencoder", "_vae", "_base"}),
    # One fitting call, from the plan: the call, its hooks, the plan, files.
    ("fitting call", {"_fitting", "_callbacks", "_params", "_persistence", "_progress"}),
    # What a call prepares: the data, the start, pretraining, the fitted state.
    (
        "preparation",
        {
            "_training_data",
            "_initialization",
            "_layout",
            "_pretraining",
            "_neighbors",
            "_state",
            "_optimizer_state",
            "_file_checks",
        },
    ),
    # The engine: epochs, batches, inference, devices and process groups.
    ("engine", {"_training", "_summary", "_batches", "_inference", "_distributed", "_device"}),
    # Models and their settings: no torch training, no data handling.
    ("models", {"_models", "_objectives", "_networks", "_losses", "_plan"}),
    # Utilities every layer may use.
    (
        "utilities",
        {"_readers", "_config", "_threads", "_random", "_warnings", "_docstrings", "_compat"},
    ),
]

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "skae"


def layer_of(module):
    for depth, (_, modules) in enumerate(LAYERS):
        if module in modules:
            return depth
    raise AssertionError(f"skae/{module}.py belongs to no layer: add it to LAYERS")


def imports_of(path):
    """The skae modules ``path`` imports (relative imports, anywhere in the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def import_graph():
    return {path.stem: imports_of(path) for path in sorted(PACKAGE.glob("*.py"))}


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {imported} "
        f"({LAYERS[layer_of(imported)][0]})"
        for module, imported_modules in import_graph().items()
        for imported in sorted(imported_modules)
        if layer_of(imported) < layer_of(module)
    ]
    assert not upward, upward


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        if state.get(module) == "open":
            pytest.fail("import cycle: " + " -> ".join(path[path.index(module) :] + [module]))
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            visit(imported, path + [module])
        state[module] = "done"

    for module in graph:
        visit(module, [])


def estimator_uses(path):
    """Arguments named ``estimator`` and attributes read from one, in ``path``."""
    uses = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.arg) and node.arg == "estimator":
            uses.append(f"{path.stem}:{node.lineno} takes an estimator")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("estimator", "self_estimator")
        ):
            uses.append(f"{path.stem}:{node.lineno} reads estimator.{node.attr}")
    return uses


def test_no_module_below_the_estimators_reads_an_estimator():
    """The fitting path works from the plan: below the estimator classes no
    function takes an ``estimator`` or reads one."""
    uses = [
        use
        for module in import_graph()
        if layer_of(module) > layer_of("_base")
        for use in estimator_uses(PACKAGE / f"{module}.py")
    ]
    assert not uses, uses
