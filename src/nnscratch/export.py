r"""ONNX export: a model file as a graph that onnxruntime, TensorRT, OpenVINO or a browser runs.

:func:`to_onnx` turns a :class:`~nnscratch.serialization.SavedModel` into one ONNX file with

- an input ``pixels``, float32 of shape ``(N, n_features)`` (``N`` symbolic), scaled as the model
  was trained (``pixel / 255`` for what ``nnscratch train`` makes);
- an output ``logits``, shape ``(N, n_outputs)``, what the network computes;
- an output ``probabilities``, shape ``(N, n_classes)``: exactly what
  :meth:`SavedModel.predict_proba <nnscratch.serialization.SavedModel.predict_proba>` gives —
  the softmax of the logits, or for a one-logit binary model the two columns
  :math:`(1 - \sigma(z), \sigma(z))`;
- metadata properties (string keys and values; ``custom_metadata_map`` in onnxruntime): the
  class labels, the recipe and settings, the dataset and preprocessing, the SHA-256 of the
  training arrays and of the data files, the nnscratch version (see :data:`METADATA_KEYS`).

The graph uses the default ONNX domain at opset :data:`OPSET` (17) and IR version
:data:`IR_VERSION` (8), which onnxruntime has loaded since 1.12 (2022) and which has every op
that nnscratch's layers need (``LayerNormalization`` arrived in 17). Weights are stored as
float32: a float64 model is exported in float32 (``Export.converted_from`` says so).

Each layer type has one small function in :data:`EXPORTERS` that appends its nodes to the graph
(``Dense`` is ``Gemm``, ``ReLU`` is ``Relu``, ``Dropout`` adds nothing: it is the identity at
inference); adding a layer type is adding one function. A model with a layer that has none is
refused, naming the layer, before anything is written; the file itself is written atomically
(:func:`nnscratch._atomic.atomic_write`).

What is left out: other input dtypes (float16, uint8 pixels), the preprocessing of pictures
(decoding, MNIST's centring: see ``docs/export.md``) and training graphs. The ``onnx`` package
is needed (``pip install "nnscratch[onnx]"``), imported only when a model is exported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch._atomic import atomic_write
from nnscratch.nn import activations
from nnscratch.nn.conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
from nnscratch.nn.layers import Dense, Dropout, Flatten, Layer, Reshape
from nnscratch.nn.normalization import BatchNorm, LayerNorm
from nnscratch.serialization import SavedModel

if TYPE_CHECKING:
    import onnx

__all__ = ["EXPORTERS", "INPUT", "IR_VERSION", "METADATA_KEYS", "OPSET", "Export", "ExportError",
           "build_onnx", "exportable_layers", "to_onnx"]

#: The opset of the default ONNX domain the graph uses.
OPSET = 17
#: The ONNX IR version of the file (8 is the one that goes with opset 17).
IR_VERSION = 8
#: The name of the graph's input; the outputs are ``probabilities`` and ``logits``.
INPUT = "pixels"

#: The metadata properties written (each a string; JSON where the value is structured).
METADATA_KEYS = {
    "classes": "JSON array of the class labels, in the order of the probability columns",
    "output": '"sigmoid" (one logit: column 1 is sigmoid(logit)) or "softmax"',
    "recipe": "the nnscratch train recipe, when the model file records one",
    "config": "JSON object of every training setting, when recorded",
    "dataset": '"mnist" or "fashion-mnist", when recorded',
    "preprocessing": "JSON object: how the input rows were made (scale, flatten, dtype)",
    "training_data_sha256": "SHA-256 of the training arrays as the model saw them",
    "data_files_sha256": "JSON object: the SHA-256 of each data file read (run folders)",
    "model_dtype": "the dtype of the nnscratch model (the graph is float32 either way)",
    "nnscratch_version": "the nnscratch that exported the file",
    "model_nnscratch_version": "the nnscratch that wrote the model file",
}


class ExportError(ValueError):
    """A model that cannot be exported: a layer type with no ONNX form."""


@dataclass(frozen=True)
class Export:
    """What :func:`to_onnx` wrote.

    Attributes
    ----------
    path : str
        The ONNX file.
    model : onnx.ModelProto
        The model it holds.
    converted_from : str or None
        ``"float64"`` when the model's weights were converted to float32, else ``None``.
    """

    path: str
    model: Any
    converted_from: str | None


class _Graph:
    """The graph being built: nodes, weights (initialisers) and unique names."""

    def __init__(self, onnx_module: Any) -> None:
        self.onnx = onnx_module
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def weight(self, hint: str, value: Any) -> str:
        """Add a float32 initialiser (a copy of ``value``) and return its name."""
        name = self.name(hint)
        array = np.ascontiguousarray(value, dtype=np.float32)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def ints(self, hint: str, value: Any) -> str:
        """Add an int64 initialiser (a shape) and return its name."""
        name = self.name(hint)
        array = np.asarray(value, dtype=np.int64)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attributes: Any
             ) -> str:
        """Append ``op(inputs)`` and return the name of its output."""
        output = output or self.name(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output,
                                                     **attributes))
        return output


#: The function that appends each layer type's nodes: ``(layer, graph, x) -> y`` where ``x``
#: and ``y`` name the layer's input and output.
Exporter = Callable[[Any, _Graph, str], str]


def _dense(layer: Dense, graph: _Graph, x: str) -> str:
    # Gemm: Y = X W + b, with b broadcast over the rows.
    return graph.node("Gemm", [x, graph.weight("W", layer.W.value),
                               graph.weight("b", layer.b.value)])


def _dropped(layer: Layer, graph: _Graph, x: str) -> str:
    return x  # Dropout and Identity: the identity at inference


def _relu(layer: activations.ReLU, graph: _Graph, x: str) -> str:
    return graph.node("Relu", [x])


def _leaky_relu(layer: activations.LeakyReLU, graph: _Graph, x: str) -> str:
    return graph.node("LeakyRelu", [x], alpha=float(layer.negative_slope))


def _sigmoid(layer: activations.Sigmoid, graph: _Graph, x: str) -> str:
    return graph.node("Sigmoid", [x])


def _tanh(layer: activations.Tanh, graph: _Graph, x: str) -> str:
    return graph.node("Tanh", [x])


def _elu(layer: activations.ELU, graph: _Graph, x: str) -> str:
    return graph.node("Elu", [x], alpha=float(layer.alpha))


def _gelu(layer: activations.GELU, graph: _Graph, x: str) -> str:
    r"""Our tanh form, :math:`\tfrac12 x (1 + \tanh(c (x + 0.044715 x^3)))`, op by op.

    ONNX's own ``Gelu`` (with ``approximate="tanh"``) needs opset 20; these six ops are the
    same formula at opset 17.
    """
    cube = graph.node("Mul", [graph.node("Mul", [x, x]), x])
    inner = graph.node("Add", [x, graph.node("Mul", [graph.weight("k", layer._K), cube])])
    t = graph.node("Tanh", [graph.node("Mul", [graph.weight("c", layer._C), inner])])
    half_x = graph.node("Mul", [graph.weight("half", 0.5), x])
    return graph.node("Mul", [half_x, graph.node("Add", [graph.weight("one", 1.0), t])])


def _softmax(layer: activations.Softmax, graph: _Graph, x: str) -> str:
    return graph.node("Softmax", [x], axis=1)


def _reshape(layer: Reshape, graph: _Graph, x: str) -> str:
    # (N, features) -> (N, *shape), row-major like NumPy's reshape; -1 keeps the batch symbolic.
    return graph.node("Reshape", [x, graph.ints("shape", [-1, *layer.shape])])


def _flatten(layer: Flatten, graph: _Graph, x: str) -> str:
    return graph.node("Flatten", [x], axis=1)  # (N, C, H, W) -> (N, C*H*W), as x.reshape(n, -1)


def _conv2d(layer: Conv2D, graph: _Graph, x: str) -> str:
    # Our W (out, in, kh, kw) is ONNX's (M, C, kH, kW); pads are (top, left, bottom, right).
    ph, pw = layer.padding
    weights = [graph.weight("W", layer.W.value), graph.weight("b", layer.b.value)]
    return graph.node("Conv", [x, *weights], kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride), pads=[ph, pw, ph, pw], dilations=[1, 1],
                      group=1)


def _max_pool2d(layer: MaxPool2D, graph: _Graph, x: str) -> str:
    return graph.node("MaxPool", [x], kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride), pads=[0, 0, 0, 0], ceil_mode=0)


def _avg_pool2d(layer: AvgPool2D, graph: _Graph, x: str) -> str:
    return graph.node("AveragePool", [x], kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride), pads=[0, 0, 0, 0], ceil_mode=0,
                      count_include_pad=0)


def _global_avg_pool2d(layer: GlobalAvgPool2D, graph: _Graph, x: str) -> str:
    # Ours gives (N, C); ONNX's GlobalAveragePool (N, C, 1, 1).
    return graph.node("Flatten", [graph.node("GlobalAveragePool", [x])], axis=1)


def _batch_norm(layer: BatchNorm, graph: _Graph, x: str) -> str:
    # The inference form: (x - running_mean) / sqrt(running_var + eps) * gamma + beta, along
    # axis 1 for (N, C) and (N, C, H, W) alike.
    return graph.node("BatchNormalization",
                      [x, graph.weight("gamma", layer.gamma.value),
                       graph.weight("beta", layer.beta.value),
                       graph.weight("running_mean", layer.running_mean),
                       graph.weight("running_var", layer.running_var)],
                      epsilon=float(layer.eps))


def _layer_norm(layer: LayerNorm, graph: _Graph, x: str) -> str:
    # Normalised over the trailing len(normalized_shape) axes (opset 17's LayerNormalization).
    return graph.node("LayerNormalization",
                      [x, graph.weight("gamma", layer.gamma.value),
                       graph.weight("beta", layer.beta.value)],
                      axis=-len(layer.normalized_shape), epsilon=float(layer.eps))


#: The export function of each layer type.
EXPORTERS: dict[type, Exporter] = {
    Reshape: _reshape,
    Flatten: _flatten,
    Conv2D: _conv2d,
    MaxPool2D: _max_pool2d,
    AvgPool2D: _avg_pool2d,
    GlobalAvgPool2D: _global_avg_pool2d,
    BatchNorm: _batch_norm,
    LayerNorm: _layer_norm,
    Dense: _dense,
    Dropout: _dropped,
    activations.Identity: _dropped,
    activations.ReLU: _relu,
    activations.LeakyReLU: _leaky_relu,
    activations.Sigmoid: _sigmoid,
    activations.Tanh: _tanh,
    activations.ELU: _elu,
    activations.GELU: _gelu,
    activations.Softmax: _softmax,
}


def exportable_layers() -> list[str]:
    """The names of the layer types :func:`to_onnx` can export, sorted."""
    return sorted(cls.__name__ for cls in EXPORTERS)


def _check_exportable(saved: SavedModel) -> None:
    if saved.model.in_features is None:
        raise ExportError(
            "the model takes images of any size (its first layer is a "
            f"{type(saved.model.layers[0]).__name__}), but the ONNX graph takes rows of pixels "
            "(N, n_features); begin the model with Reshape((channels, height, width)). Nothing "
            "was written."
        )
    for position, layer in enumerate(saved.model.layers):
        if type(layer) not in EXPORTERS:  # exact types: a subclass may compute another thing
            raise ExportError(
                f"layer {position} is a {type(layer).__name__}, which has no ONNX export; the "
                f"layers that export are {', '.join(exportable_layers())}. Nothing was written."
            )


def _outputs(saved: SavedModel, graph: _Graph, last: str) -> None:
    """The ``logits`` and ``probabilities`` outputs, as ``SavedModel.predict_proba`` does."""
    logits = graph.node("Identity", [last], "logits")
    if saved.classes.shape[0] == 2:  # one logit: p = sigmoid(z), columns (1 - p, p)
        p = graph.node("Sigmoid", [logits])
        graph.node("Concat", [graph.node("Sub", [graph.weight("one", 1.0), p]), p],
                   "probabilities", axis=1)
    else:
        graph.node("Softmax", [logits], "probabilities", axis=1)


def _metadata(saved: SavedModel, data_files_sha256: Mapping[str, str] | None) -> dict[str, str]:
    from nnscratch._version import __version__

    document = saved.metadata
    config = document.get("config") if isinstance(document.get("config"), dict) else None
    values: dict[str, Any] = {
        "classes": json.dumps(saved.classes.tolist(), ensure_ascii=False),
        "output": "sigmoid" if saved.classes.shape[0] == 2 else "softmax",
        "recipe": config.get("recipe") if config else None,
        "config": json.dumps(config, ensure_ascii=False) if config else None,
        "dataset": document.get("dataset"),
        "preprocessing": (json.dumps(document["preprocessing"], ensure_ascii=False)
                          if isinstance(document.get("preprocessing"), dict) else None),
        "training_data_sha256": document.get("training_data_sha256"),
        "data_files_sha256": (json.dumps(dict(data_files_sha256), sort_keys=True)
                              if data_files_sha256 else None),
        "model_dtype": saved.model.dtype.name,
        "nnscratch_version": __version__,
        "model_nnscratch_version": (document.get("versions") or {}).get("nnscratch"),
    }
    return {key: str(value) for key, value in values.items() if value is not None}


def build_onnx(saved: SavedModel, *,
               data_files_sha256: Mapping[str, str] | None = None) -> onnx.ModelProto:
    """The ONNX model of ``saved``, in memory (:func:`to_onnx` writes it).

    Raises
    ------
    ExportError
        If a layer has no ONNX form.
    ModuleNotFoundError
        If the ``onnx`` package is not installed.
    """
    _check_exportable(saved)
    import onnx

    from nnscratch._version import __version__

    graph = _Graph(onnx)
    value = INPUT
    for layer in saved.model.layers:
        value = EXPORTERS[type(layer)](layer, graph, value)
    _outputs(saved, graph, value)
    n_classes, n_outputs = saved.classes.shape[0], saved.model.out_features
    float32 = onnx.TensorProto.FLOAT
    model = onnx.helper.make_model(
        onnx.helper.make_graph(
            graph.nodes, "nnscratch",
            [onnx.helper.make_tensor_value_info(INPUT, float32, ["N", saved.model.in_features])],
            [onnx.helper.make_tensor_value_info("probabilities", float32, ["N", n_classes]),
             onnx.helper.make_tensor_value_info("logits", float32, ["N", n_outputs])],
            graph.initializers,
        ),
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="nnscratch",
        producer_version=__version__,
        doc_string="A network trained with nnscratch: pixels -> probabilities, logits.",
    )
    onnx.helper.set_model_props(model, _metadata(saved, data_files_sha256))
    return model


def to_onnx(saved_model: SavedModel, path: str | os.PathLike[str], *,
            data_files_sha256: Mapping[str, str] | None = None) -> Export:
    r"""Write ``saved_model`` as an ONNX file at ``path``, atomically.

    Parameters
    ----------
    saved_model : SavedModel
        A loaded model (:func:`nnscratch.serialization.load_model`) whose layers all have an
        exporter in :data:`EXPORTERS`.
    path : str or PathLike
        Destination, conventionally ending in ``.onnx``; its directory must exist. An existing
        file is replaced only once the new one is completely written.
    data_files_sha256 : mapping of str to str, optional
        The SHA-256 of each data file the model was trained from (a run folder's
        ``provenance.json`` has them), recorded in the metadata.

    Returns
    -------
    Export
        The path, the ``onnx.ModelProto`` and whether float64 weights became float32.

    Raises
    ------
    TypeError
        If ``saved_model`` is not a ``SavedModel``.
    ExportError
        If a layer has no ONNX form; the message names it, and nothing is written.
    ModuleNotFoundError
        If the ``onnx`` package is missing (``pip install "nnscratch[onnx]"``).
    OSError
        If the file cannot be written; any previous file is left as it was.

    Notes
    -----
    The graph computes, for input rows :math:`X` (float32),

    .. math:: \text{logits} = f(X), \qquad \text{probabilities} =
              \begin{cases} (1 - \sigma(z), \sigma(z)) & \text{one logit } z \\
              \operatorname{softmax}(\text{logits}) & \text{otherwise} \end{cases}

    where :math:`f` is the network's layers in order, ``Dropout`` removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from nnscratch import build_mlp
    >>> from nnscratch.serialization import SavedModel
    >>> saved = SavedModel(build_mlp(4, [3], 1, rng=0), classes=["no", "yes"])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.onnx"
    >>> to_onnx(saved, path).converted_from is None  # build_mlp makes float32 models
    True
    """
    if not isinstance(saved_model, SavedModel):
        raise TypeError(f"saved_model must be a SavedModel (from load_model), got "
                        f"{type(saved_model).__name__}.")
    model = build_onnx(saved_model, data_files_sha256=data_files_sha256)
    data = model.SerializeToString()
    with atomic_write(path) as file:
        file.write(data)
    dtype = saved_model.model.dtype
    return Export(os.fspath(path), model, None if dtype == np.float32 else dtype.name)
