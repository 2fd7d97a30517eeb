r"""Figures for training and evaluation: cost curves, histories, confusion matrices and more.

Every function here draws one self-contained figure and returns it as a
:class:`matplotlib.figure.Figure`; given a ``path`` it also writes the figure there
as a PNG (120 dpi), atomically, so a crash never leaves half an image behind. From
the simplest to the most involved:

* :func:`plot_cost` — cost against iteration, as the tutorial plots it;
* :func:`plot_history` — loss and accuracy per epoch, training and validation;
* :func:`plot_roc` — a binary ROC curve with its AUC;
* :func:`plot_time_to_accuracy` — accuracy against wall-clock time, for benchmarks;
* :func:`plot_confusion_matrix` — an annotated heatmap of a confusion matrix;
* :func:`plot_misclassified` — a grid of the images a model got wrong;
* :func:`plot_augmentation` — images beside random augmented versions of them;
* :func:`plot_first_layer_weights` — what each first-layer unit looks for.

matplotlib is imported inside the functions, so ``import nnscratch`` stays fast and
works without a display. The figures are drawn on a bare ``Figure`` with the Agg
canvas, never through ``pyplot``: no global state, no open-figure leaks, no
backend to choose, and the same result headless or in Jupyter (whose inline
backend displays a returned figure).

What it leaves out: interactive windows (``plt.show``), styles and themes, and
formats other than PNG; call ``fig.savefig("name.svg")`` on the returned figure for
those. The numbers behind the plots come from :mod:`nnscratch.metrics` and
:mod:`nnscratch.nn.training`; nothing here computes a metric of its own.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nnscratch import metrics
from nnscratch._atomic import atomic_write
from nnscratch._validation import check_int, check_real

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from nnscratch.data.augment import Augmentation
    from nnscratch.nn.training import History

__all__ = [
    "plot_augmentation",
    "plot_confusion_matrix",
    "plot_cost",
    "plot_first_layer_weights",
    "plot_history",
    "plot_misclassified",
    "plot_roc",
    "plot_time_to_accuracy",
]

#: Resolution of every figure, on screen and in the PNG files.
DPI = 120

#: Confusion matrices larger than this are drawn without numbers in the cells.
MAX_ANNOTATED_CLASSES = 20


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> Figure:
    """A bare figure on an Agg canvas, laid out so labels never overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _finish(figure: Figure, path: str | os.PathLike[str] | None) -> Figure:
    """Write ``figure`` to ``path`` as a PNG (if a path is given) and return it."""
    if path is not None:
        with atomic_write(path) as file:
            figure.savefig(file, format="png", dpi=DPI)
    return figure


def _label_line_axes(
    ax: Axes, title: str, xlabel: str, ylabel: str, *, legend_loc: str | None = None
) -> None:
    """The title, axis labels and light grid of every line chart here, and a legend at
    ``legend_loc`` when one is asked for."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend_loc is not None:
        ax.legend(loc=legend_loc)


def _series(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """Return ``values`` as a non-empty 1-D float array, or raise naming ``name``."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}.")
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty; pass at least one value.")
    return array.astype(np.float64, copy=False)


def _same_length(a: NDArray, a_name: str, b: NDArray, b_name: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{a_name} has {a.shape[0]} values but {b_name} has {b.shape[0]}; "
            "pass one value of each per point."
        )


def _present(history: Mapping[str, Any], key: str) -> bool:
    """Whether ``history`` has a non-empty series under ``key``."""
    return key in history and np.size(history[key]) > 0


def _grid(n_panels: int) -> tuple[int, int]:
    """Rows and columns of a near-square grid holding ``n_panels`` panels."""
    n_cols = math.ceil(math.sqrt(n_panels))
    return math.ceil(n_panels / n_cols), n_cols


# ---------------------------------------------------------------------------
# Curves
# ---------------------------------------------------------------------------


def plot_cost(
    costs: ArrayLike,
    iterations: ArrayLike | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    title: str = "Training cost",
) -> Figure:
    """Plot the training cost against the iteration at which it was recorded.

    Parameters
    ----------
    costs : array-like of shape (n_points,)
        Cost (loss) values, in the order they were recorded.
    iterations : array-like of shape (n_points,), default=None
        The iteration of each cost, e.g. ``range(0, 2500, 100)`` when the cost is
        recorded every 100 iterations. ``None`` numbers the points 0, 1, 2, ...
    path : str or os.PathLike, default=None
        Where to write the figure as a PNG; its directory must exist. ``None``
        writes nothing.
    title : str, default="Training cost"
        Title of the plot.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure, 6.4 × 4.2 inches.

    Raises
    ------
    ValueError
        If ``costs`` or ``iterations`` is not 1-D or is empty, or their lengths
        differ.
    TypeError
        If ``costs`` or ``iterations`` does not hold numbers.
    FileNotFoundError
        If the directory of ``path`` does not exist.

    Examples
    --------
    >>> fig = plot_cost([0.69, 0.45, 0.31, 0.25], iterations=[0, 100, 200, 300])
    >>> fig.axes[0].get_xlabel()
    'iteration'
    """
    cost = _series(costs, "costs")
    if iterations is None:
        steps = np.arange(cost.size, dtype=np.float64)
    else:
        steps = _series(iterations, "iterations")
        _same_length(cost, "costs", steps, "iterations")

    figure = _new_figure(6.4, 4.2)
    ax = figure.add_subplot()
    ax.plot(steps, cost, color="tab:blue", marker="o" if cost.size <= 50 else None, markersize=4)
    _label_line_axes(ax, title, "iteration", "cost")
    return _finish(figure, path)


def plot_history(
    history: Mapping[str, Any] | History,
    *,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Plot loss and accuracy per epoch, for training and (if present) validation.

    Parameters
    ----------
    history : mapping of str to sequence of float, or nnscratch.nn.training.History
        Per-epoch values: ``"loss"`` is required; ``"accuracy"``,
        ``"val_loss"`` and ``"val_accuracy"`` are drawn when present and not
        empty (a :class:`~nnscratch.nn.training.History` leaves them empty without
        validation data or for a regression loss). A validation series must be
        as long as its training series. An integer ``"best_epoch"`` (0-based,
        as early stopping records it) is marked with a dotted line. Other keys
        are ignored.
    path : str or os.PathLike, default=None
        Where to write the figure as a PNG; its directory must exist. ``None``
        writes nothing.

    Returns
    -------
    figure : matplotlib.figure.Figure
        Two panels side by side, loss on the left and accuracy on the right (only
        the loss panel when there is no accuracy), with the last value of each
        curve in the legend; 10 × 4 inches (5.5 × 4 for one panel).

    Raises
    ------
    TypeError
        If ``history`` is neither a mapping nor a ``History``, or a series does
        not hold numbers.
    ValueError
        If ``"loss"`` is missing or empty, a series is not 1-D, or a series
        differs in length from ``"loss"``.
    FileNotFoundError
        If the directory of ``path`` does not exist.

    Examples
    --------
    >>> fig = plot_history({"loss": [0.9, 0.5, 0.4], "accuracy": [0.7, 0.85, 0.9],
    ...                     "val_loss": [0.8, 0.6, 0.5], "val_accuracy": [0.72, 0.8, 0.86]})
    >>> [ax.get_title() for ax in fig.axes]
    ['Loss', 'Accuracy']
    """
    if not isinstance(history, Mapping):
        if not callable(getattr(history, "as_dict", None)):
            raise TypeError(
                "history must be a mapping such as a dict of lists, or a training.History, "
                f"got {type(history).__name__}."
            )
        history = history.as_dict()
    if not _present(history, "loss"):
        raise ValueError(
            "history needs a non-empty 'loss' series (optionally 'accuracy', 'val_loss', "
            f"'val_accuracy'), got keys {sorted(history)}."
        )
    loss = _series(history["loss"], "history['loss']")
    series = {}
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if _present(history, key):
            series[key] = _series(history[key], f"history[{key!r}]")
            _same_length(loss, "history['loss']", series[key], f"history[{key!r}]")
    best_epoch = history.get("best_epoch")
    if not (isinstance(best_epoch, numbers.Integral) and 0 <= best_epoch < loss.size):
        best_epoch = None

    panels = [("loss", "Loss")] + ([("accuracy", "Accuracy")] if "accuracy" in series else [])
    figure = _new_figure(10.0 if len(panels) == 2 else 5.5, 4.0)
    epochs = np.arange(1, loss.size + 1)
    marker = "o" if loss.size <= 30 else None
    for ax, (metric, title) in zip(
        figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True
    ):
        train = series[metric]
        ax.plot(epochs, train, marker=marker, markersize=4, label=f"train ({train[-1]:.4g})")
        if f"val_{metric}" in series:
            val = series[f"val_{metric}"]
            ax.plot(
                epochs,
                val,
                marker=marker,
                markersize=4,
                linestyle="--",
                label=f"validation ({val[-1]:.4g})",
            )
        if best_epoch is not None:
            ax.axvline(
                best_epoch + 1, color="gray", linestyle=":", label=f"best epoch ({best_epoch + 1})"
            )
        _label_line_axes(ax, title, "epoch", metric, legend_loc="best")
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _finish(figure, path)


def plot_roc(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    pos_label: object = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Plot the ROC curve of binary scores, with the area under it in the legend.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, exactly two distinct values.
    scores : array-like of shape (n_samples,)
        Scores where higher means "more likely positive".
    pos_label : object, default=None
        The positive class; ``None`` takes the larger of the two labels.
    path : str or os.PathLike, default=None
        Where to write the figure as a PNG; its directory must exist. ``None``
        writes nothing.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The curve against the chance diagonal, 5 × 5 inches.

    Raises
    ------
    ValueError, TypeError
        For inputs that :func:`nnscratch.metrics.roc_curve` refuses, e.g. a
        ``y_true`` without exactly two classes.
    FileNotFoundError
        If the directory of ``path`` does not exist.

    See Also
    --------
    nnscratch.metrics.roc_curve, nnscratch.metrics.roc_auc_score

    Examples
    --------
    >>> fig = plot_roc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fig.axes[0].get_legend().get_texts()[0].get_text()
    'ROC (AUC = 0.750)'
    """
    fpr, tpr, _ = metrics.roc_curve(y_true, scores, pos_label=pos_label)
    auc = metrics.roc_auc_score(y_true, scores, pos_label=pos_label)

    figure = _new_figure(5.0, 5.0)
    ax = figure.add_subplot()
    ax.plot(fpr, tpr, color="tab:orange", linewidth=2, label=f"ROC (AUC = {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="chance (AUC = 0.5)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    _label_line_axes(ax, "ROC curve", "false positive rate", "true positive rate",
                     legend_loc="lower right")
    return _finish(figure, path)


def plot_time_to_accuracy(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    target: float | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Plot accuracy against wall-clock training time, one curve per run.

    Parameters
    ----------
    curves : mapping of str to (seconds, accuracy)
        For each run (e.g. ``"nnscratch float32"``, ``"sklearn MLP"``), the
        elapsed seconds and the accuracy measured at those times, as two
        sequences of equal length.
    target : float, default=None
        An accuracy to reach: drawn as a dashed line, and each legend entry
        says when its run first reached it (or that it never did).
    path : str or os.PathLike, default=None
        Where to write the figure as a PNG; its directory must exist. ``None``
        writes nothing.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure, 7 × 4.5 inches.

    Raises
    ------
    TypeError
        If ``curves`` is not a mapping, ``target`` is not a real number, or a
        series does not hold numbers.
    ValueError
        If ``curves`` is empty, a value is not a ``(seconds, accuracy)`` pair,
        a series is not 1-D or is empty, the two series of a run differ in
        length, or ``target`` is not finite.
    FileNotFoundError
        If the directory of ``path`` does not exist.

    Examples
    --------
    >>> fig = plot_time_to_accuracy({"fast": ([1, 2, 3], [0.90, 0.96, 0.975]),
    ...                              "slow": ([2, 4, 6], [0.85, 0.92, 0.95])}, target=0.97)
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['fast (reaches 0.97 at 3 s)', 'slow (never reaches 0.97)', 'target 0.97']
    """
    if not isinstance(curves, Mapping):
        raise TypeError(
            f"curves must be a mapping of name to (seconds, accuracy), got {type(curves).__name__}."
        )
    if not curves:
        raise ValueError("curves is empty; pass at least one run as {name: (seconds, accuracy)}.")
    if target is not None:
        target = check_real(target, "target")

    figure = _new_figure(7.0, 4.5)
    ax = figure.add_subplot()
    for name, pair in curves.items():
        if not (isinstance(pair, Sequence) and len(pair) == 2):
            raise ValueError(
                f"curves[{name!r}] must be a pair (seconds, accuracy), got {type(pair).__name__}"
                + (f" of length {len(pair)}." if isinstance(pair, Sequence) else ".")
            )
        seconds = _series(pair[0], f"curves[{name!r}] seconds")
        accuracy = _series(pair[1], f"curves[{name!r}] accuracy")
        _same_length(seconds, f"curves[{name!r}] seconds", accuracy, "its accuracy")
        label, first = str(name), None
        if target is not None:
            reached = np.flatnonzero(accuracy >= target)
            if reached.size:
                first = reached[0]
                label += f" (reaches {target:g} at {seconds[first]:.3g} s)"
            else:
                label += f" (never reaches {target:g})"
        (line,) = ax.plot(seconds, accuracy, marker="o", markersize=3, label=label)
        if first is not None:
            # A star where the run first reaches the target.
            ax.plot(
                seconds[first], accuracy[first], marker="*", markersize=12, color=line.get_color()
            )
    if target is not None:
        ax.axhline(target, color="gray", linestyle="--", linewidth=1, label=f"target {target:g}")
    _label_line_axes(ax, "Accuracy against training time", "wall-clock time (s)", "accuracy",
                     legend_loc="lower right")
    return _finish(figure, path)


# ---------------------------------------------------------------------------
# Images and matrices
# ---------------------------------------------------------------------------


def plot_confusion_matrix(
    matrix: ArrayLike,
    class_names: Sequence[str] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    normalize: bool = False,
) -> Figure:
    r"""Draw a confusion matrix as a heatmap with the value written in each cell.

    Parameters
    ----------
    matrix : array-like of shape (n_classes, n_classes)
        Counts with true classes as rows and predicted classes as columns, as
        returned by :func:`nnscratch.metrics.confusion_matrix`.
    class_names : sequence of str of length n_classes, default=None
        Tick labels; ``None`` numbers the classes 0, 1, 2, ...
    path : str or os.PathLike, default=None
        Where to write the figure as a PNG; its directory must exist. ``None``
        writes nothing.
    normalize : bool, default=False
        Divide each row by its sum, so that the diagonal shows each class's
        recall and a row sums to 1 (a row of zeros stays zeros).

    Returns
    -------
    figure : matplotlib.figure.Figure
        The heatmap with a colour bar; it grows with ``n_classes``. Cells carry
        numbers when ``n_classes`` is at most 20.

    Raises
    ------
    ValueError
        If ``matrix`` is not square, is empty, or holds negative or non-finite
        values, or ``class_names`` does not have one name per class.
    TypeError
        If ``matrix`` does not hold numbers.
    FileNotFoundError
        If the directory of ``path`` does not exist.

    Notes
    -----
    With ``normalize=True`` each cell becomes

    .. math::

        \tilde C_{ij} = \frac{C_{ij}}{\sum_k C_{ik}},

    the fraction of class :math:`i` predicted as :math:`j`.

    Examples
    --------
    >>> fig = plot_confusion_matrix([[5, 1], [2, 7]], ["cat", "dog"])
    >>> fig.axes[0].get_ylabel()
    'true label'
    """
    counts = np.asarray(matrix)
    if counts.dtype.kind not in "biuf":
        raise TypeError(f"matrix must hold numbers, got dtype {counts.dtype}.")
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.size == 0:
        raise ValueError(
            f"matrix must be a non-empty square array (n_classes, n_classes), got shape "
            f"{counts.shape}; build one with nnscratch.metrics.confusion_matrix(y_true, y_pred)."
        )
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("matrix must hold finite, non-negative counts.")
    n_classes = counts.shape[0]
    if class_names is None:
        names = [str(k) for k in range(n_classes)]
    else:
        names = [str(name) for name in class_names]
        if len(names) != n_classes:
            raise ValueError(
                f"class_names has {len(names)} names but matrix has {n_classes} classes; "
                "pass one name per row."
            )

    if normalize:
        row_sums = counts.sum(axis=1, keepdims=True)
        values = np.divide(
            counts, row_sums, out=np.zeros(counts.shape), where=row_sums != 0, dtype=np.float64
        )
        cell_format, vmax = "{:.2f}", 1.0
    else:
        values = counts
        integral = counts.dtype.kind in "biu" or np.all(counts == np.round(counts))
        cell_format, vmax = ("{:.0f}" if integral else "{:.3g}"), max(float(counts.max()), 1.0)

    side = min(max(4.5, 0.55 * n_classes + 2.0), 16.0)
    figure = _new_figure(side + 0.8, side)
    ax = figure.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax)
    figure.colorbar(image, ax=ax, shrink=0.8, label="fraction of row" if normalize else "count")
    ticks = np.arange(n_classes)
    rotate = max(len(name) for name in names) > 3
    ax.set_xticks(ticks, names, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title("Confusion matrix" + (" (rows normalised)" if normalize else ""))
    if n_classes <= MAX_ANNOTATED_CLASSES:
        fontsize = 10 if n_classes <= 10 else 7
        for (i, j), value in np.ndenumerate(values):
            # Light text on dark cells, dark text on light ones.
            color = "white" if value > 0.5 * vmax else "black"
            ax.text(
                j,
                i,
                cell_format.format(value),
                ha="center",
                va="center",
                color=color,
                fontsize=fontsize,
            )
    return _finish(figure, path)


def _as_square_images(images: ArrayLike) -> tuple[NDArray, float, float | None]:
    """Images as (n, side, side) or (n, h, w) plus the colour range to show them with."""
    array = np.asarray(images)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"images must hold numbers, got dtype {array.dtype}.")
    if array.ndim == 2:
        side = math.isqrt(array.shape[1])
        if side * side != array.shape[1] or array.shape[1] == 0:
            raise ValueError(
                f"images of shape {array.shape} have {array.shape[1]} pixels each, which is "
                "not a square number; pass (n_samples, height, width) images instead."
            )
        array = array.reshape(array.shape[0], side, side)
    elif array.ndim != 3:
        raise ValueError(
            "images must have shape (n_samples, height, width) or (n_samples, n_pixels), "
            f"got shape {array.shape}."
        )
    if array.dtype == np.uint8:
        return array, 0.0, 255.0
    if array.size and np.nanmin(array) >= 0 and np.nanmax(array) <= 1:
        return array, 0.0, 1.0
    return array, None, None  # any other range: each image is scaled to its own min and max


def _label_name(label: np.generic, class_names: Sequence[str] | None) -> str:
    """How a label is printed: itself, or its entry in ``class_names``."""
    if class_names is None:
        return str(label.item())
    try:
        return str(class_names[int(label)])
    except (IndexError, TypeError, ValueError):
        raise ValueError(
            f"label {label.item()!r} has no entry in class_names (which has "
            f"{len(class_names)} names); class_names[k] must name integer label k."
        ) from None


def plot_misclassified(
    images: ArrayLike,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    class_names: Sequence[str] | None = None,
    max_images: int = 36,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Show a grid of the images whose predicted label is wrong.

    Parameters
    ----------
    images : array-like of shape (n_samples, height, width) or (n_samples, n_pixels)
        The images, as ``uint8`` in 0..255 or floats in [0, 1]; flat rows are
        reshaped to squares (784 → 28 × 28). Floats in any other range (e.g.
        standardised) are shown each scaled to its own minimum and maximum.
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    class_names : sequence of str, default=None
        ``class_names[k]`` is the name of integer label ``k``; ``None`` prints
        the labels themselves.
    max_images : int, default=36
        Show at most this many, the first ones in sample order.
    path : str or os.PathLike, default=None
        Where to write the figure as a PNG; its directory must exist. ``None``
        writes nothing.

    Returns
    -------
    figure : matplotlib.figure.Figure
        A near-square grid, each image titled ``"true X / pred Y"`` (on two
        lines when the names are long), under a title with the error count.
        With no mistakes, a small figure saying so.

    Raises
    ------
    ValueError
        If ``images`` does not have one of the accepted shapes, the numbers of
        images and labels differ, ``max_images`` is below 1, or a label has no
        entry in ``class_names``.
    TypeError
        If ``images`` does not hold numbers, or ``max_images`` is not an integer.
    FileNotFoundError
        If the directory of ``path`` does not exist.

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_misclassified(np.zeros((3, 784)), [1, 2, 3], [1, 5, 3])
    >>> fig.axes[0].get_title()
    'true 2 / pred 5'
    """
    pictures, vmin, vmax = _as_square_images(images)
    true = np.asarray(y_true)
    pred = np.asarray(y_pred)
    for name, labels in (("y_true", true), ("y_pred", pred)):
        if labels.ndim != 1 or labels.shape[0] != pictures.shape[0]:
            raise ValueError(
                f"{name} must be 1-D with one label per image ({pictures.shape[0]}), "
                f"got shape {labels.shape}."
            )
    max_images = check_int(max_images, "max_images", low=1)
    wrong = np.flatnonzero(true != pred)
    n_samples, n_wrong = pictures.shape[0], wrong.size

    if n_wrong == 0:
        figure = _new_figure(5.0, 1.6)
        message = f"No misclassified images:\nall {n_samples} predictions are correct."
        figure.text(0.5, 0.5, message, ha="center", va="center", fontsize=12)
        return _finish(figure, path)

    shown = wrong[:max_images]
    n_rows, n_cols = _grid(shown.size)
    figure = _new_figure(max(1.6 * n_cols, 4.0), 1.7 * n_rows + 0.5)
    axes = figure.subplots(n_rows, n_cols, squeeze=False).ravel()
    true_names = [_label_name(label, class_names) for label in true[shown]]
    pred_names = [_label_name(label, class_names) for label in pred[shown]]
    # Long class names go on two lines so that neighbouring titles do not collide.
    separator = " / " if max(map(len, true_names + pred_names)) <= 5 else "\n"
    for ax, index, true_name, pred_name in zip(axes, shown, true_names, pred_names, strict=False):
        ax.imshow(pictures[index], cmap="gray_r", vmin=vmin, vmax=vmax)
        ax.set_title(f"true {true_name}{separator}pred {pred_name}", fontsize=8)
    for ax in axes:
        ax.set_axis_off()
    figure.suptitle(
        f"Misclassified: {n_wrong} of {n_samples} ({n_wrong / n_samples:.1%})"
        + (f", first {shown.size} shown" if shown.size < n_wrong else "")
    )
    return _finish(figure, path)


def plot_augmentation(
    images: ArrayLike,
    augment: Augmentation,
    *,
    n_versions: int = 7,
    seed: int = 0,
    labels: Sequence[str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Show each image beside random augmented versions of it, one row per image.

    Parameters
    ----------
    images : array-like of shape (n_images, height, width) or (n_images, n_pixels)
        Floating-point images, e.g. pixels scaled to [0, 1]; flat rows are reshaped to the
        augmentation's ``image_shape``.
    augment : Augmentation
        The random transforms (:class:`nnscratch.data.augment.Augmentation`).
    n_versions : int, default=7
        Augmented versions per image, each drawn afresh.
    seed : int, default=0
        Seeds the draws, so the same call gives the same picture.
    labels : sequence of str, default=None
        A name for each row (e.g. its class), shown left of the original.
    path : str or os.PathLike, default=None
        Where to write the figure as a PNG; its directory must exist. ``None``
        writes nothing.

    Returns
    -------
    figure : matplotlib.figure.Figure
        A grid of ``n_images`` rows and ``1 + n_versions`` columns, the original first,
        titled with the augmentation's settings.

    Raises
    ------
    ValueError
        If ``n_versions`` is below 1, ``labels`` does not name every image, or the images
        do not match ``augment.image_shape`` (as :class:`~nnscratch.data.augment.Augmentation`
        raises).
    TypeError
        If the images are not floating point.

    Examples
    --------
    >>> import numpy as np
    >>> from nnscratch.data.augment import Augmentation
    >>> fig = plot_augmentation(np.zeros((2, 784)), Augmentation(shift=2), n_versions=3)
    >>> len(fig.axes)
    8
    """
    n_versions = check_int(n_versions, "n_versions", low=1)
    originals = np.asarray(images)
    if originals.ndim == 2:
        augment.check_features(originals.shape[1])
        originals = originals.reshape(len(originals), *augment.image_shape)
    if labels is not None and len(labels) != len(originals):
        raise ValueError(
            f"labels has {len(labels)} names but there are {len(originals)} images; "
            "pass one name per image."
        )
    rng = np.random.default_rng(seed)
    versions = [augment(originals, rng) for _ in range(n_versions)]
    n_rows, n_cols = len(originals), 1 + n_versions
    figure = _new_figure(1.1 * n_cols + 0.4, 1.1 * n_rows + 0.7)
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    for row in range(n_rows):
        for col in range(n_cols):
            ax = axes[row, col]
            picture = originals[row] if col == 0 else versions[col - 1][row]
            ax.imshow(picture, cmap="gray_r", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
        if labels is not None:
            axes[row, 0].set_ylabel(str(labels[row]), fontsize=8)
    axes[0, 0].set_title("original", fontsize=9)
    for col in range(1, n_cols):
        axes[0, col].set_title(f"augmented {col}", fontsize=9)
    settings = ", ".join(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
                         for key, value in augment.get_config().items()
                         if key != "image_shape" and value and key != "elastic_sigma")
    if augment.elastic_alpha:
        settings += f", elastic_sigma={augment.elastic_sigma:g}"
    figure.suptitle(f"Augmentation: {settings or 'none'}", fontsize=10)
    return _finish(figure, path)


def plot_first_layer_weights(
    W: ArrayLike,
    *,
    max_units: int = 64,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Show each first-layer unit's incoming weights as an image.

    Unit ``j`` of a dense layer on flattened images responds most to inputs that
    look like column ``W[:, j]``; reshaped to the image's side, the weights show
    the strokes and blobs each unit has learned to detect.

    Parameters
    ----------
    W : array-like of shape (in_features, out_features)
        The weights of the first :class:`~nnscratch.nn.layers.Dense` layer.
        ``in_features`` must be a square number (784 = 28 × 28 for MNIST).
    max_units : int, default=64
        Show at most this many units, the first ones.
    path : str or os.PathLike, default=None
        Where to write the figure as a PNG; its directory must exist. ``None``
        writes nothing.

    Returns
    -------
    figure : matplotlib.figure.Figure
        A near-square grid of images sharing one symmetric colour scale
        (red positive, blue negative, white zero) with a colour bar.

    Raises
    ------
    ValueError
        If ``W`` is not 2-D, ``in_features`` is not a square number, or
        ``max_units`` is below 1.
    TypeError
        If ``W`` does not hold numbers, or ``max_units`` is not an integer.
    FileNotFoundError
        If the directory of ``path`` does not exist.

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_first_layer_weights(np.random.default_rng(0).normal(size=(784, 16)))
    >>> len(fig.axes)  # 16 images and a colour bar
    17
    """
    weights = np.asarray(W)
    if weights.dtype.kind not in "biuf":
        raise TypeError(f"W must hold numbers, got dtype {weights.dtype}.")
    if weights.ndim != 2 or weights.size == 0:
        raise ValueError(
            f"W must be a non-empty 2-D array (in_features, out_features), got shape "
            f"{weights.shape}."
        )
    in_features, out_features = weights.shape
    side = math.isqrt(in_features)
    if side * side != in_features:
        hint = (
            " It looks transposed: pass W.T."
            if math.isqrt(out_features) ** 2 == out_features
            else " Pass the weights of a layer whose inputs are flattened square images."
        )
        raise ValueError(
            f"W has {in_features} rows (in_features), which is not a square number, so a "
            f"column cannot be shown as a square image; expected e.g. 784 = 28 x 28.{hint}"
        )
    max_units = check_int(max_units, "max_units", low=1)

    shown = weights[:, :max_units].astype(np.float64)
    n_units = shown.shape[1]
    limit = float(np.max(np.abs(shown))) or 1.0
    n_rows, n_cols = _grid(n_units)
    figure = _new_figure(max(1.1 * n_cols + 1.2, 4.0), 1.1 * n_rows + 0.6)
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    for j, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if j < n_units:
            image = ax.imshow(
                shown[:, j].reshape(side, side), cmap="RdBu_r", vmin=-limit, vmax=limit
            )
    figure.colorbar(image, ax=axes, shrink=0.8, label="weight")
    figure.suptitle(f"First-layer weights: {n_units} of {out_features} units, each {side} x {side}")
    return _finish(figure, path)
