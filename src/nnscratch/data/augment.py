r"""Data augmentation: random affine maps and elastic distortions of batches of images.

A network that sees each training digit shifted, rotated, scaled, sheared and elastically
distorted learns what a digit is rather than where its pixels sit (Simard, Steinkraus and Platt
2003). Every transform here is a *sampling map*: output pixel :math:`p = (r, c)` (row, column)
takes the input's value at a source point :math:`s(p)`, read by bilinear interpolation with zero
outside the image,

.. math::

    \mathrm{out}_b(p) = \mathrm{in}_b\bigl(s_b(p)\bigr),

so the affine part and the elastic part are added into one map per image and each image is
resampled once (no blur from resampling twice). The whole batch is resampled by one call of
``scipy.ndimage.map_coordinates``; :class:`Augmentation` draws the random parameters from a
seeded ``np.random.Generator``.

Maps that only mirror and shift by whole pixels read no point between pixels: they are applied
by :func:`move_pixels`, which copies pixels instead of interpolating (the same result, at about a
hundredth of the cost).

:func:`augmented_batches` turns the mini-batches of an epoch into augmented ones, prepared by
:class:`BackgroundBatches` in a background thread while the network trains on the previous
batch (inline for the cheap whole-pixel moves); :func:`nnscratch.nn.training.fit` uses it when given
``augment=``. The batches are the same as when prepared inline: one thread draws all the random
numbers, in order.

What is left out: colour and contrast changes, cutout/random erasing, mixup, and any
augmentation at test time. Validation and test data are never augmented.
"""

from __future__ import annotations

import numbers
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from nnscratch._validation import check_real

__all__ = [
    "Augmentation",
    "BackgroundBatches",
    "affine_transform",
    "augmented_batches",
    "elastic_displacement",
    "move_pixels",
    "resample",
]

#: How long (seconds) a blocked producer waits before checking again whether to stop.
_POLL = 0.05


# ---------------------------------------------------------------------------------------------
# Resampling: the one place pixels are interpolated


def resample(images: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
    r"""Read each image at its own source points, bilinearly, with zero outside the image.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width)
        Floating-point images.
    coordinates : ndarray of shape (n_images, 2, height, width)
        ``coordinates[b, :, r, c]`` is the source point (row, column) of output pixel
        ``(r, c)`` of image ``b``; any real values (points outside the image read 0).

    Returns
    -------
    ndarray of shape (n_images, height, width), of the dtype of `images`
        :math:`\mathrm{out}_b(r, c) = \mathrm{in}_b(s_b(r, c))` where, for a source point
        :math:`(y, x)` with :math:`y = i + u`, :math:`x = j + v` (:math:`i, j` integers,
        :math:`0 \le u, v < 1`),

        .. math::

            \mathrm{in}(y, x) = (1-u)(1-v)\,I_{i,j} + (1-u)\,v\,I_{i,j+1}
                              + u\,(1-v)\,I_{i+1,j} + u\,v\,I_{i+1,j+1},

        with :math:`I` zero outside the image. This is
        ``scipy.ndimage.map_coordinates(image, coords, order=1, mode="grid-constant")`` for
        each image; the interpolated value is a convex combination of pixels and zeros, so the
        output stays within ``[min(0, images.min()), max(0, images.max())]``.

    Notes
    -----
    One call for the whole batch: the images, each padded with a one-pixel border of zeros,
    are stacked into one tall picture of shape ``(n_images * (height + 2), width + 2)`` and
    each image's row coordinates are offset by its position in the stack. Clipped to the
    border, a source point never reaches a neighbouring image, and interpolating towards the
    zero border is exactly the zero-outside rule. This is 2-D interpolation (4 pixels per
    point) instead of the 8 of a 3-D call on the ``(n_images, height, width)`` stack, and one
    call instead of a Python loop; :func:`_resample_each` is the plain loop it equals
    (``tests/test_augment.py`` checks).
    """
    from scipy import ndimage

    n_images, height, width = images.shape
    padded = np.zeros((n_images, height + 2, width + 2), dtype=images.dtype)
    padded[:, 1:-1, 1:-1] = images
    # float64: the stacked row coordinates reach n_images * 30, beyond float32's resolution.
    rows = np.clip(coordinates[:, 0], -1.0, height, dtype=np.float64) + 1.0
    rows += (np.arange(n_images, dtype=np.float64) * (height + 2))[:, None, None]
    cols = np.clip(coordinates[:, 1], -1.0, width, dtype=np.float64) + 1.0
    out = np.empty_like(images)
    ndimage.map_coordinates(padded.reshape(n_images * (height + 2), width + 2), [rows, cols],
                            output=out, order=1, mode="nearest")
    return out


def _resample_each(images: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
    """The plain expression :func:`resample` equals: one ``map_coordinates`` call per image."""
    from scipy import ndimage

    return np.stack([
        ndimage.map_coordinates(image, coords, order=1, mode="grid-constant", cval=0.0)
        for image, coords in zip(images, coordinates, strict=True)
    ])


def move_pixels(images: np.ndarray, shift: np.ndarray, flip: np.ndarray) -> np.ndarray:
    r"""Mirror and translate each image by whole pixels, with zero where nothing moves in.

    The speed trick of this module: when the sampling map only mirrors and moves by whole
    pixels, every source point is a pixel, so the bilinear read of :func:`resample` takes one
    pixel with weight 1 and copying is the same result, without interpolating. It is
    ``resample(images, _affine_coordinates(h, w, 0, 1, 0, shift, flip))`` (the plain expression,
    checked by ``tests/test_augment.py``), at about a hundredth of its cost
    (``benchmarks/augmentation.py``).

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width)
    shift : ndarray of shape (n_images, 2)
        Whole-number translations :math:`t = (t_r, t_c)` in pixels, (down, right).
    flip : ndarray of bool, shape (n_images,)
        Mirror left-right first.

    Returns
    -------
    ndarray of shape (n_images, height, width), of the dtype of `images`

        .. math::

            \mathrm{out}_b(r, c) = \mathrm{in}_b(r - t_r,\; c') \quad\text{with}\quad
            c' = \begin{cases} W - 1 - (c - t_c) & \text{mirrored} \\
                                 c - t_c & \text{otherwise,} \end{cases}

        and 0 where :math:`(r - t_r, c')` falls outside the image.
    """
    n_images, height, width = images.shape
    shift = np.asarray(shift).astype(np.intp)
    border = int(np.abs(shift).max(initial=0))
    padded = np.zeros((n_images, height + 2 * border, width + 2 * border), dtype=images.dtype)
    padded[:, border:border + height, border:border + width] = images
    rows = np.arange(height)[None, :] - shift[:, 0:1] + border  # (n, h): r - t_r, padded
    cols = np.arange(width)[None, :] - shift[:, 1:2]  # (n, w): c - t_c
    cols = np.where(flip[:, None], width - 1 - cols, cols) + border
    index = np.arange(n_images)[:, None, None]
    return padded[index, rows[:, :, None], cols[:, None, :]]


def _pixel_grid(height: int, width: int) -> np.ndarray:
    """The coordinates (row, column) of every pixel: shape (2, height, width)."""
    return np.stack(np.meshgrid(np.arange(height, dtype=np.float64),
                                np.arange(width, dtype=np.float64), indexing="ij"))


# ---------------------------------------------------------------------------------------------
# Affine maps


def _per_image(value: Any, n_images: int, name: str, shape: tuple[int, ...] = ()) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    try:
        return np.broadcast_to(array, (n_images, *shape))
    except ValueError:
        raise ValueError(
            f"{name} must be one value{' pair' if shape else ''} or one per image "
            f"({n_images}), got shape {array.shape}."
        ) from None


def _affine_coordinates(
    height: int, width: int, rotation: np.ndarray, scale: np.ndarray, shear: np.ndarray,
    shift: np.ndarray, flip: np.ndarray,
) -> np.ndarray:
    r"""Source coordinates of shape (n, 2, height, width) for per-image affine parameters.

    :math:`s(p) = c + A^{-1}(p - c - t)` with :math:`A = R(\theta)\,H(\varphi)\,s\,F`
    inverted in closed form, :math:`A^{-1} = F\,H(\varphi)^{-1} R(\theta)^\top / s`
    (:math:`F^{-1} = F`; :math:`H(\varphi)^{-1}` is the shear by :math:`-\varphi`), and applied
    elementwise: the maps of a whole batch cost a few array operations.
    """
    theta, phi = np.deg2rad(rotation)[:, None], np.deg2rad(shear)[:, None]
    cos, sin, tan = np.cos(theta), np.sin(theta), np.tan(phi)
    mirror = np.where(flip, -1.0, 1.0)[:, None]
    inverse_scale = 1.0 / scale[:, None]
    # Rows of A^-1 = F H^-1 R^T / s:  R^T = [[cos, sin], [-sin, cos]], H^-1 = [[1, 0], [-tan, 1]].
    a00, a01 = cos * inverse_scale, sin * inverse_scale
    a10 = (-sin - tan * cos) * mirror * inverse_scale
    a11 = (cos - tan * sin) * mirror * inverse_scale
    centre_row, centre_col = (height - 1) / 2, (width - 1) / 2
    grid_row, grid_col = _pixel_grid(height, width).reshape(2, -1)
    u = grid_row - centre_row - shift[:, 0:1]  # p - c - t, (n, h*w) each
    v = grid_col - centre_col - shift[:, 1:2]
    source = np.empty((len(theta), 2, height * width))
    source[:, 0] = a00 * u + a01 * v + centre_row
    source[:, 1] = a10 * u + a11 * v + centre_col
    return source.reshape(len(theta), 2, height, width)


def affine_transform(
    images: npt.ArrayLike,
    *,
    rotation: npt.ArrayLike = 0.0,
    scale: npt.ArrayLike = 1.0,
    shear: npt.ArrayLike = 0.0,
    shift: npt.ArrayLike = (0.0, 0.0),
    flip: npt.ArrayLike = False,
) -> np.ndarray:
    r"""Rotate, shear, scale, mirror and shift each image about its centre.

    Parameters
    ----------
    images : array-like of shape (n_images, height, width)
        Floating-point images (e.g. pixels scaled to [0, 1]).
    rotation : float or array-like of shape (n_images,), default=0.0
        Angle :math:`\theta` in degrees, anticlockwise as seen on screen.
    scale : float or array-like of shape (n_images,), default=1.0
        Zoom factor :math:`s` (above 1 enlarges), positive.
    shear : float or array-like of shape (n_images,), default=0.0
        Angle :math:`\varphi` in degrees: each row moves right by :math:`\tan\varphi` times its
        distance below the centre row (a slant, like italics for :math:`\varphi < 0`).
    shift : pair or array-like of shape (n_images, 2), default=(0, 0)
        Translation :math:`t` in pixels, (down, right).
    flip : bool or array-like of shape (n_images,), default=False
        Mirror left-right (before the other steps).

    Returns
    -------
    ndarray of shape (n_images, height, width), of the dtype of `images`

    Raises
    ------
    ValueError
        If `images` is not 3-D or a parameter does not broadcast to one value per image.
    TypeError
        If `images` is not floating point.

    Notes
    -----
    The content at offset :math:`x` from the centre :math:`c = ((h-1)/2, (w-1)/2)` moves to
    :math:`c + A x + t`, with, in (row, column) coordinates,

    .. math::

        A = \begin{pmatrix}\cos\theta & -\sin\theta\\ \sin\theta & \cos\theta\end{pmatrix}
            \begin{pmatrix}1 & 0\\ \tan\varphi & 1\end{pmatrix}
            s \begin{pmatrix}1 & 0\\ 0 & \pm 1\end{pmatrix},

    so output pixel :math:`p` reads the input at :math:`s(p) = c + A^{-1}(p - c - t)` (see
    :func:`resample`). With integer shifts and no other change the result is the image moved
    by whole pixels, with zeros shifted in.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((1, 5, 5)); image[0, 2, 2] = 1.0
    >>> np.argwhere(affine_transform(image, shift=(1, -2))[0] == 1.0).tolist()
    [[3, 0]]
    """
    stack = _check_images(images)
    n_images, height, width = stack.shape
    scale = _per_image(scale, n_images, "scale")
    if np.any(scale <= 0):
        raise ValueError(f"scale must be positive, got {scale.min()}.")
    coordinates = _affine_coordinates(
        height, width, _per_image(rotation, n_images, "rotation"), scale,
        _per_image(shear, n_images, "shear"), _per_image(shift, n_images, "shift", (2,)),
        _per_image(flip, n_images, "flip").astype(bool),
    )
    return resample(stack, coordinates)


def _check_images(images: npt.ArrayLike) -> np.ndarray:
    stack = np.asarray(images)
    if stack.ndim != 3:
        raise ValueError(
            f"images must have shape (n_images, height, width), got shape {stack.shape}."
        )
    if stack.dtype.kind != "f":
        raise TypeError(
            f"images have dtype {stack.dtype}; augmentation interpolates, so pass floating-point "
            "images (e.g. preprocess_images(uint8_images), pixels scaled to [0, 1])."
        )
    return stack


# ---------------------------------------------------------------------------------------------
# Elastic distortion


def elastic_displacement(
    n_images: int,
    shape: tuple[int, int],
    *,
    alpha: float,
    sigma: float,
    rng: np.random.Generator,
    dtype: npt.DTypeLike = np.float32,
) -> np.ndarray:
    r"""Random smooth displacement fields, as Simard et al. (2003) distort digits.

    Parameters
    ----------
    n_images : int
    shape : (height, width)
    alpha : float
        Scale :math:`\alpha` of the displacement, in pixels per unit of smoothed noise;
        0 gives no displacement.
    sigma : float
        Width :math:`\sigma` of the Gaussian, in pixels: small values give a jittery field,
        large ones an almost rigid shift.
    rng : numpy.random.Generator
    dtype : floating dtype, default=np.float32

    Returns
    -------
    ndarray of shape (n_images, 2, height, width)
        The displacement :math:`d_b(p)` (rows, columns) of each pixel; an image is distorted
        by reading it at :math:`p + d_b(p)` (see :func:`resample`).

    Notes
    -----
    For each image and each of the two directions, uniform noise
    :math:`U(p) \sim \mathcal{U}(-1, 1)` is smoothed by a normalised Gaussian of standard
    deviation :math:`\sigma` and scaled by :math:`\alpha`:

    .. math:: d(p) = \alpha\,(G_\sigma * U)(p),

    ``alpha * scipy.ndimage.gaussian_filter(U, (0, 0, sigma, sigma))`` (reflecting at the
    borders). The smoothing is computed by :func:`_smooth` as two matrix products, which gives
    the same numbers (checked in ``tests/test_augment.py``) at a fraction of the cost.

    References
    ----------
    P. Y. Simard, D. Steinkraus and J. C. Platt, "Best practices for convolutional neural
    networks applied to visual document analysis", ICDAR 2003 (elastic distortion with
    :math:`\sigma = 4`, :math:`\alpha = 34` on MNIST).
    """
    height, width = shape
    noise = rng.random((n_images, 2, height, width), dtype=np.dtype(dtype))
    noise *= 2
    noise -= 1  # U(-1, 1)
    field = _smooth(noise, sigma)
    field *= alpha
    return field


def _smooth(fields: np.ndarray, sigma: float) -> np.ndarray:
    r"""``scipy.ndimage.gaussian_filter(fields, (0, 0, sigma, sigma))`` as matrix products.

    Filtering a line of length :math:`n` is linear, so it is a matrix :math:`K` of shape
    :math:`(n, n)`: column :math:`j` is the filter's response to the unit impulse at
    :math:`j`. The separable 2-D filter of a field :math:`U` is then :math:`K_h U K_w^\top`,
    one large matrix product per axis for the whole batch, where ``gaussian_filter`` runs a
    Python-free but much slower 1-D convolution per line.
    """
    from scipy import ndimage

    height, width = fields.shape[-2:]
    dtype = fields.dtype
    K_rows = ndimage.gaussian_filter1d(np.eye(height), sigma, axis=0).astype(dtype)
    K_cols = ndimage.gaussian_filter1d(np.eye(width), sigma, axis=0).astype(dtype)
    smoothed = fields @ K_cols.T  # along each row: U K_w^T
    return np.matmul(K_rows, smoothed)  # along each column: K_h (U K_w^T)


# ---------------------------------------------------------------------------------------------
# The random augmentation


class Augmentation:
    r"""Random affine maps and elastic distortions, drawn afresh for every image.

    Parameters
    ----------
    shift : float, default=0.0
        Largest translation in pixels; each image moves by :math:`t \sim \mathcal{U}(-t_{max},
        t_{max})` down and, independently, right. At most half the smaller side of
        `image_shape` (14 at 28 x 28): further, the picture is moved out of itself.
    whole_pixel_shift : bool, default=False
        Draw the translation from the whole numbers :math:`-\lfloor t_{max} \rfloor, \dots,
        \lfloor t_{max} \rfloor` instead: with no other transform (a flip at most), the pixels
        are moved rather than interpolated, so the images stay as sharp as the originals.
    rotation : float, default=0.0
        Largest rotation in degrees: :math:`\theta \sim \mathcal{U}(-\theta_{max},
        \theta_{max})`.
    scale : float, default=0.0
        Largest relative change of size: :math:`s \sim \mathcal{U}(1 - s_{max}, 1 + s_{max})`,
        below 1.
    shear : float, default=0.0
        Largest shear angle in degrees: :math:`\varphi \sim \mathcal{U}(-\varphi_{max},
        \varphi_{max})`, below 90.
    flip : bool, default=False
        Mirror half of the images left-right (for pictures whose class does not change in a
        mirror, such as clothes; never for digits).
    elastic_alpha : float, default=0.0
        Strength :math:`\alpha` of the elastic distortion (:func:`elastic_displacement`);
        0 turns it off; at most 10 times the larger side of `image_shape` (280 at 28 x 28).
    elastic_sigma : float, default=4.0
        Smoothness :math:`\sigma` of the elastic distortion, in pixels, positive and at most
        the larger side of `image_shape` (28): beyond it the field is a rigid shift.
    image_shape : (int, int), default=(28, 28)
        ``(height, width)`` of the images when they come as flat rows.

    Notes
    -----
    Output pixel :math:`p` of each image reads the input (bilinearly, zero outside) at

    .. math:: s(p) = c + A^{-1}(p - c - t) + \alpha\,(G_\sigma * U)(p),

    the affine map of :func:`affine_transform` plus the elastic displacement of
    :func:`elastic_displacement`, in one resampling. With every parameter at 0 (and
    ``flip=False``) the images come back unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> augment = Augmentation(shift=2, rotation=10, elastic_alpha=34)
    >>> X = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    >>> augment(X, np.random.default_rng(1)).shape
    (5, 784)
    """

    def __init__(
        self,
        *,
        shift: float = 0.0,
        whole_pixel_shift: bool = False,
        rotation: float = 0.0,
        scale: float = 0.0,
        shear: float = 0.0,
        flip: bool = False,
        elastic_alpha: float = 0.0,
        elastic_sigma: float = 4.0,
        image_shape: Sequence[int] = (28, 28),
    ) -> None:
        shape = tuple(image_shape)
        if len(shape) != 2 or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in shape
        ):
            raise ValueError(f"image_shape must be (height, width), two positive integers, "
                             f"got {image_shape!r}.")
        self.image_shape = (int(shape[0]), int(shape[1]))
        # Upper bounds past which the images are blank or the work unbounded (issue 22): a shift
        # past half the picture moves the digit out of it; sigma past the picture's side smooths
        # the field into a rigid shift (and its Gaussian grows with sigma); alpha past 10 sides
        # (280 px at 28 x 28, Simard uses 34) throws every pixel out of the picture.
        side = max(self.image_shape)
        self.shift = check_real(shift, "shift", low=0.0, high=min(self.image_shape) / 2)
        self.rotation = check_real(rotation, "rotation", low=0.0, high=180.0)
        self.scale = check_real(scale, "scale", low=0.0, high=1.0, high_inclusive=False)
        self.shear = check_real(shear, "shear", low=0.0, high=90.0, high_inclusive=False)
        for name, value in (("whole_pixel_shift", whole_pixel_shift), ("flip", flip)):
            if not isinstance(value, bool | np.bool_):
                raise TypeError(f"{name} must be True or False, got {value!r}.")
        self.whole_pixel_shift = bool(whole_pixel_shift)
        self.flip = bool(flip)
        self.elastic_alpha = check_real(elastic_alpha, "elastic_alpha", low=0.0,
                                        high=10.0 * side)
        # (never below the default 4, which must stay valid for pictures smaller than it)
        self.elastic_sigma = check_real(elastic_sigma, "elastic_sigma", low=0.0,
                                        low_inclusive=False, high=max(float(side), 4.0))

    #: The constructor's parameters other than image_shape, as in a recipe's settings.
    SETTINGS = ("shift", "whole_pixel_shift", "rotation", "scale", "shear", "flip",
                "elastic_alpha", "elastic_sigma")

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Augmentation:
        """Build from a recipe's ``augment`` table, e.g. ``{"shift": 2, "elastic_alpha": 34}``.

        Raises
        ------
        ValueError
            If a key is not one of :attr:`SETTINGS` (or a value is out of range).
        """
        unknown = sorted(set(settings) - set(cls.SETTINGS))
        if unknown:
            raise ValueError(
                f"augment has unknown setting(s) {', '.join(unknown)}; the settings are "
                f"{', '.join(cls.SETTINGS)}."
            )
        return cls(**settings)

    def get_config(self) -> dict[str, Any]:
        """The settings, as :meth:`from_settings` takes them (plus ``image_shape``)."""
        return {**{key: getattr(self, key) for key in self.SETTINGS},
                "image_shape": list(self.image_shape)}

    def __repr__(self) -> str:
        defaults = Augmentation().get_config()
        changed = [f"{key}={value!r}" for key, value in self.get_config().items()
                   if value != defaults[key]]
        return f"Augmentation({', '.join(changed)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Augmentation) and self.get_config() == other.get_config()

    __hash__ = None  # type: ignore[assignment]  # mutable attributes: not hashable

    @property
    def is_identity(self) -> bool:
        """Whether every image comes back unchanged (all parameters 0, no flip)."""
        return not (self.shift or self.rotation or self.scale or self.shear or self.flip
                    or self.elastic_alpha)

    def check_features(self, n_features: int) -> None:
        """Raise ``ValueError`` unless rows of ``n_features`` values are ``image_shape``."""
        height, width = self.image_shape
        if n_features != height * width:
            raise ValueError(
                f"augment works on {height}x{width} images ({height * width} values per row), "
                f"but X has {n_features} features; pass image_shape=(height, width) to "
                "Augmentation."
            )

    def augment_batches(
        self, batches: Iterable[tuple[Any, ...]], rng: np.random.Generator
    ) -> Iterator[tuple[Any, ...]]:
        """:func:`augmented_batches` of ``batches`` with this augmentation, as
        :func:`nnscratch.nn.training.fit` asks for them (its ``Augmentation`` protocol)."""
        return augmented_batches(batches, self, rng)

    def source_coordinates(self, n_images: int, rng: np.random.Generator) -> np.ndarray:
        """Draw the sampling map :math:`s(p)` of `n_images` images: (n_images, 2, h, w).

        The draws come in a fixed order (rotation, scale, shear, shift, flip, then the
        elastic noise), so a generator in the same state gives the same maps.
        """
        coordinates = _affine_coordinates(*self.image_shape, **self._draw_affine(n_images, rng))
        if self.elastic_alpha:
            coordinates += elastic_displacement(
                n_images, self.image_shape, alpha=self.elastic_alpha, sigma=self.elastic_sigma,
                rng=rng,
            )
        return coordinates

    @property
    def moves_whole_pixels(self) -> bool:
        """Whether every map only mirrors and shifts by whole pixels (no interpolation).

        Such augmentations are applied by :func:`move_pixels`, a copy of pixels that costs
        about a hundredth of a resampling, and :func:`augmented_batches` prepares them inline.
        """
        return not (self.rotation or self.scale or self.shear or self.elastic_alpha) and (
            self.whole_pixel_shift or not self.shift)

    def _draw_affine(self, n_images: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The affine parameters of `n_images` maps, drawn in a fixed order."""
        uniform = rng.uniform
        return {
            "rotation": uniform(-self.rotation, self.rotation, n_images),
            "scale": uniform(1 - self.scale, 1 + self.scale, n_images),
            "shear": uniform(-self.shear, self.shear, n_images),
            "shift": self._draw_shifts(n_images, rng),
            "flip": rng.random(n_images) < 0.5 if self.flip else np.zeros(n_images, dtype=bool),
        }

    def _draw_shifts(self, n_images: int, rng: np.random.Generator) -> np.ndarray:
        if self.whole_pixel_shift:
            largest = int(self.shift)
            return rng.integers(-largest, largest + 1, (n_images, 2)).astype(np.float64)
        return rng.uniform(-self.shift, self.shift, (n_images, 2))

    def __call__(self, X: npt.ArrayLike, rng: np.random.Generator) -> np.ndarray:
        """Augment a batch: each image gets its own random map.

        Parameters
        ----------
        X : array-like of shape (n_images, height * width) or (n_images, height, width)
            Floating-point images, e.g. rows of pixels scaled to [0, 1].
        rng : numpy.random.Generator
            Supplies every random draw; the same state gives the same batch.

        Returns
        -------
        ndarray of the shape and dtype of `X`
            New arrays (`X` is not modified); values within ``[min(0, X.min()),
            max(0, X.max())]``.

        Raises
        ------
        ValueError
            If the rows of `X` are not ``image_shape`` images.
        TypeError
            If `X` is not floating point or `rng` is not a ``numpy.random.Generator``.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {rng!r}; e.g. "
                            "np.random.default_rng(0).")
        X = np.asarray(X)
        if X.ndim == 2:
            self.check_features(X.shape[1])
            images = X.reshape(len(X), *self.image_shape)
        elif X.ndim == 3 and X.shape[1:] == self.image_shape:
            images = X
        else:
            raise ValueError(
                f"X must have shape (n_images, {self.image_shape[0] * self.image_shape[1]}) or "
                f"(n_images, {self.image_shape[0]}, {self.image_shape[1]}), got {X.shape}."
            )
        images = _check_images(images)
        if self.moves_whole_pixels:
            affine = self._draw_affine(len(images), rng)
            return move_pixels(images, affine["shift"], affine["flip"]).reshape(X.shape)
        return resample(images, self.source_coordinates(len(images), rng)).reshape(X.shape)


# ---------------------------------------------------------------------------------------------
# Batches prepared in the background


class BackgroundBatches:
    """Run an iterator in a background thread, a few items ahead of the consumer.

    The producer thread pulls items from `iterable` and puts them in a queue of `prefetch`
    places; iterating over this object takes them out, in order. NumPy and
    ``scipy.ndimage`` release the GIL while they compute, so the producer works on another
    core while the consumer trains.

    Parameters
    ----------
    iterable : iterable
        Run entirely in the producer thread (including its ``close``).
    prefetch : int, default=2
        Items prepared ahead; memory holds at most ``prefetch + 2`` items.
    blas_threads : int or None, default=None
        While the producer runs, limit the BLAS of the whole process to this many threads
        (with threadpoolctl, when it is installed), so that the producer has a core of its
        own; the previous limit comes back when the items run out or on :meth:`close`.
        ``None`` leaves BLAS alone.

    Notes
    -----
    Shutdown is clean in every case:

    - an exception in the producer (in `iterable`) is raised again in the consumer, by the
      ``next`` that would have returned the failed item, with its original traceback;
    - :meth:`close` (also on leaving a ``with`` block, by any exception including
      ``KeyboardInterrupt``) tells the producer to stop, discards what it prepared, and waits
      for the thread to end, after it has closed `iterable`;
    - the thread is a daemon, so an interpreter exiting without ``close`` is not held up.

    Examples
    --------
    >>> with BackgroundBatches(x * x for x in range(4)) as squares:
    ...     list(squares)
    [0, 1, 4, 9]
    """

    def __init__(self, iterable: Iterable[Any], *, prefetch: int = 2,
                 blas_threads: int | None = None) -> None:
        if isinstance(prefetch, bool) or not isinstance(prefetch, numbers.Integral) or \
                prefetch < 1:
            raise ValueError(f"prefetch must be a positive integer, got {prefetch!r}.")
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=int(prefetch))
        self._stop = threading.Event()
        self._finished = False
        self._blas_limits = _limit_blas(blas_threads)
        self._thread = threading.Thread(target=self._produce, args=(iter(iterable),),
                                        name="nnscratch-batches", daemon=True)
        self._thread.start()

    def _produce(self, iterator: Iterator[Any]) -> None:
        try:
            for item in iterator:
                if not self._put("item", item):
                    return
            self._put("done", None)
        except BaseException as error:  # every error, Ctrl-C included, goes to the consumer
            self._put("error", error)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _put(self, kind: str, value: Any) -> bool:
        """Queue an entry unless told to stop; return whether it was queued."""
        while not self._stop.is_set():
            try:
                self._queue.put((kind, value), timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> BackgroundBatches:
        return self

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "item":
            return value
        self._finished = True
        self._thread.join()
        self._restore_blas()
        if kind == "error":
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop the producer, drop what it prepared and wait for its thread to end."""
        self._finished = True
        self._stop.set()
        while self._thread.is_alive():
            try:  # make room, so that a producer blocked on a full queue sees the stop
                self._queue.get(timeout=_POLL)
            except queue.Empty:
                pass
        self._thread.join()
        self._restore_blas()

    def _restore_blas(self) -> None:
        if self._blas_limits is not None:
            self._blas_limits.restore_original_limits()
            self._blas_limits = None

    def __enter__(self) -> BackgroundBatches:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _limit_blas(threads: int | None) -> Any:
    """threadpoolctl's limit of BLAS to `threads` (None without a limit or threadpoolctl)."""
    if threads is None:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it BLAS keeps its threads
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def _spare_cores() -> int:
    """The cores left when one prepares batches: BLAS threads while augmenting."""
    return max(1, (os.cpu_count() or 1) - 1)


def _augment_each(
    batches: Iterable[tuple[Any, ...]], augment: Augmentation, rng: np.random.Generator
) -> Iterator[tuple[Any, ...]]:
    for X_batch, *rest in batches:
        yield (augment(X_batch, rng), *rest)


def augmented_batches(
    batches: Iterable[tuple[Any, ...]],
    augment: Augmentation,
    rng: np.random.Generator,
    *,
    n_features: int | None = None,
    background: bool | str = "auto",
    prefetch: int = 2,
    blas_threads: int | str | None = "auto",
) -> Iterator[tuple[Any, ...]]:
    """Augment the first array of every batch, in a background thread when that pays.

    Parameters
    ----------
    batches : iterable of tuple
        E.g. :func:`nnscratch.nn.training.minibatches` ``(X_batch, y_batch, weights)``; only
        ``X_batch`` is changed.
    augment : Augmentation
    rng : numpy.random.Generator
        Used only by the thread that prepares the batches, in batch order.
    n_features : int, optional
        Checked against ``augment.image_shape`` at once (before any thread starts).
    background : bool or "auto", default="auto"
        Prepare the batches in a :class:`BackgroundBatches` thread; ``False`` prepares each
        when asked for. Both give the same batches. ``"auto"`` prepares them inline when the
        augmentation only moves whole pixels (:attr:`Augmentation.moves_whole_pixels`: far
        cheaper than the core a thread would take from BLAS), in the background otherwise.
    prefetch : int, default=2
        Batches prepared ahead in the background.
    blas_threads : int, None or "auto", default="auto"
        BLAS threads while the background thread runs (see :class:`BackgroundBatches`):
        ``"auto"`` leaves the producer one core (all cores but one, at least one), ``None``
        leaves BLAS alone. On our two-core test machine a second BLAS thread competing with
        the producer made an epoch several times slower (``benchmarks/augmentation.py``).

    Returns
    -------
    iterator of tuple
        Call its ``close()`` (or use ``contextlib.closing``) when stopping early, so the
        background thread ends.

    Raises
    ------
    TypeError
        If `augment` is not an :class:`Augmentation` (or `rng` not a Generator).
    ValueError
        If `n_features` does not match ``augment.image_shape``.
    """
    if not isinstance(augment, Augmentation):
        raise TypeError(f"augment must be an nnscratch.data.augment.Augmentation or None, got "
                        f"{augment!r}.")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {rng!r}.")
    if n_features is not None:
        augment.check_features(n_features)
    if background not in (True, False, "auto"):
        raise ValueError(f"background must be True, False or 'auto', got {background!r}.")
    generator = _augment_each(batches, augment, rng)
    if background == "auto":
        background = not augment.moves_whole_pixels
    if not background:
        return generator
    threads = _spare_cores() if blas_threads == "auto" else blas_threads
    return BackgroundBatches(generator, prefetch=prefetch, blas_threads=threads)
