"""Safe model files: one ``.npz`` of plain arrays plus JSON metadata, never a pickle.

A model file holds the weights of a :class:`~nnscratch.nn.model.Sequential` as numbered arrays
(``param_000``, ``param_001``, ...), batch norm's running statistics likewise (``buffer_000``,
...), and one ``metadata`` array of UTF-8 JSON bytes that says
everything else: the format version, the architecture (layer types and constructor
arguments), the classes and how outputs map to them, the preprocessing the inputs need, the
dtype, the nnscratch and NumPy versions, seeds, the SHA-256 of the training data, metrics, and
the name, shape, dtype and SHA-256 of every parameter array. ``docs/model-format.md`` is the
full specification.

Loading opens regular files only (a named pipe or a device is refused before it can block),
uses ``np.load(..., allow_pickle=False)`` — an object array (the way a pickle hides in an
``.npz``) is refused — and checks, before allocating or decompressing any weights: that every
archive member's declared size fits in the file (no decompression bombs), the type of every
metadata field, the classes, that the ``output`` field agrees with the architecture, that the
shape of one sample chains through every layer (a kernel no larger than its padded input,
channels and widths that match, no sample larger than :data:`MAX_SAMPLE_VALUES`), that the
architecture's parameter count is within a limit (:data:`MAX_PARAMETERS`, raised with
``max_parameters=``), that the array names are exactly those the metadata lists, and that
every array's shape, dtype and byte count (read from its header) match the metadata and the
architecture; then every array's SHA-256, and that every weight is finite. A changed byte, a
truncated file, a swapped or reshaped array, a NaN weight is reported as a clear
:class:`ModelFileError`, never as a stray ``KeyError`` or ``BadZipFile`` and never as a model
that predicts nonsense. Files are written atomically: an interrupted save leaves the previous
file intact.

The checksums protect against accidents and careless edits, not against an attacker, who can
rewrite the metadata along with the weights: to trust a file from elsewhere, compare the
SHA-256 of the whole file (``nnscratch info`` prints it) with one published by its author.

What is left out: optimiser state (a loaded model predicts or starts training afresh). ONNX
files are :mod:`nnscratch.export`'s.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnscratch._atomic import atomic_write
from nnscratch._files import NotRegularFileError, open_regular_file
from nnscratch._json import NonFiniteJSONError, to_json
from nnscratch._validation import FLOAT_DTYPES, check_features, check_int, check_n_features
from nnscratch.nn.activations import ACTIVATIONS
from nnscratch.nn.conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
from nnscratch.nn.layers import Dense, Dropout, Flatten, Layer, Reshape
from nnscratch.nn.losses import BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from nnscratch.nn.model import Sequential, forward_in_chunks
from nnscratch.nn.normalization import BatchNorm, LayerNorm

FORMAT_NAME = "nnscratch-model"
#: The newest format version this code reads and writes. Version 2 (issue 20) adds the
#: convolutional layers, the normalisations, ``Flatten`` and ``Reshape``, and the ``buffers``
#: field; a model made only of version 1's layers is still written as version 1, so that older
#: nnscratch reads it.
FORMAT_VERSION = 2

#: Layer classes by the ``type`` names the architecture uses.
LAYER_TYPES: dict[str, type[Layer]] = {
    "Dense": Dense,
    "Dropout": Dropout,
    **{cls.__name__: cls for cls in ACTIVATIONS.values()},
    **{cls.__name__: cls for cls in (Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D, BatchNorm,
                                     LayerNorm, Flatten, Reshape)},
}

#: The layer types of format version 1: dense layers, dropout and the activations.
VERSION_1_LAYERS = frozenset({"Dense", "Dropout",
                              *(cls.__name__ for cls in ACTIVATIONS.values())})

#: Metadata keys that :func:`save_model` writes itself; callers may not set them.
RESERVED_KEYS = frozenset({
    "format", "format_version", "architecture", "classes", "output", "dtype", "versions",
    "parameters", "buffers",
})

#: The most parameters :func:`load_model` accepts unless told otherwise: 10^8, 0.8 GB of
#: float64 — about 190 times the largest recipe (mnist10) — so that a small file declaring a
#: huge matrix is refused before anything is allocated. Raise it with ``max_parameters=``.
MAX_PARAMETERS = 100_000_000

#: The most values one sample may have at any layer (2^24, 64 MB of float32): a file declaring
#: a larger image or feature map is refused before anything is allocated. The largest recipe
#: (mnist-cnn) has 25,088 (32 channels of 28 × 28).
MAX_SAMPLE_VALUES = 2**24

#: The arrays of each layer type that are state but not parameters (not trained by gradient):
#: batch norm's running statistics. They are stored, checked and restored like parameters.
LAYER_BUFFERS: dict[str, tuple[str, ...]] = {"BatchNorm": ("running_mean", "running_var")}

#: The arguments each layer type records in the architecture, and the JSON type of each.
LAYER_ARGUMENTS: dict[str, dict[str, str]] = {
    "Dense": {"in_features": "integer", "out_features": "integer", "init": "string",
              "dtype": "string"},
    "Dropout": {"p": "number"},
    "LeakyReLU": {"negative_slope": "number"},
    "ELU": {"alpha": "number"},
    "Conv2D": {"in_channels": "integer", "out_channels": "integer", "kernel_size": "pair",
               "stride": "pair", "padding": "pair", "init": "string", "dtype": "string"},
    "MaxPool2D": {"kernel_size": "pair", "stride": "pair"},
    "AvgPool2D": {"kernel_size": "pair", "stride": "pair"},
    "BatchNorm": {"num_features": "integer", "momentum": "number", "eps": "number",
                  "dtype": "string"},
    "LayerNorm": {"normalized_shape": "shape", "eps": "number", "dtype": "string"},
    "Reshape": {"shape": "shape"},
}

_ZIP_MAGIC = b"PK\x03\x04"
_MAX_METADATA_BYTES = 16 * 2**20  # far above any real architecture; stops a bloated file early
# Deflate cannot expand data more than about 1032 times (a 258-byte match costs at least two
# bits), so a member that claims more than this per stored byte was not made by zlib.
_MAX_DEFLATE_RATIO = 1032
_DEFLATE_SLACK = 1024  # block headers and the end of the stream
_MAX_INT64 = 2**63 - 1
_KEY_PATTERN = re.compile(r"param_\d{3,}")
_BUFFER_KEY_PATTERN = re.compile(r"buffer_\d{3,}")
_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
_RESAVE = "Re-save the model with nnscratch, or copy the original file again."


class ModelFileError(ValueError):
    """A model file is unreadable, truncated, tampered with, of an unknown version, or unsound:
    non-finite weights, contradictory or ill-typed metadata, sizes beyond the limits."""


@dataclass
class SavedModel:
    """A model loaded from (or ready to be written to) a model file.

    Construction checks what prediction relies on, so a ``SavedModel`` never predicts from
    an unsound model.

    Attributes
    ----------
    model : Sequential
        The network; it outputs logits.
    classes : ndarray of shape (n_classes,)
        The label of each class index: at least two, distinct, all of one type.
    metadata : dict
        Everything else the file records (see the module docstring).

    Raises
    ------
    TypeError
        If ``model`` is not a ``Sequential``.
    ValueError
        If the classes are not at least two distinct labels of one type, do not match the
        model's number of outputs (one logit for two classes), or a weight is NaN or infinite.
    """

    model: Sequential
    classes: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.model, Sequential):
            raise TypeError(f"model must be a Sequential, got {type(self.model).__name__}.")
        self.classes = np.asarray(self.classes)
        labels = _check_classes(self.classes.tolist(), "classes")
        problem = _outputs_problem(len(labels), self.model.out_features)
        if problem:
            raise ValueError(problem)
        problem = _non_finite_parameter(self.model)
        if problem:
            raise ValueError(f"{problem}; a model with NaN or infinite weights cannot predict. "
                             "Retrain it, e.g. with a lower learning rate.")

    @property
    def loss(self) -> Loss:
        """The fused output loss: binary (one logit) or softmax."""
        return BinaryCrossEntropy() if self.classes.shape[0] == 2 else SoftmaxCrossEntropy()

    @property
    def n_parameters(self) -> int:
        """The number of trainable numbers (weights and biases)."""
        return sum(param.value.size for param in self.model.parameters())

    def check_reads_28x28_pixels(self, path: Any, fix: str) -> None:
        """Raise ``ValueError`` unless the model reads 784 pixels scaled as ``pixel / 255``.

        What ``nnscratch train`` makes, and what the commands that read pictures (``predict``,
        ``evaluate``, ``serve``) can feed it. `path` names the file in the message; `fix` ends
        the first message (what to use instead).
        """
        if self.model.in_features != 28 * 28:
            raise ValueError(
                f"{path} takes {self.model.in_features} inputs, but MNIST images have 784 "
                f"(28x28 pixels); {fix}."
            )
        scale = self.metadata.get("preprocessing", {}).get("scale", "pixel / 255")
        if scale != "pixel / 255":
            raise ValueError(
                f"{path} expects inputs scaled as {scale!r}, which cannot be made here; "
                "pictures are scaled to [0, 1] (pixel / 255)."
            )

    def _logits(self, X: Any) -> np.ndarray:
        """The model's outputs for preprocessed rows ``X``, refused unless all finite."""
        X = check_features(X, self.model.dtype)
        check_n_features(X, self.model.in_features)  # type: ignore[arg-type]
        with np.errstate(over="ignore", invalid="ignore"):  # refused below, with the reason
            logits = forward_in_chunks(self.model, X)
        broken = np.flatnonzero(~np.isfinite(logits.reshape(len(logits), -1)).all(axis=1))
        if broken.size:
            raise ValueError(
                f"the model's outputs are NaN or infinite for {broken.size} of {len(X)} rows "
                f"(the first is row {broken[0]}): its weights overflow {self.model.dtype} on "
                "these inputs. Check that the inputs are preprocessed as in training, or "
                "retrain the model (in float64, or with weight decay)."
            )
        return logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities of shape ``(n_samples, n_classes)`` for preprocessed rows ``X``."""
        return self.loss.class_probabilities(self._logits(X))

    def predict_class_indices(self, X: Any) -> np.ndarray:
        """The index (into ``classes``) of the most probable class of each row, as int64."""
        return np.asarray(self.loss.predict(self._logits(X)), dtype=np.int64)

    def predict(self, X: Any) -> np.ndarray:
        """The label of the most probable class for each row."""
        return self.classes[self.predict_class_indices(X)]


def sha256_of_arrays(*arrays: np.ndarray) -> str:
    """The SHA-256 (hex) of the arrays' bytes in C order, one after the other."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    from nnscratch._version import __version__

    return {"nnscratch": __version__, "numpy": np.__version__}


def _output_for(n_classes: int) -> tuple[int, str]:
    """The number of logits and the output non-linearity of ``n_classes`` classes."""
    return (1, "sigmoid") if n_classes == 2 else (n_classes, "softmax")


def _outputs_problem(n_classes: int, n_outputs: int) -> str | None:
    expected, _ = _output_for(n_classes)
    if n_outputs == expected:
        return None
    return f"{n_classes} classes need {expected} output(s), but the model has {n_outputs}"


def _non_finite_parameter(model: Sequential) -> str | None:
    """Name the first parameter (or running statistic) holding NaN or infinity: layer, name
    and counts."""
    for layer_index, name, value in _named_parameters(model) + _named_buffers(model):
        finite = np.isfinite(value)
        if not finite.all():
            return _describe_non_finite(layer_index, model.layers[layer_index], name,
                                        value, finite)
    return None


def _describe_non_finite(layer_index: int, layer: Any, name: str, value: np.ndarray,
                         finite: np.ndarray) -> str:
    n_nan = int(np.count_nonzero(np.isnan(value)))
    n_inf = int(value.size - np.count_nonzero(finite)) - n_nan
    kind = layer if isinstance(layer, str) else type(layer).__name__
    return (f"layer {layer_index} ({kind}) has {n_nan:,} NaN and {n_inf:,} infinite values in "
            f"its {'array' if name in _BUFFER_NAMES else 'parameter'} {name} "
            f"({layer_index}.{name})")


# ---------------------------------------------------------------------------------------------
# Saving


def save_model(
    path: str | os.PathLike[str],
    model: Sequential,
    classes: Any,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Write ``model`` and its classes to ``path`` atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination, conventionally ending in ``.npz``; its directory must exist. An existing
        file is replaced only once the new one is completely written.
    model : Sequential
        Made of the layers in :data:`LAYER_TYPES` (``Dense``, ``Dropout``, the activations, the
        convolutions and pools, the normalisations, ``Flatten`` and ``Reshape``), with finite
        weights and running statistics.
    classes : array-like of shape (n_classes,)
        Distinct labels (numbers or strings) in output order; 2 classes means one sigmoid logit.
    metadata : mapping, default=None
        Extra JSON-serialisable facts: ``preprocessing``, ``seeds``,
        ``training_data_sha256``, ``metrics``, ``config``... Keys in :data:`RESERVED_KEYS`
        are written by this function and may not be given; the keys ``docs/model-format.md``
        documents must have the documented types (``metrics`` an object, say).

    Raises
    ------
    TypeError
        If ``model`` is not a ``Sequential``, ``metadata`` cannot be written as JSON, or a
        documented metadata key has the wrong type.
    ValueError
        If the classes are not distinct, not at least 2, of mixed types, or do not match the
        model's number of outputs; if a layer type cannot be saved; if a weight is NaN or
        infinite; if ``metadata`` uses a reserved key or holds NaN or infinity.
    FileNotFoundError
        If the directory of ``path`` does not exist.
    OSError
        If the file cannot be written (permission, a full disk...); the message names
        ``path`` and the fix, and any previous file is left as it was.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from nnscratch import build_mlp
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.npz"
    >>> save_model(path, build_mlp(4, [3], 1, rng=0), ["no", "yes"])  # one logit: 2 classes
    >>> load_model(path).classes
    array(['no', 'yes'], dtype='<U3')
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential, got {type(model).__name__}.")
    _check_layers_saveable(model)
    classes_list = _check_classes(np.asarray(classes).tolist(), "classes")
    problem = _outputs_problem(len(classes_list), model.out_features)
    if problem:
        raise ValueError(f"{problem}.")
    problem = _non_finite_parameter(model)
    if problem:
        raise ValueError(
            f"{problem}: a model with NaN or infinite weights cannot be saved, since it could "
            "not predict. Retrain it, e.g. with a lower learning rate."
        )
    extra = dict(metadata or {})
    clash = sorted(RESERVED_KEYS & set(extra))
    if clash:
        raise ValueError(
            f"metadata may not set {clash}: save_model writes these itself; rename them."
        )
    for key in sorted(set(extra) & set(_FIELDS), key=str):
        problem = _field_problem(key, extra[key])
        if problem:
            raise TypeError(f"metadata: {problem}.")
    arrays, entries = _arrays_to_write(model)
    if entries["buffer"]:  # a model without batch norm is written exactly as by version 1
        extra["buffers"] = entries["buffer"]
    params_meta = entries["param"]
    document = {
        **extra,
        "format": FORMAT_NAME,
        "format_version": _version_for(model),
        "architecture": model.get_config(),
        "classes": classes_list,
        "output": _output_for(len(classes_list))[1],
        "dtype": model.dtype.name,
        "versions": _versions(),
        "parameters": params_meta,
    }
    try:
        text = to_json(document, what="metadata", fix="replace NaN or infinity by None.",
                       indent=1, sort_keys=True)
    except NonFiniteJSONError as error:
        raise ValueError(f"metadata must be JSON-serialisable: {error}") from None
    except TypeError as error:
        raise TypeError(f"metadata must be JSON-serialisable: {error}") from None
    arrays["metadata"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_write(path) as handle:
        handle.write(buffer.getbuffer())


def _check_layers_saveable(model: Sequential) -> None:
    """Every layer type is one a file holds, and the shapes chain as :func:`load_model` checks
    (so that the file can be loaded back); else ``ValueError``."""
    for position, layer in enumerate(model.layers):
        if type(layer).__name__ not in LAYER_TYPES:
            raise ValueError(
                f"layer {position} is a {type(layer).__name__}, which model files cannot hold; "
                f"they hold {', '.join(sorted(LAYER_TYPES))}."
            )
    try:
        _expected_arrays("the model", model.get_config(), model.dtype)
    except ModelFileError as error:
        reason = str(error).replace(f" {_RESAVE}", "").split("; the file was altered")[0]
        raise ValueError(f"{reason.rstrip('.')}; a model file could not hold it.") from None


def _version_for(model: Sequential) -> int:
    """The oldest format version that holds ``model``: 1 for version 1's layers, else 2."""
    return 1 if all(type(layer).__name__ in VERSION_1_LAYERS for layer in model.layers) else 2


def _arrays_to_write(
    model: Sequential,
) -> tuple[dict[str, np.ndarray], dict[str, list[dict[str, Any]]]]:
    """The archive's arrays (``param_000``..., ``buffer_000``...) and their metadata entries."""
    arrays: dict[str, np.ndarray] = {}
    entries: dict[str, list[dict[str, Any]]] = {"param": [], "buffer": []}
    for prefix, named in (("param", _named_parameters(model)), ("buffer", _named_buffers(model))):
        for index, (layer_index, name, value) in enumerate(named):
            key = f"{prefix}_{index:03d}"
            arrays[key] = np.ascontiguousarray(value, dtype=model.dtype)
            entries[prefix].append({
                "key": key, "name": f"{layer_index}.{name}", "shape": list(value.shape),
                "dtype": model.dtype.name, "sha256": sha256_of_arrays(arrays[key]),
            })
    return arrays, entries


def _named_parameters(model: Sequential) -> list[tuple[int, str, np.ndarray]]:
    """``(layer index, name, values)`` of every parameter, in model order."""
    return [(i, p.name, p.value) for i, layer in enumerate(model.layers)
            for p in layer.parameters()]


def _named_buffers(model: Sequential) -> list[tuple[int, str, np.ndarray]]:
    """``(layer index, name, values)`` of every running statistic, in model order."""
    return [(i, name, np.asarray(getattr(layer, name))) for i, layer in enumerate(model.layers)
            for name in LAYER_BUFFERS.get(type(layer).__name__, ())]


_BUFFER_NAMES = frozenset(name for names in LAYER_BUFFERS.values() for name in names)


def _check_classes(classes: Any, where: str) -> list[Any]:
    """Classes must be a flat list of at least two distinct numbers or strings, of one type.

    One type, because labels of different types can print alike (``1`` and ``"1"``) and then
    collide wherever classes are named by text, as in ``predict --json``.
    """
    if not isinstance(classes, list) or len(classes) < 2:
        raise ValueError(f"{where} must list at least 2 classes, got {classes!r:.200}.")
    for label in classes:
        if isinstance(label, bool) or not isinstance(label, int | float | str) or (
                isinstance(label, float) and not np.isfinite(label)):
            raise ValueError(
                f"{where} must hold integers, finite numbers or strings, got {label!r:.60} "
                f"({type(label).__name__})."
            )
        if isinstance(label, int) and abs(label) > _MAX_INT64:
            raise ValueError(f"{where} must fit in 64-bit integers, got {label}.")
    kinds = sorted({type(label).__name__ for label in classes})
    if len(kinds) > 1:
        raise ValueError(
            f"{where} must all be of one type (all integers, all fractional numbers or all "
            f"strings), got a mix of {' and '.join(kinds)}: {classes!r:.200}."
        )
    if len(set(classes)) != len(classes):
        raise ValueError(f"{where} must be distinct, got {classes!r:.200}.")
    return classes


# ---------------------------------------------------------------------------------------------
# The metadata's fields and their JSON types

#: The JSON type of each documented metadata field; the first eight are required
#: (``buffers``, batch norm's running statistics, is there when the model has any).
_FIELDS: dict[str, str] = {
    "format": "string",
    "format_version": "integer",
    "architecture": "object",
    "classes": "array",
    "output": "string",
    "dtype": "string",
    "versions": "object",
    "parameters": "array",
    "config": "object",
    "preprocessing": "object",
    "seeds": "object",
    "training_data_sha256": "string",
    "metrics": "object",
    "buffers": "array",
}
_PARAMETER_ENTRY = {"key": "string", "name": "string", "shape": "array", "dtype": "string",
                    "sha256": "string"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


#: Compound argument types of the layer entries: what each must be, in words.
_COMPOUND_TYPES = {"pair": "pair of integers [height, width]",
                   "shape": "non-empty array of at most 8 integers"}


def _is(value: Any, expected: str) -> bool:
    found = _json_type(value)
    if expected in _COMPOUND_TYPES:
        if found != "array" or not all(_json_type(size) == "integer" for size in value):
            return False
        return len(value) == 2 if expected == "pair" else 1 <= len(value) <= 8
    return found == expected or (expected == "number" and found == "integer")


def _type_problem(where: str, value: Any, expected: str) -> str | None:
    if _is(value, expected):
        return None
    words = _COMPOUND_TYPES.get(expected, expected)
    article = "an" if words[0] in "aeiou" else "a"
    found = _json_type(value)
    try:
        shown = json.dumps(value, default=str)
    except (TypeError, ValueError):
        shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:59] + "…"
    got = "null" if found == "null" else f"{'an' if found[0] in 'aeiou' else 'a'} {found} {shown}"
    return f"the field {where!r} must be {article} {words}, got {got}"


def _field_problem(key: str, value: Any) -> str | None:
    """What is wrong with one documented metadata field, or None."""
    problem = _type_problem(key, value, _FIELDS[key])
    if problem or key not in _FIELD_CHECKS:
        return problem
    return _FIELD_CHECKS[key](value)


def _first(problems: Iterable[str | None]) -> str | None:
    """The first problem found, or None (the checks after it are not run)."""
    return next((problem for problem in problems if problem), None)


def _output_problem(value: str) -> str | None:
    if value not in ("sigmoid", "softmax"):
        return f"the field 'output' must be 'sigmoid' or 'softmax', got {value!r:.60}"
    return None


def _sha256_problem(value: str) -> str | None:
    if not _SHA256_PATTERN.fullmatch(value):
        return ("the field 'training_data_sha256' must be 64 lowercase hex digits, got "
                f"{value!r:.80}")
    return None


def _versions_problem(value: Mapping[str, Any]) -> str | None:
    return _first(_type_problem(f"versions.{name}", version, "string")
                  for name, version in value.items())


def _architecture_problem(value: Mapping[str, Any]) -> str | None:
    if set(value) != {"layers"}:
        return f"the field 'architecture' must hold exactly 'layers', got {sorted(value)}"
    return _type_problem("architecture.layers", value["layers"], "array") or _first(
        _layer_problem(f"architecture.layers[{index}]", spec)
        for index, spec in enumerate(value["layers"]))


def _entries_problem(field_name: str, value: list[Any]) -> str | None:
    return _first(_parameter_entry_problem(f"{field_name}[{index}]", entry)
                  for index, entry in enumerate(value))


def _parameter_entry_problem(where: str, entry: Any) -> str | None:
    problem = _type_problem(where, entry, "object")
    if problem:
        return problem
    if set(entry) != set(_PARAMETER_ENTRY):
        return (f"the field {where!r} must hold exactly {sorted(_PARAMETER_ENTRY)}, got "
                f"{sorted(entry)}")
    return _first(_type_problem(f"{where}.{name}", entry[name], expected)
                  for name, expected in _PARAMETER_ENTRY.items()) or _first(
        _type_problem(f"{where}.shape[{axis}]", size, "integer")
        for axis, size in enumerate(entry["shape"]))


#: The checks of a field beyond its JSON type, for the fields that have them.
_FIELD_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "output": _output_problem,
    "training_data_sha256": _sha256_problem,
    "versions": _versions_problem,
    "architecture": _architecture_problem,
    "parameters": lambda value: _entries_problem("parameters", value),
    "buffers": lambda value: _entries_problem("buffers", value),
}


def _layer_problem(where: str, spec: Any) -> str | None:
    """A layer entry must be an object with a known type and exactly that type's arguments."""
    problem = _type_problem(where, spec, "object")
    if problem:
        return problem
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in LAYER_TYPES:
        return (f"the field '{where}.type' names the unknown layer type {kind!r:.60}; this "
                f"nnscratch knows {', '.join(sorted(LAYER_TYPES))}. Upgrade nnscratch or "
                "re-save the model")
    arguments = LAYER_ARGUMENTS.get(kind, {})
    given = sorted(set(spec) - {"type"})
    if given != sorted(arguments):
        return (f"the field {where!r} is a {kind} with the arguments {given}, but a {kind} "
                f"records exactly {sorted(arguments)}")
    for name, expected in arguments.items():
        problem = _type_problem(f"{where}.{name}", spec[name], expected)
        if problem:
            return problem
    return None


# ---------------------------------------------------------------------------------------------
# Loading


def load_model(path: str | os.PathLike[str], *,
               max_parameters: int = MAX_PARAMETERS) -> SavedModel:
    """Read a model file written by :func:`save_model`, checking everything it can.

    Parameters
    ----------
    path : str or PathLike
        A regular file (a named pipe, a device or a folder is refused at once).
    max_parameters : int, default=MAX_PARAMETERS
        The most parameters (weights and biases) the file may declare: 10^8 by default. A
        file declaring more is refused before anything is allocated or decompressed; raise
        the limit for a genuinely large model you trust (CLI: ``--max-parameters``).

    Returns
    -------
    SavedModel
        Its predictions are bit-identical to those of the model that was saved.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    OSError
        If ``path`` cannot be read (permission denied, a symbolic link loop...); the message
        names it and the fix.
    ModelFileError
        If the file is not a regular file or not a model file, is truncated or corrupted,
        holds pickled objects, has an unsupported format version, declares arrays larger than
        the file can hold or than ``max_parameters``, has metadata of the wrong types or
        contradicting the architecture, classes that are not distinct or of mixed types,
        arrays that do not match the metadata (names, shapes, dtypes, sizes or SHA-256), or
        NaN or infinite weights.
    TypeError, ValueError
        If ``max_parameters`` is not a positive integer.

    Notes
    -----
    The checks, in order: the path is a regular file starting with the zip signature; the
    archive's members fit in the file and none claims more bytes than its compressed size can
    hold; the ``metadata`` member is a uint8 array of UTF-8 JSON (no NaN, no repeated keys)
    naming this format and a version this nnscratch reads; every metadata field has its
    documented type; the classes, the architecture, the ``output`` field and the parameter
    list are well formed and agree; the parameter count is within ``max_parameters``; the
    archive holds exactly the arrays listed; each array's header (read before its data) has
    the listed shape and dtype, no objects, and as many bytes as its member holds; each
    array's SHA-256 matches and every value is finite. Only then are weights copied into a
    freshly built model.
    """
    path = os.fspath(path)
    max_parameters = check_int(max_parameters, "max_parameters", low=1)
    try:
        handle = open_regular_file(path, what="a model file")
    except IsADirectoryError:
        raise ModelFileError(
            f"{path} is a folder; give the model file (e.g. {path}/model.npz)."
        ) from None
    except NotRegularFileError as error:
        raise ModelFileError(str(error)) from None
    with handle:
        return _load_open_file(path, handle, max_parameters)


def _load_open_file(path: str, handle: Any, max_parameters: int) -> SavedModel:
    size = os.fstat(handle.fileno()).st_size
    if handle.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
        raise ModelFileError(
            f"{path} is not a model file: it is not an .npz archive (it is empty, truncated at "
            f"the start, or another kind of file). {_RESAVE}"
        )
    handle.seek(0)
    try:
        with np.load(handle, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):  # pragma: no cover - zip magic
                raise ModelFileError(f"{path} is not an .npz archive.")
            _check_members(path, archive.zip, size)
            document = _read_metadata(path, archive)
            plan = _check_document(path, document, max_parameters)
            arrays = _read_parameters(path, archive, plan)
    except ModelFileError:
        raise
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise ModelFileError(
                f"{path} contains pickled objects, which nnscratch never writes and never loads "
                f"(they can run arbitrary code). {_RESAVE}"
            ) from None
        raise ModelFileError(f"{path} is not a valid model file ({error}). {_RESAVE}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, KeyError,
            NotImplementedError, RuntimeError) as error:
        raise ModelFileError(
            f"{path} is not a readable model file (truncated or corrupted: {error}). {_RESAVE}"
        ) from None
    return _rebuild(path, document, plan, arrays)


def _check_members(path: str, archive: zipfile.ZipFile, size: int) -> None:
    """Every member must fit in the file and expand to no more than its bytes can hold.

    Only the zip directory is read here; nothing is decompressed, so a small file declaring
    a huge array is refused before any memory is spent on it.
    """
    members = archive.infolist()
    names = [info.filename for info in members]
    if len(names) != len(set(names)):
        raise ModelFileError(f"{path} lists an array twice; the file was altered. {_RESAVE}")
    for info in members:
        name = info.filename
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(
                f"{path}: the member {name} uses zip compression method {info.compress_type}; "
                f"model files hold stored or deflated members only. {_RESAVE}"
            )
        if info.header_offset + info.compress_size > size:
            raise ModelFileError(
                f"{path}: the member {name} claims {info.compress_size:,} bytes from offset "
                f"{info.header_offset:,}, past the end of the file ({size:,} bytes); the file "
                f"is truncated or was altered. {_RESAVE}"
            )
        stored = info.compress_type == zipfile.ZIP_STORED
        most = (info.compress_size if stored
                else info.compress_size * _MAX_DEFLATE_RATIO + _DEFLATE_SLACK)
        if info.file_size > most:
            raise ModelFileError(
                f"{path}: the member {name} claims {info.file_size:,} bytes, but its "
                f"{info.compress_size:,} {'stored' if stored else 'compressed'} bytes can hold "
                f"at most {most:,}; the file was altered (a decompression bomb?) and is refused "
                f"before anything is decompressed. {_RESAVE}"
            )


def _member(path: str, archive: Any, key: str) -> str:
    name = f"{key}.npy"
    if name not in archive.zip.namelist():
        raise ModelFileError(f"{path} has no array {key!r}; the file was altered. {_RESAVE}")
    return name


def _read_header(path: str, archive: Any, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array, from its .npy header, without reading its data.

    The header must also account for every byte of its member: a header declaring more data
    than the member holds (or less) is refused here, before the data are read.
    """
    info = archive.zip.getinfo(_member(path, archive, key))
    with archive.zip.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ModelFileError(
                f"{path}: the array {key!r} uses .npy format {version}, which nnscratch does not "
                f"write. {_RESAVE}"
            )
        offset = handle.tell()
    if dtype.hasobject:
        raise ModelFileError(
            f"{path}: the array {key!r} holds Python objects (a pickle), which nnscratch never "
            f"writes and never loads, since unpickling can run arbitrary code. {_RESAVE}"
        )
    del fortran_order  # either order loads to the same values
    declared = math.prod(shape) * dtype.itemsize
    if offset + declared != info.file_size:
        raise ModelFileError(
            f"{path}: the array {key!r} declares shape {tuple(shape)} of {dtype} "
            f"({declared:,} bytes), but its archive member holds {info.file_size - offset:,} "
            f"bytes of data; the file was altered or truncated. {_RESAVE}"
        )
    return tuple(shape), dtype


class _StrictJSONError(ValueError):
    """The metadata uses what strict JSON forbids (NaN, a repeated key)."""


def _refuse_constant(name: str) -> Any:
    raise _StrictJSONError(f"holds {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _StrictJSONError(f"holds the number {text}, beyond the range of a float")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        repeated = sorted({key for key, _ in pairs if sum(k == key for k, _ in pairs) > 1})
        raise _StrictJSONError(f"lists the key {repeated[0]!r} twice in one object")
    return document


def _read_metadata(path: str, archive: Any) -> dict[str, Any]:
    if "metadata.npy" not in archive.zip.namelist():
        raise ModelFileError(f"{path} has no 'metadata' array; it was not written by nnscratch.")
    shape, dtype = _read_header(path, archive, "metadata")
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > _MAX_METADATA_BYTES:
        raise ModelFileError(
            f"{path}: the metadata must be a 1-D uint8 array of at most "
            f"{_MAX_METADATA_BYTES} bytes, got {dtype} of shape {shape}. {_RESAVE}"
        )
    raw = archive["metadata"]
    try:
        document = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_refuse_constant,
                              parse_float=_finite_float, object_pairs_hook=_unique_keys)
    except _StrictJSONError as error:
        raise ModelFileError(f"{path}: the metadata {error}; the file was altered. "
                             f"{_RESAVE}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: the metadata is not valid JSON ({error}).") from None
    except RecursionError:
        raise ModelFileError(
            f"{path}: the metadata nests too deeply to be read; the file was altered. {_RESAVE}"
        ) from None
    if not isinstance(document, dict):
        raise ModelFileError(f"{path}: the metadata must be a JSON object, got {document!r:.60}.")
    return document


@dataclass
class _Plan:
    """What the metadata promises: one entry per parameter array, in model order."""

    keys: list[str]
    names: list[str]
    shapes: list[tuple[int, ...]]
    dtype: np.dtype
    sha256: list[str]
    n_parameters: int = 0  # the first n_parameters arrays are parameters, the rest buffers
    kinds: list[str] = field(default_factory=list)  # the type of each layer


def _check_document(path: str, document: dict[str, Any], max_parameters: int) -> _Plan:
    """Validate the metadata on its own, before any weight is read."""
    _check_format(path, document)
    _check_fields(path, document)
    try:
        classes = _check_classes(document["classes"], "the classes in the metadata")
    except ValueError as error:
        raise ModelFileError(f"{path}: {error}") from None
    dtype_name = document["dtype"]
    if dtype_name not in FLOAT_DTYPES:
        raise ModelFileError(
            f"{path}: the dtype {dtype_name!r:.60} in the metadata is not float32 or float64."
        )
    dtype = FLOAT_DTYPES[dtype_name]
    if document["format_version"] == 1:
        newer = [(index, spec["type"]) for index, spec in enumerate(
            document["architecture"]["layers"]) if spec["type"] not in VERSION_1_LAYERS]
        if newer or "buffers" in document:
            what = (f"layer {newer[0][0]} is a {newer[0][1]}" if newer
                    else "it lists running statistics ('buffers')")
            raise ModelFileError(
                f"{path} says it is format version 1, but {what}, which version 1 does not "
                f"have (version 2 does); the file was altered. {_RESAVE}"
            )
    expected, buffers, n_outputs = _expected_arrays(path, document["architecture"], dtype)
    _check_output(path, document["output"], len(classes), n_outputs)
    _check_size(path, expected + buffers, dtype, max_parameters)
    plan = _parameter_plan(path, document["parameters"], expected, dtype, "parameters")
    extra = _parameter_plan(path, document.get("buffers", []), buffers, dtype, "buffers")
    plan.keys += extra.keys
    plan.names += extra.names
    plan.shapes += extra.shapes
    plan.sha256 += extra.sha256
    plan.n_parameters = len(expected)
    plan.kinds = [spec["type"] for spec in document["architecture"]["layers"]]
    if len(set(plan.keys)) != len(plan.keys):
        raise ModelFileError(f"{path}: the metadata lists an array twice; the file was altered.")
    return plan


def _check_format(path: str, document: dict[str, Any]) -> None:
    """The file must say it is an nnscratch model of a format version this code reads."""
    if document.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{path} is not an nnscratch model file (its metadata names the format "
            f"{document.get('format')!r:.60}, not {FORMAT_NAME!r})."
        )
    version = document.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(
            f"{path}: the format version {version!r:.60} is not valid. {_RESAVE}"
        )
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has format version {version}, newer than this nnscratch reads (version "
            f"{FORMAT_VERSION}); upgrade nnscratch (pip install -U nnscratch)."
        )


def _check_fields(path: str, document: dict[str, Any]) -> None:
    """Every required field is there, and every documented field has its type and form."""
    for key in _FIELDS:
        if key not in document:
            if key in RESERVED_KEYS and key != "buffers":  # buffers: only with batch norm
                raise ModelFileError(
                    f"{path}: the metadata has no {key!r} field; the file was altered or not "
                    f"written by nnscratch. {_RESAVE}"
                )
            continue
        problem = _field_problem(key, document[key])
        if problem:
            raise ModelFileError(f"{path}: in the metadata, {problem}; the file was altered. "
                                 f"{_RESAVE}")


def _check_output(path: str, output: str, n_classes: int, n_outputs: int) -> None:
    """The classes, the architecture's outputs and the ``output`` field must agree."""
    problem = _outputs_problem(n_classes, n_outputs)
    if problem:
        raise ModelFileError(f"{path}: {problem}; the file was altered.")
    implied = _output_for(n_classes)[1]
    if output != implied:
        raise ModelFileError(
            f"{path}: the metadata says the output is {output!r}, but {n_classes} classes and "
            f"{n_outputs} output(s) mean {implied!r}; the file was altered. {_RESAVE}"
        )


def _check_size(path: str, expected: list[tuple[str, tuple[int, ...]]], dtype: np.dtype,
                max_parameters: int) -> None:
    """Refuse a model bigger than ``max_parameters`` before anything is allocated."""
    n_parameters = sum(math.prod(shape) for _, shape in expected)
    if n_parameters > max_parameters:
        raise ModelFileError(
            f"{path} declares {n_parameters:,} parameters ({n_parameters * dtype.itemsize:,} "
            f"bytes of {dtype.name}), more than the limit of {max_parameters:,}; it is refused "
            "before anything is allocated. If you trust the file and have the memory, raise the "
            "limit: load_model(..., max_parameters=N) (CLI: --max-parameters N)."
        )


def _parameter_plan(path: str, entries: list[dict[str, Any]],
                    expected: list[tuple[str, tuple[int, ...]]], dtype: np.dtype,
                    field_name: str) -> _Plan:
    """Which archive member holds each parameter (or buffer: ``field_name``) the architecture
    needs, and its checksum."""
    if len(entries) != len(expected):
        what = "parameter arrays" if field_name == "parameters" else "running-statistics arrays"
        raise ModelFileError(
            f"{path}: the architecture has {len(expected)} {what} but the metadata's "
            f"{field_name!r} lists {len(entries)}; the file was altered."
        )
    pattern = _KEY_PATTERN if field_name == "parameters" else _BUFFER_KEY_PATTERN
    plan = _Plan([], [], [], dtype, [])
    for entry, (name, shape) in zip(entries, expected, strict=True):
        key, listed, sha = entry["key"], entry["shape"], entry["sha256"]
        if not (pattern.fullmatch(key) and _SHA256_PATTERN.fullmatch(sha)):
            raise ModelFileError(
                f"{path}: the metadata entry for {name} is malformed: {entry!r:.200}."
            )
        if listed != list(shape) or entry["dtype"] != dtype.name:
            raise ModelFileError(
                f"{path}: the metadata lists {name} as {entry['dtype']:.30} of shape "
                f"{listed!r:.60}, but the architecture needs {dtype.name} of shape "
                f"{list(shape)}; the file was altered."
            )
        plan.keys.append(key)
        plan.names.append(name)
        plan.shapes.append(shape)
        plan.sha256.append(sha)
    return plan


_Shape = tuple[int, ...]
_Expected = list[tuple[str, _Shape]]


def _expected_arrays(path: str, architecture: dict[str, Any],
                     dtype: np.dtype) -> tuple[_Expected, _Expected, int]:
    """Name and shape of each parameter and running statistic the architecture implies, and
    its number of outputs.

    The shape of one sample is followed through every layer — from a first ``Reshape``'s
    shape, a first ``Dense`` layer's width, or (for a model that starts with a convolution)
    ``(in_channels, 28, 28)`` — so that every layer must fit the output of the one before:
    a kernel larger than its padded input, a channel count or a width that does not chain,
    or a sample larger than :data:`MAX_SAMPLE_VALUES` is refused here, before anything is
    allocated. The layer entries' types and argument names were checked by
    :func:`_field_problem`.
    """
    params: _Expected = []
    buffers: _Expected = []
    shape: _Shape | None = None  # one sample's shape after the layers so far; None: unknown
    width: int | None = None  # the output width of the last Dense seen
    for index, spec in enumerate(architecture["layers"]):
        kind = spec["type"]
        where = f"{path}: layer {index} ({kind})"
        if "dtype" in spec and spec["dtype"] != dtype.name:
            raise ModelFileError(
                f"{where} is {spec['dtype']!r:.30} but the model is {dtype.name}; the file was "
                "altered."
            )
        shape = _layer_output(where, spec, shape)
        if shape is not None and math.prod(shape) > MAX_SAMPLE_VALUES:
            raise ModelFileError(
                f"{where} makes {math.prod(shape):,} values per sample (shape {list(shape)}), "
                f"more than the limit of {MAX_SAMPLE_VALUES:,}; the file declares absurd sizes "
                f"and is refused before anything is allocated. {_RESAVE}"
            )
        if kind == "Dense":
            width = spec["out_features"]
            params += [(f"{index}.W", (spec["in_features"], width)), (f"{index}.b", (width,))]
        elif kind == "Conv2D":
            kernel = (spec["out_channels"], spec["in_channels"], *spec["kernel_size"])
            params += [(f"{index}.W", kernel), (f"{index}.b", (spec["out_channels"],))]
        elif kind == "BatchNorm":
            features = (spec["num_features"],)
            params += [(f"{index}.gamma", features), (f"{index}.beta", features)]
            buffers += [(f"{index}.{name}", features) for name in LAYER_BUFFERS["BatchNorm"]]
        elif kind == "LayerNorm":
            normalized = tuple(spec["normalized_shape"])
            params += [(f"{index}.gamma", normalized), (f"{index}.beta", normalized)]
    if width is None:
        raise ModelFileError(f"{path}: the architecture has no Dense layer. {_RESAVE}")
    if shape is not None and shape != (width,):
        raise ModelFileError(
            f"{path}: the model's output per sample has shape {list(shape)}, not the "
            f"{width} logits of its last Dense layer; the file was altered. {_RESAVE}"
        )
    return params, buffers, width


def _sizes(where: str, spec: Mapping[str, Any], names: Iterable[str], low: int = 1) -> None:
    for name in names:
        values = spec[name] if isinstance(spec[name], list) else [spec[name]]
        if any(value < low for value in values):
            raise ModelFileError(f"{where} has invalid sizes (each {name} must be >= {low}): "
                                 f"{dict(spec)!r:.300}.")


def _layer_output(where: str, spec: Mapping[str, Any], shape: _Shape | None) -> _Shape | None:
    """The shape of one sample after the layer ``spec``, given the shape before it."""
    kind = spec["type"]
    if kind == "Dense":
        _sizes(where, spec, ("in_features", "out_features"))
        if shape is not None and shape != (spec["in_features"],):
            raise ModelFileError(
                f"{where} takes {spec['in_features']} inputs but the layer before gives "
                f"{_shape_words(shape)}; the file was altered."
            )
        return (spec["out_features"],)
    if kind == "Reshape":
        _sizes(where, spec, ("shape",))
        if shape is not None and math.prod(shape) != math.prod(spec["shape"]):
            raise ModelFileError(
                f"{where} reshapes to {spec['shape']} ({math.prod(spec['shape']):,} values) but "
                f"the layer before gives {_shape_words(shape)}; the file was altered."
            )
        return tuple(spec["shape"])
    if kind == "Flatten":
        return None if shape is None else (math.prod(shape),)
    if kind in ("Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D"):
        return _image_layer_output(where, spec, shape)
    if kind == "BatchNorm":
        _sizes(where, spec, ("num_features",))
        if shape is not None and (len(shape) not in (1, 3) or shape[0] != spec["num_features"]):
            raise ModelFileError(
                f"{where} normalises {spec['num_features']} features (or channels) but the "
                f"layer before gives {_shape_words(shape)}; the file was altered."
            )
        return shape
    if kind == "LayerNorm":
        _sizes(where, spec, ("normalized_shape",))
        normalized = tuple(spec["normalized_shape"])
        if shape is not None and shape[len(shape) - len(normalized):] != normalized:
            raise ModelFileError(
                f"{where} normalises over {list(normalized)} but the layer before gives "
                f"{_shape_words(shape)}; the file was altered."
            )
        return shape if shape is not None else normalized
    return shape  # activations and Dropout keep the shape


def _image_layer_output(where: str, spec: Mapping[str, Any],
                        shape: _Shape | None) -> _Shape:
    kind = spec["type"]
    if shape is None and kind == "Conv2D":
        shape = (spec["in_channels"], 28, 28)  # a model that takes MNIST images as they are
    if shape is None or len(shape) != 3:
        given = "nothing known" if shape is None else _shape_words(shape)
        raise ModelFileError(
            f"{where} needs images (channels, height, width), but the layer before gives "
            f"{given}; the file was altered. {_RESAVE}"
        )
    if kind == "GlobalAvgPool2D":
        return shape[:1]
    channels, height, width = shape
    if kind == "Conv2D":
        _sizes(where, spec, ("in_channels", "out_channels", "kernel_size", "stride"))
        _sizes(where, spec, ("padding",), low=0)
        if channels != spec["in_channels"]:
            raise ModelFileError(
                f"{where} takes {spec['in_channels']} channel(s) but the layer before gives "
                f"{channels}; the file was altered."
            )
        padding, channels = spec["padding"], spec["out_channels"]
    else:
        _sizes(where, spec, ("kernel_size", "stride"))
        padding = [0, 0]
    sizes = []
    for side, kernel, stride, pad in zip((height, width), spec["kernel_size"], spec["stride"],
                                         padding, strict=True):
        if kernel > side + 2 * pad:
            raise ModelFileError(
                f"{where} has a {spec['kernel_size'][0]}x{spec['kernel_size'][1]} kernel, "
                f"larger than its {height}x{width} input padded by {padding}; the file was "
                f"altered. {_RESAVE}"
            )
        sizes.append((side + 2 * pad - kernel) // stride + 1)
    return (channels, *sizes)


def sample_shapes(model: Sequential) -> list[tuple[int, ...]]:
    """The shape of one sample at the model's input and after each layer.

    ``[(784,), (1, 28, 28), (32, 28, 28), ...]`` for a CNN that reshapes rows of 784 pixels;
    a model that starts with a convolution is taken to read ``(in_channels, 28, 28)``.

    Raises
    ------
    ValueError
        If the layers do not chain (a width, a channel count or a kernel that does not fit).
    """
    config = model.get_config()["layers"]
    shape: _Shape | None = (model.in_features,) if model.in_features is not None else None
    if shape is None and config and config[0]["type"] == "Conv2D":
        shape = (config[0]["in_channels"], 28, 28)
    shapes = [shape]
    for index, spec in enumerate(config):
        shape = _layer_output(f"layer {index} ({spec['type']})", spec, shape)
        shapes.append(shape)
    if any(found is None for found in shapes):
        raise ValueError("the model's input shape is unknown: start it with Reshape or Dense.")
    return shapes  # type: ignore[return-value]


def _shape_words(shape: _Shape) -> str:
    if len(shape) == 1:
        return f"{shape[0]} values"
    return f"shape {list(shape)}"


def _read_parameters(path: str, archive: Any, plan: _Plan) -> list[np.ndarray]:
    """Check the archive's members and headers against the plan, then read and check them."""
    present = {name[:-4] for name in archive.zip.namelist() if name.endswith(".npy")}
    others = [name for name in archive.zip.namelist() if not name.endswith(".npy")]
    wanted = set(plan.keys) | {"metadata"}
    if present != wanted or others:
        found = sorted(present) + others
        raise ModelFileError(
            f"{path}: the archive holds {found!r:.300}, but the metadata lists "
            f"{sorted(wanted)!r:.300}; the file was altered."
        )
    for key, name, shape in zip(plan.keys, plan.names, plan.shapes, strict=True):
        found_shape, found_dtype = _read_header(path, archive, key)
        if found_shape != shape or found_dtype != plan.dtype:
            raise ModelFileError(
                f"{path}: {name} ({key}) is {found_dtype} of shape {found_shape}, but the "
                f"architecture needs {plan.dtype} of shape {shape}; the file was altered."
            )
    arrays = []
    for key, name, sha in zip(plan.keys, plan.names, plan.sha256, strict=True):
        layer_index, param_name = name.split(".")
        array = archive[key]
        if sha256_of_arrays(array) != sha:
            raise ModelFileError(
                f"{path}: the values of {name} do not match their recorded SHA-256; the file "
                f"was corrupted or tampered with. {_RESAVE}"
            )
        finite = np.isfinite(array)
        if not finite.all():
            problem = _describe_non_finite(int(layer_index), plan.kinds[int(layer_index)],
                                           param_name, array, finite)
            raise ModelFileError(
                f"{path}: {problem}. A model with NaN or infinite weights cannot predict (its "
                "training diverged before it was saved); retrain it, e.g. with a lower learning "
                "rate."
            )
        arrays.append(array)
    return arrays


def _rebuild(
    path: str, document: dict[str, Any], plan: _Plan, arrays: list[np.ndarray]
) -> SavedModel:
    try:
        model = _build_architecture(document["architecture"])
    except (KeyError, TypeError, ValueError, OverflowError) as error:  # 10**400 for a float
        raise ModelFileError(
            f"{path}: the architecture in the metadata is invalid ({error}). {_RESAVE}"
        ) from None
    for param, array in zip(model.parameters(), arrays[:plan.n_parameters], strict=True):
        param.value[...] = array
    for (layer_index, name, _), array in zip(_named_buffers(model), arrays[plan.n_parameters:],
                                             strict=True):
        getattr(model.layers[layer_index], name)[...] = array
    try:
        return SavedModel(model=model, classes=np.asarray(document["classes"]),
                          metadata=document)
    except ValueError as error:  # pragma: no cover - every condition was checked above
        raise ModelFileError(f"{path}: {error}") from None


def _zeros(shape: tuple[int, ...], rng: Any) -> np.ndarray:
    """An initialiser for layers whose weights are about to be overwritten."""
    return np.zeros(shape)


def _build_architecture(config: Mapping[str, Any]) -> Sequential:
    layers: list[Layer] = []
    for spec in config["layers"]:
        spec = dict(spec)
        kind = spec.pop("type")
        if kind in ("Dense", "Conv2D"):
            # The recorded initialiser name is kept for the record; the weights come from the
            # file, so the layer starts from zeros rather than spending time on random draws.
            init = spec.pop("init", "glorot_uniform")
            if kind == "Dense":
                layer: Layer = Dense(spec.pop("in_features"), spec.pop("out_features"),
                                     init=_zeros, dtype=spec.pop("dtype"), **spec)
            else:
                layer = Conv2D(spec.pop("in_channels"), spec.pop("out_channels"),
                               tuple(spec.pop("kernel_size")), stride=tuple(spec.pop("stride")),
                               padding=tuple(spec.pop("padding")), init=_zeros,
                               dtype=spec.pop("dtype"))
            layer.init = init  # type: ignore[attr-defined]
        elif kind in ("MaxPool2D", "AvgPool2D"):
            layer = LAYER_TYPES[kind](tuple(spec["kernel_size"]), tuple(spec["stride"]))
        elif kind in ("Reshape", "LayerNorm"):
            name = "shape" if kind == "Reshape" else "normalized_shape"
            spec[name] = tuple(spec[name])
            layer = LAYER_TYPES[kind](**spec)
        else:
            layer = LAYER_TYPES[kind](**spec)
        layers.append(layer)
    return Sequential(layers)
