"""A loaded model that answers one picture at a time, for ``nnscratch serve``.

:class:`Predictor` wraps a model file. It reads a picture (PNG or JPEG bytes, or 28×28 pixels
already in MNIST form) and returns what the page shows: the label, every class's probability,
the 28×28 input the network received and the activations of its first hidden layer — for a
convolutional network, the feature maps of its first convolution (after its batch norm and
activation), one small grey picture per channel.

The path from a picture to the probabilities is the one ``nnscratch predict`` takes, piece for
piece: :func:`nnscratch.images.preprocess_digit` makes the picture look like an MNIST digit,
:func:`nnscratch.data.preprocess_images` scales it to the model's dtype, the layers run forward
with ``training=False`` and the model's output loss turns the logits into probabilities. So the
server answers exactly as the command line does.

Thread safety: a prediction only reads the model. ``Layer.forward(x, training=False)`` writes
nothing into the layer and returns fresh arrays, so concurrent predictions share nothing but the
read-only weights and need no lock.

What is left out: batching several requests into one forward pass (one picture costs far less
than the HTTP around it), and models that do not read 28×28 MNIST-style digits.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch.data import preprocess_images
from nnscratch.images import MIN_INK_RANGE, BlankImageError, decode_picture, preprocess_digit
from nnscratch.nn.activations import ACTIVATIONS
from nnscratch.nn.conv import Conv2D
from nnscratch.nn.layers import Dense
from nnscratch.nn.model import Sequential
from nnscratch.nn.normalization import BatchNorm, LayerNorm
from nnscratch.runs import read_metrics
from nnscratch.serialization import SavedModel, load_model

__all__ = [
    "MAX_PICTURE_PIXELS",
    "PICTURE_FORMATS",
    "PixelsError",
    "Prediction",
    "Predictor",
    "feature_maps_layer",
    "forward_with_features",
    "forward_with_hidden",
]

#: The picture formats an upload may have (Pillow's names).
PICTURE_FORMATS = ("PNG", "JPEG")
#: The most pixels (width × height) an uploaded picture may have: a drawing pad is a few
#: hundred pixels a side; this bounds the memory one request can take.
MAX_PICTURE_PIXELS = 4_000_000

_SIZE = 28
#: Pixels whose values span less than this are blank: the rule of pictures and of predict's
#: array files (:data:`nnscratch.images.MIN_INK_RANGE`).
_MIN_PIXEL_RANGE = MIN_INK_RANGE


class PixelsError(ValueError):
    """A ``{"pixels": ...}`` document is not 28 rows of 28 numbers in [0, 1]."""


def forward_with_hidden(model: Sequential, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Run ``model`` forward for inference and keep the first hidden layer's activations.

    Parameters
    ----------
    model : Sequential
    X : ndarray of shape (n_samples, in_features)
        In the model's dtype.

    Returns
    -------
    logits : ndarray of shape (n_samples, out_features)
        The same arrays as ``model.forward(X, training=False)``: the same layer calls, in order.
    hidden : ndarray of shape (n_samples, n_hidden) or None
        The input of the second ``Dense`` layer, that is the first hidden layer after its
        activation (and after its ``Dropout``, the identity at inference); ``None`` for a model
        with a single ``Dense`` layer, which has no hidden layer.

    Notes
    -----
    The activations are picked up on the way through, not cached on the model, so concurrent
    calls stay independent.
    """
    logits, hidden, _ = forward_with_features(model, X)
    return logits, hidden


#: Layers that work on each value of a convolution's output, and so still show its maps.
_ELEMENTWISE = (BatchNorm, LayerNorm, *ACTIVATIONS.values())


def feature_maps_layer(model: Sequential) -> int | None:
    """The index of the layer whose output shows the first convolution's feature maps.

    The first :class:`~nnscratch.nn.conv.Conv2D`, or the last of the batch norms and
    activations right after it (``Conv2D → BatchNorm → ReLU``: the ReLU); ``None`` for a model
    without convolutions.
    """
    for start, layer in enumerate(model.layers):
        if isinstance(layer, Conv2D):
            end = start
            while end + 1 < len(model.layers) and isinstance(model.layers[end + 1],
                                                             _ELEMENTWISE):
                end += 1
            return end
    return None


def forward_with_features(
    model: Sequential, X: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Run ``model`` forward for inference, keeping the first hidden layer's activations and
    the first convolution's feature maps.

    Returns
    -------
    logits : ndarray of shape (n_samples, out_features)
        The same arrays as ``model.forward(X, training=False)``: the same layer calls, in order.
    hidden : ndarray of shape (n_samples, n_hidden) or None
        As :func:`forward_with_hidden`.
    feature_maps : ndarray of shape (n_samples, channels, height, width) or None
        The output of :func:`feature_maps_layer`; ``None`` without a convolution.
    """
    hidden = maps = None
    n_dense = 0
    shown = feature_maps_layer(model)
    for index, layer in enumerate(model.layers):
        if isinstance(layer, Dense):
            n_dense += 1
            if n_dense == 2:
                hidden = X
        X = layer.forward(X, training=False)
        if index == shown:
            maps = X
    return X, hidden, maps


@dataclass(frozen=True)
class Prediction:
    """One picture's answer.

    Attributes
    ----------
    label : int, float or str
        The most probable class.
    probabilities : ndarray of shape (n_classes,)
        In the model's class order; they sum to 1.
    input : ndarray of shape (28, 28)
        What the network received: gray levels scaled to [0, 1], in the model's dtype.
    hidden : ndarray of shape (n_hidden,)
        The first hidden layer's activations; empty for a model without a hidden layer.
    seconds : dict of str to float
        Time spent in each step (``decode``, ``preprocess``, ``forward``), for the server's
        ``Server-Timing`` header.
    feature_maps : ndarray of shape (channels, height, width) or None
        A convolutional network's first feature maps (:func:`feature_maps_layer`); ``None``
        for a network without convolutions.
    """

    label: Any
    probabilities: np.ndarray
    input: np.ndarray
    hidden: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    feature_maps: np.ndarray | None = None

    def to_json(self, classes: list[Any]) -> dict[str, Any]:
        """The JSON document of ``POST /api/predict``; a CNN's answer adds ``feature_maps``
        (:meth:`feature_map_pictures`)."""
        document = {
            "label": self.label,
            "probabilities": self.probabilities.tolist(),
            "classes": classes,
            "input": self.input.tolist(),
            "hidden": self.hidden.tolist(),
        }
        if self.feature_maps is not None:
            document["feature_maps"] = self.feature_map_pictures().tolist()
        return document

    def feature_map_pictures(self) -> np.ndarray:
        r"""Each feature map as a grey picture: gray levels 0..255 (uint8), of shape
        ``(channels, height, width)``, each map stretched over the full range on its own,
        :math:`g = \mathrm{round}(255 (v - \min) / (\max - \min))` (0 for a uniform map),
        so that each shows where its filter responds most. Integers keep the answer a fifth
        the size of the floats (32 maps of 28×28 are 25,088 values).

        Raises
        ------
        ValueError
            For a model without convolutions.
        """
        if self.feature_maps is None:
            raise ValueError("this model has no convolution, hence no feature maps.")
        maps = self.feature_maps.astype(np.float64)
        low = maps.min(axis=(1, 2), keepdims=True)
        span = maps.max(axis=(1, 2), keepdims=True) - low
        scaled = np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)
        return np.rint(255 * scaled).astype(np.uint8)


class Predictor:
    """A model ready to label one picture at a time.

    Parameters
    ----------
    saved : SavedModel
        A model that reads 784 pixels scaled as ``pixel / 255`` (what ``nnscratch train``
        writes).
    path : Path
        The model file, for the facts shown on the page (name and SHA-256).
    run_metrics : dict or None, default=None
        The ``metrics.json`` of the run that trained it, when there is one.

    Raises
    ------
    ValueError
        If the model does not take 784 inputs or expects another input scaling.
    """

    def __init__(self, saved: SavedModel, path: Path,
                 run_metrics: dict[str, Any] | None = None) -> None:
        saved.check_reads_28x28_pixels(
            path, "serve a model trained on MNIST (nnscratch train --recipe mnist10)")
        self.saved = saved
        self.path = Path(path)
        self.classes: list[Any] = saved.classes.tolist()
        self.dtype = saved.model.dtype
        self._facts = self._describe(run_metrics or {})

    @classmethod
    def load(cls, given: str | Path, *, max_parameters: int | None = None) -> Predictor:
        """Load a model file, or the ``model.npz`` of a run folder (with its ``metrics.json``).

        ``max_parameters`` is passed to :func:`~nnscratch.serialization.load_model` (``None``:
        its default limit).

        Raises
        ------
        FileNotFoundError
            If there is no such file, or the folder has no ``model.npz``.
        ModelFileError
            If the file is not a valid model file.
        ValueError
            If the model does not read MNIST digits.
        """
        path = Path(given)
        if path.is_dir():
            if not (path / "model.npz").is_file():
                raise FileNotFoundError(
                    f"{path} is a folder without a model.npz; give a model file or a run folder "
                    "written by nnscratch train."
                )
            path = path / "model.npz"
        saved = (load_model(path) if max_parameters is None
                 else load_model(path, max_parameters=max_parameters))
        return cls(saved, path, _read_run_metrics(path.parent))

    # -----------------------------------------------------------------------------------------
    # Predicting

    def predict_picture(self, data: bytes) -> Prediction:
        """Label a PNG or JPEG picture of one digit, as ``nnscratch predict`` labels a file.

        Raises
        ------
        InputFormatError
            If the bytes are not a PNG or JPEG picture (:class:`UndecodableImageError` when
            its data is truncated or corrupt, :class:`PictureTooLargeError` above
            :data:`MAX_PICTURE_PIXELS`).
        BlankImageError
            If the picture holds no digit.
        """
        watch = _Stopwatch()
        gray = decode_picture(data, source="the upload", formats=PICTURE_FORMATS,
                              max_pixels=MAX_PICTURE_PIXELS)
        watch.lap("decode")
        digit = preprocess_digit(gray, source="the picture")
        X = preprocess_images(digit[np.newaxis], self.dtype)
        watch.lap("preprocess")
        return self._predict(X, watch)

    def predict_pixels(self, pixels: Any) -> Prediction:
        """Label 28×28 pixels already in MNIST form, used as they are.

        Parameters
        ----------
        pixels : list of 28 lists of 28 numbers
            Gray levels scaled to [0, 1], white digit on black, centred as MNIST's are (as
            ``nnscratch predict`` uses a ``.npy`` file: no centring or scaling is done).

        Raises
        ------
        PixelsError
            If `pixels` is not 28 rows of 28 finite numbers in [0, 1].
        BlankImageError
            If the pixels are (nearly) uniform.
        """
        watch = _Stopwatch()
        array = _check_pixels(pixels)
        if float(array.max() - array.min()) < _MIN_PIXEL_RANGE:
            raise BlankImageError(
                f"the pixels hold no digit: their values span {array.max() - array.min():.3f} "
                f"(at least {_MIN_PIXEL_RANGE} is needed); draw a digit, white on black."
            )
        X = array.astype(self.dtype).reshape(1, _SIZE * _SIZE)
        watch.lap("preprocess")
        return self._predict(X, watch)

    def _predict(self, X: np.ndarray, watch: _Stopwatch) -> Prediction:
        logits, hidden, maps = forward_with_features(self.saved.model, X)
        probabilities = self.saved.loss.class_probabilities(logits)[0]
        label = self.classes[int(np.argmax(probabilities))]
        watch.lap("forward")
        return Prediction(
            label=label,
            probabilities=probabilities,
            input=X.reshape(_SIZE, _SIZE),
            hidden=hidden[0] if hidden is not None else np.empty(0, dtype=self.dtype),
            seconds=watch.seconds,
            feature_maps=maps[0] if maps is not None else None,
        )

    # -----------------------------------------------------------------------------------------
    # Describing

    def facts(self) -> dict[str, Any]:
        """The document of ``GET /api/model``: architecture, classes, dtype, accuracy, SHA-256."""
        return self._facts

    def _describe(self, run_metrics: dict[str, Any]) -> dict[str, Any]:
        model, metadata = self.saved.model, self.saved.metadata
        layers = [{"type": type(layer).__name__, **layer.get_config()} for layer in model.layers]
        sizes = [model.in_features] + [layer.out_features for layer in model.layers
                                       if isinstance(layer, Dense)]
        test_accuracy = _accuracy(run_metrics.get("test_accuracy"))
        source = "metrics.json" if test_accuracy is not None else None
        if test_accuracy is None:
            metrics = metadata.get("metrics")
            test_accuracy = _accuracy(metrics.get("test_accuracy")
                                      if isinstance(metrics, dict) else None)
            source = "model file" if test_accuracy is not None else None
        hidden_units = sizes[1] if len(sizes) > 2 else 0
        return {
            # The name, not the path: the page needs no more, and a path says too much.
            "file": (f"{self.path.parent.name}/{self.path.name}"
                     if self.path.name == "model.npz" and self.path.parent.name
                     else self.path.name),
            "sha256": _file_sha256(self.path),
            "layer_sizes": sizes,
            "layers": layers,
            "summary": _summary(model),
            "n_parameters": self.saved.n_parameters,
            "classes": self.classes,
            "output": metadata.get("output"),
            "dtype": self.dtype.name,
            "hidden_units": hidden_units,
            "hidden_activation": _hidden_activation(model),
            "feature_maps": _feature_maps_facts(model),
            "recipe": (metadata.get("config") or {}).get("recipe"),
            "test_accuracy": test_accuracy,
            "test_accuracy_source": source,
        }


class _Stopwatch:
    """Seconds spent in each named step, one lap after the other."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = now - self._last
        self._last = now


def _check_pixels(pixels: Any) -> np.ndarray:
    """28 rows of 28 finite numbers in [0, 1], as a float64 array, or a clear PixelsError."""
    if not isinstance(pixels, list) or len(pixels) != _SIZE:
        got = f"{len(pixels)} rows" if isinstance(pixels, list) else type(pixels).__name__
        raise PixelsError(f"pixels must be a list of 28 rows of 28 numbers, got {got}.")
    for r, row in enumerate(pixels):
        if not isinstance(row, list) or len(row) != _SIZE:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise PixelsError(f"pixels[{r}] must be a row of 28 numbers, got {got}.")
        for c, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise PixelsError(
                    f"pixels[{r}][{c}] is {json.dumps(value)[:40]}; expected a number in [0, 1]."
                )
    try:
        array = np.array(pixels, dtype=np.float64)
    except OverflowError:  # an integer beyond float64's range
        raise PixelsError("pixels hold a number too large for a float; expected [0, 1].") from None
    bad = ~np.isfinite(array)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise PixelsError(
            f"pixels[{r}][{c}] is {array[r, c]}; pixels must be finite numbers in [0, 1]."
        )
    outside = (array < 0) | (array > 1)
    if outside.any():
        r, c = np.argwhere(outside)[0]
        raise PixelsError(
            f"pixels[{r}][{c}] is {array[r, c]:g}, outside [0, 1]; scale gray levels 0..255 by "
            "1/255."
        )
    return array


def _summary(model: Sequential) -> str:
    """``784 → 512 ReLU → 256 ReLU → 10``: widths with the activation after each; a CNN's
    convolutions and pools as ``conv 32 3×3 BatchNorm ReLU → MaxPool2D 2×2``."""
    parts = [str(model.in_features)]
    for layer in model.layers:
        name = type(layer).__name__
        if isinstance(layer, Dense):
            parts.append(str(layer.out_features))
        elif isinstance(layer, Conv2D):
            parts.append(f"conv {layer.out_channels} {'×'.join(map(str, layer.kernel_size))}")
        elif name in ("MaxPool2D", "AvgPool2D"):
            parts.append(f"{name} {'×'.join(map(str, layer.kernel_size))}")  # type: ignore[attr-defined]
        elif name == "Reshape":
            parts.append("×".join(map(str, layer.shape)))  # type: ignore[attr-defined]
        elif name not in ("Dropout", "Flatten"):
            parts[-1] += f" {name}"
    return " → ".join(parts)


def _feature_maps_facts(model: Sequential) -> dict[str, Any] | None:
    """What the page says of the feature maps it shows: their number, size and layers."""
    shown = feature_maps_layer(model)
    if shown is None or model.in_features is None:
        return None
    probe = np.zeros((1, model.in_features), dtype=model.dtype)
    for layer in model.layers[:shown + 1]:
        probe = layer.forward(probe, training=False)
    start = next(i for i, layer in enumerate(model.layers) if isinstance(layer, Conv2D))
    channels, height, width = probe.shape[1:]
    return {"channels": channels, "height": height, "width": width,
            "layers": " ".join(type(layer).__name__ for layer in model.layers[start:shown + 1])}


def _hidden_activation(model: Sequential) -> str | None:
    """The name of the activation right after the first Dense layer, if it has one."""
    for before, layer in zip(model.layers, model.layers[1:], strict=False):
        if isinstance(before, Dense):
            return None if isinstance(layer, Dense) else type(layer).__name__
    return None


def _accuracy(value: Any) -> float | None:
    """A test accuracy as recorded, or ``None`` unless it is a real number in [0, 1] (a NaN,
    a string or 7.5 is shown as unknown, not as "NaN %" or "750 %")."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if 0.0 <= value <= 1.0 else None  # False for NaN too


def _read_run_metrics(run: Path) -> dict[str, Any]:
    """A run's ``metrics.json``, or nothing when it is missing or unreadable."""
    try:
        return read_metrics(run)
    except (OSError, ValueError):
        return {}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()
