"""Safe model files: one ``.npz`` of plain arrays plus JSON metadata, never a pickle.

A model file holds the weights of a :class:`~nnscratch.model.Sequential` as numbered arrays
(``param_000``, ``param_001``, ...) and one ``metadata`` array of UTF-8 JSON bytes that says
everything else: the format version, the architecture (layer types and constructor
arguments), the classes and how outputs map to them, the preprocessing the inputs need, the
dtype, the nnscratch and NumPy versions, seeds, the SHA-256 of the training data, metrics, and
the name, shape, dtype and SHA-256 of every parameter array.

Loading uses ``np.load(..., allow_pickle=False)`` — an object array (the way a pickle hides in
an ``.npz``) is refused — and checks the format version, that the array names are exactly those
the metadata lists, that every shape and dtype matches, and every array's SHA-256. A changed
byte, a truncated file or a swapped array is reported as a clear :class:`ModelFileError`.
Files are written atomically: an interrupted save leaves the previous file intact.

What is left out: optimiser state (a loaded model predicts or starts training afresh) and
ONNX export.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnscratch._atomic import atomic_write
from nnscratch._validation import check_features, check_n_features
from nnscratch.activations import ACTIVATIONS
from nnscratch.layers import Dense, Dropout, Layer
from nnscratch.losses import BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from nnscratch.model import Sequential

FORMAT_NAME = "nnscratch-model"
FORMAT_VERSION = 1

#: Layer classes by the ``type`` names the architecture uses.
LAYER_TYPES: dict[str, type[Layer]] = {
    "Dense": Dense,
    "Dropout": Dropout,
    **{cls.__name__: cls for cls in ACTIVATIONS.values()},
}


class ModelFileError(ValueError):
    """A model file is unreadable, truncated, tampered with or of an unknown version."""


@dataclass
class SavedModel:
    """A model loaded from (or ready to be written to) a model file.

    Attributes
    ----------
    model : Sequential
        The network; it outputs logits.
    classes : ndarray of shape (n_classes,)
        The label of each class index.
    metadata : dict
        Everything else the file records (see the module docstring).
    """

    model: Sequential
    classes: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def loss(self) -> Loss:
        """The fused output loss: binary (one logit) or softmax."""
        return BinaryCrossEntropy() if self.classes.shape[0] == 2 else SoftmaxCrossEntropy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities of shape ``(n_samples, n_classes)`` for preprocessed rows ``X``."""
        X = check_features(X, self.model.dtype)
        check_n_features(X, self.model.in_features)  # type: ignore[arg-type]
        probabilities = self.loss.probabilities(self.model.forward(X, training=False))
        if self.classes.shape[0] == 2:
            return np.column_stack([1 - probabilities, probabilities])
        return probabilities

    def predict(self, X: Any) -> np.ndarray:
        """The label of the most probable class for each row."""
        X = check_features(X, self.model.dtype)
        check_n_features(X, self.model.in_features)  # type: ignore[arg-type]
        return self.classes[self.loss.predict(self.model.forward(X, training=False))]


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _versions() -> dict[str, str]:
    from nnscratch import __version__

    return {"nnscratch": __version__, "numpy": np.__version__}


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
        Destination, conventionally ending in ``.npz``; its directory must exist.
    model : Sequential
    classes : array-like of shape (n_classes,)
        Labels (ints or strings) in output order; 2 classes means one sigmoid logit.
    metadata : mapping, default=None
        Extra JSON-serialisable facts: ``preprocessing``, ``seeds``,
        ``training_data_sha256``, ``metrics``, ``config``...

    Raises
    ------
    TypeError
        If ``metadata`` cannot be written as JSON.
    ValueError
        If the classes do not match the model's number of outputs.
    """
    classes_list = np.asarray(classes).tolist()
    n_outputs = model.out_features
    expected = 1 if len(classes_list) == 2 else len(classes_list)
    if n_outputs != expected:
        raise ValueError(
            f"{len(classes_list)} classes need {expected} output(s), but the model has "
            f"{n_outputs}."
        )
    arrays: dict[str, np.ndarray] = {}
    params_meta = []
    for index, (layer_index, param) in enumerate(_named_parameters(model)):
        key = f"param_{index:03d}"
        arrays[key] = np.ascontiguousarray(param.value)
        params_meta.append({
            "key": key, "name": f"{layer_index}.{param.name}", "shape": list(param.shape),
            "dtype": param.dtype.name, "sha256": _sha256(param.value),
        })
    document = {
        **dict(metadata or {}),
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": model.get_config(),
        "classes": classes_list,
        "output": "sigmoid" if len(classes_list) == 2 else "softmax",
        "dtype": model.dtype.name,
        "versions": _versions(),
        "parameters": params_meta,
    }
    try:
        text = json.dumps(document, indent=1, sort_keys=True)
    except TypeError as error:
        raise TypeError(f"metadata must be JSON-serialisable: {error}") from None
    arrays["metadata"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_write(path) as handle:
        handle.write(buffer.getbuffer())


def _named_parameters(model: Sequential) -> list[tuple[int, Any]]:
    return [(i, p) for i, layer in enumerate(model.layers) for p in layer.parameters()]


def load_model(path: str | os.PathLike[str]) -> SavedModel:
    """Read a model file written by :func:`save_model`, checking everything it can.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    SavedModel

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a model file, is truncated or corrupted, holds pickled objects, has
        an unsupported format version, or its arrays do not match the metadata.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file {path} does not exist; check the path.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise ModelFileError(
                f"{path} contains pickled objects, which nnscratch never writes and never loads "
                "(they can run arbitrary code). Re-save the model with nnscratch."
            ) from None
        raise ModelFileError(f"{path} is not a valid model file: {error}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as error:
        raise ModelFileError(
            f"{path} is not a readable model file (truncated or corrupted: {error}). "
            "Re-save or re-download it."
        ) from None
    if "metadata" not in arrays:
        raise ModelFileError(f"{path} has no 'metadata' entry; it was not written by nnscratch.")
    try:
        document = json.loads(arrays.pop("metadata").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: the metadata is not valid JSON ({error}).") from None
    return _rebuild(path, document, arrays)


def _rebuild(path: str, document: dict[str, Any], arrays: dict[str, np.ndarray]) -> SavedModel:
    if document.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not an nnscratch model file.")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has format version {version!r}; this nnscratch reads version "
            f"{FORMAT_VERSION}. Upgrade nnscratch or re-save the model."
        )
    params_meta = document.get("parameters", [])
    expected_keys = {entry["key"] for entry in params_meta}
    if set(arrays) != expected_keys:
        raise ModelFileError(
            f"{path}: the arrays {sorted(arrays)} do not match the metadata's "
            f"{sorted(expected_keys)}; the file was altered."
        )
    try:
        model = _build_architecture(document["architecture"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: the architecture in the metadata is invalid ({error}).") \
            from None
    params = [p for _, p in _named_parameters(model)]
    if len(params) != len(params_meta):
        raise ModelFileError(
            f"{path}: the architecture has {len(params)} parameters but the file lists "
            f"{len(params_meta)}."
        )
    for param, entry in zip(params, params_meta, strict=True):
        array = arrays[entry["key"]]
        if array.shape != param.shape or list(array.shape) != entry["shape"]:
            raise ModelFileError(
                f"{path}: {entry['name']} has shape {array.shape}, but the architecture needs "
                f"{param.shape}."
            )
        if array.dtype != param.dtype or array.dtype.name != entry["dtype"]:
            raise ModelFileError(
                f"{path}: {entry['name']} has dtype {array.dtype}, expected {param.dtype}."
            )
        if _sha256(array) != entry["sha256"]:
            raise ModelFileError(
                f"{path}: the values of {entry['name']} do not match their recorded SHA-256; "
                "the file was corrupted or tampered with."
            )
        param.value[...] = array
    classes = np.asarray(document["classes"])
    expected = 1 if classes.shape[0] == 2 else classes.shape[0]
    if model.out_features != expected:
        raise ModelFileError(
            f"{path}: {classes.shape[0]} classes but the model has {model.out_features} outputs."
        )
    return SavedModel(model=model, classes=classes, metadata=document)


def _build_architecture(config: Mapping[str, Any]) -> Sequential:
    layers: list[Layer] = []
    for spec in config["layers"]:
        spec = dict(spec)
        kind = spec.pop("type")
        if kind not in LAYER_TYPES:
            raise ValueError(f"unknown layer type {kind!r}")
        if kind == "Dense":
            # The weights are about to be overwritten: any initialiser will do, and the
            # recorded name is kept for the record.
            init = spec.pop("init", "glorot_uniform")
            layer = Dense(spec["in_features"], spec["out_features"], init="glorot_uniform",
                          rng=0, dtype=spec["dtype"])
            layer.init = init
        else:
            layer = LAYER_TYPES[kind](**spec)
        layers.append(layer)
    return Sequential(layers)
