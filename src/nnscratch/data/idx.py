"""Read and write IDX files, the simple array format MNIST is distributed in.

An IDX file is a 4-byte header, one big-endian ``uint32`` per dimension, then the elements in C
order, big-endian::

    byte 0-1   0x00 0x00          magic
    byte 2     type code          0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                                  0x0D float32, 0x0E float64
    byte 3     rank               number of dimensions, 0..255 (0 is a scalar)
    4 * rank   dimensions         big-endian uint32 each
    rest       payload            exactly prod(dimensions) * item size bytes

Files are often gzipped. Whether to decompress is decided by the bytes (the gzip magic ``1f 8b``),
never by the file name, because copies of MNIST circulate with and without ``.gz`` whatever their
content. Every way a file can be wrong raises one exception, :class:`IDXFormatError`, whose
message names the file, the problem and the fix; no other exception escapes the parser, whatever
the bytes.

Sizes are checked before memory is spent on them: the header's declared size must agree with
the file's (for a gzipped file: with how far its compressed bytes can possibly expand), and the
number of elements must not exceed a limit (:data:`MAX_ELEMENTS`, raised with
``max_elements=``). A gzipped file is decompressed only as far as its header declares, so a
small file that expands to gigabytes (a decompression bomb) is refused, not decompressed.

What it leaves out: memory mapping and streaming. MNIST is 47 MB decompressed, so files are read
whole.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nnscratch._atomic import atomic_write
from nnscratch._files import open_regular_file

__all__ = ["MAX_ELEMENTS", "IDXFormatError", "parse_idx", "read_idx", "write_idx"]

#: The most elements an IDX file may declare unless told otherwise: 2**30, 1 GiB of uint8 —
#: 22 times MNIST's largest file (60,000 × 28 × 28 = 47 million). Raise it with
#: ``max_elements=`` for a genuinely larger data set.
MAX_ELEMENTS = 2**30

# Type code -> big-endian dtype on disk. Results are converted to the native byte order.
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES: dict[np.dtype, int] = {dtype.newbyteorder("="): code for code, dtype in _DTYPES.items()}
_SUPPORTED = "uint8, int8, int16, int32, float32, float64"
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DIM = 2**32 - 1
_FIX_DOWNLOAD = "download the file again or restore it from a good copy"
_RAISE_LIMIT = "raise the limit with max_elements=N"  # callers with another knob replace it
_MAX_HEADER = 4 + 4 * 255  # the longest header: rank 255
# Deflate cannot expand data more than about 1032 times (a 258-byte match costs at least two
# bits); a header that declares more than that was not gzipped from real data.
_MAX_DEFLATE_RATIO = 1032
_GZIP_SLACK = 1024


class IDXFormatError(ValueError):
    """Raised when bytes are not a well-formed IDX file (raw or gzipped).

    The message names the file, what is wrong and what to do about it.
    """


def parse_idx(data: bytes, *, source: str = "<bytes>",
              max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """Parse the bytes of an IDX file, gzipped or not, into an array.

    Parameters
    ----------
    data : bytes or bytes-like
        The whole file. If it starts with the gzip magic ``1f 8b`` it is decompressed first,
        no further than its header declares.
    source : str, default="<bytes>"
        Where the bytes came from, used in error messages (a path or URL).
    max_elements : int, default=MAX_ELEMENTS
        The most elements the header may declare (2**30 by default).

    Returns
    -------
    array : ndarray
        A new, writable array in native byte order with the file's shape and element type
        (uint8, int8, int16, int32, float32 or float64). A rank-0 file gives a 0-d array.

    Raises
    ------
    IDXFormatError
        If the gzip stream is corrupt or truncated, the header is truncated, the magic bytes are
        not zero, the type code is unknown, the payload length differs from what the
        dimensions require, or the dimensions declare more than `max_elements` elements (or,
        gzipped, more bytes than the compressed data can expand to).

    Examples
    --------
    >>> parse_idx(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9]))
    array([7, 8, 9], dtype=uint8)
    """
    return _parse_uncompressed(_decompress(data, source, max_elements), source, max_elements)


def read_idx(path: str | os.PathLike[str], *, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """Read an IDX file, gzipped or not (decided by its bytes, not its name).

    Parameters
    ----------
    path : str or os.PathLike
        The file to read: a regular file (a named pipe or a device is refused at once).
    max_elements : int, default=MAX_ELEMENTS
        The most elements the header may declare (2**30 by default).

    Returns
    -------
    array : ndarray
        See :func:`parse_idx`.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    OSError
        If `path` is not a regular file or cannot be read; the message names it and the fix.
    IDXFormatError
        If the file is not a well-formed IDX file, or declares more than `max_elements`
        elements; the message names `path`. An uncompressed file's header is checked against
        the file's size before the rest of the file is read.
    """
    path = Path(path)
    source = str(path)
    with open_regular_file(path, what="an IDX file") as handle:
        head = handle.read(_MAX_HEADER)
        if head[:2] != _GZIP_MAGIC and len(head) >= 4 and len(head) >= 4 + 4 * head[3]:
            size = os.fstat(handle.fileno()).st_size
            dtype, shape, header_size = _parse_header(head, source)
            _check_payload(shape, dtype, size - header_size, source, max_elements)
        data = head + handle.read()
    return parse_idx(data, source=source, max_elements=max_elements)


def write_idx(
    path: str | os.PathLike[str], array: npt.ArrayLike, *, compress: bool | None = None
) -> None:
    """Write an array as an IDX file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace. Its directory must exist.
    array : array_like
        Any rank from 0 to 255 (NumPy allows up to 64) with a dtype IDX supports: uint8, int8,
        int16, int32, float32 or float64, in either byte order.
    compress : bool or None, default=None
        Gzip the file. ``None`` compresses exactly when the name ends with ``.gz``.

    Raises
    ------
    TypeError
        If the dtype has no IDX type code.
    ValueError
        If a dimension exceeds 2**32 - 1, which the header cannot store.

    Notes
    -----
    The data go to a temporary file in the same directory which replaces `path` only once it is
    complete and flushed to disk (see :func:`nnscratch._atomic.atomic_write`), so an interrupted
    write never leaves a truncated file. Gzipped output has no time stamp or file name in its
    header, so the same array always gives the same bytes.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte.gz"
    >>> write_idx(path, np.array([5, 0, 4], dtype=np.uint8))
    >>> read_idx(path)
    array([5, 0, 4], dtype=uint8)
    """
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise TypeError(
            f"write_idx({str(path)!r}): IDX cannot store dtype {array.dtype}; the supported "
            f"dtypes are {_SUPPORTED}. Convert first, e.g. array.astype(np.int32)."
        )
    if any(dim > _MAX_DIM for dim in array.shape):
        raise ValueError(
            f"write_idx({str(path)!r}): shape {array.shape} has a dimension above 2**32 - 1, "
            "which an IDX header cannot store. Split the array into several files."
        )
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        dim.to_bytes(4, "big") for dim in array.shape
    )
    payload = np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes()
    if compress is None:
        compress = path.name.endswith(".gz")
    with atomic_write(path) as file:
        if compress:
            # filename="" and mtime=0 keep the temporary name and the clock out of the header.
            with gzip.GzipFile(filename="", mode="wb", fileobj=file, mtime=0) as gz:
                gz.write(header)
                gz.write(payload)
        else:
            file.write(header)
            file.write(payload)


def _decompress(data: bytes, source: str, max_elements: int = MAX_ELEMENTS) -> bytes:
    """Gunzip `data` if it starts with the gzip magic, else return it unchanged.

    The IDX header is decompressed first; the payload is then decompressed only as far as the
    header declares, after that size has been checked against `max_elements` and against how
    far `data` can possibly expand. Every gzip member is read (files may hold several).
    """
    if bytes(data[:2]) != _GZIP_MAGIC:
        return data
    out = bytearray()
    total: int | None = None  # the decompressed size the header declares, once it is known
    rest = bytes(data)
    try:
        while rest:
            member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            while not member.eof:
                room = (total if total is not None else _MAX_HEADER) + 1 - len(out)
                piece = member.decompress(rest, room)
                rest = member.unconsumed_tail
                out += piece
                if total is None:
                    total = _declared_total(out, source, max_elements, len(data))
                if total is not None and len(out) > total:
                    raise IDXFormatError(
                        f"{source}: the gzip stream holds more than the {total:,} bytes its IDX "
                        f"header declares, so the data are followed by extra bytes; "
                        f"{_FIX_DOWNLOAD}."
                    )
                if not piece and not rest:
                    raise EOFError
            rest = member.unused_data.lstrip(b"\x00")  # gzip allows zero padding at the end
    except EOFError:
        raise IDXFormatError(
            f"{source}: the gzip stream ends early, so the file is truncated (an interrupted "
            f"download or copy?); {_FIX_DOWNLOAD}."
        ) from None
    except zlib.error as error:
        raise IDXFormatError(
            f"{source}: starts like a gzip file but the gzip stream is corrupt ({error}); "
            f"{_FIX_DOWNLOAD}."
        ) from None
    return out


def _declared_total(out: bytearray, source: str, max_elements: int, compressed: int) -> int | None:
    """Header plus payload size declared by the header at the start of `out`, once complete.

    Raises for a malformed header, more than `max_elements` elements, or more bytes than
    `compressed` gzipped bytes can expand to.
    """
    if len(out) < 4 or len(out) < 4 + 4 * out[3]:
        if len(out) >= 4:
            _parse_header(bytes(out[:4]), source, complete=False)  # magic and type code
        return None
    dtype, shape, header_size = _parse_header(bytes(out[: 4 + 4 * out[3]]), source)
    total = header_size + _declared_payload(shape, dtype, source, max_elements)
    most = compressed * _MAX_DEFLATE_RATIO + _GZIP_SLACK
    if total > most:
        raise IDXFormatError(
            f"{source}: the header declares {_dims(shape)} of {dtype.newbyteorder('=').name} "
            f"({total:,} bytes), but {compressed:,} gzipped bytes can expand to at most "
            f"{most:,}; the file is damaged (or a decompression bomb) and is refused before "
            f"decompressing it; {_FIX_DOWNLOAD}."
        )
    return total


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "() (a scalar)"


def _parse_header(data: bytes, source: str, *, complete: bool = True
                  ) -> tuple[np.dtype, tuple[int, ...], int]:
    """The on-disk dtype, the shape and the header size, from the first bytes of an IDX file.

    With ``complete=False`` only the first four bytes (magic, type code, rank) are checked.
    """
    if len(data) < 4:
        what = "is empty" if not data else f"has only {len(data)} bytes"
        raise IDXFormatError(
            f"{source}: {what}, but an IDX header needs at least 4; the file is truncated or "
            f"not an IDX file; {_FIX_DOWNLOAD}."
        )
    if data[0] != 0 or data[1] != 0:
        raise IDXFormatError(
            f"{source}: not an IDX file: it starts with bytes 0x{data[0]:02x} 0x{data[1]:02x}, "
            "but IDX files start with two zero bytes (gzipped ones with 0x1f 0x8b). Check that "
            "the path names an IDX file such as train-images-idx3-ubyte[.gz] and not, say, a "
            "saved HTML error page."
        )
    code, rank = data[2], data[3]
    if code not in _DTYPES:
        known = ", ".join(f"0x{c:02X} {d.newbyteorder('=').name}" for c, d in _DTYPES.items())
        raise IDXFormatError(
            f"{source}: unknown IDX type code 0x{code:02X} in byte 2 of the header; the known "
            f"codes are {known}. The file is corrupt or not an IDX file; {_FIX_DOWNLOAD}."
        )
    header_size = 4 + 4 * rank
    if not complete:
        return _DTYPES[code], (), header_size
    if len(data) < header_size:
        raise IDXFormatError(
            f"{source}: the header is truncated: rank {rank} needs {header_size} header bytes "
            f"but the file has {len(data)}; {_FIX_DOWNLOAD}."
        )
    shape = tuple(int.from_bytes(data[i : i + 4], "big") for i in range(4, header_size, 4))
    return _DTYPES[code], shape, header_size


def _declared_payload(shape: tuple[int, ...], dtype: np.dtype, source: str,
                      max_elements: int) -> int:
    """The payload bytes `shape` declares, refused above `max_elements` elements."""
    n_elements = math.prod(shape)
    if n_elements > max_elements:
        raise IDXFormatError(
            f"{source}: the header declares {_dims(shape)} = {n_elements:,} elements, more than "
            f"the limit of {max_elements:,}; the file is damaged, or a data set larger than "
            f"nnscratch reads by default ({_RAISE_LIMIT})."
        )
    return n_elements * dtype.itemsize


def _check_payload(shape: tuple[int, ...], dtype: np.dtype, found: int, source: str,
                   max_elements: int) -> None:
    """The payload must be exactly as long as the dimensions require."""
    expected = _declared_payload(shape, dtype, source, max_elements)
    if found != expected:
        problem = "truncated" if found < expected else "followed by extra bytes"
        raise IDXFormatError(
            f"{source}: size mismatch: expected {expected} payload bytes from dims "
            f"{_dims(shape)} × {dtype.itemsize} bytes per {dtype.newbyteorder('=').name}, found "
            f"{found}; the data are {problem}; {_FIX_DOWNLOAD}."
        )


def _parse_uncompressed(data: bytes, source: str, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """Parse raw (already decompressed) IDX bytes; see :func:`parse_idx`."""
    dtype, shape, header_size = _parse_header(data, source)
    _check_payload(shape, dtype, len(data) - header_size, source, max_elements)
    expected = math.prod(shape) * dtype.itemsize
    native = dtype.newbyteorder("=")
    try:
        if expected == 0:
            return np.empty(shape, dtype=native)
        flat = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header_size)
        # astype always copies: the result owns writable memory in native byte order.
        return flat.astype(native).reshape(shape)
    except ValueError as error:  # rank above NumPy's limit (64), or an empty but huge shape
        raise IDXFormatError(
            f"{source}: the header declares rank {len(shape)} and shape {shape}, which NumPy "
            f"cannot create ({error}); the file is corrupt or not meant for NumPy."
        ) from None
