"""Turn pictures of digits into MNIST-style 28×28 images, and read the inputs of ``predict``.

A network trained on MNIST only understands digits drawn the way MNIST drew them: white on
black, the digit scaled to fit a 20×20 box with its aspect ratio kept, and placed in a 28×28
field so that its centre of mass falls on the centre. :func:`preprocess_digit` repeats those
steps for any grayscale picture:

1. **Invert** when the background is light: the background is the median of the border pixels;
   above mid-grey the image is a dark digit on light paper and is inverted.
2. **Remove the background** level and stretch the contrast so the brightest stroke is 255. A
   picture with no ink left (contrast below 10 % of the range) is *blank* and is refused.
3. **Measure** the digit's box: the bounding box of the pixels at least half as bright as the
   peak. Half the peak is where a blurred edge really lies, so neither blur, resampling halos
   nor sensor noise make the box larger (MNIST's own digits measure exactly 20 pixels).
4. **Crop and scale** so the box's longer side is 20 pixels, keeping the aspect ratio, with
   Pillow's Lanczos filter (which low-pass filters when shrinking); the crop keeps every pixel
   above 10 % of the peak, plus a margin, so faint edges survive. The output grid is placed
   so the centre of mass falls on a pixel centre.
5. **Centre by mass**: shift by whole pixels so the centre of mass lands on (14, 14) in the
   28×28 field (within half a pixel when nothing was resampled), where it lies in every MNIST
   digit.

An MNIST digit passes through almost unchanged (bit for bit when its box is already 20
pixels and its brightest pixel 255). Decoding and resizing are Pillow's; everything
else is NumPy. :func:`load_inputs` reads what ``nnscratch predict`` accepts: image files,
folders of them, ``.npy`` arrays and IDX files of MNIST-style images; :func:`decode_picture`
reads a picture held in memory (an upload to ``nnscratch serve``).

A Fashion-MNIST model needs pictures made the way Zalando made Fashion-MNIST from its product
photos: :func:`preprocess_product` trims the background, scales the longer side to 28 pixels
keeping the aspect ratio, centres the product in the 28×28 field and negates the gray levels
(the product light on black); no contrast stretching and no centring by mass.

Inputs are bounded before memory is spent on them. A picture larger than 2048 pixels on its
longer side is reduced while it is decoded (JPEG's decoder scales by 1/2, 1/4 or 1/8 itself;
other formats are box-averaged by a whole factor right after decoding, before any conversion
to floats), so a 10000×10000 scan costs about a second and a few hundred MB; the digit ends up
20 pixels tall either way. A picture of more than :data:`MAX_PIXELS` pixels (a decompression
bomb: a small file that expands to gigabytes) is refused from its header, and so is a ``.npy``
or IDX file declaring more gray levels than that or more bytes than the file holds. The limit
is raised with ``max_pixels=`` (CLI: ``nnscratch predict --max-pixels``).

6. **Thin thick strokes** (before step 4): a digit drawn small with a wide brush would be scaled
   up with its strokes; when they would come out over twice MNIST's 2.6-pixel width, the ink is
   eroded first so they come out at MNIST's width (:func:`_thin_strokes`).

What is left out: finding several digits in one picture (segmentation), deskewing, and
thickening thin strokes. A photo with uneven lighting or a busy background may need
cropping by hand first.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from nnscratch._files import open_regular_file
from nnscratch._validation import check_int

if TYPE_CHECKING:
    from PIL.Image import Image as Picture

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "MIN_INK_RANGE",
    "BlankImageError",
    "InputFormatError",
    "PictureTooLargeError",
    "UndecodableImageError",
    "decode_picture",
    "load_inputs",
    "preprocess_digit",
    "preprocess_product",
    "read_digit_arrays",
    "read_image",
]

#: File name endings treated as pictures when a folder is given.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

_SIZE = 28  # the MNIST field
_BOX = 20  # the box the digit is scaled to fit
_CENTRE = 14.0  # centre of mass of every MNIST digit, rounded to whole pixels (row, column)
#: Gray levels that span less than this share of the range hold no digit: the one rule of
#: pictures, ``.npy``/IDX arrays (``nnscratch predict``) and the pixels ``nnscratch serve``
#: is sent (refused there with 422).
MIN_INK_RANGE = 0.1
_MIN_CONTRAST = MIN_INK_RANGE * 255  # less ink than this above the background: nothing is drawn
_EDGE_LEVEL = 0.5  # an edge is where the ink fades to this fraction of the peak
_INK_FRACTION = 0.1  # pixels above this fraction of the peak are kept by the crop
_MARGIN = 2  # output pixels kept around the bounding box so faint edges are not cut off
_TRIM_LEVEL = 0.05 * 255  # Fashion-MNIST trims edges within 5 % of the corners' colour
_MNIST_STROKE = 2.6  # MNIST's median stroke width at 28×28 (see _stroke_width)
_THICK_STROKE = 2 * _MNIST_STROKE  # scaled strokes wider than this are eroded to _MNIST_STROKE

#: The most pixels a picture (width × height), or the most gray levels a .npy or IDX file,
#: may hold unless told otherwise: 2×10^8, a 14000×14000 picture or 255,000 MNIST images. A
#: decompression bomb declares far more. Raise it with ``max_pixels=`` (CLI: --max-pixels).
MAX_PIXELS = 200_000_000

_MAX_SIDE = 2048  # pictures longer than this are reduced by a whole factor while decoding
# Modes whose pixels can be averaged as they are (palette indices and bits cannot).
_AVERAGEABLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "I", "F", "CMYK", "YCbCr"})
_EXIF_ORIENTATION = 0x0112
_NPY_MAGIC = b"\x93NUMPY"
_GZIP_MAGIC = b"\x1f\x8b"
_IDX_TYPE_CODES = frozenset({0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E})


class InputFormatError(ValueError):
    """An input file cannot be read as a digit image or an array of them."""


class BlankImageError(InputFormatError):
    """A picture holds no digit: it is (nearly) one uniform colour."""


class UndecodableImageError(InputFormatError):
    """A picture's format is recognised but its data cannot be decoded (truncated or corrupt)."""


class PictureTooLargeError(InputFormatError):
    """A picture, or a file of images, holds more pixels than the limit (it may be a
    decompression bomb)."""


# ---------------------------------------------------------------------------------------------
# The MNIST recipe


def preprocess_digit(image: npt.ArrayLike, *, source: str = "image") -> np.ndarray:
    r"""Make a grayscale picture of one digit look like an MNIST digit.

    Parameters
    ----------
    image : array-like of shape (height, width)
        Gray levels 0..255 (any real dtype), either colour scheme: a dark digit on a light
        background is inverted.
    source : str, default="image"
        What the image is called in error messages (its file name).

    Returns
    -------
    digit : ndarray of shape (28, 28), dtype uint8
        White digit on black, fitting a 20×20 box, centre of mass at (14, 14) within half a
        pixel.

    Raises
    ------
    ValueError
        If `image` is not 2-D, is empty or holds values that are not finite.
    BlankImageError
        If the picture is (nearly) uniform, so there is no digit to find.

    Notes
    -----
    The steps are those of the module docstring. The scale factor is
    :math:`s = 20 / \max(h, w)` for a box of :math:`h \times w` pixels at least half as bright
    as the peak; the final whole-pixel shift puts the centre of mass

    .. math:: (\bar r, \bar c) = \frac{\sum_{rc} x_{rc}\,(r, c)}{\sum_{rc} x_{rc}}

    within half a pixel of (14, 14), as in MNIST (whose digits all have it in [13.5, 14.5]).

    Examples
    --------
    >>> import numpy as np
    >>> page = np.full((100, 60), 255, dtype=np.uint8)  # white paper
    >>> page[20:80, 25:35] = 0                          # a black stroke: a "1"
    >>> digit = preprocess_digit(page)
    >>> digit.shape, digit.dtype, int(digit.max()), int(digit[0, 0])
    ((28, 28), dtype('uint8'), 255, 0)
    >>> bool(digit[14, 14] > 200)  # the stroke runs through the centre
    True
    """
    x = np.array(image, dtype=np.float64)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(
            f"{source}: expected a 2-D grayscale image, got an array of shape {x.shape}."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{source}: the image holds NaN or infinite values.")
    border = np.concatenate([x[0], x[-1], x[1:-1, 0], x[1:-1, -1]])
    background = float(np.median(border))
    if background > 127.5:  # dark ink on light paper: MNIST is white on black
        x = 255.0 - x
        background = 255.0 - background
    x -= background
    np.clip(x, 0.0, None, out=x)
    peak = float(x.max())
    if peak < _MIN_CONTRAST:
        raise BlankImageError(
            f"{source}: no digit found: the image is blank (its ink differs from the "
            f"background by {peak:.0f} of 255 gray levels; at least {_MIN_CONTRAST:.0f} are "
            "needed). Check that it is the right file and that the digit is visible."
        )
    x *= 255.0 / peak
    digit = _scale_to_box(_thin_strokes(x))
    return _centre_by_mass(digit)


def _stroke_width(mask: np.ndarray) -> float:
    r"""Mean stroke width of the ink ``mask``, in pixels: :math:`w = 2A / P` for ink area
    :math:`A` and boundary length :math:`P` (a stroke of length :math:`L` has :math:`A = Lw`,
    :math:`P \approx 2L`). MNIST's test digits measure 2.6 (median; 2.1 to 4.1 for 90 %)."""
    from scipy import ndimage

    boundary = int((mask & ~ndimage.binary_erosion(mask)).sum())
    return 2.0 * float(mask.sum()) / max(boundary, 1)


def _thin_strokes(x: np.ndarray) -> np.ndarray:
    r"""Erode strokes that would come out much thicker than MNIST's once the digit is scaled.

    A digit drawn small with a fixed brush (the page's pad) is scaled *up* to the 20-pixel box,
    and its strokes with it: a 1 becomes an oval. With the box :math:`H` and the stroke width
    :math:`w` measured here (:func:`_stroke_width`), the scaled width is :math:`20 w / H`; above
    :data:`_THICK_STROKE` the ink is eroded by :math:`r` pixels on each side, where

    .. math:: \frac{20\,(w - 2r)}{H - 2r} = t \iff 2r = \frac{w - tH/20}{1 - t/20},

    so that the eroded digit, scaled to its own (smaller) box, has MNIST's width :math:`t`
    (:data:`_MNIST_STROKE`). The erosion is Euclidean and keeps a one-pixel soft edge:
    :math:`x' = x \cdot \mathrm{clip}(d - r, 0, 1)`, with :math:`d` each pixel's distance to
    the background (``scipy.ndimage.distance_transform_edt``). Digits of MNIST's proportions
    pass unchanged.
    """
    from scipy import ndimage

    mask = x > _EDGE_LEVEL * 255.0
    height, width = _box_size(mask)
    box = max(height, width)
    stroke = _stroke_width(mask)
    if stroke * _BOX / box <= _THICK_STROKE:
        return x
    radius = (stroke - _MNIST_STROKE * box / _BOX) / (1 - _MNIST_STROKE / _BOX) / 2
    radius = min(radius, (stroke - 1.0) / 2)  # keep at least one pixel of every stroke
    distance = ndimage.distance_transform_edt(mask)
    return x * np.clip(distance - radius, 0.0, 1.0)


def _scale_to_box(x: np.ndarray) -> np.ndarray:
    """Crop to the ink and resize so the digit's longer side is 20 pixels.

    When the image must be resampled anyway, the output grid is also placed so that the
    centre of mass falls on a pixel centre; the whole-pixel shift that follows then centres
    it exactly, instead of within half a pixel.
    """
    from PIL import Image

    height, width = _box_size(x > _EDGE_LEVEL * 255.0)
    scale = _BOX / max(height, width)
    ink = x > _INK_FRACTION * 255.0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    margin = math.ceil(_MARGIN / scale)
    top, left = max(rows[0] - margin, 0), max(cols[0] - margin, 0)
    bottom, right = min(rows[-1] + 1 + margin, x.shape[0]), min(cols[-1] + 1 + margin, x.shape[1])
    crop = x[top:bottom, left:right]
    if scale == 1.0:  # already the right size, as every MNIST digit is: keep it bit for bit
        return crop
    # Black padding lets the source box start up to one output pixel before the crop.
    pad = math.ceil(1 / scale) + 1
    padded = np.pad(crop, pad)
    centre = np.array(_centre_of_mass(padded))
    # A source pixel index i maps to the output coordinate (i + 0.5 - start) * scale - 0.5;
    # pick the largest whole output index at or below the centre and solve for the start.
    target = np.floor((centre + 0.5) * scale - 0.5)
    start = centre + 0.5 - (target + 0.5) / scale
    size = np.floor((np.array(padded.shape) - start) * scale).astype(int)
    stop = start + size / scale
    box = (start[1], start[0], stop[1], stop[0])
    # Mode "F" (32-bit float) resamples without rounding to 8 bits; Lanczos low-pass filters
    # when shrinking.
    picture = Image.fromarray(padded.astype(np.float32), mode="F")
    resized = picture.resize((int(size[1]), int(size[0])), Image.Resampling.LANCZOS, box=box)
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 255.0)  # Lanczos rings


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Row and column of the centre of mass, in pixel indices."""
    total = image.sum()
    row = float(image.sum(axis=1) @ np.arange(image.shape[0])) / total
    col = float(image.sum(axis=0) @ np.arange(image.shape[1])) / total
    return row, col


def _box_size(mask: np.ndarray) -> tuple[int, int]:
    """Height and width of the bounding box of the true pixels of ``mask``."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste ``digit`` into a 28×28 field with its centre of mass at (14, 14), ± half a pixel."""
    centre_row, centre_col = _centre_of_mass(digit)
    # Where the digit's top-left pixel goes; floor(v + 0.5) rounds halves up, the same way
    # for every digit (np.round would round them to even).
    offset_row = math.floor(_CENTRE - centre_row + 0.5)
    offset_col = math.floor(_CENTRE - centre_col + 0.5)
    field = np.zeros((_SIZE, _SIZE), dtype=np.float64)
    src_r0, dst_r0 = max(0, -offset_row), max(0, offset_row)
    src_c0, dst_c0 = max(0, -offset_col), max(0, offset_col)
    n_rows = min(digit.shape[0] - src_r0, _SIZE - dst_r0)
    n_cols = min(digit.shape[1] - src_c0, _SIZE - dst_c0)
    field[dst_r0:dst_r0 + n_rows, dst_c0:dst_c0 + n_cols] = \
        digit[src_r0:src_r0 + n_rows, src_c0:src_c0 + n_cols]
    return np.rint(field).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# The Fashion-MNIST recipe


def preprocess_product(image: npt.ArrayLike, *, source: str = "image") -> np.ndarray:
    r"""Make a grayscale photo of one product look like a Fashion-MNIST picture.

    Fashion-MNIST's pictures were made from product photos on white by trimming the edges
    close to the background colour, resizing the longer side to 28 pixels, centring the
    product in a 28×28 field and negating the gray levels. This repeats those steps:

    1. the background is the median of the border pixels; on a light background the picture is
       negated (``255 - x``), and the background level is then removed, so the background is 0;
    2. trim to the bounding box of the pixels that differ from the background by more than
       5 % of the range (Fashion-MNIST's threshold);
    3. resize (Pillow's Lanczos filter) so the longer side is 28 pixels, keeping the aspect
       ratio, and paste it in the middle of a 28×28 field of zeros.

    Parameters
    ----------
    image : array-like of shape (height, width)
        Gray levels 0..255 (any real dtype), a product on a plain background (light or dark).
    source : str, default="image"
        What the image is called in error messages (its file name).

    Returns
    -------
    product : ndarray of shape (28, 28), dtype uint8
        Light product on black, its longer side 28 pixels.

    Raises
    ------
    ValueError
        If `image` is not 2-D, is empty or holds values that are not finite.
    BlankImageError
        If nothing differs from the background by more than 5 % of the range.

    Notes
    -----
    Fashion-MNIST subsampled and then sharpened; Lanczos resampling gives a similar
    sharpness in one step. A Fashion-MNIST picture comes back unchanged (its longer side is
    already 28 pixels and its background 0), up to the trimming of blank rows on its shorter
    side, which the centring puts back.

    Examples
    --------
    >>> import numpy as np
    >>> photo = np.full((90, 60), 255, dtype=np.uint8)  # white studio background
    >>> photo[10:80, 15:45] = 40                          # a dark, tall product
    >>> product = preprocess_product(photo)
    >>> product.shape, int(product[14, 14]), int(product[14, 0])
    ((28, 28), 215, 0)
    """
    from PIL import Image

    x = np.array(image, dtype=np.float64)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(
            f"{source}: expected a 2-D grayscale image, got an array of shape {x.shape}."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{source}: the image holds NaN or infinite values.")
    border = np.concatenate([x[0], x[-1], x[1:-1, 0], x[1:-1, -1]])
    background = float(np.median(border))
    x = background - x if background > 127.5 else x - background
    np.clip(x, 0.0, 255.0, out=x)
    product = x > _TRIM_LEVEL
    if not product.any():
        raise BlankImageError(
            f"{source}: no product found: the image is blank (nothing differs from the "
            f"background by more than {_TRIM_LEVEL:.0f} of 255 gray levels). Check that it is "
            "the right file and that the product is visible."
        )
    rows, cols = np.flatnonzero(product.any(axis=1)), np.flatnonzero(product.any(axis=0))
    crop = x[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = _SIZE / max(crop.shape)
    height = min(_SIZE, max(1, round(crop.shape[0] * scale)))
    width = min(_SIZE, max(1, round(crop.shape[1] * scale)))
    if (height, width) != crop.shape:
        picture = Image.fromarray(crop.astype(np.float32), mode="F")
        crop = np.asarray(picture.resize((width, height), Image.Resampling.LANCZOS),
                          dtype=np.float64)
    field = np.zeros((_SIZE, _SIZE))
    top, left = (_SIZE - height) // 2, (_SIZE - width) // 2
    field[top:top + height, left:left + width] = crop
    return np.rint(np.clip(field, 0.0, 255.0)).astype(np.uint8)  # Lanczos rings


# ---------------------------------------------------------------------------------------------
# Reading files


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS,
    preprocess: Callable[..., np.ndarray] = preprocess_digit,
) -> np.ndarray:
    """Decode a picture file and preprocess it with :func:`preprocess_digit` (or another).

    Parameters
    ----------
    path : str or os.PathLike
        Any format Pillow reads (PNG, JPEG, BMP, GIF, TIFF, WebP...). Colour is converted to
        gray (ITU-R 601 luma); transparent pixels count as white paper; an EXIF orientation
        is applied. A picture longer than 2048 pixels is reduced while decoding.
    max_pixels : int, default=MAX_PIXELS
        The most pixels (width × height) the picture may have: 2×10^8 by default.
    preprocess : callable, default=preprocess_digit
        :func:`preprocess_digit` for MNIST models, :func:`preprocess_product` for
        Fashion-MNIST ones.

    Returns
    -------
    digit : ndarray of shape (28, 28), dtype uint8

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    OSError
        If `path` is a folder, a named pipe or a device, or cannot be read; the message
        names it and the fix.
    InputFormatError
        If Pillow cannot read the file (:class:`UndecodableImageError` when its data is
        truncated or corrupt), or it has more than `max_pixels` pixels
        (:class:`PictureTooLargeError`, refused from its header, before decoding).
    BlankImageError
        If the picture holds no digit.
    """
    max_pixels = check_int(max_pixels, "max_pixels", low=1)
    return preprocess(_decode(Path(path), max_pixels), source=str(path))


def decode_picture(
    data: bytes,
    *,
    source: str = "picture",
    formats: Sequence[str] | None = None,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Decode a picture held in memory to gray levels, as :func:`read_image` decodes a file.

    Parameters
    ----------
    data : bytes
        The encoded picture (PNG, JPEG, ...).
    source : str, default="picture"
        What the picture is called in error messages.
    formats : sequence of str or None, default=None
        Pillow format names to try (``("PNG", "JPEG")``); ``None`` tries every format Pillow
        reads. A server accepting uploads should name the few it expects.
    max_pixels : int, default=MAX_PIXELS
        The most pixels (width × height) the picture may have, checked from its header
        before the pixels are decoded. Pillow's own decompression-bomb limit
        (``PIL.Image.MAX_IMAGE_PIXELS``) applies as well: unlike :func:`read_image`, this
        function changes no global state, so threads may call it at the same time.

    Returns
    -------
    gray : ndarray of shape (height, width), dtype float64
        Gray levels 0..255, ready for :func:`preprocess_digit`, as :func:`read_image` makes
        them: colour becomes gray, transparent pixels white paper, an EXIF orientation is
        applied and a picture longer than 2048 pixels is reduced while decoding.

    Raises
    ------
    InputFormatError
        If the bytes are not a picture in one of `formats`.
    UndecodableImageError
        If the picture's data is truncated or corrupt.
    PictureTooLargeError
        If the picture has more than `max_pixels` pixels.
    """
    max_pixels = check_int(max_pixels, "max_pixels", low=1)
    return _decode_opened(io.BytesIO(data), source, max_pixels, formats=formats,
                          fix="Send a smaller picture: a digit needs no more than a few "
                              "hundred pixels a side.")


#: What to do about a file above the pixel limit.
_FILE_PIXELS_FIX = ("If it is genuine, shrink it, or raise the limit: max_pixels=N (CLI: "
                    "nnscratch predict --max-pixels N).")


def _too_many_pixels(source: str | Path, what: str, max_pixels: int,
                     fix: str = _FILE_PIXELS_FIX) -> PictureTooLargeError:
    return PictureTooLargeError(
        f"{source} holds {what}, more than the limit of {max_pixels:,}; it "
        "may be a decompression bomb (a small file that expands to gigabytes), so it is "
        f"refused before decoding. {fix}"
    )


@contextlib.contextmanager
def _pillow_pixel_limit(max_pixels: int) -> Iterator[None]:
    """Make Pillow's own decompression-bomb check use our limit (and keep its warning quiet,
    since pictures above the limit are refused anyway)."""
    from PIL import Image

    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _decode(path: Path, max_pixels: int) -> np.ndarray:
    """Gray levels 0..255 of a picture file, as float64, at most 2048 pixels on a side."""
    with open_regular_file(path, what="a picture") as handle, _pillow_pixel_limit(max_pixels):
        return _decode_opened(handle, str(path), max_pixels, fix=_FILE_PIXELS_FIX)


def _decode_opened(file: IO[bytes], source: str, max_pixels: int, *,
                   formats: Sequence[str] | None = None, fix: str) -> np.ndarray:
    """Gray levels of the picture in an open binary `file`, named `source` in errors."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file, formats=None if formats is None else list(formats)) as picture:
            width, height = picture.size
            if width * height > max_pixels:
                raise _too_many_pixels(
                    source, f"{width}×{height} = {width * height:,} pixels", max_pixels, fix)
            frames = getattr(picture, "n_frames", 1)
            if frames > 1:  # which frame holds the digit is not ours to guess
                raise InputFormatError(
                    f"{source} is an animated picture of {frames} frames; save the frame to "
                    "read as a single-frame PNG or JPEG."
                )
            mode = picture.mode  # 16-bit gray keeps its fixed range through reduction
            reduced, orientation = _load_reduced(picture)
            return _gray_levels(_apply_orientation(reduced, orientation), mode)
    except InputFormatError:
        raise
    except Image.DecompressionBombError as error:  # raised by Image.open itself
        found = re.search(r"\((\d+) pixels\)", str(error))
        what = f"{int(found[1]):,} pixels" if found else "too many pixels"
        raise _too_many_pixels(source, what, max_pixels, fix) from None
    except UnidentifiedImageError:
        if formats is not None:
            raise InputFormatError(
                f"{source} is not a {' or '.join(formats)} picture; send one of those."
            ) from None
        raise InputFormatError(
            f"{source} is not a picture Pillow can read, nor a .npy or IDX file; give PNG or "
            "JPEG images, folders of them, .npy arrays or IDX files."
        ) from None
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt picture data
        raise UndecodableImageError(
            f"{source}: the picture cannot be decoded ({error}).") from None


def _load_reduced(picture: Picture) -> tuple[Picture, int]:
    """Decode ``picture`` reduced by a whole factor to at most 2048 pixels on its longer side,
    and its EXIF orientation.

    JPEG's decoder scales by 1/2, 1/4 or 1/8 as it decodes (``draft``), and to gray when the
    picture is colour: the full-size picture never exists in memory. Other formats are
    decoded whole, in their own 8-bit mode, and box-averaged at once (``reduce``), before any
    conversion to floats. Palette and 1-bit pictures are converted first, since their values
    are indices, not gray levels.
    """
    factor = math.ceil(max(picture.size) / _MAX_SIDE)
    if factor > 1 and picture.format == "JPEG":
        gray = "L" if picture.mode in ("L", "RGB") else None
        picture.draft(gray, (math.ceil(picture.width / factor),
                             math.ceil(picture.height / factor)))
    picture.load()
    orientation = picture.getexif().get(_EXIF_ORIENTATION, 1)
    factor = math.ceil(max(picture.size) / _MAX_SIDE)
    if factor <= 1:
        return picture, orientation
    if picture.mode.startswith("I;16"):
        picture = picture.convert("I")
    elif picture.mode == "PA" or "transparency" in picture.info:
        picture = picture.convert("RGBA")
    elif picture.mode in ("P", "1"):
        picture = picture.convert("L")
    elif picture.mode not in _AVERAGEABLE_MODES:
        picture = picture.convert("RGB")
    return picture.reduce(factor), orientation


def _apply_orientation(picture: Picture, orientation: object) -> Picture:
    """Turn the picture upright as its EXIF orientation says (as ``ImageOps.exif_transpose``)."""
    from PIL import Image

    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)  # type: ignore[call-overload]
    return picture if method is None else picture.transpose(method)


def _gray_levels(picture: Picture, mode: str) -> np.ndarray:
    """Gray levels 0..255 as float64; ``mode`` is the file's own (before any reduction)."""
    from PIL import Image

    if mode.startswith("I;16"):
        return np.asarray(picture, dtype=np.float64) / 257.0
    if picture.mode in ("I", "F"):  # 32-bit gray with no fixed range: stretch to 0..255
        values = np.asarray(picture, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        return (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(paper, rgba)
    return np.asarray(picture.convert("L"), dtype=np.float64)


def read_digit_arrays(path: str | os.PathLike[str], *,
                      max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read MNIST-style images from a ``.npy`` or IDX file (gzipped or not).

    Parameters
    ----------
    path : str or os.PathLike
        An array of integer gray levels 0..255, white digits on black, already 28×28 and
        centred as in MNIST, of shape ``(28, 28)``, ``(n, 28, 28)``, ``(784,)`` or
        ``(n, 784)``. The file type is told by its first bytes, not its name.
    max_pixels : int, default=MAX_PIXELS
        The most gray levels (array elements) the file may declare: 2×10^8 by default.

    Returns
    -------
    images : ndarray of shape (n, 28, 28), dtype uint8
        A single image gives ``n = 1``.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    OSError
        If `path` is a folder, a named pipe or a device, or cannot be read.
    InputFormatError
        If the file is neither ``.npy`` nor IDX, or holds pickled objects, a shape other than
        the four above, a non-integer dtype or values outside 0..255; or its header declares
        more than `max_pixels` elements or more bytes than the file holds. Shapes, dtypes and
        sizes are checked from the header, before the data are read.
    """
    max_pixels = check_int(max_pixels, "max_pixels", low=1)
    path = Path(path)
    kind = _sniff(path)
    if kind == "image":
        raise InputFormatError(f"{path} is neither a .npy nor an IDX file.")
    array, _ = _read_array(path, kind, max_pixels)
    return array


def _read_array(path: Path, kind: str, max_pixels: int) -> tuple[np.ndarray, bool]:
    """The images of a .npy/IDX file as (n, 28, 28) uint8, and whether the file was batched."""
    from nnscratch.data import IDXFormatError, read_idx
    from nnscratch.data.idx import _RAISE_LIMIT

    if kind == "npy":
        array = _read_npy(path, max_pixels)
    else:
        try:
            array = read_idx(path, max_elements=max_pixels)
        except IDXFormatError as error:
            raise InputFormatError(str(error).replace(
                _RAISE_LIMIT, "raise the limit: max_pixels=N, CLI: nnscratch predict "
                "--max-pixels N")) from None
        _check_digit_header(path, array.shape, array.dtype)
    if array.size and (array.min() < 0 or array.max() > 255):
        raise InputFormatError(
            f"{path} holds values from {array.min()} to {array.max()}; expected gray levels "
            "0..255 (uint8, as in MNIST)."
        )
    batched = array.shape not in ((_SIZE, _SIZE), (_SIZE * _SIZE,))
    return array.astype(np.uint8).reshape(-1, _SIZE, _SIZE), batched


def _read_npy(path: Path, max_pixels: int) -> np.ndarray:
    """A .npy file's array, after its header has been checked against the file and the limit."""
    with open_regular_file(path, what="a .npy file") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise InputFormatError(
                    f"{path} uses .npy format version {version[0]}.{version[1]}, which is not "
                    "read here; save the array with numpy.save (format 1.0 or 2.0)."
                )
        except ValueError as error:
            if isinstance(error, InputFormatError):
                raise
            raise InputFormatError(
                f"{path} cannot be read as a .npy array: its header is damaged ({error})."
            ) from None
        if dtype.hasobject:
            raise InputFormatError(
                f"{path} cannot be read as a .npy array: it holds pickled objects, which are "
                "never loaded."
            )
        _check_digit_header(path, shape, dtype)
        n_values = math.prod(shape)
        if n_values > max_pixels:
            raise _too_many_pixels(path, f"{shape} = {n_values:,} gray levels", max_pixels)
        declared = n_values * dtype.itemsize
        available = os.fstat(handle.fileno()).st_size - handle.tell()
        if declared > available:
            raise InputFormatError(
                f"{path}: its header declares an array of shape {shape} of {dtype} "
                f"({declared:,} bytes), but the file holds only {available:,} bytes after the "
                "header; the file is truncated or damaged. Save the array again."
            )
        if declared < available:  # numpy.load ignores them; they are not what was saved
            raise InputFormatError(
                f"{path}: {available - declared:,} bytes follow the array's data of shape "
                f"{shape} ({declared:,} bytes); a .npy file holds one array. The file is "
                "damaged or two files were joined: save the array again."
            )
        handle.seek(0)
        try:
            return np.load(handle, allow_pickle=False)
        except (ValueError, EOFError) as error:  # the file changed since its header was read
            raise InputFormatError(f"{path} cannot be read as a .npy array: {error}.") from None


def _check_digit_header(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """The shape and dtype must be those of MNIST-style images (checked before reading)."""
    if math.prod(shape) == 0:
        raise InputFormatError(f"{path} holds an empty array of shape {shape}; it has no images.")
    if shape not in ((_SIZE, _SIZE), (_SIZE * _SIZE,)) \
            and shape[1:] not in ((_SIZE, _SIZE), (_SIZE * _SIZE,)):
        raise InputFormatError(
            f"{path} holds an array of shape {shape}; expected MNIST-style images of shape "
            "(28, 28), (n, 28, 28), (784,) or (n, 784). Save pictures of other sizes as PNG "
            "files: those are scaled and centred the way MNIST was made."
        )
    if dtype == np.bool_:
        raise InputFormatError(
            f"{path} holds booleans; expected integer gray levels 0..255 (uint8, as in MNIST), "
            "as serve refuses true/false pixels. Save (array * 255).astype('uint8')."
        )
    if not np.issubdtype(dtype, np.integer):
        raise InputFormatError(
            f"{path} holds {dtype} values; expected integer gray levels 0..255 (uint8, as in "
            "MNIST). For values scaled to [0, 1], save (array * 255).round().astype('uint8')."
        )


def _check_ink(images: np.ndarray, path: Path, batched: bool) -> None:
    """Refuse an image of an array file whose gray levels span less than
    :data:`MIN_INK_RANGE` of 0..255, as serve refuses such pixels."""
    flat = images.reshape(len(images), -1)
    spans = (flat.max(axis=1).astype(np.int16) - flat.min(axis=1)) / 255
    blank = np.flatnonzero(spans < MIN_INK_RANGE)
    if blank.size:
        i = int(blank[0])
        which = f"{path}[{i}]" if batched else str(path)
        more = f" ({blank.size:,} of its {len(images):,} images are)" if batched else ""
        raise BlankImageError(
            f"{which} holds no digit: its gray levels span {spans[i]:.3f} of the range (at "
            f"least {MIN_INK_RANGE} is needed){more}; give white digits on black, 0..255."
        )


def _sniff(path: Path) -> str:
    """``"npy"``, ``"idx"`` or ``"image"`` by the first bytes of the file."""
    with open_regular_file(path, what="a picture or array file") as handle:
        head = handle.read(len(_NPY_MAGIC))
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_GZIP_MAGIC):
        return "idx"  # gzipped pictures do not exist in the wild; gzipped IDX files do
    if len(head) >= 4 and head[:2] == b"\x00\x00" and head[2] in _IDX_TYPE_CODES:
        return "idx"
    return "image"


def load_inputs(paths: Iterable[str | os.PathLike[str]], *, max_pixels: int = MAX_PIXELS,
                preprocess: Callable[..., np.ndarray] = preprocess_digit,
                ) -> tuple[list[str], np.ndarray]:
    """Read every input of ``nnscratch predict`` as MNIST-style images.

    Parameters
    ----------
    paths : iterable of str or os.PathLike
        Picture files (preprocessed with `preprocess`), folders (their pictures, by
        :data:`IMAGE_SUFFIXES`, sorted by name, not recursive), and ``.npy`` or IDX files of
        MNIST-style images (used as they are, see :func:`read_digit_arrays`).
    max_pixels : int, default=MAX_PIXELS
        The most pixels one picture, or gray levels one array file, may hold (2×10^8).
    preprocess : callable, default=preprocess_digit
        How pictures are made into 28×28 images: :func:`preprocess_digit` for MNIST models,
        :func:`preprocess_product` for Fashion-MNIST ones.

    Returns
    -------
    names : list of str
        One per image: the path, or ``"file.npy[3]"`` for image 3 of a file that holds several.
    images : ndarray of shape (n_images, 28, 28), dtype uint8

    Raises
    ------
    FileNotFoundError
        If a path does not exist.
    OSError
        If a path is a named pipe or a device, or cannot be read (the message names it).
    InputFormatError
        If a file cannot be read, holds more than `max_pixels`, or a folder holds no pictures.
    BlankImageError
        If a picture holds no digit.
    ValueError
        If `paths` is empty.
    """
    max_pixels = check_int(max_pixels, "max_pixels", low=1)
    names: list[str] = []
    batches: list[np.ndarray] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputFormatError(
                    f"folder {path} holds no pictures (files ending in "
                    f"{', '.join(IMAGE_SUFFIXES)}); give image files, .npy or IDX files."
                )
            for file in files:
                names.append(str(file))
                batches.append(read_image(file, max_pixels=max_pixels,
                                          preprocess=preprocess)[np.newaxis])
            continue
        kind = _sniff(path)
        if kind == "image":
            names.append(str(path))
            batches.append(read_image(path, max_pixels=max_pixels,
                                      preprocess=preprocess)[np.newaxis])
            continue
        array, batched = _read_array(path, kind, max_pixels)
        _check_ink(array, path, batched)
        names.extend(f"{path}[{i}]" for i in range(len(array)) if batched)
        if not batched:
            names.append(str(path))
        batches.append(array)
    if not batches:
        raise ValueError("no inputs given; name image files, folders, .npy or IDX files.")
    return names, np.concatenate(batches)
