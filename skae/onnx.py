"""ONNX export: skae's estimators as skl2onnx converters.

Importing this module registers :class:`~skae.AutoencoderTransformer` and
:class:`~skae.VAETransformer` with skl2onnx, so that ``skl2onnx.to_onnx``
converts them alone or inside a Pipeline, and onnxruntime computes what
``transform`` computes (float32). The option ``{"inverse": True}`` exports
``inverse_transform`` instead: a graph from codes to reconstructions, for
an estimator converted on its own.

The network is exported by PyTorch's own exporter (``torch.onnx.export``,
which needs onnxscript) and its graph is inlined into skl2onnx's. Install
the optional dependencies with ``pip install onnx onnxscript skl2onnx onnxruntime``
(in a clone of skae: ``pip install -e ".[onnx]"``).

Examples
--------
>>> import numpy as np
>>> import onnxruntime
>>> from skl2onnx import to_onnx
>>> from sklearn.datasets import load_digits
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import MinMaxScaler
>>> import skae.onnx  # registers the converters
>>> from skae import AutoencoderTransformer
>>> X = load_digits().data.astype(np.float32)
>>> pipe = make_pipeline(MinMaxScaler(), AutoencoderTransformer(4, max_epochs=2, random_state=0))
>>> pipe = pipe.fit(X)
>>> session = onnxruntime.InferenceSession(to_onnx(pipe, X[:1]).SerializeToString())
>>> codes = session.run(None, {"X": X})[0]
>>> bool(np.allclose(codes, pipe.transform(X), atol=1e-5))
True
"""

import copy
import inspect
import io
import logging
import numbers
import warnings

import torch

from ._autoencoder import AutoencoderTransformer
from ._vae import VAETransformer

# torch's exporter emits this opset; older targets are refused.
EXPORT_OPSET = 18

__all__ = ["register_converters"]


def _imports():
    try:
        import onnx
        import skl2onnx
    except ImportError as error:
        raise ImportError(
            "ONNX export needs onnx, onnxscript and skl2onnx: pip install onnx onnxscript skl2onnx"
        ) from error
    return onnx, skl2onnx


class _Direction(torch.nn.Module):
    """The network's ``encode`` (``transform``) or ``decode`` (``inverse_transform``)."""

    def __init__(self, network, inverse):
        super().__init__()
        self.network = network
        self.inverse = inverse

    def forward(self, x):
        return self.network.decode(x) if self.inverse else self.network.encode(x)


def exported_graph(estimator, inverse=False, opset=EXPORT_OPSET):
    """The ONNX model of ``estimator``'s ``transform`` (or ``inverse_transform``), float32.

    Parameters
    ----------
    estimator : fitted AutoencoderTransformer or VAETransformer
    inverse : bool, default=False
        Export ``inverse_transform`` (codes to data) instead of ``transform``.
    opset : int, default=EXPORT_OPSET

    Returns
    -------
    model : onnx.ModelProto
        One input and one output, both float32 with a dynamic first axis.
    """
    onnx, _ = _imports()
    estimator._fitted_network()  # raises NotFittedError
    network = copy.deepcopy(estimator._state.on_cpu().network).float().eval()
    width = estimator._state.spec.n_components if inverse else estimator.n_features_in_
    example = torch.zeros(2, width)
    # The exporter logs notes on its own internals (e.g. that torchvision's
    # operators are skipped) as warnings; quiet them for this call only.
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            serialized = _export(network, inverse, example, opset)
        finally:
            registration.setLevel(level)
    return onnx.load_from_string(serialized)


# torch.onnx.export's own options for its dynamo-based exporter: `dynamo` and
# `dynamic_shapes` came in torch 2.5, `optimize` in 2.6.
_DYNAMO_EXPORTER = "optimize" in inspect.signature(torch.onnx.export).parameters


def _export(network, inverse, example, opset):
    """The serialized ONNX model of ``network``'s one direction."""
    module = _Direction(network, inverse)
    buffer = io.BytesIO()
    if _DYNAMO_EXPORTER:
        torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            opset_version=opset,
            dynamic_shapes=({0: torch.export.Dim("n_samples")},),
            verbose=False,
            optimize=True,
        ).save(buffer)
    else:
        # torch 2.4 and 2.5 (which pyproject allows): the TorchScript exporter,
        # the same operators, with the first axis named dynamic.
        torch.onnx.export(
            module,
            (example,),
            buffer,
            opset_version=opset,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "n_samples"}, "y": {0: "n_samples"}},
        )
    return buffer.getvalue()


def _shape_calculator(operator):
    from skl2onnx.common.data_types import FloatTensorType

    estimator = operator.raw_operator
    estimator._fitted_network()  # raises NotFittedError
    inverse = _inverse(operator.scope_inst, estimator)
    _check_input_width(estimator, operator.inputs[0].type.shape, inverse)
    width = estimator.n_features_in_ if inverse else estimator._state.spec.n_components
    n_samples = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n_samples, width])


def _check_input_width(estimator, shape, inverse):
    """The input's shape in the graph (the example's, or in a Pipeline the previous
    step's output) is rows of the width ``estimator`` takes, where it is known."""
    name = type(estimator).__name__
    if inverse:
        expected, what = estimator._state.spec.n_components, f"{name}'s inverse_transform takes"
        unit = "code values"
    else:
        expected, what = estimator.n_features_in_, f"{name} was fitted on"
        unit = "features"
    if shape is not None and len(shape) != 2:
        raise ValueError(
            f"{what} rows of {expected} {unit}; its input in the ONNX graph has shape "
            f"{list(shape)}, not 2-D."
        )
    width = None if shape is None else shape[1]
    if isinstance(width, numbers.Integral) and width != expected:
        raise ValueError(
            f"{what} {expected} {unit}; its input in the ONNX graph has {width} columns "
            "(the width of the example given to to_onnx, or of the previous step's output "
            "in a Pipeline)."
        )


def _inverse(options_holder, estimator):
    """The ``inverse`` option given for ``estimator`` (a scope or a container holds them)."""
    return bool(options_holder.get_options(estimator, {"inverse": False})["inverse"])


def _converter(scope, operator, container):
    onnx, _ = _imports()
    from onnx import TensorProto, numpy_helper
    from onnx.helper import get_attribute_value

    if container.target_opset < EXPORT_OPSET:
        raise ValueError(
            f"skae's estimators need target_opset >= {EXPORT_OPSET}; got {container.target_opset}."
        )
    inverse = _inverse(container, operator.raw_operator)
    model = exported_graph(operator.raw_operator, inverse=inverse)
    graph = model.graph
    source = operator.inputs[0]
    input_name = source.full_name
    if source.type.to_onnx_type().tensor_type.elem_type != TensorProto.FLOAT:
        input_name = scope.get_unique_variable_name("skae_float_input")
        container.add_node("Cast", source.full_name, input_name, to=TensorProto.FLOAT)
    names = {graph.input[0].name: input_name, graph.output[0].name: operator.outputs[0].full_name}

    def renamed(name):
        if not name:
            return name
        if name not in names:
            names[name] = scope.get_unique_variable_name(f"skae_{name}")
        return names[name]

    for tensor in graph.initializer:
        values = numpy_helper.to_array(tensor)
        container.add_initializer(
            renamed(tensor.name), tensor.data_type, list(values.shape), values.ravel().tolist()
        )
    domains = {entry.domain: entry.version for entry in model.opset_import}
    for node in graph.node:
        attributes = {a.name: get_attribute_value(a) for a in node.attribute}
        container.add_node(
            node.op_type,
            [renamed(name) for name in node.input],
            [renamed(name) for name in node.output],
            op_domain=node.domain,
            op_version=domains.get(node.domain, EXPORT_OPSET),
            name=scope.get_unique_operator_name(f"skae_{node.op_type}"),
            **attributes,
        )


def register_converters():
    """Register both estimators with skl2onnx (done once when this module is imported)."""
    _, skl2onnx = _imports()
    for estimator in (AutoencoderTransformer, VAETransformer):
        skl2onnx.update_registered_converter(
            estimator,
            f"Skae{estimator.__name__}",
            _shape_calculator,
            _converter,
            options={"inverse": [False, True]},
        )


register_converters()
