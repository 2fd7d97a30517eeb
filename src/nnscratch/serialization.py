"""Safe model files: one ``.npz`` of plain arrays plus JSON metadata, never a pickle.

A model file holds the weights of a :class:`~nnscratch.model.Sequential` as numbered arrays
(``param_000``, ``param_001``, ...) and one ``metadata`` array of UTF-8 JSON bytes that says
everything else: the format version, the architecture (layer types and constructor
arguments), the classes and how outputs map to them, the preprocessing the inputs need, the
dtype, the nnscratch and NumPy versions, seeds, the SHA-256 of the training data, metrics, and
the name, shape, dtype and SHA-256 of every parameter array. ``docs/model-format.md`` is the
full specification.

Loading uses ``np.load(..., allow_pickle=False)`` — an object array (the way a pickle hides in
an ``.npz``) is refused — and checks, before reading any weights, the format version, that the
array names are exactly those the metadata lists, and that every array's shape and dtype (read
from its header) match both the metadata and the architecture; then every array's SHA-256. A
changed byte, a truncated file, a swapped or reshaped array is reported as a clear
:class:`ModelFileError`, never as a stray ``KeyError`` or ``BadZipFile``. Files are written
atomically: an interrupted save leaves the previous file intact.

The checksums protect against accidents and careless edits, not against an attacker, who can
rewrite the metadata along with the weights: to trust a file from elsewhere, compare the
SHA-256 of the whole file (``nnscratch info`` prints it) with one published by its author.

What is left out: optimiser state (a loaded model predicts or starts training afresh) and
ONNX export.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnscratch._atomic import atomic_write
from nnscratch._validation import FLOAT_DTYPES, check_features, check_n_features
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

#: Metadata keys that :func:`save_model` writes itself; callers may not set them.
RESERVED_KEYS = frozenset({
    "format", "format_version", "architecture", "classes", "output", "dtype", "versions",
    "parameters",
})

_ZIP_MAGIC = b"PK\x03\x04"
_MAX_METADATA_BYTES = 16 * 2**20  # far above any real architecture; stops a bloated file early
_KEY_PATTERN = re.compile(r"param_\d{3,}")
_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
_RESAVE = "Re-save the model with nnscratch, or copy the original file again."


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

    @property
    def n_parameters(self) -> int:
        """The number of trainable numbers (weights and biases)."""
        return sum(param.value.size for param in self.model.parameters())

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities of shape ``(n_samples, n_classes)`` for preprocessed rows ``X``."""
        X = check_features(X, self.model.dtype)
        check_n_features(X, self.model.in_features)  # type: ignore[arg-type]
        return self.loss.class_probabilities(self.model.forward(X, training=False))

    def predict(self, X: Any) -> np.ndarray:
        """The label of the most probable class for each row."""
        X = check_features(X, self.model.dtype)
        check_n_features(X, self.model.in_features)  # type: ignore[arg-type]
        return self.classes[self.loss.predict(self.model.forward(X, training=False))]


def sha256_of_arrays(*arrays: np.ndarray) -> str:
    """The SHA-256 (hex) of the arrays' bytes in C order, one after the other."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    from nnscratch import __version__

    return {"nnscratch": __version__, "numpy": np.__version__}


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
        Made of the layers in :data:`LAYER_TYPES` (``Dense``, ``Dropout`` and the activations).
    classes : array-like of shape (n_classes,)
        Distinct labels (numbers or strings) in output order; 2 classes means one sigmoid logit.
    metadata : mapping, default=None
        Extra JSON-serialisable facts: ``preprocessing``, ``seeds``,
        ``training_data_sha256``, ``metrics``, ``config``... Keys in :data:`RESERVED_KEYS`
        are written by this function and may not be given.

    Raises
    ------
    TypeError
        If ``model`` is not a ``Sequential``, or ``metadata`` cannot be written as JSON.
    ValueError
        If the classes are not distinct, not at least 2, or do not match the model's number of
        outputs; if a layer type cannot be saved; if ``metadata`` uses a reserved key or holds
        NaN or infinity.
    FileNotFoundError
        If the directory of ``path`` does not exist.

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
    for position, layer in enumerate(model.layers):
        if type(layer).__name__ not in LAYER_TYPES:
            raise ValueError(
                f"layer {position} is a {type(layer).__name__}, which model files cannot hold; "
                f"they hold {', '.join(sorted(LAYER_TYPES))}."
            )
    classes_list = _check_classes(np.asarray(classes).tolist(), "classes")
    expected = 1 if len(classes_list) == 2 else len(classes_list)
    if model.out_features != expected:
        raise ValueError(
            f"{len(classes_list)} classes need {expected} output(s), but the model has "
            f"{model.out_features}."
        )
    extra = dict(metadata or {})
    clash = sorted(RESERVED_KEYS & set(extra))
    if clash:
        raise ValueError(
            f"metadata may not set {clash}: save_model writes these itself; rename them."
        )
    arrays: dict[str, np.ndarray] = {}
    params_meta = []
    for index, (layer_index, param) in enumerate(_named_parameters(model)):
        key = f"param_{index:03d}"
        arrays[key] = np.ascontiguousarray(param.value)
        params_meta.append({
            "key": key, "name": f"{layer_index}.{param.name}", "shape": list(param.shape),
            "dtype": param.dtype.name, "sha256": sha256_of_arrays(param.value),
        })
    document = {
        **extra,
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
        text = json.dumps(document, indent=1, sort_keys=True, allow_nan=False)
    except TypeError as error:
        raise TypeError(f"metadata must be JSON-serialisable: {error}") from None
    except ValueError as error:
        raise ValueError(
            f"metadata must be JSON-serialisable ({error}); replace NaN or infinity by None."
        ) from None
    arrays["metadata"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_write(path) as handle:
        handle.write(buffer.getbuffer())


def _named_parameters(model: Sequential) -> list[tuple[int, Any]]:
    return [(i, p) for i, layer in enumerate(model.layers) for p in layer.parameters()]


def _check_classes(classes: Any, where: str) -> list[Any]:
    """Classes must be a flat list of at least two distinct numbers or strings."""
    if not isinstance(classes, list) or len(classes) < 2:
        raise ValueError(f"{where} must list at least 2 classes, got {classes!r}.")
    for label in classes:
        if isinstance(label, bool) or not isinstance(label, int | float | str) or (
                isinstance(label, float) and not np.isfinite(label)):
            raise ValueError(
                f"{where} must hold integers, finite numbers or strings, got {label!r} "
                f"({type(label).__name__})."
            )
    if len(set(classes)) != len(classes):
        raise ValueError(f"{where} must be distinct, got {classes}.")
    return classes


# ---------------------------------------------------------------------------------------------
# Loading


def load_model(path: str | os.PathLike[str]) -> SavedModel:
    """Read a model file written by :func:`save_model`, checking everything it can.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    SavedModel
        Its predictions are bit-identical to those of the model that was saved.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a model file, is truncated or corrupted, holds pickled objects, has
        an unsupported format version, or its arrays do not match the metadata (names, shapes,
        dtypes or SHA-256).

    Notes
    -----
    The checks, in order: the file is a zip archive; the ``metadata`` member is a uint8 array
    of UTF-8 JSON naming this format and a version this nnscratch reads; the architecture and
    parameter list are well formed and agree; the archive holds exactly the arrays listed;
    each array's header (read before its data) has the listed shape and dtype and no objects;
    each array's SHA-256 matches. Only then are weights copied into a freshly built model.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file {path} does not exist; check the path.")
    if os.path.isdir(path):
        raise ModelFileError(f"{path} is a folder; give the model file (e.g. {path}/model.npz).")
    with open(path, "rb") as handle:
        head = handle.read(len(_ZIP_MAGIC))
    if head != _ZIP_MAGIC:
        raise ModelFileError(
            f"{path} is not a model file: it is not an .npz archive (it is empty, truncated at "
            f"the start, or another kind of file). {_RESAVE}"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):  # pragma: no cover - zip magic
                raise ModelFileError(f"{path} is not an .npz archive.")
            members = archive.zip.namelist()
            if len(members) != len(set(members)):
                raise ModelFileError(f"{path} lists an array twice; the file was altered.")
            document = _read_metadata(path, archive)
            plan = _check_document(path, document)
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


def _member(path: str, archive: Any, key: str) -> str:
    name = f"{key}.npy"
    if name not in archive.zip.namelist():
        raise ModelFileError(f"{path} has no array {key!r}; the file was altered. {_RESAVE}")
    return name


def _read_header(path: str, archive: Any, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array, from its .npy header, without reading its data."""
    with archive.zip.open(_member(path, archive, key)) as handle:
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
    if dtype.hasobject:
        raise ModelFileError(
            f"{path}: the array {key!r} holds Python objects (a pickle), which nnscratch never "
            f"writes and never loads, since unpickling can run arbitrary code. {_RESAVE}"
        )
    del fortran_order  # either order loads to the same values
    return tuple(shape), dtype


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
        document = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: the metadata is not valid JSON ({error}).") from None
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


def _check_document(path: str, document: dict[str, Any]) -> _Plan:
    """Validate the metadata on its own, before any weight is read."""
    if document.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{path} is not an nnscratch model file (its metadata names the format "
            f"{document.get('format')!r}, not {FORMAT_NAME!r})."
        )
    version = document.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: the format version {version!r} is not valid. {_RESAVE}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has format version {version}, newer than this nnscratch reads (version "
            f"{FORMAT_VERSION}); upgrade nnscratch (pip install -U nnscratch)."
        )
    try:
        _check_classes(document.get("classes"), "the classes in the metadata")
    except ValueError as error:
        raise ModelFileError(f"{path}: {error}") from None
    dtype_name = document.get("dtype")
    if dtype_name not in FLOAT_DTYPES:
        raise ModelFileError(
            f"{path}: the dtype {dtype_name!r} in the metadata is not float32 or float64."
        )
    dtype = FLOAT_DTYPES[dtype_name]
    expected = _expected_parameters(path, document.get("architecture"), dtype)
    entries = document.get("parameters")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ModelFileError(f"{path}: the metadata's parameter list is malformed. {_RESAVE}")
    if len(entries) != len(expected):
        raise ModelFileError(
            f"{path}: the architecture has {len(expected)} parameter arrays but the metadata "
            f"lists {len(entries)}; the file was altered."
        )
    plan = _Plan([], [], [], dtype, [])
    for entry, (name, shape) in zip(entries, expected, strict=True):
        key, listed, sha = entry.get("key"), entry.get("shape"), entry.get("sha256")
        if not (isinstance(key, str) and _KEY_PATTERN.fullmatch(key)
                and isinstance(sha, str) and _SHA256_PATTERN.fullmatch(sha)):
            raise ModelFileError(f"{path}: the metadata entry for {name} is malformed: {entry}.")
        if listed != list(shape) or entry.get("dtype") != dtype.name:
            raise ModelFileError(
                f"{path}: the metadata lists {name} as {entry.get('dtype')} of shape {listed}, "
                f"but the architecture needs {dtype.name} of shape {list(shape)}; the file was "
                "altered."
            )
        plan.keys.append(key)
        plan.names.append(name)
        plan.shapes.append(shape)
        plan.sha256.append(sha)
    if len(set(plan.keys)) != len(plan.keys):
        raise ModelFileError(f"{path}: the metadata lists an array twice; the file was altered.")
    return plan


def _expected_parameters(
    path: str, architecture: Any, dtype: np.dtype
) -> list[tuple[str, tuple[int, ...]]]:
    """Name and shape of each parameter the architecture implies, checked for consistency."""
    if not isinstance(architecture, dict) or not isinstance(architecture.get("layers"), list):
        raise ModelFileError(f"{path}: the metadata has no valid architecture. {_RESAVE}")
    expected: list[tuple[str, tuple[int, ...]]] = []
    width: int | None = None  # the output width of the last Dense seen
    for index, spec in enumerate(architecture["layers"]):
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in LAYER_TYPES:
            raise ModelFileError(
                f"{path}: layer {index} has the unknown type {kind!r}; this nnscratch knows "
                f"{', '.join(sorted(LAYER_TYPES))}. Upgrade nnscratch or re-save the model."
            )
        if kind != "Dense":
            continue
        n_in, n_out = spec.get("in_features"), spec.get("out_features")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                   for n in (n_in, n_out)):
            raise ModelFileError(f"{path}: layer {index} (Dense) has invalid sizes: {spec}.")
        if spec.get("dtype") != dtype.name:
            raise ModelFileError(
                f"{path}: layer {index} (Dense) is {spec.get('dtype')!r} but the model is "
                f"{dtype.name}; the file was altered."
            )
        if width is not None and n_in != width:
            raise ModelFileError(
                f"{path}: layer {index} (Dense) takes {n_in} inputs but the layer before gives "
                f"{width}; the file was altered."
            )
        width = n_out
        expected += [(f"{index}.W", (n_in, n_out)), (f"{index}.b", (n_out,))]
    if width is None:
        raise ModelFileError(f"{path}: the architecture has no Dense layer. {_RESAVE}")
    return expected


def _read_parameters(path: str, archive: Any, plan: _Plan) -> list[np.ndarray]:
    """Check the archive's members and headers against the plan, then read and hash them."""
    present = {name[:-4] for name in archive.zip.namelist() if name.endswith(".npy")}
    others = [name for name in archive.zip.namelist() if not name.endswith(".npy")]
    wanted = set(plan.keys) | {"metadata"}
    if present != wanted or others:
        found = sorted(present) + others
        raise ModelFileError(
            f"{path}: the archive holds {found}, but the metadata lists "
            f"{sorted(wanted)}; the file was altered."
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
        array = archive[key]
        if sha256_of_arrays(array) != sha:
            raise ModelFileError(
                f"{path}: the values of {name} do not match their recorded SHA-256; the file "
                f"was corrupted or tampered with. {_RESAVE}"
            )
        arrays.append(array)
    return arrays


def _rebuild(
    path: str, document: dict[str, Any], plan: _Plan, arrays: list[np.ndarray]
) -> SavedModel:
    try:
        model = _build_architecture(document["architecture"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(
            f"{path}: the architecture in the metadata is invalid ({error}). {_RESAVE}"
        ) from None
    for param, array in zip(model.parameters(), arrays, strict=True):
        param.value[...] = array
    classes = np.asarray(document["classes"])
    expected = 1 if classes.shape[0] == 2 else classes.shape[0]
    if model.out_features != expected:
        raise ModelFileError(
            f"{path}: {classes.shape[0]} classes need {expected} output(s) but the model has "
            f"{model.out_features}; the file was altered."
        )
    return SavedModel(model=model, classes=classes, metadata=document)


def _zeros(shape: tuple[int, ...], rng: Any) -> np.ndarray:
    """An initialiser for layers whose weights are about to be overwritten."""
    return np.zeros(shape)


def _build_architecture(config: Mapping[str, Any]) -> Sequential:
    layers: list[Layer] = []
    for spec in config["layers"]:
        spec = dict(spec)
        kind = spec.pop("type")
        if kind == "Dense":
            # The recorded initialiser name is kept for the record; the weights come from the
            # file, so the layer starts from zeros rather than spending time on random draws.
            init = spec.pop("init", "glorot_uniform")
            layer = Dense(spec.pop("in_features"), spec.pop("out_features"), init=_zeros,
                          dtype=spec.pop("dtype"), **spec)
            layer.init = init
        else:
            layer = LAYER_TYPES[kind](**spec)
        layers.append(layer)
    return Sequential(layers)
